//! The authorization-code flow with PKCE (`authType: Pkce` / `standard`), as flytekit's
//! `AuthorizationClient` runs it: a listener on the redirect URI's host and port, the browser
//! sent to the authorization endpoint with a `state` and an S256 `code_challenge`, then the code
//! exchanged at the token endpoint with the `code_verifier` and the authorize parameters.

use std::time::Duration;

use base64::Engine as _;
use sha2::Digest as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::discovery::ClientConfig;
use super::token::{self, Tokens};
use super::{AuthError, Notify};

/// How long to wait for the browser to come back: flytekit waits forever; a command left
/// waiting in CI is worse than an error that says what to do.
const CALLBACK_WAIT: Duration = Duration::from_secs(300);

fn random_b64(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the OS random source");
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

/// `_generate_code_verifier`: 64 random bytes, URL-safe base64 with `=` removed.
pub(crate) fn code_verifier() -> String {
    random_b64(64)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "_-.~".contains(*c))
        .collect()
}

/// `_create_code_challenge`: URL-safe base64 of SHA-256, no padding.
pub(crate) fn code_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

fn state() -> String {
    random_b64(40)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.,".contains(*c))
        .collect()
}

/// Python's `urlencode` (quote_plus on keys and values).
fn urlencode(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", token::quote_plus(k), token::quote_plus(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

pub(crate) async fn login(
    http: &reqwest::Client,
    cfg: &ClientConfig,
    scopes: &[String],
    audience: Option<&str>,
    endpoint: &str,
    notify: &Notify,
) -> Result<Tokens, AuthError> {
    let err = |detail: String| AuthError::Browser {
        endpoint: endpoint.to_string(),
        detail,
    };
    let redirect = reqwest::Url::parse(&cfg.redirect_uri).map_err(|e| {
        err(format!(
            "the server's redirect URI `{}` is not a URL: {e}",
            cfg.redirect_uri
        ))
    })?;
    let host = redirect.host_str().unwrap_or("localhost").to_string();
    let port = redirect.port_or_known_default().unwrap_or(80);
    let path = redirect.path().trim_matches('/').to_string();
    // Bound before the browser opens, so the redirect always finds it.
    let listener = tokio::net::TcpListener::bind((host.as_str(), port))
        .await
        .map_err(|e| {
            err(format!(
                "cannot listen on {host}:{port} for the login redirect: {e}"
            ))
        })?;

    let verifier = code_verifier();
    let challenge = code_challenge(&verifier);
    let state = state();
    let scope = token::scope_value(scopes);
    let mut params: Vec<(String, String)> = vec![
        ("client_id".into(), cfg.client_id.clone()),
        ("response_type".into(), "code".into()),
        ("scope".into(), scope),
        ("redirect_uri".into(), cfg.redirect_uri.clone()),
        ("state".into(), state.clone()),
    ];
    if let Some(a) = audience.filter(|a| !a.is_empty()) {
        params.push(("audience".into(), a.to_string()));
    }
    params.push(("code_challenge".into(), challenge));
    params.push(("code_challenge_method".into(), "S256".into()));
    let url = format!("{}?{}", cfg.authorization_endpoint, urlencode(&params));

    let opened = open_browser(&url);
    notify(&if opened {
        format!("Opened a browser to log in to {endpoint}. If none appeared, open this link: {url}")
    } else {
        format!("Please open the following link in your browser to authenticate: {url}")
    });

    let (code, got_state) = tokio::time::timeout(CALLBACK_WAIT, wait_for_code(&listener, &path))
        .await
        .map_err(|_| {
            err(format!(
                "no answer from the browser in {} s",
                CALLBACK_WAIT.as_secs()
            ))
        })?
        .map_err(err)?;
    if got_state != state {
        return Err(err(
            "the redirect carried an unexpected state parameter (a stale or forged login)".into(),
        ));
    }
    let mut form: Vec<(&str, String)> = vec![
        ("code", code),
        ("grant_type", "authorization_code".into()),
        ("code_verifier", verifier),
    ];
    // flytekit sends the authorize parameters again (add_request_auth_code_params...=True).
    for (k, v) in &params {
        form.push((k.as_str(), v.clone()));
    }
    token::post(http, &cfg.token_endpoint, "authorization_code", &form, None).await
}

/// Serve the redirect: the first request on the redirect path with a `code` (or an `error`)
/// ends the wait; anything else gets a 404, as flytekit's handler does.
async fn wait_for_code(
    listener: &tokio::net::TcpListener,
    path: &str,
) -> Result<(String, String), String> {
    loop {
        let (mut sock, _) = listener
            .accept()
            .await
            .map_err(|e| format!("the login redirect listener failed: {e}"))?;
        let mut buf = vec![0u8; 16 * 1024];
        let mut n = 0;
        // Enough to hold the request line and headers of a browser's GET.
        while n < buf.len() {
            match sock.read(&mut buf[n..]).await {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k,
            }
            if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        let head = String::from_utf8_lossy(&buf[..n]);
        let target = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("/");
        let (p, query) = target.split_once('?').unwrap_or((target, ""));
        if p.trim_matches('/') != path {
            let _ = sock
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            continue;
        }
        let error = query_param(query, "error");
        let page = if error.is_some() {
            "<html><body><h1>Login failed</h1><p>You can close this window and go back to the terminal.</p></body></html>"
        } else {
            "<html><body><h1>Logged in</h1><p>You can close this window and go back to the terminal.</p></body></html>"
        };
        let _ = sock
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                )
                .as_bytes(),
            )
            .await;
        let _ = sock.shutdown().await;
        if let Some(e) = error {
            return Err(format!("the authorization server answered `{e}`"));
        }
        let code = query_param(query, "code").ok_or("the redirect carried no code")?;
        let state = query_param(query, "state").unwrap_or_default();
        return Ok((code, state));
    }
}

