//! `CreateExecution` and `TerminateExecution`: resolving what to run (launch plan or task),
//! starting it on the executor with its event persister, and cancelling it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prost::Message;
use rusqlite::{params, OptionalExtension};
use tonic::Status;

use super::persist::{finish, persist_events, ChannelSink};
use super::resolve::load_launch_plan;
use super::validate::{check_inputs, exec_id, generate_name, validate_name};
use super::{Executions, Running};
use crate::executor::{
    self, CancelToken, ChildExecution, Event, EventSink, RunOptions, WorkflowClosure,
};
use crate::status::db;
use crate::store::{EntityKind, Store};
use union_idl::flyteidl::admin::{
    execution_metadata, ExecutionCreateRequest, ExecutionCreateResponse, ExecutionMetadata,
    ExecutionRelaunchRequest, ExecutionSpec, ExecutionTerminateRequest, ExecutionTerminateResponse,
    TaskClosure,
};
use union_idl::flyteidl::core::{
    self, parameter, workflow_execution::Phase as WfPhase, Identifier, LiteralMap,
    WorkflowExecutionIdentifier,
};

impl Executions {
    /// `CreateExecution`.
    // `spec.inputs` is deprecated but older clients still send inputs there.
    #[allow(deprecated)]
    pub async fn create(
        self: &Arc<Self>,
        req: ExecutionCreateRequest,
    ) -> Result<ExecutionCreateResponse, Status> {
        crate::status::require("project", &req.project)?;
        crate::status::require("domain", &req.domain)?;
        let mut spec = req
            .spec
            .ok_or_else(|| Status::invalid_argument("missing spec"))?;
        let target = spec
            .launch_plan
            .clone()
            .ok_or_else(|| Status::invalid_argument("missing spec.launch_plan"))?;
        for (field, value) in [
            ("project", &target.project),
            ("domain", &target.domain),
            ("name", &target.name),
            ("version", &target.version),
        ] {
            crate::status::require(&format!("spec.launch_plan.{field}"), value)?;
        }
        let name = if req.name.is_empty() {
            generate_name()
        } else {
            validate_name(&req.name)?
        };
        let given = req
            .inputs
            .or_else(|| spec.inputs.take())
            .unwrap_or_default();
        let this = self.clone();
        let (closure, inputs, workflow_id) = self
            .blocking(move |store| this.prepare(store, &target, given))
            .await?;
        spec.inputs = None;
        spec.metadata
            .get_or_insert_with(ExecutionMetadata::default)
            .principal = "sandbox".into();
        let id = WorkflowExecutionIdentifier {
            project: req.project,
            domain: req.domain,
            name,
            org: req.org,
        };
        let seq = self
            .insert(&id, &spec, &inputs, &workflow_id)
            .await?
            .ok_or_else(|| {
                Status::already_exists(format!(
                    "execution `{}` already exists in project `{}`, domain `{}`",
                    id.name, id.project, id.domain
                ))
            })?;
        let options = RunOptions {
            overwrite_cache: spec.overwrite_cache,
        };
        self.start(seq, id.clone(), Arc::new(closure), inputs, options);
        Ok(ExecutionCreateResponse { id: Some(id) })
    }

    /// A launch plan node's child execution, as flytepropeller creates it: named after the
    /// parent and the node, linked to that node (`parent_node_execution`, mode CHILD_WORKFLOW),
    /// the node's inputs completed by the launch plan's fixed and default ones; started now.
    pub(super) async fn create_child(
        self: &Arc<Self>,
        parent: &WorkflowExecutionIdentifier,
        node_id: &str,
        target: &Identifier,
        given: LiteralMap,
        options: RunOptions,
    ) -> Result<ChildExecution, Status> {
        let this = self.clone();
        let lp = target.clone();
        let (closure, inputs, workflow_id) = self
            .blocking(move |store| this.prepare(store, &lp, given))
            .await?;
        let id = WorkflowExecutionIdentifier {
            name: child_name(&parent.name, node_id),
            ..parent.clone()
        };
        let spec = ExecutionSpec {
            launch_plan: Some(target.clone()),
            metadata: Some(ExecutionMetadata {
                mode: execution_metadata::ExecutionMode::ChildWorkflow as i32,
                principal: "sandbox".into(),
                parent_node_execution: Some(core::NodeExecutionIdentifier {
                    node_id: node_id.to_string(),
                    execution_id: Some(parent.clone()),
                }),
                ..Default::default()
            }),
            overwrite_cache: options.overwrite_cache,
            ..Default::default()
        };
        let seq = self
            .insert(&id, &spec, &inputs, &workflow_id)
            .await?
            .ok_or_else(|| {
                Status::already_exists(format!("child execution `{}` already exists", id.name))
            })?;
        let (cancel, done) = self.start(seq, id.clone(), Arc::new(closure), inputs, options);
        Ok(ChildExecution {
            execution: id,
            cancel,
            done: Box::pin(
                async move { done.await.unwrap_or(executor::ExecutionOutcome::Aborted) },
            ),
        })
    }

