//! union's remote image builder (`builder="union"` or `"unionai"`): the backend builds and pushes
//! the image, so the client needs no Docker engine. The protocol is union's own
//! (`union/ucimage/_image_builder.py`, union 0.1.204), spoken over FlyteAdmin:
//!
//! 1. the builder is enabled when task `build-image` exists in project `system`, domain
//!    `production`;
//! 2. `cloudidl.imagebuilder.ImageService/GetImage` answers whether an image was built (its
//!    fully-qualified name), NOT_FOUND otherwise;
//! 3. a build is an execution of `build-image` with STRING inputs `spec` (the URL of an uploaded
//!    `spec.json`), `context` (the URL of an uploaded `.tar.xz`, or "") and `target_image`, whose
//!    STRING output `fully_qualified_image` is the image tasks use.
//!
//! - [`client`]: what a client uploads: union's `spec.json` and the build context, exactly as
//!   union writes them (the RPCs are the CLI's, through its authenticated channel);
//! - [`server`]: what a backend does with them: the spec turned into an [`ImageSpec`] and planned
//!   with the local builder's Dockerfile generation, built with its own engine, pushed, recorded.
//!
//! Secrets: specs with `pip_secret_mounts` are refused for the remote builder (the secret files
//! would have to leave the client); build them locally (`builder="default"`).

pub mod client;
pub mod server;

use serde_json::{Map, Value};

use super::spec::{BaseImage, ImageSpec};

pub use client::{prepare, ContextLimits, RemoteBuildError, UnionBuildInput};
pub use server::{BuildRecord, ImageBuilder, ServerSettings, DEFAULT_IMAGE_REGISTRY, RECORD_FILE};

/// The builder names that select the remote builder (union's plugin registers both).
pub const REMOTE_BUILDERS: [&str; 2] = ["union", "unionai"];

/// Project and domain of the builder's task and uploads (`_IMAGE_BUILDER_PROJECT_DOMAIN`).
pub const BUILDER_PROJECT: &str = "system";
/// See [`BUILDER_PROJECT`].
pub const BUILDER_DOMAIN: &str = "production";
/// The task whose executions build images.
pub const BUILD_IMAGE_TASK: &str = "build-image";
/// Suffix of the variant a client registers for `builder_options["imagepull_secret_name"]`.
pub const BUILD_IMAGE_EXEC_SUFFIX: &str = "exec";
/// The execution label carrying the (sanitized) target image.
pub const IMAGE_NAME_LABEL: &str = "unionai_image_name";
/// The build task's inputs and output.
pub const INPUT_SPEC: &str = "spec";
/// See [`INPUT_SPEC`].
pub const INPUT_CONTEXT: &str = "context";
/// See [`INPUT_SPEC`].
pub const INPUT_TARGET_IMAGE: &str = "target_image";
/// See [`INPUT_SPEC`].
pub const OUTPUT_FULLY_QUALIFIED_IMAGE: &str = "fully_qualified_image";
/// The environment variable carrying the image's identity (`_F_IMG_ID`).
pub const F_IMG_ID: &str = "_F_IMG_ID";

/// Default cap on the uncompressed build context a client sends (and a server accepts).
pub const MAX_CONTEXT_BYTES: u64 = 100 * 1024 * 1024;
/// Default cap on the number of files in a build context.
pub const MAX_CONTEXT_FILES: usize = 50_000;

/// union's `_sanitize_label`: `:` and `/` become `_`.
pub fn sanitize_label(label: &str) -> String {
    label.replace([':', '/'], "_")
}

