//! Ctrl-C (SIGINT) and SIGTERM at every phase of `union register` and `union run --remote
//! --wait`, from a user's project: the command stops promptly with 128 + the signal, says what it
//! leaves behind, and leaves nothing half-registered (no entity is registered before its image
//! exists; a registration cut short says how far it got).
//!
//! Phases that are slow by nature are made slow for real (a module that sleeps on import, a build
//! step that sleeps, a server that never answers); the quick ones are held with the test hook
//! `UNION_TEST_PAUSE_AT=<point>`, which makes the command wait at that point, so the signal
//! arrives exactly there instead of at a guessed moment.

use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::support::*;

/// Generous: it bounds a hang on a busy machine, it never decides a result.
const LONG: Duration = Duration::from_secs(600);

const SIGNALS: [(i32, i32, &str); 2] = [
    (libc::SIGINT, 130, "interrupted"),
    (libc::SIGTERM, 143, "terminated"),
];

/// Start `cmd`, wait until its stderr shows `ready`, send `sig`; its exit status and stderr.
fn interrupt_when(mut cmd: Command, ready: &str, sig: i32) -> (ExitStatus, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start union");
    let err = Captured::stderr_of(&mut child);
    err.wait_for(ready, LONG);
    signal(&child, sig);
    let status = wait_exit(&mut child, LONG);
    (status, err.all())
}

