//! `flyteidl.service.AdminService`: registration and lookup of tasks, workflows and launch plans,
//! with flyteadmin's semantics (see the module docs of [`super`]). Other methods answer
//! UNIMPLEMENTED, naming the method.

use std::sync::Arc;

use prost::Message;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use super::compile::{self, References};
use super::query::{self, ListParams};
use super::store::{
    EntityKey, EntityKind, EntityRow, Inserted, NamedKey, NamedRow, NewEntity, Store, StoreError,
};
use union_idl::flyteidl::admin::{self, *};
use union_idl::flyteidl::core::{
    self, CompiledTask, CompiledWorkflow, CompiledWorkflowClosure, Identifier, WorkflowTemplate,
};
use union_idl::flyteidl::service::admin_service_server::AdminService;
use union_idl::google_protobuf::Timestamp;

/// The AdminService implementation over the sandbox [`Store`].
#[derive(Debug, Clone)]
pub struct AdminApi {
    store: Arc<Store>,
    executions: Option<Arc<super::executions::Executions>>,
}

impl AdminApi {
    /// An AdminService backed by `store`.
    pub fn new(store: Arc<Store>) -> Self {
        AdminApi {
            store,
            executions: None,
        }
    }

    /// Serve the execution methods (CreateExecution, ...) from `executions`.
    pub fn with_executions(mut self, executions: Arc<super::executions::Executions>) -> Self {
        self.executions = Some(executions);
        self
    }

    fn executions(&self, method: &str) -> Result<&Arc<super::executions::Executions>, Status> {
        self.executions.as_ref().ok_or_else(|| {
            Status::unimplemented(format!(
                "flyteidl.service.AdminService/{method} is not implemented by the union sandbox"
            ))
        })
    }

    /// Run blocking database work off the async workers.
    async fn blocking<T, F>(&self, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, Status> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| Status::internal(format!("sandbox request failed: {e}")))?
    }
}

/// A database failure as a gRPC status: DATA_LOSS with what to do when the file is damaged,
/// INTERNAL with the cause otherwise.
pub fn db(err: StoreError) -> Status {
    let mut msg = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    if err.is_corruption() {
        return Status::data_loss(format!("{msg}; {}", StoreError::CORRUPT_HINT));
    }
    Status::internal(msg)
}

/// flyteadmin's "missing <field>" INVALID_ARGUMENT for an empty required string.
pub fn require(field: &str, value: &str) -> Result<(), Status> {
    if value.is_empty() {
        Err(Status::invalid_argument(format!("missing {field}")))
    } else {
        Ok(())
    }
}

fn resource_type_name(rt: i32) -> &'static str {
    core::ResourceType::try_from(rt)
        .map(|r| r.as_str_name())
        .unwrap_or("UNKNOWN")
}

/// A readable id for messages: "task `name` (project `p`, domain `d`, version `v`)".
pub fn describe(kind: EntityKind, k: &EntityKey) -> String {
    format!(
        "{} `{}` (project `{}`, domain `{}`, version `{}`)",
        kind.noun(),
        k.name,
        k.project,
        k.domain,
        k.version
    )
}

/// Validate a full identifier of `kind`, as flyteadmin's ValidateIdentifier does.
fn entity_key(id: Option<&Identifier>, kind: EntityKind) -> Result<EntityKey, Status> {
    let id = id.ok_or_else(|| Status::invalid_argument("missing id"))?;
    if id.resource_type != kind as i32 {
        return Err(Status::invalid_argument(format!(
            "unexpected resource type {} for identifier of {} `{}`, expected {} instead",
            resource_type_name(id.resource_type),
            kind.noun(),
            id.name,
            resource_type_name(kind as i32)
        )));
    }
    reference_key(id, "")
}

/// Validate the fields of a referenced identifier (any resource type); `prefix` names the field.
fn reference_key(id: &Identifier, prefix: &str) -> Result<EntityKey, Status> {
    require(&format!("{prefix}project"), &id.project)?;
    require(&format!("{prefix}domain"), &id.domain)?;
    require(&format!("{prefix}name"), &id.name)?;
    require(&format!("{prefix}version"), &id.version)?;
    Ok(compile::key_of(id))
}

