//! Why authentication failed. Messages name the endpoint, the flow and the config key to fix;
//! they never quote a token, a code or a secret (servers' error descriptions are passed on only
//! after [`union_diagnostics`]'s masking, by the renderer).

use super::AuthType;

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    /// AuthMetadataService did not answer.
    #[error("cannot learn how {endpoint} authenticates (AuthMetadataService/{rpc}): {detail}")]
    Discovery {
        endpoint: String,
        rpc: &'static str,
        detail: String,
    },
    /// ClientSecret without an id or secret.
    #[error("authType ClientSecret needs admin.clientId and a client secret")]
    MissingClientCredentials { has_id: bool, has_secret: bool },
    /// ExternalCommand without `admin.command`.
    #[error("authType ExternalCommand needs admin.command")]
    MissingCommand,
    /// The token endpoint said no.
    #[error("the token endpoint {url} refused the {grant} request: HTTP {status}{}", error.as_ref().map(|e| format!(" {e}")).unwrap_or_default())]
    Refused {
        url: String,
        grant: &'static str,
        status: u16,
        /// The OAuth2 `error` code (`invalid_client`, `invalid_grant`...).
        error: Option<String>,
        description: Option<String>,
    },
    /// The token endpoint (or device endpoint) could not be reached or answered nonsense.
    #[error("cannot get a token from {url}: {detail}")]
    Http { url: String, detail: String },
    /// `admin.command` or `admin.proxyCommand` failed.
    #[error("{key} `{command}` failed: {detail}")]
    Command {
        key: &'static str,
        command: String,
        detail: String,
    },
    /// The PKCE flow's local listener could not start or got a bad callback.
    #[error("browser login to {endpoint} failed: {detail}")]
    Browser { endpoint: String, detail: String },
    /// DeviceFlow: the server has no device endpoint, the code expired or the user said no.
    #[error("device login to {endpoint} failed: {detail}")]
    Device { endpoint: String, detail: String },
    /// New credentials were fetched and the server still refused them.
    #[error("{endpoint} refused the credentials of authType {flow:?}: {message}")]
    StillUnauthenticated {
        endpoint: String,
        flow: AuthType,
        message: String,
    },
}

impl union_diagnostics::Hint for AuthError {
    fn hints(&self) -> Vec<String> {
        match self {
            AuthError::Discovery { .. } => vec![
                "the server asked for a token but does not say how to get one; check admin.endpoint, or set admin.authType: ExternalCommand with admin.command".into(),
            ],
            AuthError::MissingClientCredentials { has_id, has_secret } => {
                let mut h = Vec::new();
                if !has_id {
                    h.push("set admin.clientId (or FLYTE_CREDENTIALS_CLIENT_ID)".to_string());
                }
                if !has_secret {
                    h.push("set admin.clientSecretLocation (a file holding the secret) or admin.clientSecretEnvVar (the name of a variable holding it)".into());
                }
                h
            }
            AuthError::MissingCommand => {
                vec!["set admin.command to a command that prints a token, e.g. [\"gcloud\", \"auth\", \"print-identity-token\"]".into()]
            }
            AuthError::Refused { error, .. } => match error.as_deref() {
                Some("invalid_client") => vec![
                    "check admin.clientId and the client secret (admin.clientSecretLocation / admin.clientSecretEnvVar, or UNION_API_KEY)".into(),
                ],
                Some("invalid_grant") => vec![
                    "the login expired or was already used; run the command again to log in anew".into(),
                ],
                Some("access_denied") => vec!["the login was denied in the browser; run the command again and approve it".into()],
                _ => vec!["check admin.scopes and admin.audience against what the server allows".into()],
            },
            AuthError::Http { .. } => vec![
                "check that the token endpoint is reachable from here (admin.httpProxyURL sets a proxy for it; admin.caCertFilePath a CA)".into(),
            ],
            AuthError::Command { key, .. } => {
                vec![format!("run the command of {key} in a terminal to see why it fails")]
            }
            AuthError::Browser { .. } => vec![
                "open the printed URL in a browser on this machine and approve, or use admin.authType: DeviceFlow on a machine without one".into(),
            ],
            AuthError::Device { .. } => {
                vec!["run the command again and approve the code at the printed URL".into()]
            }
            AuthError::StillUnauthenticated { .. } => vec![
                "the credentials were accepted by the token endpoint but not by the API: check admin.audience and admin.scopes, or ask the cluster's operator which client to use".into(),
            ],
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            AuthError::Refused {
                description: Some(d),
                ..
            } => Some(d.clone()),
            _ => None,
        }
    }
}
