//! Building and pushing [`BuildPlan`]s through the Docker Engine API (bollard): BuildKit builds
//! (`version=2`) without the docker CLI or buildx, progress reported through [`BuildReporter`],
//! failing steps returned with their own output, pushes with credentials from the Docker config.
//!
//! Specs with `pip_secret_mounts` are solved through BuildKit's gRPC control API on the same
//! engine (bollard's moby driver), whose session serves the secret files; the Engine API's HTTP
//! build cannot serve secrets through bollard. Such builds report no step-by-step progress, and a
//! failing step's error carries BuildKit's message but not the step's log.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::auth::DockerCredentials;
use bollard::models::{BuildInfo, BuildInfoAux};
use bollard::query_parameters::{BuildImageOptions, BuilderVersion, PushImageOptions};
use bollard::Docker;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};

use super::dockerfile::BuildPlan;

/// How many lines of a failing step's output an error keeps.
pub const FAILED_STEP_LINES: usize = 40;

/// Everything that can go wrong talking to the engine, building or pushing.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The engine does not answer.
    #[error(
        "cannot reach the Docker engine at {endpoint}; start it or set DOCKER_HOST ({message})"
    )]
    Unreachable { endpoint: String, message: String },
    /// A build step failed; `output` holds that step's last lines.
    #[error("building image {image} failed at step `{step}`: {message}")]
    StepFailed {
        image: String,
        step: String,
        message: String,
        output: String,
    },
    /// The build failed without a failing step to point at (bad Dockerfile, base image missing...).
    #[error("building image {image} failed: {message}")]
    Build { image: String, message: String },
    /// Pushing failed.
    #[error("pushing image {image} failed: {message}")]
    Push { image: String, message: String },
    /// Whether the image already exists could not be determined.
    #[error("cannot tell whether image {image} exists: {message}")]
    Existence { image: String, message: String },
    /// Writing the build context failed.
    #[error("cannot create the build context for {image}: {source}")]
    Context {
        image: String,
        #[source]
        source: std::io::Error,
    },
    /// The engine cannot build what the plan asks for.
    #[error("cannot build image {image}: {message}")]
    Unsupported {
        image: String,
        message: String,
        hint: String,
    },
    /// Registry credentials for the image could not be read (a docker config or helper failed).
    #[error("cannot read registry credentials for {image}: {message}")]
    Credentials { image: String, message: String },
    /// Another engine API call failed.
    #[error("Docker engine error ({what}): {message}")]
    Engine { what: String, message: String },
}

impl union_diagnostics::Hint for BuildError {
    fn hints(&self) -> Vec<String> {
        match self {
            BuildError::Unsupported { hint, .. } => vec![hint.clone()],
            BuildError::Unreachable { .. } => vec![
                "start a Docker engine (with BuildKit) or point DOCKER_HOST at one; or use builder=\"union\" to build on the backend".into(),
            ],
            BuildError::Existence { .. } => vec![
                "fix the registry access (docker login, or check the registry is up), or pass --allow-unverified-images to go on anyway".into(),
            ],
            BuildError::Push { .. } => vec![
                "check that you can push there (docker login) and that the registry is up".into(),
            ],
            _ => Vec::new(),
        }
    }
    fn detail(&self) -> Option<String> {
        self.output().map(str::to_string)
    }
}

impl BuildError {
    /// The failing step's output, for errors that have one.
    pub fn output(&self) -> Option<&str> {
        match self {
            BuildError::StepFailed { output, .. } if !output.trim().is_empty() => Some(output),
            _ => None,
        }
    }
}

/// One thing that happened while building or pushing an image.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildEvent {
    /// A build step started (`cached` when BuildKit reused it).
    StepStarted { step: String, cached: bool },
    /// A build step finished.
    StepDone {
        step: String,
        cached: bool,
        duration: Option<Duration>,
    },
    /// A line of a step's output.
    Log { step: String, line: String },
    /// Push progress of one layer (`status` as the engine words it).
    Push {
        status: String,
        current: Option<i64>,
        total: Option<i64>,
    },
}

/// What happened to one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Skipped: the image already exists.
    Exists,
    /// Built, and pushed when it has a registry.
    Built { pushed: bool, duration: Duration },
}

