//! Helpers for tests/images/registry.rs: push a tiny image over the registry API, run a private
//! htpasswd-protected docker-registry, and a scriptable fake registry + token service.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The registry tests/setup/docker.sh starts.
pub const LOCAL_REGISTRY: &str = "127.0.0.1:30000";

/// A loopback port that refuses connections: a socket bound to it but not listening, which also
/// keeps any other process from taking the port while the test runs. Keep the descriptor alive.
pub fn closed_port() -> (std::os::fd::OwnedFd, u16) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor we own; the sockaddr structs are zeroed and sized.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket()");
        let owned = std::os::fd::OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        addr.sin_port = 0;
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, (&addr as *const libc::sockaddr_in).cast(), len),
            0,
            "bind()"
        );
        let mut bound: libc::sockaddr_in = std::mem::zeroed();
        let mut blen = len;
        assert_eq!(
            libc::getsockname(fd, (&mut bound as *mut libc::sockaddr_in).cast(), &mut blen),
            0
        );
        (owned, u16::from_be(bound.sin_port))
    }
}

/// Is a registry answering `/v2/` (any status) at `addr`?
pub async fn registry_up(addr: &str) -> bool {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    client
        .get(format!("http://{addr}/v2/"))
        .send()
        .await
        .is_ok()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Pushes a one-layer image `repo:tag` to `addr` over plain HTTP; returns the manifest digest.
pub async fn push_tiny_image(
    addr: &str,
    repo: &str,
    tag: &str,
    basic: Option<(&str, &str)>,
) -> String {
    let http = reqwest::Client::new();
    let auth = |r: reqwest::RequestBuilder| match basic {
        Some((u, p)) => r.basic_auth(u, Some(p)),
        None => r,
    };
    let layer = format!("union registry test layer {repo}:{tag}").into_bytes();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        sha256(&layer)
    )
    .into_bytes();
    for blob in [&layer, &config] {
        let start = auth(http.post(format!("http://{addr}/v2/{repo}/blobs/uploads/")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            start.status().as_u16(),
            202,
            "starting a blob upload to {addr}/{repo}"
        );
        let location = start.headers()["location"].to_str().unwrap().to_string();
        let location = if location.starts_with('/') {
            format!("http://{addr}{location}")
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = auth(http.put(format!("{location}{sep}digest={}", sha256(blob))))
            .header("content-type", "application/octet-stream")
            .body(blob.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            put.status().as_u16(),
            201,
            "finishing a blob upload to {addr}/{repo}"
        );
    }
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":{},"digest":"{}"}}]}}"#,
        config.len(),
        sha256(&config),
        layer.len(),
        sha256(&layer)
    )
    .into_bytes();
    let put = auth(http.put(format!("http://{addr}/v2/{repo}/manifests/{tag}")))
        .header(
            "content-type",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.status().as_u16(),
        201,
        "putting the manifest {addr}/{repo}:{tag}"
    );
    sha256(&manifest)
}

/// A docker-registry child process with htpasswd auth on a free loopback port, killed on drop.
pub struct AuthRegistry {
    pub addr: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl AuthRegistry {
    /// Starts one with a single user, or says why it cannot (binary missing, …).
    pub async fn start(user: &str, password: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().unwrap();
        let htpasswd = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .stderr(Stdio::null())
            .output()
            .map_err(|e| format!("`htpasswd` (apache2-utils) not available: {e}"))?;
        if !htpasswd.status.success() {
            return Err("`htpasswd -Bbn` failed".into());
        }
        std::fs::write(dir.path().join("htpasswd"), &htpasswd.stdout).unwrap();
        // Port 0: the registry logs the address it bound ("listening on 127.0.0.1:PORT").
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:0\nauth:\n  htpasswd:\n    realm: union-test\n    path: {htpasswd}\n",
            root = dir.path().join("data").display(),
            htpasswd = dir.path().join("htpasswd").display(),
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log_path = dir.path().join("registry.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(
            registry_binary()
                .ok_or("`docker-registry` not installed (tests/setup/docker.sh installs it)")?,
        )
        .arg("serve")
        .arg(&config_path)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("could not start docker-registry: {e}"))?;
        let mut me = Self {
            addr: String::new(),
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(300);
        while Instant::now() < deadline {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(addr) = text
                .split("listening on ")
                .nth(1)
                .and_then(|rest| rest.split(['"', ' ', '\n']).next())
            {
                me.addr = addr.to_string();
                return Ok(me);
            }
            if let Ok(Some(status)) = me.child.try_wait() {
                return Err(format!("docker-registry exited ({status}): {text}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "docker-registry did not say where it listens within 60 s: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        ))
    }
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn registry_binary() -> Option<PathBuf> {
    ["/usr/bin/docker-registry", "/usr/local/bin/docker-registry"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Writes `config.json` into a new temp dir and returns it.
pub fn docker_config(json: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), json).unwrap();
    dir
}

/// `{"auths": {registry: {"auth": base64(user:password)}}}`.
pub fn basic_auth_config(registry: &str, user: &str, password: &str) -> tempfile::TempDir {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    docker_config(&format!(
        r#"{{"auths": {{"{registry}": {{"auth": "{auth}"}}}}}}"#
    ))
}

/// Writes an executable `docker-credential-<name>` into `dir` that answers `get` with this JSON
/// for `server` and "credentials not found" otherwise.
pub fn write_credential_helper(dir: &Path, name: &str, server: &str, json: &str) {
    let path = dir.join(format!("docker-credential-{name}"));
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread -r server\nif [ \"$server\" = '{server}' ]; then\n  printf '%s' '{json}'\nelse\n  echo 'credentials not found in native keychain'\n  exit 1\nfi\n"
    );
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
}

/// A response from a fake-server handler.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    pub fn body(mut self, body: &str) -> Self {
        self.body = body.into();
        self
    }
}

/// A minimal HTTP/1.1 server on a loopback port; each connection serves one request.
pub struct FakeServer {
    pub addr: String,
    pub hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeServer {
    pub async fn start<F>(handler: F) -> Self
    where
        F: Fn(&SeenRequest, &str) -> Option<Reply> + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let hits = Arc::new(AtomicUsize::new(0));
        let handler = Arc::new(handler);
        let (h, a) = (hits.clone(), addr.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let (handler, hits, addr) = (handler.clone(), h.clone(), a.clone());
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut socket).await else {
                        return;
                    };
                    hits.fetch_add(1, Ordering::SeqCst);
                    // `None`: hang without answering (timeouts).
                    let Some(reply) = handler(&request, &addr) else {
                        std::future::pending::<()>().await;
                        return;
                    };
                    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", reply.status);
                    for (k, v) in &reply.headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    let body = if request.method == "HEAD" {
                        ""
                    } else {
                        reply.body.as_str()
                    };
                    head.push_str(&format!("Content-Length: {}\r\n\r\n", reply.body.len()));
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(body.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self { addr, hits, task }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<SeenRequest> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[header_end..].to_vec();
    while body.len() < len {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(SeenRequest {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
