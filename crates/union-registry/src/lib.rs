//! A small OCI/Docker registry client: image references, docker credentials, and the existence
//! check that decides whether an ImageSpec image must be built.
//!
//! Unlike flytekit (which asks the Docker daemon and, on any error, *assumes the image exists*), the
//! check talks to the registry's HTTP API v2 directly and returns a tri-state [`ImageStatus`]: a
//! caller stops on [`ImageStatus::Unknown`] with the reason instead of registering an image that may
//! not exist.
//!
//! It also pushes and reads what the registry API offers beyond that ([`RegistryClient::upload_blob`],
//! [`RegistryClient::put_manifest`], [`RegistryClient::tags`], …): blobs, manifests, indexes.
//!
//! Owns: talking to registries. Depends on `union-diagnostics` only. Never prints.
//!
//! ```no_run
//! # async fn demo() -> Result<(), union_registry::RegistryError> {
//! use union_registry::{ImageReference, ImageStatus, RegistryClient};
//! let client = RegistryClient::builder().build()?;
//! let image = ImageReference::parse("localhost:30000/union/debian-python:bookworm")?;
//! match client.check(&image).await {
//!     ImageStatus::Exists { digest } => println!("{image} exists as {digest}"),
//!     ImageStatus::Missing => println!("{image} must be built"),
//!     ImageStatus::Unknown { reason } => return Err(reason),
//! }
//! # Ok(()) }
//! ```

#![deny(clippy::print_stdout, clippy::print_stderr)]

mod challenge;
mod client;
mod credentials;
mod push;
mod reference;

use std::path::PathBuf;

pub use challenge::{parse_challenges, Challenge};
pub use client::{RegistryClient, RegistryClientBuilder, MANIFEST_ACCEPT};
pub use credentials::{default_config_dir, Credential, DockerConfig, DOCKER_HUB_CONFIG_KEY};
pub use push::{sha256_digest, Manifest, Mount, TagPage, UploadSession};
pub use reference::{ImageReference, ReferenceError, DOCKER_HUB, DOCKER_HUB_API_HOST};

/// What the registry says about an image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageStatus {
    /// The manifest exists; `digest` is its content digest (`sha256:…`).
    Exists {
        /// The manifest's digest, from `Docker-Content-Digest` or computed from the manifest bytes.
        digest: String,
    },
    /// The registry answered 404: the image must be built and pushed.
    Missing,
    /// The registry could not be asked or would not answer; never treat this as "exists".
    Unknown {
        /// Why, naming the registry host (never a credential).
        reason: RegistryError,
    },
}

/// Registry client failures. Messages name the registry host, the image or the config file, and
/// never include a password, token or `auth` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The string is not an image reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// Connection refused, DNS failure, TLS failure or timeout.
    #[error("registry {host} unreachable: {detail}")]
    Unreachable {
        /// Registry host (and port).
        host: String,
        /// The underlying network error.
        detail: String,
    },
    /// The registry (or its token service) answered 401/403 to the credentials we sent.
    #[error("registry refused credentials for {host}")]
    CredentialsRefused {
        /// Registry host (and port).
        host: String,
    },
    /// The registry needs credentials and none are configured for it.
    #[error("registry {host} requires authentication and no credentials for it were found (run `docker login {host}`)")]
    AuthenticationRequired {
        /// Registry host (and port).
        host: String,
    },
    /// The registry's token service failed (unreachable, bad answer, unsupported challenge).
    #[error("registry {host}: token service failed: {detail}")]
    TokenService {
        /// Registry host (and port).
        host: String,
        /// What went wrong, without the response body.
        detail: String,
    },
    /// Any status the check cannot interpret: 5xx, 429, an unexpected 3xx or 4xx.
    #[error("registry {host} answered HTTP {status} for {image}")]
    UnexpectedStatus {
        /// Registry host (and port).
        host: String,
        /// The fully qualified image reference.
        image: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The manifest was not found (only from [`RegistryClient::manifest_digest`]).
    #[error("image {image} not found in registry {host}")]
    NotFound {
        /// Registry host (and port).
        host: String,
        /// The fully qualified image reference.
        image: String,
    },
    /// The docker config file could not be read or parsed.
    #[error("docker config `{}`: {detail}", path.display())]
    Config {
        /// The `config.json` path.
        path: PathBuf,
        /// What is wrong, without any secret.
        detail: String,
    },
    /// A `docker-credential-*` helper failed.
    #[error("credential helper `{helper}` for registry {host}: {detail}")]
    CredentialHelper {
        /// Registry host (and port).
        host: String,
        /// The helper program, e.g. `docker-credential-desktop`.
        helper: String,
        /// What went wrong (the helper's first error line, never its JSON output).
        detail: String,
    },
    /// The registry refused a request with an error answer (its spec error code, e.g.
    /// `DIGEST_INVALID`, `MANIFEST_BLOB_UNKNOWN`, when it sent one).
    #[error("registry {host} refused {what}: HTTP {status} {code}: {message}")]
    Refused {
        /// Registry host (and port).
        host: String,
        /// What was asked, e.g. `manifest localhost:5000/a:b`.
        what: String,
        /// The HTTP status code.
        status: u16,
        /// The first error's `code` ("" when the answer had none).
        code: String,
        /// The first error's `message`.
        message: String,
    },
    /// A chunk did not continue the upload where the registry has it (HTTP 416).
    #[error("registry {host} refused {what}: the chunk does not start where the upload is{}", offset.map(|o| format!(" (byte {o})")).unwrap_or_default())]
    RangeNotSatisfiable {
        /// Registry host (and port).
        host: String,
        /// What was sent.
        what: String,
        /// Where the registry says the upload is, when it said.
        offset: Option<u64>,
    },
    /// The registry's answer does not follow the API (a missing header, a body that is not JSON).
    #[error("registry {host} answered outside the registry API: {detail}")]
    Protocol {
        /// Registry host (and port).
        host: String,
        /// What was wrong.
        detail: String,
    },
    /// The HTTP client could not be set up (TLS roots, …).
    #[error("could not set up the registry HTTP client: {0}")]
    Client(String),
}

impl union_diagnostics::Hint for RegistryError {}
