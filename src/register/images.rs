//! The image step of `register` and `run --remote`: every image a registration references exists
//! in its registry before any registration call, through the pipeline `union build` uses too
//! (`union_image::pipeline`: one planner, one reporter, one concurrency setting).
//!
//! Unlike flytekit, an existence check that cannot tell (registry down, credentials refused, 5xx)
//! stops everything with the reason, unless the user opts in with `--allow-unverified-images`.

use union_client::{AdminClient, Settings};
use union_image::dockerfile::{BuildSettings, FLYTEKIT_DEFAULT_BASE_IMAGE};
use union_image::pipeline::{self, Job, Options};
use union_image::TagContext;

use super::{ImageReporter, Loaded, PlanOptions, Progress, RegisterError, Verbosity};

/// An ImageSpec given as `--image [NAME=]spec.yaml`: built like a task's, used by its name.
#[derive(Debug, Clone)]
pub struct YamlImage {
    pub spec: union_image::ImageSpec,
    pub name: String,
    pub path: std::path::PathBuf,
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
    /// Distinct images built at once.
    pub jobs: usize,
}

/// Images given as URIs (`--image URI`, `--image NAME=URI`, the config's `images`): they must
/// exist, like the images ImageSpecs build.
pub fn given_images(opts: &PlanOptions) -> Vec<String> {
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

/// The registry ImageSpecs without one go to when the backend is a union sandbox: its built-in
/// registry on the endpoint's port (`localhost:<port>` when the sandbox is on this machine, which
/// Docker speaks plain HTTP to without configuration). None for any other backend, or an
/// endpoint without a port. Not for a sandbox serving TLS (`--tls`): its registry then needs its
/// CA trusted by Docker and by the existence check, so such users name a registry themselves.
pub fn sandbox_registry(client: &AdminClient) -> Option<String> {
    if !client.is_sandbox() || !client.is_plaintext() {
        return None;
    }
    registry_of_endpoint(client.endpoint())
}

/// `host:port` of a registry on the same host and port as `endpoint` (`dns:///h:p`, `h:p`,
/// `http://h:p`, `[::1]:p`); loopback hosts become `localhost`.
fn registry_of_endpoint(endpoint: &str) -> Option<String> {
    let rest = endpoint.trim();
    let rest = rest.split_once("://").map_or(rest, |(_, r)| r);
    let authority = rest.trim_start_matches('/').split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
    let host = if loopback {
        "localhost".to_string()
    } else {
        host.to_ascii_lowercase()
    };
    let registry = format!("{host}:{port}");
    union_image::spec::validate_registry(&registry).then_some(registry)
}

/// The pipeline's options for these settings (the same for every command).
pub fn pipeline_options(
    opts: &ImageOptions,
    settings: &Settings,
    flytekit_version: &str,
) -> Options {
    Options {
        settings: BuildSettings {
            default_base_image: opts
                .base_image
                .clone()
                .filter(|b| !b.is_empty())
                .or_else(|| settings.base_image.clone())
                .unwrap_or_else(|| FLYTEKIT_DEFAULT_BASE_IMAGE.to_string()),
            flytekit_version: flytekit_version.to_string(),
        },
        force: false,
        push: union_image::spec::push_from_env(),
        jobs: opts.jobs.max(1),
        allow_unverified: opts.allow_unverified,
        default_builder: settings.image_builder.clone(),
    }
}

fn jobs(loaded: &Loaded) -> Vec<Job> {
    loaded
        .images
        .iter()
        .map(|i| Job {
            spec: i.spec.clone(),
            name: i.name.clone(),
            users: i.tasks.clone(),
        })
        .collect()
}

fn tag_context(loaded: &Loaded) -> TagContext {
    let mut ctx = TagContext::new(&loaded.base_dir);
    ctx.loaded_modules = loaded.loaded_modules.clone();
    ctx
}

/// The plan for a loaded project's images.
pub fn plan(
    loaded: &Loaded,
    opts: &ImageOptions,
    settings: &Settings,
) -> Result<pipeline::Plan, RegisterError> {
    let options = pipeline_options(opts, settings, &loaded.flytekit_version);
    Ok(pipeline::plan(
        &jobs(loaded),
        &tag_context(loaded),
        &options,
    )?)
}

/// Check every image; build and push what is missing (locally through the Docker engine, or by
/// union's remote builder on the backend for `builder="union"`, see [`super::union_builder`]).
/// Tasks then reference what the backend's builder returned.
pub fn ensure(
    rt: &tokio::runtime::Runtime,
    admin: &AdminClient,
    loaded: &mut Loaded,
    settings: &Settings,
    opts: &ImageOptions,
    progress: &Progress,
) -> Result<(), RegisterError> {
    let options = pipeline_options(opts, settings, &loaded.flytekit_version);
    for (image, reason) in rt.block_on(pipeline::check_given(&opts.given, opts.allow_unverified))? {
        progress.warn(&format!(
            "cannot tell whether image {image} exists: {reason}; going on (--allow-unverified-images)"
        ));
    }
    if loaded.images.is_empty() {
        return Ok(());
    }
    let plan = pipeline::plan(&jobs(loaded), &tag_context(loaded), &options)?;
    let count = plan.local.len() + plan.remote.len();
    progress.phase(&if plan.remote.is_empty() {
        format!("Checking {count} image(s)")
    } else {
        format!(
            "Checking {count} image(s), {} with the backend's image builder at {}",
            plan.remote.len(),
            settings.endpoint
        )
    });
    crate::process::test_pause_point("checking-images");
    let mut plan = plan;
    let mut renamed = std::collections::HashMap::new();
    if !plan.remote.is_empty() {
        let facts = loaded.session.union_builder_facts()?;
        let builder = super::union_builder::UnionBuilder {
            admin,
            settings,
            progress,
            facts: super::union_builder::Facts {
                python_version: facts.python_version,
                union_version: facts.union_version,
            },
        };
        renamed = rt.block_on(builder.ensure(&plan.remote, &plan.ctx))?;
        plan.remote.clear();
    }
    let reporter = ImageReporter::new(progress.verbosity());
    let mut done = rt.block_on(pipeline::ensure(&plan, &options, &reporter))?;
    drop(reporter);
    for (name, (real, built)) in &renamed {
        done.images.push((
            real.clone(),
            if *built {
                union_image::build::Outcome::Built {
                    pushed: true,
                    duration: std::time::Duration::ZERO,
                }
            } else {
                union_image::build::Outcome::Exists
            },
        ));
        if real != name {
            done.renamed.insert(name.clone(), real.clone());
        }
    }
    for (image, reason) in &done.unverified {
        progress.warn(&format!(
            "cannot tell whether image {image} exists: {reason}; registering anyway (--allow-unverified-images)"
        ));
    }
    for img in loaded.images.iter_mut() {
        if let Some(real) = done.renamed.get(&img.name) {
            // flytekit's union builder maps the tag to the real name; tasks use that.
            img.name = real.clone();
        }
    }
    let built = done.built();
    progress.done(&if built == 0 {
        format!("{} up to date, nothing to build", done.images.len())
    } else {
        format!(
            "{built} built, {} up to date",
            done.images.len().saturating_sub(built)
        )
    });
    Ok(())
}

/// The verbosity images are reported with for a command's flags.
pub fn verbosity(quiet: bool, verbose: bool) -> Verbosity {
    if quiet {
        Verbosity::Quiet
    } else if verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    }
}

