//! Array nodes (`map_task`, `ArrayNode`): one sub-node per element, at most `parallelism` at a
//! time (and never more containers than the executor's limit), outputs gathered in order.
//!
//! As flytepropeller's array node handler:
//! - the number of elements is the length of the collection inputs not in `bound_inputs`;
//! - a map task's sub-node gets the array's whole inputs and finds its element through
//!   `BATCH_JOB_ARRAY_INDEX_VAR_NAME` / `FLYTE_K8S_ARRAY_INDEX` (flytekit's `ArrayNodeMapTask`),
//!   while a sub-node with its original interface (`is_original_sub_node_interface`, e.g. a
//!   launch plan) gets element `i` of each collection;
//! - `min_successes` / `min_success_ratio` decide how many elements may fail; a failed element's
//!   outputs are `None`; once too many have failed the rest are aborted (unless
//!   `run_all_sub_nodes`) and the node fails naming the first failure.
//!
//! Each element is reported as a child node `<array>-0-n<i>` with its own task attempts, so its
//! status, log and error are visible like any node's.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::Semaphore;

use super::node::execute_node;
use super::{failed, unique_id, Ctx, NodeFailure};
use crate::executor::{CancelToken, WorkflowClosure};
use union_idl::flyteidl::core::{
    array_node::{ParallelismOption, SuccessCriteria},
    execution_error::ErrorKind,
    literal, scalar, task_node, ArrayNode, ExecutionError, Literal, LiteralCollection, LiteralMap,
    Node, Scalar,
};

/// flytepropeller's names for the element index a map task reads.
const JOB_INDEX_VAR_NAME: &str = "BATCH_JOB_ARRAY_INDEX_VAR_NAME";
const ARRAY_INDEX_VAR: &str = "FLYTE_K8S_ARRAY_INDEX";

fn collection(l: &Literal) -> Option<&LiteralCollection> {
    match &l.value {
        Some(literal::Value::Collection(c)) => Some(c),
        _ => None,
    }
}

fn none_literal() -> Literal {
    Literal {
        value: Some(literal::Value::Scalar(Box::new(Scalar {
            value: Some(scalar::Value::NoneType(Default::default())),
        }))),
        ..Default::default()
    }
}

/// The number of elements: the common length of the mapped (collection, unbound) inputs.
fn element_count(array: &ArrayNode, inputs: &LiteralMap) -> Result<usize, String> {
    let mut n: Option<(usize, &str)> = None;
    for (name, value) in &inputs.literals {
        if array.bound_inputs.contains(name) {
            continue;
        }
        let Some(c) = collection(value) else { continue };
        match n {
            None => n = Some((c.literals.len(), name)),
            Some((len, first)) if len != c.literals.len() => {
                return Err(format!(
                    "mapped inputs have different lengths: `{first}` has {len} elements, `{name}` has {}",
                    c.literals.len()
                ))
            }
            Some(_) => {}
        }
    }
    Ok(n.map(|(len, _)| len).unwrap_or(0))
}

/// Element `i`'s inputs for a sub-node with its original interface.
fn element_inputs(array: &ArrayNode, inputs: &LiteralMap, i: usize) -> LiteralMap {
    let literals = inputs
        .literals
        .iter()
        .map(|(k, v)| {
            let v = match collection(v) {
                Some(c) if !array.bound_inputs.contains(k) => c.literals[i].clone(),
                _ => v.clone(),
            };
            (k.clone(), v)
        })
        .collect();
    LiteralMap { literals }
}

fn min_successes(array: &ArrayNode, n: usize) -> usize {
    match array.success_criteria {
        Some(SuccessCriteria::MinSuccesses(m)) => (m as usize).min(n),
        Some(SuccessCriteria::MinSuccessRatio(r)) => {
            ((n as f64) * f64::from(r.clamp(0.0, 1.0))).ceil() as usize
        }
        None => n,
    }
}

/// The output variables of the sub-node's task (the array's outputs, as lists).
fn output_names(closure: &WorkflowClosure, sub: &Node) -> Vec<String> {
    let Some(union_idl::flyteidl::core::node::Target::TaskNode(t)) = &sub.target else {
        return Vec::new();
    };
    let Some(task_node::Reference::ReferenceId(id)) = &t.reference else {
        return Vec::new();
    };
    closure
        .tasks
        .get(&crate::executor::entity_ref(id))
        .and_then(|t| t.interface.as_ref())
        .and_then(|i| i.outputs.as_ref())
        .map(|o| o.variables.keys().cloned().collect())
        .unwrap_or_default()
}