/// Receives progress; the CLI renders it (library code never prints). Called from build tasks.
pub trait BuildReporter: Send + Sync {
    /// About to check/build `image`.
    fn started(&self, _image: &str) {}
    /// Progress of `image`.
    fn event(&self, _image: &str, _event: &BuildEvent) {}
    /// `image` finished, successfully or not.
    fn finished(&self, _image: &str, _result: Result<&Outcome, &BuildError>) {}
}

/// A reporter that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReporter;
impl BuildReporter for NoReporter {}

/// Decides whether an image already exists (the registry module can provide another).
pub trait ExistenceCheck: Send + Sync {
    /// Whether `image` exists; an error when that cannot be determined.
    fn exists<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<bool, BuildError>>;
}

/// Options for [`Builder::build_all`].
#[derive(Debug, Clone)]
pub struct BuildAllOptions {
    /// Rebuild even when the image exists.
    pub force: bool,
    /// Push images that have a registry (flytekit: `FLYTE_PUSH_IMAGE_SPEC`, default true).
    pub push: bool,
    /// How many distinct images build at once.
    pub concurrency: usize,
}

impl Default for BuildAllOptions {
    fn default() -> Self {
        BuildAllOptions {
            force: false,
            push: true,
            concurrency: 2,
        }
    }
}

/// Split `repo[:tag]` into repository and tag (a `:` before the last `/` is a registry port).
pub fn split_tag(image: &str) -> (&str, &str) {
    let last_slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[last_slash..].rfind(':') {
        Some(i) => (&image[..last_slash + i], &image[last_slash + i + 1..]),
        None => (image, "latest"),
    }
}

