//! Bad input, the way users give it, gets a clear error that names the thing and the fix, the
//! right exit code (2 for usage), and leaves nothing half-done.

use crate::support::registry as registry_util;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::sandbox;
use crate::support::*;

/// Generous: it bounds a hang on a busy machine, it never decides a result.
const LONG: Duration = Duration::from_secs(600);

/// A one-task project whose ImageSpec takes `spec_fields` (Python keyword arguments).
fn image_project(spec_fields: &str) -> Project {
    let p = Project::new("hello");
    std::fs::write(
        p.root().join("workflows/hello.py"),
        format!(
            "import union\n\nimage_spec = union.ImageSpec(name='union-test-bad', requirements='requirements.txt', {spec_fields})\n\n\
             @union.task(container_image=image_spec)\ndef say_hello(name: str) -> str:\n    return f'Hello, {{name}}!'\n\n\
             @union.workflow\ndef hello_world_wf(name: str = 'world') -> str:\n    return say_hello(name=name)\n"
        ),
    )
    .unwrap();
    p
}

// ------------------------------------------------------------------------- the backend

/// With the backend down, nothing slow runs first: not even the import of the user's code, let
/// alone an image build (this spec's image exists nowhere).
#[test]
fn a_backend_that_is_down_is_reported_before_anything_slow() {
    let (_socket, port) = registry_util::closed_port();
    let p = image_project(&format!(
        "registry='localhost:30000', commands=['echo {}']",
        unique("never-built")
    ));
    let endpoint = format!("127.0.0.1:{port}");
    for args in [
        vec![
            "run",
            "--remote",
            "--endpoint",
            &endpoint,
            "workflows/hello.py",
            "hello_world_wf",
        ],
        vec!["register", "workflows", "--endpoint", &endpoint],
    ] {
        let o = run(p.union_docker().args(&args));
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!("cannot reach FlyteAdmin at 127.0.0.1:{port}")),
            "{err}"
        );
        assert!(
            err.contains("union sandbox start"),
            "says how to start one: {err}"
        );
        assert!(!err.contains("Loading"), "nothing imported first: {err}");
        assert!(!err.contains("Building"), "nothing built first: {err}");
    }
}

/// The backend goes away in the middle of `register`: the error says the connection was lost
/// (not "check admin.endpoint"), how far it got, and that running again finishes the job.
#[test]
fn a_connection_lost_while_registering_says_so() {
    require_docker_infra();
    let sb = Sandbox::start();
    let p = Project::git("hello");
    let go = p.parent().join("go");
    let mut child = p
        .union_docker()
        .args(["register", "workflows", "--endpoint", &sb.endpoint()])
        .env("UNION_TEST_PAUSE_AT", "registering")
        .env("UNION_TEST_PAUSE_UNTIL", &go)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let err = Captured::stderr_of(&mut child);
    err.wait_for("paused at registering", LONG);
    let mut sb = sb;
    sb.kill();
    std::fs::write(&go, "").unwrap();
    let status = wait_exit(&mut child, LONG);
    let text = err.all();
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(
        text.contains("lost the connection to FlyteAdmin at"),
        "{text}"
    );
    assert!(text.contains("during CreateTask"), "{text}");
    assert!(
        text.contains("0 of 3 entities were registered before this"),
        "{text}"
    );
    assert!(!text.contains("check admin.endpoint"), "{text}");
}

