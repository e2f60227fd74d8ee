//! The `ImageSpec` dataclass of flytekit 1.16, its `__post_init__` rules, and its constructors.

use std::path::Path;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::{ImageSpecError, Result};

/// The dataclass fields of flytekit 1.16's `ImageSpec`, in declaration order (the hash order).
pub const FIELDS: [&str; 29] = [
    "name",
    "python_version",
    "builder",
    "source_root",
    "env",
    "registry",
    "packages",
    "conda_packages",
    "conda_channels",
    "requirements",
    "apt_packages",
    "cuda",
    "cudnn",
    "base_image",
    "platform",
    "pip_index",
    "pip_extra_index_url",
    "pip_secret_mounts",
    "pip_extra_args",
    "registry_config",
    "entrypoint",
    "commands",
    "tag_format",
    "source_copy_mode",
    "copy",
    "python_exec",
    "runtime_packages",
    "builder_options",
    "builder_config",
];

/// flytekit's `CopyFileDetection` enum (`flytekit/constants`): which source files go into an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CopyFileDetection {
    /// `LOADED_MODULES = 1`: the files of the Python modules loaded from the source root.
    LoadedModules = 1,
    /// `ALL = 2`: every file under the source root, minus ignore rules.
    All = 2,
    /// `NO_COPY = 3`: nothing.
    NoCopy = 3,
}

impl CopyFileDetection {
    /// The Python member name, e.g. `ALL`.
    pub fn name(self) -> &'static str {
        match self {
            CopyFileDetection::LoadedModules => "LOADED_MODULES",
            CopyFileDetection::All => "ALL",
            CopyFileDetection::NoCopy => "NO_COPY",
        }
    }

    /// The Python member value (1, 2 or 3).
    pub fn value(self) -> u8 {
        self as u8
    }

    /// The member with this Python name (`LOADED_MODULES`, `ALL`, `NO_COPY`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "LOADED_MODULES" => Some(CopyFileDetection::LoadedModules),
            "ALL" => Some(CopyFileDetection::All),
            "NO_COPY" => Some(CopyFileDetection::NoCopy),
            _ => None,
        }
    }

    /// Python `repr()`, e.g. `<CopyFileDetection.ALL: 2>`.
    pub fn py_repr(self) -> String {
        format!("<CopyFileDetection.{}: {}>", self.name(), self.value())
    }
}

/// `ImageSpec.base_image`: an image reference or another ImageSpec built first.
#[derive(Debug, Clone, PartialEq)]
pub enum BaseImage {
    /// A plain image reference such as `python:3.11-slim`.
    Image(String),
    /// A nested ImageSpec; its `image_name()` is the base.
    Spec(Box<ImageSpec>),
}

/// What `__post_init__` reads from the machine and the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEnv {
    /// Python's `platform.machine()` (Rust's `std::env::consts::ARCH` is equivalent for the
    /// arm64 check).
    pub machine: String,
    /// The value of `FLYTE_FORCE_PUSH_IMAGE_SPEC`, if set.
    pub force_push_env: Option<String>,
}

impl HostEnv {
    /// This machine and this process's environment.
    pub fn current() -> Self {
        HostEnv {
            machine: std::env::consts::ARCH.to_string(),
            force_push_env: std::env::var("FLYTE_FORCE_PUSH_IMAGE_SPEC").ok(),
        }
    }

    /// An x86_64 host with no force-push variable (flytekit-facts' test vectors).
    pub fn x86_64() -> Self {
        HostEnv {
            machine: "x86_64".into(),
            force_push_env: None,
        }
    }

    fn is_arm64(&self) -> bool {
        matches!(self.machine.to_lowercase().as_str(), "arm64" | "aarch64")
    }

    fn force_push(&self) -> bool {
        self.force_push_env
            .as_deref()
            .map(str2bool)
            .unwrap_or(false)
    }
}

/// `FLYTE_PUSH_IMAGE_SPEC` as flytekit's default builder reads it (`os.getenv(..., "True").lower()
/// in ("true", "1")`): unset means push; any other value than `true`/`1` (any case) means don't.
pub fn push_from_env() -> bool {
    match std::env::var_os("FLYTE_PUSH_IMAGE_SPEC") {
        None => true,
        Some(v) => matches!(v.to_string_lossy().to_lowercase().as_str(), "true" | "1"),
    }
}

