//! `union sandbox`: a local backend that speaks FlyteAdmin over gRPC, so that `pyflyte register`,
//! `union register`, `pyflyte run --remote` registration and `FlyteRemote` work without a cluster.
//!
//! One port serves everything: gRPC (`AdminService`, `DataProxyService`, `AuthMetadataService`,
//! `SignalService`, union's `ImageService` and `SecretService`)
//! over HTTP/2, and over HTTP/1.1 the blob endpoint of signed upload URLs ([`blobs`]), task logs,
//! FlyteAdmin's HTTP API `/api/v1` ([`api`]) and the web console at `/console` ([`console`]). State lives
//! in a data directory: `sandbox.db` (SQLite, [`store`]), `blobs/`, `sandbox.key` (URL signing secret).
//! With [`SandboxConfig::auth`] the sandbox is also its own OAuth2 server and every gRPC call needs
//! a token ([`auth`]; its state in `auth/`).
//!
//! flyteadmin semantics kept (clients depend on them):
//! - re-creating an id with the same content is ALREADY_EXISTS (flytekit treats it as success),
//!   with different content INVALID_ARGUMENT "... with different structure already exists";
//! - unknown ids are NOT_FOUND, missing fields INVALID_ARGUMENT "missing `<field>`";
//! - a workflow is refused unless every task, subworkflow and launch plan it references exists,
//!   a launch plan unless its workflow exists;
//! - launch plans are created INACTIVE, and at most one version per name is ACTIVE; active ones
//!   with a schedule are started by the scheduler ([`schedules`]) as FlyteScheduler starts them.
//!
//! The library never creates a runtime: [`Sandbox::bind`] and [`Sandbox::serve`] run on the
//! caller's (multi-threaded) tokio runtime.

//!
//! Owns: the local backend (admin server, execution engine and its Docker task runner, blob
//! store), and runs the image builder server of `union-image`. Depends on `union-idl`,
//! `union-image` and `union-diagnostics`; never on Python (this crate does not link libpython).
//! Never prints: the command that runs it reports.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod admin;
pub mod api;
pub mod auth;
pub mod blobs;
pub mod cache;
pub mod compile;
pub mod console;
pub mod executions;
pub mod executor;
pub mod imagebuilder;
pub mod query;
pub mod registry;
pub mod schedules;
pub mod secrets;
pub mod signals;
pub mod status;
pub mod store;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tonic::{Request, Response, Status};

use union_idl::flyteidl::service::admin_service_server::AdminServiceServer;
use union_idl::flyteidl::service::auth_metadata_service_server::{
    AuthMetadataService, AuthMetadataServiceServer,
};
use union_idl::flyteidl::service::data_proxy_service_server::DataProxyServiceServer;
use union_idl::flyteidl::service::identity_service_server::IdentityServiceServer;
use union_idl::flyteidl::service::{
    OAuth2MetadataRequest, OAuth2MetadataResponse, PublicClientAuthConfigRequest,
    PublicClientAuthConfigResponse,
};

/// Default port, the one flytectl's sandbox uses for flyteadmin.
pub const DEFAULT_PORT: u16 = 30080;
/// Default listen address.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// Largest gRPC message accepted or sent (flytekit registers big workflow specs in one message).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Where and how to run the sandbox (already resolved from flags, env and defaults).
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Host name or IP to listen on.
    pub host: String,
    /// Port to listen on (0: any free port).
    pub port: u16,
    /// Directory holding the database, blobs and signing secret (created if missing).
    pub data_dir: PathBuf,
    /// Require OAuth2 tokens on gRPC calls, with the sandbox as the authorization server
    /// (None: no authentication, like flytectl's sandbox).
    pub auth: Option<auth::AuthSettings>,
    /// Serve TLS with a certificate from a local CA ([`tls`]).
    pub tls: bool,
}

/// Where the files eager tasks read (their config, a copy of the client secret) are kept, in
/// the data directory (readable by its owner only).
pub const EAGER_DIR: &str = "eager";
/// Where eager tasks find those files in their containers.
pub const EAGER_MOUNT: &str = "/etc/union-sandbox";

