//! Projects and domains: ListProjects, GetProject, GetDomains.
//!
//! The sandbox has no project registry: a project exists once something is registered or run in
//! it, and `flytesnacks` (flytectl's sandbox project, where pyflyte registers by default) always
//! does. Every project has flytectl's sandbox domains.

use tonic::{Request, Response, Status};

use super::status::db;
use super::AdminApi;
use union_idl::flyteidl::admin::{
    project, Domain, GetDomainRequest, GetDomainsResponse, Project, ProjectGetRequest,
    ProjectListRequest, Projects,
};

/// The project that exists before anything is registered.
pub const DEFAULT_PROJECT: &str = "flytesnacks";
/// flyteadmin's default domains, in its order.
pub const DOMAINS: [&str; 3] = ["development", "staging", "production"];

fn domains() -> Vec<Domain> {
    DOMAINS
        .iter()
        .map(|d| Domain {
            id: d.to_string(),
            name: d.to_string(),
        })
        .collect()
}

fn project(id: String, org: String) -> Project {
    Project {
        name: id.clone(),
        id,
        domains: domains(),
        description: String::new(),
        labels: None,
        state: project::ProjectState::Active as i32,
        org,
    }
}

async fn names(api: &AdminApi, org: String) -> Result<Vec<String>, Status> {
    api.blocking(move |store| {
        store
            .read(|c| {
                let mut stmt = c.prepare_cached(
                    "SELECT project FROM entities WHERE org=?1
                     UNION SELECT project FROM executions WHERE org=?1",
                )?;
                let rows = stmt.query_map([&org], |r| r.get::<_, String>(0))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .map_err(db)
    })
    .await
    .map(|mut names| {
        if !names.iter().any(|n| n == DEFAULT_PROJECT) {
            names.push(DEFAULT_PROJECT.to_string());
        }
        names.sort();
        names
    })
}

pub(super) async fn list(
    api: &AdminApi,
    request: Request<ProjectListRequest>,
) -> Result<Response<Projects>, Status> {
    let org = request.into_inner().org;
    let projects = names(api, org.clone())
        .await?
        .into_iter()
        .map(|id| project(id, org.clone()))
        .collect();
    Ok(Response::new(Projects {
        projects,
        token: String::new(),
    }))
}

pub(super) async fn get(
    api: &AdminApi,
    request: Request<ProjectGetRequest>,
) -> Result<Response<Project>, Status> {
    let r = request.into_inner();
    crate::status::require("id", &r.id)?;
    if names(api, r.org.clone()).await?.contains(&r.id) {
        Ok(Response::new(project(r.id, r.org)))
    } else {
        Err(Status::not_found(format!(
            "project `{}` does not exist: nothing has been registered or run in it",
            r.id
        )))
    }
}

pub(super) fn get_domains(_request: Request<GetDomainRequest>) -> Response<GetDomainsResponse> {
    Response::new(GetDomainsResponse { domains: domains() })
}
