//! Dynamic tasks: once the task's container has written its `futures.pb` (a `DynamicJobSpec`),
//! the workflow it describes runs as the node's children, and its outputs are the node's, as
//! flytepropeller's dynamic node handler does. The spec's tasks and subworkflows join the
//! closure for those children only; nested dynamic tasks recurse through the same path.
//!
//! The node's event carries that workflow compiled, as flytepropeller's does: FlyteRemote walks a
//! dynamic node's children through it (`GetNodeExecutionData`'s `dynamic_workflow`), and the
//! console draws their edges from its connections.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::events::emit_dynamic;
use super::schedule::run_workflow;
use super::{Ctx, NodeFailure};
use crate::compile::{self, References};
use crate::executor::{entity_ref, CancelToken, WorkflowClosure};
use union_idl::flyteidl::core::{
    CompiledTask, CompiledWorkflow, CompiledWorkflowClosure, DynamicJobSpec, Identifier,
    LiteralMap, Node, ResourceType, TaskTemplate, WorkflowExecutionIdentifier, WorkflowTemplate,
};

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
    // From here on the node is a parent: its children are the spec's nodes.
    let compiled = compiled_closure(&template, &children, &ctx.execution, uid);
    emit_dynamic(ctx, node, uid, parent, compiled);
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

/// The dynamic workflow as flytepropeller compiles it: named `dynamic_<node id>` in the
/// execution's project and domain, with the subworkflows and tasks its nodes reach.
fn compiled_closure(
    template: &WorkflowTemplate,
    closure: &WorkflowClosure,
    execution: &WorkflowExecutionIdentifier,
    uid: &str,
) -> CompiledWorkflowClosure {
    let mut primary = template.clone();
    primary.id = Some(Identifier {
        resource_type: ResourceType::Workflow as i32,
        project: execution.project.clone(),
        domain: execution.domain.clone(),
        name: format!("dynamic_{uid}"),
        // flytepropeller's is random; the execution's name is unique enough and stable.
        version: execution.name.clone(),
        org: execution.org.clone(),
    });
    let mut refs = References::default();
    refs.collect(template);
    // Subworkflows reach further subworkflows and tasks.
    let mut sub_workflows = BTreeMap::new();
    let mut queue: VecDeque<Identifier> = refs.sub_workflows.values().cloned().collect();
    while let Some(id) = queue.pop_front() {
        let key = compile::key_of(&id);
        if sub_workflows.contains_key(&key) {
            continue;
        }
        let Some(sub) = closure.sub_workflows.get(&entity_ref(&id)) else {
            continue;
        };
        let mut inner = References::default();
        inner.collect(sub);
        queue.extend(inner.sub_workflows.into_values());
        refs.tasks.extend(inner.tasks);
        sub_workflows.insert(
            key,
            CompiledWorkflow {
                template: Some(sub.clone()),
                connections: Some(compile::connections(sub)),
            },
        );
    }
    let tasks = refs
        .tasks
        .values()
        .filter_map(|id| closure.tasks.get(&entity_ref(id)))
        .map(|t| CompiledTask {
            template: Some(t.as_ref().clone()),
        })
        .collect();
    CompiledWorkflowClosure {
        primary: Some(CompiledWorkflow {
            connections: Some(compile::connections(&primary)),
            template: Some(primary),
        }),
        sub_workflows: sub_workflows.into_values().collect(),
        tasks,
        launch_plans: Vec::new(),
    }
}
