//! [`DockerRunner`]: one container per task attempt, the way flytepropeller runs a pod.
//!
//! Per attempt, a work directory `<work root>/<project>/<domain>/<execution>/<node>/<attempt>/`
//! holds `inputs.pb`, `task.pb`, `outputs/` (the output prefix, where flytekit writes
//! `outputs.pb` or `error.pb`), `raw/`, `checkpoint/` and `log.txt` (the container's stdout and
//! stderr). The execution's directory is bind-mounted read-write at the same absolute path, so the
//! task's template arguments (`{{.input}}`, `{{.outputPrefix}}`, ...) are plain paths and files
//! produced by one node (raw outputs) are readable by the next; extra directories (the blob store
//! holding fast-register archives, named by `file://` URLs in the task args) are mounted read-only,
//! also at their own paths. Flytekit in the image may run as another user: the attempt
//! directories are made world-writable.
//!
//! The image is pulled only when the engine does not have it (Kubernetes' `IfNotPresent`, the
//! default for tagged images), with credentials from the Docker config. Containers are removed
//! once they finish (in the background: the outcome does not wait for it); logs stay.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, KillContainerOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::attempt::{resources, AttemptPaths};
use super::{AttemptId, CancelToken, TaskFailure, TaskOutcome, TaskRequest, TaskRunner};
use union_idl::flyteidl::core::{task_template, TaskTemplate};
use union_image::build::{docker_config_credentials, registry_host, split_tag};

/// Label put on every task container, valued with the runner's work root (to find orphans).
pub const LABEL_SANDBOX: &str = "io.union.sandbox";
/// Label naming the execution a container belongs to.
pub const LABEL_EXECUTION: &str = "io.union.execution";
/// Label naming the sandbox process that made a container: a container with the work root's
/// label but another instance is an orphan, even when it appears after the restart (the engine
/// finishes a create or start a killed process had in flight).
pub const LABEL_INSTANCE: &str = "io.union.sandbox.instance";
/// How long an eager task's container has, after SIGTERM, to terminate what it started.
pub const EAGER_STOP_GRACE: Duration = Duration::from_secs(10);
/// File name of an attempt's log inside its work directory.
pub const LOG_FILE: &str = "log.txt";

/// Where the Docker runner keeps its files and what it mounts.
#[derive(Debug, Clone)]
pub struct DockerRunnerConfig {
    /// Root of the per-execution work directories.
    pub work_root: PathBuf,
    /// Host directories mounted read-only at the same path (e.g. the blob store).
    pub read_only_mounts: Vec<PathBuf>,
    /// How eager tasks reach the backend: environment for flytekit's `FlyteRemote`
    /// (`FLYTE_PLATFORM_URL`, ...) and files it names (its config, a CA, a client secret),
    /// mounted read-only. Eager containers share the host's network, where the backend listens.
    pub eager: EagerAccess,
    /// Where the secrets tasks ask for come from (None: a task asking for one fails).
    pub secrets: Option<std::sync::Arc<dyn super::secrets::SecretSource>>,
}

/// What an eager task's container gets to start executions on the backend, as flytepropeller's
/// default environment gives it to pods.
#[derive(Debug, Clone, Default)]
pub struct EagerAccess {
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// Host files mounted read-only: (on the host, in the container).
    pub files: Vec<(PathBuf, PathBuf)>,
}

/// Runs task attempts as containers on the engine at `DOCKER_HOST` (or the default socket).
pub struct DockerRunner {
    config: DockerRunnerConfig,
    endpoint: String,
    instance: String,
    docker: tokio::sync::Mutex<Option<Docker>>,
}

impl std::fmt::Debug for DockerRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerRunner")
            .field("endpoint", &self.endpoint)
            .field("config", &self.config)
            .finish()
    }
}

/// Keep path components and container names to a safe alphabet.
fn component(s: &str) -> String {
    let c: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if c.is_empty() {
        "_".into()
    } else {
        c
    }
}