/// Tasks registered in the sandbox (through the real FlyteRemote).
fn registered_tasks(sb: &Sandbox) -> String {
    let o = python_support(
        "fetch_entities.py",
        &[
            &sb.endpoint(),
            "flytesnacks",
            "development",
            "--count-tasks",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

const NOTHING: &str = r#"{"task_names": []}"#;

fn register(p: &Project, sb_endpoint: &str) -> Command {
    let mut c = p.union_docker();
    c.args(["register", "workflows", "--endpoint", sb_endpoint]);
    c
}

/// Each phase of `union register` that runs before anything is registered: held there, then
/// signalled; exit 130/143, "nothing was registered", and nothing is.
#[test]
fn register_stops_at_every_phase_before_registering() {
    require_docker_infra();
    let sb = Sandbox::start();
    let p = Project::git("hello");
    for point in [
        "connecting",
        "packaging",
        "checking-images",
        "uploading",
        "serializing",
    ] {
        for (sig, code, word) in SIGNALS {
            let mut cmd = register(&p, &sb.endpoint());
            cmd.env("UNION_TEST_PAUSE_AT", point);
            let (status, err) = interrupt_when(cmd, &format!("paused at {point}"), sig);
            assert_eq!(status.code(), Some(code), "{point}: {err}");
            assert!(
                err.contains(&format!("error: {word}: nothing was registered")),
                "{point}: {err}"
            );
            assert!(
                !err.contains("Traceback") && !err.contains("bug in union"),
                "{err}"
            );
        }
    }
    assert_eq!(registered_tasks(&sb).trim(), NOTHING);
}

/// Importing the user's code (a module that takes an hour to import).
#[test]
fn register_stops_while_importing_the_users_code() {
    let sb = Sandbox::start();
    let p = Project::new("hello");
    std::fs::write(
        p.root().join("workflows/slow_import.py"),
        "import time\nprint('importing slowly', flush=True)\ntime.sleep(3600)\n",
    )
    .unwrap();
    for (sig, code, word) in SIGNALS {
        let (status, err) = interrupt_when(register(&p, &sb.endpoint()), "importing slowly", sig);
        assert_eq!(status.code(), Some(code), "{err}");
        assert!(
            err.contains(&format!("error: {word}: nothing was registered")),
            "{err}"
        );
        assert!(
            !err.contains("Traceback") && !err.contains("bug in union"),
            "{err}"
        );
    }
    assert_eq!(registered_tasks(&sb).trim(), NOTHING);
}

/// A backend that accepts the connection and never answers.
#[test]
fn register_stops_while_connecting_to_a_silent_backend() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = silent.local_addr().unwrap().to_string();
    let p = Project::new("hello");
    for (sig, code, word) in SIGNALS {
        let mut child = register(&p, &endpoint)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = Captured::stderr_of(&mut child);
        // union connected (and waits for an answer that never comes).
        let (_conn, _) = silent.accept().unwrap();
        signal(&child, sig);
        let status = wait_exit(&mut child, LONG);
        let text = err.all();
        assert_eq!(status.code(), Some(code), "{text}");
        assert!(
            text.contains(&format!("error: {word}: nothing was registered")),
            "{text}"
        );
    }
}

/// An image build in progress (a step that sleeps for an hour): the command stops, and so does
/// the build on the engine.
#[test]
fn register_stops_while_building_an_image_and_the_build_stops_too() {
    require_docker_infra();
    let sb = Sandbox::start();
    let p = Project::new("hello");
    let wf = p.root().join("workflows/hello.py");
    let original = std::fs::read_to_string(&wf).unwrap();
    let anchor = "    name=\"say-hello-image\",\n";
    assert!(
        original.contains(anchor),
        "the hello fixture changed: {original}"
    );
    for (sig, code, word) in SIGNALS {
        // A step of its own each time: BuildKit could attach a new build to the step of the one
        // just cancelled, whose start it would not print again.
        let marker = format!("union-interrupt-build-{}-{}", std::process::id(), nanos());
        let src = original.replace(
            anchor,
            &format!("{anchor}    registry=\"localhost:30000\",\n    commands=[\"sleep 3600 # {marker}\"],\n"),
        );
        std::fs::write(&wf, src).unwrap();
        let mut cmd = register(&p, &sb.endpoint());
        cmd.arg("--verbose");
        let (status, err) = interrupt_when(cmd, &marker, sig);
        assert_eq!(status.code(), Some(code), "{err}");
        assert!(
            err.contains(&format!("error: {word}: nothing was registered")),
            "{err}"
        );
        // The engine cancels the build when its client goes away.
        wait_until("the build's step to stop", LONG, || {
            !process_running(&marker)
        });
    }
    assert_eq!(registered_tasks(&sb).trim(), NOTHING);
}

/// Registering: the command stops sending, says how many entities it registered, exits 130/143.
#[test]
fn register_says_how_far_it_got_when_stopped_while_registering() {
    require_docker_infra();
    let sb = Sandbox::start();
    let p = Project::git("hello");
    for (sig, code, word) in SIGNALS {
        let mut cmd = register(&p, &sb.endpoint());
        cmd.env("UNION_TEST_PAUSE_AT", "registering");
        let (status, err) = interrupt_when(cmd, "paused at registering", sig);
        assert_eq!(status.code(), Some(code), "{err}");
        assert!(
            err.contains(&format!(
                "error: {word} while registering: 0 of 3 entities were registered"
            )),
            "{err}"
        );
        assert!(err.contains("run the same command again"), "{err}");
    }
    assert_eq!(registered_tasks(&sb).trim(), NOTHING);
    // And the command, run again, registers everything.
    let o = run(&mut register(&p, &sb.endpoint()));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(registered_tasks(&sb).contains("workflows.hello.say_hello"));
}

/// The same through the warm interpreter (on by default for users): the signal reaches the
/// served command, which says the same.
#[test]
fn a_served_command_stops_the_same_way() {
    require_docker_infra();
    let sb = Sandbox::start();
    let p = Project::git("hello");
    let tmp = p.parent().join("warm");
    std::fs::create_dir_all(&tmp).unwrap();
    let with_warm_env = |mut c: Command| {
        c.env_remove("UNION_WARM")
            .env_remove("CI")
            .env("UNION_WARM_DEBUG", "1")
            .env("UNION_WARM_IDLE_SECS", "60")
            .env("TMPDIR", &tmp)
            .env("UNION_TEST_PAUSE_AT", "registering");
        c
    };
    let warm = || with_warm_env(register(&p, &sb.endpoint()));
    // Until a warm server serves: each cold run is stopped the same way meanwhile.
    let mut served = false;
    wait_until("a warm interpreter to serve", LONG, || {
        let (status, err) = interrupt_when(warm(), "paused at registering", libc::SIGINT);
        assert_eq!(status.code(), Some(130), "{err}");
        assert!(
            err.contains("error: interrupted while registering: 0 of 3 entities were registered"),
            "{err}"
        );
        served = err.contains("served by the warm interpreter");
        served
    });
    assert!(served);
    let manage = |args: &[&str]| {
        let mut c = with_warm_env(p.union_docker());
        c.args(args);
        run(&mut c)
    };
    let stop = manage(&["warm", "stop"]);
    assert!(stop.status.success(), "{}", stderr(&stop));
    wait_until("the warm server to exit", LONG, || {
        stdout(&manage(&["warm", "status"])).is_empty()
    });
    assert_eq!(registered_tasks(&sb).trim(), NOTHING);
}

fn run_remote(p: &Project, endpoint: &str) -> Command {
    let mut c = p.union_docker();
    c.args(["run", "--remote", "--wait", "--endpoint", endpoint]);
    c
}

/// `run --remote --wait` before the execution exists: nothing registered before images, and no
/// execution after registration.
#[test]
fn run_remote_stops_before_the_execution_starts() {
    require_docker_infra();
    let sb = Sandbox::start();
    let p = Project::new("hello");
    for (sig, code, word) in SIGNALS {
        let mut cmd = run_remote(&p, &sb.endpoint());
        cmd.env("UNION_TEST_PAUSE_AT", "checking-images")
            .args(["workflows/hello.py", "hello_world_wf"]);
        let (status, err) = interrupt_when(cmd, "paused at checking-images", sig);
        assert_eq!(status.code(), Some(code), "{err}");
        assert!(
            err.contains(&format!(
                "error: {word}: nothing was registered and no execution was started"
            )),
            "{err}"
        );
    }
    assert_eq!(registered_tasks(&sb).trim(), NOTHING);
    for (sig, code, word) in SIGNALS {
        let mut cmd = run_remote(&p, &sb.endpoint());
        cmd.env("UNION_TEST_PAUSE_AT", "starting")
            .args(["workflows/hello.py", "hello_world_wf"]);
        let (status, err) = interrupt_when(cmd, "paused at starting", sig);
        assert_eq!(status.code(), Some(code), "{err}");
        assert!(
            err.contains(&format!(
                "{word}: the entities are registered; no execution was started"
            )),
            "{err}"
        );
    }
    let list = run(p
        .union()
        .args(["get", "executions", "--endpoint", &sb.endpoint()]));
    assert!(list.status.success(), "{}", stderr(&list));
    assert!(
        !stdout(&list).contains("hello_world_wf"),
        "no execution: {}",
        stdout(&list)
    );
}

/// Following an execution: the command stops following, says the execution goes on and how to
/// follow or stop it; the execution does go on.
#[test]
fn run_remote_wait_stops_following_and_the_execution_goes_on() {
    require_docker_infra();
    let sb = Sandbox::start();
    let p = Project::new("exec");
    let image = build_task_image();
    for (n, (sig, code, word)) in SIGNALS.into_iter().enumerate() {
        let name = format!("followed-{n}");
        let mut cmd = run_remote(&p, &sb.endpoint());
        cmd.args(["--image", &image, "--name", &name]).args([
            "workflows/slow.py",
            "sleepy_wf",
            "--seconds",
            "3600",
        ]);
        let (status, err) = interrupt_when(cmd, "RUNNING", sig);
        assert_eq!(status.code(), Some(code), "{err}");
        assert!(
            err.contains(&format!(
                "error: {word}: stopped following execution {name}, which goes on on {}",
                sb.endpoint()
            )),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "follow it with `union get execution {name} --endpoint {}`",
                sb.endpoint()
            )),
            "{err}"
        );
        assert!(
            err.contains(&format!("stop it with `union terminate {name} --endpoint")),
            "{err}"
        );
        let g = run(p
            .union()
            .args(["get", "execution", &name, "--endpoint", &sb.endpoint()]));
        assert!(
            stdout(&g).contains("Phase:      RUNNING"),
            "the execution goes on: {}",
            stdout(&g)
        );
        let t = run(p
            .union()
            .args(["terminate", &name, "--endpoint", &sb.endpoint()]));
        assert!(t.status.success(), "{}", stderr(&t));
    }
}

/// The task image the exec fixture's tasks run in (the hello ImageSpec's: flytekit and union).
fn build_task_image() -> String {
    let hello = Project::hello_pinned();
    let o = run(hello.union_docker().args(["build", "-q", "workflows"]));
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o).split_whitespace().next().unwrap().to_string()
}

/// Is a process whose command line contains `marker` running on this machine?
fn process_running(marker: &str) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
        })
        .any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(marker))
                .unwrap_or(false)
        })
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}