/// What `--dry-run` shows of the images (for `register` and `build` alike): each image with who
/// uses it, its platform, whether it exists, its secrets and its Dockerfile.
pub fn describe(
    rt: &tokio::runtime::Runtime,
    plan: &pipeline::Plan,
    users: &dyn Fn(&str) -> Vec<String>,
) -> String {
    use std::fmt::Write as _;
    use union_image::pipeline::Existence;
    let mut out = String::new();
    for job in &plan.remote {
        let _ = writeln!(out, "image: {}", job.name);
        let _ = writeln!(
            out,
            "  ImageSpec: {} (used by {})",
            job.spec.name,
            job.users.join(", ")
        );
        let _ = writeln!(
            out,
            "  built by the backend's image builder (builder=\"union\")"
        );
    }
    for (p, exists) in rt.block_on(pipeline::describe(plan)) {
        let _ = writeln!(out, "image: {}", p.image_name);
        let who = users(&p.image_name);
        if who.is_empty() {
            let _ = writeln!(out, "  ImageSpec: {} (a base image)", p.spec_name);
        } else {
            let _ = writeln!(
                out,
                "  ImageSpec: {} (used by {})",
                p.spec_name,
                who.join(", ")
            );
        }
        let _ = writeln!(out, "  platform: {}", p.platform);
        let exists = match exists {
            Existence::Yes => "yes".to_string(),
            Existence::No => "no (would build and push)".to_string(),
            Existence::Unknown(why) => format!("unknown: {why}"),
        };
        let _ = writeln!(out, "  exists: {exists}");
        for s in &p.secrets {
            let _ = writeln!(out, "  secret: {} -> {}", s.id, s.target);
        }
        let _ = writeln!(out, "  Dockerfile:");
        for line in p.dockerfile.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::registry_of_endpoint;

    #[test]
    fn the_sandbox_registry_is_on_the_endpoints_port_and_loopback_is_localhost() {
        for (endpoint, registry) in [
            ("127.0.0.1:30080", Some("localhost:30080")),
            ("dns:///localhost:4000", Some("localhost:4000")),
            ("http://[::1]:30080", Some("localhost:30080")),
            ("0.0.0.0:30080", Some("localhost:30080")),
            ("dns:///sandbox.lan:30080", Some("sandbox.lan:30080")),
            ("localhost", None),
        ] {
            assert_eq!(
                registry_of_endpoint(endpoint).as_deref(),
                registry,
                "{endpoint}"
            );
        }
    }
}
