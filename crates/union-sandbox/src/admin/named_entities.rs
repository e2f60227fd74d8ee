//! Named entities (the names of tasks, workflows and launch plans, across versions):
//! ListNamedEntities, GetNamedEntity.

use tonic::{Request, Response, Status};

use super::ids::{named_key, resource_type_name};
use super::status::db;
use super::AdminApi;
use crate::query::{self, ListParams};
use crate::store::{EntityKind, NamedKey};
use union_idl::flyteidl::admin::{
    NamedEntity, NamedEntityGetRequest, NamedEntityIdentifier, NamedEntityList,
    NamedEntityListRequest, NamedEntityMetadata, NamedEntityState,
};

pub(super) async fn list(
    api: &AdminApi,
    request: Request<NamedEntityListRequest>,
) -> Result<Response<NamedEntityList>, Status> {
    let r = request.into_inner();
    let kind = EntityKind::from_resource_type(r.resource_type).ok_or_else(|| {
        Status::invalid_argument(format!(
            "invalid resource_type {}: expected TASK, WORKFLOW or LAUNCH_PLAN",
            resource_type_name(r.resource_type)
        ))
    })?;
    let q = query::list_query(ListParams {
        org: &r.org,
        project: &r.project,
        domain: &r.domain,
        name: None,
        limit: r.limit,
        token: &r.token,
        filters: &r.filters,
        sort_by: r.sort_by.as_ref(),
    })?;
    let (rows, q) = api
        .blocking(move |store| Ok((store.list_names(kind, &q).map_err(db)?, q)))
        .await?;
    let token = query::next_token(&q, rows.len());
    let entities = rows
        .into_iter()
        .map(|row| named_entity(kind, row.key))
        .collect();
    Ok(Response::new(NamedEntityList { entities, token }))
}

pub(super) async fn get(
    api: &AdminApi,
    request: Request<NamedEntityGetRequest>,
) -> Result<Response<NamedEntity>, Status> {
    let r = request.into_inner();
    let kind = EntityKind::from_resource_type(r.resource_type).ok_or_else(|| {
        Status::invalid_argument(format!(
            "invalid resource_type {}: expected TASK, WORKFLOW or LAUNCH_PLAN",
            resource_type_name(r.resource_type)
        ))
    })?;
    let key = named_key(r.id.as_ref())?;
    api.blocking(move |store| {
        if store.name_exists(kind, &key).map_err(db)? {
            Ok(Response::new(named_entity(kind, key)))
        } else {
            Err(Status::not_found(format!(
                "{} `{}` (project `{}`, domain `{}`) does not exist",
                kind.noun(),
                key.name,
                key.project,
                key.domain
            )))
        }
    })
    .await
}

fn named_entity(kind: EntityKind, key: NamedKey) -> NamedEntity {
    NamedEntity {
        resource_type: kind as i32,
        id: Some(NamedEntityIdentifier {
            project: key.project,
            domain: key.domain,
            name: key.name,
            org: key.org,
        }),
        metadata: Some(NamedEntityMetadata {
            description: String::new(),
            state: NamedEntityState::NamedEntityActive as i32,
        }),
    }
}