/// `run --remote --wait` keeps following through a backend restart.
#[test]
fn wait_retries_while_the_backend_restarts() {
    require_docker_infra();
    let sb = Sandbox::start();
    let p = Project::new("exec");
    let image = {
        let hello = Project::hello_pinned();
        let o = run(hello.union_docker().args(["build", "-q", "workflows"]));
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o).split_whitespace().next().unwrap().to_string()
    };
    let go = p.parent().join("go");
    let mut child = p
        .union_docker()
        .args(["run", "--remote", "--wait", "--endpoint", &sb.endpoint()])
        .args(["--image", &image, "--name", "through-a-restart"])
        .args(["workflows/slow.py", "sleepy_wf", "--seconds", "3600"])
        .env("UNION_TEST_PAUSE_AT", "following")
        .env("UNION_TEST_PAUSE_UNTIL", &go)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let err = Captured::stderr_of(&mut child);
    err.wait_for("paused at following", LONG);
    // The backend crashes; the command follows on, retrying; the backend comes back.
    let mut crashed = sb;
    crashed.kill();
    std::fs::write(&go, "").unwrap();
    err.wait_for("retrying for up to", LONG);
    let sb = Sandbox::launch(sandbox::Launch {
        data_dir: Some(crashed.data_dir()),
        port: crashed.port,
        ..Default::default()
    });
    let status = wait_exit(&mut child, LONG);
    let text = err.all();
    assert!(text.contains("lost the connection to FlyteAdmin"), "{text}");
    assert!(text.contains("connection restored"), "{text}");
    // A sandbox restart ends the executions it was running, and the command reports that.
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(text.contains("through-a-restart"), "{text}");
    assert!(
        text.contains("the sandbox restarted while this execution was running"),
        "{text}"
    );
    drop(sb);
}

// ------------------------------------------------------------------------- input values

