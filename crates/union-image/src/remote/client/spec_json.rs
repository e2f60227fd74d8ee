//! union's `spec.json` (`_validate_configuration`), and the files its context holds.

use std::path::{Component, Path, PathBuf};

use super::context::ContextEntry;
use super::RemoteBuildError;
use crate::dockerfile::source_files;
use crate::remote::{spec_to_json, F_IMG_ID};
use crate::spec::{BaseImage, CopyFileDetection, ImageSpec, FIELDS};
use crate::TagContext;

/// Fields union's builder honours with its own base image (`_SUPPORTED_UNION_BASE_IMAGE_PARAMETERS`).
const SUPPORTED_UNIVERSAL: [&str; 17] = [
    "name",
    "builder",
    "builder_options",
    "source_root",
    "env",
    "packages",
    "requirements",
    "apt_packages",
    "pip_index",
    "pip_extra_index_url",
    "pip_extra_args",
    "commands",
    "conda_packages",
    "conda_channels",
    "source_copy_mode",
    "registry",
    "copy",
];

/// The fields set on `spec` (truthy, as Python sees them) that union's builder ignores, in
/// dataclass order: union warns "The following parameters are unsupported and ignored: [...]".
pub fn unsupported_parameters(spec: &ImageSpec) -> Vec<String> {
    let json = spec_to_json(spec);
    let custom_base = spec.base_image.is_some();
    let supported = |f: &str| {
        SUPPORTED_UNIVERSAL.contains(&f)
            || if custom_base {
                f == "base_image"
            } else {
                ["python_version", "cuda", "cudnn", "platform"].contains(&f)
            }
    };
    FIELDS
        .iter()
        .filter(|f| !f.starts_with('_') && !supported(f))
        .filter(|f| json.get(**f).is_some_and(truthy))
        .map(|f| f.to_string())
        .collect()
}

fn truthy(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `union==<version>` (or `union` for a dev version), as `get_unionai_for_pypi` names it.
pub fn union_package(version: &str) -> String {
    if version.contains("dev") {
        "union".to_string()
    } else {
        format!("union=={version}")
    }
}

/// `_is_union`: the requirement's name (`^[\w-]+`) is `union` or `unionai`.
fn is_union(requirement: &str) -> bool {
    let name: String = requirement
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    name == "union" || name == "unionai"
}

/// A value of union's spec, as `json.dump` writes it.
enum Py {
    Str(String),
    Null,
    Bool(bool),
    List(Vec<String>),
    Dict(Vec<(String, String)>),
}

/// A string as Python's `json.dumps` writes it (`ensure_ascii=True`).
pub fn python_json(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

fn render(spec: &[(&str, Py)]) -> Vec<u8> {
    let list = |v: &[String]| {
        let items: Vec<String> = v.iter().map(|s| python_json(s)).collect();
        format!("[{}]", items.join(", "))
    };
    let fields: Vec<String> = spec
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Py::Str(s) => python_json(s),
                Py::Null => "null".into(),
                Py::Bool(b) => if *b { "true" } else { "false" }.into(),
                Py::List(l) => list(l),
                Py::Dict(d) => {
                    let items: Vec<String> = d
                        .iter()
                        .map(|(k, v)| format!("{}: {}", python_json(k), python_json(v)))
                        .collect();
                    format!("{{{}}}", items.join(", "))
                }
            };
            format!("{}: {value}", python_json(k))
        })
        .collect();
    format!("{{{}}}", fields.join(", ")).into_bytes()
}

fn python_version(spec: &ImageSpec, client: &str) -> Result<String, RemoteBuildError> {
    let invalid = |message: String| RemoteBuildError::Invalid {
        image: spec.name.clone(),
        message,
    };
    let form =
        || invalid("python_version must be in the form major.minor. For example: 3.12".into());
    let v = spec.python_version.as_deref().unwrap_or(client);
    let parts: Vec<&str> = v.split('.').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(form());
    }
    let major: i64 = parts[0].trim().parse().map_err(|_| form())?;
    let minor: i64 = parts[1].trim().parse().map_err(|_| form())?;
    if !(major == 3 && (9..=12).contains(&minor)) {
        return Err(invalid(format!(
            "Only python versions between 3.9 to 3.12 are supported, got {major}.{minor}"
        )));
    }
    Ok(format!("{major}.{minor}"))
}

fn non_empty(v: &Option<Vec<String>>) -> Option<&Vec<String>> {
    v.as_ref().filter(|v| !v.is_empty())
}