/// union's `_sanitize_image_name`: the label value of a build execution; over 63 characters,
/// only `name:tag` of the image is kept.
pub fn sanitize_image_name(image: &str) -> String {
    let s = sanitize_label(image);
    if s.chars().count() <= 63 {
        return s;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    let mut parts = last.split(':');
    let name = parts.next().unwrap_or_default();
    let tag = parts.next().unwrap_or("latest");
    sanitize_label(&format!("{name}:{tag}"))
}

/// union's `_build_image_exec_version`: the first 8 hex digits of the SHA-256 of the sorted
/// components joined by `\x1f`.
pub fn build_image_exec_version(components: &[&str]) -> String {
    use sha2::Digest;
    let mut sorted: Vec<&str> = components.to_vec();
    sorted.sort();
    let digest = sha2::Sha256::digest(sorted.join("\u{1f}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    if components.is_empty() {
        hex
    } else {
        hex[..8].to_string()
    }
}

/// Whether `spec` goes to the remote builder: its `builder` is `union`/`unionai`, or it names no
/// builder (None or empty) and `default_builder` (config `union.imageBuilder`) is one of those.
///
/// Note: specs that come from the Python bridge went through flytekit's `__post_init__`, which
/// fills `builder` with the highest-priority registered builder (`envd` when
/// flytekitplugins-envd is installed, else `default`); pass the value the user wrote when the
/// config default should apply to them.
pub fn wants_remote(spec: &ImageSpec, default_builder: Option<&str>) -> bool {
    match spec
        .builder
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
    {
        Some(b) => REMOTE_BUILDERS.contains(&b.to_ascii_lowercase().as_str()),
        None => default_builder
            .map(|b| REMOTE_BUILDERS.contains(&b.trim().to_ascii_lowercase().as_str()))
            .unwrap_or(false),
    }
}

/// The spec as the JSON object [`ImageSpec::from_bridge_json`] reads back to an equal spec: every
/// one of the 29 fields (null when unset) plus `_is_force_push`.
pub fn spec_to_json(spec: &ImageSpec) -> Map<String, Value> {
    fn s(v: &Option<String>) -> Value {
        v.as_ref()
            .map(|x| Value::String(x.clone()))
            .unwrap_or(Value::Null)
    }
    fn list(v: &Option<Vec<String>>) -> Value {
        v.as_ref()
            .map(|x| Value::Array(x.iter().cloned().map(Value::String).collect()))
            .unwrap_or(Value::Null)
    }
    fn pairs(v: &Option<Vec<(String, String)>>) -> Value {
        v.as_ref()
            .map(|x| {
                Value::Array(
                    x.iter()
                        .map(|(a, b)| {
                            Value::Array(vec![Value::String(a.clone()), Value::String(b.clone())])
                        })
                        .collect(),
                )
            })
            .unwrap_or(Value::Null)
    }
    fn dict(v: &Option<Vec<(String, String)>>) -> Value {
        v.as_ref()
            .map(|x| {
                Value::Object(
                    x.iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect(),
                )
            })
            .unwrap_or(Value::Null)
    }
    fn obj(v: &Option<Map<String, Value>>) -> Value {
        v.as_ref()
            .map(|m| Value::Object(m.clone()))
            .unwrap_or(Value::Null)
    }
    let mut m = Map::new();
    m.insert("name".into(), Value::String(spec.name.clone()));
    m.insert("python_version".into(), s(&spec.python_version));
    m.insert("builder".into(), s(&spec.builder));
    m.insert("source_root".into(), s(&spec.source_root));
    m.insert("env".into(), dict(&spec.env));
    m.insert("registry".into(), s(&spec.registry));
    m.insert("packages".into(), list(&spec.packages));
    m.insert("conda_packages".into(), list(&spec.conda_packages));
    m.insert("conda_channels".into(), list(&spec.conda_channels));
    m.insert("requirements".into(), s(&spec.requirements));
    m.insert("apt_packages".into(), list(&spec.apt_packages));
    m.insert("cuda".into(), s(&spec.cuda));
    m.insert("cudnn".into(), s(&spec.cudnn));
    m.insert(
        "base_image".into(),
        match &spec.base_image {
            None => Value::Null,
            Some(BaseImage::Image(i)) => Value::String(i.clone()),
            Some(BaseImage::Spec(inner)) => Value::Object(spec_to_json(inner)),
        },
    );
    m.insert("platform".into(), s(&spec.platform));
    m.insert("pip_index".into(), s(&spec.pip_index));
    m.insert(
        "pip_extra_index_url".into(),
        list(&spec.pip_extra_index_url),
    );
    m.insert("pip_secret_mounts".into(), pairs(&spec.pip_secret_mounts));
    m.insert("pip_extra_args".into(), s(&spec.pip_extra_args));
    m.insert("registry_config".into(), s(&spec.registry_config));
    m.insert("entrypoint".into(), list(&spec.entrypoint));
    m.insert("commands".into(), list(&spec.commands));
    m.insert("tag_format".into(), s(&spec.tag_format));
    m.insert(
        "source_copy_mode".into(),
        spec.source_copy_mode
            .map(|c| Value::String(c.name().to_string()))
            .unwrap_or(Value::Null),
    );
    m.insert("copy".into(), list(&spec.copy));
    m.insert("python_exec".into(), s(&spec.python_exec));
    m.insert("runtime_packages".into(), list(&spec.runtime_packages));
    m.insert("builder_options".into(), obj(&spec.builder_options));
    m.insert("builder_config".into(), obj(&spec.builder_config));
    m.insert("_is_force_push".into(), Value::Bool(spec.is_force_push));
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{CopyFileDetection, FIELDS};
    use crate::HostEnv;
    use serde_json::json;

    fn full_spec() -> ImageSpec {
        let base = ImageSpec {
            name: "base".into(),
            packages: Some(vec!["numpy".into()]),
            ..Default::default()
        }
        .post_init(&HostEnv::x86_64())
        .unwrap();
        let mut opts = Map::new();
        opts.insert("imagepull_secret_name".into(), json!("s"));
        opts.insert("n".into(), json!(1));
        opts.insert("f".into(), json!(1.5));
        let mut cfg = Map::new();
        cfg.insert("uv_image".into(), json!("uv:1"));
        ImageSpec {
            name: "every-field".into(),
            python_version: Some("3.11".into()),
            builder: Some("union".into()),
            source_root: Some("/src".into()),
            env: Some(vec![("B".into(), "it's".into()), ("A".into(), "1".into())]),
            registry: Some("localhost:30000".into()),
            packages: Some(vec!["pandas".into()]),
            conda_packages: Some(vec!["c".into()]),
            conda_channels: Some(vec!["ch".into()]),
            requirements: Some("requirements.txt".into()),
            apt_packages: Some(vec!["git".into()]),
            cuda: Some("12.1".into()),
            cudnn: Some("8".into()),
            base_image: Some(BaseImage::Spec(Box::new(base))),
            platform: Some("linux/arm64".into()),
            pip_index: Some("https://i/simple".into()),
            pip_extra_index_url: Some(vec!["https://x/simple".into()]),
            pip_secret_mounts: Some(vec![(".netrc".into(), "/root/.netrc".into())]),
            pip_extra_args: Some("--pre".into()),
            registry_config: Some("reg.json".into()),
            entrypoint: Some(vec![]),
            commands: Some(vec!["echo hi".into()]),
            tag_format: Some("{spec_hash}-dev".into()),
            source_copy_mode: Some(CopyFileDetection::All),
            copy: Some(vec!["data".into()]),
            python_exec: Some("/usr/bin/python3".into()),
            runtime_packages: Some(vec!["rt".into()]),
            builder_options: Some(opts),
            builder_config: Some(cfg),
            is_force_push: true,
        }
    }

    #[test]
    fn spec_json_is_lossless_for_every_field() {
        let spec = full_spec();
        let json = spec_to_json(&spec);
        for f in FIELDS {
            assert!(json.contains_key(f), "{f} missing");
            assert!(!json[f].is_null(), "{f} is null in the full spec");
        }
        let back = ImageSpec::from_bridge_json(&json, &HostEnv::x86_64()).unwrap();
        assert_eq!(back, spec);
        let text = serde_json::to_string(&json).unwrap();
        let reparsed: Map<String, Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(
            ImageSpec::from_bridge_json(&reparsed, &HostEnv::x86_64()).unwrap(),
            spec
        );

        let empty = ImageSpec::default().post_init(&HostEnv::x86_64()).unwrap();
        let back = ImageSpec::from_bridge_json(&spec_to_json(&empty), &HostEnv::x86_64()).unwrap();
        assert_eq!(back, empty);
    }

    #[test]
    fn builder_selection() {
        let mut spec = ImageSpec::default();
        assert!(!wants_remote(&spec, None));
        assert!(wants_remote(&spec, Some("union")));
        assert!(!wants_remote(&spec, Some("default")));
        spec.builder = Some("unionai".into());
        assert!(wants_remote(&spec, None));
        spec.builder = Some("envd".into());
        assert!(!wants_remote(&spec, Some("union")));
    }

    #[test]
    fn labels_and_exec_versions_as_union_makes_them() {
        assert_eq!(
            sanitize_image_name("localhost:30000/a:b"),
            "localhost_30000_a_b"
        );
        let long = format!("registry.example.com:5000/{}/img:tag1", "x".repeat(60));
        assert_eq!(sanitize_image_name(&long), "img_tag1");
        // python: hashlib.sha256("\x1f".join(sorted(["s", "v1"])).encode()).hexdigest()[:8]
        assert_eq!(
            build_image_exec_version(&["v1", "s"]),
            build_image_exec_version(&["s", "v1"])
        );
        assert_eq!(build_image_exec_version(&["v1", "s"]), "ee9ce6cf");
    }
}
