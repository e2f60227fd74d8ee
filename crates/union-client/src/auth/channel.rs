//! The gRPC transport of every client in this crate: a tonic [`Channel`] whose calls carry the
//! session's token (and `admin.proxyCommand`'s `proxy-authorization`), retried once with new
//! credentials when the server answers UNAUTHENTICATED, as flytekit's `AuthUnaryInterceptor`
//! does.
//!
//! flytekit also retries on UNKNOWN; here that happens only once credentials are in use, so a
//! server without authentication that fails a call with UNKNOWN does not start a login.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body_util::BodyExt as _;
use tonic::body::Body;
use tonic::transport::Channel;
use tower::{Service, ServiceExt as _};

use super::session::Session;
use super::AuthError;

/// A channel that authenticates its calls (or a plain one, without a session), and puts the
/// organization on them when there is one (`crate::org`).
#[derive(Clone, Debug)]
pub struct AuthChannel {
    inner: Channel,
    session: Option<Arc<Session>>,
    org: Option<Arc<str>>,
}

impl AuthChannel {
    pub fn new(inner: Channel, session: Option<Arc<Session>>, org: Option<String>) -> AuthChannel {
        AuthChannel {
            inner,
            session,
            org: org.filter(|o| !o.is_empty()).map(Arc::from),
        }
    }

    /// The same channel (and session), stamping `org` on every call.
    pub fn with_org(&self, org: String) -> AuthChannel {
        AuthChannel::new(self.inner.clone(), self.session.clone(), Some(org))
    }

    /// The organization stamped on calls, if any.
    pub fn org(&self) -> Option<&str> {
        self.org.as_deref()
    }

    /// The session, when this channel authenticates.
    pub fn session(&self) -> Option<&Arc<Session>> {
        self.session.as_ref()
    }
}

/// The gRPC status of a response whose status came in its headers (a trailers-only answer, as
/// servers send for a call refused before it ran), or an HTTP 401 from a proxy in front.
fn refused_status(resp: &http::Response<Body>) -> Option<(i32, String)> {
    if resp.status() == http::StatusCode::UNAUTHORIZED {
        return Some((16, "HTTP 401 Unauthorized".into()));
    }
    let code = resp
        .headers()
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    let message = resp
        .headers()
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .map(|m| {
            percent_encoding::percent_decode_str(m)
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    Some((code, message))
}

const UNAUTHENTICATED: i32 = 16;
const UNKNOWN: i32 = 2;

impl Service<http::Request<Body>> for AuthChannel {
    type Response = http::Response<Body>;
    type Error = tower::BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each call readies its own clone of the channel (it may send twice).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let channel = self.inner.clone();
        let session = self.session.clone();
        let org = self.org.clone();
        Box::pin(async move {
            if session.is_none() && org.is_none() {
                return Ok(channel.oneshot(req).await?);
            }
            let (parts, body) = req.into_parts();
            // Unary and server-streaming requests are one message: kept to send again.
            let mut bytes: Bytes = body.collect().await?.to_bytes();
            let mut org_headers = Vec::new();
            if let Some(org) = &org {
                if let Some(b) = crate::org::stamp_body(parts.uri.path(), &bytes, org) {
                    bytes = Bytes::from(b);
                }
                if let Ok(v) = http::HeaderValue::from_str(org) {
                    org_headers.push(("x-user-active-org", v));
                }
                if let Ok(v) = http::HeaderValue::from_str(&crate::org::request_id()) {
                    org_headers.push(("x-request-id", v));
                }
            }
            let proxy = match &session {
                Some(s) => match s.proxy_header().await {
                    Ok(p) => p,
                    Err(e) => {
                        s.set_error(e.clone());
                        return Err(Box::new(e) as tower::BoxError);
                    }
                },
                None => None,
            };
            let header = session.as_ref().and_then(|s| s.header());
            let build = |header: &Option<super::session::Header>| {
                let mut b = http::Request::builder()
                    .method(parts.method.clone())
                    .uri(parts.uri.clone())
                    .version(parts.version);
                if let Some(h) = b.headers_mut() {
                    *h = parts.headers.clone();
                    if let Some(p) = &proxy {
                        h.insert("proxy-authorization", p.clone());
                    }
                    for (k, v) in &org_headers {
                        h.insert(*k, v.clone());
                    }
                    if let Some(hd) = header {
                        h.insert(hd.name.clone(), hd.value.clone());
                    }
                }
                b.body(Body::new(http_body_util::Full::new(bytes.clone())))
            };
            let resp = channel.clone().oneshot(build(&header)?).await?;
            let Some(session) = session else {
                return Ok(resp);
            };
            let Some((code, _)) = refused_status(&resp) else {
                return Ok(resp);
            };
            let retry = code == UNAUTHENTICATED || (code == UNKNOWN && header.is_some());
            if !retry {
                return Ok(resp);
            }
            if let Err(e) = session.refresh(header.as_ref().map(|h| h.generation)).await {
                session.set_error(e);
                return Ok(resp);
            }
            let header = session.header();
            let resp = channel.oneshot(build(&header)?).await?;
            if let Some((UNAUTHENTICATED, message)) = refused_status(&resp) {
                session.set_error(AuthError::StillUnauthenticated {
                    endpoint: session.endpoint().to_string(),
                    flow: session.flow(),
                    message,
                });
            }
            Ok(resp)
        })
    }
}
