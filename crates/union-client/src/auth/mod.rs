//! Authentication as flytekit 1.16.31 and union 0.1.204 do it, so that a Flyte cluster with
//! authentication on, or a Union tenant, takes `union` with the same config file as pyflyte.
//!
//! - [`mode`]: `admin.authType`, read as flytekit reads it.
//! - [`api_key`]: union's `UNION_API_KEY` (and aliases).
//! - [`token`]: requests to the OAuth2 token endpoint (client credentials, refresh, device code,
//!   authorization code), shaped as flytekit's `token_client` shapes them.
//! - `discovery`: AuthMetadataService, asked without a token.
//! - `pkce`, `device`, `command`: the interactive and external flows.
//! - `keyring`: the token cache shared with union (`~/.union/keyring.cfg`).
//! - [`AuthChannel`]: the gRPC transport that adds the header to every call and, when the server
//!   answers UNAUTHENTICATED, gets new credentials and sends the call once more.
//!
//! A token or secret never appears in a `Debug`, `Display`, error or notice: they travel as
//! [`Secret`].

pub mod api_key;
mod channel;
mod command;
mod device;
mod discovery;
mod error;
mod http;
mod keyring;
pub mod mode;
mod pkce;
mod session;
pub mod token;

use std::sync::Arc;

pub use channel::AuthChannel;
pub use error::AuthError;
pub use mode::{AuthType, UnknownAuthType};
pub use session::Session;

/// A secret string (a client secret or a token). `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What the configuration says about authentication (flytekit's `PlatformConfig` credential
/// fields), already resolved: env over file, a client secret read from its file or variable.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// `admin.authType`, if set (the flow in effect is [`AuthSettings::flow`]).
    pub auth_type: Option<AuthType>,
    /// `admin.clientId`.
    pub client_id: Option<String>,
    /// From `clientSecretLocation`, `clientSecretEnvVar`, `FLYTE_CREDENTIALS_CLIENT_SECRET` or
    /// an API key.
    pub client_secret: Option<Secret>,
    /// Whether the secret came from `clientSecretLocation`/`clientSecretEnvVar` (which forces
    /// ClientSecret, as flytekit's `PlatformConfig.auto` does) or an API key.
    pub secret_forces_client_secret: bool,
    /// `admin.command`: prints a token (ExternalCommand).
    pub command: Vec<String>,
    /// `admin.proxyCommand`: prints a token for a proxy in front of the cluster.
    pub proxy_command: Vec<String>,
    /// `admin.scopes` (empty: the server's).
    pub scopes: Vec<String>,
    /// `admin.audience`.
    pub audience: Option<String>,
    /// `admin.httpProxyURL`: token requests only, as in flytekit.
    pub http_proxy_url: Option<String>,
}

impl AuthSettings {
    /// The flow in effect.
    pub fn flow(&self) -> AuthType {
        AuthType::effective(self.auth_type, self.secret_forces_client_secret)
    }
}

/// How TLS is checked, for the token endpoint as for gRPC.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// `admin.insecureSkipVerify`: accept any certificate.
    pub skip_verify: bool,
    /// `admin.caCertFilePath`: trust this CA too.
    pub ca_cert_file: Option<std::path::PathBuf>,
}

/// A plain HTTP client that checks TLS as `tls` says (for signed URLs on the same server).
pub fn http_client_for(tls: &TlsSettings) -> Result<reqwest::Client, String> {
    http_builder(tls)?
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .map_err(|e| e.to_string())
}

/// A client builder that checks TLS as flytekit's `verify=` does: nothing with
/// `insecureSkipVerify`, else the system's roots plus `caCertFilePath`.
pub(crate) fn http_builder(tls: &TlsSettings) -> Result<reqwest::ClientBuilder, String> {
    let mut b = reqwest::Client::builder().connect_timeout(std::time::Duration::from_secs(10));
    if tls.skip_verify {
        b = b.danger_accept_invalid_certs(true);
    }
    if let Some(ca) = &tls.ca_cert_file {
        let pem = std::fs::read(ca)
            .map_err(|e| format!("cannot read caCertFilePath {}: {e}", ca.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| format!("caCertFilePath {} is not PEM: {e}", ca.display()))?;
        b = b.add_root_certificate(cert);
    }
    Ok(b)
}

/// A reqwest error without its URL (a signed URL's query is a credential).
pub fn describe_http_error(e: &reqwest::Error) -> String {
    http::describe(e)
}

/// Tells the user something an interactive flow needs them to do (open a URL, type a code).
/// The CLI prints it; the library never does.
pub type Notify = Arc<dyn Fn(&str) + Send + Sync>;
