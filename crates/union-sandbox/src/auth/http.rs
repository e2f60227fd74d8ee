//! The OAuth2 endpoints, on the sandbox's port next to the gRPC services: discovery metadata, the
//! token endpoint (every grant), and the device authorization endpoint. The browser pages of the
//! PKCE and device flows are in `pages`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use percent_encoding::percent_decode_str;
use serde::Serialize;

use super::pending::{
    display_user_code, Decision, DeviceGrant, Poll, DEVICE_LIFETIME_SECS, DEVICE_POLL_INTERVAL_SECS,
};
use super::{token, Authority, TokenKind, CONFIDENTIAL_CLIENT_ID, PUBLIC_CLIENT_ID, SCOPES};

/// RFC 8414 discovery document.
pub const WELL_KNOWN_PATH: &str = "/.well-known/oauth-authorization-server";
/// Token endpoint.
pub const TOKEN_PATH: &str = "/oauth2/token";
/// Browser authorization endpoint (PKCE).
pub const AUTHORIZE_PATH: &str = "/oauth2/authorize";
/// Device authorization endpoint.
pub const DEVICE_AUTHORIZE_PATH: &str = "/oauth2/device/authorize";
/// Where the person approves a device code.
pub const DEVICE_PATH: &str = "/oauth2/device";
/// The device flow's grant type (RFC 8628).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The HTTP routes of the authorization server; merge into the sandbox's router.
pub fn router(authority: Arc<Authority>) -> axum::Router {
    use axum::routing::{get, post};
    axum::Router::new()
        .route(WELL_KNOWN_PATH, get(well_known))
        .route(TOKEN_PATH, post(token_endpoint))
        .route(
            AUTHORIZE_PATH,
            get(super::pages::authorize_page).post(super::pages::authorize_decision),
        )
        .route(DEVICE_AUTHORIZE_PATH, post(device_authorize))
        .route(
            DEVICE_PATH,
            get(super::pages::device_page).post(super::pages::device_decision),
        )
        .with_state(authority)
}

/// Parameters of a form body or query string (`application/x-www-form-urlencoded`).
#[derive(Debug, Default)]
pub(crate) struct Params(HashMap<String, String>);

/// Form-decode one name or value: `+` is a space, then percent-decoding.
pub(crate) fn form_decode(s: &str) -> Option<String> {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

impl Params {
    /// Parse; a repeated parameter is refused (RFC 6749 §3.1), as is one that is not UTF-8.
    pub(crate) fn parse(s: &str) -> Result<Params, String> {
        let mut map = HashMap::new();
        for pair in s.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (Some(k), Some(v)) = (form_decode(k), form_decode(v)) else {
                return Err("a parameter is not UTF-8 text".into());
            };
            if map.contains_key(&k) {
                return Err(format!("parameter `{}` is repeated", k.escape_debug()));
            }
            map.insert(k, v);
        }
        Ok(Params(map))
    }

    /// A parameter, None when absent or empty (RFC 6749 treats empty as absent).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A parameter that must be there, else `invalid_request`.
    fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing `{name}`")))
    }
}

/// An RFC 6749 §5.2 error response. Descriptions never quote a secret, a code or a token.
#[derive(Debug)]
pub(crate) struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status,
            error,
            description: description.into(),
        }
    }
    pub(crate) fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", d)
    }
    fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", d)
    }
    fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", d)
    }
    pub(crate) fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", d)
    }
    fn server_error(d: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", d)
    }
    /// The device flow's states (RFC 8628 §3.5), which flytekit matches on.
    fn device(error: &'static str, d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, d)
    }
    /// The description, for the browser pages.
    pub(crate) fn description(&self) -> &str {
        &self.description
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": self.error,
            "error_description": self.description,
        });
        let mut resp = json(self.status, &body);
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"union sandbox\""),
            );
        }
        resp
    }
}

/// A JSON response nobody may cache (token responses carry credentials, RFC 6749 §5.1).
fn json(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        bytes,
    )
        .into_response()
}

async fn well_known(State(a): State<Arc<Authority>>) -> Response {
    let m = a.oauth2_metadata();
    let mut doc = serde_json::json!({
        "issuer": m.issuer,
        "authorization_endpoint": m.authorization_endpoint,
        "token_endpoint": m.token_endpoint,
        "device_authorization_endpoint": m.device_authorization_endpoint,
        "response_types_supported": m.response_types_supported,
        "scopes_supported": m.scopes_supported,
        "token_endpoint_auth_methods_supported": m.token_endpoint_auth_methods_supported,
        "grant_types_supported": m.grant_types_supported,
        "code_challenge_methods_supported": m.code_challenge_methods_supported,
    });
    if !m.jwks_uri.is_empty() {
        doc["jwks_uri"] = m.jwks_uri.into();
    }
    json(StatusCode::OK, &doc)
}

