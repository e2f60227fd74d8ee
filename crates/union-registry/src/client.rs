//! The registry HTTP API v2 client: manifest existence checks and digests, with anonymous access
//! first and the `WWW-Authenticate` challenge (Bearer token or Basic) on 401.

use std::collections::HashMap;
use std::error::Error as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::challenge::{parse_challenges, Challenge};
use super::credentials::{Credential, DockerConfig};
use super::reference::ImageReference;
use super::{ImageStatus, RegistryError};

/// The manifest media types we accept: OCI index and manifest, Docker manifest list and v2.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// One HTTP request to a registry, kept whole so it can be sent again after a 401 challenge.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub method: Method,
    pub headers: Vec<(reqwest::header::HeaderName, HeaderValue)>,
    pub body: Option<bytes::Bytes>,
}

impl Call {
    pub fn new(method: Method) -> Call {
        Call {
            method,
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn header(mut self, name: reqwest::header::HeaderName, value: HeaderValue) -> Call {
        self.headers.push((name, value));
        self
    }

    pub fn body(mut self, body: bytes::Bytes) -> Call {
        self.body = Some(body);
        self
    }
}

/// OAuth2 `client_id` sent when exchanging an identity (refresh) token, as docker sends `docker`.
const OAUTH_CLIENT_ID: &str = "union-cli";
/// Token lifetime when the token service does not say (the distribution token spec's default).
const DEFAULT_TOKEN_SECONDS: u64 = 60;

/// Configures a [`RegistryClient`].
#[derive(Debug)]
pub struct RegistryClientBuilder {
    anonymous: bool,
    docker_config_dir: Option<PathBuf>,
    docker_config_file: Option<PathBuf>,
    insecure: Vec<String>,
    connect_timeout: Duration,
    timeout: Duration,
}

impl Default for RegistryClientBuilder {
    fn default() -> Self {
        Self {
            anonymous: false,
            docker_config_dir: None,
            docker_config_file: None,
            insecure: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
        }
    }
}

impl RegistryClientBuilder {
    /// Uses no credentials at all: asks registries what they serve to anyone (what a cluster
    /// node without an image pull secret gets).
    pub fn anonymous(mut self) -> Self {
        self.anonymous = true;
        self
    }

    /// Reads `config.json` from this directory instead of `$DOCKER_CONFIG` / `~/.docker`.
    pub fn docker_config_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.docker_config_dir = Some(dir.into());
        self
    }

    /// Reads credentials from this docker config file (an ImageSpec's `registry_config`), falling
    /// back to the default config for registries it has nothing for.
    pub fn docker_config_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.docker_config_file = Some(file.into());
        self
    }

    /// Speaks plain HTTP to this registry (`host` or `host:port`), like dockerd's
    /// `insecure-registries`. Loopback registries (`localhost`, `127.*`, `[::1]`) always are.
    pub fn insecure_registry(mut self, registry: impl Into<String>) -> Self {
        self.insecure.push(registry.into().to_ascii_lowercase());
        self
    }

    /// Time allowed to open a connection (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for one whole request (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Loads the docker config and sets up one pooled HTTPS client (webpki and native roots).
    pub fn build(self) -> Result<RegistryClient, RegistryError> {
        let mut config = match &self.docker_config_dir {
            _ if self.anonymous => DockerConfig::default(),
            Some(dir) => DockerConfig::load(dir)?,
            None => DockerConfig::load_default()?,
        };
        if let (Some(file), false) = (&self.docker_config_file, self.anonymous) {
            config = DockerConfig::load_file(file)?.with_fallback(config);
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("union-cli/", env!("CARGO_PKG_VERSION")))
            .use_rustls_tls()
            // Both root stores: webpki for a bare machine, the platform's for corporate/local CAs.
            .tls_built_in_webpki_certs(true)
            .tls_built_in_native_certs(true)
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| RegistryError::Client(error_chain(&e)))?;
        Ok(RegistryClient {
            http,
            config: Arc::new(config),
            insecure: self.insecure,
            timeout: self.timeout,
            hosts: Mutex::new(HashMap::new()),
        })
    }
}

