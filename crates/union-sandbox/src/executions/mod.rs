//! Executions: `CreateExecution` and friends, run by the [`crate::executor`] with one container
//! per task attempt ([`DockerRunner`]), persisted in the sandbox database.
//!
//! - An execution is created from a launch plan (its fixed inputs, then its defaults, then the
//!   request's inputs) or from a task id (a one-node workflow); a generated name is 20 lowercase
//!   letters and digits starting with a letter, like flyteadmin's.
//! - Phases, timestamps, inputs, outputs and errors of executions, nodes and task attempts are
//!   stored in the `executions`, `node_executions` and `task_executions` tables as events arrive.
//! - Task attempt logs are served over HTTP by the sandbox itself:
//!   `http://<sandbox>/logs/<project>/<domain>/<execution>/<node>/<attempt>`.
//! - On start, executions a previous sandbox process left QUEUED or RUNNING are marked FAILED
//!   ("the sandbox restarted while this execution was running"), and their containers removed:
//!   resuming would need the containers' state, which a crash loses.
//! - Executions need a Docker engine (`DOCKER_HOST` or the default socket) only when they run; without
//!   one, the first task fails with "no Docker engine at `<endpoint>`".
//!
//! Where things happen: `run` starts and terminates executions, `queries` answers the Get/List
//! RPCs, `persist` writes engine events to the store, `rows` reads them back and `render` turns
//! rows into API messages, `resolve` loads launch plans, `validate` checks requests (names,
//! inputs, ids), `logs` serves attempt logs, `recovery` handles restarts.

mod logs;
mod persist;
mod queries;
mod recovery;
mod render;
mod resolve;
mod rows;
mod run;
mod validate;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tonic::Status;

use crate::executor::docker::{DockerRunner, DockerRunnerConfig, EagerAccess};
use crate::executor::{
    CancelToken, Executor, ExecutorConfig, LaunchPlanResolver, SignalSource, TaskCache, TaskRunner,
};

use crate::store::{Store, StoreError};

pub use logs::router;
pub use validate::generate_name;

use recovery::mark_interrupted;
use resolve::StoreResolver;

/// Message of executions interrupted by a sandbox restart.
pub const RESTARTED: &str = "the sandbox restarted while this execution was running";
/// When, after a restart, the containers a previous process left are removed (each wait counted
/// from the sweep before): at once, then again while the engine may still be completing what that
/// process had asked of it.
const ORPHAN_SWEEPS: [std::time::Duration; 3] = [
    std::time::Duration::ZERO,
    std::time::Duration::from_secs(5),
    std::time::Duration::from_secs(30),
];
/// Environment variable capping concurrently running task containers.
pub const MAX_PARALLELISM_ENV: &str = "UNION_SANDBOX_MAX_PARALLELISM";

/// Executions of one sandbox: the executor, the running executions, and their state in the store.
pub struct Executions {
    store: Arc<Store>,
    executor: Executor,
    runner: Arc<DockerRunner>,
    running: Mutex<HashMap<i64, Running>>,
    base_url: String,
    /// Where offloaded outputs are written (the blob store's root).
    blob_root: PathBuf,
    max_inline_bytes: usize,
}

struct Running {
    cancel: CancelToken,
    cause: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for Executions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executions")
            .field("runner", &self.runner)
            .finish_non_exhaustive()
    }
}

/// Outputs larger than this (encoded) are not sent inline by GetExecutionData but stored as a
/// blob whose location is returned instead, as flyteadmin does above `remoteData.maxSizeInBytes`
/// (default 2 MiB).
pub const MAX_INLINE_BYTES_ENV: &str = "UNION_SANDBOX_MAX_INLINE_BYTES";

