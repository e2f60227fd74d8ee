//! The gate in front of the gRPC services: every call but `AuthMetadataService` (which clients ask
//! before they have a token) must carry a valid access token, and in org mode name the org.
//!
//! Plain HTTP passes: the OAuth2 endpoints must be reachable without a token, and signed blob
//! URLs carry their own authorization (their signature, like S3 presigned URLs).

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::{header, HeaderMap, Request, Response};
use futures_util::future::{Either, Ready};
use tonic::Status;

use super::{Authority, Claims, AUTHORIZATION_METADATA_KEY, ORG_METADATA_KEY};

/// Calls under this path are answered without a token.
const OPEN_SERVICE_PREFIX: &str = "/flyteidl.service.AuthMetadataService/";

/// Wraps the sandbox's routes; passes everything through when authentication is off.
#[derive(Debug, Clone, Default)]
pub struct AuthLayer {
    authority: Option<Arc<Authority>>,
}

impl AuthLayer {
    /// A gate checking tokens against `authority` (None: authentication off).
    pub fn new(authority: Option<Arc<Authority>>) -> Self {
        AuthLayer { authority }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            authority: self.authority.clone(),
        }
    }
}

/// The service [`AuthLayer`] makes.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    authority: Option<Arc<Authority>>,
}

/// Whether a request is a gRPC call: by its content type, or by a path naming a service
/// (`/package.Service/Method`). The path matters because tonic dispatches on it alone: a call with
/// another content type would otherwise slip past the gate into the services.
fn is_grpc<B>(req: &Request<B>) -> bool {
    let by_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    let first = req
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    by_type || (first.contains('.') && !first.starts_with('.'))
}

/// The bearer token of a call, from `flyte-authorization` (flytekit's key) or `authorization`.
fn bearer(headers: &HeaderMap, authority: &Authority) -> Result<String, Status> {
    let Some(value) = headers
        .get(AUTHORIZATION_METADATA_KEY)
        .or_else(|| headers.get(header::AUTHORIZATION))
    else {
        return Err(Status::unauthenticated(format!(
            "this sandbox requires authentication and the call carries no access token: send `Bearer <token>` in the `{AUTHORIZATION_METADATA_KEY}` (or `authorization`) metadata; tokens come from {} (configure flytekit with authType ClientSecret, Pkce or DeviceFlow)",
            authority.token_endpoint()
        )));
    };
    let value = value.to_str().map_err(|_| {
        Status::unauthenticated("the authorization metadata is not text; expected `Bearer <token>`")
    })?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Only the scheme is quoted: whatever follows may be a credential.
        let scheme: String = scheme.chars().take(20).collect();
        return Err(Status::unauthenticated(format!(
            "the authorization metadata uses the `{}` scheme; expected `Bearer <token>`",
            scheme.escape_debug()
        )));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(Status::unauthenticated(
            "the authorization metadata has no token after `Bearer`",
        ));
    }
    Ok(token.to_string())
}

/// Check an HTTP call of the sandbox's own (`/api/v1`, task logs): a valid bearer token, in
/// `Authorization` or flytekit's key. No org: the console names none, and one sandbox serves one.
pub fn check_http(headers: &HeaderMap, authority: &Authority) -> Result<Claims, Status> {
    if headers.get(AUTHORIZATION_METADATA_KEY).is_none()
        && headers.get(header::AUTHORIZATION).is_none()
    {
        return Err(Status::unauthenticated(format!(
            "this sandbox requires authentication: send `Authorization: Bearer <token>`, with a token from {}",
            authority.token_endpoint()
        )));
    }
    let token = bearer(headers, authority)?;
    authority
        .verify_access(&token)
        .map_err(|e| Status::unauthenticated(format!("the access token is not valid: {e}")))
}

/// The one call that needs no org in org mode: how union learns the org on Serverless
/// (`_get_user_handle` calls it before any org is known).
const ORG_FREE_PATH: &str = "/flyteidl.service.IdentityService/UserInfo";

/// Check a gRPC call: its token, then (unless it is `ORG_FREE_PATH`) its org. The claims are
/// what the services may read.
pub fn check(headers: &HeaderMap, authority: &Authority) -> Result<Claims, Status> {
    check_path(headers, authority, "")
}