/// The Docker endpoint the runner uses: `DOCKER_HOST`, else the default socket.
pub fn docker_endpoint() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into())
}

impl DockerRunner {
    /// A runner; the engine is contacted only when the first task runs.
    pub fn new(config: DockerRunnerConfig) -> Self {
        DockerRunner {
            config,
            endpoint: docker_endpoint(),
            instance: format!("{}{}", short_random(), short_random()),
            docker: tokio::sync::Mutex::new(None),
        }
    }

    /// The engine endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The work directory of an execution.
    pub fn execution_dir(
        &self,
        execution: &union_idl::flyteidl::core::WorkflowExecutionIdentifier,
    ) -> PathBuf {
        self.config
            .work_root
            .join(component(&execution.project))
            .join(component(&execution.domain))
            .join(component(&execution.name))
    }

    /// The work directory of one attempt.
    pub fn attempt_dir(&self, attempt: &AttemptId) -> PathBuf {
        self.execution_dir(&attempt.execution)
            .join(component(&attempt.node_id))
            .join(attempt.retry_attempt.to_string())
    }

    async fn connect(&self) -> Result<Docker, TaskFailure> {
        let mut guard = self.docker.lock().await;
        if let Some(d) = guard.as_ref() {
            return Ok(d.clone());
        }
        let no_engine = |e: bollard::errors::Error| {
            TaskFailure::system(
                "NoDockerEngine",
                format!(
                    "no Docker engine at {} ({e}); the sandbox runs every task in a container: start Docker or set DOCKER_HOST before `union sandbox start`",
                    self.endpoint
                ),
            )
        };
        let docker = Docker::connect_with_defaults().map_err(no_engine)?;
        docker.ping().await.map_err(no_engine)?;
        let docker = docker.negotiate_version().await.map_err(no_engine)?;
        *guard = Some(docker.clone());
        Ok(docker)
    }

