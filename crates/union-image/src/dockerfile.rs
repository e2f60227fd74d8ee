//! From an [`ImageSpec`] to a [`BuildPlan`]: the Dockerfile and build context union's builder
//! sends to the Docker engine, after refusing field combinations it cannot honour.
//!
//! The Dockerfile needs only the base image and a Python package index (no `#syntax` line, no
//! ghcr.io/astral-sh/uv or micromamba images as flytekit's default builder uses, because public
//! registries may be unreachable). Its shape:
//!
//! 1. stage `union-base`: `FROM <base>`, apt packages, then `.union/python.sh` finds the Python
//!    the spec asks for (`python_exec`, `python<python_version>` or `python3`, installing it with
//!    apt-get when the base lacks it and apt can provide it) and creates `/opt/venv`;
//! 2. stage `union-tools`: uv (and poetry for `poetry.lock`) pip-installed into
//!    `/opt/union-tools`, bind-mounted into later steps and never part of the image;
//! 3. the final stage installs the Python dependencies into `/opt/venv` with uv (cache mounts for
//!    pip, uv, poetry and apt; secrets as BuildKit secret mounts), then `copy` entries, `commands`,
//!    the source files, and `_F_IMG_ID` last.
//!
//! Task code is not baked in unless `source_copy_mode` asks for it, so a code-only change
//! rebuilds nothing; when it is, the source is copied after `commands` so only that layer reruns.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::context::BuildContext;
use super::files;
use super::spec::{BaseImage, CopyFileDetection, ImageSpec};
use super::tag::TagContext;
use super::ImageSpecError;

/// flytekit's default base image (`default_builder.py`): Debian without Python, so union's
/// builder installs Debian's python3 into it with apt-get.
pub const FLYTEKIT_DEFAULT_BASE_IMAGE: &str = "debian:bookworm-slim";
/// The uv version the builder installs into its tools stage.
pub const UV_VERSION: &str = "0.13.9";
/// The poetry version used for `poetry.lock` requirements.
pub const POETRY_VERSION: &str = "2.5.1";
/// Where the task's Python environment lives in built images.
pub const VENV: &str = "/opt/venv";
const TOOLS: &str = "/opt/union-tools";
const HELPER_SCRIPT: &str = include_str!("python.sh");

/// Inputs to Dockerfile generation that are not part of the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSettings {
    /// Base image for specs without `base_image` (flytekit: [`FLYTEKIT_DEFAULT_BASE_IMAGE`]).
    pub default_base_image: String,
    /// The user's local flytekit version, pinned into images whose requirements lack flytekit.
    pub flytekit_version: String,
}

/// A secret exposed to the install step only (a BuildKit secret mount): never in the context, a
/// layer, the image's history or any message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMount {
    /// BuildKit secret id (`secret_<i>` for `pip_secret_mounts`, as flytekit names them).
    pub id: String,
    /// Where its bytes come from.
    pub source: SecretSource,
    /// The path it is mounted at during the install step.
    pub target: String,
}

/// Where a secret's bytes come from.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A local file (a `pip_secret_mounts` entry), read by the engine's session only.
    File(PathBuf),
    /// Text union made (a netrc with the credentials written into index URLs), written to a
    /// private temporary file for the duration of the build.
    Text(String),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::File(p) => f.debug_tuple("File").field(p).finish(),
            SecretSource::Text(_) => f.write_str("Text(<redacted>)"),
        }
    }
}

/// The secret id and mount path of the netrc that carries index credentials.
const NETRC_SECRET: &str = "union_netrc";
const NETRC_TARGET: &str = "/run/secrets/union_netrc";

