//! Launch plans: CreateLaunchPlan, GetLaunchPlan, UpdateLaunchPlan (activation), the active
//! launch plan queries, ListLaunchPlanIds, ListLaunchPlans.

use prost::Message;
use tonic::{Request, Response, Status};

use super::ids::{describe, entity_key, identifier, named_key, reference_key, timestamp};
use super::status::{conflict, corrupt, db, digest, not_found};
use super::AdminApi;
use crate::query::{self, ListParams};
use crate::store::{EntityKind, EntityRow, NewEntity};
use union_idl::flyteidl::admin::{
    ActiveLaunchPlanListRequest, ActiveLaunchPlanRequest, LaunchPlan, LaunchPlanClosure,
    LaunchPlanCreateRequest, LaunchPlanCreateResponse, LaunchPlanList, LaunchPlanSpec,
    LaunchPlanState, LaunchPlanUpdateRequest, LaunchPlanUpdateResponse, NamedEntityIdentifierList,
    NamedEntityIdentifierListRequest, ObjectGetRequest, ResourceListRequest, WorkflowClosure,
};

pub(super) async fn create(
    api: &AdminApi,
    request: Request<LaunchPlanCreateRequest>,
) -> Result<Response<LaunchPlanCreateResponse>, Status> {
    let req = request.into_inner();
    let key = entity_key(req.id.as_ref(), EntityKind::LaunchPlan)?;
    let spec = req
        .spec
        .ok_or_else(|| Status::invalid_argument("missing spec"))?;
    let wf_id = spec
        .workflow_id
        .as_ref()
        .ok_or_else(|| Status::invalid_argument("missing spec.workflow_id"))?;
    let wf_key = reference_key(wf_id, "spec.workflow_id.")?;
    crate::schedules::validate(&spec).map_err(|e| Status::invalid_argument(e.to_string()))?;
    api.blocking(move |store| {
        let Some(wf) = store
            .get_entity(EntityKind::Workflow, &wf_key)
            .map_err(db)?
        else {
            return Err(Status::invalid_argument(format!(
                "{} refers to {}, which is not registered",
                describe(EntityKind::LaunchPlan, &key),
                describe(EntityKind::Workflow, &wf_key)
            )));
        };
        let wf_closure = WorkflowClosure::decode(wf.closure.as_slice())
            .map_err(|e| corrupt(wf.kind, &wf.key, e))?;
        let expected_outputs = wf_closure
            .compiled_workflow
            .and_then(|c| c.primary)
            .and_then(|p| p.template)
            .and_then(|t| t.interface)
            .and_then(|i| i.outputs)
            .unwrap_or_default();
        let closure = LaunchPlanClosure {
            state: LaunchPlanState::Inactive as i32,
            expected_inputs: Some(spec.default_inputs.clone().unwrap_or_default()),
            expected_outputs: Some(expected_outputs),
            created_at: None,
            updated_at: None,
        }
        .encode_to_vec();
        let spec_bytes = spec.encode_to_vec();
        let digest = digest(&spec_bytes);
        let new = NewEntity {
            kind: EntityKind::LaunchPlan,
            key: &key,
            digest: &digest,
            spec: &spec_bytes,
            closure: &closure,
            // flyteadmin creates launch plans inactive; UpdateLaunchPlan activates them.
            state: Some(LaunchPlanState::Inactive as i32),
        };
        let outcome = store.create_entity(&new).map_err(db)?;
        conflict(EntityKind::LaunchPlan, &key, outcome)
    })
    .await
    .map(|()| Response::new(LaunchPlanCreateResponse {}))
}

pub(super) async fn get(
    api: &AdminApi,
    request: Request<ObjectGetRequest>,
) -> Result<Response<LaunchPlan>, Status> {
    let key = entity_key(request.get_ref().id.as_ref(), EntityKind::LaunchPlan)?;
    api.blocking(move |store| {
        let row = store.get_entity(EntityKind::LaunchPlan, &key).map_err(db)?;
        launch_plan_from_row(&row.ok_or_else(|| not_found(EntityKind::LaunchPlan, &key))?)
    })
    .await
    .map(Response::new)
}