/// Requested scopes: all known, none repeated; nothing asked means `all`.
pub(crate) fn parse_scopes(scope: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.unwrap_or_default().split_whitespace() {
        if !SCOPES.contains(&s) {
            return Err(OAuthError::invalid_scope(format!(
                "unknown scope `{}`: this sandbox knows {}",
                s.escape_debug(),
                SCOPES.join(", ")
            )));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    if out.is_empty() {
        out.push(SCOPES[0].to_string());
    }
    Ok(out)
}

/// Who the token endpoint talks to, as far as HTTP Basic or the body's client secret tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    /// No client authentication: a public client names itself with `client_id`.
    Unauthenticated,
    /// Basic credentials of the public client with an empty secret (how Go's oauth2 library
    /// sends a public client's id).
    Public,
    /// The confidential client, its secret checked.
    Confidential,
}

/// The client the request authenticated as (HTTP Basic or `client_id` + `client_secret` in the
/// body). A failed try is `invalid_client`.
fn authenticate(a: &Authority, headers: &HeaderMap, params: &Params) -> Result<Client, OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => Some(parse_basic(v).ok_or_else(|| {
            OAuthError::invalid_client(
                "the Authorization header is not HTTP Basic client credentials",
            )
        })?),
    };
    let (id, secret) =
        match (basic, params.get("client_secret")) {
            (Some(_), Some(_)) => return Err(OAuthError::invalid_request(
                "client credentials are both in the Authorization header and in the body: use one",
            )),
            (Some(pair), None) => pair,
            (None, Some(secret)) => (
                params.get("client_id").unwrap_or_default().to_string(),
                secret.to_string(),
            ),
            (None, None) => return Ok(Client::Unauthenticated),
        };
    if id == PUBLIC_CLIENT_ID && secret.is_empty() {
        Ok(Client::Public)
    } else if id == CONFIDENTIAL_CLIENT_ID && a.client_secret_matches(&secret) {
        Ok(Client::Confidential)
    } else {
        Err(OAuthError::invalid_client(format!(
            "unknown client or wrong secret (the confidential client is `{CONFIDENTIAL_CLIENT_ID}`, its secret in `{}`)",
            a.client_secret_path().display()
        )))
    }
}

/// `Basic base64(id:secret)`, each part form-encoded first (RFC 6749 §2.3.1; flytekit
/// `quote_plus`es the secret).
fn parse_basic(v: &HeaderValue) -> Option<(String, String)> {
    let v = v.to_str().ok()?.trim();
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let b64 = b64.trim();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64))
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (id, secret) = raw.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

/// The body of a successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
struct Tokens {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
}

fn issue(
    a: &Authority,
    sub: &str,
    client_id: &str,
    scopes: &[String],
    refresh: bool,
) -> Result<Tokens, OAuthError> {
    let failed = |_| OAuthError::server_error("cannot sign a token");
    let access_token = a
        .sign(TokenKind::Access, sub, client_id, scopes)
        .map_err(failed)?;
    let refresh_token = if refresh {
        Some(
            a.sign(TokenKind::Refresh, sub, client_id, scopes)
                .map_err(failed)?,
        )
    } else {
        None
    };
    Ok(Tokens {
        access_token,
        token_type: "Bearer",
        expires_in: a.settings().token_lifetime.as_secs(),
        scope: scopes.join(" "),
        refresh_token,
    })
}

async fn token_endpoint(
    State(a): State<Arc<Authority>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match grant(&a, &headers, &body) {
        Ok(tokens) => json(StatusCode::OK, &tokens),
        Err(e) => e.into_response(),
    }
}

fn grant(a: &Authority, headers: &HeaderMap, body: &[u8]) -> Result<Tokens, OAuthError> {
    let body = std::str::from_utf8(body)
        .map_err(|_| OAuthError::invalid_request("the body is not form-encoded text"))?;
    let params = Params::parse(body).map_err(OAuthError::invalid_request)?;
    let client = authenticate(a, headers, &params)?;
    match params.require("grant_type")? {
        "client_credentials" => {
            if client != Client::Confidential {
                return Err(OAuthError::invalid_client(format!(
                    "client_credentials needs the confidential client `{CONFIDENTIAL_CLIENT_ID}` and its secret (HTTP Basic)"
                )));
            }
            let scopes = parse_scopes(params.get("scope"))?;
            issue(
                a,
                CONFIDENTIAL_CLIENT_ID,
                CONFIDENTIAL_CLIENT_ID,
                &scopes,
                false,
            )
        }
        "authorization_code" => authorization_code(a, &params, client),
        "refresh_token" => refresh(a, &params, client),
        DEVICE_CODE_GRANT => device_code(a, &params, client),
        other => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!(
                "grant type `{}` is not supported; this sandbox takes {}",
                other.escape_debug(),
                super::metadata::GRANT_TYPES.join(", ")
            ),
        )),
    }
}

/// Check that the public client asks: the PKCE and device grants are its alone.
fn public_client(params: &Params, client: Client) -> Result<(), OAuthError> {
    if client == Client::Confidential {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            format!("`{CONFIDENTIAL_CLIENT_ID}` uses client_credentials; this grant is for `{PUBLIC_CLIENT_ID}`"),
        ));
    }
    match params.get("client_id") {
        None if client == Client::Public => Ok(()),
        None => Err(OAuthError::invalid_request("missing `client_id`")),
        Some(PUBLIC_CLIENT_ID) => Ok(()),
        Some(other) => Err(OAuthError::invalid_client(format!(
            "unknown client `{}`: the public client is `{PUBLIC_CLIENT_ID}`",
            other.escape_debug()
        ))),
    }
}

