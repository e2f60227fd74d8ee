//! The browser side of the PKCE and device flows: a page asking the person at the machine to
//! allow or deny, and what happens when they answer.
//!
//! Security model: whoever can open these pages and press "Allow" is the user. The sandbox
//! listens on loopback by default, so that is the person at this machine, as with any local
//! development server. Codes only ever go to the one registered redirect URI (a bad client or
//! redirect URI gets an error page, never a redirect), PKCE binds a code to the client that
//! started the flow, and the pages refuse to be framed so another site cannot trick a click.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::http::{parse_scopes, Params};
use super::pending::{display_user_code, AuthCode, Decision, CODE_LIFETIME_SECS};
use super::{token, Authority, PUBLIC_CLIENT_ID};

/// Text for HTML content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f5f5f7;color:#222;margin:0}\
main{max-width:32rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}\
h1{font-size:1.3rem;margin-top:0}code,.code{font-family:ui-monospace,monospace}\
.code{font-size:1.6rem;letter-spacing:.15em;text-align:center;margin:1rem 0}\
button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.5rem;border-radius:4px;border:1px solid #888;cursor:pointer}\
button.allow{background:#1a7f37;color:#fff;border-color:#1a7f37}\
input{font-size:1.2rem;padding:.4rem;width:12rem;font-family:ui-monospace,monospace}";

/// A complete page: no external assets, never cached, never framed.
fn page(status: StatusCode, title: &str, body_html: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{t}</title><style>{STYLE}</style></head>\
<body><main><h1>{t}</h1>{body_html}</main></body></html>\n",
        t = escape(title)
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
            ),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        html,
    )
        .into_response()
}

fn error_page(message: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Cannot sign in to the union sandbox",
        &format!("<p>{}</p>", escape(message)),
    )
}

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        escape(name),
        escape(value)
    )
}

const BUTTONS: &str =
    "<p><button class=\"allow\" type=\"submit\" name=\"decision\" value=\"approve\">Allow</button>\
<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></p>";

/// A checked authorization request (RFC 6749 §4.1.1 with RFC 7636 S256).
struct AuthorizeRequest {
    redirect_uri: String,
    scopes: Vec<String>,
    state: Option<String>,
    code_challenge: String,
}

/// Check an authorization request; the error is for the page (the request is never redirected
/// back when it is wrong, which also keeps codes off unregistered URIs).
fn validate(a: &Authority, p: &Params) -> Result<AuthorizeRequest, String> {
    match p.get("client_id") {
        Some(PUBLIC_CLIENT_ID) => {}
        Some(other) => {
            return Err(format!(
                "Unknown client `{other}`: this sandbox's public client is `{PUBLIC_CLIENT_ID}`."
            ))
        }
        None => return Err("The request names no client (`client_id` is missing).".into()),
    }
    let registered = &a.settings().redirect_uri;
    let redirect_uri = p.get("redirect_uri").unwrap_or(registered);
    if redirect_uri != registered && !a.is_console_redirect(redirect_uri) {
        return Err(format!(
            "The redirect URI `{redirect_uri}` is not the registered one (`{registered}`); start the sandbox with `--auth-redirect-uri` to register another."
        ));
    }
    if p.get("response_type") != Some("code") {
        return Err("Only the authorization code flow is supported (`response_type=code`).".into());
    }
    let Some(challenge) = p.get("code_challenge") else {
        return Err("PKCE is required: the request has no `code_challenge`.".into());
    };
    if p.get("code_challenge_method") != Some("S256") {
        return Err("PKCE must use `code_challenge_method=S256`.".into());
    }
    let well_formed = challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err("`code_challenge` is not a base64url SHA-256 digest.".into());
    }
    let scopes = parse_scopes(p.get("scope")).map_err(|e| e.description().to_string())?;
    Ok(AuthorizeRequest {
        redirect_uri: redirect_uri.to_string(),
        scopes,
        state: p.get("state").map(str::to_string),
        code_challenge: challenge.to_string(),
    })
}

/// The parameters of a request's query string.
fn query(uri: &Uri) -> Result<Params, Response> {
    Params::parse(uri.query().unwrap_or_default()).map_err(|e| error_page(&e))
}

fn form(body: &[u8]) -> Result<Params, Response> {
    let body = std::str::from_utf8(body).map_err(|_| error_page("The form is not text."))?;
    Params::parse(body).map_err(|e| error_page(&e))
}

/// `GET /oauth2/authorize`: ask the user.
pub(crate) async fn authorize_page(State(a): State<Arc<Authority>>, uri: Uri) -> Response {
    let p = match query(&uri) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(e) = validate(&a, &p) {
        return error_page(&e);
    }
    let fields: String = [
        "client_id",
        "response_type",
        "scope",
        "redirect_uri",
        "state",
        "code_challenge",
        "code_challenge_method",
    ]
    .iter()
    .filter_map(|k| p.get(k).map(|v| hidden(k, v)))
    .collect();
    let body = format!(
        "<p>Allow <code>{client}</code> to access the union sandbox at <code>{base}</code>?</p>\
<p>It gets tokens to call the sandbox's API as you until you stop the sandbox or they expire.</p>\
<form method=\"post\" action=\"{action}\">{fields}{BUTTONS}</form>",
        client = escape(PUBLIC_CLIENT_ID),
        base = escape(a.base_url()),
        action = super::http::AUTHORIZE_PATH,
    );
    page(StatusCode::OK, "Sign in to the union sandbox", &body)
}

