//! The built `union sandbox start` binary: how it starts and stops, and the real Python client
//! (pyflyte register, then FlyteRemote) against it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::sandbox::Launch;
use crate::support::{union, venv, Sandbox};

#[test]
fn binary_refuses_a_taken_port_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let out = union()
        .args([
            "sandbox",
            "start",
            "--port",
            &port.to_string(),
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "error: port {port} on 127.0.0.1 is already in use"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--port"), "{stderr}");
    // The port check comes first: no state was created.
    assert!(!dir.path().join("sandbox.db").exists());
}

/// A second sandbox on the same data directory (another port) is refused before it touches the
/// first one's state: it would mark its executions interrupted and remove their containers.
#[test]
fn binary_refuses_a_data_directory_another_sandbox_serves() {
    let dir = tempfile::tempdir().unwrap();
    let first = Sandbox::start_in(dir.path());
    let out = union()
        .args(["sandbox", "start", "--port", "0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let canonical = std::fs::canonicalize(dir.path()).unwrap();
    assert!(
        stderr.contains(&format!(
            "error: the sandbox data directory `{}` is in use by another sandbox (process {})",
            canonical.display(),
            first.pid()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--data-dir"), "{stderr}");
    // The first one still serves; once it has stopped, the directory is free again.
    let port = first.port;
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    drop(first);
    let _again = Sandbox::start_in(dir.path());
}

#[test]
fn binary_names_its_data_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut sandbox = Sandbox::start_in(dir.path());
    assert!(
        sandbox.banner.contains(&format!(
            "(data: {})",
            std::fs::canonicalize(dir.path()).unwrap().display()
        )),
        "{}",
        sandbox.banner
    );
    let status = sandbox.stop_with(libc::SIGTERM);
    assert!(status.success(), "{status:?}");
    let conn = rusqlite::Connection::open(dir.path().join("sandbox.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

/// The real Python client: `pyflyte register` (upload via CreateUploadLocation + PUT, then
/// CreateTask/Workflow/LaunchPlan), then FlyteRemote fetches.
#[test]
fn pyflyte_register_and_flyteremote_fetch() {
    let venv = venv();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut sandbox = Sandbox::launch(Launch {
        data_dir: Some(&data),
        ..Launch::default()
    });
    let config = sandbox.write_config(dir.path());

    let python_env = |cmd: &mut Command| {
        for (k, _) in std::env::vars() {
            if k.starts_with("UNION_")
                || k.starts_with("FLYTE")
                || k.to_ascii_lowercase().ends_with("_proxy")
            {
                cmd.env_remove(k);
            }
        }
        cmd.env("NO_PROXY", "*").env("HOME", dir.path());
    };
    let fixtures = crate::support::repo()
        .join("python_fixtures")
        .join("pkgtree");
    let mut register = Command::new(venv.join("bin").join("pyflyte"));
    register
        .current_dir(&fixtures)
        .arg("-c")
        .arg(&config)
        .args(["register", "--version", "v1", "myproj"]);
    python_env(&mut register);
    let out = register.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pyflyte register failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Successfully registered"), "{stdout}");

    // The archive went through the signed URL into the blob store.
    let blobs = data.join("blobs").join("flytesnacks").join("development");
    let archives: Vec<_> = walk(&blobs)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    assert_eq!(archives.len(), 1, "{archives:?}");

    // Registering the same thing again is a no-op (ALREADY_EXISTS is success for flytekit).
    let out = register.output().unwrap();
    assert!(
        out.status.success(),
        "re-register failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let script = r#"
import sys
from flytekit.configuration import Config
from flytekit.remote import FlyteRemote
r = FlyteRemote(Config.auto(config_file=sys.argv[1]), default_project="flytesnacks", default_domain="development")
t = r.fetch_task(name="myproj.greet.greet", version="v1")
print("task", t.id.name, sorted(t.interface.inputs), sorted(t.interface.outputs))
wf = r.fetch_workflow(name="myproj.sub.math_ops.add_wf", version="v1")
print("workflow", wf.id.name, sorted(wf.interface.inputs), sorted(wf.interface.outputs), [n.id for n in wf.nodes], [x.id.name for x in wf.flyte_tasks])
lp = r.fetch_launch_plan(name="myproj.sub.math_ops.add_three", version="v1")
print("launchplan", lp.id.name, lp.workflow_id.name, sorted(lp.default_inputs.parameters), sorted(lp.interface.outputs))
latest = r.fetch_workflow(name="myproj.greet.greet_wf")
print("latest", latest.id.version)
"#;
    let mut fetch = Command::new(venv.join("bin").join("python"));
    fetch.arg("-c").arg(script).arg(&config);
    python_env(&mut fetch);
    let out = fetch.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "FlyteRemote failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.contains(&"task myproj.greet.greet ['name'] ['o0']"),
        "{stdout}"
    );
    assert!(lines.contains(&"workflow myproj.sub.math_ops.add_wf ['a', 'b'] ['o0'] ['n0'] ['myproj.sub.math_ops.add']"), "{stdout}");
    assert!(lines.contains(&"launchplan myproj.sub.math_ops.add_three myproj.sub.math_ops.add_wf ['a', 'b'] ['o0']"), "{stdout}");
    assert!(lines.contains(&"latest v1"), "{stdout}");

    let status = sandbox.stop_with(libc::SIGTERM);
    assert!(status.success(), "{status:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