/// Everything needed to build and push one ImageSpec's image.
#[derive(Debug, Clone)]
pub struct BuildPlan {
    /// The spec's `name`.
    pub spec_name: String,
    /// `image_name()`: the reference the image is tagged and pushed as.
    pub image_name: String,
    /// The base image reference the Dockerfile starts `FROM`.
    pub base_image: String,
    /// A nested base ImageSpec, built (and pushed) before this one.
    pub base: Option<Box<BuildPlan>>,
    /// The generated Dockerfile (also at `Dockerfile` in the context).
    pub dockerfile: String,
    /// The build context (Dockerfile, helper files, user files).
    pub context: BuildContext,
    /// Secret mounts for the install step.
    pub secrets: Vec<SecretMount>,
    /// The target platform, e.g. `linux/amd64`; several, comma-separated, can be planned (the
    /// tag and Dockerfile do not depend on it) but not built, see [`BuildPlan::platforms`].
    pub platform: String,
    /// Whether the image has a registry to be pushed to.
    pub push: bool,
    /// Rebuild even when the image exists (`force_push()` / `FLYTE_FORCE_PUSH_IMAGE_SPEC`).
    pub force: bool,
    /// The spec's `registry_config`: a docker config file with credentials for this image's
    /// registry, used before the user's own for the existence check, pulls and the push.
    pub registry_config: Option<PathBuf>,
}

impl BuildPlan {
    /// The platforms this plan targets (`linux/amd64,linux/arm64` is two).
    pub fn platforms(&self) -> Vec<&str> {
        self.platform
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect()
    }
}

/// Why a spec cannot be turned into a build.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Computing the tag or reading the spec's files failed.
    #[error(transparent)]
    Spec(#[from] ImageSpecError),
    /// A field union's builder cannot honour.
    #[error(
        "ImageSpec '{image}': field `{field}` is not supported by union's image builder: {reason}"
    )]
    Unsupported {
        image: String,
        field: &'static str,
        reason: String,
    },
    /// Two fields that cannot be used together, or a field value that cannot work.
    #[error("ImageSpec '{image}': {message}")]
    Invalid { image: String, message: String },
    /// A file a field names does not exist.
    #[error(
        "ImageSpec '{image}': {field} path '{path}' not found (relative paths are resolved against {base})"
    )]
    MissingFile {
        image: String,
        field: &'static str,
        path: String,
        base: PathBuf,
    },
    /// Reading a file for the context failed.
    #[error("ImageSpec '{image}': cannot read {path}: {source}")]
    Io {
        image: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What the `requirements` field points at.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirements {
    None,
    Txt(PathBuf),
    Pyproject(PathBuf),
    UvLock { lock: PathBuf, pyproject: PathBuf },
    PoetryLock { lock: PathBuf, pyproject: PathBuf },
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    files::resolve(base, p)
}

fn non_empty<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_empty())
}

