//! Server side of union's remote builder: what a backend does with a build execution's inputs.
//!
//! - The context is unpacked from the received archive only (xz or gzip tar), in a fresh
//!   directory under the data dir: regular files at relative paths; links, absolute paths, `..`
//!   and oversized contexts are refused. Client paths are never read.
//! - union's `spec.json` becomes an [`ImageSpec`](crate::spec::ImageSpec) whose files are that directory (every context
//!   file lands in `/root`, as union's builder places its context), planned with the local
//!   builder's Dockerfile generation; `_F_IMG_ID` is the spec's own (union writes the image name).
//! - The image is tagged `target_image`, prefixed with the default registry when it names none,
//!   built with this server's engine and pushed. Builds of one image run one at a time.
//! - Builds are recorded in `<data dir>/image-builds.json`; [`ImageBuilder::built`] answers
//!   `GetImage` from them.

mod records;
mod spec;
mod unpack;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::build::{has_registry, BuildError, BuildEvent, BuildReporter, Builder, Outcome};
use crate::dockerfile::{self, BuildSettings};
use crate::remote::ContextLimits;

pub use records::{BuildRecord, RECORD_FILE};
pub use unpack::extract_context;

/// The registry images without one are pushed to, by default (flytectl's sandbox registry).
pub const DEFAULT_IMAGE_REGISTRY: &str = "localhost:30000";
/// How many of a failed build's last log lines its error carries.
const TAIL_LINES: usize = 40;

/// How the server builds.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Registry for targets that name none.
    pub default_registry: String,
    /// Base image for specs without `base_image`.
    pub default_base_image: String,
    /// Where records and temporary contexts live.
    pub data_dir: PathBuf,
    /// Largest context accepted (uncompressed bytes, files).
    pub limits: ContextLimits,
}

impl ServerSettings {
    /// Defaults: `localhost:30000`, `debian:bookworm-slim`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ServerSettings {
            default_registry: DEFAULT_IMAGE_REGISTRY.to_string(),
            default_base_image: dockerfile::FLYTEKIT_DEFAULT_BASE_IMAGE.to_string(),
            data_dir: data_dir.into(),
            limits: ContextLimits::default(),
        }
    }
}

/// Why a build failed: the message (with the build log's tail) to show as the execution's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildFailure {
    pub message: String,
}

struct Inner {
    settings: ServerSettings,
    engine: tokio::sync::Mutex<Option<Builder>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    records: records::Records,
}

/// The builder a backend runs: construct with [`ImageBuilder::new`], then [`ImageBuilder::build`]
/// for each build execution.
#[derive(Clone)]
pub struct ImageBuilder {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ImageBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageBuilder")
            .field("settings", &self.inner.settings)
            .finish()
    }
}

/// Removes a temporary context directory when the build ends or is dropped.
struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Marks a record cancelled when the build is dropped before it finished.
struct RecordGuard<'a> {
    records: &'a records::Records,
    index: Option<usize>,
}
impl Drop for RecordGuard<'_> {
    fn drop(&mut self) {
        if let Some(i) = self.index.take() {
            self.records
                .finish(i, "cancelled", Some("the build was cancelled".into()));
        }
    }
}

/// Passes events on and keeps the last log lines.
struct Tail<'a> {
    outer: &'a dyn BuildReporter,
    lines: Mutex<VecDeque<String>>,
}

impl BuildReporter for Tail<'_> {
    fn event(&self, image: &str, event: &BuildEvent) {
        if let BuildEvent::Log { line, .. } = event {
            let mut l = self.lines.lock().unwrap_or_else(|p| p.into_inner());
            l.push_back(line.clone());
            while l.len() > TAIL_LINES {
                l.pop_front();
            }
        }
        self.outer.event(image, event);
    }
    fn started(&self, image: &str) {
        self.outer.started(image);
    }
    fn finished(&self, image: &str, result: Result<&Outcome, &BuildError>) {
        self.outer.finished(image, result);
    }
}

impl ImageBuilder {
    /// A builder with these settings. The Docker engine (`DOCKER_HOST`) is connected on first
    /// use, so a server started before its engine builds once the engine is up.
    pub fn new(settings: ServerSettings) -> Self {
        // Contexts left by a server that was killed mid-build.
        let contexts = settings.data_dir.join("image-contexts");
        let _ = std::fs::remove_dir_all(&contexts);
        let _ = std::fs::create_dir_all(&contexts);
        let records = records::Records::open(&settings.data_dir);
        ImageBuilder {
            inner: Arc::new(Inner {
                settings,
                engine: tokio::sync::Mutex::new(None),
                locks: Mutex::new(HashMap::new()),
                records,
            }),
        }
    }

    /// `target` with the default registry in front when it names none.
    pub fn qualify(&self, target: &str) -> String {
        if has_registry(target) {
            target.to_string()
        } else {
            format!(
                "{}/{target}",
                self.inner.settings.default_registry.trim_end_matches('/')
            )
        }
    }

    /// The fully-qualified image of the latest successful build of `name` (as asked for, or
    /// fully qualified): what `GetImage` answers.
    pub fn built(&self, name: &str) -> Option<String> {
        self.inner.records.built(name)
    }

