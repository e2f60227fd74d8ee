//! Client side of the remote builder: which files a spec needs, the request, and the streamed
//! build. Needs no Docker engine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tonic::Code;

use super::{copy_entry_rel, spec_to_json, CONTEXT_COPY, CONTEXT_REQUIREMENTS, CONTEXT_SRC};
use crate::build::{BuildError, BuildEvent, BuildReporter, Outcome};
use crate::dockerfile::{self, PlanError};
use crate::files;
use crate::spec::{BaseImage, CopyFileDetection, ImageSpec};
use crate::{ImageSpecError, TagContext};
use union_idl::union::imagebuilder::v1 as pb;
use union_idl::union::imagebuilder::v1::image_builder_service_client::ImageBuilderServiceClient;

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
            max_bytes: super::MAX_CONTEXT_BYTES,
            max_files: super::MAX_CONTEXT_FILES,
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
    fn as_build_error(&self, image: &str) -> BuildError {
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

/// The generated client, wrapped: statuses become [`RemoteBuildError`]s.
#[derive(Debug, Clone)]
pub struct RemoteBuilderClient {
    inner: ImageBuilderServiceClient<Channel>,
    endpoint: String,
}

impl RemoteBuilderClient {
    /// Connect to `endpoint` (`host:port`, `dns:///host:port` or an `http(s)://` URL) in plain
    /// HTTP/2 unless the URL says `https`.
    pub async fn connect(endpoint: &str) -> Result<Self, RemoteBuildError> {
        let trimmed = endpoint.trim().trim_start_matches("dns:///");
        let url = if trimmed.contains("://") {
            trimmed.to_string()
        } else {
            format!("http://{trimmed}")
        };
        let err = |message: String| RemoteBuildError::Connect {
            endpoint: endpoint.to_string(),
            message,
        };
        let channel = Endpoint::from_shared(url)
            .map_err(|e| err(e.to_string()))?
            .connect_timeout(Duration::from_secs(10))
            .connect()
            .await
            .map_err(|e| err(error_chain(&e)))?;
        Ok(Self::from_channel(channel, endpoint))
    }

    /// Use an existing channel (e.g. the admin client's) to `endpoint` (named in errors).
    pub fn from_channel(channel: Channel, endpoint: &str) -> Self {
        RemoteBuilderClient {
            inner: ImageBuilderServiceClient::new(channel)
                .max_encoding_message_size(super::MAX_MESSAGE_BYTES)
                .max_decoding_message_size(super::MAX_MESSAGE_BYTES),
            endpoint: endpoint.to_string(),
        }
    }

    /// The endpoint, as given.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn status_error(&self, rpc: &'static str, image: &str, s: tonic::Status) -> RemoteBuildError {
        let message = s.message().to_string();
        match s.code() {
            Code::FailedPrecondition => RemoteBuildError::NoBuilder {
                endpoint: self.endpoint.clone(),
                message,
            },
            Code::Unavailable if message.contains("no image builder") => {
                RemoteBuildError::NoBuilder {
                    endpoint: self.endpoint.clone(),
                    message,
                }
            }
            Code::Unimplemented => RemoteBuildError::NotServed {
                endpoint: self.endpoint.clone(),
            },
            Code::Unavailable if message.contains("transport") || message.contains("connect") => {
                RemoteBuildError::Connect {
                    endpoint: self.endpoint.clone(),
                    message,
                }
            }
            code => RemoteBuildError::Rpc {
                rpc,
                image: image.to_string(),
                code,
                message,
            },
        }
    }

    /// Whether `image_name` exists: `Some(fully-qualified image)` when it does.
    pub async fn get_image(
        &self,
        image_name: &str,
    ) -> Result<pb::GetImageResponse, RemoteBuildError> {
        let mut inner = self.inner.clone();
        inner
            .get_image(pb::GetImageRequest {
                image_name: image_name.to_string(),
            })
            .await
            .map(|r| r.into_inner())
            .map_err(|s| self.status_error("GetImage", image_name, s))
    }

    /// Send one build request and follow its stream to the end, reporting progress under
    /// `image_name`. Returns the final result.
    pub async fn build(
        &self,
        request: pb::BuildRequest,
        reporter: &dyn BuildReporter,
    ) -> Result<pb::BuildResult, RemoteBuildError> {
        let image = request.image_name.clone();
        let mut inner = self.inner.clone();
        let mut stream = inner
            .build(request)
            .await
            .map_err(|s| self.status_error("Build", &image, s))?
            .into_inner();
        let mut current_step = String::new();
        loop {
            let msg = match stream.message().await {
                Ok(Some(m)) => m,
                Ok(None) => return Err(RemoteBuildError::NoResult { image }),
                Err(s) => return Err(self.status_error("Build", &image, s)),
            };
            let Some(event) = msg.event else { continue };
            match event {
                pb::build_response::Event::Note(n) => reporter.event(
                    &image,
                    &BuildEvent::Log {
                        step: "remote builder".into(),
                        line: n.message,
                    },
                ),
                pb::build_response::Event::Step(s) => {
                    current_step = s.step.clone();
                    let ev = if s.done {
                        BuildEvent::StepDone {
                            step: s.step,
                            cached: s.cached,
                            duration: (s.duration_seconds > 0.0)
                                .then(|| Duration::from_secs_f64(s.duration_seconds)),
                        }
                    } else {
                        BuildEvent::StepStarted {
                            step: s.step,
                            cached: s.cached,
                        }
                    };
                    reporter.event(&image, &ev);
                }
                pb::build_response::Event::Log(l) => reporter.event(
                    &image,
                    &BuildEvent::Log {
                        step: if l.step.is_empty() {
                            current_step.clone()
                        } else {
                            l.step
                        },
                        line: l.line,
                    },
                ),
                pb::build_response::Event::Push(p) => reporter.event(
                    &image,
                    &BuildEvent::Push {
                        status: p.status,
                        current: None,
                        total: None,
                    },
                ),
                pb::build_response::Event::Result(r) => return Ok(r),
                pb::build_response::Event::Error(e) => return Err(failure_error(&image, e)),
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// A streamed `BuildFailure` as a typed error.
fn failure_error(image: &str, e: pb::BuildFailure) -> RemoteBuildError {
    use pb::build_failure::Kind;
    let image = if e.image.is_empty() {
        image.to_string()
    } else {
        e.image
    };
    match Kind::try_from(e.kind).unwrap_or(Kind::Unspecified) {
        Kind::InvalidSpec | Kind::InvalidContext => RemoteBuildError::Invalid {
            image,
            message: e.message,
        },
        Kind::StepFailed => RemoteBuildError::StepFailed {
            image,
            step: e.step,
            message: e.message,
            output: e.output,
        },
        Kind::PushFailed => RemoteBuildError::PushFailed {
            image,
            message: e.message,
        },
        Kind::Unavailable => RemoteBuildError::Unavailable {
            image,
            message: e.message,
        },
        Kind::BuildFailed | Kind::Unspecified => RemoteBuildError::BuildFailed {
            image,
            message: e.message,
        },
    }
}

/// One file of the context a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFile {
    /// Path in the context (`requirements/…`, `copy/…`, `src/…`).
    pub path: String,
    /// The local file.
    pub source: PathBuf,
    /// Its size when listed.
    pub size: u64,
    /// Whether it is executable.
    pub executable: bool,
}

fn io_err(image: &str, path: &Path) -> impl FnOnce(std::io::Error) -> RemoteBuildError {
    let image = image.to_string();
    let path = path.to_path_buf();
    move |source| RemoteBuildError::Io {
        image,
        path,
        source,
    }
}

fn file_entry(image: &str, path: String, source: &Path) -> Result<ContextFile, RemoteBuildError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(source).map_err(io_err(image, source))?;
    Ok(ContextFile {
        path,
        source: source.to_path_buf(),
        size: meta.len(),
        executable: meta.permissions().mode() & 0o111 != 0,
    })
}

/// Every regular file under `dir` (sorted, symlinks followed as the local builder does, broken
/// ones skipped), below `prefix`.
fn walk_dir(
    image: &str,
    prefix: &str,
    dir: &Path,
    depth: usize,
    limits: &ContextLimits,
    out: &mut Vec<ContextFile>,
) -> Result<(), RemoteBuildError> {
    if depth > 64 {
        return Err(RemoteBuildError::Io {
            image: image.to_string(),
            path: dir.to_path_buf(),
            source: std::io::Error::other("directories nest more than 64 levels (a symlink loop?)"),
        });
    }
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(io_err(image, dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .map_err(io_err(image, dir))?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let Some(name) = name.to_str() else {
            return Err(ImageSpecError::NonUtf8Path {
                image: image.to_string(),
                path,
            }
            .into());
        };
        let rel = format!("{prefix}/{name}");
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk_dir(image, &rel, &path, depth + 1, limits, out)?;
        } else if meta.is_file() {
            out.push(file_entry(image, rel, &path)?);
            if out.len() > limits.max_files {
                // Stop walking early; the size check below reports it.
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The files `spec` needs to be built remotely (not those of a nested base spec), with the
/// limits checked. Refuses `pip_secret_mounts` and `copy` entries outside the base directory.
pub fn collect_context(
    spec: &ImageSpec,
    ctx: &TagContext,
    limits: &ContextLimits,
) -> Result<Vec<ContextFile>, RemoteBuildError> {
    let image = spec.name.as_str();
    if spec
        .pip_secret_mounts
        .as_ref()
        .is_some_and(|m| !m.is_empty())
    {
        return Err(RemoteBuildError::Secrets {
            image: image.to_string(),
        });
    }
    let mut out: Vec<ContextFile> = Vec::new();
    if let Some(req) = spec.requirements.as_deref().filter(|r| !r.is_empty()) {
        let path = files::resolve(&ctx.base_dir, req);
        if !path.is_file() {
            return Err(ImageSpecError::RequirementsNotFound {
                image: image.to_string(),
                path: req.to_string(),
                base: ctx.base_dir.clone(),
            }
            .into());
        }
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("requirements.txt")
            .to_string();
        out.push(file_entry(
            image,
            format!("{CONTEXT_REQUIREMENTS}/{file_name}"),
            &path,
        )?);
        if matches!(file_name.as_str(), "uv.lock" | "poetry.lock") {
            let pyproject = path.with_file_name("pyproject.toml");
            if pyproject.is_file() {
                out.push(file_entry(
                    image,
                    format!("{CONTEXT_REQUIREMENTS}/pyproject.toml"),
                    &pyproject,
                )?);
                if let Some(readme) = pyproject_readme(&pyproject) {
                    let name = readme
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or_default()
                        .to_string();
                    if name != "pyproject.toml" && name != file_name {
                        out.push(file_entry(
                            image,
                            format!("{CONTEXT_REQUIREMENTS}/{name}"),
                            &readme,
                        )?);
                    }
                }
            }
        }
    }
    for entry in spec.copy.iter().flatten() {
        let Some(rel) = copy_entry_rel(entry) else {
            return Err(RemoteBuildError::CopyEntry {
                image: image.to_string(),
                entry: entry.clone(),
                reason: "must be a relative path inside the working directory (no `..`, not absolute, not `.`)"
                    .into(),
            });
        };
        let src = files::resolve(&ctx.base_dir, entry);
        let meta = std::fs::metadata(&src).map_err(|_| PlanError::MissingFile {
            image: image.to_string(),
            field: "copy",
            path: entry.clone(),
            base: ctx.base_dir.clone(),
        })?;
        let at = format!("{CONTEXT_COPY}/{rel}");
        if meta.is_dir() {
            walk_dir(image, &at, &src, 0, limits, &mut out)?;
        } else {
            out.push(file_entry(image, at, &src)?);
        }
    }
    if let Some(mode) = spec
        .source_copy_mode
        .filter(|m| *m != CopyFileDetection::NoCopy)
    {
        let root = spec.source_root.as_deref().unwrap_or_default();
        let listed = match mode {
            CopyFileDetection::LoadedModules => {
                files::list_loaded(&ctx.base_dir, root, &ctx.loaded_modules, image)?
            }
            _ => files::list_all(&ctx.base_dir, root, image)?,
        };
        for (rel, path) in listed {
            out.push(file_entry(image, format!("{CONTEXT_SRC}/{rel}"), &path)?);
        }
    }
    // Same path twice (copy entries overlapping): the last wins, as in a tar.
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut dedup: Vec<ContextFile> = Vec::with_capacity(out.len());
    for f in out {
        match seen.get(&f.path) {
            Some(&i) => dedup[i] = f,
            None => {
                seen.insert(f.path.clone(), dedup.len());
                dedup.push(f);
            }
        }
    }
    check_limits(image, &dedup, limits)?;
    Ok(dedup)
}

/// The README a pyproject.toml references (the local builder sends it beside the lock file).
fn pyproject_readme(pyproject: &Path) -> Option<PathBuf> {
    let doc: toml::Table = std::fs::read_to_string(pyproject).ok()?.parse().ok()?;
    let readme = doc
        .get("project")
        .and_then(|p| p.get("readme"))
        .or_else(|| doc.get("tool")?.get("poetry")?.get("readme"))?
        .as_str()?
        .to_string();
    let path = pyproject.parent()?.join(&readme);
    (Path::new(&readme).components().count() == 1 && path.is_file()).then_some(path)
}

/// Human-readable size, e.g. `12.5 MiB`.
pub use union_diagnostics::human_bytes as human_size;

fn check_limits(
    image: &str,
    files: &[ContextFile],
    limits: &ContextLimits,
) -> Result<(), RemoteBuildError> {
    let total: u64 = files.iter().map(|f| f.size).sum();
    if total <= limits.max_bytes && files.len() <= limits.max_files {
        return Ok(());
    }
    let mut by_size: Vec<&ContextFile> = files.iter().collect();
    by_size.sort_by(|a, b| b.size.cmp(&a.size).then(a.path.cmp(&b.path)));
    let largest = by_size
        .iter()
        .take(5)
        .map(|f| format!("{} ({})", f.source.display(), human_size(f.size)))
        .collect::<Vec<_>>()
        .join(", ");
    Err(RemoteBuildError::ContextTooLarge {
        image: image.to_string(),
        files: files.len(),
        total: human_size(total),
        limit: human_size(limits.max_bytes),
        limit_files: limits.max_files,
        largest,
    })
}

/// The context as a deterministic gzip-compressed tar (sorted, fixed mtime, uid/gid 0).
pub fn context_tar_gz(image: &str, files: &[ContextFile]) -> Result<Vec<u8>, RemoteBuildError> {
    use flate2::write::GzEncoder;
    let mut sorted: Vec<&ContextFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    builder.mode(tar::HeaderMode::Deterministic);
    for f in sorted {
        let data = std::fs::read(&f.source).map_err(io_err(image, &f.source))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(if f.executable { 0o755 } else { 0o644 });
        header.set_mtime(315_532_800);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, &f.path, data.as_slice())
            .map_err(io_err(image, &f.source))?;
    }
    let gz = builder
        .into_inner()
        .map_err(io_err(image, Path::new("<context>")))?;
    gz.finish().map_err(io_err(image, Path::new("<context>")))
}

/// The build request for one spec whose nested base (if any) is already replaced by an image
/// reference. `image_name` and `spec_id` are the client's (of the spec as the user wrote it).
pub fn build_request(
    spec: &ImageSpec,
    image_name: &str,
    spec_id: &str,
    ctx: &TagContext,
    options: &RemoteBuildOptions,
) -> Result<pb::BuildRequest, RemoteBuildError> {
    let files = collect_context(spec, ctx, &options.limits)?;
    let context_tar_gz = if files.is_empty() {
        Vec::new()
    } else {
        context_tar_gz(&spec.name, &files)?
    };
    Ok(pb::BuildRequest {
        spec_json: serde_json::Value::Object(spec_to_json(spec)).to_string(),
        image_name: image_name.to_string(),
        spec_id: spec_id.to_string(),
        context_tar_gz,
        flytekit_version: options.flytekit_version.clone(),
        force: options.force || spec.is_force_push,
        default_base_image: options.default_base_image.clone().unwrap_or_default(),
    })
}

/// Make sure every spec's image exists, building what is missing on the remote builder; nested
/// base specs first. Identical specs are handled once. Returns one entry per distinct image,
/// bases included, in the order they were made sure of.
///
/// The caller should use [`RemoteImage::fully_qualified`] in the registered tasks (flytekit's
/// `_IMAGE_NAME_TO_REAL_NAME`); insert `image_name → fully_qualified` into
/// [`TagContext::real_names`] when computing names afterwards.
pub async fn ensure_remote_images(
    client: &RemoteBuilderClient,
    specs: &[ImageSpec],
    ctx: &TagContext,
    options: &RemoteBuildOptions,
    reporter: &dyn BuildReporter,
) -> Result<Vec<RemoteImage>, RemoteBuildError> {
    let mut ctx = ctx.clone();
    let mut done: Vec<RemoteImage> = Vec::new();
    for spec in specs {
        ensure_one(client, spec, &mut ctx, options, reporter, &mut done).await?;
    }
    Ok(done)
}

async fn ensure_one(
    client: &RemoteBuilderClient,
    spec: &ImageSpec,
    ctx: &mut TagContext,
    options: &RemoteBuildOptions,
    reporter: &dyn BuildReporter,
    done: &mut Vec<RemoteImage>,
) -> Result<String, RemoteBuildError> {
    // Early, local refusals: the same checks the server's planner makes.
    if spec
        .pip_secret_mounts
        .as_ref()
        .is_some_and(|m| !m.is_empty())
    {
        return Err(RemoteBuildError::Secrets {
            image: spec.name.clone(),
        });
    }
    let mut to_send = spec.clone();
    if let Some(BaseImage::Spec(inner)) = &spec.base_image {
        let base_fq = Box::pin(ensure_one(client, inner, ctx, options, reporter, done)).await?;
        to_send.base_image = Some(BaseImage::Image(base_fq));
    }
    dockerfile::check_supported(&to_send, ctx)?;
    // After the base is built, flytekit's image_name() of the base is its real (fully-qualified)
    // name, and the child's tag hashes that name: ctx.real_names carries it.
    let image_name = spec.image_name(ctx)?;
    if let Some(d) = done
        .iter()
        .find(|d| d.image_name == image_name || d.fully_qualified == image_name)
    {
        return Ok(d.fully_qualified.clone());
    }
    let spec_id = spec.id();
    reporter.started(&image_name);
    let result = make_sure(
        client,
        &to_send,
        &image_name,
        &spec_id,
        ctx,
        options,
        reporter,
    )
    .await;
    match result {
        Ok((fq, built, duration)) => {
            let outcome = if built {
                Outcome::Built {
                    pushed: true,
                    duration,
                }
            } else {
                Outcome::Exists
            };
            reporter.finished(&image_name, Ok(&outcome));
            if fq != image_name {
                ctx.real_names.insert(image_name.clone(), fq.clone());
            }
            done.push(RemoteImage {
                spec_name: spec.name.clone(),
                image_name,
                fully_qualified: fq.clone(),
                built,
            });
            Ok(fq)
        }
        Err(e) => {
            reporter.finished(&image_name, Err(&e.as_build_error(&image_name)));
            Err(e)
        }
    }
}

async fn make_sure(
    client: &RemoteBuilderClient,
    spec: &ImageSpec,
    image_name: &str,
    spec_id: &str,
    ctx: &TagContext,
    options: &RemoteBuildOptions,
    reporter: &dyn BuildReporter,
) -> Result<(String, bool, Duration), RemoteBuildError> {
    let force = options.force || spec.is_force_push;
    if !force {
        let found = client.get_image(image_name).await?;
        if found.exists {
            return Ok((found.fully_qualified_image, false, Duration::ZERO));
        }
    }
    let request = build_request(spec, image_name, spec_id, ctx, options)?;
    let result = client.build(request, reporter).await?;
    Ok((
        result.fully_qualified_image,
        result.built,
        Duration::from_secs_f64(result.duration_seconds.max(0.0)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_name_the_largest_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("big.bin"), vec![0u8; 4096]).unwrap();
        std::fs::write(dir.path().join("small.txt"), "x").unwrap();
        let spec = ImageSpec {
            name: "big".into(),
            copy: Some(vec!["big.bin".into(), "small.txt".into()]),
            ..Default::default()
        };
        let ctx = TagContext::new(dir.path());
        let limits = ContextLimits {
            max_bytes: 1000,
            max_files: 10,
        };
        let err = collect_context(&spec, &ctx, &limits).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("big.bin (4.0 KiB)"), "{msg}");
        assert!(msg.contains("limit is 10 files and 1000 B"), "{msg}");
        let ok = collect_context(&spec, &ctx, &ContextLimits::default()).unwrap();
        let paths: Vec<_> = ok.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["copy/big.bin", "copy/small.txt"]);
    }

    #[test]
    fn secrets_and_escaping_copy_entries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = TagContext::new(dir.path());
        let spec = ImageSpec {
            name: "s".into(),
            pip_secret_mounts: Some(vec![("a".into(), "/b".into())]),
            ..Default::default()
        };
        assert!(matches!(
            collect_context(&spec, &ctx, &ContextLimits::default()),
            Err(RemoteBuildError::Secrets { .. })
        ));
        let spec = ImageSpec {
            name: "s".into(),
            copy: Some(vec!["../x".into()]),
            ..Default::default()
        };
        assert!(matches!(
            collect_context(&spec, &ctx, &ContextLimits::default()),
            Err(RemoteBuildError::CopyEntry { .. })
        ));
    }

    #[test]
    fn lock_file_brings_pyproject_and_readme() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("proj")).unwrap();
        std::fs::write(dir.path().join("proj/uv.lock"), "lock").unwrap();
        std::fs::write(
            dir.path().join("proj/pyproject.toml"),
            "[project]\nname='x'\nreadme='README.md'\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("proj/README.md"), "hi").unwrap();
        let spec = ImageSpec {
            name: "l".into(),
            requirements: Some("proj/uv.lock".into()),
            ..Default::default()
        };
        let files = collect_context(
            &spec,
            &TagContext::new(dir.path()),
            &ContextLimits::default(),
        )
        .unwrap();
        let paths: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "requirements/uv.lock",
                "requirements/pyproject.toml",
                "requirements/README.md"
            ]
        );
        let tgz = context_tar_gz("l", &files).unwrap();
        assert_eq!(tgz, context_tar_gz("l", &files).unwrap());
    }
}

impl union_diagnostics::Hint for RemoteBuildError {
    fn detail(&self) -> Option<String> {
        self.output().map(str::to_string)
    }
}