/// Refuse, before any build, the combinations union's builder cannot honour (naming the field).
pub fn check_supported(spec: &ImageSpec, ctx: &TagContext) -> Result<(), PlanError> {
    requirements_kind(spec, ctx).map(|_| ())?;
    let image = spec.name.clone();
    let unsupported = |field: &'static str, reason: &str| PlanError::Unsupported {
        image: image.clone(),
        field,
        reason: reason.to_string(),
    };
    let invalid = |message: String| PlanError::Invalid {
        image: image.clone(),
        message,
    };
    if spec.cuda.is_some() {
        return Err(unsupported(
            "cuda",
            "it cannot install CUDA; use a base_image that ships CUDA and remove `cuda`",
        ));
    }
    if spec.cudnn.is_some() {
        return Err(unsupported(
            "cudnn",
            "it cannot install cuDNN; use a base_image that ships cuDNN and remove `cudnn`",
        ));
    }
    if non_empty(&spec.conda_packages) {
        return Err(unsupported(
            "conda_packages",
            "it installs Python packages with uv, without micromamba/conda; use `packages` or apt_packages",
        ));
    }
    if non_empty(&spec.conda_channels) {
        return Err(unsupported(
            "conda_channels",
            "it installs Python packages with uv, without micromamba/conda",
        ));
    }
    for entry in spec.copy.iter().flatten() {
        let p = Path::new(entry);
        if p.is_absolute() {
            return Err(invalid(format!(
                "copy entry '{entry}' is an absolute path; `copy` takes paths relative to the working \
                 directory, copied to the same path under /root"
            )));
        }
        if p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(invalid(format!(
                "copy entry '{entry}' contains `..`; `copy` paths must stay inside the working directory"
            )));
        }
        if !resolve(&ctx.base_dir, entry).exists() {
            return Err(PlanError::MissingFile {
                image: image.clone(),
                field: "copy",
                path: entry.clone(),
                base: ctx.base_dir.clone(),
            });
        }
    }
    if let Some(config) = spec.registry_config.as_deref().filter(|p| !p.is_empty()) {
        if !resolve(&ctx.base_dir, config).is_file() {
            return Err(PlanError::MissingFile {
                image: image.clone(),
                field: "registry_config",
                path: config.to_string(),
                base: ctx.base_dir.clone(),
            });
        }
    }
    for (i, (src, target)) in spec.pip_secret_mounts.iter().flatten().enumerate() {
        if !resolve(&ctx.base_dir, src).is_file() {
            return Err(PlanError::MissingFile {
                image: image.clone(),
                field: "pip_secret_mounts",
                path: src.clone(),
                base: ctx.base_dir.clone(),
            });
        }
        if target.is_empty() || target.contains([',', '"', '\n', '\r', ' ']) {
            return Err(invalid(format!(
                "pip_secret_mounts entry {i}: mount path '{target}' must be a path without commas, \
                 quotes or spaces"
            )));
        }
    }
    for (key, value) in spec.env.iter().flatten() {
        if key.is_empty() || key.contains(|c: char| c == '=' || c.is_whitespace() || c == '"') {
            return Err(invalid(format!(
                "env name {key:?} cannot be an environment variable name in an image"
            )));
        }
        if value.contains(['\n', '\r']) {
            return Err(invalid(format!(
                "env value of `{key}` contains a line break, which a Dockerfile ENV cannot hold"
            )));
        }
    }
    if let Some(BaseImage::Spec(inner)) = &spec.base_image {
        check_supported(inner, ctx)?;
    }
    Ok(())
}

fn requirements_kind(spec: &ImageSpec, ctx: &TagContext) -> Result<Requirements, PlanError> {
    let Some(req) = spec.requirements.as_deref().filter(|r| !r.is_empty()) else {
        return Ok(Requirements::None);
    };
    let path = resolve(&ctx.base_dir, req);
    if !path.is_file() {
        return Err(ImageSpecError::RequirementsNotFound {
            image: spec.name.clone(),
            path: req.to_string(),
            base: ctx.base_dir.clone(),
        }
        .into());
    }
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let lock = matches!(file_name, "uv.lock" | "poetry.lock");
    if !lock {
        return Ok(if file_name == "pyproject.toml" {
            Requirements::Pyproject(path)
        } else {
            Requirements::Txt(path)
        });
    }
    let pyproject = path.with_file_name("pyproject.toml");
    if !pyproject.is_file() {
        return Err(PlanError::Invalid {
            image: spec.name.clone(),
            message: format!(
                "requirements file `{file_name}` ('{req}') has no `pyproject.toml` beside it (looked for {})",
                pyproject.display()
            ),
        });
    }
    if non_empty(&spec.packages) {
        return Err(PlanError::Invalid {
            image: spec.name.clone(),
            message: format!(
                "`packages` cannot be combined with requirements `{file_name}`: the lock file fixes the \
                 environment; add the packages to pyproject.toml and re-lock"
            ),
        });
    }
    Ok(if file_name == "uv.lock" {
        Requirements::UvLock {
            lock: path,
            pyproject,
        }
    } else {
        Requirements::PoetryLock {
            lock: path,
            pyproject,
        }
    })
}

/// Quote a word for `/bin/sh` (unchanged when it needs no quoting).
pub fn sh_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A Dockerfile double-quoted string (ENV values): `\` and `"` escaped, `$VAR` still expanded.
fn df_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', r"\\").replace('"', "\\\""))
}

/// flytekit's check for an already-listed flytekit: the requirement name (`^[\w-]+`) is exactly
/// `flytekit`.
fn lists_flytekit(lines: &[String]) -> bool {
    lines.iter().any(|line| {
        let name: String = line
            .trim()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        name == "flytekit"
    })
}

