//! The one image pipeline `union build`, `union register` and `union run --remote` share: from the
//! ImageSpecs that tasks use to images that exist in their registries.
//!
//! 1. [`plan`]: every spec gets a [`BuildPlan`] (Dockerfile and context), or is marked for the
//!    backend's builder (`builder="union"`); the plan's image name must be the one the caller
//!    computed for serialization (a file that changed in between would otherwise register a tag
//!    that is never built).
//! 2. [`describe`]: what `--dry-run` shows: each image, whether it exists, its Dockerfile.
//! 3. [`ensure`]: check every image in its registry first (one HEAD each, no engine needed when
//!    nothing is missing); build and push what is missing through the Docker engine, at most
//!    `jobs` at a time, nested bases first. An existence check that cannot tell stops
//!    everything unless the caller allows it. Specs for the backend's builder (`plan.remote`)
//!    are the caller's to send (it holds the backend connection; see `union_image::remote`).
//!
//! Progress goes to one [`BuildReporter`]; nothing here prints.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::build::{
    BuildAllOptions, BuildError, BuildReporter, Builder, ExistenceCheck, Outcome, RegistryExistence,
};
use crate::dockerfile::{self, BuildPlan, BuildSettings, PlanError};
use crate::remote::RemoteBuildError;
use crate::{ImageSpec, TagContext};

/// One image a command needs: the spec, the name computed for it (what tasks reference), and who
/// uses it (for messages).
#[derive(Debug, Clone)]
pub struct Job {
    pub spec: ImageSpec,
    pub name: String,
    pub users: Vec<String>,
}

/// How images are made; one set of options for every command.
#[derive(Debug, Clone)]
pub struct Options {
    /// The base image for specs without one, and the flytekit pinned into images.
    pub settings: BuildSettings,
    /// Build and push even when an image exists (`--force`; per spec `force_push()`).
    pub force: bool,
    /// Push images that name a registry (`FLYTE_PUSH_IMAGE_SPEC`).
    pub push: bool,
    /// Distinct images built at once (`--jobs`, `UNION_BUILD_JOBS`).
    pub jobs: usize,
    /// Go on when an image's existence cannot be determined (`--allow-unverified-images`).
    pub allow_unverified: bool,
    /// The builder for specs that name none (`union.imageBuilder` in the config).
    pub default_builder: Option<String>,
}

/// The default number of images built at once: `UNION_BUILD_JOBS`, else 2 (builds are CPU-,
/// disk- and network-bound; two overlap one's push with another's install).
pub fn default_jobs() -> usize {
    std::env::var(crate::ENV_BUILD_JOBS)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(2)
}

/// What [`plan`] decided.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Built here, through the Docker engine (deduplicated by image name).
    pub local: Vec<BuildPlan>,
    /// Built by the backend's builder.
    pub remote: Vec<Job>,
    /// Where relative paths in specs are resolved, and the loaded modules for source copies.
    pub ctx: TagContext,
}

/// Does this spec go to the backend's builder? Its `builder` is `union`/`unionai`, or it names
/// none (flytekit fills in `default`/`envd` then) and the config says `union.imageBuilder: union`.
pub fn is_remote(spec: &ImageSpec, default_builder: Option<&str>) -> bool {
    let unspecified = matches!(
        spec.builder.as_deref().map(str::trim),
        None | Some("") | Some("default") | Some("envd")
    );
    if unspecified {
        let mut s = spec.clone();
        s.builder = None;
        return crate::remote::wants_remote(&s, default_builder);
    }
    crate::remote::wants_remote(spec, None)
}

/// Why images could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A spec cannot be turned into a build.
    #[error("{source} (used by {users})")]
    Plan {
        users: String,
        #[source]
        source: PlanError,
    },
    /// A file changed between computing the tag and planning the build (flytekit's guard).
    #[error("ImageSpec `{spec}` changed while running: its image was {before} and is now {after}")]
    Changed {
        spec: String,
        before: String,
        after: String,
    },
    /// Building, pushing or checking through the engine or a registry failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A spec cannot be sent to the backend's builder.
    #[error(transparent)]
    Remote(#[from] RemoteBuildError),
    /// Specs want the backend's builder, and there is no backend to ask.
    #[error("ImageSpec `{spec}` is built by the backend (builder=\"union\"), and this command talks to none")]
    NoBackend { spec: String },
    /// An image given as a URI does not exist.
    #[error(
        "image {image} (given with --image or the config's images) does not exist in its registry"
    )]
    GivenMissing { image: String },
}

