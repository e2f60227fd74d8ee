//! Helpers for tests/sandbox/executions.rs and its benchmark: the real `union sandbox start` binary
//! ([`super::Sandbox`]), images built with `union build`, registration with the real pyflyte, and polling
//! executions through the generated tonic client.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use union_idl::flyteidl::admin::{
    ExecutionCreateRequest, ExecutionSpec, NodeExecutionListRequest, TaskExecutionListRequest,
    WorkflowExecutionGetDataRequest, WorkflowExecutionGetRequest,
};
use union_idl::flyteidl::core::{
    self, literal, primitive, scalar, Identifier, Literal, LiteralCollection, LiteralMap,
    Primitive, ResourceType, Scalar, WorkflowExecutionIdentifier,
};
use union_idl::flyteidl::service::admin_service_client::AdminServiceClient;

/// Project and domain pyflyte registers into by default.
pub const PROJECT: &str = "flytesnacks";
/// See [`PROJECT`].
pub const DOMAIN: &str = "development";

type Client = AdminServiceClient<tonic::transport::Channel>;

/// `union build --quiet` on a fixture's package: the image name it built or found.
pub fn build_image(fixture: &str, package: &str) -> String {
    // hello names no registry (the sandbox's is its default): built here it is pushed to the
    // suite's registry, so that a sandbox started later can pull it by that name.
    let project = super::cli::Project::new(fixture);
    if fixture == "hello" {
        super::cli::pin_hello_registry(project.root(), super::TEST_REGISTRY);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_union"))
        .current_dir(project.root())
        .env("VIRTUAL_ENV", super::cli::venv())
        .env("UNION_WARM", "0")
        .args(["build", "--quiet", package])
        .env(
            "UNION_BASE_IMAGE",
            "localhost:30000/union/debian-python:bookworm",
        )
        .output()
        .expect("union build");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "union build failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .next()
        .and_then(|l| l.split('\t').next())
        .expect("an image line")
        .to_string()
}

/// `pyflyte register` a fixture's package into the sandbox (real flytekit, fast registration).
pub fn register(
    config: &Path,
    home: &Path,
    fixture: &str,
    package: &str,
    image: Option<&str>,
    version: &str,
) {
    let venv = super::venv();
    let mut cmd = Command::new(venv.join("bin").join("pyflyte"));
    cmd.current_dir(super::repo().join("python_fixtures").join(fixture))
        .arg("-c")
        .arg(config)
        .args(["register", "--version", version]);
    if let Some(image) = image {
        cmd.args(["--image", image]);
    }
    cmd.arg(package);
    for (k, _) in std::env::vars() {
        if k.starts_with("UNION_")
            || k.starts_with("FLYTE")
            || k.to_ascii_lowercase().ends_with("_proxy")
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("NO_PROXY", "*").env("HOME", home);
    let out = cmd.output().expect("pyflyte register");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("Successfully registered"),
        "pyflyte register failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn id(rt: ResourceType, name: &str, version: &str) -> Identifier {
    Identifier {
        resource_type: rt as i32,
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        version: version.into(),
        org: String::new(),
    }
}

pub fn exec_id(name: &str) -> WorkflowExecutionIdentifier {
    WorkflowExecutionIdentifier {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        org: String::new(),
    }
}

pub fn prim(v: primitive::Value) -> Literal {
    Literal {
        value: Some(literal::Value::Scalar(Box::new(Scalar {
            value: Some(scalar::Value::Primitive(Primitive { value: Some(v) })),
        }))),
        ..Default::default()
    }
}

pub fn int(i: i64) -> Literal {
    prim(primitive::Value::Integer(i))
}

pub fn float(f: f64) -> Literal {
    prim(primitive::Value::FloatValue(f))
}

pub fn string(s: &str) -> Literal {
    prim(primitive::Value::StringValue(s.into()))
}

pub fn list(items: Vec<Literal>) -> Literal {
    Literal {
        value: Some(literal::Value::Collection(LiteralCollection {
            literals: items,
        })),
        ..Default::default()
    }
}

pub fn inputs(pairs: Vec<(&str, Literal)>) -> LiteralMap {
    LiteralMap {
        literals: pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    }
}

/// The string inside a primitive literal (unwrapping unions).
pub fn as_string(l: &Literal) -> Option<String> {
    match &l.value {
        Some(literal::Value::Scalar(s)) => match &s.value {
            Some(scalar::Value::Primitive(Primitive {
                value: Some(primitive::Value::StringValue(v)),
            })) => Some(v.clone()),
            Some(scalar::Value::Union(u)) => u.value.as_deref().and_then(as_string),
            _ => None,
        },
        _ => None,
    }
}

pub fn as_int(l: &Literal) -> Option<i64> {
    match &l.value {
        Some(literal::Value::Scalar(s)) => match &s.value {
            Some(scalar::Value::Primitive(Primitive {
                value: Some(primitive::Value::Integer(v)),
            })) => Some(*v),
            _ => None,
        },
        _ => None,
    }
}

/// CreateExecution of a launch plan (or task) id, with an optional name.
pub fn create_request(
    target: Identifier,
    name: &str,
    inputs: LiteralMap,
) -> ExecutionCreateRequest {
    ExecutionCreateRequest {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        spec: Some(ExecutionSpec {
            launch_plan: Some(target),
            ..Default::default()
        }),
        inputs: Some(inputs),
        org: String::new(),
    }
}

pub fn phase_name(p: i32) -> &'static str {
    core::workflow_execution::Phase::try_from(p)
        .map(|p| p.as_str_name())
        .unwrap_or("?")
}

/// Poll GetExecution until `done(phase)` or the timeout; returns the execution.
pub async fn wait_until(
    admin: &mut Client,
    name: &str,
    timeout: Duration,
    done: impl Fn(core::workflow_execution::Phase) -> bool,
) -> union_idl::flyteidl::admin::Execution {
    let start = Instant::now();
    loop {
        let e = admin
            .get_execution(WorkflowExecutionGetRequest {
                id: Some(exec_id(name)),
            })
            .await
            .expect("get execution")
            .into_inner();
        let phase = e.closure.as_ref().map(|c| c.phase).unwrap_or(0);
        if core::workflow_execution::Phase::try_from(phase)
            .map(&done)
            .unwrap_or(false)
        {
            return e;
        }
        assert!(
            start.elapsed() < timeout,
            "execution {name} still {} after {timeout:?}",
            phase_name(phase)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait for a terminal phase.
pub async fn wait_done(
    admin: &mut Client,
    name: &str,
    timeout: Duration,
) -> union_idl::flyteidl::admin::Execution {
    use core::workflow_execution::Phase::*;
    wait_until(admin, name, timeout, |p| {
        matches!(p, Succeeded | Failed | Aborted | TimedOut)
    })
    .await
}

/// The full outputs of an execution.
pub async fn outputs(admin: &mut Client, name: &str) -> LiteralMap {
    admin
        .get_execution_data(WorkflowExecutionGetDataRequest {
            id: Some(exec_id(name)),
        })
        .await
        .expect("get execution data")
        .into_inner()
        .full_outputs
        .unwrap_or_default()
}

/// Top-level node executions (id, phase).
pub async fn nodes(
    admin: &mut Client,
    name: &str,
) -> Vec<union_idl::flyteidl::admin::NodeExecution> {
    admin
        .list_node_executions(NodeExecutionListRequest {
            workflow_execution_id: Some(exec_id(name)),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("list node executions")
        .into_inner()
        .node_executions
}

/// The log URI of a node's first attempt.
pub async fn log_uri(admin: &mut Client, name: &str, node_id: &str) -> String {
    let tasks = admin
        .list_task_executions(TaskExecutionListRequest {
            node_execution_id: Some(core::NodeExecutionIdentifier {
                node_id: node_id.into(),
                execution_id: Some(exec_id(name)),
            }),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list task executions")
        .into_inner()
        .task_executions;
    tasks[0].closure.as_ref().unwrap().logs[0].uri.clone()
}

/// GET an http:// URL (plain HTTP/1.1, no dependencies): status and body.
pub fn http_get(url: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Task containers of a sandbox still known to the engine.
pub fn containers_of(work_root: &Path) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-a",
            "-q",
            "--filter",
            &format!("label=io.union.sandbox={}", work_root.display()),
        ])
        .output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
        Err(_) => Vec::new(),
    }
}
