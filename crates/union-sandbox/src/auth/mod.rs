//! `union sandbox start --auth`: the sandbox as its own OAuth2 authorization server, so that
//! flytekit and union authenticate against it exactly as against flyteadmin.
//!
//! - [`metadata`]: `AuthMetadataService` (how clients discover the endpoints, answered without a
//!   token) and `IdentityService.UserInfo`.
//! - [`http`]: the OAuth2 endpoints on the sandbox's port (token, authorize, device flow).
//! - [`layer`]: the gate in front of every other gRPC call (a bearer token, and the org in org mode).
//! - [`token`]: the signed tokens (HS256 JWTs).
//!
//! Two clients exist: the public `flytectl` (PKCE and device flow, the person at the machine
//! approves in a browser) and the confidential `union-sandbox` (client credentials, its secret in
//! `<data dir>/auth/client-secret`). State on disk is the signing key and that secret, in a
//! directory only the owner can read; pending codes live in memory.

pub mod http;
pub mod layer;
pub mod metadata;
mod pages;
mod pending;
pub mod token;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

pub use layer::AuthLayer;
pub use metadata::{Identity, Metadata};
pub use token::{Claims, TokenError, TokenKind};

/// The public client (PKCE and device flow), named as flyteadmin names its own.
pub const PUBLIC_CLIENT_ID: &str = "flytectl";
/// Where the web console receives its authorization code (see [`Authority::is_console_redirect`]).
pub const CONSOLE_SIGNIN_PATH: &str = "/console/signin";
/// The confidential client (client credentials).
pub const CONFIDENTIAL_CLIENT_ID: &str = "union-sandbox";
/// Subject of tokens from the PKCE and device flows: the person at the machine.
pub const USER_SUBJECT: &str = "sandbox-user";
/// Scopes the sandbox knows (flyteadmin's).
pub const SCOPES: [&str; 2] = ["all", "offline"];
/// gRPC metadata key clients put their token in (flyteadmin's default).
pub const AUTHORIZATION_METADATA_KEY: &str = "flyte-authorization";
/// gRPC metadata key naming the organization (union's interceptor sends it).
pub const ORG_METADATA_KEY: &str = "x-user-active-org";
/// flyteadmin's default redirect URI: flytekit listens there for the PKCE callback.
pub const DEFAULT_REDIRECT_URI: &str = "http://localhost:53593/callback";
/// Default access-token lifetime.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// Refresh-token lifetime: a month of not having to approve again.
pub const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// Longest access-token lifetime accepted (keeps `iat + lifetime` far from overflow).
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);
/// Directory of the auth state, in the data directory.
pub const AUTH_DIR: &str = "auth";
/// HMAC key signing the tokens, in [`AUTH_DIR`].
pub const SIGNING_KEY_FILE: &str = "signing.key";
/// The confidential client's secret, in [`AUTH_DIR`].
pub const CLIENT_SECRET_FILE: &str = "client-secret";

/// The scheme of the sandbox's URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheme {
    /// Plain HTTP/2 (and HTTP/1.1): what the sandbox serves today.
    #[default]
    Http,
    /// When the sandbox serves TLS.
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// How the sandbox authenticates (`union sandbox start --auth ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// Lifetime of access tokens.
    pub token_lifetime: Duration,
    /// The only redirect URI the public client may use (exact match).
    pub redirect_uri: String,
    /// Org mode: every call must name this organization.
    pub org: Option<String>,
    /// Scheme of the URLs the metadata advertises (https once the sandbox serves TLS).
    pub scheme: Scheme,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            redirect_uri: DEFAULT_REDIRECT_URI.to_string(),
            org: None,
            scheme: Scheme::default(),
        }
    }
}

impl AuthSettings {
    /// Refuse settings the sandbox could not honour.
    pub fn validate(&self) -> Result<(), AuthError> {
        if self.token_lifetime.as_secs() == 0 || self.token_lifetime > MAX_TOKEN_LIFETIME {
            return Err(AuthError::Settings(format!(
                "the token lifetime must be between 1 s and {} s, not {} s",
                MAX_TOKEN_LIFETIME.as_secs(),
                self.token_lifetime.as_secs()
            )));
        }
        let uri = &self.redirect_uri;
        let rest = uri
            .strip_prefix("http://")
            .or_else(|| uri.strip_prefix("https://"));
        if !rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
            || uri.contains('#')
            || uri.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(AuthError::Settings(format!(
                "the redirect URI `{}` is not an absolute http(s) URL without a fragment",
                uri.escape_debug()
            )));
        }
        if let Some(org) = &self.org {
            let ok = !org.is_empty()
                && org
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                return Err(AuthError::Settings(format!(
                    "the org `{}` must be letters, digits, `-`, `_` or `.`",
                    org.escape_debug()
                )));
            }
        }
        Ok(())
    }
}

