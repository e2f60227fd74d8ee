//! `union build PATH|spec.yaml`: build (and push) the ImageSpec images that tasks use, without
//! registering anything. `--dry-run` shows each image, whether it exists and its Dockerfile.
//!
//! The images are computed and built exactly as `register` computes and builds them (the same
//! loading, the same `union_image::pipeline`), so `union build` then `union register` builds
//! nothing twice.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::BuildArgs;
use crate::commands::common;
use crate::diagnostics::CliError;
use crate::discovery;
use crate::process;
use crate::python;
use crate::register::{self, ImageReporter, PlanOptions, Progress};
use union_image::build::Outcome;
use union_image::dockerfile::{BuildSettings, FLYTEKIT_DEFAULT_BASE_IMAGE};
use union_image::pipeline::{self, Job, Options};
use union_image::{HostEnv, ImageSpec, TagContext};
use union_package::CopyMode;

/// Settings `union build` runs with, resolved from flags, environment and config.
#[derive(Debug, Clone)]
pub struct BuildCommandSettings {
    /// Files, packages or spec YAML files.
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
                .unwrap_or_else(|| FLYTEKIT_DEFAULT_BASE_IMAGE.to_string()),
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

/// The jobs: ImageSpec YAML files, or every ImageSpec the tasks under the paths use (computed as
/// `register` computes them). Returns the jobs, the tag context and the flytekit version.
fn jobs(
    settings: &BuildCommandSettings,
    progress: &Progress,
) -> Result<(Vec<Job>, TagContext, String)> {
    let host = HostEnv::current();
    let cwd = std::env::current_dir()
        .map_err(|e| CliError::new("cannot read the current directory").caused_by(e))?;
    let yaml: Vec<&PathBuf> = settings.paths.iter().filter(|p| is_yaml(p)).collect();
    if !yaml.is_empty() {
        if yaml.len() != settings.paths.len() {
            return Err(CliError::usage(
                "give either ImageSpec YAML files or Python paths to `union build`, not both",
            )
            .into());
        }
        let ctx = TagContext::new(&cwd);
        let mut jobs = Vec::new();
        for path in yaml {
            let spec = ImageSpec::from_yaml_file(path, &host)?;
            let name = spec.image_name(&ctx)?;
            jobs.push(Job {
                spec,
                name,
                users: vec![path.display().to_string()],
            });
        }
        // The flytekit pinned into images comes from the user's environment when there is one.
        let flytekit_version = python::env::locate()
            .ok()
            .and_then(|env| local_flytekit_version(&env.prefix))
            .unwrap_or_default();
        return Ok((jobs, ctx, flytekit_version));
    }
    let set = discovery::modules_for_paths(&settings.paths)?;
    let code = register::load_code(set, progress)?;
    // Images as register computes them by default (a code archive carries the code).
    let opts = PlanOptions {
        project: String::new(),
        domain: String::new(),
        version: None,
        copy: CopyMode::Auto,
        destination_dir: "/root".into(),
        default_image: None,
        images: Default::default(),
        env: Default::default(),
        for_package: false,
        yaml_images: Vec::new(),
        service_account: None,
        raw_data_prefix: None,
        pull_check: Default::default(),
        default_registry: None,
        default_builder: None,
    };
    let (images, base_dir) = register::images_of(&code, &opts)?;
    code.session.finish();
    let mut ctx = TagContext::new(&base_dir);
    ctx.loaded_modules = code.modules.files.clone();
    let jobs = images
        .into_iter()
        .map(|i| Job {
            spec: i.spec,
            name: i.name,
            users: i.tasks,
        })
        .collect();
    Ok((jobs, ctx, code.flytekit_version))
}

fn run(settings: BuildCommandSettings) -> Result<ExitCode> {
    let verbosity = register::images::verbosity(settings.quiet, false);
    let progress = Progress::new(verbosity);
    let (jobs, ctx, flytekit_version) = jobs(&settings, &progress)?;
    if jobs.is_empty() {
        progress.warn("no task under the given paths uses an ImageSpec; nothing to build");
        return Ok(ExitCode::SUCCESS);
    }
    let options = Options {
        settings: BuildSettings {
            default_base_image: settings.base_image.clone(),
            flytekit_version,
        },
        force: settings.force,
        push: union_image::spec::push_from_env(),
        jobs: settings.jobs,
        allow_unverified: false,
        // `union build` builds every spec here, with the local engine (it talks to no backend).
        default_builder: None,
    };
    let local_jobs: Vec<Job> = jobs
        .iter()
        .cloned()
        .map(|mut j| {
            j.spec.builder = None;
            j
        })
        .collect();
    let plan = pipeline::plan(&local_jobs, &ctx, &options)?;
    let rt = common::runtime()?;
    if settings.dry_run {
        let users = |image: &str| {
            jobs.iter()
                .find(|j| j.name == image)
                .map(|j| j.users.clone())
                .unwrap_or_default()
        };
        process::write_data(&register::images::describe(&rt, &plan, &users))?;
        return Ok(ExitCode::SUCCESS);
    }
    let reporter = ImageReporter::new(verbosity);
    let done = rt.block_on(pipeline::ensure(&plan, &options, &reporter))?;
    drop(reporter);
    let mut out = String::new();
    for (image, outcome) in &done.images {
        let what = match outcome {
            Outcome::Exists => "exists",
            Outcome::Built { pushed: true, .. } => "built and pushed",
            Outcome::Built { pushed: false, .. } => "built",
        };
        out.push_str(&format!("{image}\t{what}\n"));
    }
    process::write_data(&out)?;
    Ok(ExitCode::SUCCESS)
}
