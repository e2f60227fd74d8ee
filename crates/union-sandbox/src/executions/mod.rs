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
//!   one, the first task fails with "no Docker engine at <endpoint>".
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

use crate::executor::docker::{DockerRunner, DockerRunnerConfig};
use crate::executor::{CancelToken, Executor, ExecutorConfig, LaunchPlanResolver, TaskRunner};

use crate::store::{Store, StoreError};

pub use logs::router;
pub use validate::generate_name;

use recovery::mark_interrupted;
use resolve::StoreResolver;

/// Schema of the execution tables (appended to the store's migrations).
pub const MIGRATION: &str = "
    CREATE TABLE executions (
        seq          INTEGER PRIMARY KEY,
        org          TEXT NOT NULL,
        project      TEXT NOT NULL,
        domain       TEXT NOT NULL,
        name         TEXT NOT NULL,
        phase        INTEGER NOT NULL,     -- core.WorkflowExecution.Phase
        spec         BLOB NOT NULL,        -- admin.ExecutionSpec
        workflow_id  BLOB NOT NULL,        -- core.Identifier
        inputs       BLOB NOT NULL,        -- core.LiteralMap, after defaults
        outputs      BLOB,                 -- core.LiteralMap
        error        BLOB,                 -- core.ExecutionError
        abort_cause  TEXT,
        created_at   INTEGER NOT NULL,     -- unix nanoseconds
        started_at   INTEGER,
        finished_at  INTEGER,
        updated_at   INTEGER NOT NULL,
        UNIQUE (org, project, domain, name)
    );
    CREATE INDEX executions_by_project ON executions (org, project, domain, created_at);
    CREATE INDEX executions_unfinished ON executions (phase) WHERE phase IN (1, 2);
    CREATE TABLE node_executions (
        execution_seq  INTEGER NOT NULL REFERENCES executions(seq),
        node_id        TEXT NOT NULL,      -- unique in the execution (n1-0-n0 inside n1)
        spec_node_id   TEXT NOT NULL,
        parent_node_id TEXT NOT NULL,      -- '' at the top level
        kind           TEXT NOT NULL,      -- task, workflow, launch_plan, branch, gate, array
        phase          INTEGER NOT NULL,   -- core.NodeExecution.Phase
        inputs         BLOB,
        outputs        BLOB,
        error          BLOB,
        created_at     INTEGER NOT NULL,
        started_at     INTEGER,
        finished_at    INTEGER,
        updated_at     INTEGER NOT NULL,
        seq            INTEGER NOT NULL,   -- creation order
        PRIMARY KEY (execution_seq, node_id)
    );
    CREATE TABLE task_executions (
        execution_seq  INTEGER NOT NULL REFERENCES executions(seq),
        node_id        TEXT NOT NULL,
        retry_attempt  INTEGER NOT NULL,
        task_id        BLOB NOT NULL,      -- core.Identifier
        phase          INTEGER NOT NULL,   -- core.TaskExecution.Phase
        log_path       TEXT,
        outputs        BLOB,
        error          BLOB,
        created_at     INTEGER NOT NULL,
        started_at     INTEGER,
        finished_at    INTEGER,
        updated_at     INTEGER NOT NULL,
        PRIMARY KEY (execution_seq, node_id, retry_attempt)
    );";

/// Message of executions interrupted by a sandbox restart.
pub const RESTARTED: &str = "the sandbox restarted while this execution was running";
/// Environment variable capping concurrently running task containers.
pub const MAX_PARALLELISM_ENV: &str = "UNION_SANDBOX_MAX_PARALLELISM";

/// Executions of one sandbox: the executor, the running executions, and their state in the store.
pub struct Executions {
    store: Arc<Store>,
    executor: Executor,
    runner: Arc<DockerRunner>,
    running: Mutex<HashMap<i64, Running>>,
    base_url: String,
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

fn max_parallelism() -> usize {
    std::env::var(MAX_PARALLELISM_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| ExecutorConfig::default().max_parallelism)
}

impl Executions {
    /// Set up executions for a sandbox with data in `data_dir`, blobs in `blob_root`, serving on
    /// `addr`; marks executions interrupted by a restart as FAILED (blocking: call off the runtime's workers).
    pub fn open(
        store: Arc<Store>,
        data_dir: PathBuf,
        blob_root: PathBuf,
        addr: SocketAddr,
    ) -> Result<Arc<Self>, StoreError> {
        let runner = Arc::new(DockerRunner::new(DockerRunnerConfig {
            work_root: data_dir.join("executions"),
            read_only_mounts: vec![blob_root],
        }));
        let interrupted = mark_interrupted(&store)?;
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
                    runner.clone() as Arc<dyn TaskRunner>,
                    resolver,
                ),
                runner,
                running: Mutex::new(HashMap::new()),
                base_url: format!("http://{host}:{}", addr.port()),
            }
        });
        if interrupted > 0 {
            // Containers of interrupted executions are still running (or stopped) on the engine.
            let runner = executions.runner.clone();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = runner.remove_orphans().await;
                });
            }
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
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| Status::internal(format!("sandbox request failed: {e}")))?
    }
}
