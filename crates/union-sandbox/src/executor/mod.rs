//! Workflow execution: walks a compiled workflow the way flytepropeller does, and hands every task
//! attempt to a [`TaskRunner`] (in the sandbox, [`docker::DockerRunner`]: one container per attempt).
//!
//! What the engine ([`Executor`]) does:
//! - nodes run in dependency order (`upstream_node_ids` plus every node a binding reads), independent
//!   nodes in parallel; the number of task attempts running at once is capped by a semaphore
//!   ([`ExecutorConfig::max_parallelism`]), subworkflows and branches never hold a permit;
//! - node inputs are resolved from their `Binding`s: promises (with attribute paths into maps and
//!   lists), scalars, collections, maps, and the workflow inputs (`start-node`); a binding with
//!   `union` info wraps its value in a union literal, as flytepropeller does;
//! - task nodes retry up to `TaskMetadata.retries` (or the node's override) times when an attempt
//!   fails recoverably, and an attempt longer than `TaskMetadata.timeout` is cancelled and fails
//!   recoverably; `interruptible` is ignored;
//! - subworkflow nodes run their template inline; launch plan nodes start a child execution
//!   through the [`LaunchPlanResolver`], as flytepropeller does (or run inline when the resolver
//!   keeps no executions);
//! - branch nodes evaluate their `BooleanExpression`s on primitives (ints, floats, strings,
//!   booleans, datetimes, durations) and `None`, then run the chosen node;
//! - array nodes run one sub-node per element (`engine::array`), a dynamic task's `futures.pb`
//!   runs as the node's children (`engine::dynamic`), gate nodes sleep or wait for a signal from a
//!   [`SignalSource`] (`engine::gate`);
//! - the first failing node fails the workflow and aborts the nodes still running (flytekit's
//!   default `FAIL_IMMEDIATELY`), or, under `FAIL_AFTER_EXECUTABLE_NODES_COMPLETE`, only the
//!   nodes that depend on it; then the workflow's `on_failure` node runs.
//!
//! Progress is reported as [`Event`]s through an [`EventSink`]; the engine never prints.

mod attempt;
pub mod bindings;
pub mod docker;
mod engine;
pub mod local_uris;
pub mod secrets;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use futures_util::future::BoxFuture;
use tokio::sync::Notify;

use union_idl::flyteidl::core::{
    self, execution_error::ErrorKind, CompiledWorkflowClosure, ExecutionError, Identifier,
    LiteralMap, TaskTemplate, WorkflowTemplate,
};

pub use engine::{Executor, ExecutorConfig};

/// Node execution phases (flyteidl `core.NodeExecution.Phase`).
pub type NodePhase = core::node_execution::Phase;
/// Task execution phases (flyteidl `core.TaskExecution.Phase`).
pub type TaskPhase = core::task_execution::Phase;

/// Version-independent identity of a task, subworkflow or launch plan: (org, project, domain, name, version).
pub type EntityRef = (String, String, String, String, String);

/// The identity of `id`, ignoring its resource type.
pub fn entity_ref(id: &Identifier) -> EntityRef {
    (
        id.org.clone(),
        id.project.clone(),
        id.domain.clone(),
        id.name.clone(),
        id.version.clone(),
    )
}

/// A readable id for messages: "`name` (version `v`)".
pub fn describe_id(id: &Identifier) -> String {
    format!(
        "`{}` (project `{}`, domain `{}`, version `{}`)",
        id.name, id.project, id.domain, id.version
    )
}

/// Everything an execution needs: the workflow to run, its subworkflows and its tasks.
#[derive(Debug, Clone, Default)]
pub struct WorkflowClosure {
    /// The workflow to run.
    pub primary: WorkflowTemplate,
    /// Subworkflows by identity.
    pub sub_workflows: HashMap<EntityRef, WorkflowTemplate>,
    /// Task templates by identity.
    pub tasks: HashMap<EntityRef, Arc<TaskTemplate>>,
}

impl WorkflowClosure {
    /// From a compiled closure (what flyteadmin stores for a workflow).
    pub fn from_compiled(compiled: CompiledWorkflowClosure) -> Result<Self, ExecutorError> {
        let primary = compiled.primary.and_then(|p| p.template).ok_or_else(|| {
            ExecutorError::Invalid("the compiled workflow has no primary template".into())
        })?;
        let mut closure = WorkflowClosure {
            primary,
            ..Default::default()
        };
        for sub in compiled
            .sub_workflows
            .into_iter()
            .filter_map(|s| s.template)
        {
            if let Some(id) = &sub.id {
                closure.sub_workflows.insert(entity_ref(id), sub);
            }
        }
        for task in compiled.tasks.into_iter().filter_map(|t| t.template) {
            if let Some(id) = &task.id {
                closure.tasks.insert(entity_ref(id), Arc::new(task));
            }
        }
        Ok(closure)
    }

