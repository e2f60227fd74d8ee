//! Building and pushing [`BuildPlan`](crate::dockerfile::BuildPlan)s through the Docker Engine API (bollard): BuildKit builds
//! (`version=2`) without the docker CLI or buildx, progress reported through [`BuildReporter`],
//! failing steps returned with their own output, pushes with credentials from the Docker config.
//!
//! Specs with `pip_secret_mounts` are solved through BuildKit's gRPC control API on the same
//! engine (bollard's moby driver), whose session serves the secret files; the Engine API's HTTP
//! build cannot serve secrets through bollard. Such builds report no step-by-step progress, and a
//! failing step's error carries BuildKit's message but not the step's log.

mod credentials;
mod engine;
mod existence;
mod progress;
mod schedule;
mod secrets;

use std::time::Duration;

use futures_util::future::BoxFuture;

pub use credentials::{docker_config_credentials, registry_host, split_tag};
pub use engine::Builder;
pub use existence::{has_registry, RegistryExistence};
pub use progress::display_step;

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
