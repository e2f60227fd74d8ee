//! One attempt's files and what they mean: the work directory's layout, flytepropeller's
//! template variables as paths, and the attempt's outcome read from what the task wrote
//! (`outputs.pb`, `error.pb`, `futures.pb`) and how its container ended; resource quantities.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use prost::Message;

use super::docker::LOG_FILE;
use super::{TaskFailure, TaskOutcome, TaskRequest};
use union_idl::flyteidl::core::{
    container_error, execution_error::ErrorKind, resources::ResourceName, ErrorDocument,
    LiteralMap, TaskTemplate,
};

/// The files of one attempt.
pub(super) struct AttemptPaths {
    pub(super) dir: PathBuf,
    pub(super) inputs: PathBuf,
    pub(super) task: PathBuf,
    pub(super) outputs: PathBuf,
    pub(super) raw: PathBuf,
    pub(super) checkpoint: PathBuf,
    /// The previous attempt's checkpoint directory (`{{.prevCheckpointPrefix}}`), on retries.
    pub(super) prev_checkpoint: Option<PathBuf>,
    pub(super) log: PathBuf,
}

static TEMPLATE_VAR: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"(?i)\{\{\s*[\.$]([a-z0-9_]+)\s*\}\}").unwrap_or_else(|_| unreachable!())
});

impl AttemptPaths {
    pub(super) fn new(dir: &Path) -> Self {
        AttemptPaths {
            dir: dir.to_path_buf(),
            inputs: dir.join("inputs.pb"),
            task: dir.join("task.pb"),
            outputs: dir.join("outputs"),
            raw: dir.join("raw"),
            checkpoint: dir.join("checkpoint"),
            prev_checkpoint: None,
            log: dir.join(LOG_FILE),
        }
    }

    pub(super) fn prepare(&self, exec_dir: &Path, request: &TaskRequest) -> std::io::Result<()> {
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir)?;
        }
        std::fs::create_dir_all(&self.dir)?;
        for d in [&self.outputs, &self.raw, &self.checkpoint] {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(
            &self.inputs,
            super::local_uris::as_paths(&request.inputs).encode_to_vec(),
        )?;
        std::fs::write(&self.task, request.task.encode_to_vec())?;
        std::fs::File::create(&self.log)?;
        // flytekit in the image may run as any user: it must write outputs, raw data and checkpoints.
        for d in [&self.dir, &self.outputs, &self.raw, &self.checkpoint] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777))?;
        }
        for f in [&self.inputs, &self.task] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644))?;
        }
        // Parents must be traversable by that user too.
        let mut p = self.dir.parent();
        while let Some(parent) = p {
            if let Ok(meta) = std::fs::metadata(parent) {
                let mode = meta.permissions().mode();
                if mode & 0o001 == 0 {
                    let _ = std::fs::set_permissions(
                        parent,
                        std::fs::Permissions::from_mode(mode | 0o011),
                    );
                }
            }
            if parent == exec_dir {
                break;
            }
            p = parent.parent();
        }
        Ok(())
    }

    /// flytepropeller's template variables (case- and space-insensitive), as plain paths.
    pub(super) fn substitute(&self, arg: &str) -> String {
        TEMPLATE_VAR
            .replace_all(arg, |c: &regex::Captures<'_>| {
                let name = c
                    .get(1)
                    .map(|m| m.as_str().to_ascii_lowercase())
                    .unwrap_or_default();
                let p = |p: &Path| p.display().to_string();
                match name.as_str() {
                    "input" => p(&self.inputs),
                    "inputprefix" => p(&self.dir),
                    "outputprefix" => p(&self.outputs),
                    "rawoutputdataprefix" => p(&self.raw),
                    "checkpointoutputprefix" => p(&self.checkpoint),
                    "prevcheckpointprefix" => {
                        self.prev_checkpoint.as_deref().map(p).unwrap_or_default()
                    }
                    "tasktemplatepath" => p(&self.task),
                    _ => c.get(0).map(|m| m.as_str().to_string()).unwrap_or_default(),
                }
            })
            .into_owned()
    }

    pub(super) fn outcome(
        &self,
        code: i64,
        oom: bool,
        memory_limit: Option<&str>,
        task: &TaskTemplate,
    ) -> TaskOutcome {
        if oom {
            return TaskOutcome::Failed(TaskFailure {
                code: "OOMKilled".into(),
                message: format!(
                    "container killed: out of memory (limit {})",
                    memory_limit.unwrap_or("the engine's memory")
                ),
                kind: ErrorKind::User,
                recoverable: true,
            });
        }
        if let Ok(bytes) = std::fs::read(self.outputs.join("error.pb")) {
            return TaskOutcome::Failed(match ErrorDocument::decode(bytes.as_slice()) {
                Ok(ErrorDocument { error: Some(e) }) => TaskFailure {
                    code: e.code,
                    message: e.message,
                    kind: if e.origin == ErrorKind::System as i32 {
                        ErrorKind::System
                    } else {
                        ErrorKind::User
                    },
                    recoverable: e.kind == container_error::Kind::Recoverable as i32,
                },
                _ => {
                    TaskFailure::system("BadErrorDocument", "the task wrote an unreadable error.pb")
                }
            });
        }
        if let Ok(bytes) = std::fs::read(self.outputs.join("futures.pb")) {
            return match union_idl::flyteidl::core::DynamicJobSpec::decode(bytes.as_slice()) {
                Ok(spec) => TaskOutcome::Dynamic(Box::new(spec)),
                Err(e) => TaskOutcome::Failed(TaskFailure::system(
                    "BadFutures",
                    format!("the dynamic task wrote an unreadable futures.pb: {e}"),
                )),
            };
        }
        if code == 137 {
            if let Some(limit) = memory_limit {
                // SIGKILL, not from us (a cancel is no outcome), under a memory limit: what the
                // kernel's OOM killer does, even when the engine did not report it as such.
                return TaskOutcome::Failed(TaskFailure {
                    code: "OOMKilled".into(),
                    message: format!(
                        "container killed (SIGKILL, exit code 137), most likely out of memory \
                         (limit {limit}); the engine did not confirm an out-of-memory kill{}",
                        self.log_tail()
                    ),
                    kind: ErrorKind::User,
                    recoverable: true,
                });
            }
        }
        if code != 0 {
            return TaskOutcome::Failed(TaskFailure {
                code: "ContainerFailed".into(),
                message: format!("the container exited with code {code}{}", self.log_tail()),
                kind: ErrorKind::User,
                recoverable: true,
            });
        }
        match std::fs::read(self.outputs.join("outputs.pb")) {
            Ok(bytes) => match LiteralMap::decode(bytes.as_slice()) {
                Ok(m) => TaskOutcome::Succeeded(m),
                Err(e) => TaskOutcome::Failed(TaskFailure::system(
                    "BadOutputs",
                    format!("the task wrote an unreadable outputs.pb: {e}"),
                )),
            },
            Err(_) => {
                let has_outputs = task
                    .interface
                    .as_ref()
                    .and_then(|i| i.outputs.as_ref())
                    .is_some_and(|o| !o.variables.is_empty());
                if has_outputs {
                    TaskOutcome::Failed(TaskFailure::system(
                        "OutputsNotFound",
                        format!(
                            "the task exited without writing {}{}",
                            self.outputs.join("outputs.pb").display(),
                            self.log_tail()
                        ),
                    ))
                } else {
                    TaskOutcome::Succeeded(LiteralMap::default())
                }
            }
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        if tail.is_empty() {
            String::new()
        } else {
            format!("; last lines of its log:\n{tail}")
        }
    }
}

