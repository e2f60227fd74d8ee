//! The embedded CPython. All pyo3 code lives behind this module boundary: it starts the
//! interpreter once, inside the user's environment, runs `bridge/`, and hands back plain Rust
//! data. No Python object handle leaves this module.

pub mod env;
mod error;

use std::ffi::CString;
use std::path::{Path, PathBuf};

use pyo3::prelude::*;
use pyo3::types::PyModule;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::discovery::ModuleName;
use crate::entity::Entity;
pub use env::{EnvSource, PythonEnv};
pub use error::PythonError;

/// What union's image builder plugin reads from the user's environment.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct UnionBuilderFacts {
    pub python_version: String,
    pub union_version: Option<String>,
}

/// The bridge's Python source: the files of `bridge/`, one module, in this order (later files use
/// what earlier ones define; `protocol.py` has the imports and `_guard`).
const BRIDGE_SOURCE: &str = concat!(
    include_str!("bridge/protocol.py"),
    "\n",
    include_str!("bridge/tracebacks.py"),
    "\n",
    include_str!("bridge/discover.py"),
    "\n",
    include_str!("bridge/inputs.py"),
    "\n",
    include_str!("bridge/run.py"),
    "\n",
    include_str!("bridge/serialize.py"),
    "\n",
    include_str!("bridge/remote.py"),
    "\n",
    include_str!("bridge/warm.py"),
);

/// The bridge module's name and file name. Neither can be a user's: `<...>` is not a valid module
/// name for `import`, and the module has no `__file__`, so nothing that lists loaded modules
/// (flytekit's `--copy auto`, its `LOADED_MODULES` source copy, our own package step) can take it
/// for a file of the project in the current directory.
const BRIDGE_NAME: &str = "<union-bridge>";

/// The loaded bridge module (set once per process; a warm interpreter's children inherit it).
static BRIDGE: pyo3::sync::PyOnceLock<Py<PyModule>> = pyo3::sync::PyOnceLock::new();

/// One argument of a bridge call. Paths and module names go over as OS strings (Python sees them
/// as `os.fsdecode` would), so a project in a directory whose name is not UTF-8 works as with
/// pyflyte.
enum Arg {
    Text(String),
    Os(std::ffi::OsString),
    OsList(Vec<std::ffi::OsString>),
}

impl Arg {
    fn text(s: impl Into<String>) -> Arg {
        Arg::Text(s.into())
    }
    fn path(p: &Path) -> Arg {
        Arg::Os(p.as_os_str().to_os_string())
    }
    fn module(m: &ModuleName) -> Arg {
        Arg::Os(m.as_os_str().to_os_string())
    }
    fn to_python<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        use pyo3::IntoPyObjectExt;
        match self {
            Arg::Text(s) => s.as_str().into_bound_py_any(py),
            Arg::Os(s) => s.as_os_str().into_bound_py_any(py),
            Arg::OsList(v) => {
                let items: Vec<&std::ffi::OsStr> = v.iter().map(|s| s.as_os_str()).collect();
                items.into_bound_py_any(py)
            }
        }
    }
}

/// Paths as the bridge returns them: base64 of the file system bytes (`os.fsencode`), so that no
/// path is mangled by a trip through JSON.
fn decode_paths<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
    use base64::Engine as _;
    use std::os::unix::ffi::OsStringExt;
    let encoded: Vec<String> = Vec::deserialize(d)?;
    encoded
        .into_iter()
        .map(|e| {
            base64::engine::general_purpose::STANDARD
                .decode(e.as_bytes())
                .map(|b| PathBuf::from(std::ffi::OsString::from_vec(b)))
                .map_err(serde::de::Error::custom)
        })
        .collect()
}

