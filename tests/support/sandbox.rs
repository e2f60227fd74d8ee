//! The one way tests start `union sandbox start`: the real binary, on a port the kernel picks
//! (`--port 0`; the address is read from its "listening on" line), with the test Docker engine,
//! registry and base image, its data in a directory of its own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use union_idl::flyteidl::service::admin_service_client::AdminServiceClient;

use super::process::Captured;
use super::{TEST_BASE_IMAGE, TEST_DOCKER_SOCKET, TEST_REGISTRY};

/// A running `union sandbox start`; stopped (SIGINT, then waited for) when dropped.
pub struct Sandbox {
    pub port: u16,
    /// The data directory: a temporary one this value owns, or one the test gave.
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    child: Child,
    running: bool,
    stderr: Captured,
    /// Its first line ("union sandbox listening on ADDR (data: DIR)").
    pub banner: String,
}

/// How to start one (see [`Sandbox::launch`]).
#[derive(Default)]
pub struct Launch<'a> {
    /// Keep the data here (it outlives the process: restarts reuse it); default: a temp dir.
    pub data_dir: Option<&'a Path>,
    /// The port; 0 (the default) lets the kernel pick. A restart passes the port it had.
    pub port: u16,
    /// More `union sandbox start` arguments.
    pub args: &'a [&'a str],
    /// More environment variables.
    pub env: &'a [(&'a str, &'a str)],
}

impl Sandbox {
    /// With its defaults: a temporary data directory, any port.
    pub fn start() -> Sandbox {
        Self::launch(Launch::default())
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// With its data in `dir` (which survives it).
    pub fn start_in(dir: &Path) -> Sandbox {
        Self::launch(Launch {
            data_dir: Some(dir),
            ..Launch::default()
        })
    }

    /// Start one as `l` says, and wait for its "listening on" line.
    pub fn launch(l: Launch<'_>) -> Sandbox {
        use std::io::{BufRead, BufReader};
        let (dir, temp) = match l.data_dir {
            Some(d) => (d.to_path_buf(), None),
            None => {
                let t = tempfile::tempdir().unwrap();
                (t.path().to_path_buf(), Some(t))
            }
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_union"));
        cmd.env("DOCKER_HOST", format!("unix://{TEST_DOCKER_SOCKET}"))
            .env("UNION_BASE_IMAGE", TEST_BASE_IMAGE)
            .args([
                "sandbox",
                "start",
                "--port",
                &l.port.to_string(),
                "--data-dir",
            ])
            .arg(&dir)
            .args(["--image-registry", TEST_REGISTRY])
            .args(l.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in l.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start union sandbox");
        let stderr = Captured::stderr_of(&mut child);
        let mut line = String::new();
        let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
        let Some(port) = listening_port(&line) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "union sandbox start did not come up: {line:?}\n{}",
                stderr.all()
            );
        };
        Sandbox {
            port,
            dir,
            _temp: temp,
            child,
            running: true,
            stderr,
            banner: line,
        }
    }

    /// `host:port`, as `--endpoint` takes it.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://host:port`, as a gRPC client connects.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its data directory.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// A generated AdminService client connected to it.
    pub async fn admin(&self) -> AdminServiceClient<tonic::transport::Channel> {
        AdminServiceClient::connect(self.url())
            .await
            .expect("connect to the sandbox")
            .max_decoding_message_size(64 << 20)
    }

    /// A flytekit/union YAML config pointing at this sandbox, written in its data directory.
    pub fn config_file(&self) -> PathBuf {
        self.write_config(&self.dir)
    }

    /// The same config, written in `dir`.
    pub fn write_config(&self, dir: &Path) -> PathBuf {
        let p = dir.join("client-config.yaml");
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

    /// What it printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Its image builder's records (`image-builds.json`).
    pub fn records(&self) -> Vec<serde_json::Value> {
        read_records(&self.dir)
    }

    /// Stop it with `sig` (SIGINT, SIGTERM) and return how it exited.
    pub fn stop_with(&mut self, sig: i32) -> std::process::ExitStatus {
        assert!(self.running, "the sandbox was already stopped");
        // SAFETY: signalling our own child, not reaped yet (so its pid is still ours).
        unsafe { libc::kill(self.child.id() as i32, sig) };
        self.running = false;
        self.child.wait().unwrap()
    }

    /// Stop it as Ctrl-C does and require a clean exit (in-flight requests finished, the
    /// database closed).
    pub fn stop(mut self) {
        let status = self.stop_with(libc::SIGINT);
        assert!(status.success(), "{status:?}\n{}", self.stderr());
    }

    /// A generated DataProxyService client connected to it.
    pub async fn data_proxy(
        &self,
    ) -> union_idl::flyteidl::service::data_proxy_service_client::DataProxyServiceClient<
        tonic::transport::Channel,
    > {
        union_idl::flyteidl::service::data_proxy_service_client::DataProxyServiceClient::connect(
            self.url(),
        )
        .await
        .expect("connect to the sandbox")
    }

    /// SIGKILL, as a crash would. The data directory stays (as long as this value lives, for a
    /// temporary one); a restart is `Sandbox::launch` with that directory and [`Sandbox::port`].
    pub fn kill(&mut self) {
        if self.running {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.running = false;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.running {
            // SAFETY: signalling our own child, not reaped yet (so its pid is still ours).
            unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
            let _ = self.child.wait();
        }
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

/// The image builder's records in a sandbox data directory.
pub fn read_records(dir: &Path) -> Vec<serde_json::Value> {
    let Ok(bytes) = std::fs::read(dir.join("image-builds.json")) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["builds"].as_array().cloned().unwrap_or_default()
}
