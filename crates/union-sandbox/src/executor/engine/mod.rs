//! The scheduler: runs a workflow template's nodes in dependency order, in parallel.
//!
//! Where things happen: `schedule` walks a template's DAG, `node` runs one node by kind,
//! `branch` evaluates branch nodes, `task` runs task attempts (retries, timeouts, the
//! parallelism limit), `events` reports node phases, `single_task` builds the workflow of an
//! execution created by task id. `schedule`, `node` and `branch` call one another on purpose:
//! Flyte's nodes nest (a branch case or a subworkflow is itself nodes to schedule), so running
//! them is one recursion spread over three files.

mod array;
mod branch;
mod cache;
mod child;
mod dynamic;
mod events;
mod gate;
mod node;
mod schedule;
mod single_task;
mod task;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::{
    CacheKey, CancelToken, EventSink, ExecutionOutcome, LaunchPlanResolver, NoCache, NoSignals,
    RunOptions, SignalSource, TaskCache, TaskRunner, WorkflowClosure,
};
use union_idl::flyteidl::core::{self, execution_error::ErrorKind, ExecutionError, LiteralMap};

use schedule::run_workflow;
pub(super) use single_task::single_task_closure;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// Task attempts (containers) running at once, across all executions.
    pub max_parallelism: usize,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            max_parallelism: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        }
    }
}

/// Runs executions; cheap to clone, shares its parallelism limit between executions.
#[derive(Clone)]
pub struct Executor {
    runner: Arc<dyn TaskRunner>,
    resolver: Arc<dyn LaunchPlanResolver>,
    signals: Arc<dyn SignalSource>,
    cache: Arc<dyn TaskCache>,
    /// One lock per key of the `cache_serialize` tasks running now.
    serialized: Arc<std::sync::Mutex<HashMap<CacheKey, Arc<tokio::sync::Mutex<()>>>>>,
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("available_permits", &self.permits.available_permits())
            .finish()
    }
}

/// Why a node (and so its workflow) did not succeed.
#[derive(Debug, Clone)]
enum NodeFailure {
    Failed {
        node_id: String,
        error: ExecutionError,
    },
    Aborted,
}

/// Per-execution state shared by every node future.
#[derive(Clone)]
struct Ctx {
    exec: Executor,
    execution: core::WorkflowExecutionIdentifier,
    sink: Arc<dyn EventSink>,
    /// Environment added to every task run under this context (an array element's index).
    task_env: Arc<Vec<(String, String)>>,
    options: Arc<RunOptions>,
}

impl Executor {
    /// An executor running tasks with `runner` and resolving launch plan nodes with `resolver`.
    pub fn new(
        config: ExecutorConfig,
        runner: Arc<dyn TaskRunner>,
        resolver: Arc<dyn LaunchPlanResolver>,
    ) -> Self {
        Executor {
            runner,
            resolver,
            signals: Arc::new(NoSignals),
            cache: Arc::new(NoCache),
            serialized: Arc::default(),
            permits: Arc::new(Semaphore::new(config.max_parallelism.max(1))),
        }
    }

    /// The same, with cached tasks' outputs kept in `cache`.
    pub fn with_cache(mut self, cache: Arc<dyn TaskCache>) -> Self {
        self.cache = cache;
        self
    }

    /// The same, with gate nodes waiting for approvals and inputs from `signals`.
    pub fn with_signals(mut self, signals: Arc<dyn SignalSource>) -> Self {
        self.signals = signals;
        self
    }

    /// Run `closure.primary` with `inputs` until it finishes or `cancel` fires; progress goes to `sink`.
    pub async fn run(
        &self,
        execution: core::WorkflowExecutionIdentifier,
        closure: Arc<WorkflowClosure>,
        inputs: LiteralMap,
        sink: Arc<dyn EventSink>,
        cancel: CancelToken,
    ) -> ExecutionOutcome {
        self.run_with_options(
            execution,
            closure,
            inputs,
            sink,
            cancel,
            RunOptions::default(),
        )
        .await
    }

    /// [`run`](Self::run), with the execution's settings.
    pub async fn run_with_options(
        &self,
        execution: core::WorkflowExecutionIdentifier,
        closure: Arc<WorkflowClosure>,
        inputs: LiteralMap,
        sink: Arc<dyn EventSink>,
        cancel: CancelToken,
        options: RunOptions,
    ) -> ExecutionOutcome {
        let ctx = Ctx {
            exec: self.clone(),
            execution,
            sink,
            task_env: Arc::default(),
            options: Arc::new(options),
        };
        let template = Arc::new(closure.primary.clone());
        match run_workflow(ctx, closure, template, inputs, None, cancel).await {
            Ok(outputs) => ExecutionOutcome::Succeeded(outputs),
            Err(NodeFailure::Failed { node_id, error }) => {
                ExecutionOutcome::Failed { node_id, error }
            }
            Err(NodeFailure::Aborted) => ExecutionOutcome::Aborted,
        }
    }
}

fn failed(node_id: &str, code: &str, message: impl Into<String>, kind: ErrorKind) -> NodeFailure {
    NodeFailure::Failed {
        node_id: node_id.to_string(),
        error: ExecutionError {
            code: code.into(),
            message: message.into(),
            kind: kind as i32,
            ..Default::default()
        },
    }
}

fn unique_id(parent: Option<&str>, id: &str) -> String {
    match parent {
        // flytepropeller's child node ids: <parent>-<parent retry attempt>-<child>.
        Some(p) => format!("{p}-0-{id}"),
        None => id.to_string(),
    }
}

#[cfg(test)]
mod tests;