/// An error that Python code reported in a structured way (see `bridge/`).
#[derive(Debug, Clone, Deserialize)]
pub struct PyUserError {
    /// `import`, `entity_not_found`, `bad_value`, `missing_input`, `task_failed`,
    /// `flytekit_missing`, `interrupted`, `internal`, ...
    pub kind: String,
    pub message: String,
    pub traceback: Option<String>,
    /// Extra structured fields (`module`, `flag`, `expected`, `missing`, ...).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// What flytekit's `SerializationSettings` gets, from our side.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SerializeSettings {
    pub project: Option<String>,
    pub domain: Option<String>,
    pub version: Option<String>,
    /// The project root (flytekit's `source_root`).
    pub root: String,
    /// The image for tasks without one of their own (`--image URI`).
    pub default_image: String,
    /// Named images (`--image NAME=URI`, config `images.NAME`), for `{{.image.NAME.fqn}}` templates.
    pub images: std::collections::BTreeMap<String, String>,
    /// ImageSpec id -> the image name union computed (and built) for it.
    pub spec_images: std::collections::BTreeMap<String, String>,
    /// Fast registration: the code archive is downloaded into `destination_dir` at task start.
    pub fast: bool,
    pub destination_dir: Option<String>,
    /// Where the archive was uploaded (`None`: flytekit's `{{ .remote_package_path }}` placeholder).
    pub distribution_location: Option<String>,
    pub env: std::collections::BTreeMap<String, String>,
    pub git_repo: Option<String>,
}

/// One ImageSpec used by loaded tasks: flytekit's `id`, every field, and the tasks using it.
#[derive(Debug, Clone, Deserialize)]
pub struct ImageSpecUse {
    pub id: String,
    pub spec: serde_json::Map<String, serde_json::Value>,
    pub tasks: Vec<String>,
}

/// Loaded module files and installed-package prefixes, for `--copy auto`.
#[derive(Debug, Clone, Deserialize)]
pub struct LoadedModules {
    #[serde(deserialize_with = "decode_paths")]
    pub files: Vec<std::path::PathBuf>,
    #[serde(deserialize_with = "decode_paths")]
    pub prefixes: Vec<std::path::PathBuf>,
}

/// One entity as flytekit serializes it for FlyteAdmin.
#[derive(Debug, Clone)]
pub struct SerializedEntity {
    /// `task` (admin.TaskSpec), `workflow` (admin.WorkflowSpec) or `launch_plan` (admin.LaunchPlan).
    pub kind: String,
    pub name: String,
    /// The message, deterministically encoded.
    pub pb: Vec<u8>,
    /// A launch plan with a schedule is activated on registration, as pyflyte does.
    pub auto_activate: bool,
}

#[derive(Deserialize)]
struct RawSerialization {
    entities: Vec<RawSerialized>,
    processes: usize,
}

#[derive(Deserialize)]
struct RawSerialized {
    kind: String,
    name: String,
    pb: String,
    auto_activate: bool,
}

/// What a warm interpreter's server loaded: flytekit's version and every module file (checked
/// before each command, so that a changed installation is never served from memory).
#[derive(Debug, Deserialize)]
pub struct WarmState {
    pub flytekit: String,
    #[serde(deserialize_with = "decode_paths")]
    pub files: Vec<PathBuf>,
    /// Python threads alive after the imports (the server forks only with one).
    pub python_threads: usize,
}

static INITIALIZED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Fork the process with CPython's fork protocol (at-fork hooks: `random` is reseeded, locks are
/// reset). Returns what fork(2) returns. For the warm interpreter only.
pub fn fork_interpreter() -> i32 {
    Python::attach(|_py| {
        // SAFETY: the documented CPython fork sequence, with the GIL held, in a process whose only
        // thread is this one (the warm server never starts others).
        unsafe {
            pyo3::ffi::PyOS_BeforeFork();
            let pid = libc::fork();
            if pid == 0 {
                pyo3::ffi::PyOS_AfterFork_Child();
                FORKED.store(true, std::sync::atomic::Ordering::SeqCst);
            } else {
                pyo3::ffi::PyOS_AfterFork_Parent();
            }
            pid
        }
    })
}

/// Set in a warm interpreter's child until its first session has refreshed flytekit's state.
static FORKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A running embedded interpreter in the user's environment.
pub struct PythonSession {
    env: PythonEnv,
    /// How many processes the last `serialize` used (flytekit's serialization is shared out
    /// among forked workers for big projects).
    serialize_processes: std::cell::Cell<usize>,
}

/// What every bridge function returns: `{"ok": value}` (the value may be `null`) or
/// `{"error": {...}}`.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Reply<T> {
    Ok(T),
    Error(PyUserError),
}