    /// Kill and remove task containers a previous sandbox process left behind (after a restart):
    /// those of this work root made by another instance.
    pub async fn remove_orphans(&self) -> Result<usize, String> {
        let docker = self.connect().await.map_err(|f| f.message)?;
        let label = format!("{LABEL_SANDBOX}={}", self.config.work_root.display());
        let filters: HashMap<String, Vec<String>> = [("label".to_string(), vec![label])].into();
        let options = bollard::query_parameters::ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let list = docker
            .list_containers(Some(options))
            .await
            .map_err(|e| e.to_string())?;
        let mut n = 0;
        for c in list {
            let ours = c
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_INSTANCE))
                .is_some_and(|i| *i == self.instance);
            if ours {
                continue;
            }
            if let Some(id) = c.id {
                let _ = docker
                    .remove_container(
                        &id,
                        Some(RemoveContainerOptionsBuilder::new().force(true).build()),
                    )
                    .await;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn ensure_image(&self, docker: &Docker, image: &str) -> Result<(), TaskFailure> {
        let (_, tag) = split_tag(image);
        let always = !image.contains('@') && tag == "latest";
        if !always && docker.inspect_image(image).await.is_ok() {
            return Ok(());
        }
        let options = if image.contains('@') {
            CreateImageOptionsBuilder::new().from_image(image).build()
        } else {
            let (repo, tag) = split_tag(image);
            CreateImageOptionsBuilder::new()
                .from_image(repo)
                .tag(tag)
                .build()
        };
        let creds = docker_config_credentials(registry_host(image));
        let mut stream = docker.create_image(Some(options), None, creds);
        while let Some(item) = stream.next().await {
            let message = match item {
                Ok(info) => match info.error_detail.and_then(|d| d.message) {
                    Some(m) => m,
                    None => continue,
                },
                Err(e) => match e {
                    bollard::errors::Error::DockerResponseServerError { message, .. } => message,
                    bollard::errors::Error::DockerStreamError { error } => error,
                    other => other.to_string(),
                },
            };
            return Err(TaskFailure::system(
                "ErrImagePull",
                format!(
                    "failed to pull image `{image}` from {}: {message}",
                    registry_host(image)
                ),
            ));
        }
        Ok(())
    }

    async fn run_attempt(
        &self,
        request: &TaskRequest,
        cancel: &CancelToken,
    ) -> Result<TaskOutcome, TaskFailure> {
        let task: &TaskTemplate = &request.task;
        let Some(task_template::Target::Container(container)) = &task.target else {
            return Err(TaskFailure::user(
                "NotSupported",
                format!(
                    "task type `{}` has no container; the sandbox runs container tasks only",
                    task.r#type
                ),
            ));
        };
        if container.image.is_empty() {
            return Err(TaskFailure::user(
                "InvalidTask",
                "the task's container has no image",
            ));
        }
        let docker = self.connect().await?;
        if cancel.is_cancelled() {
            return Ok(TaskOutcome::Aborted);
        }
        let exec_dir = self.execution_dir(&request.attempt.execution);
        let dir = self.attempt_dir(&request.attempt);
        let mut paths = AttemptPaths::new(&dir);
        // flytepropeller hands each retry the checkpoint the previous attempt wrote.
        if let Some(prev) = request.attempt.retry_attempt.checked_sub(1) {
            let previous = AttemptId {
                retry_attempt: prev,
                ..request.attempt.clone()
            };
            paths.prev_checkpoint =
                Some(AttemptPaths::new(&self.attempt_dir(&previous)).checkpoint);
        }
        paths.prepare(&exec_dir, request).map_err(|e| {
            TaskFailure::system(
                "WorkDir",
                format!("cannot prepare the work directory `{}`: {e}", dir.display()),
            )
        })?;

        tokio::select! {
            r = self.ensure_image(&docker, &container.image) => r?,
            _ = cancel.cancelled() => return Ok(TaskOutcome::Aborted),
        }
        // Held until the container is gone: dropping it removes the secret files.
        let secrets = {
            let source = self.config.secrets.clone();
            let requested = task
                .security_context
                .as_ref()
                .map(|c| c.secrets.clone())
                .unwrap_or_default();
            let exec = request.attempt.execution.clone();
            let root = self.config.work_root.join(super::secrets::HOST_DIR);
            tokio::task::spawn_blocking(move || {
                super::secrets::provision(source.as_deref(), &requested, &exec, &root)
            })
            .await
            .map_err(|e| TaskFailure::system("SecretMount", e.to_string()))??
        };

        let substitute = |s: &String| paths.substitute(s);
        let command: Vec<String> = container.command.iter().map(substitute).collect();
        let args: Vec<String> = container.args.iter().map(substitute).collect();
        let exec = &request.attempt.execution;
        let task_id = task.id.clone().unwrap_or_default();
        let mut env: Vec<String> = container
            .env
            .iter()
            .map(|kv| format!("{}={}", kv.key, kv.value))
            .collect();
        for (k, v) in [
            ("FLYTE_INTERNAL_EXECUTION_ID", exec.name.as_str()),
            ("FLYTE_INTERNAL_EXECUTION_PROJECT", exec.project.as_str()),
            ("FLYTE_INTERNAL_EXECUTION_DOMAIN", exec.domain.as_str()),
            ("FLYTE_INTERNAL_TASK_PROJECT", task_id.project.as_str()),
            ("FLYTE_INTERNAL_TASK_DOMAIN", task_id.domain.as_str()),
            ("FLYTE_INTERNAL_TASK_NAME", task_id.name.as_str()),
            ("FLYTE_INTERNAL_TASK_VERSION", task_id.version.as_str()),
            ("FLYTE_INTERNAL_PROJECT", task_id.project.as_str()),
            ("FLYTE_INTERNAL_DOMAIN", task_id.domain.as_str()),
            ("FLYTE_INTERNAL_NAME", task_id.name.as_str()),
            ("FLYTE_INTERNAL_VERSION", task_id.version.as_str()),
        ] {
            env.push(format!("{k}={v}"));
        }
        env.push(format!(
            "FLYTE_ATTEMPT_NUMBER={}",
            request.attempt.retry_attempt
        ));
        env.extend(request.env.iter().map(|(k, v)| format!("{k}={v}")));
        let eager = task.metadata.as_ref().is_some_and(|m| m.is_eager);
        if eager {
            env.extend(
                self.config
                    .eager
                    .env
                    .iter()
                    .map(|(k, v)| format!("{k}={v}")),
            );
        }
        env.extend(secrets.env.iter().cloned());

        let (nano_cpus, memory, memory_text) = resources(container.resources.as_ref());
        let mut binds = vec![format!("{0}:{0}:rw", exec_dir.display())];
        for ro in &self.config.read_only_mounts {
            if ro.exists() {
                binds.push(format!("{0}:{0}:ro", ro.display()));
            }
        }
        if eager {
            for (host, inside) in &self.config.eager.files {
                binds.push(format!("{}:{}:ro", host.display(), inside.display()));
            }
        }
        binds.extend(secrets.bind.iter().cloned());
        let labels: HashMap<String, String> = [
            (
                LABEL_SANDBOX.to_string(),
                self.config.work_root.display().to_string(),
            ),
            (
                LABEL_EXECUTION.to_string(),
                format!("{}/{}/{}", exec.project, exec.domain, exec.name),
            ),
            (LABEL_INSTANCE.to_string(), self.instance.clone()),
        ]
        .into();
        let body = ContainerCreateBody {
            image: Some(container.image.clone()),
            // Kubernetes semantics: `command` replaces the entrypoint, `args` the CMD.
            entrypoint: (!command.is_empty()).then_some(command),
            cmd: (!args.is_empty()).then_some(args),
            env: Some(env),
            labels: Some(labels),
            host_config: Some(HostConfig {
                binds: Some(binds),
                nano_cpus,
                memory,
                // The backend listens on the host's loopback; an eager task talks to it.
                network_mode: eager.then(|| "host".to_string()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let name = component(&format!(
            "union-{}-{}-{}-{}",
            exec.name,
            request.attempt.node_id,
            request.attempt.retry_attempt,
            short_random()
        ));
        let created = docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(&name).build()),
                body,
            )
            .await
            .map_err(|e| {
                TaskFailure::system(
                    "CreateContainerError",
                    format!(
                        "cannot create a container from `{}`: {}",
                        container.image,
                        engine_message(e)
                    ),
                )
            })?;
        let id = created.id;
        // An eager task terminates the executions it started on SIGTERM (flytekit's Controller).
        let grace = eager.then_some(EAGER_STOP_GRACE);
        let outcome = self.supervise(&docker, &id, &paths, cancel, grace).await;
        // The container has exited (or was killed): removing it is the engine's business, off
        // the task's path (a restart removes any a crash left behind).
        let remover = docker.clone();
        tokio::spawn(async move {
            let _ = remover
                .remove_container(
                    &id,
                    Some(RemoveContainerOptionsBuilder::new().force(true).build()),
                )
                .await;
        });
        drop(secrets);
        let exit = outcome?;
        Ok(match exit {
            None => TaskOutcome::Aborted,
            Some((code, oom)) => paths.outcome(code, oom, memory_text.as_deref(), task),
        })
    }

    /// Start the container, stream its log to the file and wait; `None` when cancelled.
    async fn supervise(
        &self,
        docker: &Docker,
        id: &str,
        paths: &AttemptPaths,
        cancel: &CancelToken,
        grace: Option<Duration>,
    ) -> Result<Option<(i64, bool)>, TaskFailure> {
        docker.start_container(id, None).await.map_err(|e| {
            TaskFailure::system(
                "StartContainerError",
                format!("cannot start the container: {}", engine_message(e)),
            )
        })?;
        let log_docker = docker.clone();
        let log_id = id.to_string();
        let log_path = paths.log.clone();
        let logger = tokio::spawn(async move {
            let Ok(mut file) = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .await
            else {
                return;
            };
            let options = LogsOptionsBuilder::new()
                .follow(true)
                .stdout(true)
                .stderr(true)
                .build();
            let mut logs = log_docker.logs(&log_id, Some(options));
            while let Some(Ok(chunk)) = logs.next().await {
                if file.write_all(chunk.as_ref()).await.is_err() {
                    break;
                }
            }
            let _ = file.flush().await;
        });
        let wait = async {
            let mut s = docker.wait_container(
                id,
                Some(
                    WaitContainerOptionsBuilder::new()
                        .condition("not-running")
                        .build(),
                ),
            );
            match s.next().await {
                Some(Ok(r)) => Ok(r.status_code),
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
                    Ok(code)
                }
                Some(Err(e)) => Err(TaskFailure::system(
                    "ContainerLost",
                    format!("lost track of the container: {e}"),
                )),
                None => Err(TaskFailure::system(
                    "ContainerLost",
                    "the engine stopped reporting on the container",
                )),
            }
        };
        tokio::pin!(wait);
        let result = tokio::select! {
            code = &mut wait => Some(code?),
            _ = cancel.cancelled() => {
                if let Some(grace) = grace {
                    let _ = docker.kill_container(id, Some(KillContainerOptionsBuilder::new().signal("SIGTERM").build())).await;
                    let _ = tokio::time::timeout(grace, &mut wait).await;
                }
                let _ = docker.kill_container(id, Some(KillContainerOptionsBuilder::new().signal("SIGKILL").build())).await;
                None
            }
        };
        // The log stream ends with the container; bounded in case the engine keeps it open.
        let _ = tokio::time::timeout(Duration::from_secs(5), logger).await;
        let Some(code) = result else { return Ok(None) };
        // The engine learns of an out-of-memory kill from the cgroup's events, which can arrive
        // after it has reported the exit: for a SIGKILL (137) we did not send, ask again briefly.
        let mut oom = false;
        for attempt in 0..10 {
            oom = docker
                .inspect_container(id, None)
                .await
                .ok()
                .and_then(|i| i.state)
                .and_then(|s| s.oom_killed)
                .unwrap_or(false);
            if oom || code != 137 || attempt == 9 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Some((code, oom)))
    }
}

impl TaskRunner for DockerRunner {
    fn run<'a>(
        &'a self,
        request: &'a TaskRequest,
        cancel: &'a CancelToken,
    ) -> BoxFuture<'a, TaskOutcome> {
        Box::pin(async move {
            match self.run_attempt(request, cancel).await {
                Ok(o) => o,
                Err(_) if cancel.is_cancelled() => TaskOutcome::Aborted,
                Err(f) => {
                    // Make the failure visible in the attempt's log too.
                    let log = self.attempt_dir(&request.attempt).join(LOG_FILE);
                    if let Ok(mut file) = tokio::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&log)
                        .await
                    {
                        let _ = file
                            .write_all(
                                format!("[union sandbox] {}: {}\n", f.code, f.message).as_bytes(),
                            )
                            .await;
                    }
                    TaskOutcome::Failed(f)
                }
            }
        })
    }

    fn log_path(&self, attempt: &AttemptId) -> Option<PathBuf> {
        Some(self.attempt_dir(attempt).join(LOG_FILE))
    }
}

fn engine_message(e: bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message,
        other => other.to_string(),
    }
}

fn short_random() -> String {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_safe() {
        assert_eq!(component("../x y"), "___x_y");
        assert_eq!(component(""), "_");
    }
}
