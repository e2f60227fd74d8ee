//! Statuses for store failures and for registering an id again, and the structure digests that
//! tell a re-registration of the same thing from a conflicting one.

use prost::Message;
use sha2::{Digest, Sha256};
use tonic::Status;

pub(super) use crate::status::db;
use crate::status::describe;
use crate::store::{EntityKey, EntityKind, Inserted, StoreError};
use union_idl::flyteidl::admin::{TaskSpec, WorkflowSpec};

pub(super) fn digest(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

pub(super) fn corrupt(kind: EntityKind, k: &EntityKey, e: prost::DecodeError) -> Status {
    Status::data_loss(format!(
        "the sandbox database is corrupted: the stored {} is unreadable ({e}); {}",
        describe(kind, k),
        StoreError::CORRUPT_HINT
    ))
}

/// The digest a stored spec was registered with, recomputed: what each create method hashes.
fn structure_digest(kind: EntityKind, spec: &[u8]) -> Option<Vec<u8>> {
    match kind {
        EntityKind::Task => Some(digest(
            &TaskSpec::decode(spec).ok()?.template?.encode_to_vec(),
        )),
        EntityKind::Workflow => {
            let s = WorkflowSpec::decode(spec).ok()?;
            Some(digest(
                &WorkflowSpec {
                    template: s.template,
                    sub_workflows: s.sub_workflows,
                    description: None,
                }
                .encode_to_vec(),
            ))
        }
        EntityKind::LaunchPlan => Some(digest(spec)),
    }
}

pub(super) fn not_found(kind: EntityKind, k: &EntityKey) -> Status {
    Status::not_found(format!("{} does not exist", describe(kind, k)))
}

/// The status flyteadmin answers when an id is registered again.
pub(super) fn conflict(kind: EntityKind, key: &EntityKey, outcome: Inserted) -> Result<(), Status> {
    match outcome {
        Inserted::Created(_) => Ok(()),
        // flytekit treats ALREADY_EXISTS as success: re-registering the same thing is a no-op.
        Inserted::Identical => Err(Status::already_exists(format!(
            "{} with identical structure already exists: {}",
            kind.noun(),
            describe(kind, key)
        ))),
        // A stored row that does not match its own digest was damaged on disk: that is not the
        // user's conflict, and saying "different structure" would send them the wrong way.
        Inserted::Different {
            stored_digest,
            stored_spec,
        } if structure_digest(kind, &stored_spec).as_deref() != Some(stored_digest.as_slice()) => {
            Err(Status::data_loss(format!(
                "the sandbox database is corrupted: the stored {} does not match its checksum; {}",
                describe(kind, key),
                StoreError::CORRUPT_HINT
            )))
        }
        // Same id, other content: flyteadmin refuses (INVALID_ARGUMENT), and so does flytekit.
        Inserted::Different { .. } => Err(Status::invalid_argument(format!(
            "{} {} with different structure already exists. (Please register a new version of the {}): {}",
            key.name,
            kind.noun(),
            kind.noun(),
            describe(kind, key)
        ))),
    }
}
