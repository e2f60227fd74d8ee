//! Shared helpers for integration tests: run the real `union` binary (and the real `pyflyte`)
//! against the fixtures in `python_fixtures/`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (where `.venv` and `python_fixtures/` live).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> String {
    repo()
        .join("python_fixtures")
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

/// The test virtualenv (made by scripts/setup-python.sh).
pub fn venv() -> PathBuf {
    repo().join(".venv")
}

/// A `union` command run from the repository root, with the test venv active.
pub fn union() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_union"));
    c.current_dir(repo());
    c.env("VIRTUAL_ENV", venv());
    c.env_remove("FLYTE_FORCE_PUSH_IMAGE_SPEC");
    // No warm-interpreter servers from tests (each test directory and environment would start
    // one); tests/warm.rs turns it on where it is the subject.
    c.env("UNION_WARM", "0");
    c
}

/// Text of stdout / stderr.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run and return output, printing both streams for debugging when the assertion fails.
pub fn run(cmd: &mut Command) -> Output {
    let o = cmd.output().expect("run union");
    eprintln!(
        "--- stdout:\n{}--- stderr:\n{}--- status: {:?}",
        stdout(&o),
        stderr(&o),
        o.status
    );
    o
}

/// Run real `pyflyte run` (flytekit 1.16.31 in the test venv) the way a user would, and return
/// its result line: pyflyte prints "Running Execution on local." first, then the output.
pub fn pyflyte_run(file: &str, entity: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    // With `union` installed, pyflyte refuses to run without a config file, even locally.
    let cfg = dir.path().join("config.yaml");
    std::fs::write(
        &cfg,
        "admin:\n  endpoint: dns:///localhost:30080\n  insecure: true\n",
    )
    .unwrap();
    let o = Command::new(venv().join("bin/pyflyte"))
        .current_dir(repo())
        .env("VIRTUAL_ENV", venv())
        .arg("-c")
        .arg(&cfg)
        .arg("run")
        .arg(file)
        .arg(entity)
        .args(args)
        .output()
        .expect("run pyflyte");
    let out = stdout(&o);
    assert!(
        o.status.success(),
        "pyflyte failed: {}\n{}",
        out,
        stderr(&o)
    );
    out.lines()
        .filter(|l| !l.starts_with("Running Execution on"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// The test Docker engine's socket (tests/setup/docker.sh).
pub const TEST_DOCKER_SOCKET: &str = "/run/union-test/docker.sock";
/// The offline base image tests/setup/docker.sh pushes.
pub const TEST_BASE_IMAGE: &str = "localhost:30000/union/debian-python:bookworm";

/// Are the test engine and registry up?
pub fn docker_infra_up() -> bool {
    let up = std::net::TcpStream::connect("127.0.0.1:30000").is_ok()
        && Path::new(TEST_DOCKER_SOCKET).exists();
    if !up {
        eprintln!("SKIP: the test engine/registry is not running (bash tests/setup/docker.sh)");
    }
    up
}

/// A `union` command that builds with the test engine and base image.
pub fn union_docker() -> Command {
    let mut c = union();
    c.env("DOCKER_HOST", format!("unix://{TEST_DOCKER_SOCKET}"));
    c.env("UNION_BASE_IMAGE", TEST_BASE_IMAGE);
    c
}

/// A `union sandbox` running on a free loopback port with its own data directory; stopped on drop.
pub struct Sandbox {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Sandbox {
    pub fn start() -> Sandbox {
        Self::start_in(tempfile::tempdir().unwrap())
    }

    pub fn start_in(dir: tempfile::TempDir) -> Sandbox {
        use std::io::{BufRead, BufReader};
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_union"));
        if Path::new(TEST_DOCKER_SOCKET).exists() {
            // Executions and the image builder use the test engine (tests/setup/docker.sh).
            cmd.env("DOCKER_HOST", format!("unix://{TEST_DOCKER_SOCKET}"));
            cmd.env("UNION_BASE_IMAGE", TEST_BASE_IMAGE);
        }
        let mut child = cmd
            .args([
                "sandbox",
                "start",
                "--port",
                &port.to_string(),
                "--data-dir",
            ])
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start sandbox");
        let out = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).unwrap();
        assert!(line.contains("listening"), "sandbox did not start: {line}");
        Sandbox { port, dir, child }
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A flytekit/union YAML config pointing at this sandbox.
    pub fn config_file(&self) -> PathBuf {
        let p = self.dir.path().join("client-config.yaml");
        std::fs::write(
            &p,
            format!(
                "admin:\n  endpoint: dns:///{}\n  insecure: true\n",
                self.endpoint()
            ),
        )
        .unwrap();
        p
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
    }
}

/// Run a Python script from tests/support with the test venv's interpreter.
pub fn python_support(script: &str, args: &[&str]) -> Output {
    Command::new(venv().join("bin/python"))
        .arg(repo().join("tests/support").join(script))
        .args(args)
        .env("VIRTUAL_ENV", venv())
        .output()
        .expect("run python")
}

/// Every file directly in `dir`, name and bytes, sorted by name.
pub fn dir_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect();
    v.sort();
    v
}