fn init_interpreter(env: &PythonEnv) -> Result<(), PythonError> {
    let start_failed = || PythonError::Start {
        prefix: env.prefix.clone(),
        found: env.source.describe(),
    };
    let program =
        CString::new(env.python.as_os_str().as_encoded_bytes()).map_err(|_| start_failed())?;
    // SAFETY: standard PyConfig initialisation sequence on the main thread, before any other use
    // of the C API; every PyStatus is checked, and the config is cleared on every path.
    unsafe {
        let mut config = std::mem::MaybeUninit::<pyo3::ffi::PyConfig>::zeroed();
        pyo3::ffi::PyConfig_InitPythonConfig(config.as_mut_ptr());
        let mut config = config.assume_init();
        // program_name = <venv>/bin/python makes sys.executable the venv's python and sys.prefix
        // the venv, so .pth files run and the base installation's site-packages stay out.
        let status = pyo3::ffi::PyConfig_SetBytesString(
            &mut config,
            &mut config.program_name,
            program.as_ptr(),
        );
        if pyo3::ffi::PyStatus_Exception(status) != 0 {
            pyo3::ffi::PyConfig_Clear(&mut config);
            return Err(start_failed());
        }
        config.parse_argv = 0;
        config.install_signal_handlers = 0; // we own SIGINT (see process.rs)
        config.buffered_stdio = 0; // nothing is lost: we never finalize the interpreter
        let status = pyo3::ffi::Py_InitializeFromConfig(&config);
        pyo3::ffi::PyConfig_Clear(&mut config);
        if pyo3::ffi::PyStatus_Exception(status) != 0 {
            return Err(start_failed());
        }
        // Release the GIL taken by initialisation; Python::attach re-acquires it per call.
        pyo3::ffi::PyEval_SaveThread();
    }
    Ok(())
}

/// Called by the bridge right after `import flytekit` (which installs flytekit's SIGINT handler)
/// and after each user module: see `crate::process`.
#[pyo3::pyfunction]
fn _own_signals() {
    crate::process::reown_signals();
}

/// Execute `bridge/` as a module that is neither a file nor importable by a user's name.
fn load_bridge(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    let module = PyModule::new(py, BRIDGE_NAME)?;
    let builtins = py.import("builtins")?;
    let code = builtins
        .getattr("compile")?
        .call1((BRIDGE_SOURCE, BRIDGE_NAME, "exec"))?;
    module.add_function(pyo3::wrap_pyfunction!(_own_signals, &module)?)?;
    let globals = module.dict();
    globals.set_item("__builtins__", &builtins)?;
    // In sys.modules (under a name no `import` statement can spell) so that what Python looks up
    // by `__module__` (pickle, dataclasses, inspect) finds it.
    py.import("sys")?
        .getattr("modules")?
        .set_item(BRIDGE_NAME, &module)?;
    builtins.getattr("exec")?.call1((code, &globals))?;
    Ok(module)
}

fn format_pyerr(py: Python<'_>, err: &PyErr) -> String {
    let tb = err
        .traceback(py)
        .and_then(|tb| tb.format().ok())
        .unwrap_or_default();
    format!("{tb}{err}")
}

fn module_list(modules: &[ModuleName]) -> Arg {
    Arg::OsList(
        modules
            .iter()
            .map(|m| m.as_os_str().to_os_string())
            .collect(),
    )
}

impl PythonSession {
    fn new(env: PythonEnv) -> PythonSession {
        PythonSession {
            env,
            serialize_processes: std::cell::Cell::new(1),
        }
    }

    /// How many processes serialized in the last `serialize` call.
    pub fn serialize_processes(&self) -> usize {
        self.serialize_processes.get()
    }

    /// Start the interpreter in `env` and load the bridge. Call once, from the main thread.
    pub fn start(env: PythonEnv) -> Result<PythonSession, PythonError> {
        crate::process::reserve_stdout_for_data();
        if INITIALIZED.load(std::sync::atomic::Ordering::SeqCst) {
            // A warm interpreter's forked child: Python and the bridge are already loaded.
            let session = PythonSession::new(env);
            if FORKED.swap(false, std::sync::atomic::Ordering::SeqCst) {
                session
                    .after_fork()
                    .map_err(|e| PythonError::AfterFork(Box::new(e)))?;
            }
            return Ok(session);
        }
        init_interpreter(&env)?;
        INITIALIZED.store(true, std::sync::atomic::Ordering::SeqCst);
        Python::attach(|py| -> Result<(), PythonError> {
            let module = load_bridge(py).map_err(|e| PythonError::BridgeLoad {
                traceback: format_pyerr(py, &e),
            })?;
            let _ = BRIDGE.set(py, module.unbind());
            Ok(())
        })?;
        Ok(PythonSession::new(env))
    }

