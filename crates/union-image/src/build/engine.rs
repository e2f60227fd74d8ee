//! The engine connection, existence in the engine's store, the HTTP BuildKit build and the push.

use bollard::query_parameters::{BuildImageOptions, BuilderVersion, PushImageOptions};
use bollard::Docker;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};

use super::credentials::{
    docker_config_credentials, engine_credentials, plan_config, pull_credentials, registry_host,
    split_tag,
};
use super::existence::{has_registry, not_found_message};
use super::progress::Trace;
use super::{BuildError, BuildEvent, BuildReporter, ExistenceCheck};
use crate::dockerfile::BuildPlan;

/// A connection to a Docker engine that builds and pushes images.
#[derive(Debug, Clone)]
pub struct Builder {
    docker: Docker,
    endpoint: String,
}

impl Builder {
    /// Connect as the docker CLI does: `DOCKER_HOST` (`unix://`, `tcp://`), else the local socket.
    /// Checks that the engine answers and agrees on an API version.
    pub async fn connect() -> Result<Builder, BuildError> {
        let endpoint = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string());
        let unreachable = |e: bollard::errors::Error| BuildError::Unreachable {
            endpoint: endpoint.clone(),
            message: e.to_string(),
        };
        let docker = Docker::connect_with_defaults().map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        Ok(Builder { docker, endpoint })
    }

    /// Where the engine is (the `DOCKER_HOST` value or the default socket).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The bollard client, for callers that need other engine calls.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Whether `image` exists: in its registry when it names one (`GET /distribution/<ref>/json`,
    /// what flytekit's `ImageSpec.exist()` asks), else in the engine's local store.
    pub async fn image_exists(&self, image: &str) -> Result<bool, BuildError> {
        use bollard::errors::Error;
        if !has_registry(image) {
            return match self.docker.inspect_image(image).await {
                Ok(_) => Ok(true),
                Err(Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => Ok(false),
                Err(e) => Err(BuildError::Existence {
                    image: image.to_string(),
                    message: e.to_string(),
                }),
            };
        }
        let creds = docker_config_credentials(registry_host(image));
        match self.docker.inspect_registry_image(image, creds).await {
            Ok(_) => Ok(true),
            Err(Error::DockerResponseServerError {
                status_code,
                message,
            }) if status_code == 404 || (status_code == 500 && not_found_message(&message)) => {
                Ok(false)
            }
            Err(e) => Err(BuildError::Existence {
                image: image.to_string(),
                message: e.to_string(),
            }),
        }
    }

    /// Build one plan (not its nested base) and tag it as `plan.image_name`.
    pub async fn build(
        &self,
        plan: &BuildPlan,
        reporter: &dyn BuildReporter,
    ) -> Result<(), BuildError> {
        let image = plan.image_name.as_str();
        if plan.platforms().len() > 1 {
            return Err(BuildError::Unsupported {
                image: image.to_string(),
                message: format!(
                    "its platform `{}` lists several platforms, and a multi-platform image cannot be \
                     built through the Docker Engine API: the engine's image store holds one platform \
                     per image",
                    plan.platform
                ),
                hint: "set `platform` to one platform (the cluster's nodes' one, usually linux/amd64), \
                       or build the multi-platform image with `docker buildx build --platform ... --push` \
                       and give it to the tasks as `container_image`"
                    .into(),
            });
        }
        let tar = plan
            .context
            .to_tar()
            .map_err(|source| BuildError::Context {
                image: image.to_string(),
                source,
            })?;
        if !plan.secrets.is_empty() {
            // bollard's gRPC session future is not Send: drive it on a blocking thread of the
            // caller's runtime so this future stays Send.
            let this = self.clone();
            let plan = plan.clone();
            let handle = tokio::runtime::Handle::current();
            return tokio::task::spawn_blocking(move || {
                handle.block_on(this.build_with_secrets(&plan, tar))
            })
            .await
            .unwrap_or_else(|e| {
                Err(BuildError::Build {
                    image: image.to_string(),
                    message: format!("the build task failed: {e}"),
                })
            });
        }
        let creds = pull_credentials(plan)?;
        // A connection to the engine lost before any step failed is retried once: BuildKit's
        // cache makes the steps already done instant, and a busy engine does drop one.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let options = BuildImageOptions {
                dockerfile: "Dockerfile".to_string(),
                t: Some(image.to_string()),
                rm: true,
                forcerm: true,
                platform: plan.platform.clone(),
                version: BuilderVersion::BuilderBuildKit,
                session: Some(format!("union-{}", random_id())),
                ..Default::default()
            };
            let mut stream = self.docker.build_image(
                options,
                Some(creds.clone()),
                Some(bollard::body_full(tar.clone().into())),
            );
            let mut trace = Trace::default();
            let mut lost = false;
            while let Some(item) = stream.next().await {
                match item {
                    Ok(info) => trace.absorb(image, info, reporter),
                    Err(e) if attempt == 1 && connection_lost(&e) && !trace.step_failed() => {
                        lost = true;
                        break;
                    }
                    Err(e) => return Err(trace.failure(image, e)),
                }
            }
            if lost {
                continue;
            }
            if let Some(err) = trace.pending_error(image) {
                return Err(err);
            }
            return Ok(());
        }
    }

    /// Push a plan's image with credentials from its docker config, reporting per-layer progress.
    pub async fn push(
        &self,
        plan: &BuildPlan,
        reporter: &dyn BuildReporter,
    ) -> Result<(), BuildError> {
        let image = plan.image_name.as_str();
        let (repo, tag) = split_tag(image);
        let creds = engine_credentials(&plan_config(plan)?, registry_host(image)).map_err(|e| {
            BuildError::Credentials {
                image: image.to_string(),
                message: e.to_string(),
            }
        })?;
        let options = PushImageOptions {
            tag: Some(tag.to_string()),
            ..Default::default()
        };
        let mut stream = self.docker.push_image(repo, Some(options), creds);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| BuildError::Push {
                image: image.to_string(),
                message: stream_message(e),
            })?;
            if let Some(status) = info.status {
                let (current, total) = info
                    .progress_detail
                    .map(|p| (p.current, p.total))
                    .unwrap_or((None, None));
                reporter.event(
                    image,
                    &BuildEvent::Push {
                        status,
                        current,
                        total,
                    },
                );
            }
        }
        Ok(())
    }
}

impl ExistenceCheck for Builder {
    fn exists<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<bool, BuildError>> {
        self.image_exists(image).boxed()
    }
}

/// The connection to the engine broke (as opposed to the engine reporting an error).
fn connection_lost(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::HyperResponseError { .. }
            | bollard::errors::Error::IOError { .. }
            | bollard::errors::Error::HyperLegacyError { .. }
    )
}

pub(super) fn stream_message(e: bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerStreamError { error } => error,
        other => other.to_string(),
    }
}

pub(super) fn random_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{:016x}", h.finish())
}
