//! FlyteAdmin's HTTP API (`/api/v1/...`), on the paths flyteadmin's grpc-gateway serves
//! (admin.proto's `google.api.http` rules): the same AdminService methods, their requests taken
//! from the path and query (`limit`, `token`, `filters`, `sort_by.key`, `sort_by.direction`,
//! `unique_parent_id`) or a JSON body, their answers in protobuf JSON ([`json`]). The web console
//! reads and launches through it; other Flyte HTTP clients can too.
//!
//! Served: version, projects and domains; tasks, workflows and launch plans (ids, versions, one
//! version); executions (list, get, data, create, relaunch, terminate); node executions (list,
//! get, data, a dynamic node's workflow), task executions (list), and the signals gate nodes wait
//! for (list, set). With authentication on, every call needs a bearer
//! token, as gRPC calls do.

pub mod json;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use tonic::{Request, Status};

use crate::admin::AdminApi;
use crate::auth::Authority;
use crate::signals::Signals;
use json::{error, from_json, reply};
use union_idl::flyteidl::admin::{
    sort, ExecutionCreateRequest, ExecutionRelaunchRequest, ExecutionTerminateRequest,
    GetDomainRequest, GetDynamicNodeWorkflowRequest, GetVersionRequest, NamedEntityIdentifier,
    NamedEntityIdentifierListRequest, NodeExecutionGetDataRequest, NodeExecutionGetRequest,
    NodeExecutionListRequest, ObjectGetRequest, ProjectGetRequest, ProjectListRequest,
    ResourceListRequest, SignalListRequest, SignalSetRequest, Sort, TaskExecutionListRequest,
    WorkflowExecutionGetDataRequest, WorkflowExecutionGetRequest,
};
use union_idl::flyteidl::core::{
    Identifier, NodeExecutionIdentifier, ResourceType, WorkflowExecutionIdentifier,
};
use union_idl::flyteidl::service::admin_service_server::AdminService;
use union_idl::flyteidl::service::signal_service_server::SignalService;

/// What the handlers share.
#[derive(Debug, Clone)]
struct Api {
    admin: AdminApi,
    signals: Signals,
    auth: Option<Arc<Authority>>,
}

impl Api {
    /// With authentication on, the call's bearer token must be valid.
    fn check(&self, headers: &HeaderMap) -> Result<(), Status> {
        match &self.auth {
            Some(authority) => crate::auth::layer::check_http(headers, authority).map(|_| ()),
            None => Ok(()),
        }
    }
}

/// The `/api/v1` routes over `admin` (which must serve executions) and `signals`, gated by `auth`
/// when on.
pub fn router(admin: AdminApi, signals: Signals, auth: Option<Arc<Authority>>) -> axum::Router {
    let mut router = axum::Router::new()
        .route("/api/v1/version", get(version))
        .route("/api/v1/projects", get(projects))
        .route("/api/v1/projects/{id}", get(project))
        .route("/api/v1/domains", get(domains));
    for (kind, ids, versions) in [
        (ResourceType::Task, "task_ids", "tasks"),
        (ResourceType::Workflow, "workflow_ids", "workflows"),
        (ResourceType::LaunchPlan, "launch_plan_ids", "launch_plans"),
    ] {
        router = router
            .route(
                &format!("/api/v1/{ids}/{{project}}/{{domain}}"),
                get(
                    move |State(api): State<Api>, headers: HeaderMap, Path(p), RawQuery(q)| {
                        list_ids(api, headers, p, q, kind)
                    },
                ),
            )
            .route(
                &format!("/api/v1/{versions}/{{project}}/{{domain}}/{{name}}"),
                get(
                    move |State(api): State<Api>, headers: HeaderMap, Path(p), RawQuery(q)| {
                        list_versions(api, headers, p, q, kind)
                    },
                ),
            )
            .route(
                &format!("/api/v1/{versions}/{{project}}/{{domain}}/{{name}}/{{version}}"),
                get(move |State(api): State<Api>, headers: HeaderMap, Path(p)| {
                    get_entity(api, headers, p, kind)
                }),
            );
    }
    router
        .route("/api/v1/executions", post(create_execution))
        .route("/api/v1/executions/relaunch", post(relaunch_execution))
        .route(
            "/api/v1/executions/{project}/{domain}",
            get(list_executions),
        )
        .route(
            "/api/v1/executions/{project}/{domain}/{name}",
            get(get_execution).delete(terminate_execution),
        )
        .route(
            "/api/v1/data/executions/{project}/{domain}/{name}",
            get(execution_data),
        )
        .route(
            "/api/v1/node_executions/{project}/{domain}/{name}",
            get(list_nodes),
        )
        .route(
            "/api/v1/node_executions/{project}/{domain}/{name}/{node}",
            get(get_node),
        )
        .route(
            "/api/v1/data/node_executions/{project}/{domain}/{name}/{node}",
            get(node_data),
        )
        .route(
            "/api/v1/node_executions/{project}/{domain}/{name}/{node}/dynamic_workflow",
            get(dynamic_workflow),
        )
        .route(
            "/api/v1/task_executions/{project}/{domain}/{name}/{node}",
            get(list_attempts),
        )
        .route("/api/v1/signals", post(set_signal))
        .route(
            "/api/v1/signals/{project}/{domain}/{name}",
            get(list_signals),
        )
        .with_state(Api {
            admin,
            signals,
            auth,
        })
}

