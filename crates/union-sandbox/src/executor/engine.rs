//! The scheduler: runs a workflow template's nodes in dependency order, in parallel.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::Semaphore;

use super::bindings::{self, Scope, START_NODE};
use super::{
    describe_id, entity_ref, now_nanos, AttemptId, CancelToken, Event, EventSink, ExecutionOutcome,
    LaunchPlanResolver, NodeEvent, NodePhase, TaskEvent, TaskFailure, TaskOutcome, TaskPhase,
    TaskRequest, TaskRunner, WorkflowClosure,
};
use union_idl::flyteidl::core::{
    self, binding_data, execution_error::ErrorKind, if_else_block, node::Target, task_node,
    workflow_node, Binding, BindingData, ExecutionError, Identifier, LiteralMap, Node,
    OutputReference, TaskTemplate, WorkflowTemplate,
};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// Task attempts (containers) running at once, across all executions.
    pub max_parallelism: usize,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            max_parallelism: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        }
    }
}

/// Runs executions; cheap to clone, shares its parallelism limit between executions.
#[derive(Clone)]
pub struct Executor {
    runner: Arc<dyn TaskRunner>,
    resolver: Arc<dyn LaunchPlanResolver>,
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("available_permits", &self.permits.available_permits())
            .finish()
    }
}

/// Why a node (and so its workflow) did not succeed.
#[derive(Debug, Clone)]
enum NodeFailure {
    Failed {
        node_id: String,
        error: ExecutionError,
    },
    Aborted,
}

/// Per-execution state shared by every node future.
#[derive(Clone)]
struct Ctx {
    exec: Executor,
    execution: core::WorkflowExecutionIdentifier,
    sink: Arc<dyn EventSink>,
}

impl Executor {
    /// An executor running tasks with `runner` and resolving launch plan nodes with `resolver`.
    pub fn new(
        config: ExecutorConfig,
        runner: Arc<dyn TaskRunner>,
        resolver: Arc<dyn LaunchPlanResolver>,
    ) -> Self {
        Executor {
            runner,
            resolver,
            permits: Arc::new(Semaphore::new(config.max_parallelism.max(1))),
        }
    }

    /// Run `closure.primary` with `inputs` until it finishes or `cancel` fires; progress goes to `sink`.
    pub async fn run(
        &self,
        execution: core::WorkflowExecutionIdentifier,
        closure: Arc<WorkflowClosure>,
        inputs: LiteralMap,
        sink: Arc<dyn EventSink>,
        cancel: CancelToken,
    ) -> ExecutionOutcome {
        let ctx = Ctx {
            exec: self.clone(),
            execution,
            sink,
        };
        let template = Arc::new(closure.primary.clone());
        match run_workflow(ctx, closure, template, inputs, None, cancel).await {
            Ok(outputs) => ExecutionOutcome::Succeeded(outputs),
            Err(NodeFailure::Failed { node_id, error }) => {
                ExecutionOutcome::Failed { node_id, error }
            }
            Err(NodeFailure::Aborted) => ExecutionOutcome::Aborted,
        }
    }
}

fn failed(node_id: &str, code: &str, message: impl Into<String>, kind: ErrorKind) -> NodeFailure {
    NodeFailure::Failed {
        node_id: node_id.to_string(),
        error: ExecutionError {
            code: code.into(),
            message: message.into(),
            kind: kind as i32,
            ..Default::default()
        },
    }
}

fn unique_id(parent: Option<&str>, id: &str) -> String {
    match parent {
        // flytepropeller's child node ids: <parent>-<parent retry attempt>-<child>.
        Some(p) => format!("{p}-0-{id}"),
        None => id.to_string(),
    }
}

fn promises(data: &BindingData, out: &mut BTreeSet<String>) {
    match &data.value {
        Some(binding_data::Value::Promise(p)) => {
            out.insert(p.node_id.clone());
        }
        Some(binding_data::Value::Collection(c)) => {
            c.bindings.iter().for_each(|d| promises(d, out))
        }
        Some(binding_data::Value::Map(m)) => m.bindings.values().for_each(|d| promises(d, out)),
        _ => {}
    }
}

