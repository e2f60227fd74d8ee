//! Builds whose spec has secrets: BuildKit's gRPC solve on the same engine, whose session serves
//! the secret files (the Engine API's HTTP build cannot, through bollard).

use std::collections::HashMap;

use bollard::auth::DockerCredentials;

use super::credentials::pull_credentials;
use super::engine::random_id;
use super::{BuildError, Builder};
use crate::dockerfile::BuildPlan;

impl Builder {
    /// BuildKit's gRPC solve with a session that serves the spec's secret files.
    pub(super) async fn build_with_secrets(
        &self,
        plan: &BuildPlan,
        tar: Vec<u8>,
    ) -> Result<(), BuildError> {
        use bollard::grpc::build::{
            ImageBuildFrontendOptions, ImageBuildLoadInput, ImageBuildPlatform, SecretSource,
        };
        use bollard::grpc::driver::moby::Moby;
        use bollard::grpc::driver::Build;
        let mut opts = ImageBuildFrontendOptions::builder();
        let mut parts = plan.platform.splitn(3, '/');
        if let (Some(os), Some(arch)) = (parts.next(), parts.next()) {
            opts = opts.platforms(&ImageBuildPlatform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: parts.next().map(str::to_string),
            });
        }
        // Secrets union made (a netrc) live in a private directory for the build only.
        let scratch = tempfile_dir().map_err(|e| BuildError::Build {
            image: plan.image_name.clone(),
            message: format!("cannot create a private temporary directory for build secrets: {e}"),
        })?;
        for s in &plan.secrets {
            let path = match &s.source {
                crate::dockerfile::SecretSource::File(p) => p.clone(),
                crate::dockerfile::SecretSource::Text(text) => {
                    let p = scratch.path().join(&s.id);
                    write_private(&p, text.as_bytes()).map_err(|e| BuildError::Build {
                        image: plan.image_name.clone(),
                        message: format!("cannot write build secret `{}`: {e}", s.id),
                    })?;
                    p
                }
            };
            opts = opts.set_secret(&s.id, &SecretSource::File(path));
        }
        let creds = pull_credentials(plan)?;
        let creds_ref: HashMap<&str, DockerCredentials> =
            creds.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let driver = Moby::new(self.docker());
        driver
            .docker_build(
                &plan.image_name,
                opts.build(),
                ImageBuildLoadInput::Upload(tar.into()),
                Some(creds_ref),
                None,
            )
            .await
            .map_err(|e| BuildError::Build {
                image: plan.image_name.clone(),
                message: e.to_string(),
            })
    }
}

/// A directory only this user can read, removed when dropped.
fn tempfile_dir() -> std::io::Result<ScratchDir> {
    use std::os::unix::fs::DirBuilderExt;
    let path = std::env::temp_dir().join(format!("union-build-secrets-{}", random_id()));
    std::fs::DirBuilder::new().mode(0o700).create(&path)?;
    Ok(ScratchDir(path))
}

struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}