/// Errors preparing the sandbox's authentication.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A directory or file of the auth state could not be created or read.
    #[error("cannot prepare `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file of the auth state exists but cannot be used.
    #[error("`{}` is not usable: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// The OS random generator failed.
    #[error("cannot generate the sandbox's authentication secrets: {0}")]
    Random(String),
    /// Settings out of range.
    #[error("invalid authentication settings: {0}")]
    Settings(String),
}

impl union_diagnostics::Hint for AuthError {
    fn hints(&self) -> Vec<String> {
        match self {
            AuthError::Corrupt { path, .. } => vec![format!(
                "delete `{}` to have the sandbox make a new one (tokens and secrets handed out before then stop working)",
                path.display()
            )],
            AuthError::Io { path, .. } => vec![format!(
                "the sandbox keeps its authentication state in `{}`: check that you own it",
                path.display()
            )],
            _ => Vec::new(),
        }
    }
}

/// The sandbox's authorization server: keys, clients, settings, and the codes in flight.
pub struct Authority {
    settings: AuthSettings,
    base_url: String,
    /// `host:port` clients dial (the `endpoint` of their config).
    endpoint: String,
    signer: token::Signer,
    client_secret: String,
    client_secret_path: PathBuf,
    pending: Mutex<pending::Pending>,
    /// Seconds added to the clock: lets tests age tokens and codes.
    skew: AtomicU64,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("base_url", &self.base_url)
            .field("settings", &self.settings)
            .field("client_secret_path", &self.client_secret_path)
            .finish_non_exhaustive()
    }
}

/// `host:port` of a bound address as clients reach it: the loopback address for a wildcard bind.
pub fn client_endpoint(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> AuthError + '_ {
    move |source| AuthError::Io {
        path: path.to_path_buf(),
        source,
    }
}

use crate::blobs::unix_now;

impl Authority {
    /// The authority of the sandbox bound at `addr`, with its state in `<data_dir>/auth/`
    /// (created on first use, reused after: tokens survive restarts on the same address).
    pub fn open(
        data_dir: &Path,
        settings: AuthSettings,
        addr: SocketAddr,
    ) -> Result<Authority, AuthError> {
        settings.validate()?;
        let dir = data_dir.join(AUTH_DIR);
        make_private_dir(&dir)?;
        let key_path = dir.join(SIGNING_KEY_FILE);
        let key = read_or_create(&key_path, || {
            let mut k = vec![0u8; 32];
            getrandom::fill(&mut k).map_err(|e| AuthError::Random(e.to_string()))?;
            Ok(k)
        })?;
        if key.len() < 32 {
            return Err(AuthError::Corrupt {
                path: key_path,
                reason: format!("a signing key is 32 bytes, this file has {}", key.len()),
            });
        }
        let client_secret_path = dir.join(CLIENT_SECRET_FILE);
        let secret = read_or_create(&client_secret_path, || {
            let s = token::random_token(32).map_err(|e| AuthError::Random(e.to_string()))?;
            Ok(format!("{s}\n").into_bytes())
        })?;
        let client_secret = String::from_utf8(secret)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| AuthError::Corrupt {
                path: client_secret_path.clone(),
                reason: "the client secret is empty or not text".into(),
            })?;
        let endpoint = client_endpoint(addr);
        Ok(Authority {
            base_url: format!("{}://{endpoint}", settings.scheme.as_str()),
            endpoint,
            settings,
            signer: token::Signer::new(&key),
            client_secret,
            client_secret_path,
            pending: Mutex::new(pending::Pending::default()),
            skew: AtomicU64::new(0),
        })
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// `http://host:port`: the issuer, and the prefix of every endpoint.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `host:port`, as a client's `admin.endpoint` names the sandbox (after `dns:///`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The OAuth2 token endpoint.
    pub fn token_endpoint(&self) -> String {
        format!("{}{}", self.base_url, http::TOKEN_PATH)
    }

    /// Whether `uri` is the web console's sign-in page on this sandbox (`/console/signin` at its
    /// port, on its address or a loopback name: the page may have been opened by either), which
    /// the public client may be redirected to besides its registered URI.
    pub fn is_console_redirect(&self, uri: &str) -> bool {
        let Some(rest) = uri
            .strip_prefix(self.settings.scheme.as_str())
            .and_then(|r| r.strip_prefix("://"))
        else {
            return false;
        };
        let Some(authority) = rest.strip_suffix(CONSOLE_SIGNIN_PATH) else {
            return false;
        };
        let own = self.base_url.split("://").nth(1).unwrap_or_default();
        let port = own.rsplit_once(':').map(|(_, p)| p).unwrap_or_default();
        authority == own
            || ["localhost", "127.0.0.1", "[::1]"]
                .iter()
                .any(|host| authority == format!("{host}:{port}"))
    }