/// Each node's dependencies inside its template (start-node excluded).
fn dependencies(template: &WorkflowTemplate) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    let ids: BTreeSet<&str> = template.nodes.iter().map(|n| n.id.as_str()).collect();
    if ids.len() != template.nodes.len() {
        return Err("two nodes share an id".into());
    }
    let mut deps = BTreeMap::new();
    for node in &template.nodes {
        let mut d: BTreeSet<String> = node.upstream_node_ids.iter().cloned().collect();
        for b in &node.inputs {
            if let Some(data) = &b.binding {
                promises(data, &mut d);
            }
        }
        d.remove(START_NODE);
        // flytekit's id for the workflow-input node (GLOBAL_INPUT_NODE_ID).
        d.remove("");
        d.remove(&node.id);
        if let Some(unknown) = d.iter().find(|id| !ids.contains(id.as_str())) {
            return Err(format!(
                "node `{}` depends on `{unknown}`, which is not a node of the workflow",
                node.id
            ));
        }
        deps.insert(node.id.clone(), d);
    }
    Ok(deps)
}

type NodeResult = (String, Result<LiteralMap, NodeFailure>);

/// Run one workflow template (the primary, a subworkflow or a launch plan's) to completion.
fn run_workflow(
    ctx: Ctx,
    closure: Arc<WorkflowClosure>,
    template: Arc<WorkflowTemplate>,
    inputs: LiteralMap,
    parent: Option<String>,
    cancel: CancelToken,
) -> BoxFuture<'static, Result<LiteralMap, NodeFailure>> {
    Box::pin(async move {
        let owner = parent.clone().unwrap_or_else(|| "end-node".to_string());
        let deps = dependencies(&template)
            .map_err(|e| failed(&owner, "InvalidWorkflow", e, ErrorKind::System))?;
        let nodes: HashMap<&str, &Node> =
            template.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
        let mut scope = Scope::new();
        scope.insert(START_NODE.to_string(), inputs);
        let mut pending: BTreeSet<String> = deps.keys().cloned().collect();
        let mut running: FuturesUnordered<BoxFuture<'static, NodeResult>> = FuturesUnordered::new();
        let wf_cancel = cancel.child();
        let mut failure: Option<NodeFailure> = None;

        loop {
            if failure.is_none() && cancel.is_cancelled() {
                failure = Some(NodeFailure::Aborted);
                wf_cancel.cancel();
            }
            if failure.is_none() {
                let ready: Vec<String> = pending
                    .iter()
                    .filter(|id| deps[*id].iter().all(|d| scope.contains_key(d)))
                    .cloned()
                    .collect();
                for id in ready {
                    pending.remove(&id);
                    let Some(node) = nodes.get(id.as_str()) else {
                        continue;
                    };
                    let uid = unique_id(parent.as_deref(), &id);
                    match bindings::resolve_bindings(&node.inputs, &scope) {
                        Ok(node_inputs) => {
                            let branch_scope = matches!(node.target, Some(Target::BranchNode(_)))
                                .then(|| scope.clone());
                            let fut = execute_node(
                                ctx.clone(),
                                closure.clone(),
                                (*node).clone(),
                                uid.clone(),
                                parent.clone(),
                                node_inputs,
                                branch_scope,
                                wf_cancel.clone(),
                            );
                            running.push(Box::pin(async move { (id, fut.await) }));
                        }
                        Err(e) => {
                            let f = failed(&uid, "BindingResolutionFailure", e, ErrorKind::User);
                            emit_node(
                                &ctx,
                                node,
                                &uid,
                                parent.as_deref(),
                                NodePhase::Failed,
                                None,
                                None,
                                error_of(&f),
                            );
                            failure = Some(f);
                            wf_cancel.cancel();
                            break;
                        }
                    }
                }
            }
            let Some((id, result)) = running.next().await else {
                break;
            };
            match result {
                Ok(outputs) => {
                    scope.insert(id, outputs);
                }
                Err(f) => {
                    // The first failure wins; the nodes still running are aborted.
                    if failure.is_none() {
                        failure = Some(f);
                    }
                    wf_cancel.cancel();
                }
            }
        }
        if let Some(f) = failure {
            return Err(f);
        }
        if !pending.is_empty() {
            let ids: Vec<&str> = pending.iter().map(String::as_str).collect();
            return Err(failed(
                &owner,
                "InvalidWorkflow",
                format!("nodes {ids:?} depend on each other in a cycle"),
                ErrorKind::System,
            ));
        }
        bindings::resolve_bindings(&template.outputs, &scope).map_err(|e| {
            failed(
                &owner,
                "OutputsNotFound",
                format!("workflow outputs: {e}"),
                ErrorKind::User,
            )
        })
    })
}