    /// A one-node workflow running `task` (an execution created with a task id), named after it.
    pub fn single_task(task: TaskTemplate) -> Self {
        engine::single_task_closure(task)
    }
}

/// Errors that stop an execution before any node runs (a malformed closure).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExecutorError {
    /// The closure cannot be executed as given.
    #[error("invalid workflow: {0}")]
    Invalid(String),
}

/// The execution a task attempt belongs to, and where it is in it.
#[derive(Debug, Clone)]
pub struct AttemptId {
    /// The workflow execution (project, domain, name).
    pub execution: core::WorkflowExecutionIdentifier,
    /// The node's unique id in the execution (`n0`, or `n1-0-n0` inside subworkflow node `n1`).
    pub node_id: String,
    /// 0 for the first attempt.
    pub retry_attempt: u32,
}

/// One task attempt to run.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    /// Which attempt.
    pub attempt: AttemptId,
    /// The task to run.
    pub task: Arc<TaskTemplate>,
    /// Its resolved inputs.
    pub inputs: LiteralMap,
    /// Environment variables the engine adds to the task's own (an array element's index).
    pub env: Vec<(String, String)>,
}

/// Why a task attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFailure {
    /// Short code (flytekit's error code, `OOMKilled`, `ErrImagePull`, `Timeout`, ...).
    pub code: String,
    /// The message shown to the user (for user errors, flytekit's traceback).
    pub message: String,
    /// Whose fault: USER or SYSTEM.
    pub kind: ErrorKind,
    /// Whether another attempt may succeed (retries are spent only then).
    pub recoverable: bool,
}

impl TaskFailure {
    /// A non-recoverable system failure.
    pub fn system(code: &str, message: impl Into<String>) -> Self {
        TaskFailure {
            code: code.into(),
            message: message.into(),
            kind: ErrorKind::System,
            recoverable: false,
        }
    }

    /// A non-recoverable user failure.
    pub fn user(code: &str, message: impl Into<String>) -> Self {
        TaskFailure {
            code: code.into(),
            message: message.into(),
            kind: ErrorKind::User,
            recoverable: false,
        }
    }

    /// As flyteidl's `ExecutionError`.
    pub fn to_execution_error(&self) -> ExecutionError {
        ExecutionError {
            code: self.code.clone(),
            message: self.message.clone(),
            kind: self.kind as i32,
            ..Default::default()
        }
    }
}

/// How a task attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutcome {
    /// The task's outputs.
    Succeeded(LiteralMap),
    /// The task failed.
    Failed(TaskFailure),
    /// The attempt was cancelled (termination or timeout) and cleaned up.
    Aborted,
    /// A dynamic task (`@dynamic`) described the workflow to run next (its `futures.pb`).
    Dynamic(Box<core::DynamicJobSpec>),
}

/// Runs one task attempt to completion. Must return promptly with [`TaskOutcome::Aborted`] after
/// `cancel` fires, having stopped whatever it started.
pub trait TaskRunner: Send + Sync {
    /// Run `request`; `cancel` fires on termination or timeout.
    fn run<'a>(
        &'a self,
        request: &'a TaskRequest,
        cancel: &'a CancelToken,
    ) -> BoxFuture<'a, TaskOutcome>;

    /// Where the attempt's log is written (reported in task events), if anywhere.
    fn log_path(&self, _attempt: &AttemptId) -> Option<PathBuf> {
        None
    }
}

/// A launch plan referenced by a launch plan node, resolved for execution.
#[derive(Debug, Clone)]
pub struct ResolvedLaunchPlan {
    /// Its workflow.
    pub closure: Arc<WorkflowClosure>,
    /// Fixed inputs and defaults, overridden by the node's inputs.
    pub default_inputs: LiteralMap,
}

/// A launch plan started as a child execution of a launch plan node.
pub struct ChildExecution {
    /// The child execution's id.
    pub execution: core::WorkflowExecutionIdentifier,
    /// Terminates it (when the parent is aborted).
    pub cancel: CancelToken,
    /// Resolves when it ends.
    pub done: BoxFuture<'static, ExecutionOutcome>,
}

