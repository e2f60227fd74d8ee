//! Task attempt logs over HTTP (`/logs/<project>/<domain>/<execution>/<node>/<attempt>`):
//! the links task executions carry, and the route that serves them from the runner's files.

use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use super::Executions;
use crate::executor::{AttemptId, TaskRunner};
use union_idl::flyteidl::core::WorkflowExecutionIdentifier;

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

/// HTTP routes of the executions (task logs); merge into the sandbox's router.
pub fn router(executions: Arc<Executions>) -> axum::Router {
    axum::Router::new()
        .route(
            "/logs/{project}/{domain}/{name}/{node}/{attempt}",
            axum::routing::get(serve_log),
        )
        .with_state(executions)
}

async fn serve_log(
    State(executions): State<Arc<Executions>>,
    UrlPath((project, domain, name, node, attempt)): UrlPath<(String, String, String, String, u32)>,
) -> Response {
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
    match tokio::fs::read(&path).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], bytes).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "no log for this attempt\n").into_response(),
    }
}