/// flytekit's `str2bool`: everything but `false`, `0`, `off`, `no` (any case) is true.
pub fn str2bool(s: &str) -> bool {
    !matches!(s.to_lowercase().as_str(), "false" | "0" | "off" | "no")
}

/// flytekit 1.16's `ImageSpec`: all 29 dataclass fields in declaration order, plus the force-push flag.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSpec {
    /// Image name; lowercased.
    pub name: String,
    /// Python `major.minor`, or None for the base image's.
    pub python_version: Option<String>,
    /// Builder plugin name (`default`, `envd`, `union`, `noop`); not hashed.
    pub builder: Option<String>,
    /// Directory whose files are copied in (with `source_copy_mode`).
    pub source_root: Option<String>,
    /// Environment variables, in insertion order.
    pub env: Option<Vec<(String, String)>>,
    /// Registry such as `ghcr.io/org`; lowercased and validated.
    pub registry: Option<String>,
    /// pip packages.
    pub packages: Option<Vec<String>>,
    /// conda packages.
    pub conda_packages: Option<Vec<String>>,
    /// conda channels.
    pub conda_channels: Option<Vec<String>>,
    /// Path of requirements.txt / uv.lock / poetry.lock (relative to the process CWD in flytekit).
    pub requirements: Option<String>,
    /// apt packages.
    pub apt_packages: Option<Vec<String>>,
    /// CUDA version.
    pub cuda: Option<String>,
    /// cuDNN version.
    pub cudnn: Option<String>,
    /// Base image: a reference or a nested spec.
    pub base_image: Option<BaseImage>,
    /// Target platform(s), default `linux/amd64`.
    pub platform: Option<String>,
    /// `--index-url`.
    pub pip_index: Option<String>,
    /// `--extra-index-url`s.
    pub pip_extra_index_url: Option<Vec<String>>,
    /// (local secret file, mount path) pairs; not hashed.
    pub pip_secret_mounts: Option<Vec<(String, String)>>,
    /// Extra pip arguments as one string.
    pub pip_extra_args: Option<String>,
    /// Registry config JSON path; not part of the tag, part of `id`.
    pub registry_config: Option<String>,
    /// Entrypoint override (`[]` removes the base one).
    pub entrypoint: Option<Vec<String>>,
    /// Commands run during the build.
    pub commands: Option<Vec<String>>,
    /// e.g. `{spec_hash}-dev`.
    pub tag_format: Option<String>,
    /// Which source files to copy in.
    pub source_copy_mode: Option<CopyFileDetection>,
    /// Files/directories copied to `/root`.
    pub copy: Option<Vec<String>>,
    /// Existing interpreter to build a venv from.
    pub python_exec: Option<String>,
    /// Packages installed at task start; not hashed.
    pub runtime_packages: Option<Vec<String>>,
    /// Builder-specific options, in insertion order, with JSON value types kept (int vs bool vs float).
    pub builder_options: Option<Map<String, Value>>,
    /// Builder images configuration (`uv_image`, `micromamba_image`).
    pub builder_config: Option<Map<String, Value>>,
    /// `_is_force_push`: rebuild even if the image exists.
    pub is_force_push: bool,
}

impl Default for ImageSpec {
    /// The dataclass defaults, before `__post_init__` (call [`ImageSpec::post_init`] after).
    fn default() -> Self {
        ImageSpec {
            name: "flytekit".into(),
            python_version: None,
            builder: None,
            source_root: None,
            env: None,
            registry: None,
            packages: None,
            conda_packages: None,
            conda_channels: None,
            requirements: None,
            apt_packages: None,
            cuda: None,
            cudnn: None,
            base_image: None,
            platform: None,
            pip_index: None,
            pip_extra_index_url: None,
            pip_secret_mounts: None,
            pip_extra_args: None,
            registry_config: None,
            entrypoint: None,
            commands: None,
            tag_format: None,
            source_copy_mode: None,
            copy: None,
            python_exec: None,
            runtime_packages: None,
            builder_options: None,
            builder_config: None,
            is_force_push: false,
        }
    }
}

fn registry_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // flytekit: r"^(localhost:\d{1,5}|([a-z\d\._-]+)(:\d{1,5})?)(/[\w\.-]+)*$" with re.match; Python's
    // `$` also matches before one final "\n", and `\d`/`\w` are Unicode-aware like Rust's.
    RE.get_or_init(|| {
        Regex::new(r"^(localhost:\d{1,5}|([a-z\d\._-]+)(:\d{1,5})?)(/[\w\.-]+)*\n?\z")
            .expect("static registry regex")
    })
}

