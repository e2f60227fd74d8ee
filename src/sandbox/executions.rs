//! Executions: `CreateExecution` and friends, run by the [`crate::executor`] with one container
//! per task attempt ([`DockerRunner`]), persisted in the sandbox database.
//!
//! - An execution is created from a launch plan (its fixed inputs, then its defaults, then the
//!   request's inputs) or from a task id (a one-node workflow); a generated name is 20 lowercase
//!   letters and digits starting with a letter, like flyteadmin's.
//! - Phases, timestamps, inputs, outputs and errors of executions, nodes and task attempts are
//!   stored in the `executions`, `node_executions` and `task_executions` tables as events arrive.
//! - Task attempt logs are served over HTTP by the sandbox itself:
//!   `http://<sandbox>/logs/<project>/<domain>/<execution>/<node>/<attempt>`.
//! - On start, executions a previous sandbox process left QUEUED or RUNNING are marked FAILED
//!   ("the sandbox restarted while this execution was running"), and their containers removed:
//!   resuming would need the containers' state, which a crash loses.
//! - Executions need a Docker engine (`DOCKER_HOST` or the default socket) only when they run; without
//!   one, the first task fails with "no Docker engine at <endpoint>".

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use prost::Message;
use rusqlite::{params, OptionalExtension};
use tonic::Status;

use super::admin::{db, timestamp};
use super::store::{EntityKey, EntityKind, Store, StoreError};
use crate::executor::docker::{DockerRunner, DockerRunnerConfig};
use crate::executor::{
    self, AttemptId, CancelToken, Event, EventSink, ExecutionOutcome, Executor, ExecutorConfig,
    LaunchPlanResolver, ResolvedLaunchPlan, TaskRunner, WorkflowClosure,
};
use crate::idl::flyteidl::admin::{
    execution_closure, node_execution_closure, task_execution_closure, AbortMetadata, Execution,
    ExecutionClosure, ExecutionCreateRequest, ExecutionCreateResponse, ExecutionList,
    ExecutionMetadata, ExecutionSpec, ExecutionTerminateRequest, ExecutionTerminateResponse,
    LaunchPlanSpec, NodeExecution, NodeExecutionClosure, NodeExecutionGetDataRequest,
    NodeExecutionGetDataResponse, NodeExecutionGetRequest, NodeExecutionList,
    NodeExecutionListRequest, NodeExecutionMetaData, ResourceListRequest, TaskClosure,
    TaskExecution, TaskExecutionClosure, TaskExecutionGetDataRequest, TaskExecutionGetDataResponse,
    TaskExecutionGetRequest, TaskExecutionList, TaskExecutionListRequest,
    WorkflowClosure as AdminWorkflowClosure, WorkflowExecutionGetDataRequest,
    WorkflowExecutionGetDataResponse, WorkflowExecutionGetRequest,
};
use crate::idl::flyteidl::core::{
    self, execution_error::ErrorKind, node_execution::Phase as NodePhase, parameter,
    task_execution::Phase as TaskPhase, workflow_execution::Phase as WfPhase, ExecutionError,
    Identifier, LiteralMap, NodeExecutionIdentifier, TaskExecutionIdentifier, TaskLog,
    WorkflowExecutionIdentifier,
};

/// Schema of the execution tables (appended to the store's migrations).
pub const MIGRATION: &str = "
    CREATE TABLE executions (
        seq          INTEGER PRIMARY KEY,
        org          TEXT NOT NULL,
        project      TEXT NOT NULL,
        domain       TEXT NOT NULL,
        name         TEXT NOT NULL,
        phase        INTEGER NOT NULL,     -- core.WorkflowExecution.Phase
        spec         BLOB NOT NULL,        -- admin.ExecutionSpec
        workflow_id  BLOB NOT NULL,        -- core.Identifier
        inputs       BLOB NOT NULL,        -- core.LiteralMap, after defaults
        outputs      BLOB,                 -- core.LiteralMap
        error        BLOB,                 -- core.ExecutionError
        abort_cause  TEXT,
        created_at   INTEGER NOT NULL,     -- unix nanoseconds
        started_at   INTEGER,
        finished_at  INTEGER,
        updated_at   INTEGER NOT NULL,
        UNIQUE (org, project, domain, name)
    );
    CREATE INDEX executions_by_project ON executions (org, project, domain, created_at);
    CREATE INDEX executions_unfinished ON executions (phase) WHERE phase IN (1, 2);
    CREATE TABLE node_executions (
        execution_seq  INTEGER NOT NULL REFERENCES executions(seq),
        node_id        TEXT NOT NULL,      -- unique in the execution (n1-0-n0 inside n1)
        spec_node_id   TEXT NOT NULL,
        parent_node_id TEXT NOT NULL,      -- '' at the top level
        kind           TEXT NOT NULL,      -- task, workflow, launch_plan, branch, gate, array
        phase          INTEGER NOT NULL,   -- core.NodeExecution.Phase
        inputs         BLOB,
        outputs        BLOB,
        error          BLOB,
        created_at     INTEGER NOT NULL,
        started_at     INTEGER,
        finished_at    INTEGER,
        updated_at     INTEGER NOT NULL,
        seq            INTEGER NOT NULL,   -- creation order
        PRIMARY KEY (execution_seq, node_id)
    );
    CREATE TABLE task_executions (
        execution_seq  INTEGER NOT NULL REFERENCES executions(seq),
        node_id        TEXT NOT NULL,
        retry_attempt  INTEGER NOT NULL,
        task_id        BLOB NOT NULL,      -- core.Identifier
        phase          INTEGER NOT NULL,   -- core.TaskExecution.Phase
        log_path       TEXT,
        outputs        BLOB,
        error          BLOB,
        created_at     INTEGER NOT NULL,
        started_at     INTEGER,
        finished_at    INTEGER,
        updated_at     INTEGER NOT NULL,
        PRIMARY KEY (execution_seq, node_id, retry_attempt)
    );";

