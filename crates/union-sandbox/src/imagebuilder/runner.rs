//! Executions of the build task: the inputs read, the files fetched from the blob store, the
//! image built by the sandbox itself, the output `fully_qualified_image`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::blobs::Blobs;
use crate::executor::{CancelToken, TaskFailure, TaskOutcome, TaskRequest};
use union_idl::flyteidl::core::{
    literal, primitive, scalar, Literal, LiteralMap, Primitive, Scalar,
};
use union_image::build::{BuildEvent, BuildReporter};
use union_image::remote::{
    ImageBuilder, INPUT_CONTEXT, INPUT_SPEC, INPUT_TARGET_IMAGE, OUTPUT_FULLY_QUALIFIED_IMAGE,
};

/// Runs build-task attempts (see the module docs of [`super`]).
pub struct BuildRunner {
    builder: Option<ImageBuilder>,
    blobs: Arc<Blobs>,
}

impl std::fmt::Debug for BuildRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildRunner")
            .field("enabled", &self.builder.is_some())
            .finish()
    }
}

fn string_input(inputs: &LiteralMap, name: &str) -> Result<String, TaskFailure> {
    let value = inputs.literals.get(name).and_then(|l| match &l.value {
        Some(literal::Value::Scalar(sc)) => match &sc.value {
            Some(scalar::Value::Primitive(Primitive {
                value: Some(primitive::Value::StringValue(s)),
            })) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    });
    value.ok_or_else(|| {
        TaskFailure::user(
            "InvalidInput",
            format!("the build task needs a string input `{name}`"),
        )
    })
}

fn string_literal(s: &str) -> Literal {
    Literal {
        value: Some(literal::Value::Scalar(Box::new(Scalar {
            value: Some(scalar::Value::Primitive(Primitive {
                value: Some(primitive::Value::StringValue(s.to_string())),
            })),
        }))),
        ..Default::default()
    }
}

/// Writes a build's progress as lines of the attempt's log.
struct LogFile(Mutex<Option<std::fs::File>>);

impl LogFile {
    fn open(path: Option<&Path>) -> LogFile {
        let file = path.and_then(|p| {
            std::fs::create_dir_all(p.parent()?).ok()?;
            std::fs::File::create(p).ok()
        });
        LogFile(Mutex::new(file))
    }
    fn line(&self, text: &str) {
        if let Some(f) = self.0.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            let _ = writeln!(f, "{text}");
        }
    }
}

impl BuildReporter for LogFile {
    fn event(&self, _image: &str, event: &BuildEvent) {
        match event {
            BuildEvent::StepStarted { step, cached } => {
                self.line(&format!("{step}{}", if *cached { " (cached)" } else { "" }))
            }
            BuildEvent::Log { line, .. } => self.line(line),
            BuildEvent::Push {
                status,
                current: None,
                ..
            } => self.line(status),
            _ => {}
        }
    }
}

impl BuildRunner {
    pub(super) fn new(builder: Option<ImageBuilder>, blobs: Arc<Blobs>) -> Self {
        BuildRunner { builder, blobs }
    }

    /// The image builder, when this sandbox has one.
    pub fn builder(&self) -> Option<&ImageBuilder> {
        self.builder.as_ref()
    }

    fn read_blob(&self, url: &str, what: &str) -> Result<Vec<u8>, TaskFailure> {
        let key = self.blobs.key_of_native_url(url).ok_or_else(|| {
            TaskFailure::user(
                "InvalidInput",
                format!(
                    "{what} `{url}` is not a blob of this sandbox (expected file://{}/...)",
                    self.blobs.root().display()
                ),
            )
        })?;
        let path: PathBuf = self.blobs.path_of(&key);
        std::fs::read(&path).map_err(|e| {
            TaskFailure::user("InvalidInput", format!("cannot read {what} {url}: {e}"))
        })
    }

    /// Run one attempt, writing its log to `log`.
    pub async fn run(
        &self,
        request: &TaskRequest,
        cancel: &CancelToken,
        log: Option<PathBuf>,
    ) -> TaskOutcome {
        let Some(builder) = &self.builder else {
            return TaskOutcome::Failed(TaskFailure::system(
                "NoImageBuilder",
                "this sandbox has no image builder (union sandbox start --no-image-builder)",
            ));
        };
        let inputs = (|| {
            let spec = string_input(&request.inputs, INPUT_SPEC)?;
            let context = string_input(&request.inputs, INPUT_CONTEXT)?;
            let target = string_input(&request.inputs, INPUT_TARGET_IMAGE)?;
            let spec = self.read_blob(&spec, "spec")?;
            let context = if context.is_empty() {
                None
            } else {
                Some(self.read_blob(&context, "context")?)
            };
            Ok::<_, TaskFailure>((spec, context, target))
        })();
        let (spec, context, target) = match inputs {
            Ok(i) => i,
            Err(f) => return TaskOutcome::Failed(f),
        };
        let logfile = LogFile::open(log.as_deref());
        logfile.line(&format!("building {target}"));
        let result = tokio::select! {
            r = builder.build(&spec, context.as_deref(), &target, &logfile) => r,
            _ = cancel.cancelled() => return TaskOutcome::Aborted,
        };
        match result {
            Ok(fq) => {
                logfile.line(&format!("pushed {fq}"));
                let mut outputs = LiteralMap::default();
                outputs.literals.insert(
                    OUTPUT_FULLY_QUALIFIED_IMAGE.to_string(),
                    string_literal(&fq),
                );
                TaskOutcome::Succeeded(outputs)
            }
            Err(f) => {
                logfile.line(&f.message);
                TaskOutcome::Failed(TaskFailure::user("ImageBuildFailed", f.message))
            }
        }
    }
}
