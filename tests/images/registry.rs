//! Registry client against real registries on loopback: the docker-registry that
//! tests/setup/docker.sh starts on 127.0.0.1:30000, a private htpasswd-protected docker-registry
//! started here, and a fake registry with a Bearer token service.
//!
//! Tests that need a real registry fail when it is not there, naming the command that starts it.

use crate::support::registry as util;

use std::time::Duration;

use union_registry::{ImageReference, ImageStatus, RegistryClient, RegistryError};
use util::{FakeServer, Reply, LOCAL_REGISTRY};

fn client_with(config_dir: &std::path::Path) -> RegistryClient {
    RegistryClient::builder()
        .docker_config_dir(config_dir)
        .build()
        .unwrap()
}

/// A client that sees no docker credentials at all.
fn anonymous_client() -> (tempfile::TempDir, RegistryClient) {
    let dir = tempfile::tempdir().unwrap();
    let client = client_with(dir.path());
    (dir, client)
}

fn image(s: &str) -> ImageReference {
    ImageReference::parse(s).unwrap()
}

/// The registry tests/setup/docker.sh starts must be up: its absence fails the test.
async fn require_local_registry() {
    assert!(
        util::registry_up(LOCAL_REGISTRY).await,
        "no registry on {LOCAL_REGISTRY}; start it with `bash tests/setup/docker.sh` (tests/run-all.sh runs it)"
    );
}

fn unknown(status: ImageStatus) -> RegistryError {
    match status {
        ImageStatus::Unknown { reason } => reason,
        other => panic!("expected Unknown, got {other:?}"),
    }
}

#[tokio::test]
async fn existing_image_is_found_with_its_digest() {
    require_local_registry().await;
    let repo = crate::support::unique("union-test/exists");
    let digest = util::push_tiny_image(LOCAL_REGISTRY, &repo, "v1", None).await;
    let (_dir, client) = anonymous_client();
    // Both spellings of the loopback registry.
    for name in [
        format!("localhost:30000/{repo}:v1"),
        format!("127.0.0.1:30000/{repo}:v1"),
    ] {
        assert_eq!(
            client.check(&image(&name)).await,
            ImageStatus::Exists {
                digest: digest.clone()
            },
            "{name}"
        );
    }
    assert_eq!(
        client
            .manifest_digest(&image(&format!("localhost:30000/{repo}:v1")))
            .await
            .unwrap(),
        digest
    );
    // A digest reference exists too.
    let by_digest = image(&format!("localhost:30000/{repo}@{digest}"));
    assert_eq!(
        client.check(&by_digest).await,
        ImageStatus::Exists {
            digest: digest.clone()
        }
    );
}

#[tokio::test]
async fn missing_tag_and_missing_repository_are_missing() {
    require_local_registry().await;
    let repo = crate::support::unique("union-test/missing");
    util::push_tiny_image(LOCAL_REGISTRY, &repo, "v1", None).await;
    let (_dir, client) = anonymous_client();
    assert_eq!(
        client
            .check(&image(&format!("localhost:30000/{repo}:v2")))
            .await,
        ImageStatus::Missing
    );
    let nowhere = crate::support::unique("union-test/never-pushed");
    assert_eq!(
        client
            .check(&image(&format!("localhost:30000/{nowhere}:v1")))
            .await,
        ImageStatus::Missing
    );
    let zeros = format!("sha256:{}", "0".repeat(64));
    assert_eq!(
        client
            .check(&image(&format!("localhost:30000/{repo}@{zeros}")))
            .await,
        ImageStatus::Missing
    );
    let err = client
        .manifest_digest(&image(&format!("localhost:30000/{repo}:v2")))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("localhost:30000/{repo}:v2")),
        "{err}"
    );
}

