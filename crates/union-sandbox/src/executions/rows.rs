//! Reading the execution tables: column lists, row structs and the lookup of an execution by id.

use prost::Message;
use rusqlite::{params, OptionalExtension};

use crate::store::StoreError;
use union_idl::flyteidl::admin::ExecutionSpec;
use union_idl::flyteidl::core::{
    ExecutionError, Identifier, LiteralMap, WorkflowExecutionIdentifier,
};

pub(super) fn decode<M: Message + Default>(bytes: Vec<u8>) -> Option<M> {
    M::decode(bytes.as_slice()).ok()
}

pub(super) const EXEC_COLUMNS: &str =
    "seq, org, project, domain, name, phase, spec, workflow_id, inputs, outputs, error,
    abort_cause, created_at, started_at, finished_at, updated_at";

pub(super) struct ExecRow {
    pub(super) seq: i64,
    pub(super) id: WorkflowExecutionIdentifier,
    pub(super) phase: i32,
    pub(super) spec: ExecutionSpec,
    pub(super) workflow_id: Identifier,
    pub(super) inputs: LiteralMap,
    pub(super) outputs: Option<LiteralMap>,
    pub(super) error: Option<ExecutionError>,
    pub(super) abort_cause: Option<String>,
    pub(super) created_at: i64,
    pub(super) started_at: Option<i64>,
    pub(super) finished_at: Option<i64>,
    pub(super) updated_at: i64,
}

pub(super) fn exec_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ExecRow> {
    Ok(ExecRow {
        seq: r.get(0)?,
        id: WorkflowExecutionIdentifier {
            org: r.get(1)?,
            project: r.get(2)?,
            domain: r.get(3)?,
            name: r.get(4)?,
        },
        phase: r.get(5)?,
        spec: decode(r.get(6)?).unwrap_or_default(),
        workflow_id: decode(r.get(7)?).unwrap_or_default(),
        inputs: decode(r.get(8)?).unwrap_or_default(),
        outputs: r.get::<_, Option<Vec<u8>>>(9)?.and_then(decode),
        error: r.get::<_, Option<Vec<u8>>>(10)?.and_then(decode),
        abort_cause: r.get(11)?,
        created_at: r.get(12)?,
        started_at: r.get(13)?,
        finished_at: r.get(14)?,
        updated_at: r.get(15)?,
    })
}

pub(super) fn execution_row(
    c: &rusqlite::Connection,
    id: &WorkflowExecutionIdentifier,
) -> Result<Option<ExecRow>, StoreError> {
    let sql = format!("SELECT {EXEC_COLUMNS} FROM executions WHERE org=?1 AND project=?2 AND domain=?3 AND name=?4");
    Ok(c.prepare_cached(&sql)?
        .query_row(
            params![id.org, id.project, id.domain, id.name],
            exec_from_row,
        )
        .optional()?)
}

pub(super) const NODE_COLUMNS: &str =
    "node_id, spec_node_id, parent_node_id, kind, phase, inputs, outputs, error, created_at,
    started_at, finished_at, updated_at, child_execution, cache_status";

pub(super) struct NodeRow {
    pub(super) node_id: String,
    pub(super) spec_node_id: String,
    pub(super) kind: String,
    pub(super) phase: i32,
    pub(super) inputs: Option<LiteralMap>,
    pub(super) outputs: Option<LiteralMap>,
    pub(super) error: Option<ExecutionError>,
    pub(super) created_at: i64,
    pub(super) started_at: Option<i64>,
    pub(super) finished_at: Option<i64>,
    pub(super) updated_at: i64,
    pub(super) child_execution: Option<WorkflowExecutionIdentifier>,
    pub(super) cache_status: Option<i32>,
}

pub(super) fn node_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NodeRow> {
    Ok(NodeRow {
        node_id: r.get(0)?,
        spec_node_id: r.get(1)?,
        kind: r.get(3)?,
        phase: r.get(4)?,
        inputs: r.get::<_, Option<Vec<u8>>>(5)?.and_then(decode),
        outputs: r.get::<_, Option<Vec<u8>>>(6)?.and_then(decode),
        error: r.get::<_, Option<Vec<u8>>>(7)?.and_then(decode),
        created_at: r.get(8)?,
        started_at: r.get(9)?,
        finished_at: r.get(10)?,
        updated_at: r.get(11)?,
        child_execution: r.get::<_, Option<Vec<u8>>>(12)?.and_then(decode),
        cache_status: r.get(13)?,
    })
}

pub(super) struct TaskRow {
    pub(super) retry_attempt: u32,
    pub(super) task_id: Identifier,
    pub(super) phase: i32,
    pub(super) outputs: Option<LiteralMap>,
    pub(super) error: Option<ExecutionError>,
    pub(super) created_at: i64,
    pub(super) started_at: Option<i64>,
    pub(super) finished_at: Option<i64>,
    pub(super) updated_at: i64,
}