#[test]
fn input_values_of_the_wrong_type_are_usage_errors_with_an_example() {
    let typed = Project::new("typed");
    let types = Project::new("types");
    let cases: Vec<(&Project, Vec<&str>, &str, &str, &str)> = vec![
        (
            &typed,
            vec![
                "run",
                "workflows/calc.py",
                "calc_wf",
                "--xs",
                r#"["a","b"]"#,
            ],
            "invalid value for --xs (List[int])",
            "of type <class 'str'>",
            "--xs '[1, 2]'",
        ),
        (
            &types,
            vec!["run", "alltypes.py", "point", "--p", r#"{"x": 1}"#],
            "invalid value for --p (alltypes.Point)",
            "the field 'y' is missing",
            r#"--p '{"x": 1, "y": 1.5, "tags": ["a", "b"]}'"#,
        ),
        (
            &types,
            vec![
                "run",
                "alltypes.py",
                "times",
                "--when",
                "2024-01-01",
                "--delta",
                "ten days",
                "--day",
                "2024-01-01",
            ],
            "invalid value for --delta (datetime.timedelta)",
            "not a duration",
            "--delta '10 days'",
        ),
        (
            &types,
            vec!["run", "alltypes.py", "color", "--c", "blue"],
            "invalid value for --c (alltypes.Color)",
            "'blue' is not one of 'red', 'green'",
            "--c red",
        ),
    ];
    for (project, args, message, reason, example) in cases {
        let o = run(project.union().args(&args));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(err.contains(reason), "{args:?}: {err}");
        assert!(
            err.contains(&format!("for example: {example}")),
            "{args:?}: {err}"
        );
        assert!(!err.contains("Traceback"), "{err}");
        assert!(stdout(&o).is_empty());
    }
}

/// The same conversion for `run --remote`, before anything is built or registered.
#[test]
fn remote_input_values_of_the_wrong_type_are_usage_errors() {
    let sb = Sandbox::start();
    let p = Project::new("typed");
    let o = run(p.union().args([
        "run",
        "--remote",
        "--endpoint",
        &sb.endpoint(),
        "workflows/calc.py",
        "calc_wf",
        "--xs",
        r#"["a"]"#,
    ]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("invalid value for --xs (List[int])"), "{err}");
    assert!(err.contains("for example: --xs '[1, 2]'"), "{err}");
    assert!(!err.contains("Registering"), "{err}");
}

// ------------------------------------------------------------------------- projects

/// A directory with no entities: said so, nothing uploaded or registered, exit 1.
#[test]
fn register_of_a_package_without_entities_says_so() {
    let sb = Sandbox::start();
    let p = Project::new("hello");
    std::fs::create_dir_all(p.root().join("helpers")).unwrap();
    std::fs::write(p.root().join("helpers/__init__.py"), "").unwrap();
    std::fs::write(
        p.root().join("helpers/text.py"),
        "def shout(s):\n    return s.upper()\n",
    )
    .unwrap();
    let o = run(p
        .union()
        .args(["register", "helpers", "--endpoint", &sb.endpoint()]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "no tasks, workflows or launch plans in the 2 modules `helpers`, `helpers.text`"
        ),
        "{err}"
    );
    assert!(err.contains("nothing was uploaded or registered"), "{err}");
    assert!(!err.contains("Uploading"), "{err}");
    let blobs = sb.data_dir().join("blobs");
    let uploaded = std::fs::read_dir(&blobs).map(|d| d.count()).unwrap_or(0);
    assert_eq!(uploaded, 0, "nothing uploaded");
}

/// Registering from inside a package: the root taken (its parent) is named.
#[test]
fn register_from_inside_a_package_names_the_root_it_takes() {
    let p = Project::new("hello");
    let o =
        run(p
            .union()
            .current_dir(p.root().join("workflows"))
            .args(["register", ".", "--dry-run"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let root = p.root().canonicalize().unwrap();
    assert!(
        stderr(&o).contains(&format!("note: the project root is {}", root.display())),
        "{}",
        stderr(&o)
    );
}

// ------------------------------------------------------------------------- the sandbox

fn sandbox_db(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("sandbox.db")).unwrap()
}

/// A damaged row is reported as corruption with what to do, never as "already registered with
/// different content"; a damaged file stops the sandbox at start with the same advice.
#[test]
fn a_corrupted_sandbox_database_is_reported_as_corruption() {
    require_docker_infra();
    let sb = Sandbox::start();
    let p = Project::new("pkgtree");
    let register = |sb: &Sandbox| {
        run(p.union().args([
            "register",
            "myproj",
            "--version",
            "v1",
            "--image",
            TEST_BASE_IMAGE,
            "--copy",
            "none",
            "--endpoint",
            &sb.endpoint(),
        ]))
    };
    let o = register(&sb);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut crashed = sb;
    crashed.kill();
    let dir = crashed.data_dir().to_path_buf();
    // Damage the stored digest of every task, as a bad disk would.
    let db = sandbox_db(&dir);
    db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    db.execute(
        "UPDATE entities SET digest = zeroblob(32) WHERE resource_type = 1",
        [],
    )
    .unwrap();
    drop(db);
    let mut sb = Sandbox::launch(sandbox::Launch {
        data_dir: Some(&dir),
        port: crashed.port,
        ..Default::default()
    });
    let o = register(&sb);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("the sandbox database is corrupted"), "{err}");
    assert!(err.contains("move its data directory away"), "{err}");
    assert!(!err.contains("different content"), "{err}");
    assert!(!err.contains("different structure"), "{err}");

    // Pages overwritten: `union sandbox start` refuses, naming the file and the fix.
    sb.kill();
    let db_file = dir.join("sandbox.db");
    let db = sandbox_db(&dir);
    db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    drop(db);
    let len = std::fs::metadata(&db_file).unwrap().len();
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&db_file)
            .unwrap();
        f.seek(SeekFrom::Start(len / 2)).unwrap();
        f.write_all(&vec![0xa5; 8192]).unwrap();
    }
    let o = run(Command::new(env!("CARGO_BIN_EXE_union"))
        .args(["sandbox", "start", "--port", "0", "--data-dir"])
        .arg(&dir));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("is corrupted"), "{err}");
    assert!(err.contains(&db_file.display().to_string()), "{err}");
    assert!(err.contains(&format!("mv {}", dir.display())), "{err}");
}

// ------------------------------------------------------------------------- images

