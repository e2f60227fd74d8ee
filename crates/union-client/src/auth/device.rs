//! The device authorization grant (`authType: DeviceFlow`), as flytekit's
//! `DeviceCodeAuthenticator` runs it: ask the device endpoint for a code, show
//! `verification_uri?user_code=CODE`, poll the token endpoint every `interval` seconds until the
//! user approved (`authorization_pending` and `slow_down` mean keep waiting) or the code expired.

use std::time::{Duration, Instant};

use super::discovery::ClientConfig;
use super::token::{self, Tokens};
use super::{AuthError, Notify};

pub(crate) async fn login(
    http: &reqwest::Client,
    cfg: &ClientConfig,
    scopes: &[String],
    audience: Option<&str>,
    endpoint: &str,
    notify: &Notify,
) -> Result<Tokens, AuthError> {
    let err = |detail: String| AuthError::Device {
        endpoint: endpoint.to_string(),
        detail,
    };
    if cfg.device_authorization_endpoint.is_empty() {
        return Err(err(
            "the server has no device authorization endpoint (use authType Pkce or ClientSecret)"
                .into(),
        ));
    }
    let scope = token::scope_value(scopes);
    let mut form: Vec<(&str, String)> = vec![
        ("client_id", cfg.client_id.clone()),
        ("scope", scope.clone()),
    ];
    if let Some(a) = audience.filter(|a| !a.is_empty()) {
        form.push(("audience", a.to_string()));
    }
    let url = &cfg.device_authorization_endpoint;
    let resp = http
        .post(url)
        .form(&form)
        .send()
        .await
        .map_err(|e| AuthError::Http {
            url: url.clone(),
            detail: super::http::describe(&e),
        })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(err(format!(
            "the device endpoint answered HTTP {}",
            status.as_u16()
        )));
    }
    let bytes = resp.bytes().await.map_err(|e| AuthError::Http {
        url: url.clone(),
        detail: super::http::describe(&e),
    })?;
    let body: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| AuthError::Http {
        url: url.clone(),
        detail: format!("the answer is not JSON: {e}"),
    })?;
    let s = |k: &str| body.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let n = |k: &str| body.get(k).and_then(|v| v.as_u64());
    let (Some(device_code), Some(user_code), Some(verification_uri)) =
        (s("device_code"), s("user_code"), s("verification_uri"))
    else {
        return Err(err(
            "the device endpoint's answer lacks device_code, user_code or verification_uri".into(),
        ));
    };
    let expires = Duration::from_secs(n("expires_in").unwrap_or(600));
    let mut interval = Duration::from_secs(n("interval").unwrap_or(5).max(1));
    notify(&format!(
        "To Authenticate, navigate in a browser to the following URL: {verification_uri}?user_code={user_code}"
    ));

    let deadline = Instant::now() + expires;
    let mut poll: Vec<(&str, String)> = vec![
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:device_code".into(),
        ),
        ("client_id", cfg.client_id.clone()),
        ("device_code", device_code),
        ("scope", scope),
    ];
    if let Some(a) = audience.filter(|a| !a.is_empty()) {
        poll.push(("audience", a.to_string()));
    }
    while Instant::now() < deadline {
        match token::post(http, &cfg.token_endpoint, "device_code", &poll, None).await {
            Ok(t) => return Ok(t),
            Err(AuthError::Refused { error: Some(e), .. }) if e == "authorization_pending" => {}
            Err(AuthError::Refused { error: Some(e), .. }) if e == "slow_down" => {
                interval += Duration::from_secs(5);
            }
            Err(e) => return Err(e),
        }
        tokio::time::sleep(interval).await;
    }
    Err(err(format!(
        "the code was not approved within {} s",
        expires.as_secs()
    )))
}
