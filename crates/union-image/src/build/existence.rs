//! Whether an image already exists, for the build-or-skip decision.

use std::collections::HashMap;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::{BuildError, Builder, ExistenceCheck};
use crate::dockerfile::BuildPlan;

/// Existence through the registry's v2 API (the registry module) for images with a registry, and
/// the engine's local store for images without one. "Unknown" is an error, never "exists".
pub struct RegistryExistence {
    /// The registry client (the user's docker config).
    pub registry: union_registry::RegistryClient,
    /// Clients for images whose ImageSpec names a `registry_config`, by image name.
    pub per_image: HashMap<String, union_registry::RegistryClient>,
    /// The engine, for images that have no registry (`None`: such images cannot be checked).
    pub engine: Option<Builder>,
}

impl RegistryExistence {
    /// A check for these plans (and their nested bases): each image is looked up with the
    /// credentials its spec's `registry_config` gives, else the user's docker config.
    pub fn for_plans(plans: &[BuildPlan], engine: Option<Builder>) -> Result<Self, BuildError> {
        use union_registry::RegistryClient;
        let client = |plan: &BuildPlan, file: Option<&std::path::Path>| {
            let mut b = RegistryClient::builder();
            if let Some(f) = file {
                b = b.docker_config_file(f);
            }
            b.build().map_err(|e| BuildError::Credentials {
                image: plan.image_name.clone(),
                message: e.to_string(),
            })
        };
        let mut per_image = HashMap::new();
        let mut first: Option<&BuildPlan> = None;
        let mut stack: Vec<&BuildPlan> = plans.iter().collect();
        while let Some(p) = stack.pop() {
            first.get_or_insert(p);
            if let Some(file) = &p.registry_config {
                per_image.insert(p.image_name.clone(), client(p, Some(file))?);
            }
            stack.extend(p.base.as_deref());
        }
        let registry = union_registry::RegistryClient::builder()
            .build()
            .map_err(|e| BuildError::Credentials {
                image: first.map(|p| p.image_name.clone()).unwrap_or_default(),
                message: e.to_string(),
            })?;
        Ok(RegistryExistence {
            registry,
            per_image,
            engine,
        })
    }
}

impl ExistenceCheck for RegistryExistence {
    fn exists<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<bool, BuildError>> {
        async move {
            use union_registry::{ImageReference, ImageStatus};
            let existence = |message: String| BuildError::Existence {
                image: image.to_string(),
                message,
            };
            if !has_registry(image) {
                return match &self.engine {
                    Some(engine) => engine.image_exists(image).await,
                    None => Err(existence(
                        "it has no registry, and there is no Docker engine to look in".into(),
                    )),
                };
            }
            let reference = ImageReference::parse(image).map_err(|e| existence(e.to_string()))?;
            let registry = self.per_image.get(image).unwrap_or(&self.registry);
            match registry.check(&reference).await {
                ImageStatus::Exists { .. } => Ok(true),
                ImageStatus::Missing => Ok(false),
                ImageStatus::Unknown { reason } => Err(existence(reason.to_string())),
            }
        }
        .boxed()
    }
}

/// Whether an image reference names a registry (`host.tld/…`, `host:port/…`, `localhost/…`).
pub fn has_registry(image: &str) -> bool {
    image
        .split_once('/')
        .is_some_and(|(first, _)| first.contains(['.', ':']) || first == "localhost")
}

/// flytekit's "not found" test for registries that answer 500 (GCP Artifact Registry...).
pub(super) fn not_found_message(message: &str) -> bool {
    let m = message.to_lowercase();
    m.contains("not found") || m.contains("manifest unknown")
}
