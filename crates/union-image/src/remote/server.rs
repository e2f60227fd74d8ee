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

use std::collections::HashMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use super::{CONTEXT_COPY, CONTEXT_REQUIREMENTS, CONTEXT_SRC};
use crate::build::{BuildError, BuildEvent, BuildReporter, Builder};
use crate::dockerfile::{self, BuildSettings, PlanError};
use crate::spec::{BaseImage, CopyFileDetection, ImageSpec};
use crate::{HostEnv, TagContext};
use union_idl::union::imagebuilder::v1 as pb;
use union_idl::union::imagebuilder::v1::image_builder_service_server::{
    ImageBuilderService as ImageBuilderRpc, ImageBuilderServiceServer,
};
use union_registry::{ImageReference, ImageStatus, RegistryClient};

use pb::build_failure::Kind;

/// The registry images without one are pushed to, by default (flytectl's sandbox registry).
pub const DEFAULT_IMAGE_REGISTRY: &str = "localhost:30000";
/// File (in the data dir) recording the builds.
pub const RECORD_FILE: &str = "image-builds.json";
/// Events a build keeps for callers that join late; beyond it, log lines are dropped.
const MAX_EVENTS: usize = 50_000;

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
    pub limits: super::ContextLimits,
}

impl ServerSettings {
    /// Defaults: builds enabled, `localhost:30000`, `debian:bookworm-slim`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ServerSettings {
            disabled: None,
            default_registry: DEFAULT_IMAGE_REGISTRY.to_string(),
            default_base_image: dockerfile::FLYTEKIT_DEFAULT_BASE_IMAGE.to_string(),
            data_dir: data_dir.into(),
            limits: super::ContextLimits::default(),
        }
    }
}

/// One build this server ran, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildRecord {
    /// The fully-qualified image.
    pub image: String,
    /// The spec's name.
    pub spec_name: String,
    /// `building`, `built`, `failed` or `cancelled`.
    pub status: String,
    /// Unix seconds.
    pub started_at: u64,
    /// Unix seconds, when finished.
    #[serde(default)]
    pub finished_at: Option<u64>,
    /// The error, when failed.
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct RecordFile {
    builds: Vec<BuildRecord>,
}

/// The builds recorded in `<data dir>/image-builds.json`.
#[derive(Debug)]
struct Records {
    path: PathBuf,
    data: Mutex<RecordFile>,
}

impl Records {
    fn open(dir: &Path) -> Records {
        let path = dir.join(RECORD_FILE);
        let data = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Records {
            path,
            data: Mutex::new(data),
        }
    }

    fn save(&self, data: &RecordFile) {
        // Best effort: a record that cannot be written must not fail a build.
        let tmp = self.path.with_extension("json.tmp");
        if let Ok(bytes) = serde_json::to_vec_pretty(data) {
            if std::fs::write(&tmp, bytes).is_ok() {
                let _ = std::fs::rename(&tmp, &self.path);
            }
        }
    }

    fn start(&self, image: &str, spec_name: &str) -> usize {
        let mut data = self.data.lock().unwrap_or_else(|p| p.into_inner());
        data.builds.push(BuildRecord {
            image: image.to_string(),
            spec_name: spec_name.to_string(),
            status: "building".into(),
            started_at: now(),
            finished_at: None,
            error: None,
        });
        self.save(&data);
        data.builds.len() - 1
    }

    fn finish(&self, index: usize, status: &str, error: Option<String>) {
        let mut data = self.data.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = data.builds.get_mut(index) {
            r.status = status.to_string();
            r.finished_at = Some(now());
            r.error = error;
        }
        self.save(&data);
    }

    fn built_here(&self, image: &str) -> bool {
        let data = self.data.lock().unwrap_or_else(|p| p.into_inner());
        data.builds
            .iter()
            .any(|r| r.image == image && r.status == "built")
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// What a build shares with everyone waiting for it.
#[derive(Debug, Default)]
struct JobState {
    events: Vec<pb::BuildResponse>,
    finished: bool,
    waiters: usize,
    abort: Option<tokio::task::AbortHandle>,
    record: Option<usize>,
}

#[derive(Debug)]
struct Job {
    image: String,
    state: Mutex<JobState>,
    changed: watch::Sender<u64>,
}

impl Job {
    fn lock(&self) -> std::sync::MutexGuard<'_, JobState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, event: pb::build_response::Event) {
        {
            let mut st = self.lock();
            if st.finished {
                return;
            }
            if st.events.len() >= MAX_EVENTS && matches!(event, pb::build_response::Event::Log(_)) {
                return;
            }
            st.events.push(pb::BuildResponse { event: Some(event) });
        }
        self.changed.send_modify(|v| *v += 1);
    }

    fn note(&self, message: impl Into<String>) {
        self.push(pb::build_response::Event::Note(pb::Note {
            message: message.into(),
        }));
    }
}

/// Converts the local builder's progress into stream events.
struct JobReporter<'a>(&'a Job);