/// The `flytekit` requirement flytekit's builder adds: pinned, or bare for a dev version.
fn flytekit_requirement(version: &str) -> String {
    if version.is_empty() || version.contains("dev") {
        "flytekit".to_string()
    } else {
        format!("flytekit=={version}")
    }
}

fn read(image: &str, path: &Path) -> Result<Vec<u8>, PlanError> {
    std::fs::read(path).map_err(|source| PlanError::Io {
        image: image.to_string(),
        path: path.to_path_buf(),
        source,
    })
}

/// `[project].dependencies` of a PEP 621 pyproject.toml.
fn pyproject_dependencies(image: &str, path: &Path) -> Result<Vec<String>, PlanError> {
    let text = String::from_utf8_lossy(&read(image, path)?).into_owned();
    let invalid = |message: String| PlanError::Invalid {
        image: image.to_string(),
        message,
    };
    let doc: toml::Table = text
        .parse()
        .map_err(|e| invalid(format!("cannot parse {}: {e}", path.display())))?;
    let Some(project) = doc.get("project").and_then(|p| p.as_table()) else {
        return Err(invalid(format!(
            "requirements {} has no PEP 621 [project] table; list dependencies under \
             [project].dependencies or use a lock file (uv.lock, poetry.lock) beside it",
            path.display()
        )));
    };
    let Some(deps) = project.get("dependencies") else {
        return Ok(Vec::new());
    };
    deps.as_array()
        .and_then(|a| a.iter().map(|d| d.as_str().map(str::to_string)).collect())
        .ok_or_else(|| {
            invalid(format!(
                "[project].dependencies in {} must be a list of strings",
                path.display()
            ))
        })
}

/// The README a pyproject.toml references, which poetry/uv may want to see beside it.
fn pyproject_readme(pyproject: &Path) -> Option<PathBuf> {
    let doc: toml::Table = std::fs::read_to_string(pyproject).ok()?.parse().ok()?;
    let readme = doc
        .get("project")
        .and_then(|p| p.get("readme"))
        .or_else(|| doc.get("tool")?.get("poetry")?.get("readme"))?
        .as_str()?
        .to_string();
    let path = pyproject.parent()?.join(&readme);
    (Path::new(&readme).components().count() == 1 && path.is_file()).then_some(path)
}