/// The README a pyproject.toml names (`tool.poetry.readme`, else `project.readme`), as union's
/// `_get_package_readme` finds it.
fn readme_of(pyproject: &Path) -> Option<PathBuf> {
    let doc: toml::Table = std::fs::read_to_string(pyproject).ok()?.parse().ok()?;
    let poetry = doc
        .get("tool")
        .and_then(|t| t.get("poetry"))
        .and_then(|p| p.get("readme"))
        .and_then(|r| r.as_str())
        .filter(|r| !r.is_empty());
    let project = doc
        .get("project")
        .and_then(|p| p.get("readme"))
        .and_then(|r| r.as_str())
        .filter(|r| !r.is_empty());
    Some(pyproject.parent()?.join(poetry.or(project)?))
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `spec.json` and the context's files (context path, local file), in the order union copies
/// them (a later file at the same path replaces an earlier one).
pub(super) fn spec_and_files(
    spec: &ImageSpec,
    image_name: &str,
    ctx: &TagContext,
    client_python: &str,
    union_version: Option<&str>,
) -> Result<(Vec<u8>, Vec<ContextEntry>), RemoteBuildError> {
    let image = spec.name.as_str();
    let invalid = |message: &str| RemoteBuildError::Invalid {
        image: image.to_string(),
        message: message.to_string(),
    };
    let mut out: Vec<(&str, Py)> = vec![(
        "python_version",
        Py::Str(python_version(spec, client_python)?),
    )];
    if let Some(v) = non_empty(&spec.apt_packages) {
        out.push(("apt_packages", Py::List(v.clone())));
    }
    if let Some(v) = non_empty(&spec.commands) {
        out.push(("commands", Py::List(v.clone())));
    }
    let set = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    if set(&spec.cuda) || set(&spec.cudnn) {
        out.push(("enable_gpu", Py::Bool(true)));
    }
    if let Some(v) = non_empty(&spec.conda_packages) {
        out.push(("conda_packages", Py::List(v.clone())));
    }
    if let Some(v) = non_empty(&spec.conda_channels) {
        out.push(("conda_channels", Py::List(v.clone())));
    }
    // {_F_IMG_ID: image_name, **env}: the spec's own _F_IMG_ID wins, in its first position.
    let mut env: Vec<(String, String)> = vec![(F_IMG_ID.to_string(), image_name.to_string())];
    for (k, v) in spec.env.iter().flatten() {
        match env.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v.clone(),
            None => env.push((k.clone(), v.clone())),
        }
    }
    out.push(("env", Py::Dict(env)));
    let mut packages: Vec<String> = spec.packages.clone().unwrap_or_default();
    let mut all_packages = packages.clone();
    let mut indexes: Vec<String> = Vec::new();
    indexes.extend(spec.pip_index.iter().filter(|s| !s.is_empty()).cloned());
    indexes.extend(spec.pip_extra_index_url.iter().flatten().cloned());

    let mut files: Vec<ContextEntry> = Vec::new();
    let mut requirements_files = None;
    if let Some(req) = spec.requirements.as_deref().filter(|r| !r.is_empty()) {
        let path = ctx.base_dir.join(req);
        if !path.exists() {
            return Err(invalid(&format!("requirements file {req} does not exist")));
        }
        let name = file_name(&path);
        files.push(ContextEntry::file(&name, &path));
        requirements_files = Some(vec![name.clone()]);
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| RemoteBuildError::Io {
                image: image.to_string(),
                path: p,
                source,
            }
        };
        let pyproject = path
            .parent()
            .unwrap_or(Path::new("."))
            .join("pyproject.toml");
        if req.ends_with(".txt") {
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            all_packages.extend(text.lines().map(|l| l.trim().to_string()));
        } else if req.ends_with("poetry.lock") {
            let text = std::fs::read_to_string(&pyproject).map_err(|_| {
                invalid(&format!("must have project file if using lock file {req}"))
            })?;
            if text.lines().any(|l| l.contains("tool.poetry.source")) {
                return Err(invalid(
                    "External sources are not supported in pyproject.toml",
                ));
            }
            if set(&spec.pip_index)
                || spec
                    .pip_extra_index_url
                    .as_ref()
                    .is_some_and(|v| !v.is_empty())
            {
                return Err(invalid(
                    "External sources are not supported in image spec when using poetry lock file",
                ));
            }
            if let Some(readme) = readme_of(&pyproject) {
                files.push(ContextEntry::file(&file_name(&readme), &readme));
            }
            files.push(ContextEntry::file("pyproject.toml", &pyproject));
        } else if req.ends_with("uv.lock") {
            let text = std::fs::read_to_string(&pyproject)
                .map_err(|_| invalid("pyproject.toml must exist when using uv.lock"))?;
            if text.lines().any(|l| l.contains("tool.uv.index")) {
                return Err(invalid(
                    "External sources are not supported in pyproject.toml",
                ));
            }
            if spec.packages.is_some() {
                return Err(invalid(
                    "When using uv.lock, setting packages is not supported. Please include your dependencies in the uv.lock file.",
                ));
            }
            if set(&spec.pip_index)
                || spec
                    .pip_extra_index_url
                    .as_ref()
                    .is_some_and(|v| !v.is_empty())
            {
                return Err(invalid(
                    "External sources are not supported in image spec when using uv lock file",
                ));
            }
            files.push(ContextEntry::file("pyproject.toml", &pyproject));
            if let Some(readme) = readme_of(&pyproject) {
                files.push(ContextEntry::file(&file_name(&readme), &readme));
            }
        }
    }
    if let Some(v) = union_version {
        if !all_packages.iter().any(|p| is_union(p)) {
            packages.push(union_package(v));
        }
    }
    out.push(("python_packages", Py::List(packages)));
    out.push(("pip_extra_index_urls", Py::List(indexes)));
    out.push((
        "pip_extra_args",
        spec.pip_extra_args.clone().map(Py::Str).unwrap_or(Py::Null),
    ));
    if let Some(r) = requirements_files {
        out.push(("python_requirements_files", Py::List(r)));
    }
    match &spec.base_image {
        Some(BaseImage::Image(b)) if !b.is_empty() => out.push(("base_image", Py::Str(b.clone()))),
        Some(BaseImage::Spec(_)) => {
            return Err(invalid(
                "Union image builder only supports string base images",
            ))
        }
        _ => {}
    }

    // _copy_files_into_build_context
    if spec
        .source_copy_mode
        .is_some_and(|m| m != CopyFileDetection::NoCopy)
    {
        let Some(root) = spec.source_root.as_deref().filter(|r| !r.is_empty()) else {
            return Err(invalid(&format!(
                "Field source_root for {} must be set when copy is set",
                spec.name
            )));
        };
        if ctx.base_dir.join(root).join(".vendor").is_dir() {
            out.push(("dist_dirpath", Py::Str(".vendor".into())));
        }
        for (rel, path) in source_files(spec, ctx)? {
            files.push(ContextEntry::file(&rel, &path));
        }
    }
    for entry in spec.copy.iter().flatten() {
        let p = Path::new(entry);
        if p.is_absolute() || p.components().any(|c| c == Component::ParentDir) {
            return Err(invalid(
                "Absolute paths or paths with '..' are not allowed in COPY command.",
            ));
        }
        let rel: Vec<String> = p
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        let src = ctx.base_dir.join(p);
        if !src.exists() {
            return Err(RemoteBuildError::Io {
                image: image.to_string(),
                path: src,
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        files.push(ContextEntry::tree(&rel.join("/"), &src));
    }
    Ok((render(&out), files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_as_python_writes_it() {
        assert_eq!(
            python_json("a\"b\\é\u{1F600}\n"),
            "\"a\\\"b\\\\\\u00e9\\ud83d\\ude00\\n\""
        );
        let out = render(&[
            ("python_version", Py::Str("3.11".into())),
            ("env", Py::Dict(vec![("_F_IMG_ID".into(), "a:b".into())])),
            ("python_packages", Py::List(vec!["x".into(), "y".into()])),
            ("pip_extra_index_urls", Py::List(vec![])),
            ("pip_extra_args", Py::Null),
            ("enable_gpu", Py::Bool(true)),
        ]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"python_version": "3.11", "env": {"_F_IMG_ID": "a:b"}, "python_packages": ["x", "y"], "pip_extra_index_urls": [], "pip_extra_args": null, "enable_gpu": true}"#
        );
    }

    #[test]
    fn union_is_added_unless_listed() {
        assert!(is_union("union==0.1.2"));
        assert!(is_union("unionai[x]"));
        assert!(!is_union("unionx"));
        assert_eq!(union_package("0.1.204"), "union==0.1.204");
        assert_eq!(union_package("0.1.205.dev3"), "union");
    }
}
