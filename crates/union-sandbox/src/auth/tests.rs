//! The OAuth2 endpoints driven through their router as flytekit drives them, and the sandbox's
//! state on disk.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use super::*;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const BASE: &str = "http://127.0.0.1:30080";

pub(crate) fn addr() -> SocketAddr {
    "127.0.0.1:30080".parse().unwrap()
}

/// An authority in a fresh data directory whose client secret is `secret`.
pub(crate) fn authority_with(
    settings: AuthSettings,
    secret: Option<&str>,
) -> (tempfile::TempDir, Arc<Authority>) {
    let dir = tempfile::tempdir().unwrap();
    if let Some(secret) = secret {
        std::fs::create_dir(dir.path().join(AUTH_DIR)).unwrap();
        std::fs::write(
            dir.path().join(AUTH_DIR).join(CLIENT_SECRET_FILE),
            format!("{secret}\n"),
        )
        .unwrap();
    }
    let a = Authority::open(dir.path(), settings, addr()).unwrap();
    (dir, Arc::new(a))
}

fn authority() -> (tempfile::TempDir, Arc<Authority>) {
    authority_with(AuthSettings::default(), Some("a+b/c="))
}

async fn send(a: &Arc<Authority>, req: Request<Body>) -> Response {
    http::router(a.clone()).oneshot(req).await.unwrap()
}

async fn post(a: &Arc<Authority>, path: &str, body: &str, basic: Option<&str>) -> Response {
    let mut req =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(b) = basic {
        req = req.header(header::AUTHORIZATION, b);
    }
    send(a, req.body(Body::from(body.to_string())).unwrap()).await
}

async fn json_of(r: Response) -> serde_json::Value {
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

async fn text_of(r: Response) -> String {
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The header flytekit's `get_basic_authorization_header` makes: the secret `quote_plus`ed.
fn flytekit_basic(id: &str, quoted_secret: &str) -> String {
    let raw = format!("{id}:{quoted_secret}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

async fn error_of(r: Response) -> (StatusCode, String) {
    let status = r.status();
    let body = json_of(r).await;
    (status, body["error"].as_str().unwrap().to_string())
}

#[test]
fn state_is_private_and_reused_across_restarts() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let a = Authority::open(dir.path(), AuthSettings::default(), addr()).unwrap();
    let auth_dir = dir.path().join(AUTH_DIR);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&auth_dir), 0o700);
    assert_eq!(mode(&auth_dir.join(SIGNING_KEY_FILE)), 0o600);
    assert_eq!(mode(&auth_dir.join(CLIENT_SECRET_FILE)), 0o600);
    assert_eq!(
        std::fs::read(auth_dir.join(SIGNING_KEY_FILE))
            .unwrap()
            .len(),
        32
    );
    let secret = std::fs::read_to_string(auth_dir.join(CLIENT_SECRET_FILE)).unwrap();
    assert_eq!(secret.trim_end().len(), 43, "{secret:?}");
    assert!(secret.ends_with('\n'));
    assert_eq!(a.client_secret_path(), auth_dir.join(CLIENT_SECRET_FILE));

    let token = a
        .sign(
            TokenKind::Access,
            "sandbox-user",
            "flytectl",
            &["all".into()],
        )
        .unwrap();
    let again = Authority::open(dir.path(), AuthSettings::default(), addr()).unwrap();
    assert!(again.client_secret_matches(secret.trim()));
    assert_eq!(again.verify_access(&token).unwrap().sub, "sandbox-user");
}

#[test]
fn a_short_signing_key_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(AUTH_DIR)).unwrap();
    std::fs::write(dir.path().join(AUTH_DIR).join(SIGNING_KEY_FILE), b"short").unwrap();
    let err = Authority::open(dir.path(), AuthSettings::default(), addr()).unwrap_err();
    assert!(matches!(err, AuthError::Corrupt { .. }), "{err}");
    assert!(union_diagnostics::Hint::hints(&err)[0].contains("delete"));
}

#[test]
fn settings_are_validated() {
    let bad = [
        AuthSettings {
            token_lifetime: std::time::Duration::ZERO,
            ..AuthSettings::default()
        },
        AuthSettings {
            redirect_uri: "localhost:53593/callback".into(),
            ..AuthSettings::default()
        },
        AuthSettings {
            org: Some("a b".into()),
            ..AuthSettings::default()
        },
    ];
    for s in bad {
        assert!(s.validate().is_err(), "{s:?}");
    }
    assert!(AuthSettings::default().validate().is_ok());
}

