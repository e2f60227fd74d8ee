//! Making sure every image a registration references exists in its registry before any RPC.
//!
//! Unlike flytekit, an existence check that cannot tell (registry down, credentials refused, 5xx)
//! stops everything with the reason, unless the user opts in with `--allow-unverified-images`.
//! Missing images are built and pushed through the Docker engine; identical specs build once.
//! The image a task references is exactly the one pushed: the build plan's name is checked
//! against the name used for serialization.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::config::Settings;
use crate::diagnostics::Diagnostic;
use crate::image::build::{
    BuildAllOptions, BuildError, BuildEvent, BuildReporter, Builder, ExistenceCheck, Outcome,
    RegistryExistence,
};
use crate::image::dockerfile::{self, BuildPlan, BuildSettings, PlanError};
use crate::image::TagContext;
use crate::register::{Loaded, Progress};
use crate::registry::{ImageReference, ImageStatus, RegistryClient};

/// Images given as URIs (`--image URI`, `--image NAME=URI`, the config's `images`): they must
/// exist, like the images ImageSpecs build.
pub fn given_images(opts: &super::PlanOptions) -> Vec<String> {
    let built: Vec<&str> = opts.yaml_images.iter().map(|y| y.name.as_str()).collect();
    let mut out: Vec<String> = opts
        .default_image
        .iter()
        .chain(opts.images.values())
        .filter(|i| !built.contains(&i.as_str()))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Check that every image given as a URI exists in its registry (Docker Hub for names without
/// one), before anything is uploaded or registered.
fn check_given_images(
    rt: &tokio::runtime::Runtime,
    opts: &ImageOptions,
    progress: &Progress,
) -> Result<(), Diagnostic> {
    if opts.given.is_empty() {
        return Ok(());
    }
    let registry = RegistryClient::builder()
        .build()
        .map_err(|e| Diagnostic::new(format!("cannot set up the registry client: {e}")))?;
    for image in &opts.given {
        let reference = ImageReference::parse(image).map_err(|e| {
            Diagnostic::usage(format!("--image {image}: not an image reference: {e}"))
        })?;
        match rt.block_on(registry.check(&reference)) {
            ImageStatus::Exists { .. } => progress.item(image, "exists"),
            ImageStatus::Missing => {
                return Err(Diagnostic::new(format!(
                    "image {image} (given with --image or the config's images) does not exist in its registry"
                ))
                .hint("nothing was registered. Push it first, build it (`union build spec.yaml` for an ImageSpec), or fix the name"))
            }
            ImageStatus::Unknown { reason } if opts.allow_unverified => progress.warn(&format!(
                "cannot tell whether image {image} exists: {reason}; registering anyway (--allow-unverified-images)"
            )),
            ImageStatus::Unknown { reason } => {
                return Err(Diagnostic::new(format!(
                    "cannot tell whether image {image} (given with --image) exists: {reason}"
                ))
                .hint("nothing was registered. Fix the registry access (docker login, or check the registry is up), or pass --allow-unverified-images to register anyway"))
            }
        }
    }
    Ok(())
}

/// How images are handled by register / run --remote.
#[derive(Debug, Clone, Default)]
pub struct ImageOptions {
    /// Base image for specs that name none (flag > env UNION_BASE_IMAGE > config union.baseImage).
    pub base_image: Option<String>,
    /// Register even when an image's existence cannot be determined (flytekit's old behaviour).
    pub allow_unverified: bool,
    /// Images given as URIs, checked like built ones (see [`given_images`]).
    pub given: Vec<String>,
}

/// The base image for ImageSpecs without one.
pub fn base_image(opts: &ImageOptions, settings: &Settings) -> String {
    opts.base_image
        .clone()
        .filter(|b| !b.is_empty())
        .or_else(|| settings.base_image.clone())
        .unwrap_or_else(|| dockerfile::FLYTEKIT_DEFAULT_BASE_IMAGE.to_string())
}

/// Build plans for every planned image (nested bases included in each plan).
pub fn plans(
    loaded: &Loaded,
    opts: &ImageOptions,
    settings: &Settings,
) -> Result<Vec<BuildPlan>, Diagnostic> {
    let mut ctx = TagContext::new(&loaded.base_dir);
    ctx.loaded_modules = loaded.loaded_modules.clone();
    let bs = BuildSettings {
        default_base_image: base_image(opts, settings),
        flytekit_version: loaded.flytekit_version.clone(),
    };
    let mut out: Vec<BuildPlan> = Vec::new();
    for img in &loaded.images {
        if is_remote(&img.spec, settings) {
            continue;
        }
        let plan =
            dockerfile::plan(&img.spec, &ctx, &bs).map_err(|e| plan_diagnostic(e, &img.tasks))?;
        if plan.image_name != img.name {
            // A file changed between computing the tag and planning the build (flytekit's guard).
            return Err(Diagnostic::new(format!(
                "ImageSpec `{}` changed while registering: its image was {} and is now {}",
                img.spec.name, img.name, plan.image_name
            ))
            .hint("a requirements or source file changed during the run; run the command again"));
        }
        if !out.iter().any(|p| p.image_name == plan.image_name) {
            out.push(plan);
        }
    }
    Ok(out)
}

fn plan_diagnostic(e: PlanError, tasks: &[String]) -> Diagnostic {
    let d = Diagnostic::new(format!("{e} (used by {})", tasks.join(", ")));
    match e {
        PlanError::Unsupported { .. } => {
            d.hint("see docs/images.md for what the Docker builder supports")
        }
        _ => d,
    }
}

/// Does the reference name a registry host (`host.tld/...`, `host:port/...`, `localhost/...`)?
pub fn image_has_registry(image: &str) -> bool {
    match image.split_once('/') {
        Some((first, _)) => first.contains('.') || first.contains(':') || first == "localhost",
        None => false,
    }
}

/// Progress lines for builds: one line when a build starts and ends; steps with --verbose.
struct ProgressReporter<'a> {
    progress: &'a Progress,
    steps: Mutex<BTreeMap<String, usize>>,
}

impl BuildReporter for ProgressReporter<'_> {
    fn started(&self, image: &str) {
        self.progress.item(image, "checking");
    }
    fn event(&self, image: &str, event: &BuildEvent) {
        if let BuildEvent::StepStarted {
            step,
            cached: false,
        } = event
        {
            self.progress.item(image, &format!("running {step}"));
        }
        if let BuildEvent::StepDone { step, cached, .. } = event {
            let mut s = self.steps.lock().unwrap_or_else(|p| p.into_inner());
            *s.entry(image.to_string()).or_default() += 1;
            self.progress.item(
                image,
                &format!("{}{}", if *cached { "CACHED " } else { "" }, step),
            );
        }
    }
    fn finished(&self, image: &str, result: Result<&Outcome, &BuildError>) {
        match result {
            Ok(Outcome::Exists) => self.progress.item(image, "exists"),
            Ok(Outcome::Built { pushed, duration }) => self.progress.note(&format!(
                "  {image}: built{} in {:.1}s",
                if *pushed { " and pushed" } else { "" },
                duration.as_secs_f64()
            )),
            Err(_) => {}
        }
    }
}

