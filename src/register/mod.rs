//! Packaging and registration: from paths to serialized specs, a code archive and a version, then
//! to FlyteAdmin. Shared by `union package`, `union register`, `union run --remote` (and, for
//! the image step, `union build`).
//!
//! - [`load`](load()): import the user's modules, compute each ImageSpec's image name, build the
//!   code archive (no network);
//! - [`images`]: make every image exist (the shared pipeline of `union_image::pipeline`, and
//!   union's remote builder: [`union_builder`]);
//! - [`serialize`](serialize()): flytekit's translator, a content-derived version;
//! - [`publish`](publish()): upload the archive, serialize with its location, register;
//! - [`progress`]: what the user sees meanwhile.
//!
//! Python work (import, serialize) happens on the calling thread, which must be the main thread;
//! network work is async and runs on a runtime the command owns.

mod error;
pub mod images;
mod load;
pub mod local_data;
pub mod progress;
mod publish;
pub mod pullable;
mod serialize;
pub mod union_builder;
pub mod upload;

use std::collections::BTreeMap;

pub use error::RegisterError;
pub use load::{flytekit_default_image, images_of, load, load_code, Code, Loaded, PlannedImage};
pub use progress::{ImageReporter, Progress, Verbosity};
pub use publish::{
    connect, dependency_layers, processes_note, publish, register_entities, Published,
    RegisterFlags, Registered,
};
pub use serialize::{
    derive_version, serialize, serialize_for_registration, PlannedEntity, Spec,
    LOCATION_PLACEHOLDER, VERSION_PLACEHOLDER,
};
use union_package::CopyMode;

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub project: String,
    pub domain: String,
    /// `--version`; derived from the content when `None`.
    pub version: Option<String>,
    pub copy: CopyMode,
    /// Where the code lands in the container (`--destination-dir`, pyflyte's default `/root`).
    pub destination_dir: String,
    /// `--image URI` (the default image) and `--image NAME=URI`.
    pub default_image: Option<String>,
    pub images: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
    /// Serialize ids with empty project/domain/version (pyflyte package).
    pub for_package: bool,
    /// ImageSpecs given as `--image spec.yaml`: built like tasks' images.
    pub yaml_images: Vec<images::YamlImage>,
    /// `register --service-account`: the launch plans' Kubernetes service account.
    pub service_account: Option<String>,
    /// `register --raw-data-prefix`: the launch plans' raw output data prefix.
    pub raw_data_prefix: Option<String>,
    /// How to check that the cluster can pull the task images.
    pub pull_check: pullable::PullCheck,
    /// The registry of ImageSpecs that name none, applied as if the spec said `registry=...`
    /// (the sandbox's own registry when the backend is a sandbox, see
    /// [`images::sandbox_registry`]); None: such specs stay local images, as in flytekit.
    pub default_registry: Option<String>,
    /// The config's default image builder (specs for the backend's builder keep no registry:
    /// that builder picks its own).
    pub default_builder: Option<String>,
}
