//! `union register` against the real sandbox, read back through the real FlyteRemote; versions,
//! idempotence, conflicts, dry runs and bad input.

use std::path::Path;

use crate::support::*;

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.file_name().unwrap() == "__pycache__" {
            continue;
        }
        if p.is_dir() {
            copy_tree(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

fn version_of(stdout: &str) -> String {
    stdout
        .split("with version ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn register_then_flyteremote_reads_everything_back() {
    let sb = Sandbox::start();
    let o = run(union().args([
        "register",
        &fixture("pkgtree/myproj"),
        "--endpoint",
        &sb.endpoint(),
    ]));
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(out.contains("Registered 8 entities"), "{out}");
    assert!(out.contains("(8 new, 0 already registered)"), "{out}");
    let version = version_of(&out);
    // The phases are reported on stderr.
    let err = stderr(&o);
    assert!(
        err.contains("Packaging code")
            && err.contains("Uploading code")
            && err.contains("Registering 8 entities"),
        "{err}"
    );

    let py = python_support(
        "fetch_entities.py",
        &[
            &sb.endpoint(),
            "flytesnacks",
            "development",
            &version,
            "task:myproj.sub.math_ops.add",
            "workflow:myproj.greet.greet_wf",
            "launch_plan:myproj.sub.math_ops.add_three",
            "launch_plan:myproj.greet.greet_wf",
        ],
    );
    let text = stdout(&py);
    assert!(py.status.success(), "{text}{}", stderr(&py));
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["name"], "myproj.sub.math_ops.add");
    assert_eq!(lines[0]["inputs"], serde_json::json!(["a", "b"]));
    let args: Vec<String> = serde_json::from_value(lines[0]["args"].clone()).unwrap();
    // The fast-execute template points at the uploaded archive.
    assert_eq!(args[0], "pyflyte-fast-execute");
    assert_eq!(args[1], "--additional-distribution");
    assert!(
        args[2].starts_with("file://") && args[2].ends_with(".tar.gz"),
        "{args:?}"
    );
    assert!(args.contains(&"pyflyte-execute".to_string()));
    assert_eq!(lines[1]["name"], "myproj.greet.greet_wf");
    assert_eq!(lines[1]["nodes"], 1);
    assert_eq!(lines[2]["workflow"], "myproj.sub.math_ops.add_wf");
    assert_eq!(lines[3]["workflow"], "myproj.greet.greet_wf");
}

#[test]
fn second_register_is_a_no_op_and_a_code_change_changes_the_version() {
    let sb = Sandbox::start();
    let proj = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("python_fixtures/pkgtree"), proj.path());
    let pkg = proj.path().join("myproj");
    let reg = || {
        run(union()
            .arg("register")
            .arg(&pkg)
            .args(["--endpoint", &sb.endpoint()]))
    };
    let dry = run(union().arg("register").arg(&pkg).args(["--dry-run"]));
    let planned = stdout(&dry)
        .split("Version: ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let first = reg();
    assert!(first.status.success());
    let v1 = version_of(&stdout(&first));
    assert_eq!(
        planned, v1,
        "the dry run announces the version the real run uses"
    );
    let second = reg();
    assert!(second.status.success());
    assert_eq!(
        version_of(&stdout(&second)),
        v1,
        "nothing changed, same version"
    );
    assert!(
        stdout(&second).contains("(0 new, 8 already registered)"),
        "{}",
        stdout(&second)
    );

    let f = pkg.join("greet.py");
    let text = std::fs::read_to_string(&f)
        .unwrap()
        .replace("hi {name}", "hello {name}");
    std::fs::write(&f, text).unwrap();
    let third = reg();
    assert!(third.status.success());
    assert_ne!(
        version_of(&stdout(&third)),
        v1,
        "a code change changes the version"
    );
    assert!(stdout(&third).contains("(8 new"), "{}", stdout(&third));
}

#[test]
fn same_version_with_different_code_names_the_entity() {
    let sb = Sandbox::start();
    let proj = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("python_fixtures/pkgtree"), proj.path());
    let pkg = proj.path().join("myproj");
    let reg = || {
        run(union().arg("register").arg(&pkg).args([
            "--endpoint",
            &sb.endpoint(),
            "--version",
            "v1",
            "--copy",
            "none",
        ]))
    };
    assert!(reg().status.success());
    let f = pkg.join("sub/math_ops.py");
    let text = std::fs::read_to_string(&f).unwrap().replace(
        "return a + b",
        "return a + b + 0\n\n\n@task\ndef extra(x: int) -> int:\n    return x",
    );
    // Change the interface of add so its spec differs.
    let text = text.replace(
        "def add(a: int, b: int) -> int:",
        "def add(a: int, b: int, c: int = 0) -> int:",
    );
    std::fs::write(&f, text).unwrap();
    let o = reg();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("task flytesnacks/development/myproj.sub.math_ops.add@v1 is already registered with different content"), "{err}");
    assert!(err.contains("hint:") && err.contains("--version"), "{err}");
}

