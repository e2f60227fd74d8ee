//! Shared helpers for integration tests: run the real `union` binary (and the real `pyflyte`)
//! against the fixtures in `python_fixtures/`, as a user would ([`Project`]: a copy of a fixture
//! in its own directory, commands run from its root), against real servers started on ports the
//! kernel picks ([`Sandbox`]). Missing infrastructure fails a test with the command that fixes
//! it ([`require_docker_infra`]); nothing waits by sleeping ([`wait_until`]).
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

/// The command that brings up what the tests need (see README.md).
pub const INFRA_FIX: &str = "bash tests/setup/docker.sh (tests/run-all.sh runs it)";

/// Fail the test, with the command that fixes it, unless the test engine and registry are up:
/// a test that needs them never passes without them.
pub fn require_docker_infra() {
    let registry = std::net::TcpStream::connect("127.0.0.1:30000").is_ok();
    let engine = std::os::unix::net::UnixStream::connect(TEST_DOCKER_SOCKET).is_ok();
    assert!(
        registry && engine,
        "this test needs the test Docker engine ({TEST_DOCKER_SOCKET}: {}) and registry (127.0.0.1:30000: {}); start them with `{INFRA_FIX}`",
        if engine { "up" } else { "down" },
        if registry { "up" } else { "down" },
    );
}

/// A `union` command that builds with the test engine and base image.
pub fn union_docker() -> Command {
    let mut c = union();
    c.env("DOCKER_HOST", format!("unix://{TEST_DOCKER_SOCKET}"));
    c.env("UNION_BASE_IMAGE", TEST_BASE_IMAGE);
    c
}

/// Wait for `cond` to hold, checking every 50 ms; panics with `what` after `deadline`. The
/// deadline is generous on purpose: it only bounds a hang, it never decides a result.
pub fn wait_until(what: &str, deadline: std::time::Duration, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A child process's stderr, collected by a thread as it arrives.
pub struct Captured {
    text: std::sync::Arc<std::sync::Mutex<String>>,
    closed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Captured {
    /// Start collecting `child`'s stderr (which must be piped).
    pub fn stderr_of(child: &mut std::process::Child) -> Captured {
        use std::io::Read;
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (sink, done) = (text.clone(), closed.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n])),
                }
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        Captured { text, closed }
    }

    /// What arrived so far.
    pub fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// Everything, once the process closed its stderr (it exited).
    pub fn all(&self) -> String {
        wait_until(
            "stderr to close",
            std::time::Duration::from_secs(300),
            || self.closed.load(std::sync::atomic::Ordering::SeqCst),
        );
        self.text()
    }

    /// Wait until the text contains `needle` (the process printed it).
    pub fn wait_for(&self, needle: &str, deadline: std::time::Duration) {
        wait_until(&format!("{needle:?} on stderr"), deadline, || {
            self.text().contains(needle)
        });
    }
}

/// Wait for `child` to exit (a deadline bounds a hang; it decides nothing).
pub fn wait_exit(
    child: &mut std::process::Child,
    deadline: std::time::Duration,
) -> std::process::ExitStatus {
    let mut status = None;
    wait_until("the process to exit", deadline, || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    status.unwrap()
}

/// Send `sig` to `child`.
pub fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: kill(2) on our own child, which has not been reaped yet.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// A `union sandbox start` process on a port the kernel picked (`--port 0`, the address read
/// from its "listening on" line), with its own data directory; stopped (SIGINT) on drop.
pub struct Sandbox {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: std::process::Child,
    stderr: Captured,
}

impl Sandbox {
    pub fn start() -> Sandbox {
        Self::start_in(tempfile::tempdir().unwrap())
    }

    pub fn start_in(dir: tempfile::TempDir) -> Sandbox {
        Self::start_with(dir, 0, &[])
    }

    /// Start with the test engine and base image, on `port` (0: any), with extra arguments.
    pub fn start_with(dir: tempfile::TempDir, port: u16, extra: &[&str]) -> Sandbox {
        use std::io::{BufRead, BufReader};
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_union"));
        // Executions and the image builder use the test engine (tests/setup/docker.sh).
        cmd.env("DOCKER_HOST", format!("unix://{TEST_DOCKER_SOCKET}"));
        cmd.env("UNION_BASE_IMAGE", TEST_BASE_IMAGE);
        let mut child = cmd
            .args([
                "sandbox",
                "start",
                "--port",
                &port.to_string(),
                "--data-dir",
            ])
            .arg(dir.path())
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start sandbox");
        let stderr = Captured::stderr_of(&mut child);
        let out = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).unwrap();
        let port = listening_port(&line).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sandbox did not start: {line:?}\n{}", stderr.text())
        });
        Sandbox {
            port,
            dir,
            child,
            stderr,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the sandbox printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.text()
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

    /// SIGKILL, as a crash would; the data directory stays.
    pub fn kill(mut self) -> (u16, tempfile::TempDir) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (self.port, dir)
    }
}

