//! The read-side RPCs: Get/List of executions, node executions and task attempts, and their data.

use rusqlite::types::Value;
use rusqlite::{params, OptionalExtension};
use tonic::Status;

use super::rows::{
    decode, exec_from_row, execution_row, node_from_row, ExecRow, NodeRow, TaskRow, EXEC_COLUMNS,
    NODE_COLUMNS,
};
use super::validate::{exec_id, nid_name, not_found};
use super::Executions;
use crate::status::db;
use union_idl::flyteidl::admin::{
    DynamicNodeWorkflowResponse, DynamicWorkflowNodeMetadata, Execution, ExecutionList,
    GetDynamicNodeWorkflowRequest, NodeExecution, NodeExecutionGetDataRequest,
    NodeExecutionGetDataResponse, NodeExecutionGetRequest, NodeExecutionList,
    NodeExecutionListRequest, ResourceListRequest, TaskExecution, TaskExecutionGetDataRequest,
    TaskExecutionGetDataResponse, TaskExecutionGetRequest, TaskExecutionList,
    TaskExecutionListRequest, WorkflowExecutionGetDataRequest, WorkflowExecutionGetDataResponse,
    WorkflowExecutionGetRequest,
};
use union_idl::flyteidl::core::{
    workflow_execution::Phase, CompiledWorkflowClosure, ExecutionError, Identifier, LiteralMap,
    NodeExecutionIdentifier, WorkflowExecutionIdentifier,
};

impl Executions {
    /// An execution's row; NOT_FOUND naming it when there is none.
    pub(super) async fn row(&self, id: WorkflowExecutionIdentifier) -> Result<ExecRow, Status> {
        self.blocking(move |store| {
            store
                .read(|c| execution_row(c, &id))
                .map_err(db)?
                .ok_or_else(|| not_found(&id))
        })
        .await
    }

    /// `GetExecution`.
    pub async fn get(&self, req: WorkflowExecutionGetRequest) -> Result<Execution, Status> {
        let id = exec_id(req.id.as_ref())?;
        self.row(id).await.map(|row| row.to_execution())
    }