fn error_of(f: &NodeFailure) -> Option<ExecutionError> {
    match f {
        NodeFailure::Failed { error, .. } => Some(error.clone()),
        NodeFailure::Aborted => None,
    }
}

fn node_kind(node: &Node) -> &'static str {
    match &node.target {
        Some(Target::TaskNode(_)) => "task",
        Some(Target::WorkflowNode(w)) => match w.reference {
            Some(workflow_node::Reference::LaunchplanRef(_)) => "launch_plan",
            _ => "workflow",
        },
        Some(Target::BranchNode(_)) => "branch",
        Some(Target::GateNode(_)) => "gate",
        Some(Target::ArrayNode(_)) => "array",
        None => "unknown",
    }
}

fn node_target(node: &Node) -> Option<Identifier> {
    match &node.target {
        Some(Target::TaskNode(t)) => match &t.reference {
            Some(task_node::Reference::ReferenceId(id)) => Some(id.clone()),
            None => None,
        },
        Some(Target::WorkflowNode(w)) => match &w.reference {
            Some(workflow_node::Reference::LaunchplanRef(id))
            | Some(workflow_node::Reference::SubWorkflowRef(id)) => Some(id.clone()),
            None => None,
        },
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn emit_node(
    ctx: &Ctx,
    node: &Node,
    uid: &str,
    parent: Option<&str>,
    phase: NodePhase,
    inputs: Option<LiteralMap>,
    outputs: Option<LiteralMap>,
    error: Option<ExecutionError>,
) {
    ctx.sink.emit(Event::Node(NodeEvent {
        node_id: uid.to_string(),
        spec_node_id: node.id.clone(),
        parent_node_id: parent.map(str::to_string),
        phase,
        at: now_nanos(),
        inputs,
        outputs,
        error,
        kind: node_kind(node),
        target: node_target(node),
    }));
}

/// Run one node with its resolved inputs, reporting its phases.
#[allow(clippy::too_many_arguments)]
fn execute_node(
    ctx: Ctx,
    closure: Arc<WorkflowClosure>,
    node: Node,
    uid: String,
    parent: Option<String>,
    inputs: LiteralMap,
    scope: Option<Scope>,
    cancel: CancelToken,
) -> BoxFuture<'static, Result<LiteralMap, NodeFailure>> {
    Box::pin(async move {
        emit_node(
            &ctx,
            &node,
            &uid,
            parent.as_deref(),
            NodePhase::Queued,
            None,
            None,
            None,
        );
        let result = match &node.target {
            Some(Target::TaskNode(t)) => match &t.reference {
                Some(task_node::Reference::ReferenceId(id)) => {
                    match closure.tasks.get(&entity_ref(id)) {
                        Some(task) => {
                            run_task_node(
                                &ctx,
                                &node,
                                &uid,
                                parent.as_deref(),
                                task.clone(),
                                inputs,
                                &cancel,
                            )
                            .await
                        }
                        None => Err(failed(
                            &uid,
                            "TaskNotFound",
                            format!("task {} is not in the workflow's closure", describe_id(id)),
                            ErrorKind::System,
                        )),
                    }
                }
                None => Err(failed(
                    &uid,
                    "InvalidNode",
                    "task node without a task reference",
                    ErrorKind::System,
                )),
            },
            Some(Target::WorkflowNode(w)) => {
                emit_node(
                    &ctx,
                    &node,
                    &uid,
                    parent.as_deref(),
                    NodePhase::Running,
                    Some(inputs.clone()),
                    None,
                    None,
                );
                match &w.reference {
                    Some(workflow_node::Reference::SubWorkflowRef(id)) => {
                        match closure.sub_workflows.get(&entity_ref(id)) {
                            Some(sub) => {
                                let sub = Arc::new(sub.clone());
                                run_workflow(
                                    ctx.clone(),
                                    closure.clone(),
                                    sub,
                                    inputs,
                                    Some(uid.clone()),
                                    cancel.clone(),
                                )
                                .await
                            }
                            None => Err(failed(
                                &uid,
                                "WorkflowNotFound",
                                format!(
                                    "subworkflow {} is not in the workflow's closure",
                                    describe_id(id)
                                ),
                                ErrorKind::System,
                            )),
                        }
                    }
                    Some(workflow_node::Reference::LaunchplanRef(id)) => {
                        match ctx.exec.resolver.resolve(id).await {
                            Ok(lp) => {
                                let mut all = lp.default_inputs.clone();
                                all.literals.extend(inputs.literals);
                                let template = Arc::new(lp.closure.primary.clone());
                                run_workflow(
                                    ctx.clone(),
                                    lp.closure.clone(),
                                    template,
                                    all,
                                    Some(uid.clone()),
                                    cancel.clone(),
                                )
                                .await
                            }
                            Err(e) => Err(failed(&uid, "LaunchPlanNotFound", e, ErrorKind::System)),
                        }
                    }
                    None => Err(failed(
                        &uid,
                        "InvalidNode",
                        "workflow node without a reference",
                        ErrorKind::System,
                    )),
                }
            }
            Some(Target::BranchNode(b)) => {
                emit_node(
                    &ctx,
                    &node,
                    &uid,
                    parent.as_deref(),
                    NodePhase::Running,
                    Some(inputs.clone()),
                    None,
                    None,
                );
                run_branch(
                    &ctx,
                    &closure,
                    b,
                    &uid,
                    &inputs,
                    scope.unwrap_or_default(),
                    &cancel,
                )
                .await
            }
            Some(Target::GateNode(_)) => Err(failed(
                &uid,
                "NotSupported",
                "gate nodes (approve, signal, sleep) are not supported by the sandbox",
                ErrorKind::User,
            )),
            Some(Target::ArrayNode(_)) => Err(failed(
                &uid,
                "NotSupported",
                "array nodes (map tasks) are not supported by the sandbox",
                ErrorKind::User,
            )),
            None => Err(failed(
                &uid,
                "InvalidNode",
                "node without a target",
                ErrorKind::System,
            )),
        };
        match &result {
            Ok(outputs) => emit_node(
                &ctx,
                &node,
                &uid,
                parent.as_deref(),
                NodePhase::Succeeded,
                None,
                Some(outputs.clone()),
                None,
            ),
            Err(NodeFailure::Failed { error, .. }) => emit_node(
                &ctx,
                &node,
                &uid,
                parent.as_deref(),
                NodePhase::Failed,
                None,
                None,
                Some(error.clone()),
            ),
            Err(NodeFailure::Aborted) => emit_node(
                &ctx,
                &node,
                &uid,
                parent.as_deref(),
                NodePhase::Aborted,
                None,
                None,
                None,
            ),
        }
        result
    })
}

async fn run_branch(
    ctx: &Ctx,
    closure: &Arc<WorkflowClosure>,
    branch: &core::BranchNode,
    uid: &str,
    inputs: &LiteralMap,
    scope: Scope,
    cancel: &CancelToken,
) -> Result<LiteralMap, NodeFailure> {
    let if_else = branch.if_else.as_deref().ok_or_else(|| {
        failed(
            uid,
            "InvalidNode",
            "branch node without cases",
            ErrorKind::System,
        )
    })?;
    let mut chosen: Option<&Node> = None;
    for case in if_else
        .case
        .as_deref()
        .into_iter()
        .chain(if_else.other.iter())
    {
        let cond = case.condition.as_ref().ok_or_else(|| {
            failed(
                uid,
                "InvalidNode",
                "branch case without a condition",
                ErrorKind::System,
            )
        })?;
        let hit = bindings::evaluate(cond, inputs).map_err(|e| {
            failed(
                uid,
                "BranchEvaluationFailed",
                format!("cannot evaluate the condition: {e}"),
                ErrorKind::User,
            )
        })?;
        if hit {
            chosen = Some(case.then_node.as_deref().ok_or_else(|| {
                failed(
                    uid,
                    "InvalidNode",
                    "branch case without a node",
                    ErrorKind::System,
                )
            })?);
            break;
        }
    }
    let then = match (chosen, &if_else.default) {
        (Some(n), _) => n,
        (None, Some(if_else_block::Default::ElseNode(n))) => n.as_ref(),
        (None, Some(if_else_block::Default::Error(e))) => {
            return Err(failed(
                uid,
                "UserProvidedError",
                e.message.clone(),
                ErrorKind::User,
            ))
        }
        (None, None) => {
            return Err(failed(
                uid,
                "NoBranchTaken",
                "no branch condition matched and there is no else",
                ErrorKind::User,
            ))
        }
    };
    // The chosen node's bindings read the enclosing workflow's nodes.
    let then_inputs = bindings::resolve_bindings(&then.inputs, &scope)
        .map_err(|e| failed(uid, "BindingResolutionFailure", e, ErrorKind::User))?;
    let child = unique_id(Some(uid), &then.id);
    execute_node(
        ctx.clone(),
        closure.clone(),
        then.clone(),
        child,
        Some(uid.to_string()),
        then_inputs,
        Some(scope),
        cancel.clone(),
    )
    .await
}

fn duration_of(d: &prost_types::Duration) -> Option<Duration> {
    if d.seconds < 0 || d.nanos < 0 || (d.seconds == 0 && d.nanos == 0) {
        return None;
    }
    Some(Duration::new(d.seconds as u64, d.nanos as u32))
}

#[allow(clippy::too_many_arguments)]
async fn run_task_node(
    ctx: &Ctx,
    node: &Node,
    uid: &str,
    parent: Option<&str>,
    task: Arc<TaskTemplate>,
    inputs: LiteralMap,
    cancel: &CancelToken,
) -> Result<LiteralMap, NodeFailure> {
    let meta = task.metadata.as_ref();
    let node_meta = node.metadata.as_ref();
    let retries = node_meta
        .and_then(|m| m.retries.as_ref())
        .or_else(|| meta.and_then(|m| m.retries.as_ref()))
        .map(|r| r.retries)
        .unwrap_or(0);
    let timeout = node_meta
        .and_then(|m| m.timeout.as_ref())
        .or_else(|| meta.and_then(|m| m.timeout.as_ref()))
        .and_then(duration_of);
    let runner = ctx.exec.runner.clone();
    let mut announced = false;
    let mut attempt: u32 = 0;
    loop {
        let permit = tokio::select! {
            p = ctx.exec.permits.clone().acquire_owned() => p.map_err(|_| failed(uid, "Internal", "the executor is shut down", ErrorKind::System))?,
            _ = cancel.cancelled() => return Err(NodeFailure::Aborted),
        };
        if !announced {
            emit_node(
                ctx,
                node,
                uid,
                parent,
                NodePhase::Running,
                Some(inputs.clone()),
                None,
                None,
            );
            announced = true;
        }
        let request = TaskRequest {
            attempt: AttemptId {
                execution: ctx.execution.clone(),
                node_id: uid.to_string(),
                retry_attempt: attempt,
            },
            task: task.clone(),
            inputs: inputs.clone(),
        };
        let log = runner.log_path(&request.attempt);
        let task_event =
            |phase: TaskPhase, outputs: Option<LiteralMap>, error: Option<ExecutionError>| {
                ctx.sink.emit(Event::Task(TaskEvent {
                    attempt: request.attempt.clone(),
                    task_id: task.id.clone(),
                    phase,
                    at: now_nanos(),
                    log: log.clone(),
                    outputs,
                    error,
                }))
            };
        task_event(TaskPhase::Running, None, None);
        let attempt_cancel = cancel.child();
        let outcome = {
            let fut = runner.run(&request, &attempt_cancel);
            tokio::pin!(fut);
            match timeout {
                Some(limit) => tokio::select! {
                    o = &mut fut => o,
                    _ = tokio::time::sleep(limit) => {
                        attempt_cancel.cancel();
                        let _ = fut.await;
                        if cancel.is_cancelled() {
                            TaskOutcome::Aborted
                        } else {
                            TaskOutcome::Failed(TaskFailure {
                                code: "Timeout".into(),
                                message: format!("task timed out after {}", humantime(limit)),
                                kind: ErrorKind::User,
                                recoverable: true,
                            })
                        }
                    }
                },
                None => fut.await,
            }
        };
        drop(permit);
        match outcome {
            TaskOutcome::Succeeded(outputs) => {
                task_event(TaskPhase::Succeeded, Some(outputs.clone()), None);
                return Ok(outputs);
            }
            TaskOutcome::Failed(f) if cancel.is_cancelled() => {
                task_event(TaskPhase::Aborted, None, Some(f.to_execution_error()));
                return Err(NodeFailure::Aborted);
            }
            TaskOutcome::Failed(f) => {
                if f.recoverable && attempt < retries {
                    task_event(
                        TaskPhase::RetryableFailed,
                        None,
                        Some(f.to_execution_error()),
                    );
                    attempt += 1;
                    continue;
                }
                task_event(TaskPhase::Failed, None, Some(f.to_execution_error()));
                return Err(NodeFailure::Failed {
                    node_id: uid.to_string(),
                    error: f.to_execution_error(),
                });
            }
            TaskOutcome::Aborted => {
                task_event(TaskPhase::Aborted, None, None);
                return Err(NodeFailure::Aborted);
            }
        }
    }
}

fn humantime(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s}s")
    } else {
        format!("{}m{}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

/// A workflow of one node running `task`, with the task's interface (executions created by task id).
pub(super) fn single_task_closure(task: TaskTemplate) -> WorkflowClosure {
    let interface = task.interface.clone().unwrap_or_default();
    let promise = |node: &str, var: &str| BindingData {
        value: Some(binding_data::Value::Promise(OutputReference {
            node_id: node.into(),
            var: var.into(),
            attr_path: vec![],
        })),
        union: None,
    };
    let input_names: Vec<String> = interface
        .inputs
        .as_ref()
        .map(|v| v.variables.keys().cloned().collect())
        .unwrap_or_default();
    let output_names: Vec<String> = interface
        .outputs
        .as_ref()
        .map(|v| v.variables.keys().cloned().collect())
        .unwrap_or_default();
    let task_id = task.id.clone().unwrap_or_default();
    let node = Node {
        id: "n0".into(),
        metadata: Some(core::NodeMetadata {
            name: task_id.name.clone(),
            ..Default::default()
        }),
        inputs: input_names
            .iter()
            .map(|v| Binding {
                var: v.clone(),
                binding: Some(promise(START_NODE, v)),
            })
            .collect(),
        upstream_node_ids: vec![],
        output_aliases: vec![],
        target: Some(Target::TaskNode(core::TaskNode {
            overrides: None,
            reference: Some(task_node::Reference::ReferenceId(task_id.clone())),
        })),
    };
    let wf_id = Identifier {
        resource_type: core::ResourceType::Workflow as i32,
        ..task_id.clone()
    };
    let primary = WorkflowTemplate {
        id: Some(wf_id),
        metadata: None,
        interface: Some(interface),
        nodes: vec![node],
        outputs: output_names
            .iter()
            .map(|v| Binding {
                var: v.clone(),
                binding: Some(promise("n0", v)),
            })
            .collect(),
        failure_node: None,
        metadata_defaults: None,
    };
    let mut closure = WorkflowClosure {
        primary,
        ..Default::default()
    };
    closure.tasks.insert(entity_ref(&task_id), Arc::new(task));
    closure
}

#[cfg(test)]
mod tests;