fn named_key(id: Option<&NamedEntityIdentifier>) -> Result<NamedKey, Status> {
    let id = id.ok_or_else(|| Status::invalid_argument("missing id"))?;
    require("project", &id.project)?;
    require("domain", &id.domain)?;
    require("name", &id.name)?;
    Ok(NamedKey {
        org: id.org.clone(),
        project: id.project.clone(),
        domain: id.domain.clone(),
        name: id.name.clone(),
    })
}

fn identifier(kind: EntityKind, k: &EntityKey) -> Identifier {
    Identifier {
        resource_type: kind as i32,
        project: k.project.clone(),
        domain: k.domain.clone(),
        name: k.name.clone(),
        version: k.version.clone(),
        org: k.org.clone(),
    }
}

/// Unix nanoseconds as a protobuf Timestamp.
pub fn timestamp(nanos: i64) -> Timestamp {
    Timestamp {
        seconds: nanos.div_euclid(1_000_000_000),
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    }
}

fn digest(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

fn corrupt(kind: EntityKind, k: &EntityKey, e: prost::DecodeError) -> Status {
    Status::data_loss(format!(
        "the sandbox database is corrupted: the stored {} is unreadable ({e}); {}",
        describe(kind, k),
        StoreError::CORRUPT_HINT
    ))
}

/// The digest a stored spec was registered with, recomputed: what each create method hashes.
fn structure_digest(kind: EntityKind, spec: &[u8]) -> Option<Vec<u8>> {
    match kind {
        EntityKind::Task => Some(digest(
            &TaskSpec::decode(spec).ok()?.template?.encode_to_vec(),
        )),
        EntityKind::Workflow => {
            let s = WorkflowSpec::decode(spec).ok()?;
            Some(digest(
                &WorkflowSpec {
                    template: s.template,
                    sub_workflows: s.sub_workflows,
                    description: None,
                }
                .encode_to_vec(),
            ))
        }
        EntityKind::LaunchPlan => Some(digest(spec)),
    }
}

fn not_found(kind: EntityKind, k: &EntityKey) -> Status {
    Status::not_found(format!("{} does not exist", describe(kind, k)))
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

/// The status flyteadmin answers when an id is registered again.
fn conflict(kind: EntityKind, key: &EntityKey, outcome: Inserted) -> Result<(), Status> {
    match outcome {
        Inserted::Created(_) => Ok(()),
        // flytekit treats ALREADY_EXISTS as success: re-registering the same thing is a no-op.
        Inserted::Identical => Err(Status::already_exists(format!(
            "{} with identical structure already exists: {}",
            kind.noun(),
            describe(kind, key)
        ))),
        // A stored row that does not match its own digest was damaged on disk: that is not the
        // user's conflict, and saying "different structure" would send them the wrong way.
        Inserted::Different {
            stored_digest,
            stored_spec,
        } if structure_digest(kind, &stored_spec).as_deref() != Some(stored_digest.as_slice()) => {
            Err(Status::data_loss(format!(
                "the sandbox database is corrupted: the stored {} does not match its checksum; {}",
                describe(kind, key),
                StoreError::CORRUPT_HINT
            )))
        }
        // Same id, other content: flyteadmin refuses (INVALID_ARGUMENT), and so does flytekit.
        Inserted::Different { .. } => Err(Status::invalid_argument(format!(
            "{} {} with different structure already exists. (Please register a new version of the {}): {}",
            key.name,
            kind.noun(),
            kind.noun(),
            describe(kind, key)
        ))),
    }
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

macro_rules! unimplemented_methods {
    ($($method:ident($req:ident) -> $resp:ident = $name:literal;)*) => {
        $(
            // Spelled as `#[async_trait]` expands an `async fn`: attribute macros see this macro
            // call unexpanded, so it must produce the desugared signature itself.
            fn $method<'life0, 'async_trait>(
                &'life0 self,
                _request: Request<admin::$req>,
            ) -> ::std::pin::Pin<Box<
                dyn ::std::future::Future<Output = Result<Response<admin::$resp>, Status>> + Send + 'async_trait,
            >>
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                Box::pin(async move {
                    Err(Status::unimplemented(concat!(
                        "flyteidl.service.AdminService/", $name, " is not implemented by the union sandbox"
                    )))
                })
            }
        )*
    };
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn create_task(
        &self,
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
        let outcome = self
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

    async fn get_task(&self, request: Request<ObjectGetRequest>) -> Result<Response<Task>, Status> {
        let key = entity_key(request.get_ref().id.as_ref(), EntityKind::Task)?;
        self.blocking(move |store| {
            let row = store.get_entity(EntityKind::Task, &key).map_err(db)?;
            task_from_row(&row.ok_or_else(|| not_found(EntityKind::Task, &key))?)
        })
        .await
        .map(Response::new)
    }

    async fn list_task_ids(
        &self,
        request: Request<NamedEntityIdentifierListRequest>,
    ) -> Result<Response<NamedEntityIdentifierList>, Status> {
        self.list_ids(EntityKind::Task, request.into_inner()).await
    }

    async fn list_tasks(
        &self,
        request: Request<ResourceListRequest>,
    ) -> Result<Response<TaskList>, Status> {
        let (rows, token) = self.list(EntityKind::Task, request.into_inner()).await?;
        let tasks = rows.iter().map(task_from_row).collect::<Result<_, _>>()?;
        Ok(Response::new(TaskList { tasks, token }))
    }

    async fn create_workflow(
        &self,
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
        self.blocking(move |store| {
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

    async fn get_workflow(
        &self,
        request: Request<ObjectGetRequest>,
    ) -> Result<Response<Workflow>, Status> {
        let key = entity_key(request.get_ref().id.as_ref(), EntityKind::Workflow)?;
        self.blocking(move |store| {
            let row = store.get_entity(EntityKind::Workflow, &key).map_err(db)?;
            workflow_from_row(&row.ok_or_else(|| not_found(EntityKind::Workflow, &key))?)
        })
        .await
        .map(Response::new)
    }

    async fn list_workflow_ids(
        &self,
        request: Request<NamedEntityIdentifierListRequest>,
    ) -> Result<Response<NamedEntityIdentifierList>, Status> {
        self.list_ids(EntityKind::Workflow, request.into_inner())
            .await
    }

    async fn list_workflows(
        &self,
        request: Request<ResourceListRequest>,
    ) -> Result<Response<WorkflowList>, Status> {
        let (rows, token) = self
            .list(EntityKind::Workflow, request.into_inner())
            .await?;
        let workflows = rows
            .iter()
            .map(workflow_from_row)
            .collect::<Result<_, _>>()?;
        Ok(Response::new(WorkflowList { workflows, token }))
    }

    async fn create_launch_plan(
        &self,
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
        self.blocking(move |store| {
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

    async fn get_launch_plan(
        &self,
        request: Request<ObjectGetRequest>,
    ) -> Result<Response<LaunchPlan>, Status> {
        let key = entity_key(request.get_ref().id.as_ref(), EntityKind::LaunchPlan)?;
        self.blocking(move |store| {
            let row = store.get_entity(EntityKind::LaunchPlan, &key).map_err(db)?;
            launch_plan_from_row(&row.ok_or_else(|| not_found(EntityKind::LaunchPlan, &key))?)
        })
        .await
        .map(Response::new)
    }

    async fn get_active_launch_plan(
        &self,
        request: Request<ActiveLaunchPlanRequest>,
    ) -> Result<Response<LaunchPlan>, Status> {
        let key = named_key(request.get_ref().id.as_ref())?;
        self.blocking(move |store| {
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

    async fn list_active_launch_plans(
        &self,
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
        let (rows, q) = self
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

    async fn list_launch_plan_ids(
        &self,
        request: Request<NamedEntityIdentifierListRequest>,
    ) -> Result<Response<NamedEntityIdentifierList>, Status> {
        self.list_ids(EntityKind::LaunchPlan, request.into_inner())
            .await
    }

    async fn list_launch_plans(
        &self,
        request: Request<ResourceListRequest>,
    ) -> Result<Response<LaunchPlanList>, Status> {
        let (rows, token) = self
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

    async fn update_launch_plan(
        &self,
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
        self.blocking(move |store| {
            if store.set_launch_plan_state(&key, r.state).map_err(db)? {
                Ok(Response::new(LaunchPlanUpdateResponse {}))
            } else {
                Err(not_found(EntityKind::LaunchPlan, &key))
            }
        })
        .await
    }

    async fn list_named_entities(
        &self,
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
        let (rows, q) = self
            .blocking(move |store| Ok((store.list_names(kind, &q).map_err(db)?, q)))
            .await?;
        let token = query::next_token(&q, rows.len());
        let entities = rows
            .into_iter()
            .map(|row| named_entity(kind, row.key))
            .collect();
        Ok(Response::new(NamedEntityList { entities, token }))
    }

    async fn get_named_entity(
        &self,
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
        self.blocking(move |store| {
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

    async fn get_version(
        &self,
        _request: Request<GetVersionRequest>,
    ) -> Result<Response<GetVersionResponse>, Status> {
        Ok(Response::new(GetVersionResponse {
            control_plane_version: Some(Version {
                build: "union-sandbox".to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                build_time: String::new(),
            }),
        }))
    }

    // Executions: see `super::executions`.
    async fn create_execution(
        &self,
        request: Request<ExecutionCreateRequest>,
    ) -> Result<Response<ExecutionCreateResponse>, Status> {
        self.executions("CreateExecution")?
            .create(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_execution(
        &self,
        request: Request<WorkflowExecutionGetRequest>,
    ) -> Result<Response<Execution>, Status> {
        self.executions("GetExecution")?
            .get(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_execution_data(
        &self,
        request: Request<WorkflowExecutionGetDataRequest>,
    ) -> Result<Response<WorkflowExecutionGetDataResponse>, Status> {
        self.executions("GetExecutionData")?
            .get_data(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_executions(
        &self,
        request: Request<ResourceListRequest>,
    ) -> Result<Response<ExecutionList>, Status> {
        self.executions("ListExecutions")?
            .list(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn terminate_execution(
        &self,
        request: Request<ExecutionTerminateRequest>,
    ) -> Result<Response<ExecutionTerminateResponse>, Status> {
        self.executions("TerminateExecution")?
            .terminate(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_node_execution(
        &self,
        request: Request<NodeExecutionGetRequest>,
    ) -> Result<Response<NodeExecution>, Status> {
        self.executions("GetNodeExecution")?
            .get_node(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_node_executions(
        &self,
        request: Request<NodeExecutionListRequest>,
    ) -> Result<Response<NodeExecutionList>, Status> {
        self.executions("ListNodeExecutions")?
            .list_nodes(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_node_execution_data(
        &self,
        request: Request<NodeExecutionGetDataRequest>,
    ) -> Result<Response<NodeExecutionGetDataResponse>, Status> {
        self.executions("GetNodeExecutionData")?
            .get_node_data(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_task_executions(
        &self,
        request: Request<TaskExecutionListRequest>,
    ) -> Result<Response<TaskExecutionList>, Status> {
        self.executions("ListTaskExecutions")?
            .list_tasks(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_task_execution(
        &self,
        request: Request<TaskExecutionGetRequest>,
    ) -> Result<Response<TaskExecution>, Status> {
        self.executions("GetTaskExecution")?
            .get_task(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_task_execution_data(
        &self,
        request: Request<TaskExecutionGetDataRequest>,
    ) -> Result<Response<TaskExecutionGetDataResponse>, Status> {
        self.executions("GetTaskExecutionData")?
            .get_task_data(request.into_inner())
            .await
            .map(Response::new)
    }

    unimplemented_methods! {
        relaunch_execution(ExecutionRelaunchRequest) -> ExecutionCreateResponse = "RelaunchExecution";
        recover_execution(ExecutionRecoverRequest) -> ExecutionCreateResponse = "RecoverExecution";
        update_execution(ExecutionUpdateRequest) -> ExecutionUpdateResponse = "UpdateExecution";
        get_dynamic_node_workflow(GetDynamicNodeWorkflowRequest) -> DynamicNodeWorkflowResponse = "GetDynamicNodeWorkflow";
        list_node_executions_for_task(NodeExecutionForTaskListRequest) -> NodeExecutionList = "ListNodeExecutionsForTask";
        register_project(ProjectRegisterRequest) -> ProjectRegisterResponse = "RegisterProject";
        update_project(Project) -> ProjectUpdateResponse = "UpdateProject";
        get_project(ProjectGetRequest) -> Project = "GetProject";
        list_projects(ProjectListRequest) -> Projects = "ListProjects";
        get_domains(GetDomainRequest) -> GetDomainsResponse = "GetDomains";
        create_workflow_event(WorkflowExecutionEventRequest) -> WorkflowExecutionEventResponse = "CreateWorkflowEvent";
        create_node_event(NodeExecutionEventRequest) -> NodeExecutionEventResponse = "CreateNodeEvent";
        create_task_event(TaskExecutionEventRequest) -> TaskExecutionEventResponse = "CreateTaskEvent";
        update_project_domain_attributes(ProjectDomainAttributesUpdateRequest) -> ProjectDomainAttributesUpdateResponse = "UpdateProjectDomainAttributes";
        get_project_domain_attributes(ProjectDomainAttributesGetRequest) -> ProjectDomainAttributesGetResponse = "GetProjectDomainAttributes";
        delete_project_domain_attributes(ProjectDomainAttributesDeleteRequest) -> ProjectDomainAttributesDeleteResponse = "DeleteProjectDomainAttributes";
        update_project_attributes(ProjectAttributesUpdateRequest) -> ProjectAttributesUpdateResponse = "UpdateProjectAttributes";
        get_project_attributes(ProjectAttributesGetRequest) -> ProjectAttributesGetResponse = "GetProjectAttributes";
        delete_project_attributes(ProjectAttributesDeleteRequest) -> ProjectAttributesDeleteResponse = "DeleteProjectAttributes";
        update_workflow_attributes(WorkflowAttributesUpdateRequest) -> WorkflowAttributesUpdateResponse = "UpdateWorkflowAttributes";
        get_workflow_attributes(WorkflowAttributesGetRequest) -> WorkflowAttributesGetResponse = "GetWorkflowAttributes";
        delete_workflow_attributes(WorkflowAttributesDeleteRequest) -> WorkflowAttributesDeleteResponse = "DeleteWorkflowAttributes";
        list_matchable_attributes(ListMatchableAttributesRequest) -> ListMatchableAttributesResponse = "ListMatchableAttributes";
        update_named_entity(NamedEntityUpdateRequest) -> NamedEntityUpdateResponse = "UpdateNamedEntity";
        get_description_entity(ObjectGetRequest) -> DescriptionEntity = "GetDescriptionEntity";
        list_description_entities(DescriptionEntityListRequest) -> DescriptionEntityList = "ListDescriptionEntities";
        get_execution_metrics(WorkflowExecutionGetMetricsRequest) -> WorkflowExecutionGetMetricsResponse = "GetExecutionMetrics";
    }
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

impl AdminApi {
    async fn list(
        &self,
        kind: EntityKind,
        r: ResourceListRequest,
    ) -> Result<(Vec<EntityRow>, String), Status> {
        let id =
            r.id.as_ref()
                .ok_or_else(|| Status::invalid_argument("missing id"))?;
        let q = query::list_query(ListParams {
            org: &id.org,
            project: &id.project,
            domain: &id.domain,
            name: Some(&id.name),
            limit: r.limit,
            token: &r.token,
            filters: &r.filters,
            sort_by: r.sort_by.as_ref(),
        })?;
        let (rows, q) = self
            .blocking(move |store| Ok((store.list_entities(kind, &q).map_err(db)?, q)))
            .await?;
        let token = query::next_token(&q, rows.len());
        Ok((rows, token))
    }

    async fn list_ids(
        &self,
        kind: EntityKind,
        r: NamedEntityIdentifierListRequest,
    ) -> Result<Response<NamedEntityIdentifierList>, Status> {
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
        let (rows, q): (Vec<NamedRow>, _) = self
            .blocking(move |store| Ok((store.list_names(kind, &q).map_err(db)?, q)))
            .await?;
        let token = query::next_token(&q, rows.len());
        let entities = rows
            .into_iter()
            .map(|row| NamedEntityIdentifier {
                project: row.key.project,
                domain: row.key.domain,
                name: row.key.name,
                org: row.key.org,
            })
            .collect();
        Ok(Response::new(NamedEntityIdentifierList { entities, token }))
    }
}