/// A query string's parameters (`a=1&b=x+y`), decoded; the last of a repeated name wins.
fn params(query: Option<&str>) -> HashMap<String, String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// The list parameters every list call takes.
struct ListArgs {
    limit: u32,
    token: String,
    filters: String,
    sort_by: Option<Sort>,
}

fn list_args(query: Option<&str>) -> Result<(ListArgs, HashMap<String, String>), Status> {
    let p = params(query);
    let limit = match p.get("limit") {
        Some(l) => l.parse().map_err(|_| {
            Status::invalid_argument(format!("limit `{l}` is not a non-negative integer"))
        })?,
        None => 0,
    };
    let sort_by = match p.get("sort_by.key") {
        Some(key) => {
            let direction = match p.get("sort_by.direction").map(String::as_str) {
                None | Some("DESCENDING") | Some("0") => sort::Direction::Descending,
                Some("ASCENDING") | Some("1") => sort::Direction::Ascending,
                Some(other) => {
                    return Err(Status::invalid_argument(format!(
                        "sort_by.direction `{other}` is not ASCENDING or DESCENDING"
                    )))
                }
            };
            Some(Sort {
                key: key.clone(),
                direction: direction as i32,
            })
        }
        None => None,
    };
    let args = ListArgs {
        limit,
        token: p.get("token").cloned().unwrap_or_default(),
        filters: p.get("filters").cloned().unwrap_or_default(),
        sort_by,
    };
    Ok((args, p))
}

fn exec_id(project: String, domain: String, name: String) -> WorkflowExecutionIdentifier {
    WorkflowExecutionIdentifier {
        project,
        domain,
        name,
        org: String::new(),
    }
}

/// Runs `call` once the gate lets the request through; answers its result as JSON.
async fn gated<M, F>(api: &Api, headers: &HeaderMap, full_name: &str, call: F) -> Response
where
    M: prost::Message,
    F: std::future::Future<Output = Result<tonic::Response<M>, Status>>,
{
    if let Err(status) = api.check(headers) {
        return error(&status);
    }
    reply(call.await.map(tonic::Response::into_inner), full_name)
}

/// A call's JSON body as its request message; a caller without a valid token is refused before
/// the body is read.
fn body_of<T: prost::Message + Default>(
    api: &Api,
    headers: &HeaderMap,
    body: &Bytes,
    full_name: &str,
) -> Result<T, Response> {
    api.check(headers).map_err(|status| error(&status))?;
    from_json(body, full_name).map_err(|status| error(&status))
}