/// Turn a build error into a diagnostic (the failing step's output as detail).
pub fn build_diagnostic(e: BuildError) -> Diagnostic {
    let mut d = Diagnostic::new(e.to_string());
    if let Some(output) = e.output() {
        d = d.detail(output.to_string());
    }
    if let Some(h) = e.hint() {
        d = d.hint(h);
    }
    match e {
        BuildError::Unreachable { .. } => {
            d.hint("start a Docker engine (with BuildKit) or set DOCKER_HOST; or use builder=\"union\" to build on the backend")
        }
        BuildError::Existence { .. } => d.hint(
            "nothing was registered. Fix the registry access (docker login, or check the registry is up), or pass --allow-unverified-images to register anyway",
        ),
        BuildError::Push { .. } => d.hint("check that you can push there (docker login) and that the registry is up"),
        _ => d,
    }
}

/// Does this spec go to the backend's image builder? Its `builder` is `union`/`unionai`, or it
/// names none (flytekit fills in `default`/`envd` then) and the config says `union.imageBuilder: union`.
pub fn is_remote(spec: &crate::image::ImageSpec, settings: &Settings) -> bool {
    let unspecified = matches!(
        spec.builder.as_deref().map(str::trim),
        None | Some("") | Some("default") | Some("envd")
    );
    if unspecified {
        let mut s = spec.clone();
        s.builder = None;
        return crate::image::remote::wants_remote(&s, settings.image_builder.as_deref());
    }
    crate::image::remote::wants_remote(spec, None)
}

