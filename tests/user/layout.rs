//! Every command the docs show, run the way users run it: a fixture project copied into its own
//! directory outside this repository (some made git repositories), that directory as the working
//! directory, relative paths, the real binary. A green suite once hid that `union run --remote`
//! failed from any project's root: these tests are the guard.

use std::path::Path;
use std::time::Duration;

use crate::support::*;

/// Generous: it bounds a hang on a busy machine, it never decides a result.
const LONG: Duration = Duration::from_secs(600);

/// The members of a .tar.gz, as `tar tzf` lists them.
fn archive_members(path: &Path) -> Vec<String> {
    let o = std::process::Command::new("tar")
        .arg("tzf")
        .arg(path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let mut v: Vec<String> = stdout(&o)
        .lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .filter(|l| !l.is_empty() && !l.ends_with('/'))
        .collect();
    v.sort();
    v
}

/// The code archives a sandbox received (its blob store keeps uploads as files).
fn uploaded_archives(sb: &Sandbox) -> Vec<std::path::PathBuf> {
    fn walk(d: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.to_string_lossy().ends_with(".tar.gz") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&sb.data_dir().join("blobs"), &mut out);
    out
}

fn hello_run_args() -> [&'static str; 5] {
    [
        "run",
        "workflows/hello.py",
        "hello_world_wf",
        "--name",
        "Alice",
    ]
}

#[test]
fn run_from_the_project_root() {
    let p = Project::new("hello");
    let o = run(p.union().args(hello_run_args()));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Hello, Alice!\n");
    // What the real pyflyte prints from the same directory.
    let cfg = p.parent().join("config.yaml");
    std::fs::write(
        &cfg,
        "admin:\n  endpoint: dns:///localhost:30080\n  insecure: true\n",
    )
    .unwrap();
    let py = run(p.pyflyte(&cfg).args(hello_run_args()));
    assert!(py.status.success(), "{}", stderr(&py));
    assert!(stdout(&py).ends_with("Hello, Alice!\n"), "{}", stdout(&py));
}

#[test]
fn list_from_the_project_root() {
    let p = Project::git("hello");
    let o = run(p.union().args(["list", "workflows"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("workflows.hello.say_hello"), "{out}");
    assert!(out.contains("workflows.hello.hello_world_wf"), "{out}");
    assert!(
        out.contains(&format!(
            "Project root: {}",
            p.root().canonicalize().unwrap().display()
        )),
        "{out}"
    );
}

/// A module of the user's may be named like anything of union's: it is theirs, not ours.
#[test]
fn a_user_module_named_union_bridge_is_the_users() {
    let p = Project::new("hello");
    std::fs::write(
        p.root().join("union_bridge.py"),
        "from flytekit import task, workflow\n\n@task\ndef shout(s: str) -> str:\n    return s.upper() + '!'\n\n@workflow\ndef shout_wf(s: str = 'hi') -> str:\n    return shout(s=s)\n",
    )
    .unwrap();
    let o = run(p
        .union()
        .args(["run", "union_bridge.py", "shout_wf", "--s", "hey"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "HEY!\n");
    // And --copy auto packs it as the user's file.
    let out = p.parent().join("pkg");
    let o = run(p
        .union()
        .args(["package", "union_bridge.py", "--copy", "auto", "-q", "-o"])
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let archive = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .expect("a code archive");
    assert_eq!(archive_members(&archive), ["union_bridge.py"]);
}

#[test]
fn package_from_the_project_root_equals_pyflyte_package() {
    for p in [Project::new("hello"), Project::git("hello")] {
        let theirs = p.parent().join("theirs");
        let ours = p.parent().join("ours");
        pyflyte_package_in(&p, "workflows", &theirs);
        let o = run(p.union().args([
            "package",
            "workflows",
            "--image",
            TEST_BASE_IMAGE,
            "-o",
            "../ours",
        ]));
        assert!(o.status.success(), "{}", stderr(&o));
        compare_packages(&theirs, &ours);
    }
}

#[test]
fn build_from_the_project_root() {
    require_docker_infra();
    let p = Project::git("hello");
    let o = run(p.union_docker().args(["build", "workflows"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let line = stdout(&o);
    // No registry in the example and no backend to default it: a local image.
    assert!(line.starts_with("say-hello-image:"), "{line}");
    // The same tag as `union build --dry-run` shows, and as flytekit computes.
    let dry = run(p.union_docker().args(["build", "--dry-run", "workflows"]));
    assert!(dry.status.success(), "{}", stderr(&dry));
    let image = line.split_whitespace().next().unwrap();
    assert!(
        stdout(&dry).contains(&format!("image: {image}")),
        "{}",
        stdout(&dry)
    );
}

/// `union register` with each `--copy`, from the project's root, in a plain directory and in a
/// git repository: registered entities readable through FlyteRemote, the uploaded archive holding
/// exactly the project's files.
#[test]
fn register_from_the_project_root_with_each_copy_mode() {
    require_docker_infra();
    let sb = Sandbox::start();
    for (n, (project, copy)) in [
        (Project::new("hello"), "auto"),
        (Project::git("hello"), "auto"),
        (Project::git("hello"), "all"),
        (Project::new("hello"), "none"),
    ]
    .into_iter()
    .enumerate()
    {
        let version = format!("user-layout-{n}");
        let before = uploaded_archives(&sb);
        let o = run(project.union_docker().args([
            "register",
            "workflows",
            "--copy",
            copy,
            "--version",
            &version,
            "--endpoint",
            &sb.endpoint(),
        ]));
        assert!(o.status.success(), "--copy {copy}: {}", stderr(&o));
        assert!(
            stdout(&o).starts_with("Registered 3 entities"),
            "{}",
            stdout(&o)
        );
        let fetched = python_support(
            "fetch_entities.py",
            &[
                &sb.endpoint(),
                "flytesnacks",
                "development",
                &version,
                "workflow:workflows.hello.hello_world_wf",
                "task:workflows.hello.say_hello",
            ],
        );
        assert!(fetched.status.success(), "{}", stderr(&fetched));
        assert!(
            stdout(&fetched).contains("workflows.hello.say_hello"),
            "{}",
            stdout(&fetched)
        );
        let new: Vec<_> = uploaded_archives(&sb)
            .into_iter()
            .filter(|a| !before.contains(a))
            .collect();
        match copy {
            "none" => assert!(new.is_empty(), "--copy none uploads nothing: {new:?}"),
            _ => {
                // Content-addressed: an identical archive is not uploaded twice.
                if let Some(archive) = new.first() {
                    let members = archive_members(archive);
                    assert!(
                        members.contains(&"workflows/hello.py".to_string()),
                        "{members:?}"
                    );
                    assert!(
                        members.iter().all(|m| !m.contains("union_bridge")),
                        "nothing of union's in the user's archive: {members:?}"
                    );
                    if copy == "auto" {
                        assert_eq!(
                            members,
                            ["workflows/__init__.py", "workflows/hello.py"],
                            "--copy auto: the loaded modules"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn run_remote_wait_and_get_execution_from_the_project_root() {
    require_docker_infra();
    let sb = Sandbox::start();
    let p = Project::git("hello");
    let o = run(p.union_docker().args([
        "run",
        "--remote",
        "--wait",
        "--endpoint",
        &sb.endpoint(),
        "--name",
        "from-project-root",
        "workflows/hello.py",
        "hello_world_wf",
        "--name",
        "Alice",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Hello, Alice!\n");
    let g = run(p.union().args([
        "get",
        "execution",
        "from-project-root",
        "--endpoint",
        &sb.endpoint(),
    ]));
    assert!(g.status.success(), "{}", stderr(&g));
    let text = stdout(&g);
    assert!(text.contains("Phase:      SUCCEEDED"), "{text}");
    assert!(
        text.contains("Output:     o0 = \"Hello, Alice!\""),
        "{text}"
    );
}

/// `union sandbox start` as the docs show it: no flags but the port, its data in the user's home.
#[test]
fn sandbox_start_with_its_defaults_then_register_from_the_project() {
    require_docker_infra();
    let p = Project::new("hello");
    let home = p.parent().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_union"))
        .current_dir(p.root())
        .env("HOME", &home)
        .env_remove("UNION_SANDBOX_DIR")
        .env_remove("UNION_SANDBOX_PORT")
        .args(["sandbox", "start", "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let line = {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        line
    };
    let port = listening_port(&line).unwrap_or_else(|| panic!("{line}"));
    assert!(
        line.contains(&home.join(".union/sandbox").display().to_string()),
        "data in ~/.union/sandbox: {line}"
    );
    let o = run(p.union_docker().args([
        "register",
        "workflows",
        "--version",
        "v1",
        "--copy",
        "auto",
        "--endpoint",
        &format!("127.0.0.1:{port}"),
    ]));
    signal(&child, libc::SIGINT);
    let status = wait_exit(&mut child, LONG);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        status.success(),
        "Ctrl-C stops the sandbox cleanly: {status:?}"
    );
    assert!(home.join(".union/sandbox/sandbox.db").exists());
}

/// A project whose directory name is not UTF-8 works as it does with pyflyte.
#[test]
fn a_project_path_that_is_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let p = Project::named("hello", std::ffi::OsStr::from_bytes(b"caf\xe9-project"));
    let o = run(p.union().args(hello_run_args()));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Hello, Alice!\n");
    // A file whose name is not UTF-8, too.
    let odd = std::ffi::OsStr::from_bytes(b"workflows/h\xe9llo.py");
    std::fs::copy(p.root().join("workflows/hello.py"), p.root().join(odd)).unwrap();
    let o = run(p
        .union()
        .arg("run")
        .arg(odd)
        .args(["hello_world_wf", "--name", "Bob"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Hello, Bob!\n");
    // pyflyte run works there (the real one, from the same directory)...
    let cfg = p.parent().join("config.yaml");
    std::fs::write(
        &cfg,
        "admin:\n  endpoint: dns:///localhost:30080\n  insecure: true\n",
    )
    .unwrap();
    let py = run(p.pyflyte(&cfg).args(hello_run_args()));
    assert!(py.status.success(), "{}", stderr(&py));
    // ...and union's package and --copy auto too (the loaded modules' paths travel as bytes),
    // where `pyflyte package` stops with a UnicodeEncodeError.
    let ours = p.parent().join("ours");
    let o = run(p
        .union()
        .args([
            "package",
            "workflows",
            "--copy",
            "auto",
            "--image",
            TEST_BASE_IMAGE,
            "-o",
        ])
        .arg(&ours));
    assert!(o.status.success(), "{}", stderr(&o));
    let archive = std::fs::read_dir(&ours)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .expect("a code archive");
    assert_eq!(
        archive_members(&archive),
        ["workflows/__init__.py", "workflows/hello.py"]
    );
}

/// Flyte's own examples (flytesnacks `advanced_composition`: dynamic, eager, map, conditional,
/// gate nodes...) packaged from their project root decode equal to `pyflyte package`'s.
#[test]
fn flytesnacks_advanced_composition_packages_like_pyflyte() {
    let p = Project::new("flytesnacks/advanced_composition");
    let theirs = p.parent().join("theirs");
    let ours = p.parent().join("ours");
    pyflyte_package_in(&p, "advanced_composition", &theirs);
    let o = run(p.union().args([
        "package",
        "advanced_composition",
        "--image",
        TEST_BASE_IMAGE,
        "-o",
        "../ours",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    compare_packages(&theirs, &ours);
}

/// `pyflyte --pkgs PKG package` (the real one) from the project's root, unpacked into `out`.
fn pyflyte_package_in(p: &Project, pkg: &str, out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    let cfg = p.parent().join("pyflyte-config.yaml");
    std::fs::write(
        &cfg,
        "admin:\n  endpoint: dns:///localhost:30080\n  insecure: true\n",
    )
    .unwrap();
    let tgz = out.join("pkg.tgz");
    let o = run(p
        .pyflyte(&cfg)
        // No Docker engine: flytekit must not build the fixtures' images while packaging.
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args([
            "--pkgs",
            pkg,
            "package",
            "--copy",
            "all",
            "--image",
            TEST_BASE_IMAGE,
            "-o",
        ])
        .arg(&tgz));
    assert!(o.status.success(), "pyflyte package failed: {}", stderr(&o));
    let ok = std::process::Command::new("tar")
        .arg("xzf")
        .arg(&tgz)
        .arg("-C")
        .arg(out)
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::remove_file(&tgz).unwrap();
}

/// Both directories hold the same entities, decoded message by message, and the same code
/// archive (both must have one: two missing archives are not "the same").
fn compare_packages(theirs: &Path, ours: &Path) {
    let cmp = python_support("compare_packages.py", &[theirs, ours]);
    let report = stdout(&cmp);
    assert!(
        cmp.status.success(),
        "specs differ from pyflyte's:\n{report}{}",
        stderr(&cmp)
    );
    let archive = |d: &Path| {
        std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with("fast") && n.ends_with(".tar.gz"))
    };
    let (a, b) = (archive(theirs), archive(ours));
    assert!(
        a.is_some(),
        "pyflyte wrote no code archive in {}",
        theirs.display()
    );
    assert!(
        b.is_some(),
        "union wrote no code archive in {}",
        ours.display()
    );
    assert_eq!(a, b, "the same archive (its name is the content digest)");
}
