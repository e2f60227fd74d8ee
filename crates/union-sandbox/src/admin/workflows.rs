//! Workflows: CreateWorkflow (which compiles the workflow against what is registered),
//! GetWorkflow, ListWorkflowIds, ListWorkflows.

use prost::Message;
use tonic::{Request, Response, Status};

use super::ids::{describe, entity_key, identifier, timestamp};
use super::status::{conflict, corrupt, db, digest, not_found};
use super::AdminApi;
use crate::compile::{self, References};
use crate::store::{EntityKey, EntityKind, EntityRow, NewEntity, Store};
use union_idl::flyteidl::admin::{
    NamedEntityIdentifierList, NamedEntityIdentifierListRequest, ObjectGetRequest,
    ResourceListRequest, TaskClosure, Workflow, WorkflowClosure, WorkflowCreateRequest,
    WorkflowCreateResponse, WorkflowList, WorkflowSpec,
};
use union_idl::flyteidl::core::{
    CompiledTask, CompiledWorkflow, CompiledWorkflowClosure, WorkflowTemplate,
};

pub(super) async fn create(
    api: &AdminApi,
    request: Request<WorkflowCreateRequest>,
) -> Result<Response<WorkflowCreateResponse>, Status> {
    let req = request.into_inner();
    let key = entity_key(req.id.as_ref(), EntityKind::Workflow)?;
    let spec = req
        .spec
        .ok_or_else(|| Status::invalid_argument("missing spec"))?;
    if spec.template.is_none() {
        return Err(Status::invalid_argument("missing spec.template"));
    }
    api.blocking(move |store| {
        let template = spec
            .template
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("missing spec.template"))?;
        let compiled = compile_workflow(store, &key, &spec, template)?;
        // The structure is the template and its subworkflows, not the description.
        let digest = digest(
            &WorkflowSpec {
                template: spec.template.clone(),
                sub_workflows: spec.sub_workflows.clone(),
                description: None,
            }
            .encode_to_vec(),
        );
        let closure = WorkflowClosure {
            compiled_workflow: Some(compiled),
            created_at: None,
        }
        .encode_to_vec();
        let spec_bytes = spec.encode_to_vec();
        let new = NewEntity {
            kind: EntityKind::Workflow,
            key: &key,
            digest: &digest,
            spec: &spec_bytes,
            closure: &closure,
            state: None,
        };
        let outcome = store.create_entity(&new).map_err(db)?;
        conflict(EntityKind::Workflow, &key, outcome)
    })
    .await
    .map(|()| Response::new(WorkflowCreateResponse {}))
}

pub(super) async fn get(
    api: &AdminApi,
    request: Request<ObjectGetRequest>,
) -> Result<Response<Workflow>, Status> {
    let key = entity_key(request.get_ref().id.as_ref(), EntityKind::Workflow)?;
    api.blocking(move |store| {
        let row = store.get_entity(EntityKind::Workflow, &key).map_err(db)?;
        workflow_from_row(&row.ok_or_else(|| not_found(EntityKind::Workflow, &key))?)
    })
    .await
    .map(Response::new)
}

pub(super) async fn list_ids(
    api: &AdminApi,
    request: Request<NamedEntityIdentifierListRequest>,
) -> Result<Response<NamedEntityIdentifierList>, Status> {
    api.list_ids(EntityKind::Workflow, request.into_inner())
        .await
}

pub(super) async fn list(
    api: &AdminApi,
    request: Request<ResourceListRequest>,
) -> Result<Response<WorkflowList>, Status> {
    let (rows, token) = api.list(EntityKind::Workflow, request.into_inner()).await?;
    let workflows = rows
        .iter()
        .map(workflow_from_row)
        .collect::<Result<_, _>>()?;
    Ok(Response::new(WorkflowList { workflows, token }))
}

fn workflow_from_row(row: &EntityRow) -> Result<Workflow, Status> {
    let mut closure = WorkflowClosure::decode(row.closure.as_slice())
        .map_err(|e| corrupt(row.kind, &row.key, e))?;
    closure.created_at = Some(timestamp(row.created_at));
    let spec =
        WorkflowSpec::decode(row.spec.as_slice()).map_err(|e| corrupt(row.kind, &row.key, e))?;
    Ok(Workflow {
        id: Some(identifier(EntityKind::Workflow, &row.key)),
        closure: Some(closure),
        short_description: spec
            .description
            .map(|d| d.short_description)
            .unwrap_or_default(),
    })
}

