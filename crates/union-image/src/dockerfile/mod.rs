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

mod check;
mod inputs;
mod steps;

use std::path::PathBuf;

use crate::context::BuildContext;
use crate::spec::{BaseImage, ImageSpec};
use crate::tag::TagContext;
use crate::ImageSpecError;

pub use check::check_supported;
pub(crate) use inputs::{requirements_kind, source_files};
pub use steps::sh_quote;

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
    let mut context = BuildContext::new();
    context.add_bytes(".union/python.sh", HELPER_SCRIPT, 0o755);
    let index = steps::IndexAccess::of(spec);
    let secrets = steps::secret_mounts(spec, ctx, &index);
    let install = steps::install(spec, &requirements, settings, &index, &mut context)?;

    let mut df = String::new();
    steps::base_stage(&mut df, spec, &base_image);
    steps::tools_stage(&mut df, &install);
    steps::install_stage(&mut df, spec, &install, &secrets, &index);
    steps::entrypoint(&mut df, spec);
    steps::copies(&mut df, &mut context, spec, ctx)?;
    steps::commands(&mut df, spec);
    steps::sources(&mut df, &mut context, spec, ctx)?;
    steps::finish(&mut df, spec);
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
            .map(|p| inputs::resolve(&ctx.base_dir, p)),
    })
}