/// Errors starting or running the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Another process listens on the port.
    #[error("port {port} on {host} is already in use")]
    PortInUse { host: String, port: u16 },
    /// Binding failed for another reason.
    #[error("cannot listen on {host}:{port}")]
    Bind {
        host: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    /// The data directory could not be created.
    #[error("cannot create the sandbox data directory `{}`", path.display())]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another sandbox process serves from the same data directory.
    #[error("the sandbox data directory `{}` is in use by another sandbox{}", path.display(), pid.as_ref().map(|p| format!(" (process {p})")).unwrap_or_default())]
    DataDirInUse { path: PathBuf, pid: Option<String> },
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Blob storage could not be prepared.
    #[error(transparent)]
    Blobs(#[from] blobs::BlobError),
    /// Authentication could not be prepared.
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    /// TLS could not be prepared.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The registry could not be prepared.
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    /// The server stopped with an error.
    #[error("the sandbox server failed")]
    Serve(#[source] tonic::transport::Error),
}

impl union_diagnostics::Hint for SandboxError {
    fn hints(&self) -> Vec<String> {
        match self {
            SandboxError::PortInUse { port, .. } => vec![format!(
                "is a sandbox already running on port {port}? Pick another one with `--port <PORT>` (or UNION_SANDBOX_PORT); `--port 0` takes any free one"
            )],
            SandboxError::DataDirInUse { .. } => vec![
                "stop that sandbox (Ctrl-C where it runs), or give this one its own state with `--data-dir <DIR>`".into(),
            ],
            SandboxError::Store(e) => e.hints(),
            SandboxError::Auth(e) => e.hints(),
            SandboxError::Tls(e) => e.hints(),
            _ => Vec::new(),
        }
    }
}

/// A sandbox bound to its port with its state open, ready to [`serve`](Sandbox::serve).
#[derive(Debug)]
pub struct Sandbox {
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    data_dir: PathBuf,
    /// Held while this process serves: a second sandbox on the same data directory would mark
    /// this one's executions interrupted and remove their containers.
    _lock: std::fs::File,
    store: Arc<store::Store>,
    blobs: Arc<blobs::Blobs>,
    /// The remote image builder's settings ([`Sandbox::with_image_builder`]); None: no builds.
    image_builder: Option<union_image::remote::ServerSettings>,
    /// The authorization server; None: authentication is off.
    auth: Option<Arc<auth::Authority>>,
    /// TLS; None: plaintext.
    tls: Option<tls::Tls>,
    /// Told what the scheduler starts (and what fails).
    schedule_reporter: Option<Arc<dyn schedules::ScheduleReporter>>,
}

/// Take `<data dir>/sandbox.lock` for this process (released when it exits, however it exits),
/// with its pid inside for the message another sandbox shows.
fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File, SandboxError> {
    use std::io::{Read, Seek, Write};
    let path = data_dir.join("sandbox.lock");
    let io = |source| SandboxError::DataDir {
        path: data_dir.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(SandboxError::DataDirInUse {
                path: data_dir.to_path_buf(),
                pid: (!pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| pid.to_string()),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    write!(file, "{}", std::process::id()).map_err(io)?;
    Ok(file)
}

impl Sandbox {
    /// Bind the port, then create/open the data directory (so a taken port touches no state).
    pub async fn bind(config: &SandboxConfig) -> Result<Sandbox, SandboxError> {
        let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port))
            .await
            .map_err(|source| {
                if source.kind() == std::io::ErrorKind::AddrInUse {
                    SandboxError::PortInUse {
                        host: config.host.clone(),
                        port: config.port,
                    }
                } else {
                    SandboxError::Bind {
                        host: config.host.clone(),
                        port: config.port,
                        source,
                    }
                }
            })?;
        let local_addr = listener.local_addr().map_err(|source| SandboxError::Bind {
            host: config.host.clone(),
            port: config.port,
            source,
        })?;
        let dir_err = |source| SandboxError::DataDir {
            path: config.data_dir.clone(),
            source,
        };
        std::fs::create_dir_all(&config.data_dir).map_err(dir_err)?;
        // Absolute, so that native_urls (file://...) name the blobs wherever clients run.
        let data_dir = std::fs::canonicalize(&config.data_dir).map_err(dir_err)?;
        let lock = lock_data_dir(&data_dir)?;
        let store = Arc::new(store::Store::open(&data_dir)?);
        let blobs = Arc::new(blobs::Blobs::open(&data_dir)?);
        let tls = if config.tls {
            Some(tls::prepare(&data_dir, &config.host)?)
        } else {
            None
        };
        let auth = match &config.auth {
            Some(settings) => {
                let mut settings = settings.clone();
                if tls.is_some() {
                    settings.scheme = auth::Scheme::Https;
                }
                Some(Arc::new(auth::Authority::open(
                    &data_dir, settings, local_addr,
                )?))
            }
            None => None,
        };
        Ok(Sandbox {
            listener,
            local_addr,
            data_dir,
            _lock: lock,
            store,
            blobs,
            image_builder: None,
            auth,
            tls,
            schedule_reporter: None,
        })
    }

    /// Tell `reporter` each execution the scheduler starts, and each it cannot.
    pub fn with_schedule_reporter(
        mut self,
        reporter: Arc<dyn schedules::ScheduleReporter>,
    ) -> Self {
        self.schedule_reporter = Some(reporter);
        self
    }

    /// Be union's remote image builder too ([`imagebuilder`]), with these settings (its records
    /// live in the sandbox's data directory). Without this call task `build-image` is not
    /// registered, so clients say the builder is not enabled.
    pub fn with_image_builder(mut self, mut settings: union_image::remote::ServerSettings) -> Self {
        settings.data_dir = self.data_dir.clone();
        self.image_builder = Some(settings);
        self
    }

    /// The address actually bound (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The web console's address (`http(s)://host:port/console`).
    pub fn console_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!(
            "{scheme}://{}/console",
            auth::client_endpoint(self.local_addr)
        )
    }

    /// The data directory, absolute.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The CA certificate clients must trust, when the sandbox serves TLS.
    pub fn tls_ca_cert(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.ca_cert.as_path())
    }

    /// The authorization server, when authentication is on (its endpoints and the path of the
    /// confidential client's secret, for the banner).
    pub fn auth(&self) -> Option<&auth::Authority> {
        self.auth.as_deref()
    }

    /// The database, e.g. for tests and for services added later.
    pub fn store(&self) -> Arc<store::Store> {
        self.store.clone()
    }

    /// What eager tasks get to reach this sandbox (their containers share the host's network):
    /// a config file for flytekit's `FlyteRemote` (`FLYTECTL_CONFIG`, which union's plugin
    /// also reads) with its address, TLS (and the CA to trust) and, with authentication, the
    /// confidential client and its secret; the address as `FLYTE_PLATFORM_*` variables too.
    /// The files are mounted under [`EAGER_MOUNT`] in the container: the secret's copy is
    /// readable by the task's user there, and by no other user on the host (its directory is
    /// the owner's only).
    fn eager_access(&self) -> Result<executor::docker::EagerAccess, SandboxError> {
        let ip = if self.local_addr.ip().is_unspecified() {
            if self.local_addr.is_ipv6() {
                "[::1]".to_string()
            } else {
                "127.0.0.1".to_string()
            }
        } else if self.local_addr.is_ipv6() {
            format!("[{}]", self.local_addr.ip())
        } else {
            self.local_addr.ip().to_string()
        };
        let endpoint = format!("{ip}:{}", self.local_addr.port());
        let inside = |name: &str| Path::new(EAGER_MOUNT).join(name);
        let dir = self.data_dir.join(EAGER_DIR);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SandboxError::DataDir { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
        let mut access = executor::docker::EagerAccess::default();
        let mut yaml = format!(
            "admin:\n  endpoint: dns:///{endpoint}\n  insecure: {}\n",
            self.tls.is_none()
        );
        access.env.push(("FLYTE_PLATFORM_URL".into(), endpoint));
        access.env.push((
            "FLYTE_PLATFORM_INSECURE".into(),
            self.tls.is_none().to_string(),
        ));
        if let Some(ca) = self.tls_ca_cert() {
            let ca_inside = inside("ca.pem");
            yaml.push_str(&format!("  caCertFilePath: {}\n", ca_inside.display()));
            access.env.push((
                "FLYTE_PLATFORM_CA_CERT_FILE_PATH".into(),
                ca_inside.display().to_string(),
            ));
            access.files.push((ca.to_path_buf(), ca_inside));
        }
        if let Some(authority) = &self.auth {
            let copy = dir.join("client-secret");
            let secret = std::fs::read(authority.client_secret_path())
                .map_err(io(authority.client_secret_path()))?;
            let _ = std::fs::remove_file(&copy);
            std::fs::write(&copy, secret)
                .and_then(|()| {
                    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o444))
                })
                .map_err(io(&copy))?;
            let secret_inside = inside("client-secret");
            yaml.push_str(&format!(
                "  authType: ClientSecret\n  clientId: {}\n  clientSecretLocation: {}\n",
                auth::CONFIDENTIAL_CLIENT_ID,
                secret_inside.display()
            ));
            access.files.push((copy, secret_inside));
        }
        let config = dir.join("config.yaml");
        let _ = std::fs::remove_file(&config);
        std::fs::write(&config, yaml)
            .and_then(|()| {
                std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o444))
            })
            .map_err(io(&config))?;
        let config_inside = inside("config.yaml");
        access.env.push((
            "FLYTECTL_CONFIG".into(),
            config_inside.display().to_string(),
        ));
        access.files.push((config, config_inside));
        Ok(access)
    }

    /// Serve until `shutdown` completes, then finish in-flight requests and close the database.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), SandboxError> {
        // The build task in the organization `--auth --org` gives every client, too.
        let org = self.auth.as_ref().and_then(|a| a.settings().org.clone());
        let image_builder = imagebuilder::setup(
            &self.store,
            self.blobs.clone(),
            self.image_builder.clone(),
            org.as_deref(),
        )?;
        let signals = signals::Signals::new(self.store.clone());
        // One short write at startup (interrupted executions become FAILED).
        let executions = executions::Executions::open(
            self.store.clone(),
            executions::ExecutionsConfig {
                data_dir: self.data_dir.clone(),
                blob_root: self.blobs.root().to_path_buf(),
                addr: self.local_addr,
                https: self.tls.is_some(),
                image_builds: image_builder.runner,
                signals: Arc::new(signals.clone()),
                cache: Arc::new(cache::Cache::new(self.store.clone())),
                eager: self.eager_access()?,
            },
        )?;
        let scheduler = schedules::spawn(
            self.store.clone(),
            executions.clone(),
            self.schedule_reporter.clone(),
        );
        let admin_api =
            admin::AdminApi::new(self.store.clone()).with_executions(executions.clone());
        let admin = AdminServiceServer::new(admin_api.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let data_proxy = DataProxyServiceServer::new(blobs::DataProxyApi::new(
            self.blobs.clone(),
            self.local_addr,
            self.tls.is_some(),
        ))
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let mut http = blobs::router(self.blobs.clone())
            .merge(executions::router(executions, self.auth.clone()))
            .merge(api::router(admin_api, signals.clone(), self.auth.clone()))
            .merge(console::router())
            .merge(registry::router(&self.data_dir, self.store.clone())?);
        if let Some(authority) = &self.auth {
            http = http.merge(auth::http::router(authority.clone()));
        }
        let routes = tonic::service::Routes::from(http)
            .add_service(admin)
            .add_service(data_proxy)
            .add_service(IdentityServiceServer::new(auth::Identity::new(
                self.auth.clone(),
            )))
            .add_service(image_builder.service.into_server())
            .add_service(signals.into_server())
            .add_service(secrets::SecretApi::new(self.store.clone()).into_server());
        let routes = match &self.auth {
            Some(authority) => routes.add_service(AuthMetadataServiceServer::new(
                auth::Metadata::new(authority.clone()),
            )),
            None => routes.add_service(AuthMetadataServiceServer::new(NoAuth)),
        };
        let router = tonic::transport::Server::builder()
            // HTTP/1.1 too: the signed upload URLs are plain HTTP PUTs (python `requests`), and
            // the OAuth2 endpoints serve browsers and `requests`.
            .accept_http1(true)
            // Passes everything through when authentication is off.
            .layer(auth::AuthLayer::new(self.auth.clone()))
            .add_routes(routes);
        let result = match &self.tls {
            None => {
                let incoming = tonic::transport::server::TcpIncoming::from(self.listener)
                    .with_nodelay(Some(true));
                router
                    .serve_with_incoming_shutdown(incoming, shutdown)
                    .await
            }
            Some(t) => {
                let incoming = tls_incoming(self.listener, t.config.clone());
                router
                    .serve_with_incoming_shutdown(incoming, shutdown)
                    .await
            }
        }
        .map_err(SandboxError::Serve);
        scheduler.abort();
        let _ = scheduler.await;
        // The last handle: dropping it closes the database (and checkpoints the WAL).
        drop(self.store);
        result
    }
}

