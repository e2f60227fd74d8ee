//! The connection to the remote builder and its two RPCs, with statuses and streamed failures
//! turned into [`RemoteBuildError`]s and progress into [`BuildEvent`]s.

use std::time::Duration;

use tonic::body::Body;
use tonic::transport::Endpoint;
use tonic::Code;
use tower::util::BoxCloneSyncService;
use tower::ServiceExt as _;

use super::RemoteBuildError;
use crate::build::{BuildEvent, BuildReporter};
use crate::remote::MAX_MESSAGE_BYTES;
use union_idl::union::imagebuilder::v1 as pb;
use union_idl::union::imagebuilder::v1::image_builder_service_client::ImageBuilderServiceClient;

/// Any gRPC transport: a plain channel, or the admin client's authenticated one.
type Transport = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, TransportError>;

/// The transport's error, as a concrete type: with `tower::BoxError` itself, rustc cannot prove
/// the client's futures `Send` for every lifetime (the bound tonic puts on the error).
#[derive(Debug)]
pub struct TransportError(tower::BoxError);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for TransportError {
    // The wrapped error itself, so that tonic finds a transport failure in the chain.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

/// The generated client, wrapped: statuses become [`RemoteBuildError`]s.
#[derive(Clone)]
pub struct RemoteBuilderClient {
    inner: ImageBuilderServiceClient<Transport>,
    endpoint: String,
}

impl std::fmt::Debug for RemoteBuilderClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteBuilderClient")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl RemoteBuilderClient {
    /// Connect to `endpoint` (`host:port`, `dns:///host:port` or an `http(s)://` URL) in plain
    /// HTTP/2 unless the URL says `https`.
    pub async fn connect(endpoint: &str) -> Result<Self, RemoteBuildError> {
        let trimmed = endpoint.trim().trim_start_matches("dns:///");
        let url = if trimmed.contains("://") {
            trimmed.to_string()
        } else {
            format!("http://{trimmed}")
        };
        let err = |message: String| RemoteBuildError::Connect {
            endpoint: endpoint.to_string(),
            message,
        };
        let channel = Endpoint::from_shared(url)
            .map_err(|e| err(e.to_string()))?
            .connect_timeout(Duration::from_secs(10))
            .connect()
            .await
            .map_err(|e| err(error_chain(&e)))?;
        Ok(Self::from_channel(channel, endpoint))
    }

    /// Use an existing channel (e.g. the admin client's) to `endpoint` (named in errors).
    pub fn from_channel<S>(channel: S, endpoint: &str) -> Self
    where
        S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Error: Into<tower::BoxError>,
        S::Future: Send + 'static,
    {
        let transport =
            BoxCloneSyncService::new(channel.map_err(|e: S::Error| TransportError(e.into())));
        RemoteBuilderClient {
            inner: ImageBuilderServiceClient::new(transport)
                .max_encoding_message_size(MAX_MESSAGE_BYTES)
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            endpoint: endpoint.to_string(),
        }
    }

    /// The endpoint, as given.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn status_error(&self, rpc: &'static str, image: &str, s: tonic::Status) -> RemoteBuildError {
        let message = s.message().to_string();
        match s.code() {
            Code::FailedPrecondition => RemoteBuildError::NoBuilder {
                endpoint: self.endpoint.clone(),
                message,
            },
            Code::Unavailable if message.contains("no image builder") => {
                RemoteBuildError::NoBuilder {
                    endpoint: self.endpoint.clone(),
                    message,
                }
            }
            Code::Unimplemented => RemoteBuildError::NotServed {
                endpoint: self.endpoint.clone(),
            },
            Code::Unavailable if message.contains("transport") || message.contains("connect") => {
                RemoteBuildError::Connect {
                    endpoint: self.endpoint.clone(),
                    message,
                }
            }
            code => RemoteBuildError::Rpc {
                rpc,
                image: image.to_string(),
                code,
                message,
            },
        }
    }

    /// Whether `image_name` exists: `Some(fully-qualified image)` when it does.
    pub async fn get_image(
        &self,
        image_name: &str,
    ) -> Result<pb::GetImageResponse, RemoteBuildError> {
        let mut inner = self.inner.clone();
        inner
            .get_image(pb::GetImageRequest {
                image_name: image_name.to_string(),
            })
            .await
            .map(|r| r.into_inner())
            .map_err(|s| self.status_error("GetImage", image_name, s))
    }

    /// Send one build request and follow its stream to the end, reporting progress under
    /// `image_name`. Returns the final result.
    pub async fn build(
        &self,
        request: pb::BuildRequest,
        reporter: &dyn BuildReporter,
    ) -> Result<pb::BuildResult, RemoteBuildError> {
        let image = request.image_name.clone();
        let mut inner = self.inner.clone();
        let mut stream = inner
            .build(request)
            .await
            .map_err(|s| self.status_error("Build", &image, s))?
            .into_inner();
        let mut current_step = String::new();
        loop {
            let msg = match stream.message().await {
                Ok(Some(m)) => m,
                Ok(None) => return Err(RemoteBuildError::NoResult { image }),
                Err(s) => return Err(self.status_error("Build", &image, s)),
            };
            let Some(event) = msg.event else { continue };
            match event {
                pb::build_response::Event::Note(n) => reporter.event(
                    &image,
                    &BuildEvent::Log {
                        step: "remote builder".into(),
                        line: n.message,
                    },
                ),
                pb::build_response::Event::Step(s) => {
                    current_step = s.step.clone();
                    let ev = if s.done {
                        BuildEvent::StepDone {
                            step: s.step,
                            cached: s.cached,
                            duration: (s.duration_seconds > 0.0)
                                .then(|| Duration::from_secs_f64(s.duration_seconds)),
                        }
                    } else {
                        BuildEvent::StepStarted {
                            step: s.step,
                            cached: s.cached,
                        }
                    };
                    reporter.event(&image, &ev);
                }
                pb::build_response::Event::Log(l) => reporter.event(
                    &image,
                    &BuildEvent::Log {
                        step: if l.step.is_empty() {
                            current_step.clone()
                        } else {
                            l.step
                        },
                        line: l.line,
                    },
                ),
                pb::build_response::Event::Push(p) => reporter.event(
                    &image,
                    &BuildEvent::Push {
                        status: p.status,
                        current: None,
                        total: None,
                    },
                ),
                pb::build_response::Event::Result(r) => return Ok(r),
                pb::build_response::Event::Error(e) => return Err(failure_error(&image, e)),
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// A streamed `BuildFailure` as a typed error.
fn failure_error(image: &str, e: pb::BuildFailure) -> RemoteBuildError {
    use pb::build_failure::Kind;
    let image = if e.image.is_empty() {
        image.to_string()
    } else {
        e.image
    };
    match Kind::try_from(e.kind).unwrap_or(Kind::Unspecified) {
        Kind::InvalidSpec | Kind::InvalidContext => RemoteBuildError::Invalid {
            image,
            message: e.message,
        },
        Kind::StepFailed => RemoteBuildError::StepFailed {
            image,
            step: e.step,
            message: e.message,
            output: e.output,
        },
        Kind::PushFailed => RemoteBuildError::PushFailed {
            image,
            message: e.message,
        },
        Kind::Unavailable => RemoteBuildError::Unavailable {
            image,
            message: e.message,
        },
        Kind::BuildFailed | Kind::Unspecified => RemoteBuildError::BuildFailed {
            image,
            message: e.message,
        },
    }
}