/// Whether flytekit's `validate_container_registry_name` accepts this (already lowercased) registry.
pub fn validate_registry(registry: &str) -> bool {
    registry_regex().is_match(registry)
}

/// Where a field map came from: the embedded-Python bridge (after flytekit's `__post_init__`) or a
/// user's YAML file (`ImageSpec(**yaml)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Bridge,
    Yaml,
}

impl ImageSpec {
    /// Apply flytekit's `ImageSpec.__post_init__`: lowercase name and registry, validate the
    /// registry, default the platform and `source_copy_mode`, and read the force-push variable.
    /// The builder is left as given (resolving it needs flytekit's builder registry).
    pub fn post_init(mut self, host: &HostEnv) -> Result<Self> {
        self.normalize(host)?;
        self.is_force_push = host.force_push();
        Ok(self)
    }

    /// The `__post_init__` rules that `dataclasses.replace` re-applies (everything but force-push).
    pub(crate) fn normalize(&mut self, host: &HostEnv) -> Result<()> {
        self.name = self.name.to_lowercase();
        if let Some(registry) = self.registry.as_mut().filter(|r| !r.is_empty()) {
            *registry = registry.to_lowercase();
            if !validate_registry(registry) {
                return Err(ImageSpecError::InvalidRegistry {
                    registry: registry.clone(),
                });
            }
        }
        if self.platform.is_none() {
            let local_registry = self
                .registry
                .as_deref()
                .is_some_and(|r| !r.is_empty() && r.starts_with("localhost:"));
            self.platform = Some(if local_registry && host.is_arm64() {
                "linux/arm64".into()
            } else {
                "linux/amd64".into()
            });
        }
        if self.source_root.is_some() && self.source_copy_mode.is_none() {
            self.source_copy_mode = Some(CopyFileDetection::LoadedModules);
        }
        Ok(())
    }

    /// Build from the JSON object `bridge.py::image_spec_to_json` produces (every dataclass field,
    /// enums by NAME, nested specs as nested objects, plus `_is_force_push`). The values already
    /// went through flytekit's `__post_init__`; applying it again is idempotent.
    pub fn from_bridge_json(map: &Map<String, Value>, host: &HostEnv) -> Result<Self> {
        Self::from_fields(map, Origin::Bridge, host)
    }