/// Limits (or requests when there are no limits): CPU as NanoCpus, memory in bytes and as written.
pub(super) fn resources(
    r: Option<&union_idl::flyteidl::core::Resources>,
) -> (Option<i64>, Option<i64>, Option<String>) {
    let Some(r) = r else {
        return (None, None, None);
    };
    let pick = |name: ResourceName| {
        r.limits
            .iter()
            .find(|e| e.name == name as i32)
            .or_else(|| r.requests.iter().find(|e| e.name == name as i32))
            .map(|e| e.value.clone())
    };
    let cpu = pick(ResourceName::Cpu)
        .and_then(|v| parse_quantity(&v))
        .map(|c| (c * 1e9) as i64)
        .filter(|n| *n > 0);
    let mem_text = pick(ResourceName::Memory);
    let mem = mem_text
        .as_deref()
        .and_then(parse_quantity)
        .map(|m| m as i64)
        .filter(|m| *m > 0);
    (cpu, mem, mem_text)
}

/// A Kubernetes quantity ("500m", "1.5", "200Mi", "1G", "1e9") as a number.
pub fn parse_quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let suffixes: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("Ti", 1024.0f64.powi(4)),
        ("Pi", 1024.0f64.powi(5)),
        ("Ei", 1024.0f64.powi(6)),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    for (suffix, factor) in suffixes {
        if let Some(num) = s.strip_suffix(suffix) {
            return num
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map(|n| n * factor);
        }
    }
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("200Mi"), Some(200.0 * 1024.0 * 1024.0));
        assert_eq!(parse_quantity("1G"), Some(1e9));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("lots"), None);
    }

    #[test]
    fn substitutes_template_variables_like_flytepropeller() {
        let p = AttemptPaths::new(Path::new("/d/a/0"));
        assert_eq!(p.substitute("{{.input}}"), "/d/a/0/inputs.pb");
        assert_eq!(p.substitute("{{ .OutputPrefix }}"), "/d/a/0/outputs");
        assert_eq!(p.substitute("{{.rawOutputDataPrefix}}"), "/d/a/0/raw");
        assert_eq!(
            p.substitute("{{.checkpointOutputPrefix}}"),
            "/d/a/0/checkpoint"
        );
        assert_eq!(p.substitute("{{.prevCheckpointPrefix}}"), "");
        let retry = AttemptPaths {
            prev_checkpoint: Some(PathBuf::from("/d/a/0/checkpoint")),
            ..AttemptPaths::new(Path::new("/d/a/1"))
        };
        assert_eq!(
            retry.substitute("{{.prevCheckpointPrefix}}"),
            "/d/a/0/checkpoint"
        );
        assert_eq!(p.substitute("{{$taskTemplatePath}}"), "/d/a/0/task.pb");
        assert_eq!(p.substitute("--x={{.unknown}}"), "--x={{.unknown}}");
    }

    /// A SIGKILL under a memory limit reads as out of memory even when the engine's flag is
    /// late or missing; without a limit it is a plain failure.
    #[test]
    fn a_sigkill_under_a_memory_limit_reads_as_out_of_memory() {
        let dir = tempfile::tempdir().unwrap();
        let p = AttemptPaths::new(dir.path());
        let task = TaskTemplate::default();
        let failure = |o: TaskOutcome| match o {
            TaskOutcome::Failed(f) => f,
            _ => panic!("not a failure"),
        };
        for oom in [true, false] {
            let f = failure(p.outcome(137, oom, Some("64Mi"), &task));
            assert_eq!(f.code, "OOMKilled");
            assert!(
                f.message.contains("out of memory") && f.message.contains("64Mi"),
                "{}",
                f.message
            );
        }
        let f = failure(p.outcome(137, false, None, &task));
        assert_eq!(f.code, "ContainerFailed");
    }
}
