//! Node events for the [`EventSink`](crate::executor::EventSink): what kind of node it is, what
//! it runs, and its phase changes.

use super::{Ctx, NodeFailure};
use crate::executor::{now_nanos, Event, NodeEvent, NodePhase};
use union_idl::flyteidl::core::{
    node::Target, task_node, workflow_node, CatalogCacheStatus, CompiledWorkflowClosure,
    ExecutionError, Identifier, LiteralMap, Node,
};

pub(super) fn error_of(f: &NodeFailure) -> Option<ExecutionError> {
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
        Some(Target::TaskNode(t)) => t
            .reference
            .as_ref()
            .map(|task_node::Reference::ReferenceId(id)| id.clone()),
        Some(Target::WorkflowNode(w)) => match &w.reference {
            Some(workflow_node::Reference::LaunchplanRef(id))
            | Some(workflow_node::Reference::SubWorkflowRef(id)) => Some(id.clone()),
            None => None,
        },
        _ => None,
    }
}

/// A node event with nothing but its identity and phase; callers fill in the rest.
pub(super) fn node_event(
    node: &Node,
    uid: &str,
    parent: Option<&str>,
    phase: NodePhase,
) -> NodeEvent {
    NodeEvent {
        node_id: uid.to_string(),
        spec_node_id: node.id.clone(),
        parent_node_id: parent.map(str::to_string),
        phase,
        at: now_nanos(),
        inputs: None,
        outputs: None,
        error: None,
        kind: node_kind(node),
        target: node_target(node),
        child_execution: None,
        cache_status: None,
        dynamic_workflow: None,
    }
}

/// A task node turned dynamic: its phase, and the workflow it now runs as its children.
pub(super) fn emit_dynamic(
    ctx: &Ctx,
    node: &Node,
    uid: &str,
    parent: Option<&str>,
    workflow: CompiledWorkflowClosure,
) {
    ctx.sink.emit(Event::Node(NodeEvent {
        kind: "dynamic",
        dynamic_workflow: Some(Box::new(workflow)),
        ..node_event(node, uid, parent, NodePhase::DynamicRunning)
    }));
}

#[allow(clippy::too_many_arguments)]
pub(super) fn emit_node(
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
        inputs,
        outputs,
        error,
        ..node_event(node, uid, parent, phase)
    }));
}

/// A launch plan node's link to the child execution it started.
pub(super) fn emit_child_started(
    ctx: &Ctx,
    node: &Node,
    uid: &str,
    parent: Option<&str>,
    child: &union_idl::flyteidl::core::WorkflowExecutionIdentifier,
) {
    ctx.sink.emit(Event::Node(NodeEvent {
        child_execution: Some(child.clone()),
        ..node_event(node, uid, parent, NodePhase::Running)
    }));
}

/// A task node's cache lookup or write (DataCatalog's status), with its inputs.
pub(super) fn emit_cache_status(
    ctx: &Ctx,
    node: &Node,
    uid: &str,
    parent: Option<&str>,
    inputs: &LiteralMap,
    status: CatalogCacheStatus,
) {
    ctx.sink.emit(Event::Node(NodeEvent {
        inputs: Some(inputs.clone()),
        cache_status: Some(status),
        ..node_event(node, uid, parent, NodePhase::Running)
    }));
}