    /// `ListExecutions`: a project/domain's executions, newest first unless sorted otherwise.
    pub async fn list(&self, req: ResourceListRequest) -> Result<ExecutionList, Status> {
        let id = req
            .id
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("missing id"))?;
        let q = crate::query::list_query(crate::query::ListParams {
            org: &id.org,
            project: &id.project,
            domain: &id.domain,
            name: None,
            limit: req.limit,
            token: &req.token,
            filters: "",
            sort_by: req.sort_by.as_ref(),
        })?;
        let order = match q.sort {
            crate::store::Column::UpdatedAt => "updated_at",
            crate::store::Column::Name => "name",
            _ => "created_at",
        };
        let dir = if q.ascending { "ASC" } else { "DESC" };
        let name_filter = (!id.name.is_empty()).then(|| id.name.clone());
        let (extra, mut values) = execution_filters(&req.filters)?;
        let (org, project, domain, limit, offset) = (
            q.org.clone(),
            q.project.clone(),
            q.domain.clone(),
            i64::from(q.limit),
            q.offset as i64,
        );
        let rows = self
            .blocking(move |store| {
                store
                    .read(|c| {
                        let sql = format!(
                            "SELECT {EXEC_COLUMNS} FROM executions WHERE org=?1 AND project=?2 AND domain=?3
                             AND (?4 IS NULL OR name=?4){extra} ORDER BY {order} {dir}, seq {dir} LIMIT ?5 OFFSET ?6"
                        );
                        let mut all: Vec<Value> = vec![
                            org.into(), project.into(), domain.into(), name_filter.into(), limit.into(), offset.into(),
                        ];
                        all.append(&mut values);
                        let mut stmt = c.prepare_cached(&sql)?;
                        let rows = stmt.query_map(rusqlite::params_from_iter(all), exec_from_row)?;
                        Ok(rows.collect::<Result<Vec<_>, _>>()?)
                    })
                    .map_err(db)
            })
            .await?;
        let token = crate::query::next_token(&q, rows.len());
        Ok(ExecutionList {
            executions: rows.iter().map(ExecRow::to_execution).collect(),
            token,
        })
    }

    /// `GetExecutionData`: the full inputs and (once succeeded) outputs.
    pub async fn get_data(
        &self,
        req: WorkflowExecutionGetDataRequest,
    ) -> Result<WorkflowExecutionGetDataResponse, Status> {
        let row = self.row(exec_id(req.id.as_ref())?).await?;
        let mut resp = WorkflowExecutionGetDataResponse {
            full_inputs: Some(row.inputs.clone()),
            full_outputs: row.outputs.clone(),
            ..Default::default()
        };
        if let Some(outputs) = &row.outputs {
            let bytes = prost::Message::encode_to_vec(outputs);
            if bytes.len() > self.max_inline_bytes {
                // Too large to send inline, as flyteadmin answers: the location instead, which
                // clients read through DataProxy.CreateDownloadLocation.
                let path = self
                    .blob_root
                    .join("offloaded")
                    .join(&row.id.name)
                    .join("outputs.pb");
                // Written beside, then renamed: a reader never sees half a file.
                let tmp = path.with_extension(format!("tmp{}", std::process::id()));
                let written = path
                    .parent()
                    .map(std::fs::create_dir_all)
                    .unwrap_or(Ok(()))
                    .and_then(|_| std::fs::write(&tmp, &bytes))
                    .and_then(|_| std::fs::rename(&tmp, &path));
                if written.is_ok() {
                    resp.full_outputs = None;
                    #[allow(deprecated)]
                    {
                        resp.outputs = Some(union_idl::flyteidl::admin::UrlBlob {
                            url: format!("file://{}", path.display()),
                            bytes: bytes.len() as i64,
                        });
                    }
                }
            }
        }
        Ok(resp)
    }

    /// `ListNodeExecutions`: top-level nodes, or the children of `unique_parent_id`.
    pub async fn list_nodes(
        &self,
        req: NodeExecutionListRequest,
    ) -> Result<NodeExecutionList, Status> {
        let id = exec_id(req.workflow_execution_id.as_ref())?;
        let parent = req.unique_parent_id.clone();
        let limit = if req.limit == 0 {
            i64::MAX
        } else {
            i64::from(req.limit)
        };
        let offset: i64 = if req.token.is_empty() {
            0
        } else {
            req.token.parse().map_err(|_| {
                Status::invalid_argument(format!("invalid pagination token `{}`", req.token))
            })?
        };
        let lookup = id.clone();
        let rows = self
            .blocking(move |store| {
                store
                    .read(|c| {
                        let Some(exec) = execution_row(c, &lookup)? else { return Ok(None) };
                        let sql = format!(
                            "SELECT {NODE_COLUMNS} FROM node_executions WHERE execution_seq=?1 AND parent_node_id=?2
                             ORDER BY seq LIMIT ?3 OFFSET ?4"
                        );
                        let mut stmt = c.prepare_cached(&sql)?;
                        let rows = stmt.query_map(params![exec.seq, parent, limit, offset], node_from_row)?;
                        Ok(Some(rows.collect::<Result<Vec<_>, _>>()?))
                    })
                    .map_err(db)?
                    .ok_or_else(|| not_found(&lookup))
            })
            .await?;
        let token = if req.limit > 0 && rows.len() as i64 == limit {
            (offset + limit).to_string()
        } else {
            String::new()
        };
        Ok(NodeExecutionList {
            node_executions: rows.iter().map(|r| r.to_node_execution(&id)).collect(),
            token,
        })
    }

    async fn node_row(
        &self,
        id: Option<&NodeExecutionIdentifier>,
    ) -> Result<(WorkflowExecutionIdentifier, NodeRow), Status> {
        let nid = id.ok_or_else(|| Status::invalid_argument("missing id"))?;
        let exec = exec_id(nid.execution_id.as_ref())?;
        crate::status::require("id.node_id", &nid.node_id)?;
        let node_id = nid.node_id.clone();
        let shown = nid_name(id);
        let lookup = exec.clone();
        let row = self
            .blocking(move |store| {
                store
                    .read(|c| {
                        let Some(e) = execution_row(c, &lookup)? else { return Ok(None) };
                        let sql = format!("SELECT {NODE_COLUMNS} FROM node_executions WHERE execution_seq=?1 AND node_id=?2");
                        Ok(c.prepare_cached(&sql)?.query_row(params![e.seq, node_id], node_from_row).optional()?)
                    })
                    .map_err(db)?
                    .ok_or_else(|| Status::not_found(format!("node execution `{shown}` of `{}` does not exist", lookup.name)))
            })
            .await?;
        Ok((exec, row))
    }

    /// `GetDynamicNodeWorkflow`: the workflow a dynamic node runs as its children, compiled.
    pub async fn get_dynamic_node_workflow(
        &self,
        req: GetDynamicNodeWorkflowRequest,
    ) -> Result<DynamicNodeWorkflowResponse, Status> {
        let (exec, row) = self.node_row(req.id.as_ref()).await?;
        let compiled = self
            .dynamic_workflow(exec, row.node_id.clone())
            .await?
            .ok_or_else(|| {
                Status::not_found(format!(
                    "node execution `{}` ran no dynamic workflow",
                    row.node_id
                ))
            })?;
        Ok(DynamicNodeWorkflowResponse {
            compiled_workflow: Some(compiled),
        })
    }

    /// The compiled workflow a dynamic node recorded, once its task has returned one.
    async fn dynamic_workflow(
        &self,
        exec: WorkflowExecutionIdentifier,
        node_id: String,
    ) -> Result<Option<CompiledWorkflowClosure>, Status> {
        let bytes = self
            .blocking(move |store| {
                store
                    .read(|c| {
                        let Some(e) = execution_row(c, &exec)? else { return Ok(None) };
                        Ok(c.prepare_cached("SELECT dynamic_workflow FROM node_executions WHERE execution_seq=?1 AND node_id=?2")?
                            .query_row(params![e.seq, node_id], |r| r.get::<_, Option<Vec<u8>>>(0))
                            .optional()?
                            .flatten())
                    })
                    .map_err(db)
            })
            .await?;
        Ok(bytes.and_then(decode))
    }

    /// `GetNodeExecution`.
    pub async fn get_node(&self, req: NodeExecutionGetRequest) -> Result<NodeExecution, Status> {
        let (exec, row) = self.node_row(req.id.as_ref()).await?;
        Ok(row.to_node_execution(&exec))
    }

    /// `GetNodeExecutionData`.
    pub async fn get_node_data(
        &self,
        req: NodeExecutionGetDataRequest,
    ) -> Result<NodeExecutionGetDataResponse, Status> {
        let (exec, row) = self.node_row(req.id.as_ref()).await?;
        let dynamic_workflow = if row.kind == "dynamic" {
            self.dynamic_workflow(exec, row.node_id.clone())
                .await?
                .map(|compiled| DynamicWorkflowNodeMetadata {
                    id: compiled
                        .primary
                        .as_ref()
                        .and_then(|p| p.template.as_ref())
                        .and_then(|t| t.id.clone()),
                    compiled_workflow: Some(compiled),
                    dynamic_job_spec_uri: String::new(),
                })
        } else {
            None
        };
        Ok(NodeExecutionGetDataResponse {
            full_inputs: row.inputs,
            full_outputs: row.outputs,
            dynamic_workflow,
            ..Default::default()
        })
    }

    /// `ListTaskExecutions`: the attempts of a task node, with their log links.
    pub async fn list_tasks(
        &self,
        req: TaskExecutionListRequest,
    ) -> Result<TaskExecutionList, Status> {
        let nid = req
            .node_execution_id
            .clone()
            .ok_or_else(|| Status::invalid_argument("missing node_execution_id"))?;
        let rows = self.task_rows(&nid, None).await?;
        let exec = nid.execution_id.clone().unwrap_or_default();
        let task_executions = rows
            .into_iter()
            .map(|t| self.to_task_execution(&exec, &nid, t))
            .collect();
        Ok(TaskExecutionList {
            task_executions,
            token: String::new(),
        })
    }

    /// `GetTaskExecution`: one attempt.
    pub async fn get_task(&self, req: TaskExecutionGetRequest) -> Result<TaskExecution, Status> {
        let id = req
            .id
            .ok_or_else(|| Status::invalid_argument("missing id"))?;
        let nid = id
            .node_execution_id
            .clone()
            .ok_or_else(|| Status::invalid_argument("missing id.node_execution_id"))?;
        let row = self
            .task_rows(&nid, Some(id.retry_attempt))
            .await?
            .pop()
            .ok_or_else(|| {
                Status::not_found(format!(
                    "attempt {} of node execution `{}` does not exist",
                    id.retry_attempt, nid.node_id
                ))
            })?;
        let exec = nid.execution_id.clone().unwrap_or_default();
        Ok(self.to_task_execution(&exec, &nid, row))
    }

    /// `GetTaskExecutionData`: the node's inputs and the attempt's outputs.
    pub async fn get_task_data(
        &self,
        req: TaskExecutionGetDataRequest,
    ) -> Result<TaskExecutionGetDataResponse, Status> {
        let id = req
            .id
            .ok_or_else(|| Status::invalid_argument("missing id"))?;
        let nid = id
            .node_execution_id
            .clone()
            .ok_or_else(|| Status::invalid_argument("missing id.node_execution_id"))?;
        let row = self
            .task_rows(&nid, Some(id.retry_attempt))
            .await?
            .pop()
            .ok_or_else(|| {
                Status::not_found(format!(
                    "attempt {} of node execution `{}` does not exist",
                    id.retry_attempt, nid.node_id
                ))
            })?;
        let (_, node) = self.node_row(Some(&nid)).await?;
        Ok(TaskExecutionGetDataResponse {
            full_inputs: node.inputs,
            full_outputs: row.outputs,
            ..Default::default()
        })
    }

    async fn task_rows(
        &self,
        nid: &NodeExecutionIdentifier,
        attempt: Option<u32>,
    ) -> Result<Vec<TaskRow>, Status> {
        let exec = exec_id(nid.execution_id.as_ref())?;
        let node_id = nid.node_id.clone();
        self.blocking(move |store| {
            store
                .read(|c| {
                    let Some(e) = execution_row(c, &exec)? else { return Ok(None) };
                    let mut stmt = c.prepare_cached(
                        "SELECT retry_attempt, task_id, phase, outputs, error, created_at, started_at, finished_at,
                         updated_at FROM task_executions WHERE execution_seq=?1 AND node_id=?2
                         AND (?3 IS NULL OR retry_attempt=?3) ORDER BY retry_attempt",
                    )?;
                    let rows = stmt.query_map(params![e.seq, node_id, attempt], |r| {
                        Ok(TaskRow {
                            retry_attempt: r.get(0)?,
                            task_id: decode::<Identifier>(r.get::<_, Vec<u8>>(1)?).unwrap_or_default(),
                            phase: r.get(2)?,
                            outputs: r.get::<_, Option<Vec<u8>>>(3)?.and_then(decode::<LiteralMap>),
                            error: r.get::<_, Option<Vec<u8>>>(4)?.and_then(decode::<ExecutionError>),
                            created_at: r.get(5)?,
                            started_at: r.get(6)?,
                            finished_at: r.get(7)?,
                            updated_at: r.get(8)?,
                        })
                    })?;
                    Ok(Some(rows.collect::<Result<Vec<_>, _>>()?))
                })
                .map_err(db)?
                .ok_or_else(|| not_found(&exec))
        })
        .await
    }
}

