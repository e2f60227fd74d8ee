//! Task attempt logs over HTTP (`/logs/<project>/<domain>/<execution>/<node>/<attempt>`):
//! the links task executions carry, and the route that serves them from the runner's files.
//! With authentication on, a log is read with a bearer token, as `/api/v1` is: a task's log
//! holds what its code printed.

use std::sync::Arc;

use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use super::Executions;
use crate::auth::Authority;
use crate::executor::{AttemptId, TaskRunner};
use union_idl::flyteidl::core::WorkflowExecutionIdentifier;

/// The header naming a log's size in bytes when it was read.
const LOG_SIZE: HeaderName = HeaderName::from_static("x-log-size");

impl Executions {
    pub(super) fn log_url(
        &self,
        exec: &WorkflowExecutionIdentifier,
        node_id: &str,
        attempt: u32,
    ) -> String {
        let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
        format!(
            "{}/logs/{}/{}/{}/{}/{attempt}",
            self.base_url,
            enc(&exec.project),
            enc(&exec.domain),
            enc(&exec.name),
            enc(node_id)
        )
    }
}

/// HTTP routes of the executions (task logs), gated by `auth` when on; merge into the sandbox's
/// router.
pub fn router(executions: Arc<Executions>, auth: Option<Arc<Authority>>) -> axum::Router {
    axum::Router::new()
        .route(
            "/logs/{project}/{domain}/{name}/{node}/{attempt}",
            axum::routing::get(serve_log),
        )
        .with_state((executions, auth))
}

/// The whole log, or with `?from=N` what was written from byte N on (empty when nothing was
/// written since): the console follows a running attempt's log that way. A query rather than a
/// `Range` header, whose "nothing new" answer (416) browsers report as an error on every poll.
async fn serve_log(
    State((executions, auth)): State<(Arc<Executions>, Option<Arc<Authority>>)>,
    headers: HeaderMap,
    UrlPath((project, domain, name, node, attempt)): UrlPath<(String, String, String, String, u32)>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(authority) = &auth {
        if let Err(status) = crate::auth::layer::check_http(&headers, authority) {
            return (StatusCode::UNAUTHORIZED, format!("{}\n", status.message())).into_response();
        }
    }
    let attempt = AttemptId {
        execution: WorkflowExecutionIdentifier {
            project,
            domain,
            name,
            org: String::new(),
        },
        node_id: node,
        retry_attempt: attempt,
    };
    let Some(path) = executions.runner.log_path(&attempt) else {
        return (StatusCode::NOT_FOUND, "no log\n").into_response();
    };
    let from = query
        .as_deref()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("from=")))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    // Only what the follower has not read: a long task's log is not read whole every second.
    let read = async {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let mut file = tokio::fs::File::open(&path).await?;
        let size = file.metadata().await?.len();
        let mut rest = Vec::new();
        if (from as u64) < size {
            file.seek(std::io::SeekFrom::Start(from as u64)).await?;
            file.take(size - from as u64).read_to_end(&mut rest).await?;
        }
        Ok::<_, std::io::Error>((size, rest))
    };
    let Ok((size, rest)) = read.await else {
        return (StatusCode::NOT_FOUND, "no log for this attempt\n").into_response();
    };
    let size = size.to_string();
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        // The log's whole size, so that a follower knows where to ask from next.
        [(LOG_SIZE, size)],
        rest,
    )
        .into_response()
}