fn check_path(headers: &HeaderMap, authority: &Authority, path: &str) -> Result<Claims, Status> {
    let token = bearer(headers, authority)?;
    let claims = authority.verify_access(&token).map_err(|e| {
        Status::unauthenticated(format!(
            "the access token was refused: {e}; get a new one from {}",
            authority.token_endpoint()
        ))
    })?;
    if let Some(org) = authority
        .settings()
        .org
        .as_ref()
        .filter(|_| path != ORG_FREE_PATH)
    {
        let asked = headers
            .get(ORG_METADATA_KEY)
            .map(|v| v.to_str().unwrap_or(""));
        match asked {
            None | Some("") => {
                return Err(Status::invalid_argument(format!(
                    "this sandbox runs in org mode: requests must name the organization (org `{org}`) in the `{ORG_METADATA_KEY}` metadata (union sends it when its config sets the org)"
                )))
            }
            Some(asked) if asked != org => {
                return Err(Status::permission_denied(format!(
                    "this sandbox serves org `{org}`; the request names org `{}`",
                    asked.escape_debug()
                )))
            }
            Some(_) => {}
        }
        if claims.org.as_deref().is_some_and(|o| o != org) {
            return Err(Status::permission_denied(format!(
                "the access token was issued for org `{}`, this sandbox serves org `{org}`: get a new token",
                claims.org.as_deref().unwrap_or_default()
            )));
        }
    }
    Ok(claims)
}

/// A method of the open service, named plainly (no `..` or further segments to play with).
fn is_open(path: &str) -> bool {
    path.strip_prefix(OPEN_SERVICE_PREFIX)
        .is_some_and(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphanumeric()))
}

type Refusal<R, E> = Ready<Result<Response<R>, E>>;