/// The registry host of an image reference, as Docker's config keys it (`docker.io` for Hub).
pub fn registry_host(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

/// Credentials for `host` from the Docker config (`auths`, `credsStore`, `credHelpers`), through
/// the registry module's one reader; `None` when there are none or they cannot be read.
pub fn docker_config_credentials(host: &str) -> Option<DockerCredentials> {
    let config = union_registry::DockerConfig::load_default().ok()?;
    engine_credentials(&config, host).ok().flatten()
}

/// What the engine needs to pull from or push to `host`, from `config` (helpers included).
fn engine_credentials(
    config: &union_registry::DockerConfig,
    host: &str,
) -> Result<Option<DockerCredentials>, union_registry::RegistryError> {
    use union_registry::Credential;
    let Some(credential) = config.credentials_for(host)? else {
        return Ok(None);
    };
    let mut creds = DockerCredentials {
        serveraddress: Some(host.to_string()),
        ..Default::default()
    };
    match credential {
        Credential::Basic { username, password } => {
            creds.username = Some(username);
            creds.password = Some(password);
        }
        Credential::IdentityToken { username, token } => {
            creds.username = username;
            creds.identitytoken = Some(token);
        }
        Credential::RegistryToken(token) => creds.registrytoken = Some(token),
    }
    Ok(Some(creds))
}

/// The docker config for a plan: its ImageSpec's `registry_config` first (envd's field: a docker
/// config file with credentials for that image's registry), then the user's.
fn plan_config(plan: &BuildPlan) -> Result<union_registry::DockerConfig, BuildError> {
    let default =
        union_registry::DockerConfig::load_default().map_err(|e| BuildError::Credentials {
            image: plan.image_name.clone(),
            message: e.to_string(),
        })?;
    plan_config_over(plan, default)
}

fn plan_config_over(
    plan: &BuildPlan,
    default: union_registry::DockerConfig,
) -> Result<union_registry::DockerConfig, BuildError> {
    match &plan.registry_config {
        Some(file) => Ok(union_registry::DockerConfig::load_file(file)
            .map_err(|e| BuildError::Credentials {
                image: plan.image_name.clone(),
                message: e.to_string(),
            })?
            .with_fallback(default)),
        None => Ok(default),
    }
}

/// Credentials for every registry the build pulls from (the base image's), keyed by host as
/// BuildKit's session asks for them.
fn pull_credentials(plan: &BuildPlan) -> Result<HashMap<String, DockerCredentials>, BuildError> {
    pull_credentials_from(plan, &plan_config(plan)?)
}

fn pull_credentials_from(
    plan: &BuildPlan,
    config: &union_registry::DockerConfig,
) -> Result<HashMap<String, DockerCredentials>, BuildError> {
    let mut out = HashMap::new();
    let host = registry_host(&plan.base_image);
    let creds = engine_credentials(config, host).map_err(|e| BuildError::Credentials {
        image: plan.image_name.clone(),
        message: e.to_string(),
    })?;
    if let Some(c) = creds {
        out.insert(host.to_string(), c.clone());
        if host == "docker.io" {
            // The engine asks for Docker Hub under its v1 index address.
            out.insert("https://index.docker.io/v1/".to_string(), c);
        }
    }
    Ok(out)
}

/// A directory only this user can read, removed when dropped.
fn tempfile_dir() -> std::io::Result<ScratchDir> {
    use std::os::unix::fs::DirBuilderExt;
    let path = std::env::temp_dir().join(format!("union-build-secrets-{}", random_id()));
    std::fs::DirBuilder::new().mode(0o700).create(&path)?;
    Ok(ScratchDir(path))
}

struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

/// A connection to a Docker engine that builds and pushes images.
#[derive(Debug, Clone)]
pub struct Builder {
    docker: Docker,
    endpoint: String,
}

impl Builder {
    /// Connect as the docker CLI does: `DOCKER_HOST` (`unix://`, `tcp://`), else the local socket.
    /// Checks that the engine answers and agrees on an API version.
    pub async fn connect() -> Result<Builder, BuildError> {
        let endpoint = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string());
        let unreachable = |e: bollard::errors::Error| BuildError::Unreachable {
            endpoint: endpoint.clone(),
            message: e.to_string(),
        };
        let docker = Docker::connect_with_defaults().map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        Ok(Builder { docker, endpoint })
    }

    /// Where the engine is (the `DOCKER_HOST` value or the default socket).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The bollard client, for callers that need other engine calls.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Whether `image` exists: in its registry when it names one (`GET /distribution/<ref>/json`,
    /// what flytekit's `ImageSpec.exist()` asks), else in the engine's local store.
    pub async fn image_exists(&self, image: &str) -> Result<bool, BuildError> {
        use bollard::errors::Error;
        if !has_registry(image) {
            return match self.docker.inspect_image(image).await {
                Ok(_) => Ok(true),
                Err(Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => Ok(false),
                Err(e) => Err(BuildError::Existence {
                    image: image.to_string(),
                    message: e.to_string(),
                }),
            };
        }
        let creds = docker_config_credentials(registry_host(image));
        match self.docker.inspect_registry_image(image, creds).await {
            Ok(_) => Ok(true),
            Err(Error::DockerResponseServerError {
                status_code,
                message,
            }) if status_code == 404 || (status_code == 500 && not_found_message(&message)) => {
                Ok(false)
            }
            Err(e) => Err(BuildError::Existence {
                image: image.to_string(),
                message: e.to_string(),
            }),
        }
    }

    /// Build one plan (not its nested base) and tag it as `plan.image_name`.
    pub async fn build(
        &self,
        plan: &BuildPlan,
        reporter: &dyn BuildReporter,
    ) -> Result<(), BuildError> {
        let image = plan.image_name.as_str();
        if plan.platforms().len() > 1 {
            return Err(BuildError::Unsupported {
                image: image.to_string(),
                message: format!(
                    "its platform `{}` lists several platforms, and a multi-platform image cannot be \
                     built through the Docker Engine API: the engine's image store holds one platform \
                     per image",
                    plan.platform
                ),
                hint: "set `platform` to one platform (the cluster's nodes' one, usually linux/amd64), \
                       or build the multi-platform image with `docker buildx build --platform ... --push` \
                       and give it to the tasks as `container_image`"
                    .into(),
            });
        }
        let tar = plan
            .context
            .to_tar()
            .map_err(|source| BuildError::Context {
                image: image.to_string(),
                source,
            })?;
        if !plan.secrets.is_empty() {
            // bollard's gRPC session future is not Send: drive it on a blocking thread of the
            // caller's runtime so this future stays Send.
            let this = self.clone();
            let plan = plan.clone();
            let handle = tokio::runtime::Handle::current();
            return tokio::task::spawn_blocking(move || {
                handle.block_on(this.build_with_secrets(&plan, tar))
            })
            .await
            .unwrap_or_else(|e| {
                Err(BuildError::Build {
                    image: image.to_string(),
                    message: format!("the build task failed: {e}"),
                })
            });
        }
        let options = BuildImageOptions {
            dockerfile: "Dockerfile".to_string(),
            t: Some(image.to_string()),
            rm: true,
            forcerm: true,
            platform: plan.platform.clone(),
            version: BuilderVersion::BuilderBuildKit,
            session: Some(format!("union-{}", random_id())),
            ..Default::default()
        };
        let creds = pull_credentials(plan)?;
        let mut stream =
            self.docker
                .build_image(options, Some(creds), Some(bollard::body_full(tar.into())));
        let mut trace = Trace::default();
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => trace.absorb(image, info, reporter),
                Err(e) => return Err(trace.failure(image, e)),
            }
        }
        if let Some(err) = trace.pending_error(image) {
            return Err(err);
        }
        Ok(())
    }

    /// BuildKit's gRPC solve with a session that serves the spec's secret files.
    async fn build_with_secrets(&self, plan: &BuildPlan, tar: Vec<u8>) -> Result<(), BuildError> {
        use bollard::grpc::build::{
            ImageBuildFrontendOptions, ImageBuildLoadInput, ImageBuildPlatform, SecretSource,
        };
        use bollard::grpc::driver::moby::Moby;
        use bollard::grpc::driver::Build;
        let mut opts = ImageBuildFrontendOptions::builder();
        let mut parts = plan.platform.splitn(3, '/');
        if let (Some(os), Some(arch)) = (parts.next(), parts.next()) {
            opts = opts.platforms(&ImageBuildPlatform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: parts.next().map(str::to_string),
            });
        }
        // Secrets union made (a netrc) live in a private directory for the build only.
        let scratch = tempfile_dir().map_err(|e| BuildError::Build {
            image: plan.image_name.clone(),
            message: format!("cannot create a private temporary directory for build secrets: {e}"),
        })?;
        for s in &plan.secrets {
            let path = match &s.source {
                crate::dockerfile::SecretSource::File(p) => p.clone(),
                crate::dockerfile::SecretSource::Text(text) => {
                    let p = scratch.path().join(&s.id);
                    write_private(&p, text.as_bytes()).map_err(|e| BuildError::Build {
                        image: plan.image_name.clone(),
                        message: format!("cannot write build secret `{}`: {e}", s.id),
                    })?;
                    p
                }
            };
            opts = opts.set_secret(&s.id, &SecretSource::File(path));
        }
        let creds = pull_credentials(plan)?;
        let creds_ref: HashMap<&str, DockerCredentials> =
            creds.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let driver = Moby::new(&self.docker);
        driver
            .docker_build(
                &plan.image_name,
                opts.build(),
                ImageBuildLoadInput::Upload(tar.into()),
                Some(creds_ref),
                None,
            )
            .await
            .map_err(|e| BuildError::Build {
                image: plan.image_name.clone(),
                message: e.to_string(),
            })
    }

    /// Push a plan's image with credentials from its docker config, reporting per-layer progress.
    pub async fn push(
        &self,
        plan: &BuildPlan,
        reporter: &dyn BuildReporter,
    ) -> Result<(), BuildError> {
        let image = plan.image_name.as_str();
        let (repo, tag) = split_tag(image);
        let creds = engine_credentials(&plan_config(plan)?, registry_host(image)).map_err(|e| {
            BuildError::Credentials {
                image: image.to_string(),
                message: e.to_string(),
            }
        })?;
        let options = PushImageOptions {
            tag: Some(tag.to_string()),
            ..Default::default()
        };
        let mut stream = self.docker.push_image(repo, Some(options), creds);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| BuildError::Push {
                image: image.to_string(),
                message: stream_message(e),
            })?;
            if let Some(status) = info.status {
                let (current, total) = info
                    .progress_detail
                    .map(|p| (p.current, p.total))
                    .unwrap_or((None, None));
                reporter.event(
                    image,
                    &BuildEvent::Push {
                        status,
                        current,
                        total,
                    },
                );
            }
        }
        Ok(())
    }

    /// Check, build and push one plan (its nested base must be done already).
    async fn build_one(
        &self,
        plan: &BuildPlan,
        options: &BuildAllOptions,
        existence: &dyn ExistenceCheck,
        reporter: &dyn BuildReporter,
    ) -> Result<Outcome, BuildError> {
        let image = plan.image_name.as_str();
        if !(options.force || plan.force) && existence.exists(image).await? {
            return Ok(Outcome::Exists);
        }
        let start = Instant::now();
        self.build(plan, reporter).await?;
        let pushed = options.push && plan.push;
        if pushed {
            self.push(plan, reporter).await?;
        }
        Ok(Outcome::Built {
            pushed,
            duration: start.elapsed(),
        })
    }

    /// Build every plan and its nested bases: identical images (same name) once, bases before
    /// the images on them, at most `options.concurrency` at a time. Results are in first-seen
    /// order, bases included; an image whose base failed is not attempted.
    pub async fn build_all(
        &self,
        plans: &[BuildPlan],
        options: &BuildAllOptions,
        existence: &dyn ExistenceCheck,
        reporter: &dyn BuildReporter,
    ) -> Vec<(String, Result<Outcome, BuildError>)> {
        // Flatten into levels: a base is one level below the image built on it.
        let mut levels: Vec<Vec<&BuildPlan>> = Vec::new();
        let mut level_of: HashMap<&str, usize> = HashMap::new();
        let mut order: Vec<&str> = Vec::new();
        fn depth(p: &BuildPlan) -> usize {
            p.base.as_deref().map(|b| depth(b) + 1).unwrap_or(0)
        }
        fn visit<'a>(
            p: &'a BuildPlan,
            levels: &mut Vec<Vec<&'a BuildPlan>>,
            level_of: &mut HashMap<&'a str, usize>,
            order: &mut Vec<&'a str>,
        ) {
            if let Some(b) = p.base.as_deref() {
                visit(b, levels, level_of, order);
            }
            if level_of.contains_key(p.image_name.as_str()) {
                return;
            }
            let d = depth(p);
            if levels.len() <= d {
                levels.resize_with(d + 1, Vec::new);
            }
            levels[d].push(p);
            level_of.insert(&p.image_name, d);
            order.push(&p.image_name);
        }
        for p in plans {
            visit(p, &mut levels, &mut level_of, &mut order);
        }
        let mut results: HashMap<String, Result<Outcome, BuildError>> = HashMap::new();
        let concurrency = options.concurrency.max(1);
        for level in levels {
            let failed: HashSet<String> = results
                .iter()
                .filter(|(_, r)| r.is_err())
                .map(|(k, _)| k.clone())
                .collect();
            let runnable: Vec<&BuildPlan> = level
                .into_iter()
                .filter(|p| {
                    let base_failed = p
                        .base
                        .as_deref()
                        .is_some_and(|b| failed.contains(&b.image_name));
                    if base_failed {
                        let err = BuildError::Build {
                            image: p.image_name.clone(),
                            message: format!(
                                "its base image {} could not be built",
                                p.base.as_deref().unwrap().image_name
                            ),
                        };
                        reporter.finished(&p.image_name, Err(&err));
                        results.insert(p.image_name.clone(), Err(err));
                    }
                    !base_failed
                })
                .collect();
            let done: Vec<(String, Result<Outcome, BuildError>)> =
                futures_util::stream::iter(runnable.into_iter().map(|p| {
                    async move {
                        reporter.started(&p.image_name);
                        let r = self.build_one(p, options, existence, reporter).await;
                        reporter.finished(&p.image_name, r.as_ref());
                        (p.image_name.clone(), r)
                    }
                    .boxed()
                }))
                .buffer_unordered(concurrency)
                .collect()
                .await;
            results.extend(done);
        }
        order
            .into_iter()
            .filter_map(|name| results.remove(name).map(|r| (name.to_string(), r)))
            .collect()
    }
}

