//! Serialization with flytekit's own translator, and the version derived from what it produced.

use std::collections::HashMap;

use base64::Engine as _;
use md5::{Digest, Md5};
use prost::Message;

use union_idl::flyteidl::{admin, core};

use super::load::{base_settings, flytekit_default_image};
use super::{Loaded, PlanOptions, PlannedImage, RegisterError};
use crate::python::SerializedEntity;

/// A serialized entity, decoded.
#[derive(Debug, Clone)]
pub enum Spec {
    Task(admin::TaskSpec),
    Workflow(admin::WorkflowSpec),
    LaunchPlan(admin::LaunchPlan),
}

/// One entity to register.
#[derive(Debug, Clone)]
pub struct PlannedEntity {
    pub spec: Spec,
    pub pb: Vec<u8>,
    pub auto_activate: bool,
}

impl PlannedEntity {
    pub fn id(&self) -> core::Identifier {
        match &self.spec {
            Spec::Task(t) => t
                .template
                .as_ref()
                .and_then(|t| t.id.clone())
                .unwrap_or_default(),
            Spec::Workflow(w) => w
                .template
                .as_ref()
                .and_then(|t| t.id.clone())
                .unwrap_or_default(),
            Spec::LaunchPlan(lp) => lp.id.clone().unwrap_or_default(),
        }
    }
    pub fn kind(&self) -> &'static str {
        match &self.spec {
            Spec::Task(_) => "task",
            Spec::Workflow(_) => "workflow",
            Spec::LaunchPlan(_) => "launch plan",
        }
    }
}

/// Serialize every entity with the given version and archive location.
pub fn serialize(
    loaded: &Loaded,
    opts: &PlanOptions,
    version: Option<&str>,
    distribution_location: Option<&str>,
) -> Result<Vec<PlannedEntity>, RegisterError> {
    let default_image = opts
        .default_image
        .clone()
        .unwrap_or_else(|| flytekit_default_image(&loaded.flytekit_version));
    let mut settings = base_settings(
        opts,
        &loaded.set.root,
        &default_image,
        loaded.git_repo.clone(),
    );
    settings.version = if opts.for_package {
        None
    } else {
        version.map(str::to_string)
    };
    settings.distribution_location = distribution_location.map(str::to_string);
    settings.spec_images = loaded
        .images
        .iter()
        .map(|i| (i.spec_id.clone(), i.name.clone()))
        .collect();
    let raw = loaded.session.serialize(&settings)?;
    let mut entities = decode_all(raw)?;
    apply_launch_plan_options(&mut entities, opts);
    Ok(entities)
}

/// pyflyte register's `--service-account` and `--raw-data-prefix`, applied to every launch plan
/// as flytekit's `get_serializable_launch_plan` applies its `Options`: the prefix replaces the
/// launch plan's; the service account replaces `run_as`, keeping the authored secrets and tokens
/// (`_merge_security_context`).
fn apply_launch_plan_options(entities: &mut [PlannedEntity], opts: &PlanOptions) {
    if opts.service_account.is_none() && opts.raw_data_prefix.is_none() {
        return;
    }
    for e in entities.iter_mut() {
        let Spec::LaunchPlan(lp) = &mut e.spec else {
            continue;
        };
        let spec = lp.spec.get_or_insert_with(Default::default);
        if let Some(prefix) = &opts.raw_data_prefix {
            spec.raw_output_data_config = Some(admin::RawOutputDataConfig {
                output_location_prefix: prefix.clone(),
            });
        }
        if let Some(sa) = &opts.service_account {
            let sc = spec.security_context.get_or_insert_with(Default::default);
            sc.run_as = Some(union_idl::flyteidl::core::Identity {
                k8s_service_account: sa.clone(),
                ..Default::default()
            });
        }
        e.pb = lp.encode_to_vec();
    }
}

fn decode_all(raw: Vec<SerializedEntity>) -> Result<Vec<PlannedEntity>, RegisterError> {
    let mut out: Vec<PlannedEntity> = Vec::new();
    let mut by_key: HashMap<(String, String), usize> = HashMap::new();
    for r in raw {
        let bad = |source: prost::DecodeError| RegisterError::Decode {
            kind: r.kind.clone(),
            name: r.name.clone(),
            source,
        };
        let spec = match r.kind.as_str() {
            "task" => Spec::Task(admin::TaskSpec::decode(r.pb.as_slice()).map_err(bad)?),
            "workflow" => {
                Spec::Workflow(admin::WorkflowSpec::decode(r.pb.as_slice()).map_err(bad)?)
            }
            "launch_plan" => {
                Spec::LaunchPlan(admin::LaunchPlan::decode(r.pb.as_slice()).map_err(bad)?)
            }
            other => return Err(RegisterError::UnexpectedKind(other.to_string())),
        };
        let key = (r.kind.clone(), r.name.clone());
        if let Some(&i) = by_key.get(&key) {
            if out[i].pb != r.pb {
                return Err(RegisterError::SameName {
                    kind: r.kind.replace('_', " "),
                    name: r.name,
                });
            }
            continue;
        }
        by_key.insert(key, out.len());
        out.push(PlannedEntity {
            spec,
            pb: r.pb,
            auto_activate: r.auto_activate,
        });
    }
    Ok(out)
}

