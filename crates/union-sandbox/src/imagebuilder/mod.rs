//! union's remote image builder, served the way a Union tenant serves it (union 0.1.204's
//! `union/ucimage/_image_builder.py` is the client):
//!
//! - task `build-image` in project `system`, domain `production` (`task`): its existence is
//!   what clients take as "the builder is enabled". A task of type [`TASK_TYPE`] with no
//!   container: flytekit and union only read its interface (STRING inputs `spec`, `context`,
//!   `target_image`; STRING output `fully_qualified_image`). Registered at start unless
//!   `union sandbox start --no-image-builder`, which removes it instead;
//! - executions of it, or of the `build-image-exec` variant a client registers for an image pull
//!   secret (same type), are run by the sandbox itself, not in a container (`runner`): it reads
//!   `spec.json` and the context archive from its blob store and builds with
//!   [`union_image::remote::ImageBuilder`], writing the build's output as the attempt's log;
//! - `cloudidl.imagebuilder.ImageService/GetImage` (`service`) answers from the builds it
//!   recorded, NOT_FOUND otherwise.

mod runner;
mod service;
mod task;

use std::sync::Arc;

use crate::blobs::Blobs;
use crate::store::{Store, StoreError};

pub use runner::BuildRunner;
pub use service::ImageApi;
pub use task::{build_image_template, TASK_VERSION};

/// The task type of `build-image`: run by [`BuildRunner`], never in a container.
pub const TASK_TYPE: &str = "union-image-build";

/// What the sandbox serves for the image builder.
#[derive(Debug)]
pub struct ImageBuilderParts {
    /// Runs executions of the build task.
    pub runner: Arc<BuildRunner>,
    /// `cloudidl.imagebuilder.ImageService`.
    pub service: ImageApi,
}

/// Register (or, when `settings` is None, remove) the build task, without an organization and
/// in `org` (the one `--auth --org` gives every client), and make the runner and the service.
/// Blocking (the store): call it where the sandbox starts.
pub fn setup(
    store: &Store,
    blobs: Arc<Blobs>,
    settings: Option<union_image::remote::ServerSettings>,
    org: Option<&str>,
) -> Result<ImageBuilderParts, StoreError> {
    let builder = match settings {
        Some(s) => {
            task::register(store, "")?;
            if let Some(org) = org.filter(|o| !o.is_empty()) {
                task::register(store, org)?;
            }
            Some(union_image::remote::ImageBuilder::new(s))
        }
        None => {
            task::unregister(store)?;
            None
        }
    };
    Ok(ImageBuilderParts {
        runner: Arc::new(BuildRunner::new(builder.clone(), blobs)),
        service: ImageApi::new(builder),
    })
}