#[test]
fn dry_run_touches_nothing() {
    // Nothing listens on this endpoint: a dry run must not need it.
    let o = run(union().args([
        "register",
        &fixture("pkgtree/myproj"),
        "--dry-run",
        "--endpoint",
        "127.0.0.1:1",
    ]));
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(
        out.contains("Dry run: nothing uploaded, nothing registered."),
        "{out}"
    );
    assert!(out.contains("Code archive: fast"), "{out}");
    assert!(out.contains("8 files"), "{out}");
    assert!(
        out.contains("task        flytesnacks/development/myproj.greet.greet@"),
        "{out}"
    );
    assert!(
        out.contains("launch plan flytesnacks/development/myproj.sub.math_ops.add_three@"),
        "{out}"
    );
}

#[test]
fn endpoint_down_names_endpoint_and_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(
        &cfg,
        "admin:\n  endpoint: dns:///127.0.0.1:1\n  insecure: true\n",
    )
    .unwrap();
    let o = run(union()
        .args(["register", &fixture("pkgtree/myproj"), "--config"])
        .arg(&cfg));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("cannot reach FlyteAdmin at 127.0.0.1:1"),
        "{err}"
    );
    assert!(
        err.contains(&cfg.display().to_string()),
        "names the config file: {err}"
    );
}

#[test]
fn tls_to_a_plaintext_server_says_so() {
    let sb = Sandbox::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(
        &cfg,
        format!(
            "admin:\n  endpoint: dns:///{}\n  insecure: false\n",
            sb.endpoint()
        ),
    )
    .unwrap();
    let o = run(union()
        .args(["register", &fixture("pkgtree/myproj"), "--config"])
        .arg(&cfg));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("does not speak TLS") && err.contains("admin.insecure: true"),
        "{err}"
    );
}

#[test]
fn plaintext_to_a_tls_server_says_so() {
    // A TLS server on loopback (openssl s_server with a throwaway self-signed certificate).
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pem");
    let crt = dir.path().join("c.pem");
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output();
    let ok = ok.expect("openssl (installed by `bash tests/setup/docker.sh`)");
    assert!(ok.status.success());
    // Port 0: s_server prints the address it bound ("ACCEPT 127.0.0.1:PORT").
    let mut server = std::process::Command::new("openssl")
        .args(["s_server", "-alpn", "h2", "-accept", "127.0.0.1:0", "-cert"])
        .arg(&crt)
        .arg("-key")
        .arg(&key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let port: u16 = {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(server.stdout.take().unwrap()).lines();
        let line = lines
            .by_ref()
            .map_while(Result::ok)
            .find(|l| l.starts_with("ACCEPT"))
            .expect("openssl s_server says where it listens");
        // Keep reading what it prints per connection, so that it never writes to a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        line.rsplit_once(':').unwrap().1.trim().parse().unwrap()
    };
    let o = run(union().args([
        "register",
        &fixture("pkgtree/myproj"),
        "--endpoint",
        &format!("127.0.0.1:{port}"),
        "--insecure",
    ]));
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("cannot reach FlyteAdmin") || err.contains("failed"),
        "{err}"
    );
    assert!(err.contains("may require TLS"), "{err}");
}

#[test]
fn import_error_in_one_module_registers_nothing() {
    let sb = Sandbox::start();
    let proj = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("python_fixtures/pkgtree"), proj.path());
    std::fs::write(
        proj.path().join("myproj/sub/broken.py"),
        "import definitely_not_installed_module\n",
    )
    .unwrap();
    let o = run(union()
        .arg("register")
        .arg(proj.path().join("myproj"))
        .args(["--endpoint", &sb.endpoint()]));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("importing module `myproj.sub.broken` failed"),
        "{err}"
    );
    let py = python_support(
        "fetch_entities.py",
        &[
            &sb.endpoint(),
            "flytesnacks",
            "development",
            "--count-tasks",
        ],
    );
    assert!(py.status.success(), "{}", stderr(&py));
    assert_eq!(stdout(&py).trim(), r#"{"task_names": []}"#);
}