/// Message of executions interrupted by a sandbox restart.
pub const RESTARTED: &str = "the sandbox restarted while this execution was running";
/// Environment variable capping concurrently running task containers.
pub const MAX_PARALLELISM_ENV: &str = "UNION_SANDBOX_MAX_PARALLELISM";

/// Executions of one sandbox: the executor, the running executions, and their state in the store.
pub struct Executions {
    store: Arc<Store>,
    executor: Executor,
    runner: Arc<DockerRunner>,
    running: Mutex<HashMap<i64, Running>>,
    base_url: String,
}

struct Running {
    cancel: CancelToken,
    cause: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for Executions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executions")
            .field("runner", &self.runner)
            .finish_non_exhaustive()
    }
}

fn max_parallelism() -> usize {
    std::env::var(MAX_PARALLELISM_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| ExecutorConfig::default().max_parallelism)
}

impl Executions {
    /// Set up executions for a sandbox with data in `data_dir`, blobs in `blob_root`, serving on
    /// `addr`; marks executions interrupted by a restart as FAILED (blocking: call off the runtime's workers).
    pub fn open(
        store: Arc<Store>,
        data_dir: PathBuf,
        blob_root: PathBuf,
        addr: SocketAddr,
    ) -> Result<Arc<Self>, StoreError> {
        let runner = Arc::new(DockerRunner::new(DockerRunnerConfig {
            work_root: data_dir.join("executions"),
            read_only_mounts: vec![blob_root],
        }));
        let interrupted = mark_interrupted(&store)?;
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        let host = if addr.is_ipv6() && !addr.ip().is_unspecified() {
            format!("[{host}]")
        } else {
            host
        };
        let executions = Arc::new_cyclic(|weak: &std::sync::Weak<Executions>| {
            let resolver: Arc<dyn LaunchPlanResolver> = Arc::new(StoreResolver {
                executions: weak.clone(),
            });
            Executions {
                store,
                executor: Executor::new(
                    ExecutorConfig {
                        max_parallelism: max_parallelism(),
                    },
                    runner.clone() as Arc<dyn TaskRunner>,
                    resolver,
                ),
                runner,
                running: Mutex::new(HashMap::new()),
                base_url: format!("http://{host}:{}", addr.port()),
            }
        });
        if interrupted > 0 {
            // Containers of interrupted executions are still running (or stopped) on the engine.
            let runner = executions.runner.clone();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = runner.remove_orphans().await;
                });
            }
        }
        Ok(executions)
    }

    /// The Docker runner (for its work directories).
    pub fn runner(&self) -> &DockerRunner {
        &self.runner
    }

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

    /// `CreateExecution`.
    // `spec.inputs` is deprecated but older clients still send inputs there.
    #[allow(deprecated)]
    pub async fn create(
        self: &Arc<Self>,
        req: ExecutionCreateRequest,
    ) -> Result<ExecutionCreateResponse, Status> {
        super::admin::require("project", &req.project)?;
        super::admin::require("domain", &req.domain)?;
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
            super::admin::require(&format!("spec.launch_plan.{field}"), value)?;
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
        let row_id = id.clone();
        let spec_bytes = spec.encode_to_vec();
        let inputs_bytes = inputs.encode_to_vec();
        let wf_bytes = workflow_id.encode_to_vec();
        let seq = self
            .blocking(move |store| {
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
            .await?
            .ok_or_else(|| {
                Status::already_exists(format!(
                    "execution `{}` already exists in project `{}`, domain `{}`",
                    id.name, id.project, id.domain
                ))
            })?;
        self.start(seq, id.clone(), Arc::new(closure), inputs);
        Ok(ExecutionCreateResponse { id: Some(id) })
    }

    /// Resolve what to run: a launch plan (with its inputs) or a task.
    fn prepare(
        &self,
        store: &Store,
        target: &Identifier,
        given: LiteralMap,
    ) -> Result<(WorkflowClosure, LiteralMap, Identifier), Status> {
        let key = super::compile::key_of(target);
        if target.resource_type == core::ResourceType::Task as i32 {
            let row = store
                .get_entity(EntityKind::Task, &key)
                .map_err(db)?
                .ok_or_else(|| {
                    Status::not_found(format!(
                        "{} does not exist",
                        super::admin::describe(EntityKind::Task, &key)
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
    ) {
        let cancel = CancelToken::new();
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
        tokio::spawn(async move {
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
            let outcome = this.executor.run(id, closure, inputs, sink, cancel).await;
            let _ = persister.await;
            let abort_cause = cause.lock().ok().and_then(|c| c.clone());
            let store = this.store.clone();
            let _ = tokio::task::spawn_blocking(move || finish(&store, seq, &outcome, abort_cause))
                .await;
            if let Ok(mut running) = this.running.lock() {
                running.remove(&seq);
            }
        });
    }

    /// `GetExecution`.
    pub async fn get(&self, req: WorkflowExecutionGetRequest) -> Result<Execution, Status> {
        let id = exec_id(req.id.as_ref())?;
        self.blocking(move |store| {
            store
                .read(|c| execution_row(c, &id))
                .map_err(db)?
                .ok_or_else(|| not_found(&id))
        })
        .await
        .map(|row| row.to_execution())
    }

    /// `ListExecutions`: a project/domain's executions, newest first unless sorted otherwise.
    pub async fn list(&self, req: ResourceListRequest) -> Result<ExecutionList, Status> {
        let id = req
            .id
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("missing id"))?;
        let q = super::query::list_query(super::query::ListParams {
            org: &id.org,
            project: &id.project,
            domain: &id.domain,
            name: None,
            limit: req.limit,
            token: &req.token,
            filters: "",
            sort_by: req.sort_by.as_ref(),
        })?;
        let order = match q.sort {
            super::store::Column::UpdatedAt => "updated_at",
            super::store::Column::Name => "name",
            _ => "created_at",
        };
        let dir = if q.ascending { "ASC" } else { "DESC" };
        let name_filter = (!id.name.is_empty()).then(|| id.name.clone());
        let (org, project, domain, limit, offset) = (
            q.org.clone(),
            q.project.clone(),
            q.domain.clone(),
            i64::from(q.limit),
            q.offset as i64,
        );
        let rows = self
            .blocking(move |store| {
                store
                    .read(|c| {
                        let sql = format!(
                            "SELECT {EXEC_COLUMNS} FROM executions WHERE org=?1 AND project=?2 AND domain=?3
                             AND (?4 IS NULL OR name=?4) ORDER BY {order} {dir}, seq {dir} LIMIT ?5 OFFSET ?6"
                        );
                        let mut stmt = c.prepare_cached(&sql)?;
                        let rows = stmt.query_map(params![org, project, domain, name_filter, limit, offset], exec_from_row)?;
                        Ok(rows.collect::<Result<Vec<_>, _>>()?)
                    })
                    .map_err(db)
            })
            .await?;
        let token = super::query::next_token(&q, rows.len());
        Ok(ExecutionList {
            executions: rows.iter().map(ExecRow::to_execution).collect(),
            token,
        })
    }

    /// `GetExecutionData`: the full inputs and (once succeeded) outputs.
    pub async fn get_data(
        &self,
        req: WorkflowExecutionGetDataRequest,
    ) -> Result<WorkflowExecutionGetDataResponse, Status> {
        let id = exec_id(req.id.as_ref())?;
        let row = self
            .blocking(move |store| {
                store
                    .read(|c| execution_row(c, &id))
                    .map_err(db)?
                    .ok_or_else(|| not_found(&id))
            })
            .await?;
        Ok(WorkflowExecutionGetDataResponse {
            full_inputs: Some(row.inputs.clone()),
            full_outputs: row.outputs.clone(),
            ..Default::default()
        })
    }

    /// `TerminateExecution`: cancel a running execution (its containers are killed); it ends ABORTED.
    pub async fn terminate(
        &self,
        req: ExecutionTerminateRequest,
    ) -> Result<ExecutionTerminateResponse, Status> {
        let id = exec_id(req.id.as_ref())?;
        let lookup = id.clone();
        let row = self
            .blocking(move |store| {
                store
                    .read(|c| execution_row(c, &lookup))
                    .map_err(db)?
                    .ok_or_else(|| not_found(&lookup))
            })
            .await?;
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

    /// `ListNodeExecutions`: top-level nodes, or the children of `unique_parent_id`.
    pub async fn list_nodes(
        &self,
        req: NodeExecutionListRequest,
    ) -> Result<NodeExecutionList, Status> {
        let id = exec_id(req.workflow_execution_id.as_ref())?;
        let parent = req.unique_parent_id.clone();
        let limit = if req.limit == 0 {
            i64::MAX
        } else {
            i64::from(req.limit)
        };
        let offset: i64 = if req.token.is_empty() {
            0
        } else {
            req.token.parse().map_err(|_| {
                Status::invalid_argument(format!("invalid pagination token `{}`", req.token))
            })?
        };
        let lookup = id.clone();
        let rows = self
            .blocking(move |store| {
                store
                    .read(|c| {
                        let Some(exec) = execution_row(c, &lookup)? else { return Ok(None) };
                        let sql = format!(
                            "SELECT {NODE_COLUMNS} FROM node_executions WHERE execution_seq=?1 AND parent_node_id=?2
                             ORDER BY seq LIMIT ?3 OFFSET ?4"
                        );
                        let mut stmt = c.prepare_cached(&sql)?;
                        let rows = stmt.query_map(params![exec.seq, parent, limit, offset], node_from_row)?;
                        Ok(Some(rows.collect::<Result<Vec<_>, _>>()?))
                    })
                    .map_err(db)?
                    .ok_or_else(|| not_found(&lookup))
            })
            .await?;
        let token = if req.limit > 0 && rows.len() as i64 == limit {
            (offset + limit).to_string()
        } else {
            String::new()
        };
        Ok(NodeExecutionList {
            node_executions: rows.iter().map(|r| r.to_node_execution(&id)).collect(),
            token,
        })
    }

    async fn node_row(
        &self,
        id: Option<&NodeExecutionIdentifier>,
    ) -> Result<(WorkflowExecutionIdentifier, NodeRow), Status> {
        let nid = id.ok_or_else(|| Status::invalid_argument("missing id"))?;
        let exec = exec_id(nid.execution_id.as_ref())?;
        super::admin::require("id.node_id", &nid.node_id)?;
        let node_id = nid.node_id.clone();
        let shown = nid_name(id);
        let lookup = exec.clone();
        let row = self
            .blocking(move |store| {
                store
                    .read(|c| {
                        let Some(e) = execution_row(c, &lookup)? else { return Ok(None) };
                        let sql = format!("SELECT {NODE_COLUMNS} FROM node_executions WHERE execution_seq=?1 AND node_id=?2");
                        Ok(c.prepare_cached(&sql)?.query_row(params![e.seq, node_id], node_from_row).optional()?)
                    })
                    .map_err(db)?
                    .ok_or_else(|| Status::not_found(format!("node execution `{shown}` of `{}` does not exist", lookup.name)))
            })
            .await?;
        Ok((exec, row))
    }

    /// `GetNodeExecution`.
    pub async fn get_node(&self, req: NodeExecutionGetRequest) -> Result<NodeExecution, Status> {
        let (exec, row) = self.node_row(req.id.as_ref()).await?;
        Ok(row.to_node_execution(&exec))
    }

    /// `GetNodeExecutionData`.
    pub async fn get_node_data(
        &self,
        req: NodeExecutionGetDataRequest,
    ) -> Result<NodeExecutionGetDataResponse, Status> {
        let (_, row) = self.node_row(req.id.as_ref()).await?;
        Ok(NodeExecutionGetDataResponse {
            full_inputs: row.inputs,
            full_outputs: row.outputs,
            ..Default::default()
        })
    }

    /// `ListTaskExecutions`: the attempts of a task node, with their log links.
    pub async fn list_tasks(
        &self,
        req: TaskExecutionListRequest,
    ) -> Result<TaskExecutionList, Status> {
        let nid = req
            .node_execution_id
            .clone()
            .ok_or_else(|| Status::invalid_argument("missing node_execution_id"))?;
        let rows = self.task_rows(&nid, None).await?;
        let exec = nid.execution_id.clone().unwrap_or_default();
        let task_executions = rows
            .into_iter()
            .map(|t| self.to_task_execution(&exec, &nid, t))
            .collect();
        Ok(TaskExecutionList {
            task_executions,
            token: String::new(),
        })
    }

    /// `GetTaskExecution`: one attempt.
    pub async fn get_task(&self, req: TaskExecutionGetRequest) -> Result<TaskExecution, Status> {
        let id = req
            .id
            .ok_or_else(|| Status::invalid_argument("missing id"))?;
        let nid = id
            .node_execution_id
            .clone()
            .ok_or_else(|| Status::invalid_argument("missing id.node_execution_id"))?;
        let row = self
            .task_rows(&nid, Some(id.retry_attempt))
            .await?
            .pop()
            .ok_or_else(|| {
                Status::not_found(format!(
                    "attempt {} of node execution `{}` does not exist",
                    id.retry_attempt, nid.node_id
                ))
            })?;
        let exec = nid.execution_id.clone().unwrap_or_default();
        Ok(self.to_task_execution(&exec, &nid, row))
    }

    /// `GetTaskExecutionData`: the node's inputs and the attempt's outputs.
    pub async fn get_task_data(
        &self,
        req: TaskExecutionGetDataRequest,
    ) -> Result<TaskExecutionGetDataResponse, Status> {
        let id = req
            .id
            .ok_or_else(|| Status::invalid_argument("missing id"))?;
        let nid = id
            .node_execution_id
            .clone()
            .ok_or_else(|| Status::invalid_argument("missing id.node_execution_id"))?;
        let row = self
            .task_rows(&nid, Some(id.retry_attempt))
            .await?
            .pop()
            .ok_or_else(|| {
                Status::not_found(format!(
                    "attempt {} of node execution `{}` does not exist",
                    id.retry_attempt, nid.node_id
                ))
            })?;
        let (_, node) = self.node_row(Some(&nid)).await?;
        Ok(TaskExecutionGetDataResponse {
            full_inputs: node.inputs,
            full_outputs: row.outputs,
            ..Default::default()
        })
    }

    async fn task_rows(
        &self,
        nid: &NodeExecutionIdentifier,
        attempt: Option<u32>,
    ) -> Result<Vec<TaskRow>, Status> {
        let exec = exec_id(nid.execution_id.as_ref())?;
        let node_id = nid.node_id.clone();
        self.blocking(move |store| {
            store
                .read(|c| {
                    let Some(e) = execution_row(c, &exec)? else { return Ok(None) };
                    let mut stmt = c.prepare_cached(
                        "SELECT retry_attempt, task_id, phase, outputs, error, created_at, started_at, finished_at,
                         updated_at FROM task_executions WHERE execution_seq=?1 AND node_id=?2
                         AND (?3 IS NULL OR retry_attempt=?3) ORDER BY retry_attempt",
                    )?;
                    let rows = stmt.query_map(params![e.seq, node_id, attempt], |r| {
                        Ok(TaskRow {
                            retry_attempt: r.get(0)?,
                            task_id: decode::<Identifier>(r.get::<_, Vec<u8>>(1)?).unwrap_or_default(),
                            phase: r.get(2)?,
                            outputs: r.get::<_, Option<Vec<u8>>>(3)?.and_then(decode::<LiteralMap>),
                            error: r.get::<_, Option<Vec<u8>>>(4)?.and_then(decode::<ExecutionError>),
                            created_at: r.get(5)?,
                            started_at: r.get(6)?,
                            finished_at: r.get(7)?,
                            updated_at: r.get(8)?,
                        })
                    })?;
                    Ok(Some(rows.collect::<Result<Vec<_>, _>>()?))
                })
                .map_err(db)?
                .ok_or_else(|| not_found(&exec))
        })
        .await
    }

    fn to_task_execution(
        &self,
        exec: &WorkflowExecutionIdentifier,
        nid: &NodeExecutionIdentifier,
        t: TaskRow,
    ) -> TaskExecution {
        let uri = self.log_url(exec, &nid.node_id, t.retry_attempt);
        TaskExecution {
            id: Some(TaskExecutionIdentifier {
                task_id: Some(t.task_id.clone()),
                node_execution_id: Some(nid.clone()),
                retry_attempt: t.retry_attempt,
            }),
            input_uri: String::new(),
            closure: Some(TaskExecutionClosure {
                phase: t.phase,
                logs: vec![TaskLog {
                    uri,
                    name: "sandbox logs".into(),
                    ..Default::default()
                }],
                started_at: t.started_at.map(timestamp),
                duration: duration(t.started_at, t.finished_at),
                created_at: Some(timestamp(t.created_at)),
                updated_at: Some(timestamp(t.updated_at)),
                task_type: "container".into(),
                reason: t.error.as_ref().map(|e| e.code.clone()).unwrap_or_default(),
                output_result: t.error.map(task_execution_closure::OutputResult::Error),
                ..Default::default()
            }),
            is_parent: false,
        }
    }

    fn log_url(&self, exec: &WorkflowExecutionIdentifier, node_id: &str, attempt: u32) -> String {
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

/// Resolves launch plan nodes from the store.
struct StoreResolver {
    executions: std::sync::Weak<Executions>,
}

impl LaunchPlanResolver for StoreResolver {
    fn resolve<'a>(
        &'a self,
        id: &'a Identifier,
    ) -> BoxFuture<'a, Result<ResolvedLaunchPlan, String>> {
        Box::pin(async move {
            let executions = self
                .executions
                .upgrade()
                .ok_or("the sandbox is shutting down")?;
            let key = super::compile::key_of(id);
            let store = executions.store.clone();
            let (closure, lp) = tokio::task::spawn_blocking(move || load_launch_plan(&store, &key))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|s| s.message().to_string())?;
            let mut defaults = LiteralMap::default();
            if let Some(p) = &lp.default_inputs {
                for (k, param) in &p.parameters {
                    if let Some(parameter::Behavior::Default(l)) = &param.behavior {
                        defaults.literals.insert(k.clone(), l.clone());
                    }
                }
            }
            if let Some(fixed) = &lp.fixed_inputs {
                defaults.literals.extend(fixed.literals.clone());
            }
            Ok(ResolvedLaunchPlan {
                closure: Arc::new(closure),
                default_inputs: defaults,
            })
        })
    }
}

fn load_launch_plan(
    store: &Store,
    key: &EntityKey,
) -> Result<(WorkflowClosure, LaunchPlanSpec), Status> {
    let row = store
        .get_entity(EntityKind::LaunchPlan, key)
        .map_err(db)?
        .ok_or_else(|| {
            Status::not_found(format!(
                "{} does not exist",
                super::admin::describe(EntityKind::LaunchPlan, key)
            ))
        })?;
    let lp = LaunchPlanSpec::decode(row.spec.as_slice())
        .map_err(|e| Status::internal(format!("stored launch plan is unreadable: {e}")))?;
    let wf_id = lp
        .workflow_id
        .as_ref()
        .ok_or_else(|| Status::internal("stored launch plan has no workflow"))?;
    let wf_key = super::compile::key_of(wf_id);
    let wf = store
        .get_entity(EntityKind::Workflow, &wf_key)
        .map_err(db)?
        .ok_or_else(|| {
            Status::not_found(format!(
                "{} does not exist",
                super::admin::describe(EntityKind::Workflow, &wf_key)
            ))
        })?;
    let closure = AdminWorkflowClosure::decode(wf.closure.as_slice())
        .map_err(|e| Status::internal(format!("stored workflow is unreadable: {e}")))?;
    let compiled = closure
        .compiled_workflow
        .ok_or_else(|| Status::internal("stored workflow is not compiled"))?;
    let closure =
        WorkflowClosure::from_compiled(compiled).map_err(|e| Status::internal(e.to_string()))?;
    Ok((closure, lp))
}

/// Merge inputs like flyteadmin: fixed inputs cannot be overridden, unknown inputs are refused,
/// defaults fill the rest, and whatever is left without a value is a missing required input.
fn check_inputs(
    required_names: &[String],
    defaults: &BTreeMap<String, Option<core::Literal>>,
    given: &LiteralMap,
    fixed: &LiteralMap,
) -> Result<LiteralMap, Status> {
    let known = |k: &String| required_names.contains(k) || defaults.contains_key(k);
    if let Some(k) = given
        .literals
        .keys()
        .find(|k| fixed.literals.contains_key(*k))
    {
        return Err(Status::invalid_argument(format!(
            "input `{k}` is fixed by the launch plan and cannot be set"
        )));
    }
    let unknown: Vec<&String> = given.literals.keys().filter(|k| !known(k)).collect();
    if !unknown.is_empty() {
        return Err(Status::invalid_argument(format!(
            "unknown inputs: {}",
            join(&unknown)
        )));
    }
    let mut out = LiteralMap::default();
    for (k, d) in defaults {
        if let Some(l) = d {
            out.literals.insert(k.clone(), l.clone());
        }
    }
    out.literals.extend(given.literals.clone());
    out.literals.extend(fixed.literals.clone());
    let missing: Vec<&String> = required_names
        .iter()
        .chain(defaults.keys())
        .filter(|k| !out.literals.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(Status::invalid_argument(format!(
            "missing required inputs: {}",
            join(&missing)
        )));
    }
    Ok(out)
}

fn join(names: &[&String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// flyteadmin-style execution name: a letter, then 19 lowercase letters or digits.
pub fn generate_name() -> String {
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 20];
    if getrandom::fill(&mut bytes).is_err() {
        // Fall back to the clock: names need to be unique, not secret.
        let t = executor::now_nanos() as u64;
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (t >> ((i % 8) * 8)) as u8 ^ (i as u8).wrapping_mul(37);
        }
    }
    bytes
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if i == 0 {
                (b'a' + b % 26) as char
            } else {
                ALNUM[*b as usize % ALNUM.len()] as char
            }
        })
        .collect()
}

fn validate_name(name: &str) -> Result<String, Status> {
    let ok = name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(name.to_string())
    } else {
        Err(Status::invalid_argument(format!(
            "invalid execution name `{name}`: use at most 63 lowercase letters, digits and `-`, starting with a letter"
        )))
    }
}

fn exec_id(
    id: Option<&WorkflowExecutionIdentifier>,
) -> Result<WorkflowExecutionIdentifier, Status> {
    let id = id.ok_or_else(|| Status::invalid_argument("missing id"))?;
    super::admin::require("id.project", &id.project)?;
    super::admin::require("id.domain", &id.domain)?;
    super::admin::require("id.name", &id.name)?;
    Ok(id.clone())
}

fn nid_name(id: Option<&NodeExecutionIdentifier>) -> String {
    id.map(|i| i.node_id.clone()).unwrap_or_default()
}

fn not_found(id: &WorkflowExecutionIdentifier) -> Status {
    Status::not_found(format!(
        "execution `{}` (project `{}`, domain `{}`) does not exist",
        id.name, id.project, id.domain
    ))
}

fn decode<M: Message + Default>(bytes: Vec<u8>) -> Option<M> {
    M::decode(bytes.as_slice()).ok()
}

fn duration(start: Option<i64>, end: Option<i64>) -> Option<prost_types::Duration> {
    let (s, e) = (start?, end?);
    let d = (e - s).max(0);
    Some(prost_types::Duration {
        seconds: d / 1_000_000_000,
        nanos: (d % 1_000_000_000) as i32,
    })
}

const EXEC_COLUMNS: &str =
    "seq, org, project, domain, name, phase, spec, workflow_id, inputs, outputs, error,
    abort_cause, created_at, started_at, finished_at, updated_at";

struct ExecRow {
    seq: i64,
    id: WorkflowExecutionIdentifier,
    phase: i32,
    spec: ExecutionSpec,
    workflow_id: Identifier,
    inputs: LiteralMap,
    outputs: Option<LiteralMap>,
    error: Option<ExecutionError>,
    abort_cause: Option<String>,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    updated_at: i64,
}

fn exec_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ExecRow> {
    Ok(ExecRow {
        seq: r.get(0)?,
        id: WorkflowExecutionIdentifier {
            org: r.get(1)?,
            project: r.get(2)?,
            domain: r.get(3)?,
            name: r.get(4)?,
        },
        phase: r.get(5)?,
        spec: decode(r.get(6)?).unwrap_or_default(),
        workflow_id: decode(r.get(7)?).unwrap_or_default(),
        inputs: decode(r.get(8)?).unwrap_or_default(),
        outputs: r.get::<_, Option<Vec<u8>>>(9)?.and_then(decode),
        error: r.get::<_, Option<Vec<u8>>>(10)?.and_then(decode),
        abort_cause: r.get(11)?,
        created_at: r.get(12)?,
        started_at: r.get(13)?,
        finished_at: r.get(14)?,
        updated_at: r.get(15)?,
    })
}

fn execution_row(
    c: &rusqlite::Connection,
    id: &WorkflowExecutionIdentifier,
) -> Result<Option<ExecRow>, StoreError> {
    let sql = format!("SELECT {EXEC_COLUMNS} FROM executions WHERE org=?1 AND project=?2 AND domain=?3 AND name=?4");
    Ok(c.prepare_cached(&sql)?
        .query_row(
            params![id.org, id.project, id.domain, id.name],
            exec_from_row,
        )
        .optional()?)
}

impl ExecRow {
    // `computed_inputs` is deprecated, but FlyteRemote still reads it when present.
    #[allow(deprecated)]
    fn to_execution(&self) -> Execution {
        let output_result = if let Some(cause) = &self.abort_cause {
            Some(execution_closure::OutputResult::AbortMetadata(
                AbortMetadata {
                    cause: cause.clone(),
                    principal: "sandbox".into(),
                },
            ))
        } else {
            self.error
                .clone()
                .map(execution_closure::OutputResult::Error)
        };
        Execution {
            id: Some(self.id.clone()),
            spec: Some(self.spec.clone()),
            closure: Some(ExecutionClosure {
                computed_inputs: Some(self.inputs.clone()),
                phase: self.phase,
                started_at: self.started_at.map(timestamp),
                duration: duration(self.started_at, self.finished_at),
                created_at: Some(timestamp(self.created_at)),
                updated_at: Some(timestamp(self.updated_at)),
                workflow_id: Some(self.workflow_id.clone()),
                output_result,
                ..Default::default()
            }),
        }
    }
}

const NODE_COLUMNS: &str =
    "node_id, spec_node_id, parent_node_id, kind, phase, inputs, outputs, error, created_at,
    started_at, finished_at, updated_at";

struct NodeRow {
    node_id: String,
    spec_node_id: String,
    kind: String,
    phase: i32,
    inputs: Option<LiteralMap>,
    outputs: Option<LiteralMap>,
    error: Option<ExecutionError>,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    updated_at: i64,
}

fn node_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NodeRow> {
    Ok(NodeRow {
        node_id: r.get(0)?,
        spec_node_id: r.get(1)?,
        kind: r.get(3)?,
        phase: r.get(4)?,
        inputs: r.get::<_, Option<Vec<u8>>>(5)?.and_then(decode),
        outputs: r.get::<_, Option<Vec<u8>>>(6)?.and_then(decode),
        error: r.get::<_, Option<Vec<u8>>>(7)?.and_then(decode),
        created_at: r.get(8)?,
        started_at: r.get(9)?,
        finished_at: r.get(10)?,
        updated_at: r.get(11)?,
    })
}

impl NodeRow {
    fn to_node_execution(&self, exec: &WorkflowExecutionIdentifier) -> NodeExecution {
        let is_parent = matches!(self.kind.as_str(), "workflow" | "launch_plan" | "branch");
        NodeExecution {
            id: Some(NodeExecutionIdentifier {
                node_id: self.node_id.clone(),
                execution_id: Some(exec.clone()),
            }),
            input_uri: String::new(),
            closure: Some(NodeExecutionClosure {
                phase: self.phase,
                started_at: self.started_at.map(timestamp),
                duration: duration(self.started_at, self.finished_at),
                created_at: Some(timestamp(self.created_at)),
                updated_at: Some(timestamp(self.updated_at)),
                output_result: self
                    .error
                    .clone()
                    .map(node_execution_closure::OutputResult::Error),
                ..Default::default()
            }),
            metadata: Some(NodeExecutionMetaData {
                spec_node_id: self.spec_node_id.clone(),
                is_parent_node: is_parent,
                ..Default::default()
            }),
        }
    }
}

struct TaskRow {
    retry_attempt: u32,
    task_id: Identifier,
    phase: i32,
    outputs: Option<LiteralMap>,
    error: Option<ExecutionError>,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    updated_at: i64,
}

struct ChannelSink(tokio::sync::mpsc::UnboundedSender<Event>);

impl EventSink for ChannelSink {
    fn emit(&self, event: Event) {
        let _ = self.0.send(event);
    }
}

fn node_terminal(p: NodePhase) -> bool {
    matches!(
        p,
        NodePhase::Succeeded
            | NodePhase::Failed
            | NodePhase::Aborted
            | NodePhase::Skipped
            | NodePhase::TimedOut
    )
}

fn task_terminal(p: TaskPhase) -> bool {
    matches!(
        p,
        TaskPhase::Succeeded | TaskPhase::Failed | TaskPhase::Aborted | TaskPhase::RetryableFailed
    )
}

fn persist_events(store: &Store, seq: i64, events: &[Event]) -> Result<(), StoreError> {
    store.write(|tx| {
        for e in events {
            match e {
                Event::Node(n) => {
                    let started = (n.phase == NodePhase::Running).then_some(n.at);
                    let finished = node_terminal(n.phase).then_some(n.at);
                    tx.prepare_cached(
                        "INSERT INTO node_executions (execution_seq, node_id, spec_node_id, parent_node_id, kind, phase,
                         inputs, outputs, error, created_at, started_at, finished_at, updated_at, seq)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?10,
                                 (SELECT COUNT(*) FROM node_executions WHERE execution_seq=?1))
                         ON CONFLICT (execution_seq, node_id) DO UPDATE SET
                           phase=excluded.phase,
                           inputs=COALESCE(excluded.inputs, inputs),
                           outputs=COALESCE(excluded.outputs, outputs),
                           error=COALESCE(excluded.error, error),
                           started_at=COALESCE(started_at, excluded.started_at),
                           finished_at=COALESCE(excluded.finished_at, finished_at),
                           updated_at=excluded.updated_at",
                    )?
                    .execute(params![
                        seq,
                        n.node_id,
                        n.spec_node_id,
                        n.parent_node_id.clone().unwrap_or_default(),
                        n.kind,
                        n.phase as i32,
                        n.inputs.as_ref().map(Message::encode_to_vec),
                        n.outputs.as_ref().map(Message::encode_to_vec),
                        n.error.as_ref().map(Message::encode_to_vec),
                        n.at,
                        started,
                        finished
                    ])?;
                }
                Event::Task(t) => {
                    let started = (t.phase == TaskPhase::Running).then_some(t.at);
                    let finished = task_terminal(t.phase).then_some(t.at);
                    tx.prepare_cached(
                        "INSERT INTO task_executions (execution_seq, node_id, retry_attempt, task_id, phase, log_path,
                         outputs, error, created_at, started_at, finished_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?9)
                         ON CONFLICT (execution_seq, node_id, retry_attempt) DO UPDATE SET
                           phase=excluded.phase,
                           outputs=COALESCE(excluded.outputs, outputs),
                           error=COALESCE(excluded.error, error),
                           started_at=COALESCE(started_at, excluded.started_at),
                           finished_at=COALESCE(excluded.finished_at, finished_at),
                           updated_at=excluded.updated_at",
                    )?
                    .execute(params![
                        seq,
                        t.attempt.node_id,
                        t.attempt.retry_attempt,
                        t.task_id.clone().unwrap_or_default().encode_to_vec(),
                        t.phase as i32,
                        t.log.as_ref().map(|p| p.display().to_string()),
                        t.outputs.as_ref().map(Message::encode_to_vec),
                        t.error.as_ref().map(Message::encode_to_vec),
                        t.at,
                        started,
                        finished
                    ])?;
                }
            }
        }
        Ok(())
    })
}