/// A registry API client. Create one and reuse it: it pools connections and caches credentials,
/// each host's auth scheme and bearer tokens, so a repeated check costs one request.
#[derive(Debug)]
pub struct RegistryClient {
    http: reqwest::Client,
    config: Arc<DockerConfig>,
    insecure: Vec<String>,
    timeout: Duration,
    hosts: Mutex<HashMap<String, HostState>>,
}

/// What we learned about one registry. `Debug` is derived over redacting types only.
#[derive(Default)]
struct HostState {
    /// `Some(None)`: looked up, nothing configured.
    credential: Option<Option<Credential>>,
    scheme: Option<Scheme>,
    /// Bearer tokens by scope, with their expiry.
    tokens: HashMap<String, (HeaderValue, Instant)>,
}

impl std::fmt::Debug for HostState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostState")
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Basic,
    Bearer,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl RegistryClient {
    /// A builder with defaults: credentials from `$DOCKER_CONFIG` or `~/.docker`, HTTPS except for
    /// loopback registries.
    pub fn builder() -> RegistryClientBuilder {
        RegistryClientBuilder::default()
    }

    /// The docker config this client reads credentials from.
    pub fn docker_config(&self) -> &DockerConfig {
        &self.config
    }

    /// Whether `registry` (`host[:port]`) is spoken to over plain HTTP.
    pub fn is_insecure(&self, registry: &str) -> bool {
        let registry = registry.to_ascii_lowercase();
        let host = host_without_port(&registry);
        is_loopback(host) || self.insecure.iter().any(|i| *i == registry || i == host)
    }

    /// Credentials for `registry`, looked up once per client (credential helpers run off the
    /// async threads).
    pub async fn credentials_for(
        &self,
        registry: &str,
    ) -> Result<Option<Credential>, RegistryError> {
        if let Some(cached) = self.host(registry, |h| h.credential.clone()).flatten() {
            return Ok(cached);
        }
        let config = Arc::clone(&self.config);
        let name = registry.to_string();
        let found = tokio::task::spawn_blocking(move || config.credentials_for(&name))
            .await
            .map_err(|e| RegistryError::CredentialHelper {
                host: registry.to_string(),
                helper: "docker-credential-*".into(),
                detail: e.to_string(),
            })??;
        self.host_mut(registry, |h| h.credential = Some(found.clone()));
        Ok(found)
    }

    /// Does the manifest exist? One `HEAD /v2/<repo>/manifests/<tag|digest>` (plus the auth dance
    /// the first time a registry asks for it).
    pub async fn check(&self, image: &ImageReference) -> ImageStatus {
        let host = image.registry();
        let response = match self.send(image, Method::HEAD).await {
            Ok(response) => response,
            Err(reason) => return ImageStatus::Unknown { reason },
        };
        match response.status() {
            s if s.is_success() => {
                if let Some(digest) = image.digest() {
                    return ImageStatus::Exists {
                        digest: digest.to_string(),
                    };
                }
                match header_digest(&response) {
                    Some(digest) => ImageStatus::Exists { digest },
                    // Some registries omit the header on HEAD; the body then gives the digest.
                    None => match self.manifest_digest(image).await {
                        Ok(digest) => ImageStatus::Exists { digest },
                        Err(RegistryError::NotFound { .. }) => ImageStatus::Missing,
                        Err(reason) => ImageStatus::Unknown { reason },
                    },
                }
            }
            StatusCode::NOT_FOUND => ImageStatus::Missing,
            s => ImageStatus::Unknown {
                reason: RegistryError::UnexpectedStatus {
                    host: host.to_string(),
                    image: image.to_string(),
                    status: s.as_u16(),
                },
            },
        }
    }

    /// The manifest's digest (`sha256:…`): `Docker-Content-Digest` of a `GET`, or the SHA-256 of
    /// the manifest bytes when the registry does not send that header.
    pub async fn manifest_digest(&self, image: &ImageReference) -> Result<String, RegistryError> {
        let host = image.registry();
        let response = self.send(image, Method::GET).await?;
        match response.status() {
            s if s.is_success() => {
                if let Some(digest) = header_digest(&response) {
                    return Ok(digest);
                }
                let body = response
                    .bytes()
                    .await
                    .map_err(|e| self.unreachable(host, &e))?;
                Ok(format!("sha256:{:x}", Sha256::digest(&body)))
            }
            StatusCode::NOT_FOUND => Err(RegistryError::NotFound {
                host: host.to_string(),
                image: image.to_string(),
            }),
            s => Err(RegistryError::UnexpectedStatus {
                host: host.to_string(),
                image: image.to_string(),
                status: s.as_u16(),
            }),
        }
    }

    /// Sends a manifest request, answering one 401 challenge. A 401/403 after authenticating is an
    /// error; every other status is the caller's to interpret.
    async fn send(
        &self,
        image: &ImageReference,
        method: Method,
    ) -> Result<reqwest::Response, RegistryError> {
        let url = format!(
            "{}/v2/{}/manifests/{}",
            self.base_url(image),
            image.repository(),
            image.manifest_reference()
        );
        let scope = format!("repository:{}:pull", image.repository());
        let call = Call::new(method).header(ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        self.send_to(image.registry(), &url, &scope, &call).await
    }

    /// `http://` or `https://` and the API host of `image`'s registry.
    pub(crate) fn base_url(&self, image: &ImageReference) -> String {
        let scheme = if self.is_insecure(image.registry()) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}", image.api_host())
    }

    /// Sends `call` to `url` of registry `host`, answering one 401 challenge for `scope` (the
    /// body, if any, is sent again). A 401/403 after authenticating is an error; every other
    /// status is the caller's to interpret.
    pub(crate) async fn send_to(
        &self,
        host: &str,
        url: &str,
        scope: &str,
        call: &Call,
    ) -> Result<reqwest::Response, RegistryError> {
        let preset = self.cached_authorization(host, scope).await?;
        let first = self.request(call, url, host, preset.as_ref()).await?;
        let status = first.status();
        if status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN {
            return Ok(first);
        }
        let credential = self.credentials_for(host).await?;
        let denied = || match credential {
            Some(_) => RegistryError::CredentialsRefused {
                host: host.to_string(),
            },
            None => RegistryError::AuthenticationRequired {
                host: host.to_string(),
            },
        };
        if status == StatusCode::FORBIDDEN {
            return Err(denied());
        }
        let challenges: Vec<Challenge> = first
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_challenges)
            .collect();
        let authorization = self
            .authorize(host, &challenges, scope, credential.as_ref())
            .await?;
        let second = self.request(call, url, host, Some(&authorization)).await?;
        match second.status() {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                // Forget what did not work so the next call starts over.
                self.host_mut(host, |h| {
                    h.tokens.remove(scope);
                });
                Err(denied())
            }
            _ => Ok(second),
        }
    }

    async fn request(
        &self,
        call: &Call,
        url: &str,
        host: &str,
        authorization: Option<&HeaderValue>,
    ) -> Result<reqwest::Response, RegistryError> {
        let mut request = self.http.request(call.method.clone(), url);
        for (name, value) in &call.headers {
            request = request.header(name, value.clone());
        }
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value.clone());
        }
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        request.send().await.map_err(|e| self.unreachable(host, &e))
    }

    /// The Authorization header to send before any challenge, from what earlier calls learned.
    async fn cached_authorization(
        &self,
        host: &str,
        scope: &str,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let (scheme, token) = self
            .host(host, |h| {
                let token = h
                    .tokens
                    .get(scope)
                    .filter(|(_, expiry)| *expiry > Instant::now())
                    .map(|(t, _)| t.clone());
                (h.scheme, token)
            })
            .unwrap_or((None, None));
        match scheme {
            Some(Scheme::Bearer) => Ok(token),
            Some(Scheme::Basic) => Ok(self
                .credentials_for(host)
                .await?
                .as_ref()
                .and_then(basic_header)),
            None => Ok(None),
        }
    }

    /// Answers a 401 challenge: a Bearer token from the realm, or Basic credentials.
    async fn authorize(
        &self,
        host: &str,
        challenges: &[Challenge],
        scope: &str,
        credential: Option<&Credential>,
    ) -> Result<HeaderValue, RegistryError> {
        let required = || RegistryError::AuthenticationRequired {
            host: host.to_string(),
        };
        let bearer = challenges.iter().find(|c| c.scheme == "bearer");
        let basic = challenges.iter().find(|c| c.scheme == "basic");

        if let Some(challenge) = bearer {
            self.host_mut(host, |h| h.scheme = Some(Scheme::Bearer));
            let token = match credential {
                Some(Credential::RegistryToken(token)) => token.clone(),
                _ => self.fetch_token(host, challenge, scope, credential).await?,
            };
            return sensitive(&format!("Bearer {token}")).ok_or_else(|| {
                token_error(
                    host,
                    "the token service returned a token that is not a valid header value",
                )
            });
        }
        if basic.is_some() {
            self.host_mut(host, |h| h.scheme = Some(Scheme::Basic));
            return match credential {
                Some(c @ Credential::Basic { .. }) => basic_header(c).ok_or_else(required),
                Some(Credential::RegistryToken(token)) => {
                    sensitive(&format!("Bearer {token}")).ok_or_else(required)
                }
                Some(Credential::IdentityToken { .. }) => Err(token_error(
                    host,
                    "the registry asks for Basic auth but the docker config holds only an identity token",
                )),
                None => Err(required()),
            };
        }
        Err(token_error(
            host,
            "the registry answered 401 without a Bearer or Basic challenge",
        ))
    }

    /// Gets a bearer token from the challenge's realm (distribution token spec), anonymously, with
    /// Basic credentials, or by exchanging an identity (OAuth2 refresh) token.
    async fn fetch_token(
        &self,
        host: &str,
        challenge: &Challenge,
        scope: &str,
        credential: Option<&Credential>,
    ) -> Result<String, RegistryError> {
        let realm = challenge
            .param("realm")
            .ok_or_else(|| token_error(host, "the Bearer challenge has no realm"))?;
        let mut url = Url::parse(realm)
            .map_err(|_| token_error(host, &format!("the token realm `{realm}` is not a URL")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(token_error(
                host,
                &format!("the token realm `{realm}` is not HTTP(S)"),
            ));
        }
        // Never send credentials in clear text unless the registry itself is plain HTTP by choice.
        let realm_host = url.host_str().unwrap_or_default().to_string();
        if url.scheme() == "http"
            && credential.is_some()
            && !self.is_insecure(host)
            && !is_loopback(&realm_host)
        {
            return Err(token_error(
                host,
                &format!("the token realm `{realm}` is plain HTTP; refusing to send credentials"),
            ));
        }
        let service = challenge.param("service");
        let request = match credential {
            Some(Credential::IdentityToken { token, .. }) => {
                let mut form = Url::parse("http://form.invalid/").expect("static URL");
                {
                    let mut q = form.query_pairs_mut();
                    q.append_pair("grant_type", "refresh_token");
                    if let Some(service) = service {
                        q.append_pair("service", service);
                    }
                    q.append_pair("scope", scope);
                    q.append_pair("client_id", OAUTH_CLIENT_ID);
                    q.append_pair("refresh_token", token);
                }
                let body = form.query().unwrap_or_default().to_string();
                self.http
                    .post(url)
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body)
            }
            other => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(service) = service {
                        q.append_pair("service", service);
                    }
                    q.append_pair("scope", scope);
                }
                let request = self.http.get(url);
                match other.and_then(basic_header) {
                    Some(value) => request.header(AUTHORIZATION, value),
                    None => request,
                }
            }
        };
        let response = request
            .send()
            .await
            .map_err(|e| RegistryError::TokenService {
                host: host.to_string(),
                detail: format!(
                    "token realm {realm_host} unreachable: {}",
                    self.network_detail(&e)
                ),
            })?;
        match response.status() {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(match credential {
                    Some(_) => RegistryError::CredentialsRefused {
                        host: host.to_string(),
                    },
                    None => RegistryError::AuthenticationRequired {
                        host: host.to_string(),
                    },
                });
            }
            s => {
                return Err(token_error(
                    host,
                    &format!("token realm {realm_host} answered HTTP {}", s.as_u16()),
                ))
            }
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| self.unreachable(host, &e))?;
        // The body holds the token: its parse error must not quote it (serde_json's do not).
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
            token_error(
                host,
                &format!("token realm {realm_host} answered something that is not a token"),
            )
        })?;
        let token = parsed
            .token
            .filter(|t| !t.is_empty())
            .or(parsed.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| {
                token_error(
                    host,
                    &format!("token realm {realm_host} answered without a token"),
                )
            })?;
        let value = sensitive(&format!("Bearer {token}")).ok_or_else(|| {
            token_error(
                host,
                "the token service returned a token that is not a valid header value",
            )
        })?;
        // Keep a margin so a token does not expire between our check and the registry's.
        let seconds = parsed
            .expires_in
            .unwrap_or(DEFAULT_TOKEN_SECONDS)
            .clamp(10, 3600);
        let expiry = Instant::now() + Duration::from_secs(seconds - 5);
        self.host_mut(host, |h| {
            h.tokens.insert(scope.to_string(), (value, expiry));
        });
        Ok(token)
    }

    fn host<T>(&self, host: &str, f: impl FnOnce(&HostState) -> T) -> Option<T> {
        let hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts.get(host).map(f)
    }

    fn host_mut<T>(&self, host: &str, f: impl FnOnce(&mut HostState) -> T) -> T {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        f(hosts.entry(host.to_string()).or_default())
    }

    pub(crate) fn unreachable(&self, host: &str, e: &reqwest::Error) -> RegistryError {
        RegistryError::Unreachable {
            host: host.to_string(),
            detail: self.network_detail(e),
        }
    }

    fn network_detail(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            return format!("timed out after {} s", self.timeout.as_secs_f32());
        }
        error_chain(e)
    }
}