/// Everything but RFC 3986's unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// `redirect_uri` with `pairs` added to its query.
fn redirect_to(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let mut url = redirect_uri.to_string();
    let mut sep = if url.contains('?') { '&' } else { '?' };
    for (k, v) in pairs {
        url.push(sep);
        url.push_str(k);
        url.push('=');
        url.push_str(&enc(v));
        sep = '&';
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, url),
            (header::CACHE_CONTROL, "no-store".to_string()),
            (header::REFERRER_POLICY, "no-referrer".to_string()),
        ],
    )
        .into_response()
}

/// `POST /oauth2/authorize`: the user's answer; back to the client with a code or a refusal.
pub(crate) async fn authorize_decision(State(a): State<Arc<Authority>>, body: Bytes) -> Response {
    let p = match form(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let req = match validate(&a, &p) {
        Ok(r) => r,
        Err(e) => return error_page(&e),
    };
    let state = req.state.as_deref();
    match p.get("decision") {
        Some("approve") => {
            let code = match token::random_token(32) {
                Ok(c) => c,
                Err(_) => return error_page("The sandbox could not generate a code; try again."),
            };
            let now = a.now();
            a.pending().insert_code(
                code.clone(),
                AuthCode {
                    client_id: PUBLIC_CLIENT_ID.to_string(),
                    redirect_uri: req.redirect_uri.clone(),
                    code_challenge: req.code_challenge,
                    scopes: req.scopes,
                    expires_at: now + CODE_LIFETIME_SECS,
                },
                now,
            );
            let mut pairs = vec![("code", code.as_str())];
            pairs.extend(state.map(|s| ("state", s)));
            redirect_to(&req.redirect_uri, &pairs)
        }
        Some("deny") => {
            let mut pairs = vec![("error", "access_denied")];
            pairs.extend(state.map(|s| ("state", s)));
            redirect_to(&req.redirect_uri, &pairs)
        }
        _ => error_page("The form did not say whether to allow or deny."),
    }
}

fn device_form(user_code: Option<&str>) -> String {
    let code_field = match user_code {
        Some(c) => format!(
            "<p class=\"code\">{}</p><p>Check that your terminal shows this code.</p>{}",
            escape(c),
            hidden("user_code", c)
        ),
        None => {
            "<p><label>Code: <input name=\"user_code\" autocomplete=\"off\" autofocus></label></p>"
                .to_string()
        }
    };
    format!(
        "<form method=\"post\" action=\"{}\">{code_field}{BUTTONS}</form>",
        super::http::DEVICE_PATH
    )
}

/// `GET /oauth2/device[?user_code=...]`: show the code and ask (or ask for the code).
pub(crate) async fn device_page(State(a): State<Arc<Authority>>, uri: Uri) -> Response {
    let p = match query(&uri) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let title = "Sign in to the union sandbox";
    let intro = format!(
        "<p>Allow <code>{}</code> to access the union sandbox at <code>{}</code>?</p>",
        escape(PUBLIC_CLIENT_ID),
        escape(a.base_url())
    );
    let Some(user_code) = p.get("user_code") else {
        let body = format!(
            "{intro}<p>Enter the code your terminal shows.</p>{}",
            device_form(None)
        );
        return page(StatusCode::OK, title, &body);
    };
    let now = a.now();
    let known = a
        .pending()
        .device_by_user_code(user_code, now)
        .filter(|d| d.decision == Decision::Waiting)
        .map(|d| display_user_code(&d.user_code));
    match known {
        Some(code) => page(
            StatusCode::OK,
            title,
            &format!("{intro}{}", device_form(Some(&code))),
        ),
        None => error_page("This code is unknown, already used or expired: start signing in again in your terminal."),
    }
}

/// `POST /oauth2/device`: record the user's answer; the polling client learns it next time.
pub(crate) async fn device_decision(State(a): State<Arc<Authority>>, body: Bytes) -> Response {
    let p = match form(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let decision = match p.get("decision") {
        Some("approve") => Decision::Approved,
        Some("deny") => Decision::Denied,
        _ => return error_page("The form did not say whether to allow or deny."),
    };
    let Some(user_code) = p.get("user_code") else {
        return error_page("The form has no code.");
    };
    let now = a.now();
    let mut pending = a.pending();
    match pending.device_by_user_code(user_code, now) {
        Some(d) if d.decision == Decision::Waiting => d.decision = decision,
        _ => {
            return error_page("This code is unknown, already used or expired: start signing in again in your terminal.")
        }
    }
    drop(pending);
    let (title, what) = match decision {
        Decision::Denied => ("Access denied", "The request was denied."),
        _ => (
            "Signed in",
            "Your terminal is signed in to the union sandbox.",
        ),
    };
    page(
        StatusCode::OK,
        title,
        &format!("<p>{what}</p><p>You can close this window.</p>"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_html_specials() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn redirects_keep_an_existing_query_and_encode_values() {
        let r = redirect_to(
            "http://localhost:1/cb?x=1",
            &[("code", "a b"), ("state", "s&t")],
        );
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            r.headers()[header::LOCATION],
            "http://localhost:1/cb?x=1&code=a%20b&state=s%26t"
        );
    }
}
