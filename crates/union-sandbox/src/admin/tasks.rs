//! Tasks: CreateTask, GetTask, ListTaskIds, ListTasks.

use prost::Message;
use tonic::{Request, Response, Status};

use super::ids::{entity_key, identifier, timestamp};
use super::status::{conflict, corrupt, db, digest, not_found};
use super::AdminApi;
use crate::store::{EntityKind, EntityRow, NewEntity};
use union_idl::flyteidl::admin::{
    NamedEntityIdentifierList, NamedEntityIdentifierListRequest, ObjectGetRequest,
    ResourceListRequest, Task, TaskClosure, TaskCreateRequest, TaskCreateResponse, TaskList,
    TaskSpec,
};
use union_idl::flyteidl::core::CompiledTask;

pub(super) async fn create(
    api: &AdminApi,
    request: Request<TaskCreateRequest>,
) -> Result<Response<TaskCreateResponse>, Status> {
    let req = request.into_inner();
    let key = entity_key(req.id.as_ref(), EntityKind::Task)?;
    let spec = req
        .spec
        .ok_or_else(|| Status::invalid_argument("missing spec"))?;
    let template = spec
        .template
        .as_ref()
        .ok_or_else(|| Status::invalid_argument("missing spec.template"))?;
    // Like flyteadmin, the digest covers the task template only: a changed description is
    // not a different task.
    let digest = digest(&template.encode_to_vec());
    let closure = TaskClosure {
        compiled_task: Some(CompiledTask {
            template: Some(template.clone()),
        }),
        created_at: None,
    }
    .encode_to_vec();
    let spec_bytes = spec.encode_to_vec();
    let outcome = api
        .blocking(move |store| {
            let new = NewEntity {
                kind: EntityKind::Task,
                key: &key,
                digest: &digest,
                spec: &spec_bytes,
                closure: &closure,
                state: None,
            };
            let outcome = store.create_entity(&new).map_err(db)?;
            conflict(EntityKind::Task, &key, outcome)
        })
        .await;
    outcome.map(|()| Response::new(TaskCreateResponse {}))
}

pub(super) async fn get(
    api: &AdminApi,
    request: Request<ObjectGetRequest>,
) -> Result<Response<Task>, Status> {
    let key = entity_key(request.get_ref().id.as_ref(), EntityKind::Task)?;
    api.blocking(move |store| {
        let row = store.get_entity(EntityKind::Task, &key).map_err(db)?;
        task_from_row(&row.ok_or_else(|| not_found(EntityKind::Task, &key))?)
    })
    .await
    .map(Response::new)
}

pub(super) async fn list_ids(
    api: &AdminApi,
    request: Request<NamedEntityIdentifierListRequest>,
) -> Result<Response<NamedEntityIdentifierList>, Status> {
    api.list_ids(EntityKind::Task, request.into_inner()).await
}

pub(super) async fn list(
    api: &AdminApi,
    request: Request<ResourceListRequest>,
) -> Result<Response<TaskList>, Status> {
    let (rows, token) = api.list(EntityKind::Task, request.into_inner()).await?;
    let tasks = rows.iter().map(task_from_row).collect::<Result<_, _>>()?;
    Ok(Response::new(TaskList { tasks, token }))
}

fn task_from_row(row: &EntityRow) -> Result<Task, Status> {
    let mut closure =
        TaskClosure::decode(row.closure.as_slice()).map_err(|e| corrupt(row.kind, &row.key, e))?;
    closure.created_at = Some(timestamp(row.created_at));
    let spec = TaskSpec::decode(row.spec.as_slice()).map_err(|e| corrupt(row.kind, &row.key, e))?;
    Ok(Task {
        id: Some(identifier(EntityKind::Task, &row.key)),
        closure: Some(closure),
        short_description: spec
            .description
            .map(|d| d.short_description)
            .unwrap_or_default(),
    })
}