fn finish(
    store: &Store,
    seq: i64,
    outcome: &ExecutionOutcome,
    abort_cause: Option<String>,
) -> Result<(), StoreError> {
    let now = executor::now_nanos();
    let (phase, outputs, error, cause) = match outcome {
        ExecutionOutcome::Succeeded(o) => (WfPhase::Succeeded, Some(o.encode_to_vec()), None, None),
        ExecutionOutcome::Failed { node_id, error } => {
            let mut e = error.clone();
            if e.code.is_empty() {
                e.code = "NodeFailed".into();
            }
            // Name the node like flytepropeller does ("[n0] ..."), keeping the task's message (its traceback).
            e.message = format!("[{node_id}] {}", e.message);
            (WfPhase::Failed, None, Some(e.encode_to_vec()), None)
        }
        ExecutionOutcome::Aborted => (
            WfPhase::Aborted,
            None,
            None,
            Some(abort_cause.unwrap_or_else(|| "terminated".into())),
        ),
    };
    store.write(|tx| {
        tx.prepare_cached(
            "UPDATE executions SET phase=?1, outputs=?2, error=?3, abort_cause=?4, finished_at=?5, updated_at=?5,
             started_at=COALESCE(started_at, ?5) WHERE seq=?6",
        )?
        .execute(params![phase as i32, outputs, error, cause, now, seq])?;
        Ok(())
    })
}