impl<S, B, R> tower::Service<Request<B>> for AuthService<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    R: Default,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Either<Refusal<R, S::Error>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if let Some(authority) = &self.authority {
            let gated = is_grpc(&req) && !is_open(req.uri().path());
            if gated {
                match check_path(req.headers(), authority, req.uri().path()) {
                    Ok(claims) => {
                        req.extensions_mut().insert(claims);
                    }
                    // Trailers-only: the status is in the headers, as gRPC clients expect.
                    Err(status) => {
                        return Either::Left(futures_util::future::ready(Ok(status.into_http())))
                    }
                }
            }
        }
        Either::Right(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::http::{HeaderValue, StatusCode};
    use tonic::body::Body;
    use tonic::Code;
    use tower::{Layer as _, ServiceExt as _};

    use super::*;
    use crate::auth::tests::authority_with;
    use crate::auth::{AuthSettings, TokenKind};

    /// The gate over a service that answers 200 with the subject it was handed.
    async fn call(
        authority: Option<Arc<Authority>>,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Response<Body> {
        let inner = tower::service_fn(|req: Request<Body>| async move {
            let sub = req
                .extensions()
                .get::<Claims>()
                .map(|c| c.sub.clone())
                .unwrap_or_default();
            let mut resp = Response::new(Body::default());
            resp.headers_mut()
                .insert("x-subject", HeaderValue::from_str(&sub).unwrap());
            Ok::<_, Infallible>(resp)
        });
        let mut req = Request::post(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        AuthLayer::new(authority)
            .layer(inner)
            .oneshot(req.body(Body::default()).unwrap())
            .await
            .unwrap()
    }

    const GRPC: (&str, &str) = ("content-type", "application/grpc");
    const ADMIN: &str = "/flyteidl.service.AdminService/ListProjects";

    fn refused(resp: &Response<Body>) -> Option<Status> {
        Status::from_header_map(resp.headers()).filter(|s| s.code() != Code::Ok)
    }

    fn token(a: &Authority, kind: TokenKind) -> String {
        a.sign(kind, "union-sandbox", "union-sandbox", &["all".into()])
            .unwrap()
    }

    #[tokio::test]
    async fn a_call_without_a_valid_token_is_unauthenticated() {
        let (_d, a) = authority_with(AuthSettings::default(), None);
        let s = refused(&call(Some(a.clone()), ADMIN, &[GRPC]).await).unwrap();
        assert_eq!(s.code(), Code::Unauthenticated);
        assert!(s.message().contains("no access token"), "{}", s.message());
        assert!(s.message().contains("http://127.0.0.1:30080/oauth2/token"));

        let refresh = token(&a, TokenKind::Refresh);
        let forged = {
            let (_d2, other) = authority_with(AuthSettings::default(), None);
            token(&other, TokenKind::Access)
        };
        let expired = token(&a, TokenKind::Access);
        let cases = [
            (format!("Bearer {refresh}"), "not an access token"),
            (format!("Bearer {forged}"), "signature does not match"),
            ("Basic dXNlcjpwYXNz".to_string(), "`Basic` scheme"),
            ("Bearer ".to_string(), "no token"),
            ("Bearer not-a-jwt".to_string(), "malformed"),
        ];
        for (value, expected) in &cases {
            let s = refused(
                &call(
                    Some(a.clone()),
                    ADMIN,
                    &[GRPC, ("flyte-authorization", value)],
                )
                .await,
            )
            .unwrap();
            assert_eq!(s.code(), Code::Unauthenticated, "{value}");
            assert!(s.message().contains(expected), "{}", s.message());
            let secret = value.split(' ').nth(1).unwrap_or_default();
            assert!(secret.len() < 4 || !s.message().contains(secret));
        }
        a.advance(3600);
        let s = refused(
            &call(
                Some(a.clone()),
                ADMIN,
                &[GRPC, ("authorization", &format!("Bearer {expired}"))],
            )
            .await,
        )
        .unwrap();
        assert!(s.message().contains("expired"), "{}", s.message());
    }

    #[tokio::test]
    async fn a_valid_token_passes_with_its_claims() {
        let (_d, a) = authority_with(AuthSettings::default(), None);
        let t = token(&a, TokenKind::Access);
        for key in ["flyte-authorization", "authorization"] {
            let resp = call(
                Some(a.clone()),
                ADMIN,
                &[GRPC, (key, &format!("bearer {t}"))],
            )
            .await;
            assert!(refused(&resp).is_none());
            assert_eq!(resp.headers()["x-subject"], "union-sandbox");
        }
    }

    #[tokio::test]
    async fn what_passes_without_a_token() {
        let (_d, a) = authority_with(AuthSettings::default(), None);
        let open = "/flyteidl.service.AuthMetadataService/GetPublicClientConfig";
        assert!(refused(&call(Some(a.clone()), open, &[GRPC]).await).is_none());
        // Plain HTTP: OAuth2 endpoints, signed blob URLs.
        for path in [
            "/oauth2/token",
            "/blobs/p/d/x?signature=1",
            "/.well-known/x",
        ] {
            assert!(
                refused(&call(Some(a.clone()), path, &[]).await).is_none(),
                "{path}"
            );
        }
        // Authentication off: everything.
        assert!(refused(&call(None, ADMIN, &[GRPC]).await).is_none());
    }

    #[tokio::test]
    async fn a_service_path_is_gated_whatever_the_content_type() {
        let (_d, a) = authority_with(AuthSettings::default(), None);
        let resp = call(Some(a.clone()), ADMIN, &[("content-type", "text/plain")]).await;
        assert_eq!(refused(&resp).unwrap().code(), Code::Unauthenticated);
        let sneaky = "/flyteidl.service.AuthMetadataService/../flyteidl.service.AdminService/X";
        let resp = call(Some(a.clone()), sneaky, &[GRPC]).await;
        assert_eq!(refused(&resp).unwrap().code(), Code::Unauthenticated);
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "gRPC errors are trailers-only 200s"
        );
    }

    #[tokio::test]
    async fn org_mode_requires_the_org() {
        let settings = AuthSettings {
            org: Some("acme".into()),
            ..AuthSettings::default()
        };
        let (_d, a) = authority_with(settings, None);
        let t = format!("Bearer {}", token(&a, TokenKind::Access));
        let auth = ("flyte-authorization", t.as_str());

        let s = refused(&call(Some(a.clone()), ADMIN, &[GRPC, auth]).await).unwrap();
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(
            s.message().starts_with(
                "this sandbox runs in org mode: requests must name the organization (org `acme`)"
            ),
            "{}",
            s.message()
        );

        let other = ("x-user-active-org", "other");
        let s = refused(&call(Some(a.clone()), ADMIN, &[GRPC, auth, other]).await).unwrap();
        assert_eq!(s.code(), Code::PermissionDenied);
        assert!(s.message().contains("`acme`") && s.message().contains("`other`"));

        let right = ("x-user-active-org", "acme");
        assert!(refused(&call(Some(a.clone()), ADMIN, &[GRPC, auth, right]).await).is_none());
        // Authentication comes first.
        let s = refused(&call(Some(a.clone()), ADMIN, &[GRPC, right]).await).unwrap();
        assert_eq!(s.code(), Code::Unauthenticated);
        assert_eq!(
            a.verify_access(&t[7..]).unwrap().org.as_deref(),
            Some("acme")
        );
    }
}