/// Images the backend builds (`builder="union"`): ask it, stream its logs, and use the
/// fully-qualified image it returns. Needs no Docker engine here.
fn ensure_remote(
    rt: &tokio::runtime::Runtime,
    admin: &crate::admin::AdminClient,
    loaded: &mut Loaded,
    settings: &Settings,
    opts: &ImageOptions,
    progress: &Progress,
) -> Result<usize, Diagnostic> {
    use crate::image::remote::client::RemoteBuildOptions;
    use crate::image::remote::{ensure_remote_images, RemoteBuilderClient};
    let remote: Vec<usize> = (0..loaded.images.len())
        .filter(|&i| is_remote(&loaded.images[i].spec, settings))
        .collect();
    if remote.is_empty() {
        return Ok(0);
    }
    progress.phase(&format!(
        "Building {} image(s) on {}",
        remote.len(),
        settings.endpoint
    ));
    let client = RemoteBuilderClient::from_channel(admin.channel(), &settings.endpoint);
    let specs: Vec<crate::image::ImageSpec> = remote
        .iter()
        .map(|&i| loaded.images[i].spec.clone())
        .collect();
    let mut ctx = TagContext::new(&loaded.base_dir);
    ctx.loaded_modules = loaded.loaded_modules.clone();
    let options = RemoteBuildOptions {
        force: false,
        flytekit_version: loaded.flytekit_version.clone(),
        default_base_image: opts
            .base_image
            .clone()
            .or_else(|| settings.base_image.clone()),
        ..Default::default()
    };
    let reporter = ProgressReporter {
        progress,
        steps: Mutex::new(BTreeMap::new()),
    };
    let done = rt
        .block_on(ensure_remote_images(
            &client, &specs, &ctx, &options, &reporter,
        ))
        .map_err(|e| {
            let mut d = Diagnostic::new(e.to_string());
            if let Some(out) = e.output() {
                d = d.detail(out.to_string());
            }
            d.hint("nothing was registered")
        })?;
    let mut built = 0;
    for r in &done {
        if r.built {
            built += 1;
        }
        for img in loaded.images.iter_mut() {
            if img.name == r.image_name {
                // flytekit's union builder maps the tag to the real name; tasks use that.
                img.name = r.fully_qualified.clone();
            }
        }
    }
    progress.done(&format!(
        "{built} built, {} already there",
        done.len() - built
    ));
    Ok(remote.len())
}

