//! `union build PATH|spec.yaml`: build (and push) the ImageSpec images that tasks use, without
//! registering anything. `--dry-run` shows each image, whether it exists and its Dockerfile.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Result;

use crate::cli::BuildArgs;
use crate::diagnostics::Diagnostic;
use crate::discovery;
use crate::entity::ContainerImage;
use crate::image::build::{
    BuildAllOptions, BuildError, BuildEvent, BuildReporter, Builder, ExistenceCheck, NoReporter,
    Outcome, RegistryExistence,
};
use crate::image::dockerfile::{self, BuildPlan, BuildSettings, PlanError};
use crate::image::{HostEnv, ImageSpec, TagContext};
use crate::process;
use crate::python::{self, PythonSession};

/// Settings `union build` runs with, resolved from flags, environment and config.
#[derive(Debug, Clone)]
pub struct BuildCommandSettings {
    /// Files, packages or one spec YAML.
    pub paths: Vec<PathBuf>,
    /// Show, do not build.
    pub dry_run: bool,
    /// Build even when the image exists.
    pub force: bool,
    /// Base image for specs without one.
    pub base_image: String,
    /// No progress output.
    pub quiet: bool,
    /// Distinct images built at once.
    pub jobs: usize,
}

impl BuildCommandSettings {
    /// Flag > environment (`UNION_BASE_IMAGE`, via clap) > flytekit's default base image.
    pub fn resolve(args: BuildArgs) -> Self {
        BuildCommandSettings {
            paths: args.paths,
            dry_run: args.dry_run,
            force: args.force,
            base_image: args
                .base_image
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| dockerfile::FLYTEKIT_DEFAULT_BASE_IMAGE.to_string()),
            quiet: args.quiet,
            jobs: args.jobs.max(1),
        }
    }
}

/// Entry point for `union build`.
pub fn build(args: BuildArgs) -> Result<ExitCode> {
    run(BuildCommandSettings::resolve(args))
}

fn is_yaml(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml") | Some("yml")
    )
}

/// The flytekit version installed in the user's environment (`flytekit-X.dist-info`).
pub fn local_flytekit_version(prefix: &Path) -> Option<String> {
    let lib = prefix.join("lib");
    for entry in std::fs::read_dir(&lib).ok()?.flatten() {
        let site = entry.path().join("site-packages");
        let Ok(dir) = std::fs::read_dir(&site) else {
            continue;
        };
        for item in dir.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            if let Some(rest) = name.strip_prefix("flytekit-") {
                if let Some(version) = rest.strip_suffix(".dist-info") {
                    return Some(version.to_string());
                }
            }
        }
    }
    None
}

