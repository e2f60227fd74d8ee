//! A real sandbox with authentication on: the gate in tonic's server, the HTTP routes merged
//! with the blob endpoint, the services behind them.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::Code;

use crate::auth::{AuthSettings, TokenKind};
use crate::{Sandbox, SandboxConfig};
use union_idl::flyteidl::admin::GetVersionRequest;
use union_idl::flyteidl::service::admin_service_client::AdminServiceClient;
use union_idl::flyteidl::service::auth_metadata_service_client::AuthMetadataServiceClient;
use union_idl::flyteidl::service::identity_service_client::IdentityServiceClient;
use union_idl::flyteidl::service::{OAuth2MetadataRequest, UserInfoRequest};

struct Running {
    url: String,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A sandbox on a free port; with auth, also an access token and the client secret.
async fn start(auth: Option<AuthSettings>) -> (Running, Option<(String, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let config = SandboxConfig {
        host: "127.0.0.1".into(),
        port: 0,
        data_dir: dir.path().to_path_buf(),
        auth,
        tls: false,
    };
    let sandbox = Sandbox::bind(&config).await.unwrap();
    let url = format!("http://{}", sandbox.local_addr());
    let creds = sandbox.auth().map(|a| {
        let token = a
            .sign(
                TokenKind::Access,
                "union-sandbox",
                "union-sandbox",
                &["all".into()],
            )
            .unwrap();
        let secret = std::fs::read_to_string(a.client_secret_path()).unwrap();
        (token, secret.trim().to_string())
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(sandbox.serve(async move {
        let _ = stopped.await;
    }));
    let running = Running {
        url,
        _dir: dir,
        stop: Some(stop),
    };
    (running, creds)
}

fn with_token<T>(msg: T, token: &str, org: Option<&str>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert(
        "flyte-authorization",
        format!("Bearer {token}").parse().unwrap(),
    );
    if let Some(org) = org {
        req.metadata_mut()
            .insert("x-user-active-org", org.parse().unwrap());
    }
    req
}

/// One HTTP/1.1 request, as python `requests` sends it; the whole response.
async fn http1(url: &str, request: &str) -> String {
    let addr = url.strip_prefix("http://").unwrap();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_need_a_token_and_discovery_does_not() {
    let (sb, creds) = start(Some(AuthSettings::default())).await;
    let (token, secret) = creds.unwrap();

    let mut meta = AuthMetadataServiceClient::connect(sb.url.clone())
        .await
        .unwrap();
    let m = meta
        .get_o_auth2_metadata(OAuth2MetadataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(m.token_endpoint, format!("{}/oauth2/token", sb.url));
    assert_eq!(m.issuer, sb.url);

    let mut admin = AdminServiceClient::connect(sb.url.clone()).await.unwrap();
    let err = admin.get_version(GetVersionRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    admin
        .get_version(with_token(GetVersionRequest {}, &token, None))
        .await
        .unwrap();

    let mut identity = IdentityServiceClient::connect(sb.url.clone())
        .await
        .unwrap();
    assert_eq!(
        identity
            .user_info(UserInfoRequest {})
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let me = identity
        .user_info(with_token(UserInfoRequest {}, &token, None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.subject, "union-sandbox");
    assert_eq!(me.preferred_username, "union-sandbox");

    // The token endpoint over HTTP/1.1 on the same port, as flytekit's ClientSecret flow.
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("union-sandbox:{secret}"),
    );
    let body = "grant_type=client_credentials&scope=all";
    let host = sb.url.strip_prefix("http://").unwrap();
    let resp = http1(
        &sb.url,
        &format!(
            "POST /oauth2/token HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {basic}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let json = &resp[resp.find("\r\n\r\n").unwrap() + 4..];
    let issued: serde_json::Value = serde_json::from_str(json).unwrap();
    admin
        .get_version(with_token(
            GetVersionRequest {},
            issued["access_token"].as_str().unwrap(),
            None,
        ))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn org_mode_over_the_wire() {
    let settings = AuthSettings {
        org: Some("acme".into()),
        ..AuthSettings::default()
    };
    let (sb, creds) = start(Some(settings)).await;
    let (token, _) = creds.unwrap();
    let mut admin = AdminServiceClient::connect(sb.url.clone()).await.unwrap();
    let err = admin
        .get_version(with_token(GetVersionRequest {}, &token, None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = admin
        .get_version(with_token(GetVersionRequest {}, &token, Some("other")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    admin
        .get_version(with_token(GetVersionRequest {}, &token, Some("acme")))
        .await
        .unwrap();
    // UserInfo needs no org: it is how union learns it on Serverless.
    let mut identity = IdentityServiceClient::connect(sb.url.clone())
        .await
        .unwrap();
    let anonymous_org = identity
        .user_info(with_token(UserInfoRequest {}, &token, None))
        .await
        .unwrap()
        .into_inner();
    assert!(anonymous_org.additional_claims.is_some());
    let me = identity
        .user_info(with_token(UserInfoRequest {}, &token, Some("acme")))
        .await
        .unwrap()
        .into_inner();
    let claims = me.additional_claims.unwrap();
    assert_eq!(
        claims.fields["userhandle"].kind,
        Some(prost_types::value::Kind::StringValue("acme".into()))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_auth_calls_pass_and_the_user_is_anonymous() {
    let (sb, creds) = start(None).await;
    assert!(creds.is_none());
    let mut identity = IdentityServiceClient::connect(sb.url.clone())
        .await
        .unwrap();
    let me = identity
        .user_info(UserInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.subject, "anonymous");
    let mut meta = AuthMetadataServiceClient::connect(sb.url.clone())
        .await
        .unwrap();
    let err = meta
        .get_o_auth2_metadata(OAuth2MetadataRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    // No OAuth2 routes.
    let host = sb.url.strip_prefix("http://").unwrap();
    let resp = http1(
        &sb.url,
        &format!("GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
}
