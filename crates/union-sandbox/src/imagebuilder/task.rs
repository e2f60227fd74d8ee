//! The `build-image` task: its template, registered in `system`/`production` at start.

use std::collections::BTreeMap;

use prost::Message;
use sha2::Digest;

use super::TASK_TYPE;
use crate::store::{EntityKey, EntityKind, NewEntity, Store, StoreError};
use union_idl::flyteidl::admin::{TaskClosure, TaskSpec};
use union_idl::flyteidl::core::{
    self, literal_type, runtime_metadata::RuntimeType, CompiledTask, Identifier, LiteralType,
    ResourceType, RuntimeMetadata, SimpleType, TaskMetadata, TaskTemplate, TypedInterface,
    Variable, VariableMap,
};
use union_image::remote::{
    BUILDER_DOMAIN, BUILDER_PROJECT, BUILD_IMAGE_EXEC_SUFFIX, BUILD_IMAGE_TASK, INPUT_CONTEXT,
    INPUT_SPEC, INPUT_TARGET_IMAGE, OUTPUT_FULLY_QUALIFIED_IMAGE,
};

/// The version `build-image` is registered under (bumped when its template changes).
pub const TASK_VERSION: &str = "sandbox-1";

fn string_var(description: &str) -> Variable {
    Variable {
        r#type: Some(LiteralType {
            r#type: Some(literal_type::Type::Simple(SimpleType::String as i32)),
            ..Default::default()
        }),
        description: description.into(),
        ..Default::default()
    }
}

/// The template of `build-image`, version [`TASK_VERSION`], in organization `org` ("" for none).
pub fn build_image_template(org: &str) -> TaskTemplate {
    let vars = |pairs: &[(&str, &str)]| VariableMap {
        variables: pairs
            .iter()
            .map(|(k, d)| (k.to_string(), string_var(d)))
            .collect::<BTreeMap<_, _>>(),
    };
    TaskTemplate {
        id: Some(Identifier {
            resource_type: ResourceType::Task as i32,
            project: BUILDER_PROJECT.into(),
            domain: BUILDER_DOMAIN.into(),
            name: BUILD_IMAGE_TASK.into(),
            version: TASK_VERSION.into(),
            org: org.into(),
        }),
        r#type: TASK_TYPE.into(),
        metadata: Some(TaskMetadata {
            runtime: Some(RuntimeMetadata {
                r#type: RuntimeType::Other as i32,
                version: env!("CARGO_PKG_VERSION").into(),
                flavor: "union-sandbox".into(),
            }),
            retries: Some(core::RetryStrategy { retries: 0 }),
            ..Default::default()
        }),
        interface: Some(TypedInterface {
            inputs: Some(vars(&[
                (INPUT_SPEC, "URL of union's spec.json"),
                (
                    INPUT_CONTEXT,
                    "URL of the build context (.tar.xz), or empty",
                ),
                (
                    INPUT_TARGET_IMAGE,
                    "the image to build, [registry/]name:tag",
                ),
            ])),
            outputs: Some(vars(&[(
                OUTPUT_FULLY_QUALIFIED_IMAGE,
                "the image built and pushed",
            )])),
        }),
        ..Default::default()
    }
}

/// Register `build-image` in organization `org` (an identical one already there is fine).
pub(super) fn register(store: &Store, org: &str) -> Result<(), StoreError> {
    let template = build_image_template(org);
    let key = EntityKey {
        org: org.into(),
        project: BUILDER_PROJECT.into(),
        domain: BUILDER_DOMAIN.into(),
        name: BUILD_IMAGE_TASK.into(),
        version: TASK_VERSION.into(),
    };
    let digest = sha2::Sha256::digest(template.encode_to_vec()).to_vec();
    let closure = TaskClosure {
        compiled_task: Some(CompiledTask {
            template: Some(template.clone()),
        }),
        created_at: None,
    }
    .encode_to_vec();
    let spec = TaskSpec {
        template: Some(template),
        ..Default::default()
    }
    .encode_to_vec();
    store
        .create_entity(&NewEntity {
            kind: EntityKind::Task,
            key: &key,
            digest: &digest,
            spec: &spec,
            closure: &closure,
            state: None,
        })
        .map(|_| ())
}

/// Remove every version of `build-image` and `build-image-exec` (`--no-image-builder`: clients
/// must find no builder).
pub(super) fn unregister(store: &Store) -> Result<(), StoreError> {
    let exec = format!("{BUILD_IMAGE_TASK}-{BUILD_IMAGE_EXEC_SUFFIX}");
    store.write(|tx| {
        tx.execute(
            "DELETE FROM entities WHERE resource_type = ?1 AND project = ?2 AND domain = ?3 \
             AND (name = ?4 OR name = ?5)",
            rusqlite::params![
                ResourceType::Task as i32,
                BUILDER_PROJECT,
                BUILDER_DOMAIN,
                BUILD_IMAGE_TASK,
                exec
            ],
        )?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_in_each_org_and_removed_with_every_variant() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = |org: &str, name: &str| EntityKey {
            org: org.into(),
            project: BUILDER_PROJECT.into(),
            domain: BUILDER_DOMAIN.into(),
            name: name.into(),
            version: TASK_VERSION.into(),
        };
        register(&store, "").unwrap();
        register(&store, "acme").unwrap();
        // Again at the next start: identical, fine.
        register(&store, "").unwrap();
        for org in ["", "acme"] {
            let row = store
                .get_entity(EntityKind::Task, &key(org, BUILD_IMAGE_TASK))
                .unwrap();
            assert!(row.is_some(), "{org}");
        }
        let t = build_image_template("");
        assert_eq!(t.r#type, TASK_TYPE);
        assert!(t.target.is_none(), "no container");
        let iface = t.interface.unwrap();
        let inputs: Vec<_> = iface.inputs.unwrap().variables.into_keys().collect();
        assert_eq!(inputs, ["context", "spec", "target_image"]);
        let outputs: Vec<_> = iface.outputs.unwrap().variables.into_keys().collect();
        assert_eq!(outputs, ["fully_qualified_image"]);

        unregister(&store).unwrap();
        for org in ["", "acme"] {
            let row = store
                .get_entity(EntityKind::Task, &key(org, BUILD_IMAGE_TASK))
                .unwrap();
            assert!(row.is_none(), "{org}");
        }
    }
}
