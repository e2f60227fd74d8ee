//! union's `spec.json` read back into an [`ImageSpec`] whose files are the received context, so
//! that the local builder's Dockerfile generation plans it.

use std::path::Path;

use serde_json::Value;

use crate::remote::F_IMG_ID;
use crate::spec::{BaseImage, CopyFileDetection, HostEnv, ImageSpec};
use crate::TagContext;

const KEYS: [&str; 13] = [
    "python_version",
    "apt_packages",
    "commands",
    "enable_gpu",
    "conda_packages",
    "conda_channels",
    "env",
    "python_packages",
    "pip_extra_index_urls",
    "pip_extra_args",
    "python_requirements_files",
    "base_image",
    "dist_dirpath",
];

/// The spec, the `_F_IMG_ID` it asks for, and the context to plan it with. `dir` holds the
/// unpacked context (`files`, relative to it); every file is copied to `/root` in the image, as
/// union's builder places its context.
pub(super) fn to_image_spec(
    json: &[u8],
    name: &str,
    dir: &Path,
    files: &[String],
) -> Result<(ImageSpec, Option<String>, TagContext), String> {
    let value: Value =
        serde_json::from_slice(json).map_err(|e| format!("spec.json is not JSON: {e}"))?;
    let Value::Object(map) = value else {
        return Err("spec.json is not a JSON object".into());
    };
    if let Some(k) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!(
            "spec.json key `{k}` is not one union's image builder writes"
        ));
    }
    let s = |k: &str| -> Result<Option<String>, String> {
        match map.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("spec.json `{k}` must be a string, got {other}")),
        }
    };
    let list = |k: &str| -> Result<Option<Vec<String>>, String> {
        match map.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| format!("spec.json `{k}` must be a list of strings")),
            Some(other) => Err(format!("spec.json `{k}` must be a list, got {other}")),
        }
    };
    if map.get("enable_gpu").and_then(Value::as_bool) == Some(true) {
        return Err(
            "enable_gpu (cuda/cudnn) is not supported by the sandbox's image builder: use a base_image that ships CUDA"
                .into(),
        );
    }
    if s("dist_dirpath")?.is_some() {
        return Err(
            "dist_dirpath (a .vendor directory) is not supported by the sandbox's image builder"
                .into(),
        );
    }
    let mut env: Vec<(String, String)> = Vec::new();
    let mut image_id = None;
    match map.get("env") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let v = v
                    .as_str()
                    .ok_or_else(|| format!("spec.json env `{k}` must be a string"))?;
                if k == F_IMG_ID {
                    image_id = Some(v.to_string());
                } else {
                    env.push((k.clone(), v.to_string()));
                }
            }
        }
        Some(other) => return Err(format!("spec.json `env` must be an object, got {other}")),
    }
    let requirements = match list("python_requirements_files")? {
        None => None,
        Some(v) if v.is_empty() => None,
        Some(v) if v.len() == 1 => {
            if !files.contains(&v[0]) {
                return Err(format!(
                    "requirements file `{}` is not in the context",
                    v[0]
                ));
            }
            Some(dir.join(&v[0]).to_string_lossy().into_owned())
        }
        Some(v) => {
            return Err(format!(
                "several python_requirements_files ({v:?}) are not supported"
            ))
        }
    };
    let non_empty = |v: Option<Vec<String>>| v.filter(|v| !v.is_empty());
    let spec = ImageSpec {
        name: name.to_string(),
        python_version: s("python_version")?,
        apt_packages: non_empty(list("apt_packages")?),
        commands: non_empty(list("commands")?),
        conda_packages: non_empty(list("conda_packages")?),
        conda_channels: non_empty(list("conda_channels")?),
        env: (!env.is_empty()).then_some(env),
        packages: non_empty(list("python_packages")?),
        pip_extra_index_url: non_empty(list("pip_extra_index_urls")?),
        pip_extra_args: s("pip_extra_args")?.filter(|a| !a.is_empty()),
        requirements,
        base_image: s("base_image")?
            .filter(|b| !b.is_empty())
            .map(BaseImage::Image),
        source_root: (!files.is_empty()).then(|| dir.to_string_lossy().into_owned()),
        source_copy_mode: (!files.is_empty()).then_some(CopyFileDetection::LoadedModules),
        ..Default::default()
    };
    let spec = spec
        .post_init(&HostEnv::current())
        .map_err(|e| e.to_string())?;
    let mut ctx = TagContext::new(dir);
    ctx.loaded_modules = files.iter().map(|f| dir.join(f)).collect();
    Ok((spec, image_id, ctx))
}

/// The repository name of an image reference (`reg:5000/a/b:tag` → `b`), the spec's name.
pub(super) fn image_repository_name(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    let name = last.split(['@', ':']).next().unwrap_or(last);
    if name.is_empty() {
        "image".into()
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unions_spec_becomes_an_image_spec() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("requirements.txt"), "x\n").unwrap();
        let json = br#"{"python_version": "3.11", "apt_packages": ["git"], "env": {"_F_IMG_ID": "a:b", "K": "v"}, "python_packages": ["union==0.1.204"], "pip_extra_index_urls": [], "pip_extra_args": null, "python_requirements_files": ["requirements.txt"]}"#;
        let (spec, id, ctx) =
            to_image_spec(json, "a", dir.path(), &["requirements.txt".into()]).unwrap();
        assert_eq!(id.as_deref(), Some("a:b"));
        assert_eq!(spec.apt_packages, Some(vec!["git".into()]));
        assert_eq!(spec.env, Some(vec![("K".into(), "v".into())]));
        assert_eq!(spec.packages, Some(vec!["union==0.1.204".into()]));
        assert!(spec.requirements.unwrap().ends_with("requirements.txt"));
        assert_eq!(ctx.loaded_modules.len(), 1);
        assert!(to_image_spec(br#"{"enable_gpu": true}"#, "a", dir.path(), &[]).is_err());
        assert!(to_image_spec(br#"{"what": 1}"#, "a", dir.path(), &[]).is_err());
        assert_eq!(image_repository_name("localhost:30000/x/y:t"), "y");
        assert_eq!(image_repository_name("y:t"), "y");
    }
}
