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
    execution_error::ErrorKind, node::Target, task_node, workflow_node, Identifier, LiteralMap,
    Node, TaskNode, WorkflowNode,
};

/// What every node kind runs with.
struct NodeRun<'a> {
    ctx: &'a Ctx,
    closure: &'a Arc<WorkflowClosure>,
    node: &'a Node,
    uid: &'a str,
    parent: Option<&'a str>,
    cancel: &'a CancelToken,
}

impl NodeRun<'_> {
    fn running(&self, inputs: &LiteralMap) {
        emit_node(
            self.ctx,
            self.node,
            self.uid,
            self.parent,
            NodePhase::Running,
            Some(inputs.clone()),
            None,
            None,
        );
    }

    fn invalid(&self, message: &str) -> NodeFailure {
        failed(self.uid, "InvalidNode", message, ErrorKind::System)
    }

    async fn task(&self, t: &TaskNode, inputs: LiteralMap) -> Result<LiteralMap, NodeFailure> {
        let Some(task_node::Reference::ReferenceId(id)) = &t.reference else {
            return Err(self.invalid("task node without a task reference"));
        };
        let Some(task) = self.closure.tasks.get(&entity_ref(id)) else {
            return Err(failed(
                self.uid,
                "TaskNotFound",
                format!("task {} is not in the workflow's closure", describe_id(id)),
                ErrorKind::System,
            ));
        };
        let done = run_task_node(
            self.ctx,
            self.node,
            self.uid,
            self.parent,
            task.clone(),
            inputs.clone(),
            self.cancel,
        )
        .await?;
        match done {
            TaskDone::Outputs(o) => Ok(o),
            TaskDone::Dynamic(spec) => {
                run_dynamic(
                    self.ctx,
                    self.closure,
                    self.node,
                    self.uid,
                    self.parent,
                    task,
                    inputs,
                    *spec,
                    self.cancel,
                )
                .await
            }
        }
    }

    async fn workflow(
        &self,
        w: &WorkflowNode,
        inputs: LiteralMap,
    ) -> Result<LiteralMap, NodeFailure> {
        self.running(&inputs);
        match &w.reference {
            Some(workflow_node::Reference::SubWorkflowRef(id)) => {
                let Some(sub) = self.closure.sub_workflows.get(&entity_ref(id)) else {
                    return Err(failed(
                        self.uid,
                        "WorkflowNotFound",
                        format!(
                            "subworkflow {} is not in the workflow's closure",
                            describe_id(id)
                        ),
                        ErrorKind::System,
                    ));
                };
                run_workflow(
                    self.ctx.clone(),
                    self.closure.clone(),
                    Arc::new(sub.clone()),
                    inputs,
                    Some(self.uid.to_string()),
                    self.cancel.clone(),
                )
                .await
            }
            Some(workflow_node::Reference::LaunchplanRef(id)) => self.launch_plan(id, inputs).await,
            None => Err(self.invalid("workflow node without a reference")),
        }
    }

    /// A child execution where the resolver keeps executions, else the launch plan inline.
    async fn launch_plan(
        &self,
        id: &Identifier,
        inputs: LiteralMap,
    ) -> Result<LiteralMap, NodeFailure> {
        let resolver = self.ctx.exec.resolver.clone();
        let start = resolver.start_child(
            &self.ctx.execution,
            self.uid,
            id,
            inputs.clone(),
            &self.ctx.options,
        );
        if let Some(start) = start {
            let child = start
                .await
                .map_err(|e| failed(self.uid, "LaunchPlanFailed", e, ErrorKind::User))?;
            return run_child(
                self.ctx,
                self.node,
                self.uid,
                self.parent,
                child,
                self.cancel,
            )
            .await;
        }
        let lp = resolver
            .resolve(id)
            .await
            .map_err(|e| failed(self.uid, "LaunchPlanNotFound", e, ErrorKind::System))?;
        let mut all = lp.default_inputs.clone();
        all.literals.extend(inputs.literals);
        run_workflow(
            self.ctx.clone(),
            lp.closure.clone(),
            Arc::new(lp.closure.primary.clone()),
            all,
            Some(self.uid.to_string()),
            self.cancel.clone(),
        )
        .await
    }

    async fn run(
        &self,
        inputs: LiteralMap,
        scope: Option<Scope>,
    ) -> Result<LiteralMap, NodeFailure> {
        match &self.node.target {
            Some(Target::TaskNode(t)) => self.task(t, inputs).await,
            Some(Target::WorkflowNode(w)) => self.workflow(w, inputs).await,
            Some(Target::BranchNode(b)) => {
                self.running(&inputs);
                run_branch(
                    self.ctx,
                    self.closure,
                    b,
                    self.uid,
                    &inputs,
                    scope.unwrap_or_default(),
                    self.cancel,
                )
                .await
            }
            Some(Target::GateNode(g)) => {
                self.running(&inputs);
                run_gate(self.ctx, g, self.node, self.uid, &inputs, self.cancel).await
            }
            Some(Target::ArrayNode(a)) => {
                self.running(&inputs);
                run_array(self.ctx, self.closure, a, self.uid, &inputs, self.cancel).await
            }
            None => Err(self.invalid("node without a target")),
        }
    }
}

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
        let parent = parent.as_deref();
        emit_node(
            &ctx,
            &node,
            &uid,
            parent,
            NodePhase::Queued,
            None,
            None,
            None,
        );
        let run = NodeRun {
            ctx: &ctx,
            closure: &closure,
            node: &node,
            uid: &uid,
            parent,
            cancel: &cancel,
        };
        let result = run.run(inputs, scope).await;
        let (phase, outputs, error) = match &result {
            Ok(outputs) => (NodePhase::Succeeded, Some(outputs.clone()), None),
            Err(NodeFailure::Failed { error, .. }) => {
                (NodePhase::Failed, None, Some(error.clone()))
            }
            Err(NodeFailure::Aborted) => (NodePhase::Aborted, None, None),
        };
        emit_node(&ctx, &node, &uid, parent, phase, None, outputs, error);
        result
    })
}
