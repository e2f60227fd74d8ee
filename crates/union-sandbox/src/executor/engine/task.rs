//! Task nodes: the cache first (`cache`), then attempts under the executor's parallelism limit,
//! with retries and timeouts, reporting each attempt's task events.

use std::sync::Arc;
use std::time::Duration;

use super::cache::cache_key;
use super::events::{emit_cache_status, emit_node};
use super::{failed, Ctx, NodeFailure};
use crate::executor::{
    now_nanos, AttemptId, CancelToken, Event, NodePhase, TaskEvent, TaskFailure, TaskOutcome,
    TaskPhase, TaskRequest,
};
use union_idl::flyteidl::core::{
    execution_error::ErrorKind, CatalogCacheStatus, DynamicJobSpec, ExecutionError, LiteralMap,
    Node, TaskTemplate,
};

/// What a task node's successful attempt produced.
pub(super) enum TaskDone {
    /// The task's outputs.
    Outputs(LiteralMap),
    /// A dynamic task's workflow, still to run.
    Dynamic(Box<DynamicJobSpec>),
}

fn duration_of(d: &prost_types::Duration) -> Option<Duration> {
    if d.seconds < 0 || d.nanos < 0 || (d.seconds == 0 && d.nanos == 0) {
        return None;
    }
    Some(Duration::new(d.seconds as u64, d.nanos as u32))
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn run_task_node(
    ctx: &Ctx,
    node: &Node,
    uid: &str,
    parent: Option<&str>,
    task: Arc<TaskTemplate>,
    inputs: LiteralMap,
    cancel: &CancelToken,
) -> Result<TaskDone, NodeFailure> {
    let Some((key, serialized)) = cache_key(&task, node, &inputs) else {
        return run_attempts(ctx, node, uid, parent, task, inputs, cancel).await;
    };
    // cache_serialize: one execution computes a key at a time; the others then find its result.
    let lock = serialized.then(|| {
        let mut locks = ctx
            .exec
            .serialized
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        locks.entry(key.clone()).or_default().clone()
    });
    let _guard = match &lock {
        Some(l) => Some(tokio::select! {
            g = l.lock() => g,
            _ = cancel.cancelled() => return Err(NodeFailure::Aborted),
        }),
        None => None,
    };
    if !ctx.options.overwrite_cache {
        if let Some(outputs) = ctx.exec.cache.get(&key).await {
            emit_cache_status(
                ctx,
                node,
                uid,
                parent,
                &inputs,
                CatalogCacheStatus::CacheHit,
            );
            return Ok(TaskDone::Outputs(outputs));
        }
    }
    let done = run_attempts(ctx, node, uid, parent, task, inputs.clone(), cancel).await?;
    if let TaskDone::Outputs(outputs) = &done {
        let producer = AttemptId {
            execution: ctx.execution.clone(),
            node_id: uid.to_string(),
            retry_attempt: 0,
        };
        let status = match ctx.exec.cache.put(&key, outputs, &producer).await {
            Ok(()) => CatalogCacheStatus::CachePopulated,
            Err(_) => CatalogCacheStatus::CachePutFailure,
        };
        emit_cache_status(ctx, node, uid, parent, &inputs, status);
    }
    Ok(done)
}

/// The task's attempts: retries, timeouts, the parallelism limit.
async fn run_attempts(
    ctx: &Ctx,
    node: &Node,
    uid: &str,
    parent: Option<&str>,
    task: Arc<TaskTemplate>,
    inputs: LiteralMap,
    cancel: &CancelToken,
) -> Result<TaskDone, NodeFailure> {
    let meta = task.metadata.as_ref();
    let node_meta = node.metadata.as_ref();
    let retries = node_meta
        .and_then(|m| m.retries.as_ref())
        .or_else(|| meta.and_then(|m| m.retries.as_ref()))
        .map(|r| r.retries)
        .unwrap_or(0);
    let timeout = node_meta
        .and_then(|m| m.timeout.as_ref())
        .or_else(|| meta.and_then(|m| m.timeout.as_ref()))
        .and_then(duration_of);
    let runner = ctx.exec.runner.clone();
    // An eager task mostly waits for the executions it starts, whose tasks need permits: holding
    // one could starve them (with a limit of 1, forever).
    let needs_permit = !meta.is_some_and(|m| m.is_eager);
    let mut announced = false;
    let mut attempt: u32 = 0;
    loop {
        let permit = if needs_permit {
            Some(tokio::select! {
                p = ctx.exec.permits.clone().acquire_owned() => p.map_err(|_| failed(uid, "Internal", "the executor is shut down", ErrorKind::System))?,
                _ = cancel.cancelled() => return Err(NodeFailure::Aborted),
            })
        } else {
            None
        };
        if !announced {
            emit_node(
                ctx,
                node,
                uid,
                parent,
                NodePhase::Running,
                Some(inputs.clone()),
                None,
                None,
            );
            announced = true;
        }
        let request = TaskRequest {
            attempt: AttemptId {
                execution: ctx.execution.clone(),
                node_id: uid.to_string(),
                retry_attempt: attempt,
            },
            task: task.clone(),
            inputs: inputs.clone(),
            env: ctx.task_env.as_ref().clone(),
        };
        let log = runner.log_path(&request.attempt);
        let task_event =
            |phase: TaskPhase, outputs: Option<LiteralMap>, error: Option<ExecutionError>| {
                ctx.sink.emit(Event::Task(TaskEvent {
                    attempt: request.attempt.clone(),
                    task_id: task.id.clone(),
                    phase,
                    at: now_nanos(),
                    log: log.clone(),
                    outputs,
                    error,
                }))
            };
        task_event(TaskPhase::Running, None, None);
        let attempt_cancel = cancel.child();
        let outcome = {
            let fut = runner.run(&request, &attempt_cancel);
            tokio::pin!(fut);
            match timeout {
                Some(limit) => tokio::select! {
                    o = &mut fut => o,
                    _ = tokio::time::sleep(limit) => {
                        attempt_cancel.cancel();
                        let _ = fut.await;
                        if cancel.is_cancelled() {
                            TaskOutcome::Aborted
                        } else {
                            TaskOutcome::Failed(TaskFailure {
                                code: "Timeout".into(),
                                message: format!("task timed out after {}", humantime(limit)),
                                kind: ErrorKind::User,
                                recoverable: true,
                            })
                        }
                    }
                },
                None => fut.await,
            }
        };
        drop(permit);
        match outcome {
            TaskOutcome::Succeeded(outputs) => {
                task_event(TaskPhase::Succeeded, Some(outputs.clone()), None);
                return Ok(TaskDone::Outputs(outputs));
            }
            TaskOutcome::Dynamic(spec) => {
                task_event(TaskPhase::Succeeded, None, None);
                return Ok(TaskDone::Dynamic(spec));
            }
            TaskOutcome::Failed(f) if cancel.is_cancelled() => {
                task_event(TaskPhase::Aborted, None, Some(f.to_execution_error()));
                return Err(NodeFailure::Aborted);
            }
            TaskOutcome::Failed(f) => {
                if f.recoverable && attempt < retries {
                    task_event(
                        TaskPhase::RetryableFailed,
                        None,
                        Some(f.to_execution_error()),
                    );
                    attempt += 1;
                    continue;
                }
                task_event(TaskPhase::Failed, None, Some(f.to_execution_error()));
                return Err(NodeFailure::Failed {
                    node_id: uid.to_string(),
                    error: f.to_execution_error(),
                });
            }
            TaskOutcome::Aborted => {
                task_event(TaskPhase::Aborted, None, None);
                return Err(NodeFailure::Aborted);
            }
        }
    }
}

fn humantime(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s}s")
    } else {
        format!("{}m{}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}