/// Connections over TLS: each handshake runs in its own task (a slow or plaintext client holds
/// up no one), and finished ones are handed to the server in order of completion.
fn tls_incoming(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
) -> impl futures_util::Stream<
    Item = Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>, std::io::Error>,
> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = tx.closed() => return,
                a = listener.accept() => a,
            };
            let Ok((tcp, _)) = accepted else {
                // Out of descriptors, say: wait a little rather than spin.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let handshake =
                    tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp));
                if let Ok(Ok(stream)) = handshake.await {
                    let _ = tx.send(Ok(stream)).await;
                }
            });
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// `AuthMetadataService` of a server without authentication: clients configured with
/// `insecure: true` never need it; anything that asks learns there is no OAuth2 here.
#[derive(Debug, Clone, Copy)]
pub struct NoAuth;

#[tonic::async_trait]
impl AuthMetadataService for NoAuth {
    async fn get_o_auth2_metadata(
        &self,
        _request: Request<OAuth2MetadataRequest>,
    ) -> Result<Response<OAuth2MetadataResponse>, Status> {
        Err(Status::unimplemented(
            "flyteidl.service.AuthMetadataService/GetOAuth2Metadata: the union sandbox does not use authentication",
        ))
    }

    async fn get_public_client_config(
        &self,
        _request: Request<PublicClientAuthConfigRequest>,
    ) -> Result<Response<PublicClientAuthConfigResponse>, Status> {
        Err(Status::unimplemented(
            "flyteidl.service.AuthMetadataService/GetPublicClientConfig: the union sandbox does not use authentication",
        ))
    }
}
