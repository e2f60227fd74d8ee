//! The warm interpreter (on by default outside CI): after a first command, later ones are served
//! by a forked child of a server that imported flytekit once, with the same output, exit codes and
//! Ctrl-C behaviour; never from a stale installation; several at a time.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::*;

/// Each test gets its own server directory (TMPDIR) so that `union warm stop` in one test cannot
/// touch another's servers; the directory also makes the environment, hence the server, distinct.
fn server_dir(marker: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("union-warm-test-{}-{marker}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A union command with the default setting (no UNION_WARM, no CI), short-lived servers, and a
/// per-test server directory.
fn warm(marker: &str) -> std::process::Command {
    let mut c = union();
    c.env_remove("UNION_WARM")
        .env_remove("CI")
        .env("UNION_WARM_DEBUG", "1")
        .env("UNION_WARM_IDLE_SECS", "30")
        .env("TMPDIR", server_dir(marker));
    c
}

fn served_warm(o: &std::process::Output) -> bool {
    stderr(o).contains("served by the warm interpreter")
}

/// Run until a warm server answers (the first run starts it), then return a warm run's output.
/// A cold run returns once the server it starts has described itself, but the server then
/// imports flytekit before it serves: runs before that are cold, and correct.
fn until_warm_with(
    make: impl Fn() -> std::process::Command,
    args: &[&str],
) -> std::process::Output {
    let mut last = None;
    wait_until("a warm interpreter to serve", LONG, || {
        let o = run(make().args(args));
        let warm = served_warm(&o);
        last = Some(o);
        warm
    });
    last.unwrap()
}

/// Generous: it bounds a hang on a busy machine, it never decides a result.
const LONG: Duration = Duration::from_secs(300);

fn until_warm(marker: &str, args: &[&str]) -> std::process::Output {
    until_warm_with(|| warm(marker), args)
}

fn hello_args() -> Vec<String> {
    vec![
        "run".into(),
        fixture("hello/workflows/hello.py"),
        "hello_world_wf".into(),
        "--name".into(),
        "Alice".into(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Stop this test's servers (so that none outlives the test run) and wait until they are gone.
/// A cold run returns only once the server it started is described, so `warm stop` reaches it.
fn stop(marker: &str) {
    let o = run(warm(marker).args(["warm", "stop"]));
    assert!(o.status.success(), "{}", stderr(&o));
    wait_until("the test's servers to exit", LONG, || {
        stdout(&run(warm(marker).args(["warm", "status"]))).is_empty()
    });
    let _ = std::fs::remove_dir_all(server_dir(marker));
}

#[test]
fn warm_run_prints_the_same_result() {
    let o = until_warm(
        "same-result",
        &[
            "run",
            &fixture("hello/workflows/hello.py"),
            "hello_world_wf",
            "--name",
            "Alice",
        ],
    );
    assert!(o.status.success());
    assert_eq!(stdout(&o), "Hello, Alice!\n");
    let o = run(warm("same-result").args([
        "run",
        &fixture("typed/workflows/calc.py"),
        "calc_wf",
        "--xs",
        "[1,2,3]",
    ]));
    assert!(stderr(&o).contains("served by the warm interpreter"));
    assert_eq!(
        stdout(&o),
        stdout(&run(union().args([
            "run",
            &fixture("typed/workflows/calc.py"),
            "calc_wf",
            "--xs",
            "[1,2,3]"
        ])))
    );
    stop("same-result");
}

#[test]
fn warm_errors_keep_their_exit_codes() {
    let o = until_warm(
        "exit-codes",
        &[
            "run",
            &fixture("errors/raises.py"),
            "validate_wf",
            "--n",
            "-3",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("n must be >= 0, got -3"));
    let o = run(warm("exit-codes").args([
        "run",
        &fixture("errors/raises.py"),
        "validate_wf",
        "--n",
        "abc",
    ]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("served by the warm interpreter"));
    assert!(stderr(&o).contains("invalid value for --n (int)"));
    stop("exit-codes");
}

#[test]
fn warm_ctrl_c_stops_with_130() {
    until_warm(
        "ctrl-c",
        &[
            "run",
            &fixture("errors/slow.py"),
            "sleepy",
            "--seconds",
            "0",
        ],
    );
    let mut child = warm("ctrl-c")
        .args([
            "run",
            &fixture("errors/slow.py"),
            "sleepy",
            "--seconds",
            "3600",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let seen = wait_for_stderr(&mut child, "sleeping");
    assert!(seen.contains("served by the warm interpreter"), "{seen}");
    signal(&child, libc::SIGINT);
    assert_eq!(wait_exit(&mut child, LONG).code(), Some(130));
    stop("ctrl-c");
}

#[test]
fn off_in_ci_and_with_union_warm_0() {
    for (marker, key, value) in [("ci", "CI", "true"), ("off", "UNION_WARM", "0")] {
        for _ in 0..3 {
            let o = run(warm(marker).env(key, value).args(strs(&hello_args())));
            assert!(o.status.success(), "{}", stderr(&o));
            assert_eq!(stdout(&o), "Hello, Alice!\n");
            assert!(!served_warm(&o), "{key}={value} must run cold");
        }
        // A server a run started would be listed by now: a cold run returns once it is described.
        let o = run(warm(marker).env(key, value).args(["warm", "status"]));
        assert!(o.status.success());
        assert_eq!(
            stdout(&o),
            "",
            "no server may have been started with {key}={value}"
        );
        stop(marker);
    }
}

#[test]
fn status_lists_and_stop_stops_the_servers() {
    until_warm("status", &strs(&hello_args()));
    let o = run(warm("status").args(["warm", "status"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let listing = stdout(&o);
    let line = listing
        .lines()
        .find(|l| l.contains(&repo().display().to_string()))
        .unwrap_or_else(|| panic!("the server for the repository is not listed:\n{listing}"));
    assert!(line.contains(&venv().display().to_string()), "{line}");
    assert!(
        line.contains("1.16.31"),
        "flytekit's version is shown: {line}"
    );
    let pid: i32 = line.split_whitespace().next().unwrap().parse().unwrap();

    let o = run(warm("status").args(["warm", "stop"]));
    assert!(o.status.success());
    assert!(
        stderr(&o).contains("Stopped 1 warm interpreter."),
        "{}",
        stderr(&o)
    );
    let started = Instant::now();
    // SAFETY: kill(pid, 0) only checks whether the process still exists.
    while unsafe { libc::kill(pid, 0) } == 0 {
        // A zombie (not yet reaped by its parent) still answers kill(0); it has stopped running.
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if state.split_whitespace().nth(2) == Some("Z") {
            break;
        }
        assert!(started.elapsed() < LONG, "server {pid} did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = run(warm("status").args(["warm", "status"]));
    assert_eq!(stdout(&o), "");
    // The next command runs cold (and starts a new server).
    let o = run(warm("status").args(strs(&hello_args())));
    assert_eq!(stdout(&o), "Hello, Alice!\n");
    assert!(!served_warm(&o));
    stop("status");
}

#[test]
fn a_changed_installation_is_never_served_from_memory() {
    // sitecustomize.py on PYTHONPATH is imported when the interpreter starts, like any installed
    // module: editing it must retire the server that has the old one in memory.
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("sitecustomize.py");
    std::fs::write(&site, "import os\nos.environ['UNION_TEST_SITE'] = 'one'\n").unwrap();
    let make = || {
        let mut c = warm("stale");
        c.env("PYTHONPATH", dir.path());
        c
    };
    let o = until_warm_with(make, &strs(&hello_args()));
    assert_eq!(stdout(&o), "Hello, Alice!\n");

    std::fs::write(
        &site,
        "import os\nos.environ['UNION_TEST_SITE'] = 'two, changed'\n",
    )
    .unwrap();
    let o = run(make().args(strs(&hello_args())));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Hello, Alice!\n");
    assert!(
        !served_warm(&o),
        "a server whose loaded files changed must not serve: {}",
        stderr(&o)
    );
    // A fresh server (started by that cold run) serves the following commands again.
    let o = until_warm_with(make, &strs(&hello_args()));
    assert_eq!(stdout(&o), "Hello, Alice!\n");
    stop("stale");
}

#[test]
fn commands_are_served_concurrently() {
    let slow = [
        "run".to_string(),
        fixture("errors/slow.py"),
        "sleepy".into(),
        "--seconds".into(),
    ];
    let mut args = slow.to_vec();
    args.push("0".into());
    until_warm("concurrent", &strs(&args));
    let mut long = slow.to_vec();
    long.push("3600".into());
    let mut child = warm("concurrent")
        .args(strs(&long))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_stderr(&mut child, "sleeping");
    // While that command sleeps (for an hour) in one child, another command is served by
    // another and finishes: it did not wait for the first.
    let o = run(warm("concurrent").args(strs(&hello_args())));
    assert!(served_warm(&o), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Hello, Alice!\n");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first command is still sleeping"
    );
    signal(&child, libc::SIGINT);
    assert_eq!(wait_exit(&mut child, LONG).code(), Some(130));
    stop("concurrent");
}

#[test]
fn register_is_served_warm_with_the_same_result() {
    // The registration path (discovery, serialization in parallel worker processes, RPCs) from a
    // warm child gives what a cold run gives.
    let sb = Sandbox::start();
    let cfg = sb.config_file();
    let pkg = |c: &mut std::process::Command, out: &Path| {
        c.current_dir(repo().join("python_fixtures/typed"))
            .args([
                "package",
                "workflows",
                "--force",
                "-q",
                "--image",
                TEST_BASE_IMAGE,
                "-o",
            ])
            .arg(out);
    };
    let cold_dir = tempfile::tempdir().unwrap();
    let mut cold = union();
    pkg(&mut cold, cold_dir.path());
    let o = run(&mut cold);
    assert!(o.status.success(), "{}", stderr(&o));
    let warm_dir = tempfile::tempdir().unwrap();
    until_warm_with(
        || {
            let mut c = warm("register");
            pkg(&mut c, warm_dir.path());
            c
        },
        &[],
    );
    assert_eq!(dir_files(cold_dir.path()), dir_files(warm_dir.path()));
    let o = run(warm("register")
        .current_dir(repo().join("python_fixtures/typed"))
        .args([
            "register",
            "workflows",
            "--version",
            "w1",
            "--image",
            TEST_BASE_IMAGE,
        ])
        .arg("--config")
        .arg(&cfg));
    assert!(served_warm(&o), "{}", stderr(&o));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("Registered "), "{}", stdout(&o));
    stop("register");
}

/// Read the child's stderr until `text` appears; returns what was read.
fn wait_for_stderr(child: &mut std::process::Child, text: &str) -> String {
    use std::io::Read;
    let err = child.stderr.as_mut().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while !seen.contains(text) {
        let n = err.read(&mut buf).unwrap();
        assert!(n > 0, "exited before printing {text:?}: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    seen
}

#[test]
fn no_server_when_start_up_leaves_a_python_thread_running() {
    // Forking beside another Python thread could hand the child a lock nobody releases: such an
    // interpreter never serves, and every command runs cold and correctly.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sitecustomize.py"),
        "import threading, time\nthreading.Thread(target=time.sleep, args=(3600,), daemon=True).start()\n",
    )
    .unwrap();
    let threads = || {
        let mut c = warm("threads");
        c.env("PYTHONPATH", dir.path());
        c
    };
    for _ in 0..3 {
        let o = run(threads().args(strs(&hello_args())));
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), "Hello, Alice!\n");
        assert!(!served_warm(&o));
    }
    // The servers those runs started (listed as "(starting)" while they import) find the thread
    // and leave without ever serving.
    wait_until("the servers to refuse and exit", LONG, || {
        stdout(&run(threads().args(["warm", "status"]))).is_empty()
    });
    let o = run(threads().args(strs(&hello_args())));
    assert!(!served_warm(&o), "{}", stderr(&o));
    stop("threads");
}

#[test]
fn warm_sigterm_stops_the_served_command() {
    let mut args = vec![
        "run".to_string(),
        fixture("errors/slow.py"),
        "sleepy".into(),
        "--seconds".into(),
        "0".into(),
    ];
    until_warm("sigterm", &strs(&args));
    args[4] = "3600".into();
    let mut child = warm("sigterm")
        .args(strs(&args))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_stderr(&mut child, "sleeping");
    signal(&child, libc::SIGTERM);
    // The served command got the signal too: it ends now, as a cold one would (128 + 15); had
    // it not, it would sleep for an hour.
    assert_eq!(wait_exit(&mut child, LONG).code(), Some(143));
    stop("sigterm");
}