fn run(settings: BuildCommandSettings) -> Result<ExitCode> {
    let host = HostEnv::current();
    let cwd = std::env::current_dir()?;
    let mut ctx = TagContext::new(&cwd);

    let yaml: Vec<&PathBuf> = settings.paths.iter().filter(|p| is_yaml(p)).collect();
    let mut specs: Vec<ImageSpec> = Vec::new();
    let flytekit_version;
    if !yaml.is_empty() {
        if yaml.len() != settings.paths.len() {
            return Err(Diagnostic::usage(
                "give either ImageSpec YAML files or Python paths to `union build`, not both",
            )
            .into());
        }
        for path in yaml {
            specs.push(
                ImageSpec::from_yaml_file(path, &host)
                    .map_err(|e| Diagnostic::new(e.to_string()))?,
            );
        }
        // The flytekit pinned into images comes from the user's environment when there is one.
        flytekit_version = python::env::locate()
            .ok()
            .and_then(|env| local_flytekit_version(&env.prefix))
            .unwrap_or_default();
    } else {
        let set = discovery::modules_for_paths(&settings.paths)?;
        let env = python::env::locate()?;
        flytekit_version = local_flytekit_version(&env.prefix).unwrap_or_default();
        let session = PythonSession::start(env)?;
        let entities = session
            .discover(&set.root, &set.modules)
            .map_err(|e| e.into_diagnostic(session.env()))?;
        session.finish();
        for entity in &entities {
            if let Some(ContainerImage::Spec { spec }) = &entity.container_image {
                let spec = ImageSpec::from_bridge_json(spec, &host)
                    .map_err(|e| Diagnostic::new(format!("ImageSpec of {}: {e}", entity.name)))?;
                if !specs.contains(&spec) {
                    specs.push(spec);
                }
            }
        }
        if specs.is_empty() {
            eprintln!("no task under the given paths uses an ImageSpec; nothing to build");
            return Ok(ExitCode::SUCCESS);
        }
        // Relative ImageSpec paths: the working directory as flytekit, else the project root.
        ctx.base_dir = crate::register::spec_base_dir(specs.iter(), &cwd, &set.root);
    }

    let build_settings = BuildSettings {
        default_base_image: settings.base_image.clone(),
        flytekit_version,
    };
    let mut plans: Vec<BuildPlan> = Vec::new();
    for spec in &specs {
        let plan = dockerfile::plan(spec, &ctx, &build_settings).map_err(plan_diagnostic)?;
        if !plans.iter().any(|p| p.image_name == plan.image_name) {
            plans.push(plan);
        }
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if settings.dry_run {
        runtime.block_on(dry_run(&plans))?;
        return Ok(ExitCode::SUCCESS);
    }
    let builder = runtime
        .block_on(Builder::connect())
        .map_err(build_diagnostic)?;
    let options = BuildAllOptions {
        force: settings.force,
        push: crate::image::spec::push_from_env(),
        concurrency: settings.jobs,
    };
    let reporter: Box<dyn BuildReporter> = if settings.quiet {
        Box::new(NoReporter)
    } else if std::io::stderr().is_terminal() && !crate::config::in_ci() {
        Box::new(ProgressReporter::new())
    } else {
        Box::new(LineReporter)
    };
    let existence =
        RegistryExistence::for_plans(&plans, Some(builder.clone())).map_err(build_diagnostic)?;
    let results =
        runtime.block_on(builder.build_all(&plans, &options, &existence, reporter.as_ref()));
    drop(reporter);
    let mut out = String::new();
    let mut first_error = None;
    for (image, result) in results {
        match result {
            Ok(Outcome::Exists) => out.push_str(&format!("{image}\texists\n")),
            Ok(Outcome::Built { pushed, .. }) => out.push_str(&format!(
                "{image}\t{}\n",
                if pushed { "built and pushed" } else { "built" }
            )),
            Err(e) => {
                if first_error.is_none() {
                    first_error = Some(e);
                }
            }
        }
    }
    process::write_data(&out)?;
    match first_error {
        Some(e) => Err(build_diagnostic(e).into()),
        None => Ok(ExitCode::SUCCESS),
    }
}

async fn dry_run(plans: &[BuildPlan]) -> Result<()> {
    let existence = RegistryExistence::for_plans(plans, Builder::connect().await.ok())
        .map_err(build_diagnostic)?;
    let mut out = String::new();
    let mut all: Vec<&BuildPlan> = Vec::new();
    fn collect<'a>(p: &'a BuildPlan, all: &mut Vec<&'a BuildPlan>) {
        if let Some(b) = p.base.as_deref() {
            collect(b, all);
        }
        if !all.iter().any(|q| q.image_name == p.image_name) {
            all.push(p);
        }
    }
    for p in plans {
        collect(p, &mut all);
    }
    for plan in all {
        let exists = match existence.exists(&plan.image_name).await {
            Ok(true) => "yes".to_string(),
            Ok(false) => "no".to_string(),
            Err(e) => format!("unknown ({e})"),
        };
        out.push_str(&format!(
            "image: {}\nexists: {exists}\nplatform: {}\n",
            plan.image_name, plan.platform
        ));
        for s in &plan.secrets {
            out.push_str(&format!("secret: {} -> {}\n", s.id, s.target));
        }
        out.push_str("dockerfile:\n");
        for line in plan.dockerfile.lines() {
            out.push_str(&format!("  {line}\n"));
        }
        out.push('\n');
    }
    process::write_data(&out)?;
    Ok(())
}

