//! Helpers for tests/remote_builder/: the registered tasks' images, and containers of built
//! images on the test engine (this process itself has no Docker engine).

use std::process::Command;

use super::{venv, Project, Sandbox, TEST_DOCKER_SOCKET};
use union_idl::flyteidl::admin::{NamedEntityIdentifier, ResourceListRequest};

/// The fixture's task, as both clients register it from the project root.
pub const TASK: &str = "workflows.remote_hello.greet";

/// A bollard client for the test engine (explicit socket; this process has no DOCKER_HOST).
pub async fn test_docker() -> bollard::Docker {
    bollard::Docker::connect_with_unix(TEST_DOCKER_SOCKET, 120, bollard::API_DEFAULT_VERSION)
        .unwrap()
        .negotiate_version()
        .await
        .unwrap()
}

/// Run `sh -c script` in a new container of `image` on the test engine (pulled from its
/// registry first, as a cluster would); (exit code, output).
pub async fn run_sh(image: &str, script: &str) -> (i64, String) {
    let body = bollard::models::ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec!["sh".into(), "-c".into()]),
        cmd: Some(vec![script.to_string()]),
        ..Default::default()
    };
    super::build::run_container(&test_docker().await, body).await
}

/// The container images of every registered version of `task` in flytesnacks/development.
pub async fn task_images(sb: &Sandbox, task: &str) -> Vec<String> {
    let mut admin = sb.admin().await;
    let tasks = admin
        .list_tasks(ResourceListRequest {
            id: Some(NamedEntityIdentifier {
                project: "flytesnacks".into(),
                domain: "development".into(),
                name: task.into(),
                ..Default::default()
            }),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tasks;
    let mut images: Vec<String> = tasks
        .into_iter()
        .filter_map(|t| t.closure?.compiled_task?.template?.target)
        .filter_map(|t| match t {
            union_idl::flyteidl::core::task_template::Target::Container(c) => Some(c.image),
            _ => None,
        })
        .collect();
    images.sort();
    images.dedup();
    images
}

/// `union register workflows` (ours) from the project's root to `sb`, with no Docker engine.
pub fn ours_register(p: &Project, sb: &Sandbox) -> Command {
    ours_register_at(p, &sb.endpoint())
}

/// The same, to `endpoint`.
pub fn ours_register_at(p: &Project, endpoint: &str) -> Command {
    let mut c = p.union();
    c.env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args([
            "register",
            "workflows",
            "--project",
            "flytesnacks",
            "--domain",
            "development",
            "--endpoint",
            endpoint,
        ]);
    c
}

/// The real union CLI's `union register workflows` from the project's root to `sb` (config
/// `dns:///127.0.0.1:PORT`, insecure), with no Docker engine and a HOME of its own.
pub fn union_py_register(p: &Project, sb: &Sandbox) -> Command {
    union_py_register_with(p, &sb.write_config(p.parent()))
}

/// The same, with the config file `cfg`.
pub fn union_py_register_with(p: &Project, cfg: &std::path::Path) -> Command {
    let home = p.parent().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut c = Command::new(venv().join("bin/union"));
    c.current_dir(p.root())
        .env("VIRTUAL_ENV", venv())
        .env("HOME", &home)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env_remove("UNION_CONFIG")
        .arg("--config")
        .arg(cfg)
        .args([
            "register",
            "workflows",
            "--project",
            "flytesnacks",
            "--domain",
            "development",
        ]);
    c
}
