//! Gate nodes, as flytepropeller's gate handler: a sleep, an approval (a boolean signal; its
//! inputs pass through as outputs once approved) or an input (a typed signal, the node's one
//! output). The node's timeout (flytekit's `timeout=`, an hour by default) bounds the wait.

use std::time::Duration;

use super::{failed, Ctx, NodeFailure};
use crate::executor::CancelToken;
use union_idl::flyteidl::core::{
    execution_error::ErrorKind, gate_node::Condition, literal, literal_type, primitive, scalar,
    GateNode, LiteralMap, LiteralType, Node, SimpleType,
};

fn duration_of(d: &prost_types::Duration) -> Duration {
    Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32)
}

fn is_true(l: &union_idl::flyteidl::core::Literal) -> Option<bool> {
    match &l.value {
        Some(literal::Value::Scalar(s)) => match &s.value {
            Some(scalar::Value::Primitive(p)) => match p.value {
                Some(primitive::Value::Boolean(b)) => Some(b),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

pub(super) async fn run_gate(
    ctx: &Ctx,
    gate: &GateNode,
    node: &Node,
    uid: &str,
    inputs: &LiteralMap,
    cancel: &CancelToken,
) -> Result<LiteralMap, NodeFailure> {
    let timeout = node
        .metadata
        .as_ref()
        .and_then(|m| m.timeout.as_ref())
        .map(duration_of)
        .filter(|d| !d.is_zero());
    let condition = gate.condition.as_ref().ok_or_else(|| {
        failed(
            uid,
            "InvalidNode",
            "gate node without a condition",
            ErrorKind::System,
        )
    })?;
    let wait = async {
        match condition {
            Condition::Sleep(s) => {
                let d = s.duration.as_ref().map(duration_of).unwrap_or_default();
                tokio::time::sleep(d).await;
                Ok(LiteralMap::default())
            }
            Condition::Approve(a) => {
                let bool_type = LiteralType {
                    r#type: Some(literal_type::Type::Simple(SimpleType::Boolean as i32)),
                    ..Default::default()
                };
                let value = ctx
                    .exec
                    .signals
                    .wait(&ctx.execution, &a.signal_id, &bool_type)
                    .await
                    .map_err(|e| failed(uid, "SignalFailed", e, ErrorKind::System))?;
                match is_true(&value) {
                    Some(true) => Ok(inputs.clone()),
                    Some(false) => Err(failed(
                        uid,
                        "ApprovalRejected",
                        format!("`{}` was rejected", a.signal_id),
                        ErrorKind::User,
                    )),
                    None => Err(failed(
                        uid,
                        "InvalidSignal",
                        format!("the approval `{}` is not a boolean", a.signal_id),
                        ErrorKind::User,
                    )),
                }
            }
            Condition::Signal(s) => {
                let t = s.r#type.clone().unwrap_or_default();
                let value = ctx
                    .exec
                    .signals
                    .wait(&ctx.execution, &s.signal_id, &t)
                    .await
                    .map_err(|e| failed(uid, "SignalFailed", e, ErrorKind::System))?;
                let name = if s.output_variable_name.is_empty() {
                    "o0".to_string()
                } else {
                    s.output_variable_name.clone()
                };
                Ok(LiteralMap {
                    literals: [(name, value)].into(),
                })
            }
        }
    };
    tokio::pin!(wait);
    tokio::select! {
        r = &mut wait => r,
        _ = cancel.cancelled() => Err(NodeFailure::Aborted),
        _ = async {
            match timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending::<()>().await,
            }
        } => Err(failed(
            uid,
            "Timeout",
            format!(
                "the gate `{}` timed out after {}s",
                node.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or(&node.id),
                timeout.map(|t| t.as_secs()).unwrap_or_default()
            ),
            ErrorKind::User,
        )),
    }
}