impl union_diagnostics::Hint for ImageError {
    fn hints(&self) -> Vec<String> {
        match self {
            ImageError::Plan {
                source: PlanError::Unsupported { .. },
                ..
            } => vec!["see docs/images.md for what the Docker builder supports".into()],
            ImageError::Plan { .. } => Vec::new(),
            ImageError::Changed { .. } => vec![
                "a requirements or source file changed during the run; run the command again"
                    .into(),
            ],
            ImageError::Build(e) => union_diagnostics::Hint::hints(e),
            ImageError::Remote(e) => union_diagnostics::Hint::hints(e),
            ImageError::NoBackend { .. } => vec![
                "`union register` or `union run --remote` builds it on the backend; `union build` builds images with a local Docker engine".into(),
            ],
            ImageError::GivenMissing { .. } => vec![
                "push it first, build it (`union build spec.yaml` for an ImageSpec), or fix the name"
                    .into(),
            ],
        }
    }
    fn detail(&self) -> Option<String> {
        match self {
            ImageError::Build(e) => e.output().map(str::to_string),
            _ => None,
        }
    }
}

/// Plan every job (see the module docs). `ctx` resolves relative paths and knows the loaded
/// modules for `source_copy_mode`.
pub fn plan(jobs: &[Job], ctx: &TagContext, options: &Options) -> Result<Plan, ImageError> {
    let mut out = Plan {
        local: Vec::new(),
        remote: Vec::new(),
        ctx: ctx.clone(),
    };
    for job in jobs {
        if is_remote(&job.spec, options.default_builder.as_deref()) {
            if !out.remote.iter().any(|j| j.name == job.name) {
                out.remote.push(job.clone());
            }
            continue;
        }
        let plan = dockerfile::plan(&job.spec, ctx, &options.settings).map_err(|source| {
            ImageError::Plan {
                users: job.users.join(", "),
                source,
            }
        })?;
        if plan.image_name != job.name {
            return Err(ImageError::Changed {
                spec: job.spec.name.clone(),
                before: job.name.clone(),
                after: plan.image_name,
            });
        }
        if !out.local.iter().any(|p| p.image_name == plan.image_name) {
            out.local.push(plan);
        }
    }
    Ok(out)
}

/// Every plan with its nested bases, bases first, each image once.
pub fn with_bases(plans: &[BuildPlan]) -> Vec<&BuildPlan> {
    fn collect<'a>(p: &'a BuildPlan, all: &mut Vec<&'a BuildPlan>) {
        if let Some(b) = p.base.as_deref() {
            collect(b, all);
        }
        if !all.iter().any(|q| q.image_name == p.image_name) {
            all.push(p);
        }
    }
    let mut all = Vec::new();
    for p in plans {
        collect(p, &mut all);
    }
    all
}

/// Whether an image exists, as a dry run shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existence {
    Yes,
    No,
    /// The check could not tell; the reason.
    Unknown(String),
}

/// For `--dry-run`: every locally built image (bases included) and whether it exists.
pub async fn describe(plan: &Plan) -> Vec<(&BuildPlan, Existence)> {
    let all = with_bases(&plan.local);
    let existence = match RegistryExistence::for_plans(&plan.local, Builder::connect().await.ok()) {
        Ok(e) => e,
        Err(e) => {
            let why = e.to_string();
            return all
                .into_iter()
                .map(|p| (p, Existence::Unknown(why.clone())))
                .collect();
        }
    };
    let mut out = Vec::new();
    for p in all {
        let e = match existence.exists(&p.image_name).await {
            Ok(true) => Existence::Yes,
            Ok(false) => Existence::No,
            Err(BuildError::Existence { message, .. }) => Existence::Unknown(message),
            Err(e) => Existence::Unknown(e.to_string()),
        };
        out.push((p, e));
    }
    out
}

/// What [`ensure`] did.
#[derive(Debug, Clone, Default)]
pub struct Done {
    /// Each image (bases included) and what happened to it, in the order of the plans.
    pub images: Vec<(String, Outcome)>,
    /// Existence checks that could not tell, gone on with (`allow_unverified`): image, reason.
    pub unverified: Vec<(String, String)>,
    /// Remote images whose reference differs from the computed name (the backend's default
    /// registry in front): computed name → what tasks must use.
    pub renamed: HashMap<String, String>,
}

impl Done {
    /// How many images were built.
    pub fn built(&self) -> usize {
        self.images
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Built { .. }))
            .count()
    }
}