    /// The environment this session runs in.
    pub fn env(&self) -> &PythonEnv {
        &self.env
    }

    fn call<T: DeserializeOwned>(&self, func: &str, args: Vec<Arg>) -> Result<T, PythonError> {
        self.call_raw(func, args).map_err(|error| self.code(error))
    }

    /// An error the bridge reported, with where this session's environment came from.
    fn code(&self, error: PyUserError) -> PythonError {
        PythonError::Code {
            error: Box::new(error),
            found: self.env.source.describe(),
            prefix: self.env.prefix.clone(),
        }
    }

    /// Data from the bridge that Rust cannot use: a bug on our side.
    fn internal(&self, message: String) -> PythonError {
        self.code(PyUserError {
            kind: "internal".into(),
            message,
            traceback: None,
            extra: Default::default(),
        })
    }

    fn call_raw<T: DeserializeOwned>(&self, func: &str, args: Vec<Arg>) -> Result<T, PyUserError> {
        let text = Python::attach(|py| -> Result<String, PyUserError> {
            let internal = |e: PyErr| PyUserError {
                kind: "internal".into(),
                message: format!("union's Python bridge failed in {func}"),
                traceback: Some(format_pyerr(py, &e)),
                extra: Default::default(),
            };
            let module = BRIDGE.get(py).ok_or_else(|| PyUserError {
                kind: "internal".into(),
                message: format!("union's Python bridge is not loaded (calling {func})"),
                traceback: None,
                extra: Default::default(),
            })?;
            let f = module.bind(py).getattr(func).map_err(internal)?;
            let mut values: Vec<Bound<'_, PyAny>> = Vec::with_capacity(args.len());
            for a in &args {
                values.push(a.to_python(py).map_err(internal)?);
            }
            let tuple = pyo3::types::PyTuple::new(py, values).map_err(internal)?;
            let r = f.call1(tuple).map_err(internal)?;
            r.extract::<String>().map_err(internal)
        });
        // Python code may have replaced our signal handlers (flytekit does when imported).
        crate::process::reown_signals();
        let text = text?;
        let reply: Reply<T> = serde_json::from_str(&text).map_err(|e| PyUserError {
            kind: "internal".into(),
            message: format!("union's Python bridge returned malformed data from {func}: {e}"),
            traceback: None,
            extra: Default::default(),
        })?;
        match reply {
            Reply::Ok(v) => Ok(v),
            Reply::Error(err) => Err(err),
        }
    }

    /// Import `modules` from project `root`; describe every task, workflow and launch plan.
    pub fn discover(
        &self,
        root: &Path,
        modules: &[ModuleName],
    ) -> Result<Vec<Entity>, PythonError> {
        self.call(
            "discover",
            vec![Arg::path(root), module_list(modules), Arg::text("1")],
        )
    }

    /// Like [`discover`](Self::discover), without interfaces (faster; enough for registration).
    pub fn discover_names(
        &self,
        root: &Path,
        modules: &[ModuleName],
    ) -> Result<Vec<Entity>, PythonError> {
        self.call(
            "discover",
            vec![Arg::path(root), module_list(modules), Arg::text("0")],
        )
    }

    /// Import one module and describe the entities bound at its top level (`pyflyte run FILE`).
    pub fn entities_in_module(
        &self,
        root: &Path,
        module: &ModuleName,
    ) -> Result<Vec<Entity>, PythonError> {
        self.call(
            "entities_in_module",
            vec![Arg::path(root), Arg::module(module)],
        )
    }