/// Python's `webbrowser.open_new_tab`, as far as a terminal tool needs: the commands in
/// `$BROWSER` (separated by `:`, `%s` replaced by the URL or the URL appended), else
/// `xdg-open`. The browser runs on its own; we do not wait for it.
fn open_browser(url: &str) -> bool {
    let candidates: Vec<Vec<String>> = match std::env::var("BROWSER") {
        Ok(b) if !b.trim().is_empty() => b
            .split(':')
            .filter(|c| !c.trim().is_empty())
            .map(|c| {
                let mut argv: Vec<String> = c.split_whitespace().map(str::to_string).collect();
                if argv.iter().any(|a| a.contains("%s")) {
                    for a in &mut argv {
                        *a = a.replace("%s", url);
                    }
                } else {
                    argv.push(url.to_string());
                }
                argv
            })
            .collect(),
        _ => vec![vec!["xdg-open".into(), url.into()]],
    };
    for argv in candidates {
        let Some((prog, args)) = argv.split_first() else {
            continue;
        };
        let spawned = std::process::Command::new(prog)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if let Ok(mut child) = spawned {
            // Reaped in the background so it never lingers as a zombie.
            std::thread::spawn(move || child.wait());
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_is_flytekits() {
        // flytekit 1.16.31: auth_client._create_code_challenge(verifier).
        assert_eq!(
            code_challenge("union-test-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"),
            "kgPMBJUlvjrteI8IMV4gOLKBs7AYxyHu7ISwG5sbsg0"
        );
        let v = code_verifier();
        assert!((43..=128).contains(&v.len()), "{v}");
        assert!(!v.contains('='));
    }

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(
            query_param("code=a%2Bb&state=x+y", "code").as_deref(),
            Some("a+b")
        );
        assert_eq!(
            query_param("code=a&state=x+y", "state").as_deref(),
            Some("x y")
        );
        assert_eq!(query_param("code=a", "error"), None);
    }
}