#[test]
fn a_wildcard_bind_is_reached_on_loopback() {
    assert_eq!(
        client_endpoint("0.0.0.0:30080".parse().unwrap()),
        "127.0.0.1:30080"
    );
    assert_eq!(client_endpoint("[::]:1".parse().unwrap()), "127.0.0.1:1");
    assert_eq!(client_endpoint("[::1]:1".parse().unwrap()), "[::1]:1");
}

#[tokio::test]
async fn discovery_metadata_matches_grpc() {
    let (_d, a) = authority();
    let r = send(
        &a,
        Request::get(http::WELL_KNOWN_PATH)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let doc = json_of(r).await;
    assert_eq!(doc["issuer"], BASE);
    assert_eq!(doc["token_endpoint"], format!("{BASE}/oauth2/token"));
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{BASE}/oauth2/authorize")
    );
    assert_eq!(
        doc["device_authorization_endpoint"],
        format!("{BASE}/oauth2/device/authorize")
    );
    assert_eq!(doc["code_challenge_methods_supported"][0], "S256");
    assert_eq!(doc["grant_types_supported"].as_array().unwrap().len(), 4);
    let cfg = a.public_client_config();
    assert_eq!(cfg.client_id, "flytectl");
    assert_eq!(cfg.redirect_uri, DEFAULT_REDIRECT_URI);
    assert_eq!(cfg.authorization_metadata_key, "flyte-authorization");
    assert_eq!(cfg.service_http_endpoint, BASE);
}

#[tokio::test]
async fn client_credentials_with_flytekits_quoted_basic_header() {
    let (_d, a) = authority();
    let basic = flytekit_basic("union-sandbox", "a%2Bb%2Fc%3D");
    let r = post(
        &a,
        "/oauth2/token",
        "grant_type=client_credentials&scope=",
        Some(&basic),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
    let body = json_of(r).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "all");
    assert!(body.get("refresh_token").is_none());
    let claims = a
        .verify_access(body["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.sub, "union-sandbox");
    assert_eq!(claims.client_id, "union-sandbox");
    assert_eq!(claims.exp - claims.iat, 3600);

    // Form fields, and the scopes flytekit may send.
    let r = post(
        &a,
        "/oauth2/token",
        "grant_type=client_credentials&client_id=union-sandbox&client_secret=a%2Bb%2Fc%3D&scope=all+offline",
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json_of(r).await["scope"], "all offline");
}

#[tokio::test]
async fn client_credentials_refusals() {
    let (_d, a) = authority();
    // The secret not quoted: `+` decodes to a space, so it does not match.
    let unquoted = flytekit_basic("union-sandbox", "a+b/c=");
    let r = post(
        &a,
        "/oauth2/token",
        "grant_type=client_credentials",
        Some(&unquoted),
    )
    .await;
    assert!(r.headers().contains_key(header::WWW_AUTHENTICATE));
    let body = text_of(r).await;
    assert!(body.contains("invalid_client"), "{body}");
    assert!(
        !body.contains("a+b/c=") && !body.contains("a b/c="),
        "{body}"
    );

    let r = post(&a, "/oauth2/token", "grant_type=client_credentials", None).await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
    let basic = flytekit_basic("union-sandbox", "a%2Bb%2Fc%3D");
    let r = post(
        &a,
        "/oauth2/token",
        "grant_type=client_credentials&scope=openid",
        Some(&basic),
    )
    .await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::BAD_REQUEST, "invalid_scope".into())
    );
    let r = post(&a, "/oauth2/token", "grant_type=password", Some(&basic)).await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::BAD_REQUEST, "unsupported_grant_type".into())
    );
    let r = post(&a, "/oauth2/token", "scope=all", Some(&basic)).await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
    let r = post(
        &a,
        "/oauth2/token",
        "grant_type=client_credentials&grant_type=client_credentials",
        Some(&basic),
    )
    .await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
}

/// The authorize query flytekit's PKCE authenticator opens in the browser.
fn authorize_query(redirect_uri: &str) -> String {
    format!(
        "client_id=flytectl&response_type=code&scope=all+offline&redirect_uri={}&state=st%2Bate&code_challenge={CHALLENGE}&code_challenge_method=S256",
        percent_encoding::utf8_percent_encode(redirect_uri, percent_encoding::NON_ALPHANUMERIC)
    )
}

