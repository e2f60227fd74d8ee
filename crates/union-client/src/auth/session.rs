//! The credentials of one connection: the header every call carries, and how to get a new one
//! when the server refuses it (flytekit's `Authenticator` subclasses behind its
//! `AuthUnaryInterceptor`).
//!
//! Like flytekit, nothing happens until the server asks: the first call goes out with a cached
//! token or none, so a server without authentication (the sandbox) costs nothing. Refreshes are
//! serialized, and a call refused with a token that has since been replaced just retries with
//! the new one, so a registration of many entities in parallel logs in once.

use std::sync::{Arc, Mutex, RwLock};

use http::{HeaderName, HeaderValue};
use tonic::transport::Channel;

use super::discovery::{self, ClientConfig};
use super::token::{self, Tokens};
use super::{
    command, device, keyring, pkce, AuthError, AuthSettings, AuthType, Notify, Secret, TlsSettings,
};

/// The header of the current credentials, and which refresh produced it.
#[derive(Clone)]
pub(crate) struct Header {
    pub name: HeaderName,
    pub value: HeaderValue,
    pub generation: u64,
}

#[derive(Default)]
struct State {
    client_config: Option<ClientConfig>,
    refresh_token: Option<Secret>,
    generation: u64,
}

/// Credentials for one endpoint.
pub struct Session {
    endpoint: String,
    settings: AuthSettings,
    tls: TlsSettings,
    notify: Notify,
    raw: Channel,
    keyring: Option<keyring::Store>,
    state: tokio::sync::Mutex<State>,
    header: RwLock<Option<Header>>,
    proxy: tokio::sync::OnceCell<Result<HeaderValue, AuthError>>,
    last_error: Mutex<Option<AuthError>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("endpoint", &self.endpoint)
            .field("flow", &self.settings.flow())
            .finish_non_exhaustive()
    }
}

fn bearer(token: &Secret) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("Bearer {}", token.expose())).ok()?;
    // Keeps it out of hyper's and h2's debug output.
    v.set_sensitive(true);
    Some(v)
}

impl Session {
    /// `raw`: a channel to the same server without this session, for AuthMetadataService.
    pub async fn open(
        endpoint: &str,
        settings: AuthSettings,
        tls: TlsSettings,
        notify: Notify,
        raw: Channel,
    ) -> Arc<Session> {
        let mut state = State::default();
        let mut header = None;
        let mut keyring = None;
        if matches!(settings.flow(), AuthType::Pkce | AuthType::DeviceFlow) {
            // The OS keyring speaks D-Bus, which blocks.
            let ep = endpoint.to_string();
            let found = tokio::task::spawn_blocking(move || {
                keyring::Store::pick().map(|s| {
                    let cached = s.load(&ep);
                    (s, cached)
                })
            })
            .await
            .ok()
            .flatten();
            if let Some((store, cached)) = found {
                keyring = Some(store);
                state.refresh_token = cached.refresh_token;
                // flytekit sends a cached token under `authorization` until it has asked the
                // server for its header name (flyteadmin accepts both).
                header = cached
                    .access_token
                    .as_ref()
                    .and_then(bearer)
                    .map(|value| Header {
                        name: HeaderName::from_static("authorization"),
                        value,
                        generation: 0,
                    });
            }
        }
        Arc::new(Session {
            endpoint: endpoint.to_string(),
            settings,
            tls,
            notify,
            raw,
            keyring,
            state: tokio::sync::Mutex::new(state),
            header: RwLock::new(header),
            proxy: tokio::sync::OnceCell::new(),
            last_error: Mutex::new(None),
        })
    }

    /// The endpoint, as configured (the token cache's key).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The flow in effect.
    pub fn flow(&self) -> AuthType {
        self.settings.flow()
    }

    pub(crate) fn header(&self) -> Option<Header> {
        self.header.read().ok().and_then(|h| h.clone())
    }

    /// The `proxy-authorization` value from `admin.proxyCommand`, run once per process.
    pub(crate) async fn proxy_header(&self) -> Result<Option<HeaderValue>, AuthError> {
        if self.settings.proxy_command.is_empty() {
            return Ok(None);
        }
        let r = self
            .proxy
            .get_or_init(|| async {
                let t = command::run("admin.proxyCommand", &self.settings.proxy_command).await?;
                bearer(&t).ok_or_else(|| AuthError::Command {
                    key: "admin.proxyCommand",
                    command: self.settings.proxy_command.join(" "),
                    detail: "it printed something that cannot be a header value".into(),
                })
            })
            .await;
        r.clone().map(Some)
    }

    /// Remember why authentication failed, for the error the caller builds from the refused call.
    pub(crate) fn set_error(&self, e: AuthError) {
        if let Ok(mut slot) = self.last_error.lock() {
            *slot = Some(e);
        }
    }

    /// Why the last refused call could not be authenticated, if we know.
    pub fn take_error(&self) -> Option<AuthError> {
        self.last_error.lock().ok().and_then(|mut s| s.take())
    }

