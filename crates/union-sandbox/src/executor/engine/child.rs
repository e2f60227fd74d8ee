//! Launch plan nodes as child executions, as flytepropeller runs them: the child is an
//! execution of its own (listed, inspectable, linked to this node), the node waits for it and
//! takes its outputs, and aborting the parent terminates the child.

use super::events::emit_child_started;
use super::{failed, Ctx, NodeFailure};
use crate::executor::{CancelToken, ChildExecution, ExecutionOutcome};
use union_idl::flyteidl::core::{execution_error::ErrorKind, ExecutionError, LiteralMap, Node};

pub(super) async fn run_child(
    ctx: &Ctx,
    node: &Node,
    uid: &str,
    parent: Option<&str>,
    child: ChildExecution,
    cancel: &CancelToken,
) -> Result<LiteralMap, NodeFailure> {
    emit_child_started(ctx, node, uid, parent, &child.execution);
    let name = child.execution.name.clone();
    let mut done = child.done;
    let outcome = tokio::select! {
        o = &mut done => o,
        _ = cancel.cancelled() => {
            child.cancel.cancel();
            let _ = done.await;
            return Err(NodeFailure::Aborted);
        }
    };
    match outcome {
        ExecutionOutcome::Succeeded(outputs) => Ok(outputs),
        ExecutionOutcome::Failed { node_id, error } => Err(NodeFailure::Failed {
            node_id: uid.to_string(),
            error: ExecutionError {
                message: format!(
                    "child execution `{name}` failed at node [{node_id}]: {}",
                    error.message
                ),
                ..error
            },
        }),
        ExecutionOutcome::Aborted => Err(failed(
            uid,
            "ChildAborted",
            format!("child execution `{name}` was terminated"),
            ErrorKind::User,
        )),
    }
}