impl BuildReporter for JobReporter<'_> {
    fn event(&self, _image: &str, event: &BuildEvent) {
        use pb::build_response::Event;
        let e = match event {
            BuildEvent::StepStarted { step, cached } => Event::Step(pb::Step {
                step: step.clone(),
                cached: *cached,
                done: false,
                duration_seconds: 0.0,
            }),
            BuildEvent::StepDone {
                step,
                cached,
                duration,
            } => Event::Step(pb::Step {
                step: step.clone(),
                cached: *cached,
                done: true,
                duration_seconds: duration.map(|d| d.as_secs_f64()).unwrap_or(0.0),
            }),
            BuildEvent::Log { step, line } => Event::Log(pb::LogLine {
                step: step.clone(),
                line: line.clone(),
            }),
            // Per-chunk progress is noise over the network; statuses ("Pushed", "Layer already
            // exists", the digest) are kept.
            BuildEvent::Push {
                current: Some(_), ..
            } => return,
            BuildEvent::Push { status, .. } => Event::Push(pb::Push {
                status: status.clone(),
            }),
        };
        self.0.push(e);
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
            .max_decoding_message_size(super::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(super::MAX_MESSAGE_BYTES)
    }

    /// Every build recorded so far.
    pub fn records(&self) -> Vec<BuildRecord> {
        self.inner
            .records
            .data
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .builds
            .clone()
    }
}