/// Make every planned local image exist (see the module docs). Remote jobs must have been made
/// sure of by the caller, which passes a plan without them; a plan that still has some fails
/// with [`ImageError::NoBackend`].
pub async fn ensure(
    plan: &Plan,
    options: &Options,
    reporter: &dyn BuildReporter,
) -> Result<Done, ImageError> {
    let mut done = Done::default();
    if let Some(job) = plan.remote.first() {
        return Err(ImageError::NoBackend {
            spec: job.spec.name.clone(),
        });
    }
    if plan.local.is_empty() {
        return Ok(done);
    }

    // Decide first, with cheap registry requests, so that no engine is needed when nothing is
    // missing (images without a registry live in the engine: it is asked about them).
    let engine = if plan
        .local
        .iter()
        .any(|p| !crate::build::has_registry(&p.image_name))
    {
        Some(Builder::connect().await?)
    } else {
        None
    };
    let mut existence = RegistryExistence::for_plans(&plan.local, engine)?;
    let mut missing: Vec<BuildPlan> = Vec::new();
    for p in &plan.local {
        reporter.started(&p.image_name);
        match existence.exists(&p.image_name).await {
            Ok(true) if !(options.force || p.force) => {
                reporter.finished(&p.image_name, Ok(&Outcome::Exists));
                done.images.push((p.image_name.clone(), Outcome::Exists));
            }
            Ok(_) => missing.push(p.clone()),
            Err(BuildError::Existence { image, message }) if options.allow_unverified => {
                // flytekit's behaviour, on request: assume it exists.
                reporter.finished(&image, Ok(&Outcome::Exists));
                done.unverified.push((image.clone(), message));
                done.images.push((image, Outcome::Exists));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if missing.is_empty() {
        return Ok(done);
    }
    let builder = match existence.engine.clone() {
        Some(b) => b,
        None => Builder::connect().await?,
    };
    existence.engine = Some(builder.clone());
    let build_options = BuildAllOptions {
        force: options.force,
        push: options.push,
        concurrency: options.jobs.max(1),
    };
    let results = builder
        .build_all(&missing, &build_options, &existence, reporter)
        .await;
    for (image, r) in results {
        done.images.push((image, r?));
    }
    Ok(done)
}

/// Check images given as URIs (`--image URI`): they must exist like built ones. Returns the
/// images whose existence could not be determined (gone on with when `allow_unverified`).
pub async fn check_given(
    images: &[String],
    allow_unverified: bool,
) -> Result<Vec<(String, String)>, ImageError> {
    use union_registry::{ImageReference, ImageStatus, RegistryClient};
    let mut unverified = Vec::new();
    if images.is_empty() {
        return Ok(unverified);
    }
    let registry = RegistryClient::builder()
        .build()
        .map_err(|e| BuildError::Credentials {
            image: images[0].clone(),
            message: e.to_string(),
        })?;
    for image in images {
        let reference = ImageReference::parse(image).map_err(|e| BuildError::Existence {
            image: image.clone(),
            message: format!("not an image reference: {e}"),
        })?;
        match registry.check(&reference).await {
            ImageStatus::Exists { .. } => {}
            ImageStatus::Missing => {
                return Err(ImageError::GivenMissing {
                    image: image.clone(),
                })
            }
            ImageStatus::Unknown { reason } if allow_unverified => {
                unverified.push((image.clone(), reason.to_string()))
            }
            ImageStatus::Unknown { reason } => {
                return Err(BuildError::Existence {
                    image: image.clone(),
                    message: reason.to_string(),
                }
                .into())
            }
        }
    }
    Ok(unverified)
}

/// Where a spec's relative paths are resolved: flytekit resolves them against the working
/// directory, so that is used whenever the files are there; when they are not but are under the
/// project root (running from a parent directory, where flytekit would fail), the project root
/// is used. The file contents, not their paths, go into the tag, so tags are the same.
pub fn spec_base_dir<'a>(
    specs: impl Iterator<Item = &'a ImageSpec>,
    cwd: &std::path::Path,
    root: &std::path::Path,
) -> PathBuf {
    fn paths(s: &ImageSpec, out: &mut Vec<String>) {
        out.extend(s.requirements.iter().filter(|r| !r.is_empty()).cloned());
        out.extend(s.copy.iter().flatten().cloned());
        out.extend(s.source_root.iter().cloned());
        if let Some(crate::spec::BaseImage::Spec(b)) = &s.base_image {
            paths(b, out);
        }
    }
    let mut rel = Vec::new();
    for s in specs {
        paths(s, &mut rel);
    }
    let rel: Vec<&String> = rel
        .iter()
        .filter(|p| !std::path::Path::new(p.as_str()).is_absolute())
        .collect();
    let all_in = |dir: &std::path::Path| rel.iter().all(|p| dir.join(p.as_str()).exists());
    if rel.is_empty() || all_in(cwd) || !all_in(root) {
        cwd.to_path_buf()
    } else {
        root.to_path_buf()
    }
}