    /// Get new credentials, unless those the refused call carried (`seen`) were already
    /// replaced by another call's refresh.
    pub(crate) async fn refresh(&self, seen: Option<u64>) -> Result<(), AuthError> {
        let mut state = self.state.lock().await;
        let current = self.header().map(|h| h.generation);
        if current.is_some() && current != seen {
            return Ok(());
        }
        let proxy = self.proxy_header().await?;
        let proxy_text = proxy
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let flow = self.settings.flow();
        if state.client_config.is_none() {
            match discovery::discover(self.raw.clone(), &self.endpoint, proxy_text.as_deref()).await
            {
                Ok(c) => state.client_config = Some(c),
                // flytekit's command flow asks only for the header name; without an answer the
                // standard one still works.
                Err(_) if flow == AuthType::ExternalCommand => {}
                Err(e) => return Err(e),
            }
        }
        let header_name = state
            .client_config
            .as_ref()
            .map(|c| c.header_key.clone())
            .unwrap_or_else(|| "authorization".into());
        let token = match flow {
            AuthType::ExternalCommand => {
                if self.settings.command.is_empty() {
                    return Err(AuthError::MissingCommand);
                }
                command::run("admin.command", &self.settings.command).await?
            }
            AuthType::ClientSecret => {
                let cfg = state.client_config.as_ref().expect("discovered above");
                self.client_credentials(cfg).await?.access_token
            }
            AuthType::Pkce | AuthType::DeviceFlow => {
                let cfg = state.client_config.clone().expect("discovered above");
                let tokens = self.user_login(&cfg, state.refresh_token.clone()).await?;
                state.refresh_token = tokens.refresh_token.clone().or(state.refresh_token.take());
                if let Some(store) = self.keyring.clone() {
                    let (ep, cached) = (
                        self.endpoint.clone(),
                        keyring::Cached {
                            access_token: Some(tokens.access_token.clone()),
                            refresh_token: tokens.refresh_token.clone(),
                            id_token: tokens.id_token.clone(),
                        },
                    );
                    let _ = tokio::task::spawn_blocking(move || store.store(&ep, &cached)).await;
                }
                tokens.access_token
            }
        };
        let value = bearer(&token).ok_or_else(|| AuthError::Http {
            url: self.endpoint.clone(),
            detail: "the token is not a valid header value".into(),
        })?;
        let name = HeaderName::from_bytes(header_name.as_bytes())
            .unwrap_or(HeaderName::from_static("authorization"));
        state.generation += 1;
        if let Ok(mut h) = self.header.write() {
            *h = Some(Header {
                name,
                value,
                generation: state.generation,
            });
        }
        Ok(())
    }

    fn http(&self, url: &str) -> Result<reqwest::Client, AuthError> {
        super::http::client(&self.settings, &self.tls, url)
    }

    fn scopes(&self, cfg: &ClientConfig) -> Vec<String> {
        if self.settings.scopes.is_empty() {
            cfg.scopes.clone()
        } else {
            self.settings.scopes.clone()
        }
    }

    async fn client_credentials(&self, cfg: &ClientConfig) -> Result<Tokens, AuthError> {
        let (Some(id), Some(secret)) = (&self.settings.client_id, &self.settings.client_secret)
        else {
            return Err(AuthError::MissingClientCredentials {
                has_id: self.settings.client_id.is_some(),
                has_secret: self.settings.client_secret.is_some(),
            });
        };
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "client_credentials".into()),
            ("scope", token::scope_value(&self.scopes(cfg))),
        ];
        let audience = self
            .settings
            .audience
            .clone()
            .filter(|a| !a.is_empty())
            .or_else(|| Some(cfg.audience.clone()).filter(|a| !a.is_empty()));
        if let Some(a) = audience {
            form.push(("audience", a));
        }
        let basic = token::basic_authorization(id, secret.expose());
        let http = self.http(&cfg.token_endpoint)?;
        token::post(
            &http,
            &cfg.token_endpoint,
            "client_credentials",
            &form,
            Some(&basic),
        )
        .await
    }

    /// PKCE or device flow: the refresh token first, a full login if the server refuses it.
    async fn user_login(
        &self,
        cfg: &ClientConfig,
        refresh_token: Option<Secret>,
    ) -> Result<Tokens, AuthError> {
        let http = self.http(&cfg.token_endpoint)?;
        let scopes = self.scopes(cfg);
        let pkce = self.settings.flow() == AuthType::Pkce;
        // PKCE takes the audience from the server; the device flow prefers the config's.
        let audience = if pkce {
            Some(cfg.audience.clone())
        } else {
            self.settings
                .audience
                .clone()
                .or_else(|| Some(cfg.audience.clone()))
        }
        .filter(|a| !a.is_empty());
        if let Some(rt) = refresh_token {
            let mut form: Vec<(&str, String)> = vec![
                ("grant_type", "refresh_token".into()),
                ("refresh_token", rt.expose().to_string()),
                ("client_id", cfg.client_id.clone()),
            ];
            if !pkce {
                form.push(("scope", token::scope_value(&scopes)));
                if let Some(a) = &audience {
                    form.push(("audience", a.clone()));
                }
            }
            match token::post(&http, &cfg.token_endpoint, "refresh_token", &form, None).await {
                Ok(t) => return Ok(t),
                Err(AuthError::Refused { .. }) => {
                    if let Some(store) = self.keyring.clone() {
                        let ep = self.endpoint.clone();
                        let _ = tokio::task::spawn_blocking(move || store.delete(&ep)).await;
                    }
                    (self.notify)(&format!(
                        "The saved login for {} has expired; logging in again.",
                        self.endpoint
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        if pkce {
            pkce::login(
                &http,
                cfg,
                &scopes,
                audience.as_deref(),
                &self.endpoint,
                &self.notify,
            )
            .await
        } else {
            device::login(
                &http,
                cfg,
                &scopes,
                audience.as_deref(),
                &self.endpoint,
                &self.notify,
            )
            .await
        }
    }
}
