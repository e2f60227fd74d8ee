//! Helpers for the image build tests: the test engine from tests/setup/docker.sh, and running
//! commands in containers through the Engine API.

use std::path::Path;
use std::sync::OnceLock;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, LogsOptions, RemoveContainerOptions,
    RemoveImageOptions, WaitContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;

use super::TEST_DOCKER_HOST;

/// Require the test engine, registry and base image (failing with the command that starts them)
/// and point `DOCKER_HOST` at the engine, once, before any engine connection in this process.
pub fn ensure_engine() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        super::require_docker_infra();
        std::env::set_var("DOCKER_HOST", TEST_DOCKER_HOST);
    });
}

/// A bollard client for the test engine.
pub async fn docker() -> Docker {
    ensure_engine();
    Docker::connect_with_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap()
}

/// Run `cmd` in a new container of `image` (bind-mounting `binds`), return (exit code, output).
pub async fn run_in(docker: &Docker, image: &str, cmd: &[&str], binds: &[String]) -> (i64, String) {
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
        host_config: Some(HostConfig {
            binds: Some(binds.to_vec()),
            ..Default::default()
        }),
        ..Default::default()
    };
    run_container(docker, body).await
}

/// Create, start and wait for a container; return (exit code, stdout+stderr). It is removed after.
pub async fn run_container(docker: &Docker, body: ContainerCreateBody) -> (i64, String) {
    let created = docker
        .create_container(None::<CreateContainerOptions>, body)
        .await
        .unwrap();
    docker.start_container(&created.id, None).await.unwrap();
    let mut code = 0;
    let mut wait = docker.wait_container(&created.id, None::<WaitContainerOptions>);
    while let Some(r) = wait.next().await {
        match r {
            Ok(w) => code = w.status_code,
            Err(bollard::errors::Error::DockerContainerWaitError { code: c, .. }) => code = c,
            Err(e) => panic!("waiting for container: {e}"),
        }
    }
    let mut logs = docker.logs(
        &created.id,
        Some(LogsOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        }),
    );
    let mut out = String::new();
    while let Some(chunk) = logs.next().await {
        out.push_str(&chunk.unwrap().to_string());
    }
    docker
        .remove_container(
            &created.id,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    (code, out)
}

/// Remove `image` from the engine (ignoring "not there").
pub async fn remove_local(docker: &Docker, image: &str) {
    let _ = docker
        .remove_image(
            image,
            Some(RemoveImageOptions {
                force: true,
                ..Default::default()
            }),
            None,
        )
        .await;
}

/// Pull `image` from its registry into the engine.
pub async fn pull(docker: &Docker, image: &str) {
    let mut stream = docker.create_image(
        Some(CreateImageOptions {
            from_image: Some(image.to_string()),
            ..Default::default()
        }),
        None,
        None,
    );
    while let Some(item) = stream.next().await {
        item.unwrap_or_else(|e| panic!("pulling {image}: {e}"));
    }
}

/// The bytes of `docker save image`.
pub async fn save(docker: &Docker, image: &str) -> Vec<u8> {
    let mut stream = docker.export_image(image);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

/// A world-writable temporary directory (the image's `flytekit` user writes into bind mounts).
pub fn shared_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("union-build-test-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// Write a gzip'd tar of `files` (relative path, content) at `path`, like a fast-register archive.
pub fn write_fast_archive(path: &Path, files: &[(&str, String)]) {
    let file = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(315_532_800);
        tar.append_data(&mut header, name, content.as_bytes())
            .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}