/// Whether an image reference names a registry (`host.tld/…`, `host:port/…`, `localhost/…`).
fn has_registry(image: &str) -> bool {
    image
        .split_once('/')
        .is_some_and(|(first, _)| first.contains(['.', ':']) || first == "localhost")
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
                    let job = Arc::new(Job {
                        image: fq.clone(),
                        state: Mutex::new(JobState {
                            waiters: 1,
                            ..Default::default()
                        }),
                        changed: watch::channel(0).0,
                    });
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

/// Removes a temporary context directory when the build ends or is aborted.
struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn failure(kind: Kind, image: &str, message: impl Into<String>) -> pb::BuildFailure {
    pb::BuildFailure {
        kind: kind as i32,
        message: message.into(),
        step: String::new(),
        output: String::new(),
        image: image.to_string(),
    }
}

fn build_failure(image: &str, e: BuildError) -> pb::BuildFailure {
    match e {
        BuildError::StepFailed {
            step,
            message,
            output,
            ..
        } => pb::BuildFailure {
            kind: Kind::StepFailed as i32,
            message,
            step,
            output,
            image: image.to_string(),
        },
        BuildError::Push { message, .. } => failure(Kind::PushFailed, image, message),
        e @ BuildError::Unreachable { .. } => failure(Kind::Unavailable, image, e.to_string()),
        e @ BuildError::Context { .. } => failure(Kind::InvalidContext, image, e.to_string()),
        BuildError::Build { message, .. } => failure(Kind::BuildFailed, image, message),
        e => failure(Kind::BuildFailed, image, e.to_string()),
    }
}

/// Check, plan, build and push; the result or the failure to stream last.
async fn run_build(
    inner: &Inner,
    engine: &Builder,
    job: &Job,
    req: pb::BuildRequest,
) -> Result<(String, bool), pb::BuildFailure> {
    let fq = job.image.as_str();
    let spec = parse_spec(&req, fq)?;
    if !req.force && !spec.is_force_push {
        job.note(format!("checking whether {fq} exists"));
        match inner.exists(fq).await {
            Ok(true) => {
                job.note(format!("{fq} exists; nothing to build"));
                return Ok((fq.to_string(), false));
            }
            Ok(false) => {}
            Err(e) => {
                return Err(failure(
                    Kind::Unavailable,
                    fq,
                    format!("cannot tell whether {fq} exists: {e}"),
                ))
            }
        }
    }

    let dir = inner
        .settings
        .data_dir
        .join("image-contexts")
        .join(format!("{:016x}", random_u64()));
    let _cleanup = TempDir(dir.clone());
    let files = extract_context(&req.context_tar_gz, &dir, &inner.settings.limits)
        .map_err(|m| failure(Kind::InvalidContext, fq, m))?;
    let (mut spec, ctx) = relocate(spec, &dir, &files, fq)?;
    // A client's credentials file stays with the client: this server pushes with its own.
    spec.registry_config = None;
    let settings = BuildSettings {
        default_base_image: if req.default_base_image.trim().is_empty() {
            inner.settings.default_base_image.clone()
        } else {
            req.default_base_image.trim().to_string()
        },
        flytekit_version: req.flytekit_version.clone(),
    };
    let mut plan = dockerfile::plan(&spec, &ctx, &settings).map_err(|e| plan_failure(fq, e))?;
    // The client's name and id: its tag hashes its files (in its directory order), and the id is
    // the one its ImageSpec computes at run time.
    plan.image_name = fq.to_string();
    plan.push = true;
    plan.base = None;
    if !req.spec_id.is_empty() {
        let df = replace_image_id(&plan.dockerfile, &req.spec_id);
        plan.context.add_bytes("Dockerfile", df.clone(), 0o644);
        plan.dockerfile = df;
    }

    let record = inner.records.start(fq, &spec.name);
    job.lock().record = Some(record);
    job.note(format!("building {fq} (platform {})", plan.platform));
    let reporter = JobReporter(job);
    engine
        .build(&plan, &reporter)
        .await
        .map_err(|e| build_failure(fq, e))?;
    job.note(format!("pushing {fq}"));
    engine
        .push(&plan, &reporter)
        .await
        .map_err(|e| build_failure(fq, e))?;
    Ok((fq.to_string(), true))
}

fn plan_failure(image: &str, e: PlanError) -> pb::BuildFailure {
    failure(Kind::InvalidSpec, image, e.to_string())
}

fn parse_spec(req: &pb::BuildRequest, fq: &str) -> Result<ImageSpec, pb::BuildFailure> {
    let invalid = |m: String| failure(Kind::InvalidSpec, fq, m);
    let value: serde_json::Value = serde_json::from_str(&req.spec_json)
        .map_err(|e| invalid(format!("spec_json is not JSON: {e}")))?;
    let serde_json::Value::Object(map) = value else {
        return Err(invalid(
            "spec_json must be a JSON object of ImageSpec fields".into(),
        ));
    };
    let spec = ImageSpec::from_bridge_json(&map, &HostEnv::current())
        .map_err(|e| invalid(e.to_string()))?;
    if matches!(spec.base_image, Some(BaseImage::Spec(_))) {
        return Err(invalid(format!(
            "ImageSpec '{}': build the nested base ImageSpec first and send its image reference as base_image",
            spec.name
        )));
    }
    if spec
        .pip_secret_mounts
        .as_ref()
        .is_some_and(|m| !m.is_empty())
    {
        return Err(invalid(format!(
            "ImageSpec '{}' has pip_secret_mounts; the remote builder does not accept secrets",
            spec.name
        )));
    }
    // The name must be this spec's: `[registry/]name:tag`.
    let prefix = match spec.registry.as_deref().filter(|r| !r.is_empty()) {
        Some(r) => format!("{r}/{}:", spec.name),
        None => format!("{}:", spec.name),
    };
    let name = req.image_name.trim();
    let tag = name.strip_prefix(&prefix).unwrap_or_default();
    if tag.is_empty() || tag.contains(['/', ':', '@']) {
        return Err(invalid(format!(
            "image_name `{name}` is not `{prefix}<tag>` (ImageSpec '{}', registry {:?})",
            spec.name, spec.registry
        )));
    }
    if !req.spec_id.is_empty()
        && !req
            .spec_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid(format!(
            "spec_id `{}` is not an ImageSpec id",
            req.spec_id
        )));
    }
    Ok(spec)
}

/// Point the spec's path fields at the received files.
fn relocate(
    mut spec: ImageSpec,
    dir: &Path,
    files: &[String],
    fq: &str,
) -> Result<(ImageSpec, TagContext), pb::BuildFailure> {
    let invalid = |m: String| failure(Kind::InvalidSpec, fq, m);
    if let Some(req) = spec.requirements.clone().filter(|r| !r.is_empty()) {
        let name = Path::new(&req)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("requirements.txt")
            .to_string();
        let at = dir.join(CONTEXT_REQUIREMENTS).join(&name);
        if !at.is_file() {
            return Err(invalid(format!(
                "ImageSpec '{}': requirements file `{req}` was not sent (expected `{CONTEXT_REQUIREMENTS}/{name}` in the context)",
                spec.name
            )));
        }
        spec.requirements = Some(at.to_string_lossy().into_owned());
    }
    let mut loaded = Vec::new();
    if spec
        .source_copy_mode
        .is_some_and(|m| m != CopyFileDetection::NoCopy)
    {
        // The client selected the files (ignore rules, loaded modules); take them all as they
        // are. LOADED_MODULES over the received list copies exactly those.
        let src = dir.join(CONTEXT_SRC);
        spec.source_root = Some(src.to_string_lossy().into_owned());
        spec.source_copy_mode = Some(CopyFileDetection::LoadedModules);
        let prefix = format!("{CONTEXT_SRC}/");
        loaded = files
            .iter()
            .filter_map(|f| f.strip_prefix(&prefix))
            .map(|rel| src.join(rel))
            .collect();
    }
    let mut ctx = TagContext::new(dir.join(CONTEXT_COPY));
    ctx.loaded_modules = loaded;
    Ok((spec, ctx))
}

