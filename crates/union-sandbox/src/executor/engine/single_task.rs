//! The one-node workflow an execution created by task id runs.

use std::sync::Arc;

use crate::executor::bindings::START_NODE;
use crate::executor::{entity_ref, WorkflowClosure};
use union_idl::flyteidl::core::{
    self, binding_data, node::Target, task_node, Binding, BindingData, Identifier, Node,
    OutputReference, TaskTemplate, WorkflowTemplate,
};

/// A workflow of one node running `task`, with the task's interface (executions created by task id).
pub(in crate::executor) fn single_task_closure(task: TaskTemplate) -> WorkflowClosure {
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