pub(super) async fn get_active(
    api: &AdminApi,
    request: Request<ActiveLaunchPlanRequest>,
) -> Result<Response<LaunchPlan>, Status> {
    let key = named_key(request.get_ref().id.as_ref())?;
    api.blocking(move |store| {
        let row = store.active_launch_plan(&key).map_err(db)?.ok_or_else(|| {
            Status::not_found(format!(
                "no active launch plan `{}` (project `{}`, domain `{}`)",
                key.name, key.project, key.domain
            ))
        })?;
        launch_plan_from_row(&row)
    })
    .await
    .map(Response::new)
}

pub(super) async fn list_active(
    api: &AdminApi,
    request: Request<ActiveLaunchPlanListRequest>,
) -> Result<Response<LaunchPlanList>, Status> {
    let r = request.into_inner();
    let q = query::list_query(ListParams {
        org: &r.org,
        project: &r.project,
        domain: &r.domain,
        name: None,
        limit: r.limit,
        token: &r.token,
        filters: "",
        sort_by: r.sort_by.as_ref(),
    })?;
    let (rows, q) = api
        .blocking(move |store| Ok((store.list_active_launch_plans(&q).map_err(db)?, q)))
        .await?;
    let token = query::next_token(&q, rows.len());
    let launch_plans = rows
        .iter()
        .map(launch_plan_from_row)
        .collect::<Result<_, _>>()?;
    Ok(Response::new(LaunchPlanList {
        launch_plans,
        token,
    }))
}

pub(super) async fn list_ids(
    api: &AdminApi,
    request: Request<NamedEntityIdentifierListRequest>,
) -> Result<Response<NamedEntityIdentifierList>, Status> {
    api.list_ids(EntityKind::LaunchPlan, request.into_inner())
        .await
}

pub(super) async fn list(
    api: &AdminApi,
    request: Request<ResourceListRequest>,
) -> Result<Response<LaunchPlanList>, Status> {
    let (rows, token) = api
        .list(EntityKind::LaunchPlan, request.into_inner())
        .await?;
    let launch_plans = rows
        .iter()
        .map(launch_plan_from_row)
        .collect::<Result<_, _>>()?;
    Ok(Response::new(LaunchPlanList {
        launch_plans,
        token,
    }))
}

pub(super) async fn update(
    api: &AdminApi,
    request: Request<LaunchPlanUpdateRequest>,
) -> Result<Response<LaunchPlanUpdateResponse>, Status> {
    let r = request.into_inner();
    let key = entity_key(r.id.as_ref(), EntityKind::LaunchPlan)?;
    if LaunchPlanState::try_from(r.state).is_err() {
        return Err(Status::invalid_argument(format!(
            "invalid launch plan state {}",
            r.state
        )));
    }
    api.blocking(move |store| {
        // flyteadmin adds the schedule when activating: one that cannot run refuses activation.
        if r.state == LaunchPlanState::Active as i32 {
            if let Some(row) = store.get_entity(EntityKind::LaunchPlan, &key).map_err(db)? {
                let spec = LaunchPlanSpec::decode(row.spec.as_slice())
                    .map_err(|e| corrupt(row.kind, &row.key, e))?;
                crate::schedules::Schedule::of(&spec).map_err(|e| {
                    Status::invalid_argument(format!(
                        "cannot activate {}: {e}",
                        describe(EntityKind::LaunchPlan, &key)
                    ))
                })?;
            }
        }
        if store.set_launch_plan_state(&key, r.state).map_err(db)? {
            Ok(Response::new(LaunchPlanUpdateResponse {}))
        } else {
            Err(not_found(EntityKind::LaunchPlan, &key))
        }
    })
    .await
}

fn launch_plan_from_row(row: &EntityRow) -> Result<LaunchPlan, Status> {
    let mut closure = LaunchPlanClosure::decode(row.closure.as_slice())
        .map_err(|e| corrupt(row.kind, &row.key, e))?;
    closure.state = row.state.unwrap_or(LaunchPlanState::Inactive as i32);
    closure.created_at = Some(timestamp(row.created_at));
    closure.updated_at = Some(timestamp(row.updated_at));
    let spec =
        LaunchPlanSpec::decode(row.spec.as_slice()).map_err(|e| corrupt(row.kind, &row.key, e))?;
    Ok(LaunchPlan {
        id: Some(identifier(EntityKind::LaunchPlan, &row.key)),
        spec: Some(spec),
        closure: Some(closure),
    })
}
