//! Token requests to an OAuth2 token endpoint, shaped as flytekit's `token_client.get_token`
//! shapes them: a form POST with `Cache-Control: no-cache`, `Accept: application/json`, the
//! grant's fields, and for client credentials a Basic header with the secret URL-encoded.

use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::{AuthError, Secret};

/// What a token endpoint gave.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub id_token: Option<Secret>,
    pub expires_in: Option<u64>,
}

/// POST `form` to the token endpoint `url` (with `authorization`, the Basic header, if given).
/// `grant` names the request in errors. An OAuth2 error answer becomes [`AuthError::Refused`]
/// with its `error` code, so callers can tell `authorization_pending` apart.
pub(crate) async fn post(
    http: &reqwest::Client,
    url: &str,
    grant: &'static str,
    form: &[(&str, String)],
    authorization: Option<&str>,
) -> Result<Tokens, AuthError> {
    let mut req = http
        .post(url)
        .header("Cache-Control", "no-cache")
        .header("Accept", "application/json")
        .form(form);
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    let resp = req.send().await.map_err(|e| AuthError::Http {
        url: url.to_string(),
        detail: super::http::describe(&e),
    })?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| AuthError::Http {
        url: url.to_string(),
        detail: super::http::describe(&e),
    })?;
    let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let field = |k: &str| {
        json.as_ref()
            .and_then(|j| j.get(k))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    if !status.is_success() {
        return Err(AuthError::Refused {
            url: url.to_string(),
            grant,
            status: status.as_u16(),
            error: field("error"),
            description: field("error_description"),
        });
    }
    let Some(access) = field("access_token") else {
        return Err(AuthError::Http {
            url: url.to_string(),
            detail: "the answer has no access_token".into(),
        });
    };
    Ok(Tokens {
        access_token: Secret::new(access),
        refresh_token: field("refresh_token").map(Secret::new),
        id_token: field("id_token").map(Secret::new),
        expires_in: json
            .as_ref()
            .and_then(|j| j.get("expires_in"))
            .and_then(|v| v.as_u64()),
    })
}

/// What Python's `urllib.parse.quote_plus` leaves alone: letters, digits and `_.-~`.
const QUOTE_PLUS: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// `urllib.parse.quote_plus(s)`: a space becomes `+`, the rest as above percent-encoded.
pub fn quote_plus(s: &str) -> String {
    s.split(' ')
        .map(|part| utf8_percent_encode(part, QUOTE_PLUS).to_string())
        .collect::<Vec<_>>()
        .join("+")
}

/// The `Authorization` header of a client-credentials request: Basic, with the secret
/// URL-encoded first, as flytekit's `get_basic_authorization_header` does (a secret with `:` or
/// `%` in it reaches the server intact).
pub fn basic_authorization(client_id: &str, client_secret: &str) -> String {
    let joined = format!("{client_id}:{}", quote_plus(client_secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(joined)
    )
}

/// The `scope` form value flytekit sends for a list of scopes (each stripped of quotes and
/// spaces, joined by a space; sent even when empty).
pub fn scope_value(scopes: &[String]) -> String {
    let joined = scopes
        .iter()
        .map(|s| s.trim_matches(|c| c == '\'' || c == ' '))
        .collect::<Vec<_>>()
        .join(" ");
    joined
        .trim_matches(|c| c == '[' || c == ']' || c == '\'')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_equals_flytekits() {
        // flytekit 1.16.31: get_basic_authorization_header("my-app", "p@ss w/rd+=&")
        assert_eq!(
            basic_authorization("my-app", "p@ss w/rd+=&"),
            "Basic bXktYXBwOnAlNDBzcyt3JTJGcmQlMkIlM0QlMjY="
        );
    }

    #[test]
    fn scope_value_equals_flytekits() {
        assert_eq!(
            scope_value(&["all".into(), " offline ".into()]),
            "all offline"
        );
        assert_eq!(scope_value(&[]), "");
    }
}