/// Looks up launch plans referenced by launch plan nodes, and starts them as child executions
/// where the backend keeps executions.
pub trait LaunchPlanResolver: Send + Sync {
    /// The launch plan `id`, or a message saying why not.
    fn resolve<'a>(
        &'a self,
        id: &'a Identifier,
    ) -> BoxFuture<'a, Result<ResolvedLaunchPlan, String>>;

    /// Start launch plan `id` as a child execution of node `node_id` of `parent`, with the node's
    /// `inputs` (the launch plan's fixed and default inputs complete them) and the parent's
    /// `options` (a child inherits `--overwrite-cache`). `None` when this
    /// resolver has no executions to create: the engine then runs the launch plan inline.
    fn start_child<'a>(
        &'a self,
        _parent: &'a core::WorkflowExecutionIdentifier,
        _node_id: &'a str,
        _id: &'a Identifier,
        _inputs: LiteralMap,
        _options: &'a RunOptions,
    ) -> Option<BoxFuture<'a, Result<ChildExecution, String>>> {
        None
    }
}

/// A resolver for executions without launch plan nodes: every lookup fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLaunchPlans;

impl LaunchPlanResolver for NoLaunchPlans {
    fn resolve<'a>(
        &'a self,
        id: &'a Identifier,
    ) -> BoxFuture<'a, Result<ResolvedLaunchPlan, String>> {
        let msg = format!("launch plan {} cannot be resolved here", describe_id(id));
        Box::pin(async move { Err(msg) })
    }
}

/// Where gate nodes wait for approvals and inputs (in the sandbox, its SignalService).
pub trait SignalSource: Send + Sync {
    /// Register signal `signal_id` of `execution` with its type (flyteadmin's GetOrCreateSignal)
    /// and resolve once a value has been set, or with a message saying why it never will.
    fn wait<'a>(
        &'a self,
        execution: &'a core::WorkflowExecutionIdentifier,
        signal_id: &'a str,
        r#type: &'a core::LiteralType,
    ) -> BoxFuture<'a, Result<core::Literal, String>>;
}

/// For executors without a signal service: every wait fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSignals;

impl SignalSource for NoSignals {
    fn wait<'a>(
        &'a self,
        _execution: &'a core::WorkflowExecutionIdentifier,
        signal_id: &'a str,
        _type: &'a core::LiteralType,
    ) -> BoxFuture<'a, Result<core::Literal, String>> {
        let msg =
            format!("signal `{signal_id}` cannot be received: this executor has no signal service");
        Box::pin(async move { Err(msg) })
    }
}

/// A node's progress.
#[derive(Debug, Clone)]
pub struct NodeEvent {
    /// Unique node id in the execution.
    pub node_id: String,
    /// The node's id in its workflow template.
    pub spec_node_id: String,
    /// Unique id of the enclosing subworkflow/launch plan/branch node; None at the top level.
    pub parent_node_id: Option<String>,
    /// New phase.
    pub phase: NodePhase,
    /// When (unix nanoseconds).
    pub at: i64,
    /// Resolved inputs (on RUNNING).
    pub inputs: Option<LiteralMap>,
    /// Outputs (on SUCCEEDED).
    pub outputs: Option<LiteralMap>,
    /// Why it failed (on FAILED/ABORTED/TIMED_OUT).
    pub error: Option<ExecutionError>,
    /// Whether the node is a task, workflow or branch (for display), e.g. "task".
    pub kind: &'static str,
    /// The task or workflow it runs, if any.
    pub target: Option<Identifier>,
    /// The child execution a launch plan node started.
    pub child_execution: Option<core::WorkflowExecutionIdentifier>,
    /// A cached task node's cache lookup or write.
    pub cache_status: Option<core::CatalogCacheStatus>,
    /// The workflow a dynamic node runs as its children, compiled (as flytepropeller reports it).
    pub dynamic_workflow: Option<Box<core::CompiledWorkflowClosure>>,
}

/// What identifies a task's cached outputs, as DataCatalog keys them: the task (project,
/// domain, name), its `cache_version`, its interface, and a hash of its inputs (less
/// `cache_ignore_input_vars`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The task's project.
    pub project: String,
    /// The task's domain.
    pub domain: String,
    /// The task's name.
    pub task: String,
    /// `cache_version`.
    pub version: String,
    /// Hash of the task's interface (a changed signature misses).
    pub signature: String,
    /// Hash of the inputs.
    pub inputs: String,
}

