//! Server side of the remote builder (`union.imagebuilder.v1.ImageBuilderService`).
//!
//! - The build context is rebuilt from the received files only, in a fresh directory under the
//!   data dir: regular files at relative paths inside `requirements/`, `copy/` and `src/`; links,
//!   absolute paths, `..` and oversized contexts are refused. Client paths are never read.
//! - The spec's path fields are pointed at that directory and planned with the local builder's
//!   Dockerfile generation ([`dockerfile::plan`]); the image is tagged with the client's name
//!   (qualified with the default registry when it has none) and `_F_IMG_ID` is the client's id.
//! - Identical concurrent requests (same fully-qualified image) share one build: every caller
//!   receives all events from the start. A build is cancelled when its last caller disconnects.
//! - Builds are recorded in `<data dir>/image-builds.json`.

mod job;
mod records;
mod run;
mod unpack;

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::Stream;
use tonic::{Request, Response, Status};

use crate::build::{has_registry, Builder};
use crate::dockerfile;
use crate::remote::{ContextLimits, MAX_MESSAGE_BYTES};
use union_idl::union::imagebuilder::v1 as pb;
use union_idl::union::imagebuilder::v1::image_builder_service_server::{
    ImageBuilderService as ImageBuilderRpc, ImageBuilderServiceServer,
};
use union_registry::{ImageReference, ImageStatus, RegistryClient};

use job::{finish, follow, Job};
use records::Records;
use run::run_build;

pub use records::{BuildRecord, RECORD_FILE};
pub use unpack::extract_context;

/// The registry images without one are pushed to, by default (flytectl's sandbox registry).
pub const DEFAULT_IMAGE_REGISTRY: &str = "localhost:30000";

/// How the server builds.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Why this server does not build images (e.g. `--no-image-builder`); None: it does.
    pub disabled: Option<String>,
    /// Registry for specs that name none.
    pub default_registry: String,
    /// Base image for specs without `base_image` when the client sends none.
    pub default_base_image: String,
    /// Where records and temporary contexts live.
    pub data_dir: PathBuf,
    /// Largest context accepted (uncompressed bytes, files).
    pub limits: ContextLimits,
}

impl ServerSettings {
    /// Defaults: builds enabled, `localhost:30000`, `debian:bookworm-slim`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ServerSettings {
            disabled: None,
            default_registry: DEFAULT_IMAGE_REGISTRY.to_string(),
            default_base_image: dockerfile::FLYTEKIT_DEFAULT_BASE_IMAGE.to_string(),
            data_dir: data_dir.into(),
            limits: ContextLimits::default(),
        }
    }
}

struct Inner {
    settings: ServerSettings,
    engine: tokio::sync::Mutex<Option<Builder>>,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
    records: Records,
    registry: Result<RegistryClient, String>,
}

/// The service: construct with [`ImageBuilderService::new`], serve with [`ImageBuilderService::into_server`].
#[derive(Clone)]
pub struct ImageBuilderService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ImageBuilderService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageBuilderService")
            .field("settings", &self.inner.settings)
            .finish()
    }
}

impl ImageBuilderService {
    /// A service with these settings. The Docker engine (`DOCKER_HOST`) is connected on first use,
    /// so a server started before its engine builds once the engine is up.
    pub fn new(settings: ServerSettings) -> Self {
        // Contexts left by a server that was killed mid-build.
        let contexts = settings.data_dir.join("image-contexts");
        let _ = std::fs::remove_dir_all(&contexts);
        let _ = std::fs::create_dir_all(&contexts);
        let records = Records::open(&settings.data_dir);
        let registry = RegistryClient::builder().build().map_err(|e| e.to_string());
        ImageBuilderService {
            inner: Arc::new(Inner {
                settings,
                engine: tokio::sync::Mutex::new(None),
                jobs: Mutex::new(HashMap::new()),
                records,
                registry,
            }),
        }
    }

