//! Identifiers: validating the ids requests carry, and building ids and timestamps for replies.

use tonic::Status;

use crate::compile;
use crate::store::{EntityKey, EntityKind, NamedKey};
use union_idl::flyteidl::admin::NamedEntityIdentifier;
use union_idl::flyteidl::core::{self, Identifier};
use union_idl::google_protobuf::Timestamp;

/// flyteadmin's "missing <field>" INVALID_ARGUMENT for an empty required string.
pub fn require(field: &str, value: &str) -> Result<(), Status> {
    if value.is_empty() {
        Err(Status::invalid_argument(format!("missing {field}")))
    } else {
        Ok(())
    }
}

pub(super) fn resource_type_name(rt: i32) -> &'static str {
    core::ResourceType::try_from(rt)
        .map(|r| r.as_str_name())
        .unwrap_or("UNKNOWN")
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

/// Validate a full identifier of `kind`, as flyteadmin's ValidateIdentifier does.
pub(super) fn entity_key(id: Option<&Identifier>, kind: EntityKind) -> Result<EntityKey, Status> {
    let id = id.ok_or_else(|| Status::invalid_argument("missing id"))?;
    if id.resource_type != kind as i32 {
        return Err(Status::invalid_argument(format!(
            "unexpected resource type {} for identifier of {} `{}`, expected {} instead",
            resource_type_name(id.resource_type),
            kind.noun(),
            id.name,
            resource_type_name(kind as i32)
        )));
    }
    reference_key(id, "")
}

/// Validate the fields of a referenced identifier (any resource type); `prefix` names the field.
pub(super) fn reference_key(id: &Identifier, prefix: &str) -> Result<EntityKey, Status> {
    require(&format!("{prefix}project"), &id.project)?;
    require(&format!("{prefix}domain"), &id.domain)?;
    require(&format!("{prefix}name"), &id.name)?;
    require(&format!("{prefix}version"), &id.version)?;
    Ok(compile::key_of(id))
}

pub(super) fn named_key(id: Option<&NamedEntityIdentifier>) -> Result<NamedKey, Status> {
    let id = id.ok_or_else(|| Status::invalid_argument("missing id"))?;
    require("project", &id.project)?;
    require("domain", &id.domain)?;
    require("name", &id.name)?;
    Ok(NamedKey {
        org: id.org.clone(),
        project: id.project.clone(),
        domain: id.domain.clone(),
        name: id.name.clone(),
    })
}

pub(super) fn identifier(kind: EntityKind, k: &EntityKey) -> Identifier {
    Identifier {
        resource_type: kind as i32,
        project: k.project.clone(),
        domain: k.domain.clone(),
        name: k.name.clone(),
        version: k.version.clone(),
        org: k.org.clone(),
    }
}

/// Unix nanoseconds as a protobuf Timestamp.
pub fn timestamp(nanos: i64) -> Timestamp {
    Timestamp {
        seconds: nanos.div_euclid(1_000_000_000),
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    }
}