async fn version(State(api): State<Api>, headers: HeaderMap) -> Response {
    let call = api.admin.get_version(Request::new(GetVersionRequest {}));
    gated(&api, &headers, "flyteidl.admin.GetVersionResponse", call).await
}

async fn projects(State(api): State<Api>, headers: HeaderMap) -> Response {
    let call = api
        .admin
        .list_projects(Request::new(ProjectListRequest::default()));
    gated(&api, &headers, "flyteidl.admin.Projects", call).await
}

async fn project(State(api): State<Api>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let call = api.admin.get_project(Request::new(ProjectGetRequest {
        id,
        org: String::new(),
    }));
    gated(&api, &headers, "flyteidl.admin.Project", call).await
}

async fn domains(State(api): State<Api>, headers: HeaderMap) -> Response {
    let call = api.admin.get_domains(Request::new(GetDomainRequest {}));
    gated(&api, &headers, "flyteidl.admin.GetDomainsResponse", call).await
}

async fn list_ids(
    api: Api,
    headers: HeaderMap,
    (project, domain): (String, String),
    query: Option<String>,
    kind: ResourceType,
) -> Response {
    let (args, _) = match list_args(query.as_deref()) {
        Ok(a) => a,
        Err(status) => return error(&status),
    };
    let req = Request::new(NamedEntityIdentifierListRequest {
        project,
        domain,
        limit: args.limit,
        token: args.token,
        sort_by: args.sort_by,
        filters: args.filters,
        org: String::new(),
    });
    let name = "flyteidl.admin.NamedEntityIdentifierList";
    match kind {
        ResourceType::Task => gated(&api, &headers, name, api.admin.list_task_ids(req)).await,
        ResourceType::Workflow => {
            gated(&api, &headers, name, api.admin.list_workflow_ids(req)).await
        }
        _ => gated(&api, &headers, name, api.admin.list_launch_plan_ids(req)).await,
    }
}

async fn list_versions(
    api: Api,
    headers: HeaderMap,
    (project, domain, name): (String, String, String),
    query: Option<String>,
    kind: ResourceType,
) -> Response {
    let (args, _) = match list_args(query.as_deref()) {
        Ok(a) => a,
        Err(status) => return error(&status),
    };
    let req = Request::new(ResourceListRequest {
        id: Some(NamedEntityIdentifier {
            project,
            domain,
            name,
            org: String::new(),
        }),
        limit: args.limit,
        token: args.token,
        filters: args.filters,
        sort_by: args.sort_by,
    });
    match kind {
        ResourceType::Task => {
            let call = api.admin.list_tasks(req);
            gated(&api, &headers, "flyteidl.admin.TaskList", call).await
        }
        ResourceType::Workflow => {
            let call = api.admin.list_workflows(req);
            gated(&api, &headers, "flyteidl.admin.WorkflowList", call).await
        }
        _ => {
            let call = api.admin.list_launch_plans(req);
            gated(&api, &headers, "flyteidl.admin.LaunchPlanList", call).await
        }
    }
}

async fn get_entity(
    api: Api,
    headers: HeaderMap,
    (project, domain, name, version): (String, String, String, String),
    kind: ResourceType,
) -> Response {
    let req = Request::new(ObjectGetRequest {
        id: Some(Identifier {
            resource_type: kind as i32,
            project,
            domain,
            name,
            version,
            org: String::new(),
        }),
    });
    match kind {
        ResourceType::Task => {
            let call = api.admin.get_task(req);
            gated(&api, &headers, "flyteidl.admin.Task", call).await
        }
        ResourceType::Workflow => {
            let call = api.admin.get_workflow(req);
            gated(&api, &headers, "flyteidl.admin.Workflow", call).await
        }
        _ => {
            let call = api.admin.get_launch_plan(req);
            gated(&api, &headers, "flyteidl.admin.LaunchPlan", call).await
        }
    }
}