/// The port in a server's "listening on HOST:PORT" line.
pub fn listening_port(line: &str) -> Option<u16> {
    let rest = line.split("listening on ").nth(1)?;
    let addr = rest.split_whitespace().next()?;
    addr.rsplit_once(':')?
        .1
        .trim_end_matches([')', ','])
        .parse()
        .ok()
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
    }
}

/// A copy of a fixture project in a fresh directory outside this repository, used the way a
/// user uses their project: its root is the working directory, paths are relative, the
/// virtualenv is the user's (the repository's `.venv`, as if activated).
pub struct Project {
    dir: tempfile::TempDir,
    root: PathBuf,
}

impl Project {
    /// `python_fixtures/<fixture>` copied into `<tmp>/union-user-XXXX/my-project`.
    pub fn new(fixture: &str) -> Project {
        Self::named(fixture, "my-project")
    }

    /// The same, in a directory with the given name (for names that are not UTF-8, say).
    pub fn named(fixture: &str, name: impl AsRef<std::ffi::OsStr>) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("union-user-")
            .tempdir()
            .unwrap();
        let root = dir.path().join(name.as_ref());
        copy_tree(&repo().join("python_fixtures").join(fixture), &root);
        assert!(
            !root.starts_with(repo()),
            "a user project must live outside the repository"
        );
        Project { dir, root }
    }

    /// The same, made a git repository with one commit and an `origin` remote (as most are).
    pub fn git(fixture: &str) -> Project {
        let p = Self::new(fixture);
        for args in [
            vec!["init", "-q", "-b", "main"],
            vec!["add", "-A"],
            vec![
                "-c",
                "user.name=Test",
                "-c",
                "user.email=test@example.com",
                "commit",
                "-q",
                "-m",
                "init",
            ],
            vec![
                "remote",
                "add",
                "origin",
                "https://github.com/example/my-project.git",
            ],
        ] {
            let o = Command::new("git")
                .args(&args)
                .current_dir(&p.root)
                .output()
                .expect("run git");
            assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
        }
        p
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The temporary directory holding the project (for files beside it).
    pub fn parent(&self) -> &Path {
        self.dir.path()
    }

    /// `union ARGS...` run from the project's root.
    pub fn union(&self) -> Command {
        let mut c = union();
        c.current_dir(&self.root);
        c
    }

    /// `union ARGS...` from the project's root, with the test engine and base image.
    pub fn union_docker(&self) -> Command {
        let mut c = union_docker();
        c.current_dir(&self.root);
        c
    }

    /// The real `pyflyte ARGS...` from the project's root, with a config (pyflyte refuses to
    /// run without one when `union` is installed).
    pub fn pyflyte(&self, config: &Path) -> Command {
        let mut c = Command::new(venv().join("bin/pyflyte"));
        c.current_dir(&self.root)
            .env("VIRTUAL_ENV", venv())
            .arg("-c")
            .arg(config);
        c
    }
}

/// Copy a directory tree (regular files and directories; `__pycache__` left out).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "__pycache__" {
            continue;
        }
        let ty = entry.file_type().unwrap();
        if ty.is_dir() {
            copy_tree(&entry.path(), &to.join(&name));
        } else if ty.is_file() {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// Run a Python script from tests/support with the test venv's interpreter.
pub fn python_support<A: AsRef<std::ffi::OsStr>>(script: &str, args: &[A]) -> Output {
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
