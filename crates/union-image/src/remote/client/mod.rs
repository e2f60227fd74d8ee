//! Client side of union's remote builder: the two files a build uploads, made exactly as union
//! 0.1.204 makes them (`UCImageSpecBuilder._validate_configuration`):
//!
//! - `spec.json` (`spec_json`): union's own spec format, not flytekit's ImageSpec;
//! - the build context (`context`): the requirements file (by its file name), pyproject.toml
//!   and its README beside a lock file, the source files `source_copy_mode` selects (relative to
//!   `source_root`) and every `copy` entry, archived as `shutil.make_archive(..., "xztar")` does
//!   (members `.` and `./<path>`), or nothing when there is no file.
//!
//! The RPCs (the enabled check, GetImage, uploads, the build execution) are the caller's: it has
//! the authenticated FlyteAdmin channel.

mod context;
mod spec_json;

use std::path::PathBuf;

use crate::spec::ImageSpec;
use crate::{ImageSpecError, TagContext};

pub use context::{context_tar_xz, ContextEntry};
pub use spec_json::{python_json, union_package, unsupported_parameters};

/// What one build uploads, and what union derives from the spec besides.
#[derive(Debug, Clone)]
pub struct UnionBuildInput {
    /// `spec.json`, byte for byte as union's `json.dump` writes it.
    pub spec_json: Vec<u8>,
    /// The context as a `.tar.xz`; None when it holds no file (union then sends `context=""`).
    pub context: Option<Vec<u8>>,
    /// `builder_options["imagepull_secret_name"]`: build with the `build-image-exec` variant.
    pub imagepull_secret_name: Option<String>,
    /// Fields set on the spec that union's builder ignores (union warns about them).
    pub unsupported: Vec<String>,
}

/// Why a spec cannot be sent to union's builder (union raises most of these as `ValueError`).
#[derive(Debug, thiserror::Error)]
pub enum RemoteBuildError {
    /// `pip_secret_mounts` with the remote builder.
    #[error(
        "ImageSpec '{image}' has pip_secret_mounts, which the remote image builder does not accept: \
         the secret files would have to leave this machine"
    )]
    Secrets { image: String },
    /// What union refuses, with union's message.
    #[error("ImageSpec '{image}': {message}")]
    Invalid { image: String, message: String },
    /// Computing the source files or the tag failed.
    #[error(transparent)]
    Spec(#[from] ImageSpecError),
    /// Reading a file for the context failed.
    #[error("ImageSpec '{image}': cannot read {}: {source}", path.display())]
    Io {
        image: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl union_diagnostics::Hint for RemoteBuildError {
    fn hints(&self) -> Vec<String> {
        match self {
            RemoteBuildError::Secrets { .. } => {
                vec!["build this image locally: builder=\"default\"".into()]
            }
            _ => Vec::new(),
        }
    }
}

/// Everything one build of `spec` (whose nested base, if any, is already an image reference)
/// uploads. `image_name` is `spec.image_name()`; `python` the client's `major.minor` (used when
/// the spec names none); `union_version` the client's union (`union==<version>` is added to the
/// packages unless they name union or unionai; None: union is not installed, nothing is added).
pub fn prepare(
    spec: &ImageSpec,
    image_name: &str,
    ctx: &TagContext,
    python: &str,
    union_version: Option<&str>,
) -> Result<UnionBuildInput, RemoteBuildError> {
    if spec
        .pip_secret_mounts
        .as_ref()
        .is_some_and(|m| !m.is_empty())
    {
        return Err(RemoteBuildError::Secrets {
            image: spec.name.clone(),
        });
    }
    let unsupported = unsupported_parameters(spec);
    let (spec_json, files) =
        spec_json::spec_and_files(spec, image_name, ctx, python, union_version)?;
    let context = if files.is_empty() {
        None
    } else {
        Some(context_tar_xz(&spec.name, &files)?)
    };
    let imagepull_secret_name = spec
        .builder_options
        .as_ref()
        .and_then(|o| o.get("imagepull_secret_name"))
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    Ok(UnionBuildInput {
        spec_json,
        context,
        imagepull_secret_name,
        unsupported,
    })
}

/// Default limits a server accepts in a context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextLimits {
    /// Total uncompressed bytes of the context files.
    pub max_bytes: u64,
    /// Number of files.
    pub max_files: usize,
}

impl Default for ContextLimits {
    fn default() -> Self {
        ContextLimits {
            max_bytes: crate::remote::MAX_CONTEXT_BYTES,
            max_files: crate::remote::MAX_CONTEXT_FILES,
        }
    }
}
