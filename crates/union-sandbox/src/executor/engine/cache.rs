//! Task caching as flytepropeller does it with DataCatalog: a cached task (`cache=True`, or a
//! node override) first looks up its outputs under its [`CacheKey`]; a hit skips the container
//! and is reported as CACHE_HIT, a miss runs it and stores what it produced (CACHE_POPULATED).
//! `--overwrite-cache` skips the lookup and replaces the entry; `cache_serialize` lets one
//! execution at a time compute a key while the others wait for its result.

use prost::Message;
use sha2::{Digest, Sha256};

use crate::executor::CacheKey;
use union_idl::flyteidl::core::{node_metadata, LiteralMap, Node, TaskTemplate};

/// Whether `task` run by `node` is cached, and how: its key and whether it is serialized.
pub(super) fn cache_key(
    task: &TaskTemplate,
    node: &Node,
    inputs: &LiteralMap,
) -> Option<(CacheKey, bool)> {
    let meta = task.metadata.clone().unwrap_or_default();
    let node_meta = node.metadata.clone().unwrap_or_default();
    let cacheable = match node_meta.cacheable_value {
        Some(node_metadata::CacheableValue::Cacheable(c)) => c,
        None => meta.discoverable,
    };
    if !cacheable {
        return None;
    }
    let version = match node_meta.cache_version_value {
        Some(node_metadata::CacheVersionValue::CacheVersion(v)) => v,
        None => meta.discovery_version.clone(),
    };
    let serializable = match node_meta.cache_serializable_value {
        Some(node_metadata::CacheSerializableValue::CacheSerializable(s)) => s,
        None => meta.cache_serializable,
    };
    let id = task.id.clone().unwrap_or_default();
    Some((
        CacheKey {
            project: id.project,
            domain: id.domain,
            task: id.name,
            version,
            signature: hex(&Sha256::digest(
                task.interface.clone().unwrap_or_default().encode_to_vec(),
            )),
            inputs: inputs_hash(inputs, &meta.cache_ignore_input_vars),
        },
        serializable,
    ))
}

/// A hash of the inputs (by name, in order), leaving out `ignored`; a literal that carries its
/// own hash (flytekit's `HashMethod`) counts by that hash, as DataCatalog counts it.
fn inputs_hash(inputs: &LiteralMap, ignored: &[String]) -> String {
    let mut h = Sha256::new();
    for (name, value) in &inputs.literals {
        if ignored.contains(name) {
            continue;
        }
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        let bytes = if value.hash.is_empty() {
            value.encode_to_vec()
        } else {
            value.hash.as_bytes().to_vec()
        };
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    hex(&h.finalize())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::bindings::primitive_literal;
    use union_idl::flyteidl::core::{primitive, TaskMetadata};

    fn task(cache: bool, version: &str, ignore: &[&str]) -> TaskTemplate {
        TaskTemplate {
            metadata: Some(TaskMetadata {
                discoverable: cache,
                discovery_version: version.into(),
                cache_ignore_input_vars: ignore.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn inputs(a: i64, b: i64) -> LiteralMap {
        LiteralMap {
            literals: [
                (
                    "a".to_string(),
                    primitive_literal(primitive::Value::Integer(a)),
                ),
                (
                    "b".to_string(),
                    primitive_literal(primitive::Value::Integer(b)),
                ),
            ]
            .into(),
        }
    }

    #[test]
    fn keys_follow_version_inputs_and_ignored_inputs() {
        let node = Node::default();
        assert!(cache_key(&task(false, "1", &[]), &node, &inputs(1, 2)).is_none());
        let key = |t: &TaskTemplate, i: &LiteralMap| cache_key(t, &node, i).unwrap().0;
        let t = task(true, "1", &[]);
        assert_eq!(key(&t, &inputs(1, 2)), key(&t, &inputs(1, 2)));
        assert_ne!(key(&t, &inputs(1, 2)), key(&t, &inputs(1, 3)));
        assert_ne!(
            key(&t, &inputs(1, 2)),
            key(&task(true, "2", &[]), &inputs(1, 2))
        );
        let ignoring_b = task(true, "1", &["b"]);
        assert_eq!(
            key(&ignoring_b, &inputs(1, 2)),
            key(&ignoring_b, &inputs(1, 3))
        );
        // A node override turns caching off.
        let off = Node {
            metadata: Some(union_idl::flyteidl::core::NodeMetadata {
                cacheable_value: Some(node_metadata::CacheableValue::Cacheable(false)),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(cache_key(&t, &off, &inputs(1, 2)).is_none());
    }
}
