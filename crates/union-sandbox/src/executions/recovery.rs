//! Restart recovery: executions a previous sandbox process left QUEUED or RUNNING become FAILED,
//! since their containers' state did not survive. Array elements and a dynamic node's children
//! are nodes of their execution, child executions are executions: all end FAILED with the reason.

use prost::Message;
use rusqlite::params;

use super::RESTARTED;
use crate::executor;
use crate::store::{Store, StoreError};
use union_idl::flyteidl::core::{
    execution_error::ErrorKind, node_execution::Phase as NodePhase,
    task_execution::Phase as TaskPhase, workflow_execution::Phase as WfPhase, ExecutionError,
};

/// Executions (and their nodes and attempts) a previous process left unfinished become FAILED.
pub(super) fn mark_interrupted(store: &Store) -> Result<usize, StoreError> {
    let error = ExecutionError {
        code: "SandboxRestarted".into(),
        message: RESTARTED.into(),
        kind: ErrorKind::System as i32,
        ..Default::default()
    }
    .encode_to_vec();
    store.write(|tx| {
        let now = executor::now_nanos();
        let n = tx
            .prepare_cached(
                "UPDATE executions SET phase=?1, error=?2, finished_at=?3, updated_at=?3,
                 started_at=COALESCE(started_at, ?3) WHERE phase IN (?4, ?5)",
            )?
            .execute(params![WfPhase::Failed as i32, error, now, WfPhase::Queued as i32, WfPhase::Running as i32])?;
        tx.prepare_cached(
            "UPDATE node_executions SET phase=?1, error=COALESCE(error, ?2), finished_at=?3, updated_at=?3
             WHERE phase IN (?4, ?5, ?6)",
        )?
        .execute(params![
            NodePhase::Failed as i32,
            error,
            now,
            NodePhase::Queued as i32,
            NodePhase::Running as i32,
            NodePhase::DynamicRunning as i32
        ])?;
        tx.prepare_cached(
            "UPDATE task_executions SET phase=?1, error=COALESCE(error, ?2), finished_at=?3, updated_at=?3
             WHERE phase IN (?4, ?5)",
        )?
        .execute(params![TaskPhase::Failed as i32, error, now, TaskPhase::Queued as i32, TaskPhase::Running as i32])?;
        Ok(n)
    })
}
