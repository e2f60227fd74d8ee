//! Helpers for tests/remote_builder/: the real `union sandbox start` binary as the image
//! builder server (its engine from tests/setup/docker.sh), and reporters that collect events.

use std::sync::Mutex;

use union_image::build::{BuildError, BuildEvent, BuildReporter, Outcome};

/// The flytekit the fixtures pin.
pub const FLYTEKIT: &str = "1.16.31";

/// Records everything a build reports.
#[derive(Default)]
pub struct Collect {
    pub events: Mutex<Vec<(String, BuildEvent)>>,
    pub finished: Mutex<Vec<(String, Result<Outcome, String>)>>,
}

impl BuildReporter for Collect {
    fn event(&self, image: &str, event: &BuildEvent) {
        self.events
            .lock()
            .unwrap()
            .push((image.to_string(), event.clone()));
    }
    fn finished(&self, image: &str, result: Result<&Outcome, &BuildError>) {
        self.finished.lock().unwrap().push((
            image.to_string(),
            result.cloned().map_err(|e| e.to_string()),
        ));
    }
}

impl Collect {
    /// Every log line, joined.
    pub fn log_text(&self) -> String {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, e)| match e {
                BuildEvent::Log { line, .. } => Some(line.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Names of the steps reported done.
    pub fn steps_done(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, e)| match e {
                BuildEvent::StepDone { step, .. } => Some(step.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Require the test engine, registry and base image. Unlike `build::ensure_engine`, this never
/// points this process's DOCKER_HOST at the engine: only the sandbox server gets it; clients here
/// must work without one.
pub fn ensure_infra() {
    super::require_docker_infra();
}

/// A bollard client for the test engine (explicit socket; this process has no DOCKER_HOST).
pub async fn test_docker() -> bollard::Docker {
    bollard::Docker::connect_with_unix(
        "/run/union-test/docker.sock",
        120,
        bollard::API_DEFAULT_VERSION,
    )
    .unwrap()
    .negotiate_version()
    .await
    .unwrap()
}

/// Run `sh -c script` in a new container of `image` on the test engine; (exit code, output).
pub async fn run_sh(image: &str, script: &str) -> (i64, String) {
    let body = bollard::models::ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec!["sh".into(), "-c".into()]),
        cmd: Some(vec![script.to_string()]),
        ..Default::default()
    };
    super::build::run_container(&test_docker().await, body).await
}