/// One client answers the same for repeated checks (its cached token and connection are reused;
/// how fast that is, is measured by tests/bench/images.sh, not asserted here).
#[tokio::test]
async fn repeated_checks_with_one_client_agree() {
    require_local_registry().await;
    let repo = crate::support::unique("union-test/fast");
    let digest = util::push_tiny_image(LOCAL_REGISTRY, &repo, "v1", None).await;
    let (_dir, client) = anonymous_client();
    let reference = image(&format!("localhost:30000/{repo}:v1"));
    for _ in 0..20 {
        match client.check(&reference).await {
            ImageStatus::Exists { digest: d } => assert_eq!(d, digest),
            other => panic!("expected Exists with a digest, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn closed_port_is_unreachable_not_missing() {
    // Bound but not listening: connections are refused, and no other process can take the port.
    let (_socket, port) = util::closed_port();
    let (_dir, client) = anonymous_client();
    let reason = unknown(
        client
            .check(&image(&format!("127.0.0.1:{port}/app:v1")))
            .await,
    );
    assert!(
        matches!(reason, RegistryError::Unreachable { .. }),
        "{reason:?}"
    );
    let text = reason.to_string();
    assert!(
        text.starts_with(&format!("registry 127.0.0.1:{port} unreachable: ")),
        "{text}"
    );
    assert!(text.to_lowercase().contains("refused"), "{text}");
}

#[tokio::test]
async fn silent_registry_times_out_as_unknown() {
    let server = FakeServer::start(|_, _| None).await;
    let dir = tempfile::tempdir().unwrap();
    let client = RegistryClient::builder()
        .docker_config_dir(dir.path())
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let reason = unknown(
        client
            .check(&image(&format!("{}/app:v1", server.addr)))
            .await,
    );
    assert_eq!(
        reason.to_string(),
        format!(
            "registry {} unreachable: timed out after 0.3 s",
            server.addr
        )
    );
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_unknown() {
    for status in [500u16, 503, 429, 400] {
        let server = FakeServer::start(move |_, _| Some(Reply::new(status))).await;
        let (_dir, client) = anonymous_client();
        let reason = unknown(
            client
                .check(&image(&format!("{}/app:v1", server.addr)))
                .await,
        );
        assert_eq!(
            reason.to_string(),
            format!(
                "registry {addr} answered HTTP {status} for {addr}/app:v1",
                addr = server.addr
            )
        );
    }
}

#[test]
fn malformed_references_are_rejected_before_any_request() {
    for bad in [
        "",
        "localhost:30000/App:v1",
        "app:",
        "app:a:b",
        "localhost:99999/app",
        "a//b",
        "app@sha256:12",
    ] {
        let err = ImageReference::parse(bad).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("invalid image reference `{bad}`: ")),
            "{err}"
        );
    }
    // The error converts into the registry error type callers handle.
    let err: RegistryError = ImageReference::parse("UPPER/case:x:y").unwrap_err().into();
    assert!(matches!(err, RegistryError::Reference(_)));
}

// ---------------------------------------------------------------- htpasswd (Basic) registry

const USER: &str = "union";
const PASSWORD: &str = "s3cret-Pa55word";

#[tokio::test]
async fn htpasswd_registry_with_basic_credentials() {
    let registry = util::AuthRegistry::start(USER, PASSWORD)
        .await
        .unwrap_or_else(|why| panic!("{why}; `bash tests/setup/docker.sh` installs what it needs"));
    let repo = crate::support::unique("auth/app");
    let digest = util::push_tiny_image(&registry.addr, &repo, "v1", Some((USER, PASSWORD))).await;
    let reference = image(&format!("{}/{repo}:v1", registry.addr));

    // Right credentials, from `auths` in a temp DOCKER_CONFIG dir.
    let good = util::basic_auth_config(&registry.addr, USER, PASSWORD);
    let client = client_with(good.path());
    assert_eq!(
        client.check(&reference).await,
        ImageStatus::Exists {
            digest: digest.clone()
        }
    );
    // The client remembers the Basic scheme: the second check is one request and still works.
    assert_eq!(
        client.check(&reference).await,
        ImageStatus::Exists {
            digest: digest.clone()
        }
    );
    assert_eq!(
        client
            .check(&image(&format!("{}/{repo}:nope", registry.addr)))
            .await,
        ImageStatus::Missing
    );
    assert_eq!(client.manifest_digest(&reference).await.unwrap(), digest);

    // username/password fields and an `http://` key work the same.
    let fields = util::docker_config(&format!(
        r#"{{"auths": {{"http://{}/v2/": {{"username": "{USER}", "password": "{PASSWORD}"}}}}}}"#,
        registry.addr
    ));
    assert_eq!(
        client_with(fields.path()).check(&reference).await,
        ImageStatus::Exists {
            digest: digest.clone()
        }
    );

    // Wrong password: "refused credentials", and the password is nowhere in the error.
    let wrong_password = "Wr0ng-s3cret-Pa55";
    let wrong = util::basic_auth_config(&registry.addr, USER, wrong_password);
    let reason = unknown(client_with(wrong.path()).check(&reference).await);
    assert_eq!(
        reason,
        RegistryError::CredentialsRefused {
            host: registry.addr.clone()
        }
    );
    assert_eq!(
        reason.to_string(),
        format!("registry refused credentials for {}", registry.addr)
    );
    for text in [reason.to_string(), format!("{reason:?}")] {
        assert!(
            !text.contains(wrong_password) && !text.contains(PASSWORD),
            "{text}"
        );
    }

    // No credentials at all: a hint to log in.
    let (_dir, anonymous) = anonymous_client();
    let reason = unknown(anonymous.check(&reference).await);
    assert_eq!(
        reason,
        RegistryError::AuthenticationRequired {
            host: registry.addr.clone()
        }
    );
    assert!(
        reason
            .to_string()
            .contains(&format!("docker login {}", registry.addr)),
        "{reason}"
    );
}

/// Runs the credential-helper test in a child process with a PATH holding a fake helper, so no
/// test in this process mutates the environment.
#[tokio::test]
async fn htpasswd_registry_with_credential_helpers() {
    let registry = util::AuthRegistry::start(USER, PASSWORD)
        .await
        .unwrap_or_else(|why| panic!("{why}; `bash tests/setup/docker.sh` installs what it needs"));
    let repo = crate::support::unique("auth/helper");
    util::push_tiny_image(&registry.addr, &repo, "v1", Some((USER, PASSWORD))).await;

    let bin = tempfile::tempdir().unwrap();
    let secret = format!(
        r#"{{"ServerURL":"{}","Username":"{USER}","Secret":"{PASSWORD}"}}"#,
        registry.addr
    );
    util::write_credential_helper(bin.path(), "uniontest", &registry.addr, &secret);
    let bad = format!(
        r#"{{"ServerURL":"{}","Username":"{USER}","Secret":"nope-nope"}}"#,
        registry.addr
    );
    util::write_credential_helper(bin.path(), "uniontestbad", &registry.addr, &bad);
    util::write_credential_helper(bin.path(), "uniontestnone", "no-such-server", &secret);
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child
        .args([
            "--exact",
            "registry::credential_helper_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PATH", path)
        .env("UNION_TEST_HELPER_REGISTRY", &registry.addr)
        .env("UNION_TEST_HELPER_REPO", &repo);
    let output = tokio::task::spawn_blocking(move || child.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{stderr}"
    );
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));
}

/// The child half of `htpasswd_registry_with_credential_helpers` (which runs it with the
/// environment it needs); run alone it fails, never passes without checking anything.
#[tokio::test]
#[ignore = "run by htpasswd_registry_with_credential_helpers with a prepared PATH"]
async fn credential_helper_child() {
    let (Ok(addr), Ok(repo)) = (
        std::env::var("UNION_TEST_HELPER_REGISTRY"),
        std::env::var("UNION_TEST_HELPER_REPO"),
    ) else {
        panic!("run by htpasswd_registry_with_credential_helpers, which sets UNION_TEST_HELPER_*");
    };
    let reference = image(&format!("{addr}/{repo}:v1"));
    // credHelpers for this host.
    let cfg = util::docker_config(&format!(r#"{{"credHelpers": {{"{addr}": "uniontest"}}}}"#));
    assert!(matches!(
        client_with(cfg.path()).check(&reference).await,
        ImageStatus::Exists { .. }
    ));
    // credsStore as the default store.
    let cfg = util::docker_config(r#"{"credsStore": "uniontest"}"#);
    assert!(matches!(
        client_with(cfg.path()).check(&reference).await,
        ImageStatus::Exists { .. }
    ));
    // A helper with a wrong secret: refused, and the helper's output is not in the error.
    let cfg = util::docker_config(&format!(
        r#"{{"credHelpers": {{"{addr}": "uniontestbad"}}}}"#
    ));
    let reason = unknown(client_with(cfg.path()).check(&reference).await);
    assert_eq!(
        reason.to_string(),
        format!("registry refused credentials for {addr}")
    );
    // A store that knows nothing for the host falls back to `auths` (as docker's file store).
    let auth = "dW5pb246czNjcmV0LVBhNTV3b3Jk"; // union:s3cret-Pa55word
    let cfg = util::docker_config(&format!(
        r#"{{"credsStore": "uniontestnone", "auths": {{"{addr}": {{"auth": "{auth}"}}}}}}"#
    ));
    assert!(matches!(
        client_with(cfg.path()).check(&reference).await,
        ImageStatus::Exists { .. }
    ));
    // A missing helper program names the helper and the registry.
    let cfg = util::docker_config(&format!(
        r#"{{"credHelpers": {{"{addr}": "union-test-missing"}}}}"#
    ));
    let reason = unknown(client_with(cfg.path()).check(&reference).await);
    let text = reason.to_string();
    assert!(
        text.contains("docker-credential-union-test-missing") && text.contains(&addr),
        "{text}"
    );
}

// ---------------------------------------------------------------- Bearer token flow (fake)

const TOKEN_USER: &str = "robot";
const TOKEN_PASSWORD: &str = "t0ken-Pa55word";
const REFRESH: &str = "refresh-T0KEN-xyz";
const GOOD: &str = "good-bearer-token";
const ANON: &str = "anonymous-bearer-token";
const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// A registry that wants `Bearer good-…` for `private/*` and accepts the anonymous token for
/// `public/*`, with its token service at `/token` on the same port.
async fn token_registry() -> FakeServer {
    FakeServer::start(|req, addr| {
        let auth = req.headers.get("authorization").cloned().unwrap_or_default();
        if req.path.starts_with("/token") {
            let basic = format!(
                "Basic {}",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{TOKEN_USER}:{TOKEN_PASSWORD}"))
            );
            assert!(req.path.contains("service=fake-registry") || req.body.contains("service=fake-registry"), "{req:?}");
            assert!(req.path.contains("scope=repository%3A") || req.body.contains("scope=repository%3A"), "{req:?}");
            let token = if req.method == "POST" {
                let ok = req.body.contains("grant_type=refresh_token")
                    && req.body.contains(&format!("refresh_token={REFRESH}"))
                    && req.body.contains("client_id=union-cli");
                ok.then(|| format!(r#"{{"access_token":"{GOOD}","expires_in":300}}"#))
            } else if auth == basic {
                Some(format!(r#"{{"token":"{GOOD}","expires_in":300}}"#))
            } else if auth.is_empty() {
                Some(format!(r#"{{"token":"{ANON}"}}"#))
            } else {
                None
            };
            return Some(match token {
                Some(body) => Reply::new(200).header("content-type", "application/json").body(&body),
                None => Reply::new(401).body(r#"{"details":"incorrect username or password"}"#),
            });
        }
        let Some(rest) = req.path.strip_prefix("/v2/") else { return Some(Reply::new(404)) };
        let (repo, reference) = rest.split_once("/manifests/").unwrap();
        let allowed = auth == format!("Bearer {GOOD}") || (repo.starts_with("public/") && auth == format!("Bearer {ANON}"));
        if !allowed {
            let challenge = format!(
                r#"Bearer realm="http://{addr}/token",service="fake-registry",scope="repository:{repo}:pull""#
            );
            return Some(Reply::new(401).header("www-authenticate", &challenge));
        }
        Some(if reference == "v1" {
            Reply::new(200).header("docker-content-digest", DIGEST).body("{}")
        } else {
            Reply::new(404)
        })
    })
    .await
}

fn token_hits(server: &FakeServer) -> usize {
    server.hits.load(std::sync::atomic::Ordering::SeqCst)
}

#[tokio::test]
async fn bearer_token_with_basic_credentials_is_fetched_once() {
    let server = token_registry().await;
    let cfg = util::basic_auth_config(&server.addr, TOKEN_USER, TOKEN_PASSWORD);
    let client = client_with(cfg.path());
    let reference = image(&format!("{}/private/app:v1", server.addr));
    let exists = ImageStatus::Exists {
        digest: DIGEST.into(),
    };
    assert_eq!(client.check(&reference).await, exists);
    // HEAD (401), GET /token, HEAD (200).
    assert_eq!(token_hits(&server), 3);
    assert_eq!(client.check(&reference).await, exists);
    assert_eq!(
        client
            .check(&image(&format!("{}/private/app:v2", server.addr)))
            .await,
        ImageStatus::Missing
    );
    // The cached token served both: one request each.
    assert_eq!(token_hits(&server), 5);
}

#[tokio::test]
async fn bearer_token_anonymous_for_public_repositories() {
    let server = token_registry().await;
    let (_dir, client) = anonymous_client();
    let exists = ImageStatus::Exists {
        digest: DIGEST.into(),
    };
    assert_eq!(
        client
            .check(&image(&format!("{}/public/app:v1", server.addr)))
            .await,
        exists
    );
    let reason = unknown(
        client
            .check(&image(&format!("{}/private/app:v1", server.addr)))
            .await,
    );
    assert_eq!(
        reason,
        RegistryError::AuthenticationRequired {
            host: server.addr.clone()
        }
    );
}

#[tokio::test]
async fn bearer_token_refused_credentials_do_not_leak() {
    let server = token_registry().await;
    let wrong = "n0t-the-Pa55word";
    let cfg = util::basic_auth_config(&server.addr, TOKEN_USER, wrong);
    let reason = unknown(
        client_with(cfg.path())
            .check(&image(&format!("{}/private/app:v1", server.addr)))
            .await,
    );
    assert_eq!(
        reason.to_string(),
        format!("registry refused credentials for {}", server.addr)
    );
    assert!(!format!("{reason:?}").contains(wrong));
}

#[tokio::test]
async fn bearer_token_from_identity_token() {
    let server = token_registry().await;
    let cfg = util::docker_config(&format!(
        r#"{{"auths": {{"{}": {{"auth": "", "identitytoken": "{REFRESH}"}}}}}}"#,
        server.addr
    ));
    let client = client_with(cfg.path());
    let reference = image(&format!("{}/private/app:v1", server.addr));
    assert_eq!(
        client.check(&reference).await,
        ImageStatus::Exists {
            digest: DIGEST.into()
        }
    );
    assert_eq!(client.manifest_digest(&reference).await.unwrap(), DIGEST);
}

#[tokio::test]
async fn registry_token_is_sent_as_is() {
    let server = token_registry().await;
    let cfg = util::docker_config(&format!(
        r#"{{"auths": {{"{}": {{"registrytoken": "{GOOD}"}}}}}}"#,
        server.addr
    ));
    let client = client_with(cfg.path());
    let reference = image(&format!("{}/private/app:v1", server.addr));
    assert_eq!(
        client.check(&reference).await,
        ImageStatus::Exists {
            digest: DIGEST.into()
        }
    );
    // HEAD (401), HEAD with the configured token: the token service was never asked.
    assert_eq!(token_hits(&server), 2);
}

#[tokio::test]
async fn challenge_without_scheme_is_unknown() {
    let server =
        FakeServer::start(|_, _| Some(Reply::new(401).header("www-authenticate", "Negotiate")))
            .await;
    let (_dir, client) = anonymous_client();
    let reason = unknown(
        client
            .check(&image(&format!("{}/app:v1", server.addr)))
            .await,
    );
    assert!(
        matches!(
            reason,
            RegistryError::AuthenticationRequired { .. } | RegistryError::TokenService { .. }
        ),
        "{reason:?}"
    );
    assert!(reason.to_string().contains(&server.addr), "{reason}");
}

#[tokio::test]
async fn missing_digest_header_falls_back_to_hashing_the_manifest() {
    let body = r#"{"schemaVersion":2}"#;
    let server = FakeServer::start(move |_, _| Some(Reply::new(200).body(body))).await;
    let (_dir, client) = anonymous_client();
    let expected = {
        use sha2::Digest as _;
        format!("sha256:{:x}", sha2::Sha256::digest(body.as_bytes()))
    };
    assert_eq!(
        client
            .check(&image(&format!("{}/app:v1", server.addr)))
            .await,
        ImageStatus::Exists { digest: expected }
    );
}