fn max_inline_bytes() -> usize {
    std::env::var(MAX_INLINE_BYTES_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(2 * 1024 * 1024)
}

fn max_parallelism() -> usize {
    std::env::var(MAX_PARALLELISM_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| ExecutorConfig::default().max_parallelism)
}

/// What executions of one sandbox are set up with.
pub struct ExecutionsConfig {
    /// The sandbox's data directory (work directories go to `executions/` in it).
    pub data_dir: PathBuf,
    /// The blob store's root (mounted into task containers).
    pub blob_root: PathBuf,
    /// Where the sandbox serves (for log links).
    pub addr: SocketAddr,
    /// Whether it serves TLS.
    pub https: bool,
    /// Runs attempts of image build tasks (type [`crate::imagebuilder::TASK_TYPE`]).
    pub image_builds: Arc<crate::imagebuilder::BuildRunner>,
    /// What gate nodes wait on.
    pub signals: Arc<dyn SignalSource>,
    /// Where cached task outputs are kept.
    pub cache: Arc<dyn TaskCache>,
    /// What eager tasks get to reach the sandbox.
    pub eager: EagerAccess,
}

impl Executions {
    /// Set up executions; marks executions interrupted by a restart as FAILED (blocking: call
    /// off the runtime's workers). Attempts of image build tasks go to `image_builds`, every
    /// other one to a container.
    pub fn open(store: Arc<Store>, config: ExecutionsConfig) -> Result<Arc<Self>, StoreError> {
        let ExecutionsConfig {
            data_dir,
            blob_root,
            addr,
            https,
            image_builds,
            signals,
            cache,
            eager,
        } = config;
        let runner = Arc::new(DockerRunner::new(DockerRunnerConfig {
            work_root: data_dir.join("executions"),
            read_only_mounts: vec![blob_root.clone()],
            eager,
            secrets: Some(Arc::new(crate::secrets::StoreSecrets(store.clone()))),
        }));
        let dispatch: Arc<dyn TaskRunner> = Arc::new(Dispatch {
            docker: runner.clone(),
            image_builds,
        });
        mark_interrupted(&store)?;
        // Secret files of attempts a crash interrupted.
        crate::executor::secrets::remove_leftovers(
            &data_dir
                .join("executions")
                .join(crate::executor::secrets::HOST_DIR),
        );
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        let host = if addr.is_ipv6() && !addr.ip().is_unspecified() {
            format!("[{host}]")
        } else {
            host
        };
        let executions = Arc::new_cyclic(|weak: &std::sync::Weak<Executions>| {
            let resolver: Arc<dyn LaunchPlanResolver> = Arc::new(StoreResolver {
                executions: weak.clone(),
            });
            Executions {
                store,
                executor: Executor::new(
                    ExecutorConfig {
                        max_parallelism: max_parallelism(),
                    },
                    dispatch,
                    resolver,
                )
                .with_signals(signals)
                .with_cache(cache),
                runner,
                running: Mutex::new(HashMap::new()),
                blob_root: blob_root.clone(),
                max_inline_bytes: max_inline_bytes(),
                base_url: format!(
                    "{}://{host}:{}",
                    if https { "https" } else { "http" },
                    addr.port()
                ),
            }
        });
        // Containers of executions a previous process ran may still be running (or stopped) on
        // the engine, and the engine completes a create or start that process had sent after it
        // died: swept now, and again a little later.
        let runner = executions.runner.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                for wait in ORPHAN_SWEEPS {
                    tokio::time::sleep(wait).await;
                    let _ = runner.remove_orphans().await;
                }
            });
        }
        Ok(executions)
    }

    /// The Docker runner (for its work directories).
    pub fn runner(&self) -> &DockerRunner {
        &self.runner
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, Status> + Send + 'static,
    {
        crate::status::blocking(&self.store, f).await
    }
}

/// flytekit's `Echo` task: no container, handled in the engine.
const ECHO_TASK_TYPE: &str = "echo";

/// What flytepropeller's echo plugin does (`flyteplugins/go/tasks/plugins/testing/echo.go`):
/// each input becomes an output, input and output names paired in sorted order (flytekit
/// names outputs `o0`, `o1`, ... in the inputs' order).
fn echo(request: &crate::executor::TaskRequest) -> crate::executor::TaskOutcome {
    let iface = request.task.interface.as_ref();
    let mut ins: Vec<&String> = iface
        .and_then(|i| i.inputs.as_ref())
        .map(|v| v.variables.keys().collect())
        .unwrap_or_default();
    let mut outs: Vec<&String> = iface
        .and_then(|i| i.outputs.as_ref())
        .map(|v| v.variables.keys().collect())
        .unwrap_or_default();
    ins.sort();
    outs.sort();
    if ins.len() != outs.len() {
        return crate::executor::TaskOutcome::Failed(crate::executor::TaskFailure {
            code: "EchoInterface".into(),
            message: format!(
                "an echo task must have as many outputs as inputs ({} inputs, {} outputs)",
                ins.len(),
                outs.len()
            ),
            kind: union_idl::flyteidl::core::execution_error::ErrorKind::User,
            recoverable: false,
        });
    }
    let mut outputs = union_idl::flyteidl::core::LiteralMap::default();
    for (i, o) in ins.iter().zip(outs.iter()) {
        if let Some(v) = request.inputs.literals.get(*i) {
            outputs.literals.insert((*o).clone(), v.clone());
        }
    }
    crate::executor::TaskOutcome::Succeeded(outputs)
}

/// Image builds to the sandbox's builder, echo tasks to [`echo`], everything else to a container; logs where the Docker
/// runner keeps them, so that both are served alike.
struct Dispatch {
    docker: Arc<DockerRunner>,
    image_builds: Arc<crate::imagebuilder::BuildRunner>,
}

impl TaskRunner for Dispatch {
    fn run<'a>(
        &'a self,
        request: &'a crate::executor::TaskRequest,
        cancel: &'a CancelToken,
    ) -> futures_util::future::BoxFuture<'a, crate::executor::TaskOutcome> {
        if request.task.r#type == crate::imagebuilder::TASK_TYPE {
            let log = self.docker.log_path(&request.attempt);
            Box::pin(self.image_builds.run(request, cancel, log))
        } else if request.task.r#type == ECHO_TASK_TYPE {
            Box::pin(std::future::ready(echo(request)))
        } else {
            self.docker.run(request, cancel)
        }
    }

    fn log_path(&self, attempt: &crate::executor::AttemptId) -> Option<PathBuf> {
        self.docker.log_path(attempt)
    }
}