fn authorization_code(
    a: &Authority,
    params: &Params,
    client: Client,
) -> Result<Tokens, OAuthError> {
    let code = params.require("code")?;
    let verifier = params.require("code_verifier")?;
    let redirect_uri = params.require("redirect_uri")?;
    public_client(params, client)?;
    let now = a.now();
    let Some(grant) = a.pending().take_code(code, now) else {
        return Err(OAuthError::invalid_grant(
            "the authorization code is unknown, already used or expired: sign in again",
        ));
    };
    if now >= grant.expires_at {
        return Err(OAuthError::invalid_grant(
            "the authorization code has expired: sign in again",
        ));
    }
    if grant.client_id != PUBLIC_CLIENT_ID {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if grant.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the one the authorization code was issued for",
        ));
    }
    if !token::pkce_verifier_is_valid(verifier) {
        return Err(OAuthError::invalid_request(
            "code_verifier must be 43 to 128 characters of A-Z, a-z, 0-9, `-`, `.`, `_`, `~`",
        ));
    }
    if !token::pkce_matches(verifier, &grant.code_challenge) {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge of the authorization request",
        ));
    }
    issue(
        a,
        super::USER_SUBJECT,
        PUBLIC_CLIENT_ID,
        &grant.scopes,
        true,
    )
}

fn refresh(a: &Authority, params: &Params, client: Client) -> Result<Tokens, OAuthError> {
    let refresh_token = params.require("refresh_token")?;
    let claims = a
        .verify_refresh(refresh_token)
        .map_err(|e| OAuthError::invalid_grant(format!("the refresh token was refused: {e}")))?;
    let client_id = match client {
        Client::Confidential => CONFIDENTIAL_CLIENT_ID,
        Client::Public => PUBLIC_CLIENT_ID,
        Client::Unauthenticated if claims.client_id == CONFIDENTIAL_CLIENT_ID => {
            return Err(OAuthError::invalid_client(format!(
                "`{CONFIDENTIAL_CLIENT_ID}` must authenticate with its secret"
            )))
        }
        Client::Unauthenticated => params.require("client_id")?,
    };
    if client_id != claims.client_id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    issue(a, &claims.sub, &claims.client_id, &claims.scp, true)
}

fn device_code(a: &Authority, params: &Params, client: Client) -> Result<Tokens, OAuthError> {
    let device_code = params.require("device_code")?;
    public_client(params, client)?;
    let poll = a
        .pending()
        .poll_device(device_code, PUBLIC_CLIENT_ID, a.now());
    match poll {
        Poll::Approved(scopes) => issue(a, super::USER_SUBJECT, PUBLIC_CLIENT_ID, &scopes, true),
        Poll::Waiting => Err(OAuthError::device(
            "authorization_pending",
            "waiting for the user to approve",
        )),
        Poll::Denied => Err(OAuthError::device(
            "access_denied",
            "the user denied the request",
        )),
        Poll::Expired => Err(OAuthError::device(
            "expired_token",
            "the device code has expired: start again",
        )),
        Poll::WrongClient | Poll::Unknown => Err(OAuthError::invalid_grant(
            "the device code is unknown or already used",
        )),
    }
}

#[derive(Debug, Serialize)]
struct DeviceCodes {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: String,
    expires_in: u64,
    interval: u64,
}

async fn device_authorize(State(a): State<Arc<Authority>>, body: Bytes) -> Response {
    match start_device(&a, &body) {
        Ok(codes) => json(StatusCode::OK, &codes),
        Err(e) => e.into_response(),
    }
}

fn start_device(a: &Authority, body: &[u8]) -> Result<DeviceCodes, OAuthError> {
    let body = std::str::from_utf8(body)
        .map_err(|_| OAuthError::invalid_request("the body is not form-encoded text"))?;
    let params = Params::parse(body).map_err(OAuthError::invalid_request)?;
    public_client(&params, Client::Unauthenticated)?;
    let scopes = parse_scopes(params.get("scope"))?;
    let random_failed = |_| OAuthError::server_error("the OS random generator failed");
    let device_code = token::random_token(32).map_err(random_failed)?;
    let user_code = token::random_user_code().map_err(random_failed)?;
    let now = a.now();
    let shown = display_user_code(&user_code);
    a.pending().insert_device(
        device_code.clone(),
        DeviceGrant {
            user_code,
            client_id: PUBLIC_CLIENT_ID.to_string(),
            scopes,
            expires_at: now + DEVICE_LIFETIME_SECS,
            decision: Decision::Waiting,
        },
        now,
    );
    let verification_uri = a.verification_uri();
    Ok(DeviceCodes {
        device_code,
        verification_uri_complete: format!("{verification_uri}?user_code={shown}"),
        user_code: shown,
        verification_uri,
        expires_in: DEVICE_LIFETIME_SECS,
        interval: DEVICE_POLL_INTERVAL_SECS,
    })
}
