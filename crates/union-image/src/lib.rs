//! flytekit's `ImageSpec` as native Rust data, and its tag, `image_name()` and `id`.
//!
//! The tag computation is byte-identical to flytekit 1.16.31 (`flytekit/image_spec/image_spec.py`,
//! `ImageSpec.tag`/`ImageSpec.id`): the spec's fields are rendered as Python `str(dict)`
//! ([`pyrepr`]), with files replaced by digests ([`tag`]), hashed with MD5 and encoded as
//! unpadded base64url.
//!
//! - [`spec`]: the `ImageSpec` struct, its `__post_init__` rules, and constructors from the bridge's
//!   JSON and from an `--image spec.yaml` file;
//! - [`tag`]: `tag()`, `image_name()`, `id()` and the file digests they need;
//! - [`pyrepr`]: Python `repr()` formatting;
//! - [`dockerfile`]: from a spec to a build plan (Dockerfile and build context);
//! - [`build`]: builds and pushes through the Docker Engine API (bollard), with BuildKit;
//! - [`remote`]: the remote builder (`builder="union"`): the client, and the server the sandbox
//!   runs.
//!
//! Owns: ImageSpecs, their names and their builds. Depends on `union-registry` (existence
//! checks, credentials) and `union-diagnostics`.
//! Never prints: progress goes to a [`build::BuildReporter`].

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod build;
pub mod context;
pub mod dockerfile;
mod files;
pub mod pipeline;
pub mod pyrepr;
pub mod remote;
pub mod spec;
pub mod tag;
mod unicode_printable;

use std::path::PathBuf;

pub use spec::{BaseImage, CopyFileDetection, HostEnv, ImageSpec};

/// How many distinct images are built at once, for every command (`--jobs` overrides it).
pub const ENV_BUILD_JOBS: &str = "UNION_BUILD_JOBS";
pub use tag::TagContext;

/// Everything that can go wrong building an ImageSpec or computing its tag.
#[derive(Debug, thiserror::Error)]
pub enum ImageSpecError {
    /// `registry` does not match flytekit's registry-name pattern.
    #[error(
        "invalid container registry name in ImageSpec field `registry`: '{registry}'; expected e.g. \
         'localhost:30000', 'ghcr.io/username' or 'docker.io/username'"
    )]
    InvalidRegistry { registry: String },
    /// A field holds a value of the wrong type.
    #[error("ImageSpec field `{field}` must be {expected}, got {got}")]
    InvalidField {
        field: String,
        expected: String,
        got: String,
    },
    /// A key that is not an ImageSpec field.
    #[error("unknown ImageSpec field `{field}`{hint}")]
    UnknownField { field: String, hint: String },
    /// The YAML document is not valid YAML or not a mapping.
    #[error("cannot read ImageSpec YAML {origin}: {message}")]
    Yaml { origin: String, message: String },
    /// `source_copy_mode` is set but `source_root` is not (flytekit raises the same ValueError).
    #[error("field source_root for image spec {name} must be set when source_copy_mode is {mode}")]
    MissingSourceRoot { name: String, mode: String },
    /// The `requirements` file does not exist.
    #[error(
        "requirements file '{path}' of ImageSpec '{image}' not found (relative paths are resolved \
         against {base})"
    )]
    RequirementsNotFound {
        image: String,
        path: String,
        base: PathBuf,
    },
    /// A file could not be read while hashing.
    #[error("cannot read {path} for ImageSpec '{image}': {source}")]
    Io {
        image: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file name that is not UTF-8 (flytekit cannot hash it either).
    #[error("file name {path:?} under ImageSpec '{image}' is not valid UTF-8")]
    NonUtf8Path { image: String, path: PathBuf },
    /// `tag_format` is not a format string flytekit could apply with `spec_hash` alone.
    #[error("invalid tag_format '{format}' in ImageSpec '{image}': {message}")]
    TagFormat {
        image: String,
        format: String,
        message: String,
    },
}

/// Result alias for this module.
pub type Result<T, E = ImageSpecError> = std::result::Result<T, E>;

impl union_diagnostics::Hint for ImageSpecError {}
