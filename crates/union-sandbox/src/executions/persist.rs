//! Writing a run to the store: engine events as node/task execution rows, in batches, and the
//! execution's final phase, outputs or error.

use prost::Message;
use rusqlite::params;

use crate::executor::{self, Event, EventSink, ExecutionOutcome};
use crate::store::{Store, StoreError};
use union_idl::flyteidl::core::{
    node_execution::Phase as NodePhase, task_execution::Phase as TaskPhase,
    workflow_execution::Phase as WfPhase,
};

pub(super) struct ChannelSink(pub(super) tokio::sync::mpsc::UnboundedSender<Event>);

impl EventSink for ChannelSink {
    fn emit(&self, event: Event) {
        let _ = self.0.send(event);
    }
}

fn node_terminal(p: NodePhase) -> bool {
    matches!(
        p,
        NodePhase::Succeeded
            | NodePhase::Failed
            | NodePhase::Aborted
            | NodePhase::Skipped
            | NodePhase::TimedOut
    )
}

fn task_terminal(p: TaskPhase) -> bool {
    matches!(
        p,
        TaskPhase::Succeeded | TaskPhase::Failed | TaskPhase::Aborted | TaskPhase::RetryableFailed
    )
}

pub(super) fn persist_events(store: &Store, seq: i64, events: &[Event]) -> Result<(), StoreError> {
    store.write(|tx| {
        for e in events {
            match e {
                Event::Node(n) => {
                    let started = (n.phase == NodePhase::Running).then_some(n.at);
                    let finished = node_terminal(n.phase).then_some(n.at);
                    tx.prepare_cached(
                        "INSERT INTO node_executions (execution_seq, node_id, spec_node_id, parent_node_id, kind, phase,
                         inputs, outputs, error, created_at, started_at, finished_at, updated_at, seq, child_execution, cache_status,
                         dynamic_workflow)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?10,
                                 (SELECT COUNT(*) FROM node_executions WHERE execution_seq=?1), ?13, ?14, ?15)
                         ON CONFLICT (execution_seq, node_id) DO UPDATE SET
                           phase=excluded.phase,
                           kind=CASE WHEN kind='dynamic' THEN kind ELSE excluded.kind END,
                           inputs=COALESCE(excluded.inputs, inputs),
                           outputs=COALESCE(excluded.outputs, outputs),
                           error=COALESCE(excluded.error, error),
                           started_at=COALESCE(started_at, excluded.started_at),
                           finished_at=COALESCE(excluded.finished_at, finished_at),
                           updated_at=excluded.updated_at,
                           child_execution=COALESCE(excluded.child_execution, child_execution),
                           cache_status=COALESCE(excluded.cache_status, cache_status),
                           dynamic_workflow=COALESCE(excluded.dynamic_workflow, dynamic_workflow)",
                    )?
                    .execute(params![
                        seq,
                        n.node_id,
                        n.spec_node_id,
                        n.parent_node_id.clone().unwrap_or_default(),
                        n.kind,
                        n.phase as i32,
                        n.inputs.as_ref().map(Message::encode_to_vec),
                        n.outputs.as_ref().map(Message::encode_to_vec),
                        n.error.as_ref().map(Message::encode_to_vec),
                        n.at,
                        started,
                        finished,
                        n.child_execution.as_ref().map(Message::encode_to_vec),
                        n.cache_status.map(|c| c as i32),
                        n.dynamic_workflow.as_deref().map(Message::encode_to_vec)
                    ])?;
                }
                Event::Task(t) => {
                    let started = (t.phase == TaskPhase::Running).then_some(t.at);
                    let finished = task_terminal(t.phase).then_some(t.at);
                    tx.prepare_cached(
                        "INSERT INTO task_executions (execution_seq, node_id, retry_attempt, task_id, phase, log_path,
                         outputs, error, created_at, started_at, finished_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?9)
                         ON CONFLICT (execution_seq, node_id, retry_attempt) DO UPDATE SET
                           phase=excluded.phase,
                           outputs=COALESCE(excluded.outputs, outputs),
                           error=COALESCE(excluded.error, error),
                           started_at=COALESCE(started_at, excluded.started_at),
                           finished_at=COALESCE(excluded.finished_at, finished_at),
                           updated_at=excluded.updated_at",
                    )?
                    .execute(params![
                        seq,
                        t.attempt.node_id,
                        t.attempt.retry_attempt,
                        t.task_id.clone().unwrap_or_default().encode_to_vec(),
                        t.phase as i32,
                        t.log.as_ref().map(|p| p.display().to_string()),
                        t.outputs.as_ref().map(Message::encode_to_vec),
                        t.error.as_ref().map(Message::encode_to_vec),
                        t.at,
                        started,
                        finished
                    ])?;
                }
            }
        }
        Ok(())
    })
}

pub(super) fn finish(
    store: &Store,
    seq: i64,
    outcome: &ExecutionOutcome,
    abort_cause: Option<String>,
) -> Result<(), StoreError> {
    let now = executor::now_nanos();
    let (phase, outputs, error, cause) = match outcome {
        ExecutionOutcome::Succeeded(o) => (WfPhase::Succeeded, Some(o.encode_to_vec()), None, None),
        ExecutionOutcome::Failed { node_id, error } => {
            let mut e = error.clone();
            if e.code.is_empty() {
                e.code = "NodeFailed".into();
            }
            // Name the node like flytepropeller does ("[n0] ..."), keeping the task's message (its traceback).
            e.message = format!("[{node_id}] {}", e.message);
            (WfPhase::Failed, None, Some(e.encode_to_vec()), None)
        }
        ExecutionOutcome::Aborted => (
            WfPhase::Aborted,
            None,
            None,
            Some(abort_cause.unwrap_or_else(|| "terminated".into())),
        ),
    };
    store.write(|tx| {
        tx.prepare_cached(
            "UPDATE executions SET phase=?1, outputs=?2, error=?3, abort_cause=?4, finished_at=?5, updated_at=?5,
             started_at=COALESCE(started_at, ?5) WHERE seq=?6",
        )?
        .execute(params![phase as i32, outputs, error, cause, now, seq])?;
        Ok(())
    })
}