/// Where cached task outputs are kept (in the sandbox, its database).
pub trait TaskCache: Send + Sync {
    /// The outputs cached under `key`, if any.
    fn get<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, Option<LiteralMap>>;
    /// Cache `outputs` under `key` (replacing what was there), produced by `producer`.
    fn put<'a>(
        &'a self,
        key: &'a CacheKey,
        outputs: &'a LiteralMap,
        producer: &'a AttemptId,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// For executors without a cache: every lookup misses and nothing is kept.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCache;

impl TaskCache for NoCache {
    fn get<'a>(&'a self, _key: &'a CacheKey) -> BoxFuture<'a, Option<LiteralMap>> {
        Box::pin(async { None })
    }
    fn put<'a>(
        &'a self,
        _key: &'a CacheKey,
        _outputs: &'a LiteralMap,
        _producer: &'a AttemptId,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// Per-execution settings (from the execution's spec).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run cached tasks again and replace their cached outputs (`--overwrite-cache`).
    pub overwrite_cache: bool,
}

/// A task attempt's progress.
#[derive(Debug, Clone)]
pub struct TaskEvent {
    /// Which attempt.
    pub attempt: AttemptId,
    /// The task.
    pub task_id: Option<Identifier>,
    /// New phase.
    pub phase: TaskPhase,
    /// When (unix nanoseconds).
    pub at: i64,
    /// The attempt's log file, if the runner writes one.
    pub log: Option<PathBuf>,
    /// Outputs (on SUCCEEDED).
    pub outputs: Option<LiteralMap>,
    /// Why it failed.
    pub error: Option<ExecutionError>,
}

/// Progress of an execution.
#[derive(Debug, Clone)]
pub enum Event {
    /// A node changed phase.
    Node(NodeEvent),
    /// A task attempt changed phase.
    Task(TaskEvent),
}

/// Receives events; must not block for long (queue them, persist elsewhere).
pub trait EventSink: Send + Sync {
    /// Record one event.
    fn emit(&self, event: Event);
}

impl<F: Fn(Event) + Send + Sync> EventSink for F {
    fn emit(&self, event: Event) {
        self(event)
    }
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutionOutcome {
    /// The workflow's outputs.
    Succeeded(LiteralMap),
    /// The failing node's error (`ExecutionError.message` carries the user's traceback).
    Failed {
        /// Unique id of the node that failed.
        node_id: String,
        /// Its error.
        error: ExecutionError,
    },
    /// Cancelled through the [`CancelToken`].
    Aborted,
}

/// A cancellation signal shared by an execution and everything it runs; children are cancelled
/// with their parent but can also be cancelled alone (an attempt's timeout).
#[derive(Debug, Clone)]
pub struct CancelToken {
    inner: Arc<CancelInner>,
}

#[derive(Debug, Default)]
struct CancelInner {
    cancelled: AtomicBool,
    notify: Notify,
    children: Mutex<Vec<Weak<CancelInner>>>,
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl CancelToken {
    /// A new, uncancelled token.
    pub fn new() -> Self {
        CancelToken {
            inner: Arc::new(CancelInner::default()),
        }
    }

    /// A token cancelled when this one is (or on its own).
    pub fn child(&self) -> CancelToken {
        let child = CancelToken::new();
        if let Ok(mut children) = self.inner.children.lock() {
            children.retain(|c| c.strong_count() > 0);
            children.push(Arc::downgrade(&child.inner));
        }
        // Checked after registering, so a concurrent cancel() is never missed.
        if self.is_cancelled() {
            child.cancel();
        }
        child
    }

    /// Cancel this token and its children.
    pub fn cancel(&self) {
        cancel_inner(&self.inner);
    }

    /// Whether [`cancel`](Self::cancel) was called (on this token or an ancestor).
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Resolves once cancelled.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

fn cancel_inner(inner: &Arc<CancelInner>) {
    if inner.cancelled.swap(true, Ordering::SeqCst) {
        return;
    }
    inner.notify.notify_waiters();
    let children: Vec<Arc<CancelInner>> = match inner.children.lock() {
        Ok(c) => c.iter().filter_map(Weak::upgrade).collect(),
        Err(_) => Vec::new(),
    };
    for c in children {
        cancel_inner(&c);
    }
}

/// Current time in unix nanoseconds.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