/// Approve in the "browser": the page, then its form; the code from the redirect.
async fn approve(a: &Arc<Authority>) -> String {
    let q = authorize_query(DEFAULT_REDIRECT_URI);
    let r = send(
        a,
        Request::get(format!("/oauth2/authorize?{q}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::X_FRAME_OPTIONS], "DENY");
    let page = text_of(r).await;
    assert!(page.contains("Allow <code>flytectl</code> to access the union sandbox at <code>http://127.0.0.1:30080</code>?"), "{page}");
    assert!(page.contains("value=\"approve\"") && page.contains("value=\"deny\""));
    assert!(page.contains("name=\"state\" value=\"st+ate\""), "{page}");

    let r = post(
        a,
        "/oauth2/authorize",
        &format!("{q}&decision=approve"),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()[header::LOCATION].to_str().unwrap().to_string();
    let rest = location
        .strip_prefix("http://localhost:53593/callback?code=")
        .unwrap_or_else(|| panic!("{location}"));
    let (code, state) = rest.split_once("&state=").unwrap();
    assert_eq!(state, "st%2Bate");
    code.to_string()
}

/// The token request flytekit sends: the code, the verifier, and the authorize parameters again.
fn code_exchange(code: &str, verifier: &str) -> String {
    format!(
        "code={code}&grant_type=authorization_code&code_verifier={verifier}&{}",
        authorize_query(DEFAULT_REDIRECT_URI)
    )
}

#[tokio::test]
async fn pkce_flow_issues_tokens_once() {
    let (_d, a) = authority();
    let code = approve(&a).await;
    let r = post(&a, "/oauth2/token", &code_exchange(&code, VERIFIER), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = json_of(r).await;
    let claims = a
        .verify_access(body["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.sub, "sandbox-user");
    assert_eq!(claims.scp, ["all", "offline"]);
    assert!(a
        .verify_refresh(body["refresh_token"].as_str().unwrap())
        .is_ok());

    let r = post(&a, "/oauth2/token", &code_exchange(&code, VERIFIER), None).await;
    let (status, error) = error_of(r).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
}

#[tokio::test]
async fn pkce_refusals() {
    let (_d, a) = authority();
    // A wrong verifier burns the code.
    let code = approve(&a).await;
    let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl";
    let r = post(&a, "/oauth2/token", &code_exchange(&code, wrong), None).await;
    let body = text_of(r).await;
    assert!(
        body.contains("invalid_grant") && !body.contains(&code),
        "{body}"
    );
    let r = post(&a, "/oauth2/token", &code_exchange(&code, VERIFIER), None).await;
    assert_eq!(error_of(r).await.1, "invalid_grant");

    // Expired after 60 s.
    let code = approve(&a).await;
    a.advance(60);
    let r = post(&a, "/oauth2/token", &code_exchange(&code, VERIFIER), None).await;
    assert_eq!(error_of(r).await.1, "invalid_grant");

    // Another redirect URI or client: an error page, never a redirect.
    for q in [
        authorize_query("http://evil.example/cb"),
        authorize_query(DEFAULT_REDIRECT_URI).replace("flytectl", "other"),
        authorize_query(DEFAULT_REDIRECT_URI).replace("S256", "plain"),
    ] {
        let r = send(
            &a,
            Request::get(format!("/oauth2/authorize?{q}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{q}");
        let r = post(
            &a,
            "/oauth2/authorize",
            &format!("{q}&decision=approve"),
            None,
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{q}");
        assert!(!r.headers().contains_key(header::LOCATION));
    }

    // Deny.
    let q = authorize_query(DEFAULT_REDIRECT_URI);
    let r = post(&a, "/oauth2/authorize", &format!("{q}&decision=deny"), None).await;
    assert_eq!(
        r.headers()[header::LOCATION],
        "http://localhost:53593/callback?error=access_denied&state=st%2Bate"
    );
}

#[tokio::test]
async fn a_configured_redirect_uri_is_the_only_one() {
    let settings = AuthSettings {
        redirect_uri: "http://127.0.0.1:9999/cb".into(),
        ..AuthSettings::default()
    };
    let (_d, a) = authority_with(settings, None);
    let q = authorize_query("http://127.0.0.1:9999/cb");
    let r = post(
        &a,
        "/oauth2/authorize",
        &format!("{q}&decision=approve"),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let q = authorize_query(DEFAULT_REDIRECT_URI);
    let r = post(
        &a,
        "/oauth2/authorize",
        &format!("{q}&decision=approve"),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_console_signs_in_on_its_own_page_of_this_sandbox_only() {
    let (_d, a) = authority();
    let port = a.base_url().rsplit(':').next().unwrap().to_string();
    for (uri, allowed) in [
        (format!("{}/console/signin", a.base_url()), true),
        (format!("http://localhost:{port}/console/signin"), true),
        (format!("http://localhost:{port}/console/other"), false),
        (format!("http://evil.example:{port}/console/signin"), false),
        ("http://localhost:1/console/signin".to_string(), false),
        (format!("https://localhost:{port}/console/signin"), false),
    ] {
        let q = authorize_query(&uri);
        let r = post(
            &a,
            "/oauth2/authorize",
            &format!("{q}&decision=approve"),
            None,
        )
        .await;
        let expected = if allowed {
            StatusCode::SEE_OTHER
        } else {
            StatusCode::BAD_REQUEST
        };
        assert_eq!(r.status(), expected, "{uri}");
    }
}

#[tokio::test]
async fn refresh_tokens_are_exchanged_and_only_them() {
    let (_d, a) = authority();
    let code = approve(&a).await;
    let body =
        json_of(post(&a, "/oauth2/token", &code_exchange(&code, VERIFIER), None).await).await;
    let refresh = body["refresh_token"].as_str().unwrap();
    let access = body["access_token"].as_str().unwrap();

    let r = post(
        &a,
        "/oauth2/token",
        &format!("refresh_token={refresh}&grant_type=refresh_token&client_id=flytectl"),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let renewed = json_of(r).await;
    assert!(a
        .verify_access(renewed["access_token"].as_str().unwrap())
        .is_ok());
    assert!(renewed["refresh_token"].is_string());

    let r = post(
        &a,
        "/oauth2/token",
        &format!("refresh_token={access}&grant_type=refresh_token&client_id=flytectl"),
        None,
    )
    .await;
    let body = text_of(r).await;
    assert!(
        body.contains("invalid_grant") && body.contains("not a refresh token"),
        "{body}"
    );
    assert!(!body.contains(access));

    let r = post(
        &a,
        "/oauth2/token",
        &format!("refresh_token={refresh}&grant_type=refresh_token&client_id=someone"),
        None,
    )
    .await;
    assert_eq!(error_of(r).await.1, "invalid_grant");
}

async fn start_device(a: &Arc<Authority>) -> serde_json::Value {
    let r = post(
        a,
        "/oauth2/device/authorize",
        "client_id=flytectl&scope=all+offline&audience=",
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    json_of(r).await
}

async fn poll(a: &Arc<Authority>, device_code: &str) -> Response {
    post(
        a,
        "/oauth2/token",
        &format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id=flytectl&device_code={device_code}&scope=all+offline"),
        None,
    )
    .await
}

#[tokio::test]
async fn device_flow_waits_for_approval() {
    let (_d, a) = authority();
    let codes = start_device(&a).await;
    let user_code = codes["user_code"].as_str().unwrap().to_string();
    let device_code = codes["device_code"].as_str().unwrap().to_string();
    assert_eq!(codes["verification_uri"], format!("{BASE}/oauth2/device"));
    assert_eq!(
        codes["verification_uri_complete"],
        format!("{BASE}/oauth2/device?user_code={user_code}")
    );
    assert_eq!(codes["expires_in"], 600);
    assert_eq!(codes["interval"], 1);
    assert_eq!(user_code.len(), 9);

    assert_eq!(
        error_of(poll(&a, &device_code).await).await,
        (StatusCode::BAD_REQUEST, "authorization_pending".into())
    );
    let r = send(
        &a,
        Request::get(format!("/oauth2/device?user_code={user_code}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(text_of(r).await.contains(&user_code));
    let r = post(
        &a,
        "/oauth2/device",
        &format!("user_code={}&decision=approve", user_code.to_lowercase()),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(text_of(r).await.contains("You can close this window"));

    let r = poll(&a, &device_code).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = json_of(r).await;
    let claims = a
        .verify_access(body["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.client_id.as_str()),
        ("sandbox-user", "flytectl")
    );
    assert!(body["refresh_token"].is_string());
    assert_eq!(
        error_of(poll(&a, &device_code).await).await.1,
        "invalid_grant"
    );
}

#[tokio::test]
async fn device_flow_denied_expired_and_unknown() {
    let (_d, a) = authority();
    let codes = start_device(&a).await;
    let user_code = codes["user_code"].as_str().unwrap();
    post(
        &a,
        "/oauth2/device",
        &format!("user_code={user_code}&decision=deny"),
        None,
    )
    .await;
    let device_code = codes["device_code"].as_str().unwrap();
    assert_eq!(
        error_of(poll(&a, device_code).await).await.1,
        "access_denied"
    );

    let codes = start_device(&a).await;
    a.advance(600);
    let device_code = codes["device_code"].as_str().unwrap();
    assert_eq!(
        error_of(poll(&a, device_code).await).await.1,
        "expired_token"
    );

    let r = send(
        &a,
        Request::get("/oauth2/device?user_code=BCDF-GHJK")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = post(
        &a,
        "/oauth2/device",
        "user_code=BCDF-GHJK&decision=approve",
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = post(&a, "/oauth2/device/authorize", "client_id=someone", None).await;
    assert_eq!(error_of(r).await.1, "invalid_client");
}