/// Check every image; build and push what is missing (locally through the Docker engine, or on
/// the backend for `builder="union"`). Returns (built, existed).
pub fn ensure_images(
    rt: &tokio::runtime::Runtime,
    admin: &crate::admin::AdminClient,
    loaded: &mut Loaded,
    settings: &Settings,
    opts: &ImageOptions,
    progress: &Progress,
) -> Result<(usize, usize), Diagnostic> {
    check_given_images(rt, opts, progress)?;
    if loaded.images.is_empty() {
        return Ok((0, 0));
    }
    let remote = ensure_remote(rt, admin, loaded, settings, opts, progress)?;
    if remote == loaded.images.len() {
        return Ok((0, remote));
    }
    let plans: Vec<BuildPlan> = plans(loaded, opts, settings)?;
    progress.phase(&format!("Checking {} image(s)", plans.len()));
    crate::process::test_pause_point("checking-images");
    let mut existence = RegistryExistence::for_plans(&plans, None).map_err(build_diagnostic)?;

    // Decide first (cheap HEAD requests), so that no engine is needed when nothing is missing.
    let mut missing: Vec<&BuildPlan> = Vec::new();
    let mut existed = 0;
    for p in &plans {
        let forced = p.force;
        match rt.block_on(existence.exists(&p.image_name)) {
            Ok(true) if !forced => {
                existed += 1;
                progress.item(&p.image_name, "exists");
            }
            Ok(_) => missing.push(p),
            Err(e) if opts.allow_unverified => {
                progress.warn(&format!(
                    "{e}; registering anyway (--allow-unverified-images)"
                ));
                existed += 1;
            }
            Err(e) => return Err(build_diagnostic(e)),
        }
    }
    if missing.is_empty() {
        progress.done(&format!("{existed} up to date, nothing to build"));
        return Ok((0, existed));
    }
    progress.done(&format!("{} to build, {existed} up to date", missing.len()));
    progress.phase(&format!("Building {} image(s)", missing.len()));
    crate::process::test_pause_point("building-images");
    let builder = rt.block_on(Builder::connect()).map_err(build_diagnostic)?;
    existence.engine = Some(builder.clone());
    let todo: Vec<BuildPlan> = missing.into_iter().cloned().collect();
    let options = BuildAllOptions {
        force: false,
        push: crate::image::spec::push_from_env(),
        concurrency: 2,
    };
    let reporter = ProgressReporter {
        progress,
        steps: Mutex::new(BTreeMap::new()),
    };
    let results = rt.block_on(builder.build_all(&todo, &options, &existence, &reporter));
    let mut built = 0;
    for (_, r) in results {
        match r {
            Ok(Outcome::Built { .. }) => built += 1,
            Ok(Outcome::Exists) => existed += 1,
            Err(e) => return Err(build_diagnostic(e)),
        }
    }
    progress.done(&format!("{built} built and pushed"));
    Ok((built, existed))
}

/// For --dry-run: each image's name, whether it exists, and the Dockerfile it would build.
pub fn describe(
    rt: &tokio::runtime::Runtime,
    loaded: &Loaded,
    settings: &Settings,
    opts: &ImageOptions,
) -> Result<String, Diagnostic> {
    let plans = plans(loaded, opts, settings)?;
    let existence = RegistryExistence::for_plans(&plans, None).ok();
    let mut out = String::new();
    for img in loaded
        .images
        .iter()
        .filter(|i| is_remote(&i.spec, settings))
    {
        out.push_str(&format!(
            "  {}\n    ImageSpec {} used by {}\n    built by the backend's image builder (builder=\"union\")\n",
            img.name,
            img.spec.name,
            img.tasks.join(", ")
        ));
    }
    for p in &plans {
        let exists = match (&existence, image_has_registry(&p.image_name)) {
            (Some(check), true) => match rt.block_on(check.exists(&p.image_name)) {
                Ok(true) => "yes".to_string(),
                Ok(false) => "no (would build and push)".to_string(),
                Err(BuildError::Existence { message, .. }) => format!("unknown: {message}"),
                Err(e) => format!("unknown: {e}"),
            },
            (None, true) => "unknown: the registry client could not be set up".to_string(),
            _ => "unknown: no registry in the image name (local engine only)".to_string(),
        };
        let users = loaded
            .images
            .iter()
            .find(|i| i.name == p.image_name)
            .map(|i| i.tasks.join(", "))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {}\n    ImageSpec {} used by {users}\n    exists: {exists}\n    Dockerfile:\n",
            p.image_name, p.spec_name
        ));
        for line in p.dockerfile.lines() {
            out.push_str(&format!("      {line}\n"));
        }
    }
    Ok(out)
}