impl ExistenceCheck for Builder {
    fn exists<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<bool, BuildError>> {
        self.image_exists(image).boxed()
    }
}

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
fn not_found_message(message: &str) -> bool {
    let m = message.to_lowercase();
    m.contains("not found") || m.contains("manifest unknown")
}

fn stream_message(e: bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerStreamError { error } => error,
        other => other.to_string(),
    }
}

fn random_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{:016x}", h.finish())
}

/// One BuildKit vertex (build step) as the trace describes it.
#[derive(Debug, Default)]
struct Vertex {
    name: String,
    cached: bool,
    started: bool,
    completed: bool,
    error: String,
    /// The last lines of its output.
    lines: VecDeque<String>,
    /// A partial last line.
    partial: String,
}

/// Follows `moby.buildkit.trace` messages: step names, states and output per step.
#[derive(Debug, Default)]
struct Trace {
    vertices: HashMap<String, Vertex>,
    /// Digests in first-seen order.
    order: Vec<String>,
    /// Plain `stream` text (legacy builder, or engine messages).
    stream_tail: VecDeque<String>,
}

impl Trace {
    fn absorb(&mut self, image: &str, info: BuildInfo, reporter: &dyn BuildReporter) {
        if let Some(text) = info.stream {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                push_line(&mut self.stream_tail, line.to_string());
            }
        }
        let Some(BuildInfoAux::BuildKit(status)) = info.aux else {
            return;
        };
        for v in status.vertexes {
            if !self.vertices.contains_key(&v.digest) {
                self.order.push(v.digest.clone());
            }
            let entry = self.vertices.entry(v.digest.clone()).or_default();
            entry.name = display_step(&v.name);
            entry.cached |= v.cached;
            if v.started.is_some() && !entry.started {
                entry.started = true;
                reporter.event(
                    image,
                    &BuildEvent::StepStarted {
                        step: entry.name.clone(),
                        cached: v.cached,
                    },
                );
            }
            if !v.error.is_empty() {
                entry.error = v.error.clone();
            }
            if v.completed.is_some() && !entry.completed {
                entry.completed = true;
                let duration = match (&v.started, &v.completed) {
                    (Some(s), Some(c)) => {
                        let nanos = (c.seconds - s.seconds) as i128 * 1_000_000_000
                            + (c.nanos - s.nanos) as i128;
                        u64::try_from(nanos).ok().map(Duration::from_nanos)
                    }
                    _ => None,
                };
                reporter.event(
                    image,
                    &BuildEvent::StepDone {
                        step: entry.name.clone(),
                        cached: entry.cached,
                        duration,
                    },
                );
            }
        }
        for log in status.logs {
            let entry = self.vertices.entry(log.vertex.clone()).or_default();
            let text = String::from_utf8_lossy(&log.msg);
            let mut buf = std::mem::take(&mut entry.partial);
            buf.push_str(&text);
            let mut rest = buf.as_str();
            while let Some(i) = rest.find(['\n', '\r']) {
                let line = rest[..i].to_string();
                rest = &rest[i + 1..];
                if line.trim().is_empty() {
                    continue;
                }
                reporter.event(
                    image,
                    &BuildEvent::Log {
                        step: entry.name.clone(),
                        line: line.clone(),
                    },
                );
                push_line(&mut entry.lines, line);
            }
            entry.partial = rest.to_string();
        }
    }

    /// The failing vertex, if the trace named one.
    fn failed_vertex(&self) -> Option<&Vertex> {
        self.order
            .iter()
            .filter_map(|d| self.vertices.get(d))
            .find(|v| !v.error.is_empty())
    }

    fn failure(&mut self, image: &str, e: bollard::errors::Error) -> BuildError {
        let message = stream_message(e);
        if let Some(v) = self.failed_vertex() {
            let mut lines: Vec<String> = v.lines.iter().cloned().collect();
            if !v.partial.trim().is_empty() {
                lines.push(v.partial.clone());
            }
            return BuildError::StepFailed {
                image: image.to_string(),
                step: v.name.clone(),
                message,
                output: lines.join("\n"),
            };
        }
        BuildError::Build {
            image: image.to_string(),
            message,
        }
    }

    fn pending_error(&self, image: &str) -> Option<BuildError> {
        let v = self.failed_vertex()?;
        Some(BuildError::StepFailed {
            image: image.to_string(),
            step: v.name.clone(),
            message: v.error.clone(),
            output: v.lines.iter().cloned().collect::<Vec<_>>().join("\n"),
        })
    }
}