/// Turn a spec (and a nested base spec, recursively) into a build plan.
pub fn plan(
    spec: &ImageSpec,
    ctx: &TagContext,
    settings: &BuildSettings,
) -> Result<BuildPlan, PlanError> {
    check_supported(spec, ctx)?;
    let requirements = requirements_kind(spec, ctx)?;
    let image_name = spec.image_name(ctx)?;
    let (base_image, base) = match &spec.base_image {
        None => (settings.default_base_image.clone(), None),
        Some(BaseImage::Image(s)) if s.is_empty() => (settings.default_base_image.clone(), None),
        Some(BaseImage::Image(s)) => (s.clone(), None),
        Some(BaseImage::Spec(inner)) => {
            let base_plan = plan(inner, ctx, settings)?;
            (base_plan.image_name.clone(), Some(Box::new(base_plan)))
        }
    };
    let image = spec.name.as_str();
    let mut context = BuildContext::new();
    context.add_bytes(".union/python.sh", HELPER_SCRIPT, 0o755);

    let mut secrets: Vec<SecretMount> = spec
        .pip_secret_mounts
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, (src, target))| SecretMount {
            id: format!("secret_{i}"),
            source: SecretSource::File(resolve(&ctx.base_dir, src)),
            target: target.clone(),
        })
        .collect();

    // Index flags shared by uv pip install and uv sync. Credentials written into an index URL
    // would end up in the image's history (RUN lines are kept there): the URL goes in without
    // them, and they reach uv through a netrc secret mount instead.
    let mut index_args = String::new();
    let mut netrc = String::new();
    let mut index_flag = |flag: &str, url: &str| {
        let _ = write!(
            index_args,
            " {flag} {}",
            sh_quote(&union_diagnostics::redact::strip_url_credentials(url))
        );
        if let (Some((login, password)), Some(host)) = (
            union_diagnostics::redact::url_credentials(url),
            url_host(url),
        ) {
            let _ = writeln!(
                netrc,
                "machine {host} login {} password {}",
                netrc_word(&login),
                netrc_word(&password)
            );
        }
    };
    if let Some(index) = spec.pip_index.as_deref().filter(|s| !s.is_empty()) {
        index_flag("--index-url", index);
    }
    for extra in spec.pip_extra_index_url.iter().flatten() {
        index_flag("--extra-index-url", extra);
    }
    let has_netrc = !netrc.is_empty();
    if has_netrc {
        secrets.push(SecretMount {
            id: NETRC_SECRET.into(),
            source: SecretSource::Text(netrc),
            target: NETRC_TARGET.into(),
        });
    }
    let extra_args = spec
        .pip_extra_args
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(|s| format!(" {}", s.trim()))
        .unwrap_or_default();

    let needs_poetry = matches!(requirements, Requirements::PoetryLock { .. });
    let install = match &requirements {
        Requirements::UvLock { lock, pyproject } | Requirements::PoetryLock { lock, pyproject } => {
            let lock_name = lock.file_name().unwrap().to_string_lossy().into_owned();
            add_file(
                &mut context,
                image,
                &format!(".union/project/{lock_name}"),
                lock,
            )?;
            add_file(
                &mut context,
                image,
                ".union/project/pyproject.toml",
                pyproject,
            )?;
            if let Some(readme) = pyproject_readme(pyproject) {
                let name = readme.file_name().unwrap().to_string_lossy().into_owned();
                add_file(
                    &mut context,
                    image,
                    &format!(".union/project/{name}"),
                    &readme,
                )?;
            }
            if needs_poetry {
                // flytekit: `poetry install <pip_extra_args> --no-root` into the project's venv;
                // here into /opt/venv, the environment VIRTUAL_ENV names.
                format!(
                    "cd /tmp/union/project && POETRY_VIRTUALENVS_CREATE=false POETRY_CACHE_DIR=/root/.cache/pypoetry \
                     {TOOLS}/bin/poetry install --no-interaction --no-root{extra_args}"
                )
            } else {
                format!(
                    "cd /tmp/union/project && UV_PROJECT_ENVIRONMENT={VENV} {TOOLS}/bin/uv sync --locked \
                     --no-dev --no-install-project{index_args}{extra_args}"
                )
            }
        }
        other => {
            let mut lines: Vec<String> = Vec::new();
            match other {
                Requirements::Txt(path) => {
                    let text = String::from_utf8_lossy(&read(image, path)?).into_owned();
                    lines.extend(text.lines().map(|l| l.trim().to_string()));
                }
                Requirements::Pyproject(path) => lines.extend(pyproject_dependencies(image, path)?),
                _ => {}
            }
            lines.extend(spec.packages.iter().flatten().cloned());
            if !lists_flytekit(&lines) {
                lines.push(flytekit_requirement(&settings.flytekit_version));
            }
            context.add_bytes(".union/requirements_uv.txt", lines.join("\n"), 0o644);
            format!(
                "{TOOLS}/bin/uv pip install --python {VENV}/bin/python{index_args}{extra_args} \
                 --requirement /tmp/union/requirements_uv.txt"
            )
        }
    };

    let mut df = String::new();
    let _ = writeln!(
        df,
        "# Generated by union for ImageSpec '{image}'. Needs BuildKit (RUN --mount) and no frontend\n\
         # image: the engine's built-in Dockerfile frontend is used."
    );
    // Stage 1: the base, apt packages and the Python environment.
    let _ = writeln!(df, "FROM {base_image} AS union-base");
    let _ = writeln!(df, "USER root");
    let _ = writeln!(df, "WORKDIR /");
    let apt_mounts = "--mount=type=cache,target=/var/cache/apt,id=union-apt-cache,sharing=locked \\\n    \
                      --mount=type=cache,target=/var/lib/apt/lists,id=union-apt-lists,sharing=locked";
    if let Some(pkgs) = spec.apt_packages.as_ref().filter(|p| !p.is_empty()) {
        let words: Vec<String> = pkgs.iter().map(|p| sh_quote(p)).collect();
        let _ = writeln!(
            df,
            "RUN {apt_mounts} \\\n    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
             --no-install-recommends {}",
            words.join(" ")
        );
    }
    let mut py_env = format!("UNION_BASE_IMAGE={}", sh_quote(&base_image));
    if let Some(v) = spec.python_version.as_deref().filter(|s| !s.is_empty()) {
        let _ = write!(py_env, " UNION_PYTHON_VERSION={}", sh_quote(v));
    }
    if let Some(exe) = spec.python_exec.as_deref().filter(|s| !s.is_empty()) {
        // flytekit builds the venv from python_exec with --system-site-packages.
        let _ = write!(
            py_env,
            " UNION_PYTHON_EXEC={} UNION_VENV_FLAGS=--system-site-packages",
            sh_quote(exe)
        );
    }
    let _ = writeln!(
        df,
        "RUN --mount=type=bind,source=.union/python.sh,target=/tmp/union/python.sh \\\n    {apt_mounts} \\\n    \
         {py_env} sh /tmp/union/python.sh"
    );

    // Stage 2: build tools, mounted into the install steps and never shipped.
    let _ = writeln!(df, "\nFROM union-base AS union-tools");
    let tools = if needs_poetry {
        format!("uv=={UV_VERSION} poetry=={POETRY_VERSION}")
    } else {
        format!("uv=={UV_VERSION}")
    };
    let _ = writeln!(
        df,
        "RUN --mount=type=cache,target=/root/.cache/pip,id=union-pip \\\n    \
         {VENV}/bin/python -m venv {TOOLS} && {TOOLS}/bin/python -m pip install -q --disable-pip-version-check {tools}"
    );

    // Stage 3: the image.
    let _ = writeln!(df, "\nFROM union-base");
    let _ = writeln!(
        df,
        "ENV VIRTUAL_ENV={VENV} PATH=\"{VENV}/bin:$PATH:{TOOLS}/bin\" FLYTE_SDK_RICH_TRACEBACKS=0 \
         SSL_CERT_DIR=/etc/ssl/certs PYTHONPATH=/root"
    );
    if let Some(env) = spec.env.as_ref().filter(|e| !e.is_empty()) {
        let parts: Vec<String> = env
            .iter()
            .map(|(k, v)| format!("{k}={}", df_quote(v)))
            .collect();
        let _ = writeln!(df, "ENV {}", parts.join(" "));
    }
    let tools_mount = format!("--mount=type=bind,from=union-tools,source={TOOLS},target={TOOLS}");
    let uv_cache = "--mount=type=cache,target=/root/.cache/uv,id=union-uv";
    let mut mounts = vec![tools_mount.clone(), uv_cache.to_string()];
    if needs_poetry {
        mounts.push("--mount=type=cache,target=/root/.cache/pypoetry,id=union-poetry".into());
    }
    if context.contains(".union/requirements_uv.txt") {
        mounts.push(
            "--mount=type=bind,source=.union/requirements_uv.txt,target=/tmp/union/requirements_uv.txt"
                .into(),
        );
    } else {
        mounts.push("--mount=type=bind,source=.union/project,target=/tmp/union/project,rw".into());
    }
    for s in &secrets {
        mounts.push(format!(
            "--mount=type=secret,id={},target={},required=true",
            s.id, s.target
        ));
    }
    // uv uses the system's CA store (sites re-signing TLS with a local CA need that), never
    // downloads interpreters, and copies out of the cache mount instead of hard-linking.
    let mut uv_env = format!(
        "UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_NATIVE_TLS=1 UV_PYTHON_DOWNLOADS=never UV_PYTHON={VENV}/bin/python"
    );
    if has_netrc {
        let _ = write!(uv_env, " NETRC={NETRC_TARGET}");
    }
    let check = format!(
        "{{ test -x {VENV}/bin/pyflyte-execute && test -x {VENV}/bin/pyflyte-fast-execute || \
         {{ echo \"union: error: flytekit is not installed in the image (no pyflyte-execute in {VENV}/bin); \
         add flytekit to the ImageSpec's requirements\" >&2; exit 1; }}; }}"
    );
    let _ = writeln!(
        df,
        "RUN {} \\\n    {uv_env} {install} \\\n    && {check}",
        mounts.join(" \\\n    ")
    );
    if let Some(entrypoint) = &spec.entrypoint {
        let _ = writeln!(
            df,
            "ENTRYPOINT {}",
            serde_json::to_string(entrypoint).expect("a list of strings serializes")
        );
    }
    for entry in spec.copy.iter().flatten() {
        let trimmed = entry.trim_end_matches('/');
        let rel = trimmed.strip_prefix("./").unwrap_or(trimmed);
        let src = resolve(&ctx.base_dir, entry);
        let in_ctx = format!(".union/copy/{rel}");
        if src.is_dir() {
            context
                .add_dir(&in_ctx, &src)
                .map_err(|source| PlanError::Io {
                    image: image.to_string(),
                    path: src.clone(),
                    source,
                })?;
            let _ = writeln!(
                df,
                "COPY --chown=flytekit {}",
                copy_args(&in_ctx, &format!("/root/{rel}/"))
            );
        } else {
            add_file(&mut context, image, &in_ctx, &src)?;
            let parent = Path::new(rel)
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let dest = if parent.is_empty() {
                "/root/".to_string()
            } else {
                format!("/root/{parent}/")
            };
            let _ = writeln!(df, "COPY --chown=flytekit {}", copy_args(&in_ctx, &dest));
        }
    }
    if let Some(commands) = spec.commands.as_ref().filter(|c| !c.is_empty()) {
        let _ = writeln!(
            df,
            "RUN {tools_mount} \\\n    {uv_cache} \\\n    {}",
            commands.join(" && ")
        );
    }
    if let Some(mode) = spec
        .source_copy_mode
        .filter(|m| *m != CopyFileDetection::NoCopy)
    {
        let root = spec.source_root.as_deref().unwrap_or_default();
        let listed = match mode {
            CopyFileDetection::LoadedModules => {
                files::list_loaded(&ctx.base_dir, root, &ctx.loaded_modules, image)?
            }
            _ => files::list_all(&ctx.base_dir, root, image)?,
        };
        for (rel, path) in &listed {
            add_file(&mut context, image, &format!(".union/src/{rel}"), path)?;
        }
        if !listed.is_empty() {
            let _ = writeln!(df, "COPY --chown=flytekit .union/src /root");
        }
    }
    let _ = writeln!(df, "WORKDIR /root");
    let _ = writeln!(df, "USER flytekit");
    // Last, as flytekit does: the id changes with any field, and nothing else depends on it.
    let _ = writeln!(df, "ENV _F_IMG_ID={}", spec.id());
    context.add_bytes("Dockerfile", df.clone(), 0o644);

    Ok(BuildPlan {
        spec_name: spec.name.clone(),
        image_name,
        base_image,
        base,
        dockerfile: df,
        context,
        secrets,
        platform: spec
            .platform
            .clone()
            .unwrap_or_else(|| "linux/amd64".to_string()),
        push: spec.registry.as_deref().is_some_and(|r| !r.is_empty()),
        force: spec.is_force_push,
        registry_config: spec
            .registry_config
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(|p| resolve(&ctx.base_dir, p)),
    })
}

/// The host (with port) of a URL, as netrc's `machine` names it.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host_port
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host_port, |(h, _)| h);
    (!host.is_empty()).then(|| host.to_string())
}

/// A netrc token: netrc has no quoting in uv's parser, so whitespace cannot be carried.
fn netrc_word(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// COPY's source and destination in JSON form (safe for any file name).
fn copy_args(src: &str, dest: &str) -> String {
    serde_json::to_string(&[src, dest]).expect("strings serialize")
}

fn add_file(ctx: &mut BuildContext, image: &str, at: &str, src: &Path) -> Result<(), PlanError> {
    ctx.add_file(at, src).map_err(|source| PlanError::Io {
        image: image.to_string(),
        path: src.to_path_buf(),
        source,
    })
}