async fn list_executions(
    State(api): State<Api>,
    headers: HeaderMap,
    Path((project, domain)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let (args, _) = match list_args(query.as_deref()) {
        Ok(a) => a,
        Err(status) => return error(&status),
    };
    let call = api.admin.list_executions(Request::new(ResourceListRequest {
        id: Some(NamedEntityIdentifier {
            project,
            domain,
            name: String::new(),
            org: String::new(),
        }),
        limit: args.limit,
        token: args.token,
        filters: args.filters,
        sort_by: args.sort_by,
    }));
    gated(&api, &headers, "flyteidl.admin.ExecutionList", call).await
}

async fn get_execution(
    State(api): State<Api>,
    headers: HeaderMap,
    Path((project, domain, name)): Path<(String, String, String)>,
) -> Response {
    let call = api
        .admin
        .get_execution(Request::new(WorkflowExecutionGetRequest {
            id: Some(exec_id(project, domain, name)),
        }));
    gated(&api, &headers, "flyteidl.admin.Execution", call).await
}

async fn execution_data(
    State(api): State<Api>,
    headers: HeaderMap,
    Path((project, domain, name)): Path<(String, String, String)>,
) -> Response {
    let call = api
        .admin
        .get_execution_data(Request::new(WorkflowExecutionGetDataRequest {
            id: Some(exec_id(project, domain, name)),
        }));
    gated(
        &api,
        &headers,
        "flyteidl.admin.WorkflowExecutionGetDataResponse",
        call,
    )
    .await
}

async fn create_execution(State(api): State<Api>, headers: HeaderMap, body: Bytes) -> Response {
    let req: ExecutionCreateRequest = match body_of(
        &api,
        &headers,
        &body,
        "flyteidl.admin.ExecutionCreateRequest",
    ) {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    let call = api.admin.create_execution(Request::new(req));
    gated(
        &api,
        &headers,
        "flyteidl.admin.ExecutionCreateResponse",
        call,
    )
    .await
}

async fn relaunch_execution(State(api): State<Api>, headers: HeaderMap, body: Bytes) -> Response {
    let req: ExecutionRelaunchRequest = match body_of(
        &api,
        &headers,
        &body,
        "flyteidl.admin.ExecutionRelaunchRequest",
    ) {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    let call = api.admin.relaunch_execution(Request::new(req));
    gated(
        &api,
        &headers,
        "flyteidl.admin.ExecutionCreateResponse",
        call,
    )
    .await
}

async fn terminate_execution(
    State(api): State<Api>,
    headers: HeaderMap,
    Path((project, domain, name)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let mut req: ExecutionTerminateRequest = match body_of(
        &api,
        &headers,
        &body,
        "flyteidl.admin.ExecutionTerminateRequest",
    ) {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    // The path names the execution, as grpc-gateway fills `id` from it.
    req.id = Some(exec_id(project, domain, name));
    let call = api.admin.terminate_execution(Request::new(req));
    gated(
        &api,
        &headers,
        "flyteidl.admin.ExecutionTerminateResponse",
        call,
    )
    .await
}

async fn list_nodes(
    State(api): State<Api>,
    headers: HeaderMap,
    Path((project, domain, name)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let (args, p) = match list_args(query.as_deref()) {
        Ok(a) => a,
        Err(status) => return error(&status),
    };
    let call = api
        .admin
        .list_node_executions(Request::new(NodeExecutionListRequest {
            workflow_execution_id: Some(exec_id(project, domain, name)),
            limit: args.limit,
            token: args.token,
            filters: args.filters,
            sort_by: args.sort_by,
            unique_parent_id: p.get("unique_parent_id").cloned().unwrap_or_default(),
        }));
    gated(&api, &headers, "flyteidl.admin.NodeExecutionList", call).await
}

fn node_id(project: String, domain: String, name: String, node: String) -> NodeExecutionIdentifier {
    NodeExecutionIdentifier {
        node_id: node,
        execution_id: Some(exec_id(project, domain, name)),
    }
}

async fn get_node(
    State(api): State<Api>,
    headers: HeaderMap,
    Path((project, domain, name, node)): Path<(String, String, String, String)>,
) -> Response {
    let call = api
        .admin
        .get_node_execution(Request::new(NodeExecutionGetRequest {
            id: Some(node_id(project, domain, name, node)),
        }));
    gated(&api, &headers, "flyteidl.admin.NodeExecution", call).await
}

async fn node_data(
    State(api): State<Api>,
    headers: HeaderMap,
    Path((project, domain, name, node)): Path<(String, String, String, String)>,
) -> Response {
    let call = api
        .admin
        .get_node_execution_data(Request::new(NodeExecutionGetDataRequest {
            id: Some(node_id(project, domain, name, node)),
        }));
    gated(
        &api,
        &headers,
        "flyteidl.admin.NodeExecutionGetDataResponse",
        call,
    )
    .await
}

/// SignalService.ListSignals: what the execution's gate nodes wait for, and what they were given.
async fn list_signals(
    State(api): State<Api>,
    headers: HeaderMap,
    Path((project, domain, name)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let (args, _) = match list_args(query.as_deref()) {
        Ok(a) => a,
        Err(status) => return error(&status),
    };
    let call = SignalService::list_signals(
        &api.signals,
        Request::new(SignalListRequest {
            workflow_execution_id: Some(exec_id(project, domain, name)),
            limit: args.limit,
            token: args.token,
            ..Default::default()
        }),
    );
    gated(&api, &headers, "flyteidl.admin.SignalList", call).await
}

/// SignalService.SetSignal: approve, reject or give an input.
async fn set_signal(State(api): State<Api>, headers: HeaderMap, body: Bytes) -> Response {
    let req: SignalSetRequest =
        match body_of(&api, &headers, &body, "flyteidl.admin.SignalSetRequest") {
            Ok(r) => r,
            Err(refused) => return refused,
        };
    let call = SignalService::set_signal(&api.signals, Request::new(req));
    gated(&api, &headers, "flyteidl.admin.SignalSetResponse", call).await
}

async fn dynamic_workflow(
    State(api): State<Api>,
    headers: HeaderMap,
    Path((project, domain, name, node)): Path<(String, String, String, String)>,
) -> Response {
    let call = api
        .admin
        .get_dynamic_node_workflow(Request::new(GetDynamicNodeWorkflowRequest {
            id: Some(node_id(project, domain, name, node)),
        }));
    gated(
        &api,
        &headers,
        "flyteidl.admin.DynamicNodeWorkflowResponse",
        call,
    )
    .await
}

async fn list_attempts(
    State(api): State<Api>,
    headers: HeaderMap,
    Path((project, domain, name, node)): Path<(String, String, String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let (args, _) = match list_args(query.as_deref()) {
        Ok(a) => a,
        Err(status) => return error(&status),
    };
    let call = api
        .admin
        .list_task_executions(Request::new(TaskExecutionListRequest {
            node_execution_id: Some(node_id(project, domain, name, node)),
            limit: args.limit,
            token: args.token,
            filters: args.filters,
            sort_by: args.sort_by,
        }));
    gated(&api, &headers, "flyteidl.admin.TaskExecutionList", call).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_decoded() {
        let p = params(Some(
            "filters=eq(phase,SUCCEEDED)+and&sort_by.key=created_at&limit=5&x",
        ));
        assert_eq!(p["filters"], "eq(phase,SUCCEEDED) and");
        assert_eq!(p["limit"], "5");
        assert_eq!(p["x"], "");
        let (args, _) = list_args(Some(
            "limit=5&sort_by.key=created_at&sort_by.direction=ASCENDING",
        ))
        .unwrap();
        assert_eq!(args.limit, 5);
        assert_eq!(
            args.sort_by.unwrap().direction,
            sort::Direction::Ascending as i32
        );
        assert!(list_args(Some("limit=-1")).is_err());
        assert!(list_args(Some("sort_by.key=a&sort_by.direction=UP")).is_err());
    }
}