/// Everything a workflow needs from the store to compile: referenced tasks and workflows.
fn compile_workflow(
    store: &Store,
    key: &EntityKey,
    spec: &WorkflowSpec,
    template: &WorkflowTemplate,
) -> Result<CompiledWorkflowClosure, Status> {
    let mut refs = References::default();
    refs.collect(template);
    let mut provided = std::collections::BTreeMap::new();
    for sub in &spec.sub_workflows {
        refs.collect(sub);
        if let Some(id) = &sub.id {
            provided.insert(compile::key_of(id), sub);
        }
    }
    let owner = describe(EntityKind::Workflow, key);

    let mut sub_workflows: Vec<CompiledWorkflow> = provided
        .values()
        .map(|t| CompiledWorkflow {
            template: Some((*t).clone()),
            connections: Some(compile::connections(t)),
        })
        .collect();
    let mut tasks: std::collections::BTreeMap<EntityKey, CompiledTask> =
        std::collections::BTreeMap::new();

    // Subworkflows not shipped in the spec must be registered workflows; their compiled closures
    // bring their own subworkflows and tasks.
    let wanted: Vec<EntityKey> = refs
        .sub_workflows
        .keys()
        .filter(|k| !provided.contains_key(*k))
        .cloned()
        .collect();
    let found = store
        .get_entities(EntityKind::Workflow, &wanted)
        .map_err(db)?;
    if let Some(missing) = wanted.iter().find(|k| !found.iter().any(|r| &r.key == *k)) {
        return Err(Status::invalid_argument(format!(
            "{owner} refers to subworkflow {}, which is neither registered nor included in the spec",
            describe(EntityKind::Workflow, missing)
        )));
    }
    let mut seen_subs: std::collections::BTreeSet<EntityKey> = provided.keys().cloned().collect();
    for row in &found {
        let closure = WorkflowClosure::decode(row.closure.as_slice())
            .map_err(|e| corrupt(row.kind, &row.key, e))?;
        let Some(compiled) = closure.compiled_workflow else {
            continue;
        };
        for wf in compiled.primary.into_iter().chain(compiled.sub_workflows) {
            let id = wf
                .template
                .as_ref()
                .and_then(|t| t.id.as_ref())
                .map(compile::key_of);
            if id.as_ref().is_none_or(|k| seen_subs.insert(k.clone())) {
                sub_workflows.push(wf);
            }
        }
        for t in compiled.tasks {
            if let Some(id) = t.template.as_ref().and_then(|t| t.id.as_ref()) {
                tasks.insert(compile::key_of(id), t);
            }
        }
    }

    let task_keys: Vec<EntityKey> = refs.tasks.keys().cloned().collect();
    let task_rows = store
        .get_entities(EntityKind::Task, &task_keys)
        .map_err(db)?;
    for k in &task_keys {
        let Some(row) = task_rows.iter().find(|r| &r.key == k) else {
            return Err(Status::invalid_argument(format!(
                "{owner} refers to {}, which is not registered",
                describe(EntityKind::Task, k)
            )));
        };
        let closure = TaskClosure::decode(row.closure.as_slice())
            .map_err(|e| corrupt(row.kind, &row.key, e))?;
        if let Some(ct) = closure.compiled_task {
            tasks.insert(k.clone(), ct);
        }
    }

    let lp_keys: Vec<EntityKey> = refs.launch_plans.keys().cloned().collect();
    let lp_rows = store
        .get_entities(EntityKind::LaunchPlan, &lp_keys)
        .map_err(db)?;
    if let Some(missing) = lp_keys
        .iter()
        .find(|k| !lp_rows.iter().any(|r| &r.key == *k))
    {
        return Err(Status::invalid_argument(format!(
            "{owner} refers to {}, which is not registered",
            describe(EntityKind::LaunchPlan, missing)
        )));
    }

    Ok(CompiledWorkflowClosure {
        primary: Some(CompiledWorkflow {
            template: Some(template.clone()),
            connections: Some(compile::connections(template)),
        }),
        sub_workflows,
        tasks: tasks.into_values().collect(),
        launch_plans: Vec::new(),
    })
}
