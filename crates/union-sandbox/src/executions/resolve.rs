//! Launch plans from the store: what `CreateExecution` runs, and how launch plan nodes inside
//! a running workflow start their child executions ([`StoreResolver`]).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use prost::Message;
use tonic::Status;

use super::Executions;
use crate::executor::{
    ChildExecution, LaunchPlanResolver, ResolvedLaunchPlan, RunOptions, WorkflowClosure,
};
use crate::status::db;
use crate::store::{EntityKey, EntityKind, Store};
use union_idl::flyteidl::admin::{LaunchPlanSpec, WorkflowClosure as AdminWorkflowClosure};
use union_idl::flyteidl::core::{parameter, Identifier, LiteralMap, WorkflowExecutionIdentifier};

/// Resolves launch plan nodes from the store.
pub(super) struct StoreResolver {
    pub(super) executions: std::sync::Weak<Executions>,
}

impl LaunchPlanResolver for StoreResolver {
    fn resolve<'a>(
        &'a self,
        id: &'a Identifier,
    ) -> BoxFuture<'a, Result<ResolvedLaunchPlan, String>> {
        Box::pin(async move {
            let executions = self
                .executions
                .upgrade()
                .ok_or("the sandbox is shutting down")?;
            let key = crate::compile::key_of(id);
            let store = executions.store.clone();
            let (closure, lp) = tokio::task::spawn_blocking(move || load_launch_plan(&store, &key))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|s| s.message().to_string())?;
            let mut defaults = LiteralMap::default();
            if let Some(p) = &lp.default_inputs {
                for (k, param) in &p.parameters {
                    if let Some(parameter::Behavior::Default(l)) = &param.behavior {
                        defaults.literals.insert(k.clone(), l.clone());
                    }
                }
            }
            if let Some(fixed) = &lp.fixed_inputs {
                defaults.literals.extend(fixed.literals.clone());
            }
            Ok(ResolvedLaunchPlan {
                closure: Arc::new(closure),
                default_inputs: defaults,
            })
        })
    }

    fn start_child<'a>(
        &'a self,
        parent: &'a WorkflowExecutionIdentifier,
        node_id: &'a str,
        id: &'a Identifier,
        inputs: LiteralMap,
        options: &'a RunOptions,
    ) -> Option<BoxFuture<'a, Result<ChildExecution, String>>> {
        Some(Box::pin(async move {
            let executions = self
                .executions
                .upgrade()
                .ok_or("the sandbox is shutting down")?;
            executions
                .create_child(parent, node_id, id, inputs, options.clone())
                .await
                .map_err(|s| s.message().to_string())
        }))
    }
}

pub(super) fn load_launch_plan(
    store: &Store,
    key: &EntityKey,
) -> Result<(WorkflowClosure, LaunchPlanSpec), Status> {
    let row = store
        .get_entity(EntityKind::LaunchPlan, key)
        .map_err(db)?
        .ok_or_else(|| {
            Status::not_found(format!(
                "{} does not exist",
                crate::status::describe(EntityKind::LaunchPlan, key)
            ))
        })?;
    let lp = LaunchPlanSpec::decode(row.spec.as_slice())
        .map_err(|e| Status::internal(format!("stored launch plan is unreadable: {e}")))?;
    let wf_id = lp
        .workflow_id
        .as_ref()
        .ok_or_else(|| Status::internal("stored launch plan has no workflow"))?;
    let wf_key = crate::compile::key_of(wf_id);
    let wf = store
        .get_entity(EntityKind::Workflow, &wf_key)
        .map_err(db)?
        .ok_or_else(|| {
            Status::not_found(format!(
                "{} does not exist",
                crate::status::describe(EntityKind::Workflow, &wf_key)
            ))
        })?;
    let closure = AdminWorkflowClosure::decode(wf.closure.as_slice())
        .map_err(|e| Status::internal(format!("stored workflow is unreadable: {e}")))?;
    let compiled = closure
        .compiled_workflow
        .ok_or_else(|| Status::internal("stored workflow is not compiled"))?;
    let closure =
        WorkflowClosure::from_compiled(compiled).map_err(|e| Status::internal(e.to_string()))?;
    Ok((closure, lp))
}