/// Stands in for the version during serialization (same length as a derived version, so it can be
/// replaced in the encoded bytes without touching any length prefix).
pub const VERSION_PLACEHOLDER: &str = "uNiOnVeRsIoNpLaCeHoLdR";
/// flytekit's placeholder for the archive location when fast settings carry none.
pub const LOCATION_PLACEHOLDER: &str = "{{ .remote_package_path }}";

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// Serialize once for registration: the version (given, or derived from specs that do not depend
/// on where the archive is uploaded) and the archive location are filled in afterwards, so a
/// dry run and a real run agree on the version and Python serializes only once.
pub fn serialize_for_registration(
    loaded: &Loaded,
    opts: &PlanOptions,
    location: Option<&str>,
) -> Result<(Vec<PlannedEntity>, String), RegisterError> {
    let given = opts.version.clone();
    let probe_version = given
        .clone()
        .unwrap_or_else(|| VERSION_PLACEHOLDER.to_string());
    let mut entities = serialize(loaded, opts, Some(&probe_version), None)?;
    let version = match given {
        Some(v) => v,
        None => {
            let v = derive_version(
                loaded.archive.as_ref().map(|(a, _)| &a.md5),
                &entities,
                &loaded.images,
            );
            debug_assert_eq!(v.len(), VERSION_PLACEHOLDER.len());
            let expected: usize = entities
                .iter()
                .map(|e| count(&e.pb, VERSION_PLACEHOLDER.as_bytes()))
                .sum();
            let mut replaced = Vec::with_capacity(entities.len());
            for e in &entities {
                let pb = replace_bytes(&e.pb, VERSION_PLACEHOLDER.as_bytes(), v.as_bytes());
                replaced.push(SerializedEntity {
                    kind: kind_key(&e.spec).into(),
                    name: e.id().name,
                    pb,
                    auto_activate: e.auto_activate,
                });
            }
            let redecoded = decode_all(replaced)?;
            let ids_ok = redecoded.iter().all(|e| e.id().version == v);
            entities = if expected == 0 || !ids_ok {
                // Cannot happen with flytekit's ids; serialize again rather than guess.
                serialize(loaded, opts, Some(&v), None)?
            } else {
                redecoded
            };
            v
        }
    };
    let entities = match location {
        None => entities,
        Some(loc) => {
            let mut patched = Vec::with_capacity(entities.len());
            let mut complete = true;
            for mut e in entities {
                if let Spec::Task(t) = &mut e.spec {
                    if let Some(c) = t.template.as_mut().and_then(|t| match &mut t.target {
                        Some(core::task_template::Target::Container(c)) => Some(c),
                        _ => None,
                    }) {
                        for a in c.args.iter_mut() {
                            if a == LOCATION_PLACEHOLDER {
                                *a = loc.to_string();
                            }
                        }
                    }
                    e.pb = t.encode_to_vec();
                    if count(&e.pb, LOCATION_PLACEHOLDER.as_bytes()) > 0 {
                        complete = false; // e.g. a pod template: let flytekit place it
                    }
                }
                patched.push(e);
            }
            if complete {
                patched
            } else {
                serialize(loaded, opts, Some(&version), Some(loc))?
            }
        }
    };
    Ok((entities, version))
}

fn kind_key(s: &Spec) -> &'static str {
    match s {
        Spec::Task(_) => "task",
        Spec::Workflow(_) => "workflow",
        Spec::LaunchPlan(_) => "launch_plan",
    }
}

fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// A content-addressed version: the archive, every serialized spec and every image name.
/// Changing code or an image changes it; nothing else does.
pub fn derive_version(
    archive_md5: Option<&[u8; 16]>,
    entities: &[PlannedEntity],
    images: &[PlannedImage],
) -> String {
    let mut h = Md5::new();
    h.update(b"union-version-1\0");
    if let Some(m) = archive_md5 {
        h.update(m);
    }
    for e in entities {
        h.update(e.kind().as_bytes());
        h.update([0]);
        h.update((e.pb.len() as u64).to_le_bytes());
        h.update(&e.pb);
    }
    let mut names: Vec<&str> = images.iter().map(|i| i.name.as_str()).collect();
    names.sort();
    for n in names {
        h.update(n.as_bytes());
        h.update([0]);
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_changes_with_content_only() {
        let a = derive_version(Some(&[1; 16]), &[], &[]);
        assert_eq!(a, derive_version(Some(&[1; 16]), &[], &[]));
        assert_ne!(a, derive_version(Some(&[2; 16]), &[], &[]));
        assert_eq!(a.len(), 22);
    }
}