    /// Build from the text of an `--image spec.yaml` file, as pyflyte does with
    /// `ImageSpec(**yaml.safe_load(f))`. `origin` names the file in error messages.
    pub fn from_yaml_str(text: &str, origin: &str, host: &HostEnv) -> Result<Self> {
        let yaml_err = |message: String| ImageSpecError::Yaml {
            origin: origin.to_string(),
            message,
        };
        let doc: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|e| yaml_err(e.to_string()))?;
        let serde_yaml::Value::Mapping(_) = &doc else {
            return Err(yaml_err(format!(
                "the document must be a mapping of ImageSpec fields, got {}",
                yaml_kind(&doc)
            )));
        };
        let Value::Object(map) = yaml_to_json(&doc, "").map_err(yaml_err)? else {
            return Err(yaml_err("the document must be a mapping".into()));
        };
        Self::from_fields(&map, Origin::Yaml, host)
    }

    /// Read and parse an `--image spec.yaml` file (see [`ImageSpec::from_yaml_str`]).
    pub fn from_yaml_file(path: &Path, host: &HostEnv) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ImageSpecError::Yaml {
            origin: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_yaml_str(&text, &path.display().to_string(), host)
    }

    fn from_fields(map: &Map<String, Value>, origin: Origin, host: &HostEnv) -> Result<Self> {
        let mut spec = ImageSpec::default();
        let mut force_push: Option<bool> = None;
        for (key, value) in map {
            let f = key.as_str();
            match f {
                "name" => match value {
                    Value::String(s) => spec.name = s.clone(),
                    other => return Err(invalid(f, "a string", other)),
                },
                "python_version" => spec.python_version = opt_str(f, value)?,
                "builder" => spec.builder = opt_str(f, value)?,
                "source_root" => spec.source_root = opt_str(f, value)?,
                "env" => spec.env = opt_str_dict(f, value)?,
                "registry" => spec.registry = opt_str(f, value)?,
                "packages" => spec.packages = opt_str_list(f, value)?,
                "conda_packages" => spec.conda_packages = opt_str_list(f, value)?,
                "conda_channels" => spec.conda_channels = opt_str_list(f, value)?,
                "requirements" => spec.requirements = opt_str(f, value)?,
                "apt_packages" => spec.apt_packages = opt_str_list(f, value)?,
                "cuda" => spec.cuda = opt_str(f, value)?,
                "cudnn" => spec.cudnn = opt_str(f, value)?,
                "base_image" => {
                    spec.base_image = match value {
                        Value::Null => None,
                        Value::String(s) => Some(BaseImage::Image(s.clone())),
                        Value::Object(inner) if origin == Origin::Bridge => Some(BaseImage::Spec(
                            Box::new(Self::from_fields(inner, origin, host)?),
                        )),
                        other => {
                            let expected = if origin == Origin::Yaml {
                                "an image reference string (nested ImageSpecs cannot be written in YAML)"
                            } else {
                                "a string, an ImageSpec object or null"
                            };
                            return Err(invalid(f, expected, other));
                        }
                    }
                }
                "platform" => spec.platform = opt_str(f, value)?,
                "pip_index" => spec.pip_index = opt_str(f, value)?,
                "pip_extra_index_url" => spec.pip_extra_index_url = opt_str_list(f, value)?,
                "pip_secret_mounts" => spec.pip_secret_mounts = opt_pairs(f, value)?,
                "pip_extra_args" => spec.pip_extra_args = opt_str(f, value)?,
                "registry_config" => spec.registry_config = opt_str(f, value)?,
                "entrypoint" => spec.entrypoint = opt_str_list(f, value)?,
                "commands" => spec.commands = opt_str_list(f, value)?,
                "tag_format" => spec.tag_format = opt_str(f, value)?,
                "source_copy_mode" => {
                    spec.source_copy_mode = match (value, origin) {
                        (Value::Null, _) => None,
                        (Value::String(s), Origin::Bridge) => match CopyFileDetection::from_name(s)
                        {
                            Some(mode) => Some(mode),
                            None => {
                                return Err(invalid(
                                    f,
                                    "one of LOADED_MODULES, ALL, NO_COPY",
                                    value,
                                ))
                            }
                        },
                        (other, Origin::Yaml) => {
                            // `ImageSpec(**yaml)` keeps a YAML string as a plain str, which flytekit
                            // then hashes as a str (not the enum) and treats as ALL. Refuse rather
                            // than guess a tag that the user's pyflyte would not produce.
                            return Err(invalid(
                                f,
                                "unset in YAML (flytekit keeps it as a plain string, not a \
                                 CopyFileDetection; set it in Python instead)",
                                other,
                            ));
                        }
                        (other, Origin::Bridge) => {
                            return Err(invalid(f, "one of LOADED_MODULES, ALL, NO_COPY", other))
                        }
                    }
                }
                "copy" => spec.copy = opt_str_list(f, value)?,
                "python_exec" => spec.python_exec = opt_str(f, value)?,
                "runtime_packages" => spec.runtime_packages = opt_str_list(f, value)?,
                "builder_options" => spec.builder_options = opt_dict(f, value)?,
                "builder_config" => spec.builder_config = opt_dict(f, value)?,
                "_is_force_push" if origin == Origin::Bridge => match value {
                    Value::Bool(b) => force_push = Some(*b),
                    Value::Null => {}
                    other => return Err(invalid(f, "true or false", other)),
                },
                _ => {
                    let hint = match origin {
                        Origin::Yaml => format!("; valid fields are: {}", FIELDS.join(", ")),
                        Origin::Bridge => {
                            " (a flytekit newer than 1.16 may have added it; its tag cannot be \
                             reproduced)"
                                .to_string()
                        }
                    };
                    return Err(ImageSpecError::UnknownField {
                        field: key.clone(),
                        hint,
                    });
                }
            }
        }
        let mut spec = spec.post_init(host)?;
        if let Some(b) = force_push {
            spec.is_force_push = b;
        }
        Ok(spec)
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n} (quote it to make it a string)"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

fn invalid(field: &str, expected: &str, got: &Value) -> ImageSpecError {
    ImageSpecError::InvalidField {
        field: field.to_string(),
        expected: expected.to_string(),
        got: describe(got),
    }
}

