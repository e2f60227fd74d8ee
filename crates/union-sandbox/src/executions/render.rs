//! Stored rows as API messages: execution, node execution and task execution closures.

use super::rows::{ExecRow, NodeRow, TaskRow};
use super::Executions;
use crate::status::timestamp;
use union_idl::flyteidl::admin::{
    execution_closure, node_execution_closure, task_execution_closure, AbortMetadata, Execution,
    ExecutionClosure, NodeExecution, NodeExecutionClosure, NodeExecutionMetaData, TaskExecution,
    TaskExecutionClosure, TaskNodeMetadata, WorkflowNodeMetadata,
};
use union_idl::flyteidl::core::{
    NodeExecutionIdentifier, TaskExecutionIdentifier, TaskLog, WorkflowExecutionIdentifier,
};

impl Executions {
    pub(super) fn to_task_execution(
        &self,
        exec: &WorkflowExecutionIdentifier,
        nid: &NodeExecutionIdentifier,
        t: TaskRow,
    ) -> TaskExecution {
        let uri = self.log_url(exec, &nid.node_id, t.retry_attempt);
        TaskExecution {
            id: Some(TaskExecutionIdentifier {
                task_id: Some(t.task_id.clone()),
                node_execution_id: Some(nid.clone()),
                retry_attempt: t.retry_attempt,
            }),
            input_uri: String::new(),
            closure: Some(TaskExecutionClosure {
                phase: t.phase,
                logs: vec![TaskLog {
                    uri,
                    name: "sandbox logs".into(),
                    ..Default::default()
                }],
                started_at: t.started_at.map(timestamp),
                duration: duration(t.started_at, t.finished_at),
                created_at: Some(timestamp(t.created_at)),
                updated_at: Some(timestamp(t.updated_at)),
                task_type: "container".into(),
                reason: t.error.as_ref().map(|e| e.code.clone()).unwrap_or_default(),
                output_result: t.error.map(task_execution_closure::OutputResult::Error),
                ..Default::default()
            }),
            is_parent: false,
        }
    }
}

impl ExecRow {
    // `computed_inputs` is deprecated, but FlyteRemote still reads it when present.
    #[allow(deprecated)]
    pub(super) fn to_execution(&self) -> Execution {
        let output_result = if let Some(cause) = &self.abort_cause {
            Some(execution_closure::OutputResult::AbortMetadata(
                AbortMetadata {
                    cause: cause.clone(),
                    principal: "sandbox".into(),
                },
            ))
        } else {
            self.error
                .clone()
                .map(execution_closure::OutputResult::Error)
        };
        Execution {
            id: Some(self.id.clone()),
            spec: Some(self.spec.clone()),
            closure: Some(ExecutionClosure {
                computed_inputs: Some(self.inputs.clone()),
                phase: self.phase,
                started_at: self.started_at.map(timestamp),
                duration: duration(self.started_at, self.finished_at),
                created_at: Some(timestamp(self.created_at)),
                updated_at: Some(timestamp(self.updated_at)),
                workflow_id: Some(self.workflow_id.clone()),
                output_result,
                ..Default::default()
            }),
        }
    }
}

impl NodeRow {
    pub(super) fn to_node_execution(&self, exec: &WorkflowExecutionIdentifier) -> NodeExecution {
        let is_parent = matches!(
            self.kind.as_str(),
            "workflow" | "launch_plan" | "branch" | "array" | "dynamic"
        );
        NodeExecution {
            id: Some(NodeExecutionIdentifier {
                node_id: self.node_id.clone(),
                execution_id: Some(exec.clone()),
            }),
            input_uri: String::new(),
            closure: Some(NodeExecutionClosure {
                phase: self.phase,
                started_at: self.started_at.map(timestamp),
                duration: duration(self.started_at, self.finished_at),
                created_at: Some(timestamp(self.created_at)),
                updated_at: Some(timestamp(self.updated_at)),
                output_result: self
                    .error
                    .clone()
                    .map(node_execution_closure::OutputResult::Error),
                target_metadata: match (&self.child_execution, self.cache_status) {
                    (Some(e), _) => Some(
                        node_execution_closure::TargetMetadata::WorkflowNodeMetadata(
                            WorkflowNodeMetadata {
                                execution_id: Some(e.clone()),
                            },
                        ),
                    ),
                    (None, Some(status)) => {
                        Some(node_execution_closure::TargetMetadata::TaskNodeMetadata(
                            TaskNodeMetadata {
                                cache_status: status,
                                ..Default::default()
                            },
                        ))
                    }
                    (None, None) => None,
                },
                ..Default::default()
            }),
            metadata: Some(NodeExecutionMetaData {
                spec_node_id: self.spec_node_id.clone(),
                is_parent_node: is_parent,
                is_dynamic: self.kind == "dynamic",
                is_array: self.kind == "array",
                ..Default::default()
            }),
        }
    }
}

fn duration(start: Option<i64>, end: Option<i64>) -> Option<prost_types::Duration> {
    let (s, e) = (start?, end?);
    let d = (e - s).max(0);
    Some(prost_types::Duration {
        seconds: d / 1_000_000_000,
        nanos: (d % 1_000_000_000) as i32,
    })
}
