//! The sandbox's built-in OCI registry: the distribution API (`/v2/...`, see
//! <https://github.com/opencontainers/distribution-spec/blob/main/spec.md>) on the sandbox's own
//! port, over plain HTTP/1.1, so that `localhost:<port>/<name>:<tag>` works with a stock Docker
//! engine (Docker talks plain HTTP to registries on 127.0.0.0/8 without being configured to).
//!
//! - [`routes`]: the router, path parsing, errors in the spec's JSON shape, blobs, tags, catalog;
//! - [`uploads`]: upload sessions (monolithic, chunked, cross-repository mounts), streamed to disk;
//! - [`manifests`]: manifests and indexes by tag and digest, refused when what they name is missing;
//! - [`storage`]: blob files stored once by digest, and the index in `sandbox.db`;
//! - [`gc`]: deletes blobs nothing references, never those of a push in progress.
//!
//! No authentication: like flytectl's sandbox registry, it serves whoever can reach the port
//! (the sandbox listens on loopback by default). The gRPC gate of `--auth` lets `/v2/` through.

pub mod gc;
pub mod manifests;
pub mod routes;
pub mod storage;
pub mod uploads;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::store::Store;

/// How long a blob that no manifest references is kept after its last upload, mount or HEAD
/// (a push uploads its layers before the manifest that names them), unless
/// [`GC_GRACE_ENV`] says otherwise.
pub const DEFAULT_GC_GRACE: Duration = Duration::from_secs(15 * 60);
/// Seconds of grace instead of [`DEFAULT_GC_GRACE`] (tests set 0 to see collection at once).
pub const GC_GRACE_ENV: &str = "UNION_SANDBOX_REGISTRY_GC_GRACE";
/// How often collection runs besides at startup and after deletes.
const GC_PERIOD: Duration = Duration::from_secs(15 * 60);

/// Errors preparing the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Its directory could not be created or cleaned.
    #[error("cannot prepare the registry's directory `{}`", path.display())]
    Dir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The registry: storage, upload sessions, and the gate between writers and collection.
#[derive(Debug)]
pub struct Registry {
    storage: storage::Storage,
    sessions: uploads::Sessions,
    /// Writers (placing a blob file and indexing it; storing a manifest) hold it shared, and
    /// collection exclusively: a file is never deleted between its rename and its index row.
    gate: tokio::sync::RwLock<()>,
    grace: Duration,
    /// Wakes the collector (after a delete).
    wake: Arc<tokio::sync::Notify>,
}

impl Registry {
    /// Open the registry under `data_dir` (upload sessions do not survive a restart: what a
    /// previous run left half-uploaded is removed).
    pub fn open(
        data_dir: &Path,
        store: Arc<Store>,
        grace: Duration,
    ) -> Result<Registry, RegistryError> {
        let storage =
            storage::Storage::open(data_dir, store).map_err(|source| RegistryError::Dir {
                path: data_dir.join(storage::REGISTRY_DIR),
                source,
            })?;
        let tmp = storage.tmp_dir();
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|source| RegistryError::Dir {
            path: tmp.clone(),
            source,
        })?;
        Ok(Registry {
            storage,
            sessions: uploads::Sessions::default(),
            gate: tokio::sync::RwLock::new(()),
            grace,
            wake: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// The storage (files and index).
    pub fn storage(&self) -> &storage::Storage {
        &self.storage
    }

    /// Ask the collector to run soon.
    pub fn request_gc(&self) {
        self.wake.notify_one();
    }
}

/// The grace period: [`GC_GRACE_ENV`] when set to a number of seconds, else the default.
pub fn grace_from_env() -> Duration {
    std::env::var(GC_GRACE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_GC_GRACE)
}

/// Open the registry in `data_dir`, start its collector (at once, then periodically and after
/// deletes, for as long as the router lives), and return its routes.
pub fn router(data_dir: &Path, store: Arc<Store>) -> Result<axum::Router, RegistryError> {
    let registry = Arc::new(Registry::open(data_dir, store, grace_from_env())?);
    gc::spawn(&registry, GC_PERIOD);
    Ok(routes::router(registry))
}