/// The Dockerfile with its `ENV _F_IMG_ID=` line carrying `id`.
fn replace_image_id(dockerfile: &str, id: &str) -> String {
    let mut out = String::with_capacity(dockerfile.len());
    for line in dockerfile.lines() {
        if line.starts_with("ENV _F_IMG_ID=") {
            out.push_str("ENV _F_IMG_ID=");
            out.push_str(id);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
    }
    u64::from_le_bytes(b)
}

/// Validate a context path: relative, normal components only, under one of the three roots.
fn safe_context_path(path: &Path) -> Result<PathBuf, String> {
    let shown = path.display().to_string();
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err(format!("context entry `{shown}` contains `..`")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("context entry `{shown}` is an absolute path"))
            }
        }
    }
    let top = out
        .components()
        .next()
        .and_then(|c| c.as_os_str().to_str())
        .unwrap_or_default()
        .to_string();
    if ![CONTEXT_REQUIREMENTS, CONTEXT_COPY, CONTEXT_SRC].contains(&top.as_str()) {
        return Err(format!(
            "context entry `{shown}` is outside `{CONTEXT_REQUIREMENTS}/`, `{CONTEXT_COPY}/` and `{CONTEXT_SRC}/`"
        ));
    }
    if out.components().count() < 2 {
        return Err(format!(
            "context entry `{shown}` names a directory, not a file in it"
        ));
    }
    Ok(out)
}

/// Write the received context below `dir`, regular files only, refusing anything that escapes
/// it. Returns the context-relative paths written.
pub fn extract_context(
    tar_gz: &[u8],
    dir: &Path,
    limits: &super::ContextLimits,
) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    if tar_gz.is_empty() {
        return Ok(written);
    }
    let gz = flate2::read::GzDecoder::new(tar_gz);
    let mut archive = tar::Archive::new(gz);
    let entries = archive
        .entries()
        .map_err(|e| format!("the context is not a gzip-compressed tar: {e}"))?;
    let mut total: u64 = 0;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("the context is not a valid tar: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("a context entry has an unreadable path: {e}"))?
            .into_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            safe_context_path(&path.join("x"))?;
            continue;
        }
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .ok()
                .flatten()
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            return Err(format!(
                "context entry `{}` is a link (to `{target}`); the context holds regular files only",
                path.display()
            ));
        }
        if !kind.is_file() {
            return Err(format!(
                "context entry `{}` is not a regular file",
                path.display()
            ));
        }
        let rel = safe_context_path(&path)?;
        let rel_str = rel
            .to_str()
            .ok_or_else(|| format!("context entry {:?} is not UTF-8", rel))?
            .to_string();
        if written.len() >= limits.max_files {
            return Err(format!(
                "the context has more than {} files",
                limits.max_files
            ));
        }
        let size = entry.header().size().unwrap_or(u64::MAX);
        total = total.saturating_add(size);
        if total > limits.max_bytes {
            return Err(format!(
                "the context exceeds {} uncompressed",
                super::client::human_size(limits.max_bytes)
            ));
        }
        let mode = entry.header().mode().unwrap_or(0o644);
        let target = dir.join(&rel);
        // Parents are created by us, as directories; a file where a directory is needed fails.
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("context entry `{rel_str}`: {e}"))?;
        }
        let mut data = Vec::with_capacity(size.min(1 << 20) as usize);
        (&mut entry)
            .take(limits.max_bytes + 1)
            .read_to_end(&mut data)
            .map_err(|e| format!("context entry `{rel_str}`: {e}"))?;
        std::fs::write(&target, &data).map_err(|e| format!("context entry `{rel_str}`: {e}"))?;
        if mode & 0o111 != 0 {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755));
        }
        written.push(rel_str);
    }
    Ok(written)
}

