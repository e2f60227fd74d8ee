//! `builder="union"`: images built by the backend through union's remote image builder, driven
//! exactly as union 0.1.204 drives it (`union/ucimage/_image_builder.py`), over the FlyteAdmin
//! connection (its channel authenticates and stamps the org):
//!
//! 1. enabled: the latest `build-image` task of `system`/`production` (ListTasks limit 1, newest
//!    first, then GetTask); none → "Union remote image builder is not enabled";
//! 2. exists: a spec with a `registry` is always built; otherwise
//!    `cloudidl.imagebuilder.ImageService/GetImage` names the image (its `fqin` is what tasks
//!    use), NOT_FOUND → build; union skips GetImage for endpoints starting with `localhost`;
//! 3. build: `spec.json` and the context (`union_image::remote::prepare`) uploaded to
//!    `system`/`production`, an execution of `build-image` (or `build-image-exec`, registered
//!    for an image pull secret) with inputs `spec`, `context`, `target_image`, label
//!    `unionai_image_name`, `overwrite_cache`; polled every second; its output
//!    `fully_qualified_image` is the image.
//!
//! Nested base specs are made sure of first (flytekit's `ImageBuildEngine.build`). Progress lines
//! are union's own.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tonic::Code;

use super::upload::{upload_bytes, UploadError};
use super::Progress;
use union_client::admin::{AdminClient, AdminError, ExecutionOptions};
use union_client::Settings;
use union_idl::cloudidl::imagebuilder::image_service_client::ImageServiceClient;
use union_idl::cloudidl::imagebuilder::{GetImageRequest, ImageIdentifier};
use union_idl::flyteidl::{admin, core};
use union_image::pipeline::Job;
use union_image::remote::{
    build_image_exec_version, prepare, sanitize_image_name, RemoteBuildError, BUILDER_DOMAIN,
    BUILDER_PROJECT, BUILD_IMAGE_EXEC_SUFFIX, BUILD_IMAGE_TASK, IMAGE_NAME_LABEL, INPUT_CONTEXT,
    INPUT_SPEC, INPUT_TARGET_IMAGE, OUTPUT_FULLY_QUALIFIED_IMAGE,
};
use union_image::{BaseImage, ImageSpec, ImageSpecError, TagContext};

/// union's message when the builder is not enabled.
pub const NOT_ENABLED: &str =
    "Union remote image builder is not enabled. Please contact Union support to enable it.";