fn plan_diagnostic(e: PlanError) -> Diagnostic {
    let d = Diagnostic::new(e.to_string());
    match e {
        PlanError::Unsupported { .. } => {
            d.hint("union builds images with Docker and uv only; see docs for supported fields")
        }
        _ => d,
    }
}

fn build_diagnostic(e: BuildError) -> Diagnostic {
    let mut d = Diagnostic::new(e.to_string());
    if let Some(output) = e.output() {
        d = d.detail(output.to_string());
    }
    if let Some(h) = e.hint() {
        d = d.hint(h);
    }
    match e {
        BuildError::Unreachable { .. } => d.hint(
            "start a Docker engine (with BuildKit) or point DOCKER_HOST at one, e.g. unix:///run/docker.sock",
        ),
        BuildError::Existence { .. } => {
            d.hint("check the registry and your credentials, or pass --force to build anyway")
        }
        _ => d,
    }
}

/// Plain progress lines on stderr (not a terminal, or CI).
struct LineReporter;

impl BuildReporter for LineReporter {
    fn started(&self, image: &str) {
        eprintln!("[{image}] checking");
    }
    fn event(&self, image: &str, event: &BuildEvent) {
        match event {
            BuildEvent::StepDone {
                step,
                cached,
                duration,
            } if !step.starts_with("[internal]") => {
                let how = if *cached {
                    "cached".to_string()
                } else {
                    duration
                        .map(|d| format!("{:.1}s", d.as_secs_f64()))
                        .unwrap_or_default()
                };
                eprintln!(
                    "[{image}] {} {how}",
                    crate::redact::mask_url_credentials(step)
                );
            }
            BuildEvent::Push { status, .. }
                if status.starts_with("Pushed") || status.contains("digest") =>
            {
                eprintln!("[{image}] push: {status}");
            }
            _ => {}
        }
    }
    fn finished(&self, image: &str, result: Result<&Outcome, &BuildError>) {
        match result {
            Ok(Outcome::Exists) => eprintln!("[{image}] exists, skipped"),
            Ok(Outcome::Built { duration, .. }) => {
                eprintln!("[{image}] done in {:.1}s", duration.as_secs_f64())
            }
            Err(_) => eprintln!("[{image}] failed"),
        }
    }
}

/// One spinner per image on a terminal.
struct ProgressReporter {
    multi: indicatif::MultiProgress,
    bars: Mutex<Vec<(String, indicatif::ProgressBar)>>,
}

impl ProgressReporter {
    fn new() -> Self {
        ProgressReporter {
            multi: indicatif::MultiProgress::new(),
            bars: Mutex::new(Vec::new()),
        }
    }

    fn bar(&self, image: &str) -> indicatif::ProgressBar {
        let mut bars = self.bars.lock().unwrap();
        if let Some((_, b)) = bars.iter().find(|(n, _)| n == image) {
            return b.clone();
        }
        let bar = self.multi.add(indicatif::ProgressBar::new_spinner());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {prefix} {wide_msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_prefix(image.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        bars.push((image.to_string(), bar.clone()));
        bar
    }
}

impl BuildReporter for ProgressReporter {
    fn started(&self, image: &str) {
        self.bar(image).set_message("checking");
    }
    fn event(&self, image: &str, event: &BuildEvent) {
        let bar = self.bar(image);
        match event {
            BuildEvent::StepStarted { step, .. } => {
                bar.set_message(crate::redact::mask_url_credentials(step).into_owned())
            }
            BuildEvent::Log { line, .. } => {
                bar.set_message(crate::redact::mask_url_credentials(line).into_owned())
            }
            BuildEvent::Push { status, .. } => bar.set_message(format!("push: {status}")),
            BuildEvent::StepDone { .. } => {}
        }
    }
    fn finished(&self, image: &str, result: Result<&Outcome, &BuildError>) {
        let bar = self.bar(image);
        let msg = match result {
            Ok(Outcome::Exists) => "exists, skipped".to_string(),
            Ok(Outcome::Built { pushed, duration }) => format!(
                "{} in {:.1}s",
                if *pushed { "built and pushed" } else { "built" },
                duration.as_secs_f64()
            ),
            Err(_) => "failed".to_string(),
        };
        bar.finish_with_message(msg);
    }
}
