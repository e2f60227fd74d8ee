//! The DAG walk: which nodes a template's nodes wait for, and running a template's nodes as
//! their inputs become available, stopping at the first failure.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};

use super::events::{emit_node, error_of};
use super::node::execute_node;
use super::{failed, unique_id, Ctx, NodeFailure};
use crate::executor::bindings::{self, Scope, START_NODE};
use crate::executor::{CancelToken, NodePhase, WorkflowClosure};
use union_idl::flyteidl::core::{
    binding_data, execution_error::ErrorKind, if_else_block, literal, literal_type, node::Target,
    scalar, workflow_metadata::OnFailurePolicy, BindingData, ExecutionError, Literal, LiteralMap,
    LiteralType, Node, Scalar, SimpleType, WorkflowTemplate,
};

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

/// The nodes whose outputs `node` or any node nested in it (branch cases, nested branches)
/// reads: a branch's own inputs may name only what its condition needs, while its cases read
/// upstream outputs directly. Subworkflows are not entered: their nodes read the subworkflow's
/// inputs, which the node's own bindings provide.
fn consumed(node: &Node, out: &mut BTreeSet<String>) {
    for b in &node.inputs {
        if let Some(data) = &b.binding {
            promises(data, out);
        }
    }
    if let Some(Target::BranchNode(branch)) = &node.target {
        if let Some(ie) = &branch.if_else {
            let cases = ie.case.iter().map(|c| &**c).chain(ie.other.iter());
            for then in cases.filter_map(|c| c.then_node.as_deref()) {
                consumed(then, out);
            }
            if let Some(if_else_block::Default::ElseNode(n)) = &ie.default {
                consumed(n, out);
            }
        }
    }
}

/// Each node's dependencies inside its template (start-node excluded): its upstream nodes and
/// every node whose outputs it or a node inside it consumes, so that it starts only once they
/// have all finished, as flytepropeller starts it.
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
        let mut nested = BTreeSet::new();
        consumed(node, &mut nested);
        // A nested node may read a node of its own case; only this template's nodes order it.
        d.extend(nested.into_iter().filter(|id| ids.contains(id.as_str())));
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
pub(super) fn run_workflow(
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
        // FAIL_AFTER_EXECUTABLE_NODES_COMPLETE: a failure stops only the nodes that depend on it.
        let keep_going = template.metadata.as_ref().is_some_and(|m| {
            m.on_failure == OnFailurePolicy::FailAfterExecutableNodesComplete as i32
        });

        loop {
            if !matches!(failure, Some(NodeFailure::Aborted)) && cancel.is_cancelled() {
                failure = Some(NodeFailure::Aborted);
                wf_cancel.cancel();
            }
            let schedule_more = match &failure {
                None => true,
                Some(NodeFailure::Failed { .. }) => keep_going,
                Some(NodeFailure::Aborted) => false,
            };
            if schedule_more {
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
                            if failure.is_none() {
                                failure = Some(f);
                            }
                            if !keep_going {
                                wf_cancel.cancel();
                                break;
                            }
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
                    // The first failure wins; unless the policy lets independent nodes finish,
                    // the nodes still running are aborted.
                    let aborted = matches!(f, NodeFailure::Aborted);
                    if failure.is_none() {
                        failure = Some(f);
                    }
                    if !keep_going || aborted {
                        wf_cancel.cancel();
                    }
                }
            }
        }
        if let Some(f) = failure {
            if let (NodeFailure::Failed { node_id, error }, Some(handler)) =
                (&f, template.failure_node.as_ref())
            {
                run_failure_node(
                    &ctx,
                    &closure,
                    handler,
                    parent.as_deref(),
                    &scope,
                    node_id,
                    error,
                    &cancel,
                )
                .await;
            }
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

/// A workflow's `on_failure` node, run once the workflow has failed (its outcome does not change
/// the workflow's): it reads the workflow's inputs, and its `err` input, if it has one, gets the
/// failure (flytekit's `FlyteError`: the failed node and its message), as flytepropeller gives it.
#[allow(clippy::too_many_arguments)]
async fn run_failure_node(
    ctx: &Ctx,
    closure: &Arc<WorkflowClosure>,
    handler: &Node,
    parent: Option<&str>,
    scope: &Scope,
    failed_node: &str,
    error: &ExecutionError,
    cancel: &CancelToken,
) {
    let uid = unique_id(parent, &handler.id);
    let mut inputs = match bindings::resolve_bindings(&handler.inputs, scope) {
        Ok(i) => i,
        Err(e) => {
            let f = failed(&uid, "BindingResolutionFailure", e, ErrorKind::User);
            emit_node(
                ctx,
                handler,
                &uid,
                parent,
                NodePhase::Failed,
                None,
                None,
                error_of(&f),
            );
            return;
        }
    };
    // flytekit binds `err` to its default (None); flytepropeller replaces it with the failure.
    if let Some(err_type) = err_input_type(closure, handler) {
        let error = Literal {
            value: Some(literal::Value::Scalar(Box::new(Scalar {
                value: Some(scalar::Value::Error(union_idl::flyteidl::core::Error {
                    failed_node_id: failed_node.to_string(),
                    message: error.message.clone(),
                })),
            }))),
            ..Default::default()
        };
        // Optional[FlyteError]: the Error variant of the union.
        let value = match &err_type.r#type {
            Some(literal_type::Type::UnionType(u)) => {
                let variant = u.variants.iter().find(|v| {
                    matches!(v.r#type, Some(literal_type::Type::Simple(s)) if s == SimpleType::Error as i32)
                });
                Literal {
                    value: Some(literal::Value::Scalar(Box::new(Scalar {
                        value: Some(scalar::Value::Union(Box::new(
                            union_idl::flyteidl::core::Union {
                                value: Some(Box::new(error)),
                                r#type: variant.cloned(),
                            },
                        ))),
                    }))),
                    ..Default::default()
                }
            }
            _ => error,
        };
        inputs.literals.insert("err".into(), value);
    }
    // Its own failure is reported on its node; the workflow keeps the original error.
    let _ = execute_node(
        ctx.clone(),
        closure.clone(),
        handler.clone(),
        uid,
        parent.map(str::to_string),
        inputs,
        None,
        cancel.clone(),
    )
    .await;
}

/// The type of the failure node's `err` input, if its task or workflow declares one.
fn err_input_type(closure: &WorkflowClosure, node: &Node) -> Option<LiteralType> {
    use union_idl::flyteidl::core::{task_node, workflow_node};
    let interface = match &node.target {
        Some(Target::TaskNode(t)) => match &t.reference {
            Some(task_node::Reference::ReferenceId(id)) => closure
                .tasks
                .get(&crate::executor::entity_ref(id))
                .and_then(|t| t.interface.clone()),
            None => None,
        },
        Some(Target::WorkflowNode(w)) => match &w.reference {
            Some(workflow_node::Reference::SubWorkflowRef(id)) => closure
                .sub_workflows
                .get(&crate::executor::entity_ref(id))
                .and_then(|w| w.interface.clone()),
            _ => None,
        },
        _ => None,
    };
    interface?.inputs?.variables.remove("err")?.r#type
}
