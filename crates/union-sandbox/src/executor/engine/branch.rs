//! Branch nodes: evaluate the cases in order and run the first that holds (or the else).

use std::sync::Arc;

use super::node::execute_node;
use super::{failed, unique_id, Ctx, NodeFailure};
use crate::executor::bindings::{self, Scope};
use crate::executor::{CancelToken, WorkflowClosure};
use union_idl::flyteidl::core::{
    self, execution_error::ErrorKind, if_else_block, LiteralMap, Node,
};

pub(super) async fn run_branch(
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
