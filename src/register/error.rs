//! What can go wrong between the user's modules and registered entities.

use std::path::PathBuf;

use union_diagnostics::Hint;

use super::upload::UploadError;
use crate::python::PythonError;

/// Why packaging or registering stopped.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The user's code (import, serialization) or the interpreter.
    #[error(transparent)]
    Python(#[from] PythonError),
    /// The paths define nothing to register.
    #[error("no tasks, workflows or launch plans in {what} (imported from project root {})", root.display())]
    NoEntities { what: String, root: PathBuf },
    /// Two entities of one kind share a name.
    #[error("two {kind}s are named `{name}` ({first} and {second})")]
    DuplicateName {
        kind: &'static str,
        name: String,
        first: String,
        second: String,
    },
    /// flytekit serialized two different messages under one name.
    #[error("two different {kind}s serialize under the same name `{name}`")]
    SameName { kind: String, name: String },
    /// An ImageSpec that cannot be read, or whose tag cannot be computed.
    #[error("ImageSpec `{spec}` (used by {users})")]
    ImageSpec {
        spec: String,
        users: String,
        #[source]
        source: union_image::ImageSpecError,
    },
    /// The working directory is gone.
    #[error("cannot read the current directory")]
    CurrentDir(#[source] std::io::Error),
    /// Listing or archiving the project's files failed.
    #[error("cannot build the code archive")]
    Package(#[source] union_package::PackageError),
    /// A serialized spec is not the message it should be (a bug).
    #[error("cannot decode the {kind} spec of {name}")]
    Decode {
        kind: String,
        name: String,
        #[source]
        source: prost::DecodeError,
    },
    /// Serialization produced an entity kind we do not know (a bug).
    #[error("unexpected entity kind `{0}` from serialization")]
    UnexpectedKind(String),
    /// Connecting to the backend, or a call outside registration, failed.
    #[error(transparent)]
    Admin(#[from] union_client::AdminError),
    /// An image could not be checked, built or pushed: nothing was registered.
    #[error(transparent)]
    Images(#[from] union_image::pipeline::ImageError),
    /// union's remote image builder could not make an image: nothing was registered.
    #[error(transparent)]
    UnionBuilder(#[from] super::union_builder::UnionBuilderError),
    /// `--require-pullable-images` and the cluster could not pull these images (one message each).
    #[error("{}", .0.join("\n"))]
    Unpullable(Vec<String>),
    /// The code archive could not be uploaded.
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// A registration call failed after `done` of `total` entities were registered.
    #[error("{source}")]
    Registering {
        done: usize,
        total: usize,
        #[source]
        source: union_client::AdminError,
    },
    /// Ctrl-C or SIGTERM while registering: `done` of `total` were registered.
    #[error("{} while registering: {done} of {total} entities were registered, the others were not", crate::process::signal_word(*signal))]
    Interrupted {
        signal: i32,
        done: usize,
        total: usize,
        /// Launch plans were not activated yet.
        activation_pending: bool,
    },
}

impl Hint for RegisterError {
    fn hints(&self) -> Vec<String> {
        match self {
            // Transparent variants: their inner error is not a link of the chain, so speak for it.
            RegisterError::Python(e) => e.hints(),
            RegisterError::Admin(e) => e.hints(),
            RegisterError::Upload(e) => e.hints(),
            RegisterError::Images(e) => {
                let mut h = e.hints();
                h.push("nothing was registered".into());
                h
            }
            RegisterError::UnionBuilder(e) => {
                let mut h = e.hints();
                h.push("nothing was registered".into());
                h
            }
            RegisterError::Unpullable(_) => vec![
                "nothing was registered (--require-pullable-images); without that flag these are warnings".into(),
            ],
            RegisterError::NoEntities { .. } => vec![
                "nothing was uploaded or registered; give the package or files that define your @task and @workflow functions (for example `workflows/`)".into(),
            ],
            RegisterError::DuplicateName { .. } => vec![
                "entity names must be unique; rename one of them (for launch plans, pass a different name=)".into(),
            ],
            RegisterError::SameName { .. } => {
                vec!["entity names must be unique; rename one of them".into()]
            }
            RegisterError::Registering {
                done,
                total,
                source,
            } if source.is_connection() => vec![format!(
                "{done} of {total} entities were registered before this; registering is idempotent, so running the command again finishes the job"
            )],
            RegisterError::Registering { done, total, .. } if *done > 0 => {
                vec![format!("{done} of {total} entities were registered before this")]
            }
            RegisterError::Interrupted {
                activation_pending, ..
            } => {
                let mut h = vec![
                    "registering is idempotent: run the same command again to register the rest"
                        .to_string(),
                ];
                if *activation_pending {
                    h.push("launch plans were not activated yet".into());
                }
                h
            }
            RegisterError::Decode { .. } | RegisterError::UnexpectedKind(_) => {
                vec!["this is a bug in union; please report it".into()]
            }
            _ => Vec::new(),
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            RegisterError::Python(e) => e.detail(),
            RegisterError::Admin(e) => e.detail(),
            RegisterError::Upload(e) => e.detail(),
            RegisterError::Images(e) => e.detail(),
            _ => None,
        }
    }

    fn exit_code(&self) -> Option<u8> {
        match self {
            RegisterError::Python(e) => e.exit_code(),
            RegisterError::Interrupted { signal, .. } => {
                Some(crate::process::signal_exit_code(*signal))
            }
            _ => None,
        }
    }
}