/// The causes of a reqwest error, without its first line (which only repeats the URL).
fn error_chain(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        // hyper-util's "client error (Connect)" wrapper says nothing the next cause does not.
        if text.starts_with("client error (") && s.source().is_some() {
            source = s.source();
            continue;
        }
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

fn token_error(host: &str, detail: &str) -> RegistryError {
    RegistryError::TokenService {
        host: host.to_string(),
        detail: detail.to_string(),
    }
}

fn sensitive(value: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(value).ok()?;
    value.set_sensitive(true);
    Some(value)
}

fn basic_header(credential: &Credential) -> Option<HeaderValue> {
    match credential {
        Credential::Basic { username, password } => {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            sensitive(&format!("Basic {encoded}"))
        }
        _ => None,
    }
}

fn header_digest(response: &reqwest::Response) -> Option<String> {
    let value = response
        .headers()
        .get("docker-content-digest")?
        .to_str()
        .ok()?
        .trim();
    (value.contains(':') && !value.is_empty()).then(|| value.to_string())
}

fn host_without_port(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_and_configured_registries() {
        let client = RegistryClient::builder()
            .docker_config_dir("/nonexistent-union-test")
            .insecure_registry("registry.lan:5000")
            .insecure_registry("Other.LAN")
            .build()
            .unwrap();
        for insecure in [
            "localhost:30000",
            "localhost",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "registry.lan:5000",
            "other.lan:443",
        ] {
            assert!(client.is_insecure(insecure), "{insecure}");
        }
        for secure in [
            "registry.lan:5001",
            "ghcr.io",
            "docker.io",
            "10.0.0.1:5000",
            "localhost.example.com",
        ] {
            assert!(!client.is_insecure(secure), "{secure}");
        }
    }

    #[test]
    fn basic_header_is_sensitive() {
        let c = Credential::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        let h = basic_header(&c).unwrap();
        assert!(h.is_sensitive());
        assert_eq!(h.to_str().unwrap(), "Basic dTpodW50ZXIy");
        assert!(!format!("{h:?}").contains("dTpodW50ZXIy"));
    }
}
