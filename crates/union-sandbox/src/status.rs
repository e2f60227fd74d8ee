//! The answers every service of the sandbox shares, worded as flyteadmin words them: a missing
//! required field, a database failure, an entity named in a message, a timestamp. Used by the
//! admin service, executions and list queries alike, so it sits below them.

use std::sync::Arc;

use tonic::Status;

use crate::store::{EntityKey, EntityKind, Store, StoreError};
use union_idl::google_protobuf::Timestamp;

/// flyteadmin's "missing `<field>`" INVALID_ARGUMENT for an empty required string.
pub fn require(field: &str, value: &str) -> Result<(), Status> {
    if value.is_empty() {
        Err(Status::invalid_argument(format!("missing {field}")))
    } else {
        Ok(())
    }
}

/// A readable id for messages: "task `name` (project `p`, domain `d`, version `v`)".
pub fn describe(kind: EntityKind, k: &EntityKey) -> String {
    format!(
        "{} `{}` (project `{}`, domain `{}`, version `{}`)",
        kind.noun(),
        k.name,
        k.project,
        k.domain,
        k.version
    )
}

/// A database failure as a gRPC status: DATA_LOSS with what to do when the file is damaged,
/// INTERNAL with the cause otherwise.
pub fn db(err: StoreError) -> Status {
    let mut msg = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    if err.is_corruption() {
        return Status::data_loss(format!("{msg}; {}", StoreError::CORRUPT_HINT));
    }
    Status::internal(msg)
}

/// Unix nanoseconds as a protobuf Timestamp.
pub fn timestamp(nanos: i64) -> Timestamp {
    Timestamp {
        seconds: nanos.div_euclid(1_000_000_000),
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    }
}

/// Run blocking database work off the async workers (every service's requests do).
pub async fn blocking<T, F>(store: &Arc<Store>, f: F) -> Result<T, Status>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, Status> + Send + 'static,
{
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| Status::internal(format!("sandbox request failed: {e}")))?
}