fn opt_str(field: &str, v: &Value) -> Result<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(invalid(field, "a string or null", other)),
    }
}

fn opt_str_list(field: &str, v: &Value) -> Result<Option<Vec<String>>> {
    match v {
        Value::Null => Ok(None),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(invalid(field, "a list of strings or null", other)),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        other => Err(invalid(field, "a list of strings or null", other)),
    }
}

fn opt_str_dict(field: &str, v: &Value) -> Result<Option<Vec<(String, String)>>> {
    match v {
        Value::Null => Ok(None),
        Value::Object(map) => map
            .iter()
            .map(|(k, item)| match item {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(invalid(&format!("{field}.{k}"), "a string", other)),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        other => Err(invalid(
            field,
            "a mapping of strings to strings or null",
            other,
        )),
    }
}

fn opt_pairs(field: &str, v: &Value) -> Result<Option<Vec<(String, String)>>> {
    let expected = "a list of [source, mount path] string pairs or null";
    match v {
        Value::Null => Ok(None),
        Value::Array(items) => items
            .iter()
            .map(|item| match item.as_array().map(|a| a.as_slice()) {
                Some([Value::String(a), Value::String(b)]) => Ok((a.clone(), b.clone())),
                _ => Err(invalid(field, expected, item)),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        other => Err(invalid(field, expected, other)),
    }
}

fn opt_dict(field: &str, v: &Value) -> Result<Option<Map<String, Value>>> {
    match v {
        Value::Null => Ok(None),
        Value::Object(map) => Ok(Some(map.clone())),
        other => Err(invalid(field, "a mapping or null", other)),
    }
}

fn yaml_kind(v: &serde_yaml::Value) -> &'static str {
    match v {
        serde_yaml::Value::Null => "an empty document",
        serde_yaml::Value::Bool(_) => "a boolean",
        serde_yaml::Value::Number(_) => "a number",
        serde_yaml::Value::String(_) => "a string",
        serde_yaml::Value::Sequence(_) => "a list",
        serde_yaml::Value::Mapping(_) => "a mapping",
        serde_yaml::Value::Tagged(_) => "a tagged value",
    }
}

/// YAML → the JSON value PyYAML's `safe_load` would give, as far as ImageSpec needs.
fn yaml_to_json(v: &serde_yaml::Value, at: &str) -> std::result::Result<Value, String> {
    use serde_yaml::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(*b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| format!("{at}: non-finite number {f} is not supported"))?
            }
        }
        Y::String(s) => Value::String(s.clone()),
        Y::Sequence(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| yaml_to_json(item, &format!("{at}[{i}]")))
                .collect::<std::result::Result<_, _>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, item) in m {
                let Y::String(key) = k else {
                    return Err(format!(
                        "{}: mapping keys must be strings, got {}",
                        if at.is_empty() { "top level" } else { at },
                        yaml_kind(k)
                    ));
                };
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                out.insert(key.clone(), yaml_to_json(item, &path)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => return Err(format!("{at}: YAML tag {} is not supported", t.tag)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn host() -> HostEnv {
        HostEnv::x86_64()
    }

    #[test]
    fn post_init_lowercases_and_defaults() {
        let spec = ImageSpec {
            name: "My-Image".into(),
            registry: Some("ghcr.io/Example-Org".into()),
            source_root: Some(".".into()),
            ..Default::default()
        }
        .post_init(&host())
        .unwrap();
        assert_eq!(spec.name, "my-image");
        assert_eq!(spec.registry.as_deref(), Some("ghcr.io/example-org"));
        assert_eq!(spec.platform.as_deref(), Some("linux/amd64"));
        assert_eq!(
            spec.source_copy_mode,
            Some(CopyFileDetection::LoadedModules)
        );
        assert!(!spec.is_force_push);
    }

    #[test]
    fn localhost_registry_on_arm64_defaults_to_arm64() {
        let arm = HostEnv {
            machine: "aarch64".into(),
            force_push_env: Some("".into()),
        };
        let spec = ImageSpec {
            registry: Some("localhost:30000".into()),
            ..Default::default()
        };
        let spec = spec.post_init(&arm).unwrap();
        assert_eq!(spec.platform.as_deref(), Some("linux/arm64"));
        // str2bool("") is True in flytekit.
        assert!(spec.is_force_push);
        let spec = ImageSpec {
            registry: Some("ghcr.io/x".into()),
            ..Default::default()
        };
        assert_eq!(
            spec.post_init(&arm).unwrap().platform.as_deref(),
            Some("linux/amd64")
        );
    }

    #[test]
    fn registry_validation() {
        for ok in [
            "localhost:30000",
            "ghcr.io/org",
            "docker.io/u/sub.x-y_z",
            "my_reg:5000/a",
            "ghcr.io/x\n",
        ] {
            assert!(validate_registry(ok), "{ok:?}");
        }
        for bad in [
            "ghcr.io/",
            "a b",
            "ghcr.io:123456",
            "ghcr.io//x",
            "localhost:1234567",
        ] {
            assert!(!validate_registry(bad), "{bad:?}");
        }
        let err = ImageSpec {
            registry: Some("Bad Registry".into()),
            ..Default::default()
        }
        .post_init(&host())
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("registry") && msg.contains("'bad registry'"),
            "{msg}"
        );
    }

    #[test]
    fn bridge_json_round() {
        let map = json!({
            "name": "child", "builder": "envd", "registry": "ghcr.io/org",
            "base_image": {"name": "base", "packages": ["numpy"], "platform": "linux/amd64", "_is_force_push": false},
            "source_root": "/src", "source_copy_mode": "ALL",
            "pip_secret_mounts": [[".netrc", "/root/.netrc"]],
            "builder_options": {"z": 1, "a": true, "m": 1.5},
            "_is_force_push": true
        });
        let spec = ImageSpec::from_bridge_json(map.as_object().unwrap(), &host()).unwrap();
        assert!(spec.is_force_push);
        assert_eq!(spec.source_copy_mode, Some(CopyFileDetection::All));
        let Some(BaseImage::Spec(base)) = &spec.base_image else {
            panic!("nested base")
        };
        assert_eq!(base.packages.as_deref(), Some(&["numpy".to_string()][..]));
        let keys: Vec<_> = spec
            .builder_options
            .as_ref()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["z", "a", "m"]);
        let err = ImageSpec::from_bridge_json(
            json!({"name": "x", "new_field": 1}).as_object().unwrap(),
            &host(),
        );
        assert!(matches!(err, Err(ImageSpecError::UnknownField { .. })));
    }

    #[test]
    fn yaml_errors_are_clear() {
        let e =
            ImageSpec::from_yaml_str("name: x\npackages: numpy\n", "s.yaml", &host()).unwrap_err();
        assert!(
            e.to_string()
                .contains("`packages` must be a list of strings"),
            "{e}"
        );
        let e =
            ImageSpec::from_yaml_str("name: x\npackage: [numpy]\n", "s.yaml", &host()).unwrap_err();
        assert!(
            e.to_string().contains("unknown ImageSpec field `package`"),
            "{e}"
        );
        let e = ImageSpec::from_yaml_str("python_version: 3.10\n", "s.yaml", &host()).unwrap_err();
        assert!(
            e.to_string().contains("python_version") && e.to_string().contains("3.1"),
            "{e}"
        );
        let e = ImageSpec::from_yaml_str("env:\n  A: 1\n", "s.yaml", &host()).unwrap_err();
        assert!(e.to_string().contains("`env.A` must be a string"), "{e}");
        let e = ImageSpec::from_yaml_str("- a\n", "s.yaml", &host()).unwrap_err();
        assert!(
            e.to_string().contains("s.yaml") && e.to_string().contains("mapping"),
            "{e}"
        );
        let e = ImageSpec::from_yaml_str("name: [\n", "s.yaml", &host()).unwrap_err();
        assert!(matches!(e, ImageSpecError::Yaml { .. }));
    }

    #[test]
    fn yaml_spec() {
        let spec = ImageSpec::from_yaml_str(
            "name: My-Img\nregistry: GHCR.io/Org\npackages: [numpy, pandas]\nbuilder_options: {n: 1, f: true, x: 1.0}\n",
            "s.yaml",
            &host(),
        )
        .unwrap();
        assert_eq!(spec.name, "my-img");
        assert_eq!(spec.registry.as_deref(), Some("ghcr.io/org"));
        let opts = spec.builder_options.unwrap();
        assert_eq!(opts.get("n"), Some(&json!(1)));
        assert!(opts.get("x").unwrap().is_f64());
    }
}