/// Why union's remote builder could not make an image.
#[derive(Debug, thiserror::Error)]
pub enum UnionBuilderError {
    /// No `build-image` task in `system`/`production`.
    #[error("{NOT_ENABLED}")]
    NotEnabled { endpoint: String },
    /// A call failed.
    #[error("{rpc} for {what} failed: {code:?}: {message}")]
    Rpc {
        rpc: &'static str,
        what: String,
        code: Code,
        message: String,
    },
    /// A call through the admin client failed.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// Uploading spec.json or the context failed.
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// The spec cannot be sent (union's own refusals).
    #[error(transparent)]
    Spec(#[from] RemoteBuildError),
    /// The image name cannot be computed.
    #[error(transparent)]
    Tag(#[from] ImageSpecError),
    /// The build execution did not succeed.
    #[error("❌ Build failed in {elapsed} at {console_url} with error:\n\n{message}")]
    Failed {
        elapsed: String,
        console_url: String,
        message: String,
    },
    /// The build succeeded without the output union reads.
    #[error("the build execution {execution} succeeded without a `fully_qualified_image` output")]
    NoOutput { execution: String },
}

impl union_diagnostics::Hint for UnionBuilderError {
    fn hints(&self) -> Vec<String> {
        match self {
            UnionBuilderError::NotEnabled { endpoint } => vec![format!(
                "the backend at {endpoint} has no task `{BUILD_IMAGE_TASK}` in project `{BUILDER_PROJECT}`, domain `{BUILDER_DOMAIN}`; a `union sandbox start` without --no-image-builder has one, or build locally with builder=\"default\""
            )],
            UnionBuilderError::Admin(e) => union_diagnostics::Hint::hints(e),
            UnionBuilderError::Upload(e) => union_diagnostics::Hint::hints(e),
            UnionBuilderError::Spec(e) => union_diagnostics::Hint::hints(e),
            _ => Vec::new(),
        }
    }
}

/// What the plugin reads from the user's environment.
#[derive(Debug, Clone)]
pub struct Facts {
    /// `major.minor` of the user's Python.
    pub python_version: String,
    /// The installed union, pinned into images (None: not installed).
    pub union_version: Option<String>,
}

/// The client of union's builder for one command.
pub struct UnionBuilder<'a> {
    pub admin: &'a AdminClient,
    pub settings: &'a Settings,
    pub progress: &'a Progress,
    pub facts: Facts,
}

fn rpc_error(rpc: &'static str, what: impl Into<String>, s: tonic::Status) -> UnionBuilderError {
    UnionBuilderError::Rpc {
        rpc,
        what: what.into(),
        code: s.code(),
        message: s.message().to_string(),
    }
}

fn task_id(name: &str, version: &str) -> core::Identifier {
    core::Identifier {
        resource_type: core::ResourceType::Task as i32,
        project: BUILDER_PROJECT.into(),
        domain: BUILDER_DOMAIN.into(),
        name: name.into(),
        version: version.into(),
        ..Default::default()
    }
}

fn string_literal(s: &str) -> core::Literal {
    core::Literal {
        value: Some(core::literal::Value::Scalar(Box::new(core::Scalar {
            value: Some(core::scalar::Value::Primitive(core::Primitive {
                value: Some(core::primitive::Value::StringValue(s.to_string())),
            })),
        }))),
        ..Default::default()
    }
}

fn literal_string(l: &core::Literal) -> Option<String> {
    match &l.value {
        Some(core::literal::Value::Scalar(sc)) => match &sc.value {
            Some(core::scalar::Value::Primitive(core::Primitive {
                value: Some(core::primitive::Value::StringValue(s)),
            })) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// `str(timedelta).split(".")[0]`: `H:MM:SS`, with `N day(s), ` in front past a day.
pub fn python_elapsed(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let hms = format!("{}:{:02}:{:02}", rest / 3600, (rest % 3600) / 60, rest % 60);
    match days {
        0 => hms,
        1 => format!("1 day, {hms}"),
        n => format!("{n} days, {hms}"),
    }
}

impl UnionBuilder<'_> {
    /// Make sure every job's image exists; returns image name → (the image tasks must use,
    /// whether it was built now).
    pub async fn ensure(
        &self,
        jobs: &[Job],
        ctx: &TagContext,
    ) -> Result<HashMap<String, (String, bool)>, UnionBuilderError> {
        let mut ctx = ctx.clone();
        let mut done: HashMap<String, (String, bool)> = HashMap::new();
        for job in jobs {
            Box::pin(self.ensure_one(&job.spec, &mut ctx, &mut done)).await?;
        }
        Ok(done)
    }

    /// flytekit's `ImageBuildEngine.build` with union's builder: the base first, then
    /// `should_build`, then `build_image`. Returns the image's (real) name.
    async fn ensure_one(
        &self,
        spec: &ImageSpec,
        ctx: &mut TagContext,
        done: &mut HashMap<String, (String, bool)>,
    ) -> Result<String, UnionBuilderError> {
        let mut to_send = spec.clone();
        if let Some(BaseImage::Spec(inner)) = &spec.base_image {
            let base = Box::pin(self.ensure_one(inner, ctx, done)).await?;
            to_send.base_image = Some(BaseImage::Image(base));
        }
        let image_name = spec.image_name(ctx)?;
        if let Some((real, _)) = done.get(&image_name) {
            return Ok(real.clone());
        }
        let (real, built) = match self.should_build(&to_send, &image_name).await? {
            Some(found) => (found, false),
            None => (self.build(&to_send, &image_name, ctx).await?, true),
        };
        if real != image_name {
            ctx.real_names.insert(image_name.clone(), real.clone());
        }
        done.insert(image_name, (real.clone(), built));
        Ok(real)
    }

    /// `should_build`: None to build, or the image GetImage found.
    async fn should_build(
        &self,
        spec: &ImageSpec,
        image_name: &str,
    ) -> Result<Option<String>, UnionBuilderError> {
        self.fetch_build_task()
            .await?
            .ok_or_else(|| UnionBuilderError::NotEnabled {
                endpoint: self.settings.endpoint.clone(),
            })?;
        if spec.registry.as_deref().is_some_and(|r| !r.is_empty()) {
            self.progress
                .note(&format!("{image_name} configured with external registry."));
            self.progress.note("🐳 Submitting a new build...");
            return Ok(None);
        }
        match self.get_image_fqin(image_name).await? {
            Some(fqin) => {
                self.progress
                    .note(&format!("Image {image_name} found. Skip building."));
                Ok(Some(fqin))
            }
            None => {
                self.progress
                    .note(&format!("Image {image_name} was not found or has expired."));
                self.progress.note("🐳 Submitting a new build...");
                Ok(None)
            }
        }
    }

    /// `_get_image_fqin`: None when NOT_FOUND (or, as union does, for a `localhost` endpoint).
    async fn get_image_fqin(&self, name: &str) -> Result<Option<String>, UnionBuilderError> {
        if self.settings.endpoint.starts_with("localhost") {
            return Ok(None);
        }
        let mut client = ImageServiceClient::new(self.admin.channel());
        let req = GetImageRequest {
            id: Some(ImageIdentifier { name: name.into() }),
            organization: self.settings.org.clone().unwrap_or_default(),
            project_id: None,
        };
        match client.get_image(req).await {
            Ok(r) => Ok(r.into_inner().image.map(|i| i.fqin)),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(rpc_error("GetImage", format!("image {name}"), s)),
        }
    }

    /// `fetch_task(name="build-image", project="system", domain="production")`: the newest
    /// version (ListTasks limit 1, newest first), then GetTask. None when there is none.
    async fn fetch_build_task(&self) -> Result<Option<admin::Task>, UnionBuilderError> {
        let mut raw = self.admin.raw();
        let list = raw
            .list_tasks(admin::ResourceListRequest {
                id: Some(admin::NamedEntityIdentifier {
                    project: BUILDER_PROJECT.into(),
                    domain: BUILDER_DOMAIN.into(),
                    name: BUILD_IMAGE_TASK.into(),
                    ..Default::default()
                }),
                limit: 1,
                sort_by: Some(admin::Sort {
                    key: "created_at".into(),
                    direction: admin::sort::Direction::Descending as i32,
                }),
                ..Default::default()
            })
            .await;
        let tasks = match list {
            Ok(r) => r.into_inner().tasks,
            Err(s) if s.code() == Code::NotFound => return Ok(None),
            Err(s) => return Err(rpc_error("ListTasks", BUILD_IMAGE_TASK, s)),
        };
        let Some(id) = tasks.into_iter().next().and_then(|t| t.id) else {
            return Ok(None);
        };
        self.get_task(id).await
    }

    async fn get_task(
        &self,
        id: core::Identifier,
    ) -> Result<Option<admin::Task>, UnionBuilderError> {
        let what = format!("task {}@{}", id.name, id.version);
        match self
            .admin
            .raw()
            .get_task(admin::ObjectGetRequest { id: Some(id) })
            .await
        {
            Ok(r) => Ok(Some(r.into_inner())),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(rpc_error("GetTask", what, s)),
        }
    }

    /// `_apply_task_template_changes`: `build-image-exec`, the same template with the pull
    /// secret, registered unless it exists.
    async fn with_pull_secret(
        &self,
        task: admin::Task,
        secret: &str,
    ) -> Result<admin::Task, UnionBuilderError> {
        let name = format!("{BUILD_IMAGE_TASK}-{BUILD_IMAGE_EXEC_SUFFIX}");
        let base_version = task
            .id
            .as_ref()
            .map(|i| i.version.clone())
            .unwrap_or_default();
        let version = build_image_exec_version(&[secret, &base_version]);
        if let Some(t) = self.get_task(task_id(&name, &version)).await? {
            self.progress
                .note(&format!("{name} already exists. Skipping registration."));
            return Ok(t);
        }
        self.progress.note(&format!(
            "Task {name} does not exist. Registering a new version."
        ));
        let mut template = task
            .closure
            .and_then(|c| c.compiled_task)
            .and_then(|c| c.template)
            .unwrap_or_default();
        let id = task_id(&name, &version);
        template.id = Some(id.clone());
        template.security_context = Some(core::SecurityContext {
            secrets: vec![core::Secret {
                key: secret.into(),
                mount_requirement: core::secret::MountType::File as i32,
                ..Default::default()
            }],
            ..Default::default()
        });
        let spec = admin::TaskSpec {
            template: Some(template),
            ..Default::default()
        };
        self.admin.create_task(id.clone(), spec).await?;
        self.get_task(id.clone())
            .await?
            .ok_or_else(|| UnionBuilderError::Rpc {
                rpc: "GetTask",
                what: format!("task {name}@{version}"),
                code: Code::NotFound,
                message: "not found right after it was registered".into(),
            })
    }

    /// `build_image`: upload, execute, wait; the execution's `fully_qualified_image`.
    async fn build(
        &self,
        spec: &ImageSpec,
        image_name: &str,
        ctx: &TagContext,
    ) -> Result<String, UnionBuilderError> {
        let input = prepare(
            spec,
            image_name,
            ctx,
            &self.facts.python_version,
            self.facts.union_version.as_deref(),
        )?;
        if !input.unsupported.is_empty() {
            let list: Vec<String> = input.unsupported.iter().map(|f| format!("'{f}'")).collect();
            self.progress.warn(&format!(
                "The following parameters are unsupported and ignored: [{}]",
                list.join(", ")
            ));
        }
        let start = Instant::now();
        let context_url = match input.context {
            Some(bytes) => {
                upload_bytes(
                    self.admin,
                    BUILDER_PROJECT,
                    BUILDER_DOMAIN,
                    "context.tar.xz",
                    bytes,
                )
                .await?
            }
            None => String::new(),
        };
        let spec_url = upload_bytes(
            self.admin,
            BUILDER_PROJECT,
            BUILDER_DOMAIN,
            "spec.json",
            input.spec_json,
        )
        .await?;
        let task = self
            .fetch_build_task()
            .await?
            .ok_or_else(|| UnionBuilderError::NotEnabled {
                endpoint: self.settings.endpoint.clone(),
            })?;
        let task = match &input.imagepull_secret_name {
            Some(secret) => self.with_pull_secret(task, secret).await?,
            None => task,
        };
        let target = task.id.clone().unwrap_or_default();
        let mut inputs = core::LiteralMap::default();
        for (k, v) in [
            (INPUT_SPEC, spec_url.as_str()),
            (INPUT_CONTEXT, context_url.as_str()),
            (INPUT_TARGET_IMAGE, image_name),
        ] {
            inputs.literals.insert(k.to_string(), string_literal(v));
        }
        let options = ExecutionOptions {
            labels: vec![(
                IMAGE_NAME_LABEL.to_string(),
                sanitize_image_name(image_name),
            )],
            overwrite_cache: true,
            ..Default::default()
        };
        let exec = self
            .admin
            .create_execution(
                BUILDER_PROJECT,
                BUILDER_DOMAIN,
                None,
                target,
                inputs,
                &options,
            )
            .await?;
        self.progress.note("👍 Build submitted!");
        let console_url = self
            .settings
            .console_url(&exec.project, &exec.domain, &exec.name);
        self.progress
            .note(&format!("⏳ Waiting for build to finish at: {console_url}"));
        let execution = loop {
            let e = self.admin.get_execution(&exec).await?;
            let phase = e.closure.as_ref().map(|c| c.phase).unwrap_or_default();
            use core::workflow_execution::Phase;
            if [
                Phase::Succeeded,
                Phase::Failed,
                Phase::Aborted,
                Phase::TimedOut,
            ]
            .iter()
            .any(|p| *p as i32 == phase)
            {
                break e;
            }
            // union polls once a second (`remote.wait(poll_interval=1s)`).
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let elapsed = python_elapsed(start.elapsed());
        let closure = execution.closure.unwrap_or_default();
        if closure.phase != core::workflow_execution::Phase::Succeeded as i32 {
            let message = match closure.output_result {
                Some(admin::execution_closure::OutputResult::Error(e)) => e.message,
                Some(admin::execution_closure::OutputResult::AbortMetadata(a)) => a.cause,
                _ => format!(
                    "the build execution ended {}",
                    core::workflow_execution::Phase::try_from(closure.phase)
                        .map(|p| p.as_str_name())
                        .unwrap_or("in an unknown phase")
                ),
            };
            return Err(UnionBuilderError::Failed {
                elapsed,
                console_url,
                message,
            });
        }
        self.progress
            .note(&format!("✅ Build completed in {elapsed}!"));
        let data = self.admin.get_execution_data(&exec).await?;
        data.full_outputs
            .as_ref()
            .and_then(|o| o.literals.get(OUTPUT_FULLY_QUALIFIED_IMAGE))
            .and_then(literal_string)
            .ok_or(UnionBuilderError::NoOutput {
                execution: exec.name,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_as_python_prints_a_timedelta() {
        assert_eq!(python_elapsed(Duration::from_millis(5_900)), "0:00:05");
        assert_eq!(python_elapsed(Duration::from_secs(3_723)), "1:02:03");
        assert_eq!(
            python_elapsed(Duration::from_secs(90_000)),
            "1 day, 1:00:00"
        );
    }
}
