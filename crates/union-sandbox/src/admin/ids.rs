//! Identifiers: validating the ids requests carry, and building ids and timestamps for replies.

use tonic::Status;

use crate::compile;
pub(super) use crate::status::{describe, require, timestamp};
use crate::store::{EntityKey, EntityKind, NamedKey};
use union_idl::flyteidl::admin::NamedEntityIdentifier;
use union_idl::flyteidl::core::{self, Identifier};

pub(super) fn resource_type_name(rt: i32) -> &'static str {
    core::ResourceType::try_from(rt)
        .map(|r| r.as_str_name())
        .unwrap_or("UNKNOWN")
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