#[test]
fn two_entities_with_the_same_name_are_refused() {
    let proj = tempfile::tempdir().unwrap();
    let pkg = proj.path().join("dup");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("__init__.py"), "").unwrap();
    // A second function with the same name in the same module: both tasks exist, one name.
    std::fs::write(
        pkg.join("wf.py"),
        "from flytekit import task\n\n@task\ndef t(x: int) -> int:\n    return x\n\nfirst = t\n\n@task\ndef t(x: int) -> str:\n    return str(x)\n",
    )
    .unwrap();
    let o = run(union().arg("register").arg(&pkg).args(["--dry-run"]));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("two tasks are named `dup.wf.t`"), "{err}");
    assert!(
        err.contains("dup.wf.first") && err.contains("rename"),
        "{err}"
    );
}

#[test]
fn pyflyte_register_works_against_the_sandbox() {
    let sb = Sandbox::start();
    let cfg = sb.config_file();
    let o = std::process::Command::new(venv().join("bin/pyflyte"))
        .current_dir(repo().join("python_fixtures/pkgtree"))
        .env("VIRTUAL_ENV", venv())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .arg("-c")
        .arg(&cfg)
        .args([
            "register",
            "--version",
            "py1",
            "--image",
            "localhost:30000/union-test/default:1",
            "myproj",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    // And what pyflyte registered is readable through FlyteRemote, like ours.
    let py = python_support(
        "fetch_entities.py",
        &[
            &sb.endpoint(),
            "flytesnacks",
            "development",
            "py1",
            "task:myproj.greet.greet",
        ],
    );
    assert!(py.status.success(), "{}", stderr(&py));
    assert!(stdout(&py).contains("\"name\": \"myproj.greet.greet\""));
}

#[test]
fn activate_launchplans_makes_them_active() {
    let sb = Sandbox::start();
    let o = run(union().args([
        "register",
        &fixture("pkgtree/myproj"),
        "--endpoint",
        &sb.endpoint(),
        "--activate-launchplans",
    ]));
    assert!(o.status.success());
    let version = version_of(&stdout(&o));
    assert!(stderr(&o).contains("3 activated"), "{}", stderr(&o));
    let py = python_support(
        "fetch_entities.py",
        &[
            &sb.endpoint(),
            "flytesnacks",
            "development",
            "--active-lp",
            "myproj.sub.math_ops.add_three",
        ],
    );
    assert!(py.status.success(), "{}", stderr(&py));
    assert_eq!(stdout(&py).trim(), format!(r#"{{"active": "{version}"}}"#));
}

#[test]
fn skip_errors_registers_the_rest() {
    let sb = Sandbox::start();
    let proj = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("python_fixtures/pkgtree"), proj.path());
    let pkg = proj.path().join("myproj");
    let reg = |extra: &[&str]| {
        run(union()
            .arg("register")
            .arg(&pkg)
            .args([
                "--endpoint",
                &sb.endpoint(),
                "--version",
                "v1",
                "--copy",
                "none",
            ])
            .args(extra))
    };
    // Register only the leaf task first, then change it: the second run conflicts on that task only.
    let only_leaf = proj.path().join("myproj/sub/deep/leaf.py");
    let o = run(union().arg("register").arg(&only_leaf).args([
        "--endpoint",
        &sb.endpoint(),
        "--version",
        "v1",
        "--copy",
        "none",
    ]));
    assert!(o.status.success());
    std::fs::write(&only_leaf, "from flytekit import task\n\n\n@task\ndef leaf(x: float, y: float = 1.0) -> float:\n    return x / y\n").unwrap();
    let without = reg(&[]);
    assert_eq!(without.status.code(), Some(1));
    assert!(
        stderr(&without)
            .contains("myproj.sub.deep.leaf.leaf@v1 is already registered with different content"),
        "{}",
        stderr(&without)
    );
    let with = reg(&["--skip-errors"]);
    assert_eq!(
        with.status.code(),
        Some(1),
        "a skipped failure still fails the command"
    );
    assert!(stdout(&with).contains("1 failed"), "{}", stdout(&with));
    let py = python_support(
        "fetch_entities.py",
        &[
            &sb.endpoint(),
            "flytesnacks",
            "development",
            "--count-tasks",
        ],
    );
    let names = stdout(&py);
    assert!(
        names.contains("myproj.greet.greet") && names.contains("myproj.sub.math_ops.add"),
        "{names}"
    );
}
