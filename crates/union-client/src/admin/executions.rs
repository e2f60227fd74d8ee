//! Executions: create, get, list and terminate them, read their inputs and outputs (inline or
//! from the blob store, as flytekit does), and walk their node and task executions.

use super::*;

impl AdminClient {
    /// CreateExecution of a launch plan (or a task, whose id goes in `launch_plan`), with the
    /// spec flytekit's `FlyteRemote.execute` sends.
    pub async fn create_execution(
        &self,
        project: &str,
        domain: &str,
        name: Option<&str>,
        target: core::Identifier,
        inputs: core::LiteralMap,
        options: &ExecutionOptions,
    ) -> Result<core::WorkflowExecutionIdentifier, AdminError> {
        let mut c = self.admin.clone();
        let spec = options.spec(target.clone());
        let req = admin::ExecutionCreateRequest {
            project: project.into(),
            domain: domain.into(),
            name: name.unwrap_or_default().into(),
            spec: Some(spec),
            inputs: Some(inputs),
            ..Default::default()
        };
        let what = format!("an execution of {}", id_text(&target));
        c.create_execution(req)
            .await
            .map_err(|s| self.status_error("CreateExecution", what, s))?
            .into_inner()
            .id
            .ok_or_else(|| AdminError::Rpc {
                rpc: "CreateExecution",
                what: id_text(&target),
                code: Code::Internal,
                message: "the server returned no execution id".into(),
            })
    }

    /// GetExecution.
    pub async fn get_execution(
        &self,
        id: &core::WorkflowExecutionIdentifier,
    ) -> Result<admin::Execution, AdminError> {
        let mut c = self.admin.clone();
        c.get_execution(admin::WorkflowExecutionGetRequest {
            id: Some(id.clone()),
        })
        .await
        .map(|r| r.into_inner())
        .map_err(|s| self.status_error("GetExecution", format!("execution {}", id.name), s))
    }

    /// ListExecutions in a project/domain, newest first.
    pub async fn list_executions(
        &self,
        project: &str,
        domain: &str,
        limit: u32,
    ) -> Result<Vec<admin::Execution>, AdminError> {
        let mut c = self.admin.clone();
        let req = admin::ResourceListRequest {
            id: Some(admin::NamedEntityIdentifier {
                project: project.into(),
                domain: domain.into(),
                ..Default::default()
            }),
            limit,
            sort_by: Some(admin::Sort {
                key: "created_at".into(),
                direction: admin::sort::Direction::Descending as i32,
            }),
            ..Default::default()
        };
        c.list_executions(req)
            .await
            .map(|r| r.into_inner().executions)
            .map_err(|s| self.status_error("ListExecutions", format!("{project}/{domain}"), s))
    }

    /// GetExecutionData (inputs and outputs).
    pub async fn get_execution_data(
        &self,
        id: &core::WorkflowExecutionIdentifier,
    ) -> Result<admin::WorkflowExecutionGetDataResponse, AdminError> {
        let mut c = self.admin.clone();
        c.get_execution_data(admin::WorkflowExecutionGetDataRequest {
            id: Some(id.clone()),
        })
        .await
        .map(|r| r.into_inner())
        .map_err(|s| self.status_error("GetExecutionData", format!("execution {}", id.name), s))
    }

    /// An execution's inputs and outputs as literal maps: inline when the server sent them
    /// (`full_inputs` / `full_outputs`), else read from `inputs.url` / `outputs.url`, as
    /// flytekit's `_get_output_literal_map` does for data too large to come inline. An `http(s)`
    /// URL is fetched as it is; a storage URI (`s3://...`) through DataProxy's
    /// `CreateDownloadLocation`.
    // `inputs`/`outputs` are deprecated in flyteidl, and flytekit still reads them: so do we.
    #[allow(deprecated)]
    pub async fn execution_literals(
        &self,
        id: &core::WorkflowExecutionIdentifier,
    ) -> Result<(core::LiteralMap, core::LiteralMap), AdminError> {
        let data = self.get_execution_data(id).await?;
        let inputs = self
            .inline_or_fetched("inputs", id, data.full_inputs, data.inputs)
            .await?;
        let outputs = self
            .inline_or_fetched("outputs", id, data.full_outputs, data.outputs)
            .await?;
        Ok((inputs, outputs))
    }

