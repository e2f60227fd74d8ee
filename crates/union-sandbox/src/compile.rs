//! The little of flyteadmin's workflow compiler that clients observe: which tasks, subworkflows
//! and launch plans a workflow refers to (all must exist when it is registered), and the
//! `ConnectionSet` of the compiled closure (upstream/downstream node ids).
//!
//! Unlike flyteadmin, the compiled template is the submitted one: no `start-node`/`end-node` nodes
//! are added to `nodes` (FlyteRemote filters them out anyway); they appear in the connections only.

use std::collections::{BTreeMap, BTreeSet};

use union_idl::flyteidl::core::{
    binding_data, connection_set::IdList, if_else_block, node::Target, task_node, workflow_node,
    Binding, BindingData, ConnectionSet, Identifier, Node, WorkflowTemplate,
};

use super::store::EntityKey;

/// flytekit/flytepropeller's id of the implicit node that provides workflow inputs.
pub const START_NODE_ID: &str = "start-node";
/// flytekit/flytepropeller's id of the implicit node that collects workflow outputs.
pub const END_NODE_ID: &str = "end-node";

/// The identity of an identifier, ignoring its resource type.
pub fn key_of(id: &Identifier) -> EntityKey {
    EntityKey {
        org: id.org.clone(),
        project: id.project.clone(),
        domain: id.domain.clone(),
        name: id.name.clone(),
        version: id.version.clone(),
    }
}

/// Everything a workflow template refers to by id, deduplicated.
#[derive(Debug, Default)]
pub struct References {
    pub tasks: BTreeMap<EntityKey, Identifier>,
    pub sub_workflows: BTreeMap<EntityKey, Identifier>,
    pub launch_plans: BTreeMap<EntityKey, Identifier>,
}

impl References {
    /// Add the references of every node of `template` (branches and array nodes included).
    pub fn collect(&mut self, template: &WorkflowTemplate) {
        for node in &template.nodes {
            self.node(node);
        }
        if let Some(node) = &template.failure_node {
            self.node(node);
        }
    }

    fn node(&mut self, node: &Node) {
        match &node.target {
            Some(Target::TaskNode(t)) => {
                if let Some(task_node::Reference::ReferenceId(id)) = &t.reference {
                    self.tasks.insert(key_of(id), id.clone());
                }
            }
            Some(Target::WorkflowNode(w)) => match &w.reference {
                Some(workflow_node::Reference::LaunchplanRef(id)) => {
                    self.launch_plans.insert(key_of(id), id.clone());
                }
                Some(workflow_node::Reference::SubWorkflowRef(id)) => {
                    self.sub_workflows.insert(key_of(id), id.clone());
                }
                None => {}
            },
            Some(Target::BranchNode(b)) => {
                if let Some(if_else) = &b.if_else {
                    if let Some(then) = if_else.case.as_ref().and_then(|c| c.then_node.as_ref()) {
                        self.node(then);
                    }
                    for other in &if_else.other {
                        if let Some(then) = &other.then_node {
                            self.node(then);
                        }
                    }
                    if let Some(if_else_block::Default::ElseNode(node)) = &if_else.default {
                        self.node(node);
                    }
                }
            }
            Some(Target::ArrayNode(a)) => {
                if let Some(inner) = &a.node {
                    self.node(inner);
                }
            }
            Some(Target::GateNode(_)) | None => {}
        }
    }
}

/// Upstream and downstream node ids, as flytepropeller's compiler derives them: a node depends on
/// its `upstream_node_ids` and on every node whose outputs its bindings read; nodes without
/// dependencies hang off `start-node`; `end-node` depends on the nodes the outputs read (or, if
/// none, on the nodes nothing else depends on).
pub fn connections(template: &WorkflowTemplate) -> ConnectionSet {
    let mut upstream: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for node in &template.nodes {
        let mut deps: BTreeSet<String> = node.upstream_node_ids.iter().cloned().collect();
        for b in &node.inputs {
            promises_of_binding(b, &mut deps);
        }
        deps.remove(&node.id);
        if deps.is_empty() {
            deps.insert(START_NODE_ID.to_string());
        }
        upstream.insert(node.id.clone(), deps);
    }
    let mut end: BTreeSet<String> = BTreeSet::new();
    for b in &template.outputs {
        promises_of_binding(b, &mut end);
    }
    if end.is_empty() {
        let depended: BTreeSet<&String> = upstream.values().flatten().collect();
        end = template
            .nodes
            .iter()
            .map(|n| n.id.clone())
            .filter(|id| !depended.contains(id))
            .collect();
        if end.is_empty() {
            end.insert(START_NODE_ID.to_string());
        }
    }
    upstream.insert(END_NODE_ID.to_string(), end);

    let mut downstream: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (node, deps) in &upstream {
        for dep in deps {
            downstream
                .entry(dep.clone())
                .or_default()
                .insert(node.clone());
        }
    }
    let to_lists = |m: BTreeMap<String, BTreeSet<String>>| {
        m.into_iter()
            .map(|(k, v)| {
                (
                    k,
                    IdList {
                        ids: v.into_iter().collect(),
                    },
                )
            })
            .collect()
    };
    ConnectionSet {
        downstream: to_lists(downstream),
        upstream: to_lists(upstream),
    }
}

fn promises_of_binding(b: &Binding, out: &mut BTreeSet<String>) {
    if let Some(data) = &b.binding {
        promises_of(data, out);
    }
}

fn promises_of(data: &BindingData, out: &mut BTreeSet<String>) {
    match &data.value {
        // flytekit names the workflow's own inputs with node id "" (flytepropeller's start-node).
        Some(binding_data::Value::Promise(p)) if p.node_id.is_empty() => {
            out.insert(START_NODE_ID.to_string());
        }
        Some(binding_data::Value::Promise(p)) => {
            out.insert(p.node_id.clone());
        }
        Some(binding_data::Value::Collection(c)) => {
            for d in &c.bindings {
                promises_of(d, out);
            }
        }
        Some(binding_data::Value::Map(m)) => {
            for d in m.bindings.values() {
                promises_of(d, out);
            }
        }
        _ => {}
    }
}