    /// Insert a QUEUED execution; `None` when the name is taken.
    async fn insert(
        &self,
        id: &WorkflowExecutionIdentifier,
        spec: &ExecutionSpec,
        inputs: &LiteralMap,
        workflow_id: &Identifier,
    ) -> Result<Option<i64>, Status> {
        let row_id = id.clone();
        let spec_bytes = spec.encode_to_vec();
        let inputs_bytes = inputs.encode_to_vec();
        let wf_bytes = workflow_id.encode_to_vec();
        self.blocking(move |store| {
            store
                .write(|tx| {
                    let exists: Option<i64> = tx
                        .prepare_cached(
                            "SELECT seq FROM executions WHERE org=?1 AND project=?2 AND domain=?3 AND name=?4",
                        )?
                        .query_row(params![row_id.org, row_id.project, row_id.domain, row_id.name], |r| r.get(0))
                        .optional()?;
                    if exists.is_some() {
                        return Ok(None);
                    }
                    let now = executor::now_nanos();
                    tx.prepare_cached(
                        "INSERT INTO executions (org, project, domain, name, phase, spec, workflow_id, inputs,
                         created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
                    )?
                    .execute(params![
                        row_id.org,
                        row_id.project,
                        row_id.domain,
                        row_id.name,
                        WfPhase::Queued as i32,
                        spec_bytes,
                        wf_bytes,
                        inputs_bytes,
                        now
                    ])?;
                    Ok(Some(tx.last_insert_rowid()))
                })
                .map_err(db)
        })
        .await
    }