    /// The browser's authorization endpoint (PKCE flow).
    pub fn authorization_endpoint(&self) -> String {
        format!("{}{}", self.base_url, http::AUTHORIZE_PATH)
    }

    /// Where device-flow clients get their codes.
    pub fn device_authorization_endpoint(&self) -> String {
        format!("{}{}", self.base_url, http::DEVICE_AUTHORIZE_PATH)
    }

    /// Where the person enters a device-flow user code.
    pub fn verification_uri(&self) -> String {
        format!("{}{}", self.base_url, http::DEVICE_PATH)
    }

    /// The file holding the confidential client's secret (its path is fine to show; its content
    /// is not).
    pub fn client_secret_path(&self) -> &Path {
        &self.client_secret_path
    }

    /// Check an access token from a call.
    pub fn verify_access(&self, token: &str) -> Result<Claims, TokenError> {
        self.signer
            .verify(token, TokenKind::Access, &self.base_url, self.now())
    }

    pub(crate) fn verify_refresh(&self, token: &str) -> Result<Claims, TokenError> {
        self.signer
            .verify(token, TokenKind::Refresh, &self.base_url, self.now())
    }

    /// Whether `candidate` is the confidential client's secret.
    pub(crate) fn client_secret_matches(&self, candidate: &str) -> bool {
        token::constant_time_eq(candidate.as_bytes(), self.client_secret.as_bytes())
    }

    pub(crate) fn now(&self) -> u64 {
        unix_now().saturating_add(self.skew.load(Ordering::Relaxed))
    }

    /// Move this authority's clock forward (tests of expiry).
    #[cfg(test)]
    pub(crate) fn advance(&self, secs: u64) {
        self.skew.fetch_add(secs, Ordering::Relaxed);
    }

    pub(crate) fn pending(&self) -> std::sync::MutexGuard<'_, pending::Pending> {
        // A panic while holding the lock leaves a map of codes that is still consistent.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A signed token for `sub` of `client_id`.
    pub(crate) fn sign(
        &self,
        kind: TokenKind,
        sub: &str,
        client_id: &str,
        scopes: &[String],
    ) -> Result<String, TokenError> {
        let iat = self.now();
        let lifetime = match kind {
            TokenKind::Access => self.settings.token_lifetime,
            TokenKind::Refresh => REFRESH_TOKEN_LIFETIME,
        };
        let claims = Claims {
            iss: self.base_url.clone(),
            aud: self.base_url.clone(),
            sub: sub.to_string(),
            client_id: client_id.to_string(),
            scp: scopes.to_vec(),
            iat,
            exp: iat.saturating_add(lifetime.as_secs()),
            jti: token::random_token(16).map_err(|_| TokenError::Encode)?,
            typ: kind,
            org: self.settings.org.clone(),
        };
        self.signer.sign(&claims)
    }
}

/// `dir` as a directory only its owner can enter (0700), created if missing.
fn make_private_dir(dir: &Path) -> Result<(), AuthError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta = std::fs::metadata(dir).map_err(io_err(dir))?;
            if !meta.is_dir() {
                return Err(AuthError::Corrupt {
                    path: dir.to_path_buf(),
                    reason: "it is not a directory".into(),
                });
            }
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(io_err(dir))?;
            }
            Ok(())
        }
        Err(e) => Err(io_err(dir)(e)),
    }
}

/// The content of `path`, or the one `make` gives, written with mode 0600 if the file was missing.
fn read_or_create(
    path: &Path,
    make: impl FnOnce() -> Result<Vec<u8>, AuthError>,
) -> Result<Vec<u8>, AuthError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::read(path) {
        Ok(bytes) => {
            let mode = std::fs::metadata(path)
                .map_err(io_err(path))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(io_err(path))?;
            }
            return Ok(bytes);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(path)(e)),
    }
    let bytes = make()?;
    // create_new: two sandboxes starting on one data directory must not each write a secret.
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| {
            f.write_all(&bytes)?;
            f.sync_all()
        });
    match written {
        Ok(()) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read(path).map_err(io_err(path))
        }
        Err(e) => Err(io_err(path)(e)),
    }
}

#[cfg(test)]
mod serve_tests;
#[cfg(test)]
pub(crate) mod tests;
