//! Helpers for tests/remote_builder.rs: the real `union sandbox start` binary as the image
//! builder server (its engine from tests/setup/docker.sh), and reporters that collect events.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use union_cli::image::build::{BuildError, BuildEvent, BuildReporter, Outcome};

pub use crate::build_util::{TEST_BASE_IMAGE, TEST_DOCKER_HOST, TEST_REGISTRY};
/// The flytekit the fixtures pin.
pub const FLYTEKIT: &str = "1.16.31";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A `union sandbox start` process on a free port, stopped (SIGTERM) when dropped.
pub struct SandboxProcess {
    child: Child,
    pub port: u16,
    pub data_dir: tempfile::TempDir,
    /// Everything it printed on stderr so far is appended here by a reader thread.
    stderr: std::sync::Arc<Mutex<String>>,
}

impl SandboxProcess {
    /// Start with the test engine as its Docker engine, the test registry as default registry
    /// and the offline base image; `extra` flags and `env` on top.
    pub fn start(extra: &[&str], env: &[(&str, &str)]) -> SandboxProcess {
        let data_dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_union"));
        cmd.args(["sandbox", "start", "--port", "0", "--data-dir"])
            .arg(data_dir.path())
            .args(["--image-registry", TEST_REGISTRY])
            .env("DOCKER_HOST", TEST_DOCKER_HOST)
            .env("UNION_BASE_IMAGE", TEST_BASE_IMAGE)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn union sandbox start");
        let stdout = child.stdout.take().unwrap();
        let stderr_pipe = child.stderr.take().unwrap();
        let stderr = std::sync::Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        // The first stdout line says where it listens (it binds port 0: the kernel picks).
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let port = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|addr| addr.rsplit_once(':'))
            .and_then(|(_, p)| p.parse().ok());
        match port {
            Some(port) => SandboxProcess {
                child,
                port,
                data_dir,
                stderr,
            },
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "union sandbox start did not come up: {line:?}\n{}",
                    stderr.lock().unwrap()
                );
            }
        }
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The server's build records (`image-builds.json`).
    pub fn records(&self) -> Vec<serde_json::Value> {
        read_records(self.data_dir.path())
    }
}

pub fn read_records(dir: &Path) -> Vec<serde_json::Value> {
    let Ok(bytes) = std::fs::read(dir.join("image-builds.json")) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["builds"].as_array().cloned().unwrap_or_default()
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        // SAFETY: sending SIGTERM to the child this struct spawned (and has not reaped yet).
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Records everything a build reports.
#[derive(Default)]
pub struct Collect {
    pub events: Mutex<Vec<(String, BuildEvent)>>,
    pub finished: Mutex<Vec<(String, Result<Outcome, String>)>>,
}

impl BuildReporter for Collect {
    fn event(&self, image: &str, event: &BuildEvent) {
        self.events
            .lock()
            .unwrap()
            .push((image.to_string(), event.clone()));
    }
    fn finished(&self, image: &str, result: Result<&Outcome, &BuildError>) {
        self.finished.lock().unwrap().push((
            image.to_string(),
            result.map(|o| o.clone()).map_err(|e| e.to_string()),
        ));
    }
}

impl Collect {
    /// Every log line, joined.
    pub fn log_text(&self) -> String {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, e)| match e {
                BuildEvent::Log { line, .. } => Some(line.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Names of the steps reported done.
    pub fn steps_done(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, e)| match e {
                BuildEvent::StepDone { step, .. } => Some(step.clone()),
                _ => None,
            })
            .collect()
    }
}

/// A name unique to this run.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Make sure the test engine, registry and base image are up (running tests/setup/docker.sh under
/// a lock when they are not). Unlike build_util, this never points this process's DOCKER_HOST at
/// the engine: only the sandbox server gets it; clients here must work without one.
pub fn ensure_infra() {
    static READY: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    READY.get_or_init(|| {
        let ok = |args: &[&str]| {
            Command::new("curl")
                .args(args)
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        };
        let engine = || {
            ok(&[
                "-sf",
                "--max-time",
                "2",
                "--unix-socket",
                "/run/union-test/docker.sock",
                "http://localhost/_ping",
            ])
        };
        let base = || {
            ok(&[
                "-sf",
                "-o",
                "/dev/null",
                "-I",
                "-H",
                "Accept: application/vnd.docker.distribution.manifest.v2+json",
                "http://127.0.0.1:30000/v2/union/debian-python/manifests/bookworm",
            ])
        };
        if !(engine() && base()) {
            let status = Command::new("flock")
                .arg("/tmp/union-test-docker-setup.lock")
                .arg("bash")
                .arg(repo_root().join("tests/setup/docker.sh"))
                .status()
                .expect("run tests/setup/docker.sh");
            assert!(status.success(), "tests/setup/docker.sh failed");
        }
    });
}

/// A bollard client for the test engine (explicit socket; this process has no DOCKER_HOST).
pub async fn test_docker() -> bollard::Docker {
    bollard::Docker::connect_with_unix(
        "/run/union-test/docker.sock",
        120,
        bollard::API_DEFAULT_VERSION,
    )
    .unwrap()
    .negotiate_version()
    .await
    .unwrap()
}

/// Run `sh -c script` in a new container of `image` on the test engine; (exit code, output).
pub async fn run_sh(image: &str, script: &str) -> (i64, String) {
    let body = bollard::models::ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec!["sh".into(), "-c".into()]),
        cmd: Some(vec![script.to_string()]),
        ..Default::default()
    };
    crate::build_util::run_container(&test_docker().await, body).await
}