    async fn inline_or_fetched(
        &self,
        what: &'static str,
        id: &core::WorkflowExecutionIdentifier,
        inline: Option<core::LiteralMap>,
        blob: Option<admin::UrlBlob>,
    ) -> Result<core::LiteralMap, AdminError> {
        if let Some(m) = inline.filter(|m| !m.literals.is_empty()) {
            return Ok(m);
        }
        let Some(blob) = blob.filter(|b| b.bytes > 0 && !b.url.is_empty()) else {
            return Ok(core::LiteralMap::default());
        };
        let shown = blob.url.split('?').next().unwrap_or_default().to_string();
        let err = |detail: String| AdminError::OffloadedData {
            what,
            execution: id.name.clone(),
            url: shown.clone(),
            detail,
        };
        let url = if blob.url.starts_with("http://") || blob.url.starts_with("https://") {
            blob.url.clone()
        } else {
            #[allow(deprecated)]
            let req = union_idl::flyteidl::service::CreateDownloadLocationRequest {
                native_url: blob.url.clone(),
                expires_in: Some(union_idl::google_protobuf::Duration {
                    seconds: 600,
                    nanos: 0,
                }),
            };
            let mut c = self.data_proxy.clone();
            #[allow(deprecated)]
            let signed = c
                .create_download_location(req)
                .await
                .map_err(|s| {
                    err(format!(
                        "CreateDownloadLocation: {:?}: {}",
                        s.code(),
                        s.message()
                    ))
                })?
                .into_inner()
                .signed_url;
            signed
        };
        let http = crate::auth::http_client_for(&self.tls).map_err(err)?;
        let resp = http
            .get(&url)
            .send()
            .await
            .map_err(|e| err(crate::auth::describe_http_error(&e)))?;
        if !resp.status().is_success() {
            return Err(err(format!("HTTP {}", resp.status().as_u16())));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| err(crate::auth::describe_http_error(&e)))?;
        <core::LiteralMap as prost::Message>::decode(bytes.as_ref())
            .map_err(|e| err(format!("not a LiteralMap: {e}")))
    }

    /// ListNodeExecutions of an execution (top level).
    pub async fn list_node_executions(
        &self,
        id: &core::WorkflowExecutionIdentifier,
    ) -> Result<Vec<admin::NodeExecution>, AdminError> {
        let mut c = self.admin.clone();
        let req = admin::NodeExecutionListRequest {
            workflow_execution_id: Some(id.clone()),
            limit: 1000,
            ..Default::default()
        };
        c.list_node_executions(req)
            .await
            .map(|r| r.into_inner().node_executions)
            .map_err(|s| {
                self.status_error("ListNodeExecutions", format!("execution {}", id.name), s)
            })
    }

    /// Every node of an execution, depth first, with its depth: the top-level nodes and, under
    /// each parent node (subworkflow, branch, dynamic, array), its children.
    pub async fn list_node_tree(
        &self,
        id: &core::WorkflowExecutionIdentifier,
    ) -> Result<Vec<(usize, admin::NodeExecution)>, AdminError> {
        let top = self.list_node_executions(id).await?;
        let mut out = Vec::new();
        // (depth, node) in reverse, so that popping visits them in order.
        let mut stack: Vec<(usize, admin::NodeExecution)> =
            top.into_iter().rev().map(|n| (0, n)).collect();
        while let Some((depth, node)) = stack.pop() {
            let parent = node.metadata.as_ref().is_some_and(|m| m.is_parent_node);
            let uid = node
                .id
                .as_ref()
                .map(|i| i.node_id.clone())
                .unwrap_or_default();
            out.push((depth, node));
            // Flyte nests at most a few levels; the bound guards against a backend's cycle.
            if parent && depth < 8 {
                let mut c = self.admin.clone();
                let req = admin::NodeExecutionListRequest {
                    workflow_execution_id: Some(id.clone()),
                    unique_parent_id: uid.clone(),
                    limit: 1000,
                    ..Default::default()
                };
                let children = c
                    .list_node_executions(req)
                    .await
                    .map(|r| r.into_inner().node_executions)
                    .map_err(|s| {
                        self.status_error("ListNodeExecutions", format!("node {uid}"), s)
                    })?;
                stack.extend(children.into_iter().rev().map(|n| (depth + 1, n)));
            }
        }
        Ok(out)
    }

    /// ListTaskExecutions of a node execution (its attempts, with log links).
    pub async fn list_task_executions(
        &self,
        id: &core::NodeExecutionIdentifier,
    ) -> Result<Vec<admin::TaskExecution>, AdminError> {
        let mut c = self.admin.clone();
        let req = admin::TaskExecutionListRequest {
            node_execution_id: Some(id.clone()),
            limit: 100,
            ..Default::default()
        };
        c.list_task_executions(req)
            .await
            .map(|r| r.into_inner().task_executions)
            .map_err(|s| self.status_error("ListTaskExecutions", format!("node {}", id.node_id), s))
    }

    /// TerminateExecution.
    pub async fn terminate_execution(
        &self,
        id: &core::WorkflowExecutionIdentifier,
        cause: &str,
    ) -> Result<(), AdminError> {
        let mut c = self.admin.clone();
        c.terminate_execution(admin::ExecutionTerminateRequest {
            id: Some(id.clone()),
            cause: cause.into(),
        })
        .await
        .map(|_| ())
        .map_err(|s| self.status_error("TerminateExecution", format!("execution {}", id.name), s))
    }
}