    /// Run `module.attr` locally with the given raw inputs (name -> text or bool); returns what
    /// pyflyte would print.
    pub fn run(
        &self,
        module: &ModuleName,
        attr: &str,
        inputs: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, PythonError> {
        let given = serde_json::to_string(inputs).expect("json serializes");
        self.call(
            "run",
            vec![Arg::module(module), Arg::text(attr), Arg::text(given)],
        )
    }

    /// Import flytekit and what the bridge uses (for the warm interpreter's server).
    pub fn warm_up(&self) -> Result<WarmState, PythonError> {
        self.call("warm_up", vec![])
    }

    /// In a warm interpreter's forked child: refresh what flytekit computed at import time and
    /// a cold start would compute now (its default context: execution date, config, local dirs).
    pub fn after_fork(&self) -> Result<(), PythonError> {
        self.call::<bool>("after_fork", vec![]).map(|_| ())
    }

    /// The user's flytekit version (`flytekit.__version__`).
    pub fn flytekit_version(&self) -> Result<String, PythonError> {
        self.call("flytekit_version", vec![])
    }

    /// The Python version (`major.minor`) and the installed union's version (None when union is
    /// not installed), as union's image builder plugin reads them.
    pub fn union_builder_facts(&self) -> Result<UnionBuilderFacts, PythonError> {
        self.call("union_builder_facts", vec![])
    }

    /// Every ImageSpec used by a loaded task, after flytekit's copy-mode handling.
    pub fn image_specs(
        &self,
        settings: &SerializeSettings,
    ) -> Result<Vec<ImageSpecUse>, PythonError> {
        self.call(
            "image_specs",
            vec![Arg::text(
                serde_json::to_string(settings).expect("settings serialize"),
            )],
        )
    }

    /// Files of every loaded module and the prefixes holding installed packages (`--copy auto`).
    pub fn loaded_module_files(&self, root: &Path) -> Result<LoadedModules, PythonError> {
        self.call("loaded_module_files", vec![Arg::path(root)])
    }

    /// The `origin` remote of the git repository at `root`, as flytekit records it.
    pub fn git_repo(&self, root: &Path) -> Result<Option<String>, PythonError> {
        self.call("git_repo", vec![Arg::path(root)])
    }

    /// Serialize every registrable entity with flytekit's translator (no image is ever built).
    pub fn serialize(
        &self,
        settings: &SerializeSettings,
    ) -> Result<Vec<SerializedEntity>, PythonError> {
        let raw: RawSerialization = self.call(
            "serialize",
            vec![Arg::text(
                serde_json::to_string(settings).expect("settings serialize"),
            )],
        )?;
        self.serialize_processes.set(raw.processes.max(1));
        use base64::Engine as _;
        raw.entities
            .into_iter()
            .map(|r| {
                let pb = base64::engine::general_purpose::STANDARD
                    .decode(r.pb.as_bytes())
                    .map_err(|e| {
                        self.internal(format!("bad serialized bytes for {}: {e}", r.name))
                    })?;
                Ok(SerializedEntity {
                    kind: r.kind,
                    name: r.name,
                    pb,
                    auto_activate: r.auto_activate,
                })
            })
            .collect()
    }

    /// The inputs of a remote execution of `module.attr`, as a deterministic `core.LiteralMap`.
    pub fn remote_inputs(
        &self,
        module: &ModuleName,
        attr: &str,
        inputs: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Vec<u8>, PythonError> {
        let given = serde_json::to_string(inputs).expect("json serializes");
        let b64: String = self.call(
            "remote_inputs",
            vec![Arg::module(module), Arg::text(attr), Arg::text(given)],
        )?;
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| self.internal(format!("bad literal map from the bridge: {e}")))
    }

    /// Render a `core.LiteralMap` of `module.attr`'s outputs as a local run prints them.
    pub fn format_outputs(
        &self,
        module: &ModuleName,
        attr: &str,
        literal_map: &[u8],
    ) -> Result<String, PythonError> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(literal_map);
        self.call(
            "format_outputs",
            vec![Arg::module(module), Arg::text(attr), Arg::text(b64)],
        )
    }

    /// Flush Python's streams and run atexit handlers. The interpreter is not finalized (slow).
    pub fn finish(&self) {
        Python::attach(|py| {
            if let Some(m) = BRIDGE.get(py) {
                let _ = m.bind(py).getattr("finish").and_then(|f| f.call0());
            }
        });
    }
}
