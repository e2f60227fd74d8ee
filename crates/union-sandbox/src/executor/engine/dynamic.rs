//! Dynamic tasks: once the task's container has written its `futures.pb` (a `DynamicJobSpec`),
//! the workflow it describes runs as the node's children, and its outputs are the node's, as
//! flytepropeller's dynamic node handler does. The spec's tasks and subworkflows join the
//! closure for those children only; nested dynamic tasks recurse through the same path.

use std::sync::Arc;

use super::events::emit_node_as;
use super::schedule::run_workflow;
use super::{Ctx, NodeFailure};
use crate::executor::{entity_ref, CancelToken, NodePhase, WorkflowClosure};
use union_idl::flyteidl::core::{DynamicJobSpec, LiteralMap, Node, TaskTemplate, WorkflowTemplate};

#[allow(clippy::too_many_arguments)]
pub(super) async fn run_dynamic(
    ctx: &Ctx,
    closure: &Arc<WorkflowClosure>,
    node: &Node,
    uid: &str,
    parent: Option<&str>,
    task: &TaskTemplate,
    inputs: LiteralMap,
    spec: DynamicJobSpec,
    cancel: &CancelToken,
) -> Result<LiteralMap, NodeFailure> {
    // From here on the node is a parent: its children are the spec's nodes.
    emit_node_as(ctx, node, "dynamic", uid, parent, NodePhase::DynamicRunning);
    let mut children = closure.as_ref().clone();
    for t in spec.tasks {
        if let Some(id) = &t.id {
            children.tasks.insert(entity_ref(id), Arc::new(t));
        }
    }
    for w in spec.subworkflows {
        if let Some(id) = &w.id {
            children.sub_workflows.insert(entity_ref(id), w);
        }
    }
    let template = WorkflowTemplate {
        id: task.id.clone(),
        interface: task.interface.clone(),
        nodes: spec.nodes,
        outputs: spec.outputs,
        ..Default::default()
    };
    run_workflow(
        ctx.clone(),
        Arc::new(children),
        Arc::new(template),
        inputs,
        Some(uid.to_string()),
        cancel.clone(),
    )
    .await
}