    /// Resolve what to run: a launch plan (with its inputs) or a task.
    fn prepare(
        &self,
        store: &Store,
        target: &Identifier,
        given: LiteralMap,
    ) -> Result<(WorkflowClosure, LiteralMap, Identifier), Status> {
        let key = crate::compile::key_of(target);
        if target.resource_type == core::ResourceType::Task as i32 {
            let row = store
                .get_entity(EntityKind::Task, &key)
                .map_err(db)?
                .ok_or_else(|| {
                    Status::not_found(format!(
                        "{} does not exist",
                        crate::status::describe(EntityKind::Task, &key)
                    ))
                })?;
            let closure = TaskClosure::decode(row.closure.as_slice())
                .map_err(|e| Status::internal(format!("stored task is unreadable: {e}")))?;
            let template = closure
                .compiled_task
                .and_then(|c| c.template)
                .ok_or_else(|| Status::internal("stored task has no template"))?;
            let names: Vec<String> = template
                .interface
                .as_ref()
                .and_then(|i| i.inputs.as_ref())
                .map(|v| v.variables.keys().cloned().collect())
                .unwrap_or_default();
            check_inputs(&names, &BTreeMap::new(), &given, &LiteralMap::default())?;
            let wf_id = Identifier {
                resource_type: core::ResourceType::Workflow as i32,
                ..target.clone()
            };
            return Ok((WorkflowClosure::single_task(template), given, wf_id));
        }
        if target.resource_type != core::ResourceType::LaunchPlan as i32 {
            return Err(Status::invalid_argument(
                "spec.launch_plan must identify a launch plan or a task (resource type LAUNCH_PLAN or TASK)",
            ));
        }
        let (closure, lp) = load_launch_plan(store, &key)?;
        let defaults: BTreeMap<String, Option<core::Literal>> = lp
            .default_inputs
            .as_ref()
            .map(|p| {
                p.parameters
                    .iter()
                    .map(|(k, p)| {
                        let d = match &p.behavior {
                            Some(parameter::Behavior::Default(l)) => Some(l.clone()),
                            _ => None,
                        };
                        (k.clone(), d)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let fixed = lp.fixed_inputs.clone().unwrap_or_default();
        let inputs = check_inputs(&[], &defaults, &given, &fixed)?;
        let wf_id = lp.workflow_id.clone().unwrap_or_default();
        Ok((closure, inputs, wf_id))
    }

    fn start(
        self: &Arc<Self>,
        seq: i64,
        id: WorkflowExecutionIdentifier,
        closure: Arc<WorkflowClosure>,
        inputs: LiteralMap,
        options: RunOptions,
    ) -> (
        CancelToken,
        tokio::task::JoinHandle<executor::ExecutionOutcome>,
    ) {
        let cancel = CancelToken::new();
        let token = cancel.clone();
        let cause = Arc::new(Mutex::new(None));
        if let Ok(mut running) = self.running.lock() {
            running.insert(
                seq,
                Running {
                    cancel: cancel.clone(),
                    cause: cause.clone(),
                },
            );
        }
        let this = self.clone();
        let handle = tokio::spawn(async move {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
            let store = this.store.clone();
            // Events are written in batches, in order, by one task per execution.
            let persister = tokio::spawn(async move {
                while let Some(first) = rx.recv().await {
                    let mut batch = vec![first];
                    while let Ok(e) = rx.try_recv() {
                        batch.push(e);
                    }
                    let store = store.clone();
                    let _ =
                        tokio::task::spawn_blocking(move || persist_events(&store, seq, &batch))
                            .await;
                }
            });
            let store = this.store.clone();
            let _ = tokio::task::spawn_blocking(move || {
                store.write(|tx| {
                    let now = executor::now_nanos();
                    tx.prepare_cached("UPDATE executions SET phase=?1, started_at=?2, updated_at=?2 WHERE seq=?3 AND phase=?4")?
                        .execute(params![WfPhase::Running as i32, now, seq, WfPhase::Queued as i32])?;
                    Ok(())
                })
            })
            .await;
            let sink: Arc<dyn EventSink> = Arc::new(ChannelSink(tx));
            let outcome = this
                .executor
                .run_with_options(id, closure, inputs, sink, cancel, options)
                .await;
            let _ = persister.await;
            let abort_cause = cause.lock().ok().and_then(|c| c.clone());
            let store = this.store.clone();
            let recorded = outcome.clone();
            let _ =
                tokio::task::spawn_blocking(move || finish(&store, seq, &recorded, abort_cause))
                    .await;
            if let Ok(mut running) = this.running.lock() {
                running.remove(&seq);
            }
            outcome
        });
        (token, handle)
    }

    /// `RelaunchExecution`: the same launch plan (or task) with the same inputs, as a new
    /// execution in mode RELAUNCH that names the one it repeats.
    pub async fn relaunch(
        self: &Arc<Self>,
        req: ExecutionRelaunchRequest,
    ) -> Result<ExecutionCreateResponse, Status> {
        let id = exec_id(req.id.as_ref())?;
        let row = self.row(id.clone()).await?;
        let mut spec = row.spec;
        let target = spec
            .launch_plan
            .clone()
            .ok_or_else(|| Status::failed_precondition("the execution names no launch plan"))?;
        // The stored inputs include the launch plan's fixed ones, which a new request may not set.
        let fixed: Vec<String> = if target.resource_type == core::ResourceType::LaunchPlan as i32 {
            let key = crate::compile::key_of(&target);
            self.blocking(move |store| load_launch_plan(store, &key))
                .await?
                .1
                .fixed_inputs
                .map(|f| f.literals.into_keys().collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut inputs = row.inputs;
        inputs.literals.retain(|k, _| !fixed.contains(k));
        let metadata = spec.metadata.get_or_insert_with(ExecutionMetadata::default);
        metadata.mode = execution_metadata::ExecutionMode::Relaunch as i32;
        metadata.reference_execution = Some(id.clone());
        metadata.parent_node_execution = None;
        spec.overwrite_cache = req.overwrite_cache;
        self.create(ExecutionCreateRequest {
            project: id.project,
            domain: id.domain,
            name: req.name,
            spec: Some(spec),
            inputs: Some(inputs),
            org: id.org,
        })
        .await
    }

    /// `TerminateExecution`: cancel a running execution (its containers are killed); it ends ABORTED.
    pub async fn terminate(
        &self,
        req: ExecutionTerminateRequest,
    ) -> Result<ExecutionTerminateResponse, Status> {
        let id = exec_id(req.id.as_ref())?;
        let row = self.row(id.clone()).await?;
        let running = self
            .running
            .lock()
            .ok()
            .and_then(|r| r.get(&row.seq).map(|r| (r.cancel.clone(), r.cause.clone())));
        match running {
            Some((cancel, cause)) => {
                if let Ok(mut c) = cause.lock() {
                    c.get_or_insert_with(|| {
                        if req.cause.is_empty() {
                            "terminated".into()
                        } else {
                            req.cause.clone()
                        }
                    });
                }
                cancel.cancel();
                Ok(ExecutionTerminateResponse {})
            }
            None => Err(Status::failed_precondition(format!(
                "execution `{}` has already finished ({})",
                id.name,
                WfPhase::try_from(row.phase)
                    .map(|p| p.as_str_name())
                    .unwrap_or("UNKNOWN")
            ))),
        }
    }
}

/// A child execution's name: 20 lowercase letters and digits starting with a letter (like every
/// execution name), the same for the same parent and node, as flytepropeller derives it.
fn child_name(parent: &str, node_id: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{parent}/{node_id}/0").as_bytes());
    let text = data_encoding::BASE32_NOPAD
        .encode(&digest)
        .to_ascii_lowercase();
    format!("f{}", &text[..19])
}