/// Executions (and their nodes and attempts) a previous process left unfinished become FAILED.
fn mark_interrupted(store: &Store) -> Result<usize, StoreError> {
    let error = ExecutionError {
        code: "SandboxRestarted".into(),
        message: RESTARTED.into(),
        kind: ErrorKind::System as i32,
        ..Default::default()
    }
    .encode_to_vec();
    store.write(|tx| {
        let now = executor::now_nanos();
        let n = tx
            .prepare_cached(
                "UPDATE executions SET phase=?1, error=?2, finished_at=?3, updated_at=?3,
                 started_at=COALESCE(started_at, ?3) WHERE phase IN (?4, ?5)",
            )?
            .execute(params![WfPhase::Failed as i32, error, now, WfPhase::Queued as i32, WfPhase::Running as i32])?;
        tx.prepare_cached(
            "UPDATE node_executions SET phase=?1, error=COALESCE(error, ?2), finished_at=?3, updated_at=?3
             WHERE phase IN (?4, ?5)",
        )?
        .execute(params![NodePhase::Failed as i32, error, now, NodePhase::Queued as i32, NodePhase::Running as i32])?;
        tx.prepare_cached(
            "UPDATE task_executions SET phase=?1, error=COALESCE(error, ?2), finished_at=?3, updated_at=?3
             WHERE phase IN (?4, ?5)",
        )?
        .execute(params![TaskPhase::Failed as i32, error, now, TaskPhase::Queued as i32, TaskPhase::Running as i32])?;
        Ok(n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_look_like_flyteadmins() {
        for _ in 0..100 {
            let n = generate_name();
            assert_eq!(n.len(), 20);
            assert!(n.starts_with(|c: char| c.is_ascii_lowercase()));
            assert!(validate_name(&n).is_ok());
        }
        assert!(validate_name("Bad_Name").is_err());
    }

    #[test]
    fn inputs_merge_fixed_defaults_and_given() {
        use crate::executor::bindings::primitive_literal;
        use crate::idl::flyteidl::core::primitive::Value::Integer;
        let lit = |i| primitive_literal(Integer(i));
        let defaults: BTreeMap<String, Option<core::Literal>> = [
            ("a".to_string(), Some(lit(1))),
            ("b".to_string(), None),
            ("c".to_string(), None),
        ]
        .into();
        let given = LiteralMap {
            literals: [("b".to_string(), lit(2))].into(),
        };
        let fixed = LiteralMap {
            literals: [("c".to_string(), lit(3))].into(),
        };
        let out = check_inputs(&[], &defaults, &given, &fixed).unwrap();
        assert_eq!(out.literals.len(), 3);
        let e = check_inputs(&[], &defaults, &LiteralMap::default(), &fixed).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(
            e.message().contains("missing required inputs: `b`"),
            "{}",
            e.message()
        );
        let e = check_inputs(
            &[],
            &defaults,
            &LiteralMap {
                literals: [("z".to_string(), lit(0))].into(),
            },
            &fixed,
        )
        .unwrap_err();
        assert!(
            e.message().contains("unknown inputs: `z`"),
            "{}",
            e.message()
        );
    }
}