/// A step name as users read it: BuildKit's vertex name without the `--mount=` options.
pub fn display_step(name: &str) -> String {
    name.split_whitespace()
        .filter(|w| !w.starts_with("--mount="))
        .collect::<Vec<_>>()
        .join(" ")
}

fn push_line(buf: &mut VecDeque<String>, line: String) {
    if buf.len() == FAILED_STEP_LINES {
        buf.pop_front();
    }
    buf.push_back(line);
}

/// Shared handle to a reporter, for callers that keep one across tasks.
pub type SharedReporter = Arc<dyn BuildReporter>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_tags_and_hosts() {
        assert_eq!(
            split_tag("localhost:30000/a/b:TAG"),
            ("localhost:30000/a/b", "TAG")
        );
        assert_eq!(
            split_tag("localhost:30000/a"),
            ("localhost:30000/a", "latest")
        );
        assert_eq!(registry_host("localhost:30000/a:x"), "localhost:30000");
        assert_eq!(registry_host("ghcr.io/o/a:x"), "ghcr.io");
        assert_eq!(registry_host("user/a:x"), "docker.io");
        assert_eq!(registry_host("a:x"), "docker.io");
    }

    fn plan_from(base_image: &str, registry_config: Option<std::path::PathBuf>) -> BuildPlan {
        BuildPlan {
            spec_name: "x".into(),
            image_name: "localhost:30000/x:1".into(),
            base_image: base_image.into(),
            base: None,
            dockerfile: String::new(),
            context: crate::context::BuildContext::new(),
            secrets: Vec::new(),
            platform: "linux/amd64".into(),
            push: true,
            force: false,
            registry_config,
        }
    }

    #[test]
    fn pulls_use_the_same_reader_as_pushes_with_the_specs_registry_config_first() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("user");
        std::fs::create_dir_all(&user).unwrap();
        // The user's docker config: Hub (base64 "u:p") and a private registry.
        std::fs::write(
            user.join("config.json"),
            r#"{"auths": {"https://index.docker.io/v1/": {"auth": "dTpw"},
                "ghcr.io": {"username": "gh", "password": "user-token"}}}"#,
        )
        .unwrap();
        // The ImageSpec's registry_config: another account for ghcr.io.
        let spec_config = dir.path().join("spec-registry.json");
        std::fs::write(
            &spec_config,
            r#"{"auths": {"ghcr.io": {"username": "bot", "password": "spec-token"}}}"#,
        )
        .unwrap();
        let default = || union_registry::DockerConfig::load(&user).unwrap();

        let hub = plan_from("python:3.11-slim", None);
        let creds =
            pull_credentials_from(&hub, &plan_config_over(&hub, default()).unwrap()).unwrap();
        assert_eq!(creds["docker.io"].username.as_deref(), Some("u"));
        assert_eq!(creds["docker.io"].password.as_deref(), Some("p"));

        let private = plan_from("ghcr.io/org/base:1", Some(spec_config.clone()));
        let config = plan_config_over(&private, default()).unwrap();
        let creds = pull_credentials_from(&private, &config).unwrap();
        assert_eq!(creds["ghcr.io"].username.as_deref(), Some("bot"));
        assert_eq!(creds["ghcr.io"].password.as_deref(), Some("spec-token"));
        // Registries the spec's file does not name fall back to the user's config.
        let hub_with_spec = plan_from("python:3.11-slim", Some(spec_config));
        let creds = pull_credentials_from(
            &hub_with_spec,
            &plan_config_over(&hub_with_spec, default()).unwrap(),
        )
        .unwrap();
        assert_eq!(creds["docker.io"].username.as_deref(), Some("u"));

        // A registry_config that does not exist is an error naming the file, not silence.
        let missing = plan_from("python:3.11-slim", Some(dir.path().join("nope.json")));
        let err = plan_config_over(&missing, default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope.json"), "{err}");
    }
}
