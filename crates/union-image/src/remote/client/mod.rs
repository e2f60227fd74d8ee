//! Client side of the remote builder: which files a spec needs, the request, and the streamed
//! build. Needs no Docker engine.
//!
//! - `connection`: [`RemoteBuilderClient`], RPC statuses and streamed failures as
//!   [`RemoteBuildError`]s, progress as [`BuildEvent`](crate::build::BuildEvent)s;
//! - `context`: the files a spec needs (the same the local planner takes), the size limits, and
//!   the compressed tar that carries them;
//! - `ensure`: the request for one spec, and [`ensure_remote_images`] over many.

mod connection;
mod context;
mod ensure;

use std::path::PathBuf;

use tonic::Code;

use crate::build::BuildError;
use crate::dockerfile::PlanError;
use crate::ImageSpecError;

pub use connection::RemoteBuilderClient;
pub use context::{collect_context, context_tar_gz, ContextFile};
pub use ensure::{build_request, ensure_remote_images};

/// Limits on what a client sends.
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

/// Options for [`ensure_remote_images`].
#[derive(Debug, Clone, Default)]
pub struct RemoteBuildOptions {
    /// Build and push even when an image exists (also per spec: `force_push()`).
    pub force: bool,
    /// The user's flytekit version, pinned into images whose requirements lack flytekit.
    pub flytekit_version: String,
    /// Base image for specs without `base_image` (config `union.baseImage`); None: the server's.
    pub default_base_image: Option<String>,
    /// Context size limits.
    pub limits: ContextLimits,
}

/// One image the remote builder made sure of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteImage {
    /// The spec's name.
    pub spec_name: String,
    /// `ImageSpec.image_name()` as computed locally (what flytekit's tag hashing gives).
    pub image_name: String,
    /// The reference tasks must use: `image_name`, or with the server's default registry in
    /// front when the spec names no registry.
    pub fully_qualified: String,
    /// True when the server built it now; false when it existed.
    pub built: bool,
}

/// Everything that can go wrong building remotely.
#[derive(Debug, thiserror::Error)]
pub enum RemoteBuildError {
    /// The endpoint could not be reached.
    #[error("cannot reach the remote image builder at {endpoint}: {message}")]
    Connect { endpoint: String, message: String },
    /// The server answers but has no image builder (no engine, or `--no-image-builder`).
    #[error("the backend at {endpoint} cannot build images: {message}")]
    NoBuilder { endpoint: String, message: String },
    /// The server does not serve the image builder service at all.
    #[error(
        "the backend at {endpoint} does not serve the union image builder (ImageBuilderService)"
    )]
    NotServed { endpoint: String },
    /// Another RPC failure.
    #[error("{rpc} for image {image} failed: {code:?}: {message}")]
    Rpc {
        rpc: &'static str,
        image: String,
        code: Code,
        message: String,
    },
    /// The spec cannot be built (found on the client before sending anything).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Computing the spec's tag failed.
    #[error(transparent)]
    Spec(#[from] ImageSpecError),
    /// `pip_secret_mounts` with the remote builder.
    #[error(
        "ImageSpec '{image}' has pip_secret_mounts, which the remote image builder does not accept: \
         the secret files would have to leave this machine"
    )]
    Secrets { image: String },
    /// A `copy` entry that cannot be sent.
    #[error("ImageSpec '{image}': copy entry '{entry}' {reason}")]
    CopyEntry {
        image: String,
        entry: String,
        reason: String,
    },
    /// The files the spec needs exceed the limits.
    #[error(
        "ImageSpec '{image}' needs {files} file(s), {total} in all, to build remotely; the limit is \
         {limit_files} files and {limit}. Largest: {largest}"
    )]
    ContextTooLarge {
        image: String,
        files: usize,
        total: String,
        limit: String,
        limit_files: usize,
        largest: String,
    },
    /// Reading a context file failed.
    #[error("ImageSpec '{image}': cannot read {}: {source}", path.display())]
    Io {
        image: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The server refused the spec or its files.
    #[error("the remote builder refused ImageSpec '{image}': {message}")]
    Invalid { image: String, message: String },
    /// A build step failed on the server; `output` is that step's output.
    #[error("building image {image} failed at step `{step}`: {message}")]
    StepFailed {
        image: String,
        step: String,
        message: String,
        output: String,
    },
    /// The build failed without a failing step.
    #[error("building image {image} failed: {message}")]
    BuildFailed { image: String, message: String },
    /// The server could not push.
    #[error("the remote builder could not push image {image}: {message}")]
    PushFailed { image: String, message: String },
    /// The server's engine or registry is unavailable.
    #[error("the remote builder cannot build image {image} right now: {message}")]
    Unavailable { image: String, message: String },
    /// The stream ended without a result.
    #[error("the remote build of image {image} ended without a result")]
    NoResult { image: String },
}

impl RemoteBuildError {
    /// The failing step's output, for errors that have one.
    pub fn output(&self) -> Option<&str> {
        match self {
            RemoteBuildError::StepFailed { output, .. } if !output.trim().is_empty() => {
                Some(output)
            }
            _ => None,
        }
    }

    /// The same failure as a local-builder error, for [`BuildReporter::finished`].
    pub(super) fn as_build_error(&self, image: &str) -> BuildError {
        match self {
            RemoteBuildError::StepFailed {
                image,
                step,
                message,
                output,
            } => BuildError::StepFailed {
                image: image.clone(),
                step: step.clone(),
                message: message.clone(),
                output: output.clone(),
            },
            RemoteBuildError::PushFailed { image, message } => BuildError::Push {
                image: image.clone(),
                message: message.clone(),
            },
            other => BuildError::Build {
                image: image.to_string(),
                message: other.to_string(),
            },
        }
    }
}

impl union_diagnostics::Hint for RemoteBuildError {
    fn detail(&self) -> Option<String> {
        self.output().map(str::to_string)
    }
}

/// Human-readable size, e.g. `12.5 MiB`.
pub use union_diagnostics::human_bytes as human_size;