/// Credentials written into index URLs never reach what union prints, the Dockerfile or the
/// image: they travel as a BuildKit secret (a netrc).
#[test]
fn credentials_in_index_urls_are_masked_everywhere() {
    let p = image_project(
        "registry='localhost:30000', pip_index='https://alice:TOPSECRET@pypi.example.com/simple', \
         pip_extra_index_url=['https://bob:EXTRASECRET@extra.example.com/simple']",
    );
    for args in [
        vec!["build", "--dry-run", "workflows"],
        vec!["register", "--dry-run", "workflows"],
    ] {
        let o = run(p.union_docker().args(&args));
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(
            !all.contains("TOPSECRET") && !all.contains("EXTRASECRET"),
            "{all}"
        );
        assert!(
            all.contains("--index-url https://pypi.example.com/simple"),
            "the Dockerfile uses the URL without its credentials: {all}"
        );
        assert!(all.contains("NETRC=/run/secrets/union_netrc"), "{all}");
    }
    // An error that quotes the spec's URL masks it too.
    let o = run(p
        .union()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["build", "workflows"]));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!all.contains("TOPSECRET"), "{all}");
}

/// Several platforms: the tag and plan are shown; only the build is refused, with the reason and
/// what would work.
#[test]
fn several_platforms_are_planned_and_refused_only_when_built() {
    let p = image_project("registry='localhost:30000', platform='linux/amd64,linux/arm64'");
    let dry = run(p.union_docker().args(["build", "--dry-run", "workflows"]));
    assert!(dry.status.success(), "{}", stderr(&dry));
    let out = stdout(&dry);
    assert!(
        out.contains("image: localhost:30000/union-test-bad:"),
        "{out}"
    );
    assert!(out.contains("platform: linux/amd64,linux/arm64"), "{out}");
    let reg = run(p
        .union_docker()
        .args(["register", "--dry-run", "workflows"]));
    assert!(reg.status.success(), "{}", stderr(&reg));
    assert!(
        stdout(&reg).contains("localhost:30000/union-test-bad:"),
        "{}",
        stdout(&reg)
    );
    require_docker_infra();
    let o = run(p.union_docker().args(["build", "workflows"]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("lists several platforms"), "{err}");
    assert!(err.contains("set `platform` to one platform"), "{err}");
}

/// `--image URI` must exist, like the images ImageSpecs build: nothing is registered otherwise.
#[test]
fn a_default_image_that_does_not_exist_registers_nothing() {
    require_docker_infra();
    let sb = Sandbox::start();
    let p = Project::new("pkgtree");
    let missing = format!("localhost:30000/{}:1", unique("union-test/missing"));
    let o = run(p.union().args([
        "register",
        "myproj",
        "--image",
        &missing,
        "--endpoint",
        &sb.endpoint(),
    ]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("image {missing}")), "{err}");
    assert!(err.contains("does not exist"), "{err}");
    assert!(err.contains("nothing was registered"), "{err}");
    let o = run(p.union().args([
        "register",
        "myproj",
        "--image",
        TEST_BASE_IMAGE,
        "--endpoint",
        &sb.endpoint(),
    ]));
    assert!(
        o.status.success(),
        "an image that exists is fine: {}",
        stderr(&o)
    );
    // And anyone can pull it from that open registry: no pullability warning.
    assert!(!stderr(&o).contains("cannot pull"), "{}", stderr(&o));
}

/// An image in a registry that refuses anonymous pulls gets a warning naming it and the fix
/// before anything is registered; `--require-pullable-images` makes it an error; with
/// `--image-pull-secret` it is checked with the user's own credentials instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_the_cluster_cannot_pull_is_named_before_registering() {
    require_docker_infra();
    let registry = registry_util::AuthRegistry::start("builder", "b-Pa55word")
        .await
        .unwrap_or_else(|why| panic!("{why}; `bash tests/setup/docker.sh` installs it"));
    let p = image_project(&format!(
        "registry='{}', registry_config='regcfg.json', commands=['echo {}']",
        registry.addr,
        unique("pullable")
    ));
    let regcfg = format!(
        r#"{{"auths": {{"{}": {{"username": "builder", "password": "b-Pa55word"}}}}}}"#,
        registry.addr
    );
    std::fs::write(p.root().join("regcfg.json"), &regcfg).unwrap();
    let sb = Sandbox::start();
    let o = run(p
        .union_docker()
        .args(["register", "workflows", "--endpoint", &sb.endpoint()]));
    let err = stderr(&o);
    assert!(o.status.success(), "a warning, not an error: {err}");
    assert!(
        err.contains(&format!(
            "warning: the cluster cannot pull {}/union-test-bad:",
            registry.addr
        )),
        "{err}"
    );
    assert!(
        err.contains("refuses to serve it without credentials"),
        "{err}"
    );
    assert!(err.contains("make the repository public"), "{err}");
    assert!(err.contains("ErrImagePull"), "{err}");
    assert!(!err.contains("b-Pa55word"), "{err}");

    let o = run(p.union_docker().args([
        "register",
        "workflows",
        "--require-pullable-images",
        "--version",
        "never-registered",
        "--endpoint",
        &sb.endpoint(),
    ]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot pull"), "{err}");
    assert!(err.contains("nothing was registered"), "{err}");

    // The cluster has a pull secret: checked with the user's credentials, which work.
    let docker_config = p.parent().join("docker");
    std::fs::create_dir_all(&docker_config).unwrap();
    std::fs::write(docker_config.join("config.json"), &regcfg).unwrap();
    let o = run(p.union_docker().env("DOCKER_CONFIG", &docker_config).args([
        "register",
        "workflows",
        "--require-pullable-images",
        "--image-pull-secret",
        "regcred",
        "--endpoint",
        &sb.endpoint(),
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("cannot pull"), "{}", stderr(&o));
}

/// An ImageSpec's `registry_config` (a docker config with credentials for its registry) is used
/// for the existence check and the push; without it the same registry refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imagespecs_registry_config_is_used_for_its_image() {
    require_docker_infra();
    let registry = registry_util::AuthRegistry::start("builder", "b-Pa55word")
        .await
        .unwrap_or_else(|why| panic!("{why}; `bash tests/setup/docker.sh` installs it"));
    let p = image_project(&format!(
        "registry='{}', registry_config='regcfg.json', commands=['echo {}']",
        registry.addr,
        unique("regcfg")
    ));
    std::fs::write(
        p.root().join("regcfg.json"),
        format!(
            r#"{{"auths": {{"{}": {{"username": "builder", "password": "b-Pa55word"}}}}}}"#,
            registry.addr
        ),
    )
    .unwrap();
    let o = run(p.union_docker().args(["build", "workflows"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("built and pushed"), "{out}");
    assert!(!format!("{out}{}", stderr(&o)).contains("b-Pa55word"));
    // Found with those credentials now (the existence check uses them too).
    let again = run(p.union_docker().args(["build", "workflows"]));
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stdout(&again).contains("exists"), "{}", stdout(&again));
    // Without the spec's file, the user's (empty) docker config has nothing for this registry.
    let src = std::fs::read_to_string(p.root().join("workflows/hello.py"))
        .unwrap()
        .replace(", registry_config='regcfg.json'", "");
    std::fs::write(p.root().join("workflows/hello.py"), src).unwrap();
    let home = p.parent().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let o = run(p
        .union_docker()
        .env("HOME", &home)
        .env_remove("DOCKER_CONFIG")
        .args(["build", "workflows"]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("requires authentication"),
        "{}",
        stderr(&o)
    );
}

/// FLYTE_PUSH_IMAGE_SPEC as flytekit reads it: only `true`/`1` (any case) push.
#[test]
fn flyte_push_image_spec_is_read_as_flytekit_reads_it() {
    require_docker_infra();
    for (value, pushed) in [("yes", false), ("TRUE", true)] {
        let p = image_project(&format!(
            "registry='localhost:30000', commands=['echo {}']",
            unique("push")
        ));
        let o = run(p
            .union_docker()
            .env("FLYTE_PUSH_IMAGE_SPEC", value)
            .args(["build", "workflows"]));
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        assert_eq!(
            out.contains("built and pushed"),
            pushed,
            "FLYTE_PUSH_IMAGE_SPEC={value}: {out}"
        );
    }
}