/// The build ended (or failed): record it, stream the last event, let new requests start over.
fn finish(
    inner: &Inner,
    job: &Arc<Job>,
    result: Result<(String, bool), pb::BuildFailure>,
    elapsed: Duration,
) {
    use pb::build_response::Event;
    {
        let mut jobs = inner.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if jobs.get(&job.image).is_some_and(|j| Arc::ptr_eq(j, job)) {
            jobs.remove(&job.image);
        }
    }
    let record = job.lock().record;
    let last = match result {
        Ok((image, built)) => {
            if let Some(r) = record {
                inner.records.finish(r, "built", None);
            }
            Event::Result(pb::BuildResult {
                fully_qualified_image: image,
                built,
                duration_seconds: elapsed.as_secs_f64(),
            })
        }
        Err(f) => {
            if let Some(r) = record {
                inner.records.finish(r, "failed", Some(f.message.clone()));
            }
            Event::Error(f)
        }
    };
    {
        let mut st = job.lock();
        st.events.push(pb::BuildResponse { event: Some(last) });
        st.finished = true;
    }
    job.changed.send_modify(|v| *v += 1);
}

/// One caller following a job; dropping it (the client went away) cancels the build when it
/// was the last one waiting.
struct Follower {
    inner: Arc<Inner>,
    job: Arc<Job>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        let mut jobs = self.inner.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let mut st = self.job.lock();
        st.waiters = st.waiters.saturating_sub(1);
        if st.waiters > 0 || st.finished {
            return;
        }
        if let Some(abort) = st.abort.take() {
            abort.abort();
        }
        st.finished = true;
        let record = st.record;
        drop(st);
        if jobs
            .get(&self.job.image)
            .is_some_and(|j| Arc::ptr_eq(j, &self.job))
        {
            jobs.remove(&self.job.image);
        }
        drop(jobs);
        if let Some(r) = record {
            self.inner
                .records
                .finish(r, "cancelled", Some("every client disconnected".into()));
        }
    }
}

fn follow(inner: Arc<Inner>, job: Arc<Job>) -> BuildStream {
    let rx = job.changed.subscribe();
    let follower = Follower { inner, job };
    let stream =
        futures_util::stream::unfold((follower, rx, 0usize), |(f, mut rx, next)| async move {
            loop {
                rx.borrow_and_update();
                {
                    let st = f.job.lock();
                    if let Some(ev) = st.events.get(next) {
                        let ev = ev.clone();
                        drop(st);
                        return Some((Ok(ev), (f, rx, next + 1)));
                    }
                    if st.finished {
                        return None;
                    }
                }
                if rx.changed().await.is_err() {
                    // The job is gone without a last event (cannot happen while we hold it).
                    return None;
                }
            }
        });
    Box::pin(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for (path, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            // Bypass the tar crate's own path checks: write the raw name.
            let name = path.as_bytes();
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn context_entries_that_escape_are_refused() {
        let limits = super::super::ContextLimits::default();
        let dir = tempfile::tempdir().unwrap();
        let ok = tar_gz(&[("copy/a.txt", tar::EntryType::Regular, b"a", None)]);
        assert_eq!(
            extract_context(&ok, &dir.path().join("ok"), &limits).unwrap(),
            ["copy/a.txt"]
        );
        for (bad, why) in [
            (
                tar_gz(&[("copy/../../x", tar::EntryType::Regular, b"a", None)]),
                "`..`",
            ),
            (
                tar_gz(&[("/etc/x", tar::EntryType::Regular, b"a", None)]),
                "absolute",
            ),
            (
                tar_gz(&[("copy/l", tar::EntryType::Symlink, b"", Some("/etc/passwd"))]),
                "is a link (to `/etc/passwd`)",
            ),
            (
                tar_gz(&[("other/x", tar::EntryType::Regular, b"a", None)]),
                "outside",
            ),
        ] {
            let e = extract_context(&bad, &dir.path().join("bad"), &limits).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        let small = super::super::ContextLimits {
            max_bytes: 3,
            max_files: 10,
        };
        let big = tar_gz(&[("copy/a", tar::EntryType::Regular, b"abcd", None)]);
        assert!(extract_context(&big, &dir.path().join("big"), &small)
            .unwrap_err()
            .contains("exceeds"));
    }

    #[test]
    fn image_id_line_is_replaced() {
        let df = "FROM x\nENV _F_IMG_ID=abc\n";
        assert_eq!(replace_image_id(df, "Z-9_"), "FROM x\nENV _F_IMG_ID=Z-9_\n");
    }
}
