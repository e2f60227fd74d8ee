//! The opt-in warm interpreter (UNION_WARM=1): the second command is served by a forked child of
//! a server that imported flytekit once, with the same output, exit codes and Ctrl-C behaviour.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// A union command with the warm interpreter on, short-lived servers, and a per-test marker so
/// that each test gets its own server (the environment is part of the server's key).
fn warm(marker: &str) -> std::process::Command {
    let mut c = union();
    c.env("UNION_WARM", "1")
        .env("UNION_WARM_DEBUG", "1")
        .env("UNION_WARM_IDLE_SECS", "30")
        .env("UNION_TEST_MARKER", marker);
    c
}

/// Run until a warm server answers (the first run starts it), then return a warm run's output.
fn until_warm(marker: &str, args: &[&str]) -> std::process::Output {
    let started = Instant::now();
    loop {
        let o = run(warm(marker).args(args));
        if stderr(&o).contains("served by the warm interpreter") {
            return o;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no warm interpreter came up"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
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
            "60",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Read;
    let mut err = child.stderr.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while !seen.contains("sleeping") {
        let n = err.read(&mut buf).unwrap();
        assert!(n > 0, "exited before the task started: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("served by the warm interpreter"), "{seen}");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(child.wait().unwrap().code(), Some(130));
}