/// ListExecutions' `filters` as SQL (terms ANDed, each `op(field,value)`): on `phase` (by name,
/// `value_in(phase,RUNNING;QUEUED)`, as flyteconsole filters) and on the execution's `name`
/// (`eq`, `ne`, `contains`, `value_in`). Terms may be joined by `+` or, once a query string's
/// `+` has been decoded, by a space.
fn execution_filters(filters: &str) -> Result<(String, Vec<Value>), Status> {
    let mut sql = String::new();
    let mut values = Vec::new();
    for term in filters
        .split(['+', ' '])
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let bad = |why: &str| Status::invalid_argument(format!("invalid filter `{term}`: {why}"));
        let (op, rest) = term
            .split_once('(')
            .ok_or_else(|| bad("expected op(field,value)"))?;
        let (field, value) = rest
            .strip_suffix(')')
            .and_then(|r| r.split_once(','))
            .ok_or_else(|| bad("expected op(field,value)"))?;
        let field = field.trim();
        let column = match field {
            "phase" | "execution.phase" => "phase",
            "name" | "execution.name" | "execution_name" => "name",
            _ => return Err(bad("the sandbox filters executions on phase and name")),
        };
        let as_value = |v: &str| -> Result<Value, Status> {
            if column == "name" {
                return Ok(Value::Text(v.to_string()));
            }
            let phase = v
                .parse::<i32>()
                .ok()
                .or_else(|| Phase::from_str_name(v).map(|p| p as i32))
                .ok_or_else(|| {
                    bad(&format!(
                        "`{v}` is not a phase such as RUNNING or SUCCEEDED"
                    ))
                })?;
            Ok(Value::Integer(i64::from(phase)))
        };
        let first = values.len() + 7;
        match op.trim() {
            "eq" | "ne" => {
                values.push(as_value(value)?);
                let cmp = if op.trim() == "eq" { "=" } else { "<>" };
                sql.push_str(&format!(" AND {column} {cmp} ?{first}"));
            }
            "contains" if column == "name" => {
                let escaped = value
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_");
                values.push(Value::Text(format!("%{escaped}%")));
                sql.push_str(&format!(" AND name LIKE ?{first} ESCAPE '\\'"));
            }
            "value_in" => {
                let list = value
                    .split(';')
                    .filter(|v| !v.is_empty())
                    .map(as_value)
                    .collect::<Result<Vec<_>, _>>()?;
                if list.is_empty() {
                    return Err(bad("value_in needs at least one value"));
                }
                let marks: Vec<String> =
                    (0..list.len()).map(|i| format!("?{}", first + i)).collect();
                values.extend(list);
                sql.push_str(&format!(" AND {column} IN ({})", marks.join(",")));
            }
            other => {
                return Err(bad(&format!(
                    "operation `{other}` is not supported on {column} (eq, ne, value_in{})",
                    if column == "name" { ", contains" } else { "" }
                )))
            }
        }
    }
    Ok((sql, values))
}

#[cfg(test)]
mod filter_tests {
    use super::*;

    #[test]
    fn phases_by_name_and_names_by_substring() {
        let (sql, values) =
            execution_filters("value_in(phase,RUNNING;SUCCEEDED)+contains(name,a_b)").unwrap();
        assert_eq!(sql, " AND phase IN (?7,?8) AND name LIKE ?9 ESCAPE '\\'");
        assert_eq!(
            values,
            vec![
                Value::Integer(Phase::Running as i64),
                Value::Integer(Phase::Succeeded as i64),
                Value::Text("%a\\_b%".into())
            ]
        );
        // A query string's decoded `+` is a space.
        assert_eq!(
            execution_filters("eq(phase,4) eq(name,x)").unwrap().1.len(),
            2
        );
        assert!(execution_filters("eq(phase,BLUE)").is_err());
        assert!(execution_filters("eq(colour,red)").is_err());
        assert!(execution_filters("contains(phase,RUN)").is_err());
    }
}
