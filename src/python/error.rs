//! What can go wrong with the embedded Python: finding and starting the user's environment, and
//! the user's code as the bridge reports it (with the user's traceback).

use std::path::PathBuf;

use union_diagnostics::{Hint, EXIT_INTERRUPTED, EXIT_USAGE};

use super::env::{BUILD_PREFIX, BUILD_VERSION};
use super::PyUserError;

/// Errors of the Python side: the environment, the interpreter, the user's code.
#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    /// The virtualenv named by `$VIRTUAL_ENV` (or found) is not one.
    #[error("{found} points at `{}`, which is not a virtualenv (cannot read {})", dir.display(), dir.join("pyvenv.cfg").display())]
    NotAVenv {
        dir: PathBuf,
        found: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The virtualenv was made from another Python installation.
    #[error("the virtualenv `{}` (found via {found}) was made from the Python in `{home}` ({version}), but union is built against `{BUILD_PREFIX}/bin` ({BUILD_VERSION})", dir.display())]
    OtherInstallation {
        dir: PathBuf,
        found: &'static str,
        home: String,
        version: String,
    },
    /// The virtualenv is another minor version of Python.
    #[error("the virtualenv `{}` (found via {found}) is Python {version}, but union is built against Python {BUILD_VERSION}", dir.display())]
    OtherVersion {
        dir: PathBuf,
        found: &'static str,
        version: String,
    },
    /// The virtualenv has no interpreter.
    #[error("the virtualenv `{}` has no bin/python", dir.display())]
    NoInterpreter { dir: PathBuf },
    /// The interpreter could not be configured or started.
    #[error("Python failed to start in `{}` (found via {found})", prefix.display())]
    Start {
        prefix: PathBuf,
        found: &'static str,
    },
    /// union's own bridge module failed to load: a bug in union.
    #[error("union's Python bridge failed to load")]
    BridgeLoad { traceback: String },
    /// A warm interpreter's child could not refresh flytekit's state.
    #[error("the warm interpreter could not refresh flytekit's state")]
    AfterFork(#[source] Box<PythonError>),
    /// The user's code (or flytekit) failed, as the bridge reports it.
    #[error("{}", .error.message)]
    Code {
        /// Boxed: the traceback and fields make it large, and errors travel by value.
        error: Box<PyUserError>,
        /// How the environment was found, and its prefix (for "install flytekit there").
        found: &'static str,
        prefix: PathBuf,
    },
}

impl PythonError {
    /// The bridge's structured error kind (`import`, `bad_value`, `task_failed`, ...), if any.
    pub fn kind(&self) -> Option<&str> {
        match self {
            PythonError::Code { error, .. } => Some(&error.kind),
            _ => None,
        }
    }

    /// An extra field the bridge reported (`flag`, `expected`, `example`, `module`, ...).
    pub fn field(&self, name: &str) -> Option<&str> {
        match self {
            PythonError::Code { error, .. } => error.extra.get(name).and_then(|v| v.as_str()),
            _ => None,
        }
    }
}

fn recreate(dir: &std::path::Path) -> String {
    format!(
        "recreate it with `{BUILD_PREFIX}/bin/python3 -m venv {}` and reinstall your packages (e.g. `pip install flytekit`)",
        dir.display()
    )
}

impl Hint for PythonError {
    fn hints(&self) -> Vec<String> {
        match self {
            PythonError::NotAVenv { dir, .. }
            | PythonError::OtherInstallation { dir, .. }
            | PythonError::OtherVersion { dir, .. }
            | PythonError::NoInterpreter { dir } => vec![recreate(dir)],
            PythonError::Start { .. } => vec![format!(
                "recreate the environment with `{BUILD_PREFIX}/bin/python3 -m venv`"
            )],
            PythonError::BridgeLoad { .. } => {
                vec!["this is a bug in union; please report it".into()]
            }
            PythonError::AfterFork(_) => vec![format!(
                "run with {}=0 to start Python afresh, and please report this",
                crate::env_vars::WARM
            )],
            PythonError::Code {
                error,
                found,
                prefix,
            } => match error.kind.as_str() {
                "flytekit_missing" => vec![format!(
                    "the environment was found via {found}; install flytekit there: `{}/bin/pip install flytekit`, or activate the virtualenv that has it",
                    prefix.display()
                )],
                "internal" => {
                    vec!["this is a bug in union; please report it with the output above".into()]
                }
                "bad_value" => {
                    let get = |k: &str| error.extra.get(k).and_then(|v| v.as_str());
                    match (get("flag"), get("expected"), get("example")) {
                        (Some(flag), Some(expected), Some(example)) => vec![format!(
                            "{flag} expects {expected}, for example: {flag} {}",
                            shell_quote(example)
                        )],
                        (Some(flag), Some(expected), None) => {
                            vec![format!("{flag} expects {expected}")]
                        }
                        _ => Vec::new(),
                    }
                }
                _ => Vec::new(),
            },
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            PythonError::BridgeLoad { traceback } => Some(traceback.clone()),
            PythonError::Code { error, .. } => error.traceback.clone(),
            _ => None,
        }
    }

    fn exit_code(&self) -> Option<u8> {
        match self.kind() {
            Some("bad_value" | "missing_input" | "bad_input") => Some(EXIT_USAGE),
            Some("interrupted") => Some(EXIT_INTERRUPTED),
            _ => None,
        }
    }
}

/// `text` as one shell word (single-quoted when it needs quoting).
fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.,:/=+@".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}