pub(super) async fn run_array(
    ctx: &Ctx,
    closure: &Arc<WorkflowClosure>,
    array: &ArrayNode,
    uid: &str,
    inputs: &LiteralMap,
    cancel: &CancelToken,
) -> Result<LiteralMap, NodeFailure> {
    let sub = array.node.as_deref().ok_or_else(|| {
        failed(
            uid,
            "InvalidNode",
            "array node without a sub-node",
            ErrorKind::System,
        )
    })?;
    let n = element_count(array, inputs)
        .map_err(|e| failed(uid, "InvalidArrayInputs", e, ErrorKind::User))?;
    let needed = min_successes(array, n);
    let original_interface = array.is_original_sub_node_interface == Some(true);
    let limit = match array.parallelism_option {
        Some(ParallelismOption::Parallelism(p)) if p > 0 => p as usize,
        _ => n.max(1),
    };
    let slots = Arc::new(Semaphore::new(limit));
    let elements_cancel = cancel.child();
    let mut running = FuturesUnordered::new();
    for i in 0..n {
        let element_ctx = Ctx {
            task_env: Arc::new(vec![
                (JOB_INDEX_VAR_NAME.to_string(), ARRAY_INDEX_VAR.to_string()),
                (ARRAY_INDEX_VAR.to_string(), i.to_string()),
            ]),
            ..ctx.clone()
        };
        let element_inputs = if original_interface {
            element_inputs(array, inputs, i)
        } else {
            inputs.clone()
        };
        let child = unique_id(Some(uid), &format!("n{i}"));
        let closure = closure.clone();
        let sub = sub.clone();
        let slots = slots.clone();
        let cancel = elements_cancel.clone();
        let parent = uid.to_string();
        running.push(async move {
            let _slot = tokio::select! {
                s = slots.acquire_owned() => s.ok(),
                _ = cancel.cancelled() => None,
            };
            let result = if cancel.is_cancelled() {
                Err(NodeFailure::Aborted)
            } else {
                execute_node(
                    element_ctx,
                    closure,
                    sub,
                    child,
                    Some(parent),
                    element_inputs,
                    None,
                    cancel,
                )
                .await
            };
            (i, result)
        });
    }

    let mut outputs: Vec<Option<LiteralMap>> = vec![None; n];
    let mut failures: BTreeMap<usize, ExecutionError> = BTreeMap::new();
    let mut aborted = false;
    while let Some((i, result)) = running.next().await {
        match result {
            Ok(o) => outputs[i] = Some(o),
            Err(NodeFailure::Failed { error, .. }) => {
                failures.insert(i, error);
                if n - failures.len() < needed && !array.run_all_sub_nodes {
                    elements_cancel.cancel();
                }
            }
            Err(NodeFailure::Aborted) => aborted = true,
        }
    }
    if n - failures.len() < needed {
        let (first, error) = failures
            .iter()
            .next()
            .map(|(i, e)| (*i, e.clone()))
            .unwrap_or_default();
        return Err(NodeFailure::Failed {
            node_id: uid.to_string(),
            error: ExecutionError {
                message: format!(
                    "{} of {n} elements failed, at most {} may fail; element {first} failed first: {}",
                    failures.len(),
                    n - needed,
                    error.message
                ),
                ..error
            },
        });
    }
    if aborted || cancel.is_cancelled() {
        return Err(NodeFailure::Aborted);
    }
    let mut names = output_names(closure, sub);
    if names.is_empty() {
        // A launch plan or workflow sub-node: the variables its elements produced.
        let mut seen: Vec<String> = outputs
            .iter()
            .flatten()
            .flat_map(|m| m.literals.keys().cloned())
            .collect();
        seen.sort();
        seen.dedup();
        names = seen;
    }
    let mut gathered = LiteralMap::default();
    for name in names {
        let literals = outputs
            .iter()
            .map(|o| {
                o.as_ref()
                    .and_then(|m| m.literals.get(&name))
                    .cloned()
                    .unwrap_or_else(none_literal)
            })
            .collect();
        gathered.literals.insert(
            name,
            Literal {
                value: Some(literal::Value::Collection(LiteralCollection { literals })),
                ..Default::default()
            },
        );
    }
    Ok(gathered)
}