    /// Every build recorded so far.
    pub fn records(&self) -> Vec<BuildRecord> {
        self.inner.records.all()
    }

    async fn engine(&self) -> Result<Builder, BuildFailure> {
        let mut slot = self.inner.engine.lock().await;
        if let Some(b) = slot.as_ref() {
            return Ok(b.clone());
        }
        match Builder::connect().await {
            Ok(b) => {
                *slot = Some(b.clone());
                Ok(b)
            }
            Err(e) => Err(BuildFailure {
                message: format!(
                    "the image builder has no Docker engine: {e}; start one (or set DOCKER_HOST) for `union sandbox start`"
                ),
            }),
        }
    }

    /// Build `spec_json` (union's format) with the files of `context` (a tar.xz or tar.gz; None
    /// or empty: no files) as `target_image`, push it, and return its fully-qualified name.
    /// Progress goes to `reporter`. Dropping the future cancels the build.
    pub async fn build(
        &self,
        spec_json: &[u8],
        context: Option<&[u8]>,
        target_image: &str,
        reporter: &dyn BuildReporter,
    ) -> Result<String, BuildFailure> {
        let target = target_image.trim();
        if target.is_empty() {
            return Err(BuildFailure {
                message: "target_image is empty".into(),
            });
        }
        let fq = self.qualify(target);
        union_registry::ImageReference::parse(&fq).map_err(|e| BuildFailure {
            message: format!("target_image `{target}` is not an image reference: {e}"),
        })?;
        let lock = {
            let mut locks = self.inner.locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.entry(fq.clone()).or_default().clone()
        };
        let _one_at_a_time = lock.lock().await;
        let engine = self.engine().await?;
        let invalid = |m: String| BuildFailure {
            message: format!("cannot build {fq}: {m}"),
        };
        let dir = self
            .inner
            .settings
            .data_dir
            .join("image-contexts")
            .join(format!("{:016x}", random_u64()));
        let _cleanup = TempDir(dir.clone());
        let files = extract_context(
            context.unwrap_or_default(),
            &dir,
            &self.inner.settings.limits,
        )
        .map_err(invalid)?;
        let name = spec::image_repository_name(&fq);
        let (spec, image_id, ctx) =
            spec::to_image_spec(spec_json, &name, &dir, &files).map_err(invalid)?;
        let settings = BuildSettings {
            default_base_image: self.inner.settings.default_base_image.clone(),
            flytekit_version: String::new(),
        };
        let mut plan =
            dockerfile::plan(&spec, &ctx, &settings).map_err(|e| invalid(e.to_string()))?;
        plan.image_name = fq.clone();
        plan.push = true;
        plan.base = None;
        if let Some(id) = image_id {
            let df = replace_image_id(&plan.dockerfile, &id);
            plan.context.add_bytes("Dockerfile", df.clone(), 0o644);
            plan.dockerfile = df;
        }

        let mut guard = RecordGuard {
            records: &self.inner.records,
            index: Some(self.inner.records.start(&fq, target, &name)),
        };
        let tail = Tail {
            outer: reporter,
            lines: Mutex::new(VecDeque::new()),
        };
        tail.started(&fq);
        let result = async {
            engine.build(&plan, &tail).await?;
            engine.push(&plan, &tail).await
        }
        .await;
        let index = guard.index.take();
        match result {
            Ok(()) => {
                tail.finished(
                    &fq,
                    Ok(&Outcome::Built {
                        pushed: true,
                        duration: std::time::Duration::ZERO,
                    }),
                );
                if let Some(i) = index {
                    self.inner.records.finish(i, "built", None);
                }
                Ok(fq)
            }
            Err(e) => {
                tail.finished(&fq, Err(&e));
                let mut message = e.to_string();
                let output = match &e {
                    BuildError::StepFailed { output, .. } if !output.trim().is_empty() => {
                        output.clone()
                    }
                    _ => {
                        let l = tail.lines.lock().unwrap_or_else(|p| p.into_inner());
                        l.iter().cloned().collect::<Vec<_>>().join("\n")
                    }
                };
                let lines: Vec<&str> = output.lines().collect();
                let start = lines.len().saturating_sub(TAIL_LINES);
                if start < lines.len() {
                    message.push_str("\n\n");
                    message.push_str(&lines[start..].join("\n"));
                }
                if let Some(i) = index {
                    self.inner.records.finish(i, "failed", Some(e.to_string()));
                }
                Err(BuildFailure { message })
            }
        }
    }
}

/// The Dockerfile with its `ENV _F_IMG_ID=` line carrying `id`.
fn replace_image_id(dockerfile: &str, id: &str) -> String {
    let mut out = String::with_capacity(dockerfile.len());
    for line in dockerfile.lines() {
        if line.starts_with("ENV _F_IMG_ID=") {
            out.push_str("ENV _F_IMG_ID=");
            out.push_str(&dockerfile::sh_quote(id));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
    }
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_id_line_is_replaced() {
        let df = "FROM x\nENV _F_IMG_ID=abc\n";
        assert_eq!(
            replace_image_id(df, "a:Z-9_"),
            "FROM x\nENV _F_IMG_ID=a:Z-9_\n"
        );
    }
}
