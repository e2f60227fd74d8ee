//! One node, by kind: task nodes run their task (and a dynamic task the workflow it returns),
//! workflow nodes their subworkflow or launch plan, branch nodes their chosen case, array nodes
//! their elements, gate nodes their sleep or signal.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::array::run_array;
use super::branch::run_branch;
use super::child::run_child;
use super::dynamic::run_dynamic;
use super::events::emit_node;
use super::gate::run_gate;
use super::schedule::run_workflow;
use super::task::{run_task_node, TaskDone};
use super::{failed, Ctx, NodeFailure};
use crate::executor::bindings::Scope;
use crate::executor::{describe_id, entity_ref, CancelToken, NodePhase, WorkflowClosure};
use union_idl::flyteidl::core::{
    execution_error::ErrorKind, node::Target, task_node, workflow_node, LiteralMap, Node,
};

/// Run one node with its resolved inputs, reporting its phases.
#[allow(clippy::too_many_arguments)]
pub(super) fn execute_node(
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
                            match run_task_node(
                                &ctx,
                                &node,
                                &uid,
                                parent.as_deref(),
                                task.clone(),
                                inputs.clone(),
                                &cancel,
                            )
                            .await
                            {
                                Ok(TaskDone::Outputs(o)) => Ok(o),
                                Ok(TaskDone::Dynamic(spec)) => {
                                    run_dynamic(
                                        &ctx,
                                        &closure,
                                        &node,
                                        &uid,
                                        parent.as_deref(),
                                        task,
                                        inputs,
                                        *spec,
                                        &cancel,
                                    )
                                    .await
                                }
                                Err(e) => Err(e),
                            }
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
                        let resolver = ctx.exec.resolver.clone();
                        let start = resolver.start_child(
                            &ctx.execution,
                            &uid,
                            id,
                            inputs.clone(),
                            &ctx.options,
                        );
                        let started = match start {
                            Some(start) => Some(start.await),
                            None => None,
                        };
                        match started {
                            Some(started) => match started {
                                Ok(child) => {
                                    run_child(&ctx, &node, &uid, parent.as_deref(), child, &cancel)
                                        .await
                                }
                                Err(e) => Err(failed(&uid, "LaunchPlanFailed", e, ErrorKind::User)),
                            },
                            None => match ctx.exec.resolver.resolve(id).await {
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
                                Err(e) => {
                                    Err(failed(&uid, "LaunchPlanNotFound", e, ErrorKind::System))
                                }
                            },
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
            Some(Target::GateNode(g)) => {
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
                run_gate(&ctx, g, &node, &uid, &inputs, &cancel).await
            }
            Some(Target::ArrayNode(a)) => {
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
                run_array(&ctx, &closure, a, &uid, &inputs, &cancel).await
            }
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