    /// The tonic service, with message limits that fit a full context.
    pub fn into_server(self) -> ImageBuilderServiceServer<Self> {
        ImageBuilderServiceServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Every build recorded so far.
    pub fn records(&self) -> Vec<BuildRecord> {
        self.inner.records.all()
    }
}

impl Inner {
    fn qualify(&self, image_name: &str) -> String {
        if has_registry(image_name) {
            image_name.to_string()
        } else {
            format!(
                "{}/{image_name}",
                self.settings.default_registry.trim_end_matches('/')
            )
        }
    }

    /// Exists in its registry? `Err` when that cannot be told.
    async fn exists(&self, fq: &str) -> Result<bool, String> {
        let registry = self.registry.as_ref().map_err(|e| e.clone())?;
        let reference = ImageReference::parse(fq).map_err(|e| e.to_string())?;
        match registry.check(&reference).await {
            ImageStatus::Exists { .. } => Ok(true),
            ImageStatus::Missing => Ok(false),
            ImageStatus::Unknown { reason } => Err(reason.to_string()),
        }
    }

    async fn engine(&self) -> Result<Builder, Status> {
        if let Some(reason) = &self.settings.disabled {
            return Err(Status::failed_precondition(format!(
                "this sandbox has no image builder: {reason}"
            )));
        }
        let mut slot = self.engine.lock().await;
        if let Some(b) = slot.as_ref() {
            return Ok(b.clone());
        }
        match Builder::connect().await {
            Ok(b) => {
                *slot = Some(b.clone());
                Ok(b)
            }
            Err(e) => Err(Status::failed_precondition(format!(
                "this sandbox has no image builder: {e}; start a Docker engine (or set DOCKER_HOST) \
                 for `union sandbox start`, or build locally with builder=\"default\""
            ))),
        }
    }
}

type BuildStream = Pin<Box<dyn Stream<Item = Result<pb::BuildResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ImageBuilderRpc for ImageBuilderService {
    async fn get_image(
        &self,
        request: Request<pb::GetImageRequest>,
    ) -> Result<Response<pb::GetImageResponse>, Status> {
        let name = request.into_inner().image_name;
        if name.trim().is_empty() {
            return Err(Status::invalid_argument("missing image_name"));
        }
        let fq = self.inner.qualify(name.trim());
        ImageReference::parse(&fq)
            .map_err(|e| Status::invalid_argument(format!("image_name `{name}`: {e}")))?;
        let exists =
            self.inner.exists(&fq).await.map_err(|e| {
                Status::unavailable(format!("cannot tell whether {fq} exists: {e}"))
            })?;
        Ok(Response::new(pb::GetImageResponse {
            exists,
            built_by_this_server: self.inner.records.built_here(&fq),
            fully_qualified_image: fq,
        }))
    }

    type BuildStream = BuildStream;

    async fn build(
        &self,
        request: Request<pb::BuildRequest>,
    ) -> Result<Response<Self::BuildStream>, Status> {
        let req = request.into_inner();
        let engine = self.inner.engine().await?;
        let name = req.image_name.trim().to_string();
        if name.is_empty() {
            return Err(Status::invalid_argument("missing image_name"));
        }
        let fq = self.inner.qualify(&name);
        ImageReference::parse(&fq)
            .map_err(|e| Status::invalid_argument(format!("image_name `{name}`: {e}")))?;

        let (job, joined) = {
            let mut jobs = self.inner.jobs.lock().unwrap_or_else(|p| p.into_inner());
            match jobs.get(&fq) {
                Some(job) => {
                    job.lock().waiters += 1;
                    (job.clone(), true)
                }
                None => {
                    let job = Arc::new(Job::new(fq.clone()));
                    jobs.insert(fq.clone(), job.clone());
                    (job, false)
                }
            }
        };
        if !joined {
            let inner = self.inner.clone();
            let task_job = job.clone();
            let handle = tokio::spawn(async move {
                let start = Instant::now();
                let result = run_build(&inner, &engine, &task_job, req).await;
                finish(&inner, &task_job, result, start.elapsed());
            });
            job.lock().abort = Some(handle.abort_handle());
        } else {
            job.note(format!(
                "an identical build of {fq} is already running; following it"
            ));
        }
        Ok(Response::new(follow(self.inner.clone(), job)))
    }
}
