//! `union sandbox` executions end to end: the real sandbox binary, workflows registered with the
//! real pyflyte, images built with `union build`, and every task run by flytekit in its own
//! container on the test engine (tests/setup/docker.sh).

use crate::support::build as build_util;
use crate::support::exec as exec_util;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::venv;
use crate::support::Sandbox;
use exec_util::*;
use tonic::Code;
use union_idl::flyteidl::admin::{
    execution_closure::OutputResult, ExecutionTerminateRequest, ResourceListRequest,
};
use union_idl::flyteidl::admin::{sort, NamedEntityIdentifier, Sort};
use union_idl::flyteidl::core::{node_execution, workflow_execution::Phase, ResourceType};

/// Generous: it bounds a hang on a busy machine, it never decides a result.
const TIMEOUT: Duration = Duration::from_secs(600);

/// Engine, registry, venv and the two task images (hello: flytekit; calc: the typed fixture's).
struct Setup {
    hello_image: String,
}

fn setup() -> Setup {
    venv();
    build_util::ensure_engine();
    let hello_image = build_image("hello", "workflows");
    build_image("typed", "workflows");
    Setup { hello_image }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("union-exec-test-")
        .tempdir_in("/tmp")
        .unwrap()
}

fn lp(name: &str, version: &str) -> union_idl::flyteidl::core::Identifier {
    id(ResourceType::LaunchPlan, name, version)
}

fn error_of(e: &union_idl::flyteidl::admin::Execution) -> String {
    match e.closure.as_ref().and_then(|c| c.output_result.as_ref()) {
        Some(OutputResult::Error(err)) => err.message.clone(),
        other => panic!("no error in {other:?}"),
    }
}

fn register_exec(sb: &Sandbox, dir: &Path, image: &str, version: &str) {
    let config = sb.write_config(dir);
    register(&config, dir, "exec", "workflows", Some(image), version);
}

/// The local result of the typed workflow, computed in-process by `union run` (no container).
fn local_calc_output() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_union"))
        .current_dir(crate::support::repo().join("python_fixtures/typed"))
        .env("UNION_WARM", "0")
        .args([
            "run",
            "workflows/calc.py",
            "calc_wf",
            "--xs",
            "[1,2,3,4,5]",
            "--factor",
            "3",
            "--threshold",
            "4.5",
        ])
        .output()
        .expect("union run");
    assert!(
        out.status.success(),
        "union run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_run_in_containers() {
    let s = setup();
    let dir = tempdir();
    let sb = Sandbox::start_in(&dir.path().join("data"));
    let mut admin = sb.admin().await;
    register_exec(&sb, dir.path(), &s.hello_image, "v1");
    // Another version: the `union` plugin registers the same helper task with every package.
    register(
        &sb.write_config(dir.path()),
        dir.path(),
        "typed",
        "workflows",
        None,
        "t1",
    );

    // hello: computed in a container, named by the caller.
    admin
        .create_execution(create_request(
            lp("workflows.hello.hello_wf", "v1"),
            "hello-alice",
            inputs(vec![("name", string("Alice"))]),
        ))
        .await
        .unwrap();
    // The typed workflow with a subworkflow, a dataclass and an Optional default, and a 20-way
    // fan-out plus a branch, all at once.
    let calc = admin
        .create_execution(create_request(
            lp("workflows.calc.calc_wf", "t1"),
            "",
            inputs(vec![
                ("xs", list((1..=5).map(int).collect())),
                ("factor", int(3)),
                ("threshold", float(4.5)),
            ]),
        ))
        .await
        .unwrap()
        .into_inner()
        .id
        .unwrap()
        .name;
    assert_eq!(calc.len(), 20, "generated name {calc}");
    assert!(calc.starts_with(|c: char| c.is_ascii_lowercase()));
    let fanout = admin
        .create_execution(create_request(
            lp("workflows.fanout.fanout_wf", "v1"),
            "fanout",
            inputs(vec![]),
        ))
        .await
        .unwrap()
        .into_inner()
        .id
        .unwrap()
        .name;
    admin
        .create_execution(create_request(
            lp("workflows.fanout.parity_wf", "v1"),
            "parity",
            inputs(vec![("n", int(7))]),
        ))
        .await
        .unwrap();
    // A task run directly, by task id.
    admin
        .create_execution(create_request(
            id(ResourceType::Task, "workflows.hello.say_hello", "v1"),
            "direct-task",
            inputs(vec![("name", string("Bob"))]),
        ))
        .await
        .unwrap();

    let hello = wait_done(&mut admin, "hello-alice", TIMEOUT).await;
    let closure = hello.closure.as_ref().unwrap();
    assert_eq!(
        closure.phase,
        Phase::Succeeded as i32,
        "{:?}",
        closure.output_result
    );
    assert!(
        closure.started_at.is_some() && closure.duration.is_some() && closure.created_at.is_some()
    );
    assert_eq!(
        closure.workflow_id.as_ref().unwrap().name,
        "workflows.hello.hello_wf"
    );
    let out = outputs(&mut admin, "hello-alice").await;
    assert_eq!(
        as_string(&out.literals["o0"]).as_deref(),
        Some("Hello, Alice!")
    );
    let nodes_ = nodes(&mut admin, "hello-alice").await;
    assert_eq!(nodes_.len(), 1);
    assert_eq!(nodes_[0].metadata.as_ref().unwrap().spec_node_id, "n0");
    assert_eq!(
        nodes_[0].closure.as_ref().unwrap().phase,
        node_execution::Phase::Succeeded as i32
    );
    let (status, log) = http_get(&log_uri(&mut admin, "hello-alice", "n0").await);
    assert_eq!(status, 200);
    assert!(!log.is_empty(), "empty log");

    let direct = wait_done(&mut admin, "direct-task", TIMEOUT).await;
    assert_eq!(
        direct.closure.as_ref().unwrap().phase,
        Phase::Succeeded as i32
    );
    assert_eq!(
        as_string(&outputs(&mut admin, "direct-task").await.literals["o0"]).as_deref(),
        Some("Hello, Bob!")
    );

    let e = wait_done(&mut admin, &calc, TIMEOUT).await;
    assert_eq!(
        e.closure.as_ref().unwrap().phase,
        Phase::Succeeded as i32,
        "{:?}",
        e.closure.as_ref().unwrap().output_result
    );
    let remote = as_string(&outputs(&mut admin, &calc).await.literals["o0"]).unwrap();
    assert_eq!(remote, "mean 9.0 of 5 values is above 4.5");
    let local = local_calc_output();
    assert_eq!(local, remote, "the local run and the sandbox disagree");
    let calc_nodes: Vec<String> = nodes(&mut admin, &calc)
        .await
        .iter()
        .map(|n| n.id.as_ref().unwrap().node_id.clone())
        .collect();
    assert_eq!(
        calc_nodes,
        ["n0", "n1"],
        "top-level nodes only (the subworkflow's are its children)"
    );

    let f = wait_done(&mut admin, &fanout, TIMEOUT).await;
    assert_eq!(
        f.closure.as_ref().unwrap().phase,
        Phase::Succeeded as i32,
        "{:?}",
        f.closure.as_ref().unwrap().output_result
    );
    assert_eq!(
        as_int(&outputs(&mut admin, &fanout).await.literals["o0"]),
        Some((0..20).map(|x| x * x).sum())
    );
    assert_eq!(nodes(&mut admin, &fanout).await.len(), 21);

    let p = wait_done(&mut admin, "parity", TIMEOUT).await;
    assert_eq!(
        p.closure.as_ref().unwrap().phase,
        Phase::Succeeded as i32,
        "{:?}",
        p.closure.as_ref().unwrap().output_result
    );
    assert_eq!(
        as_string(&outputs(&mut admin, "parity").await.literals["o0"]).as_deref(),
        Some("7 is small")
    );

    // ListExecutions: newest first.
    let list = admin
        .list_executions(ResourceListRequest {
            id: Some(NamedEntityIdentifier {
                project: PROJECT.into(),
                domain: DOMAIN.into(),
                ..Default::default()
            }),
            limit: 100,
            sort_by: Some(Sort {
                key: "created_at".into(),
                direction: sort::Direction::Descending as i32,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = list
        .executions
        .iter()
        .map(|e| e.id.as_ref().unwrap().name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "direct-task",
            "parity",
            "fanout",
            calc.as_str(),
            "hello-alice"
        ]
    );

    // A conditional whose condition reads a workflow input and whose branches read an upstream
    // task's output starts only after that task.
    admin
        .create_execution(create_request(
            lp("workflows.fanout.summary_wf", "v1"),
            "summary",
            inputs(vec![("n", int(7))]),
        ))
        .await
        .unwrap();
    let s = wait_done(&mut admin, "summary", TIMEOUT).await;
    assert_eq!(
        s.closure.as_ref().unwrap().phase,
        Phase::Succeeded as i32,
        "{:?}",
        s.closure.as_ref().unwrap().output_result
    );
    assert_eq!(
        as_string(&outputs(&mut admin, "summary").await.literals["o0"]).as_deref(),
        Some("14 is small")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_reported_like_flyteadmin() {
    let s = setup();
    let dir = tempdir();
    let sb = Sandbox::start_in(&dir.path().join("data"));
    let mut admin = sb.admin().await;
    register_exec(&sb, dir.path(), &s.hello_image, "v1");
    let missing_image = "localhost:30000/union-test/no-such-image:v404";
    register_exec(&sb, dir.path(), missing_image, "missing");

    // Request errors.
    let e = admin
        .create_execution(create_request(
            lp("workflows.nothing", "v1"),
            "",
            inputs(vec![]),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = admin
        .create_execution(create_request(
            lp("workflows.failing.validate_wf", "v1"),
            "",
            inputs(vec![]),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("missing required inputs: `n`"),
        "{}",
        e.message()
    );

    // A task that raises: the user's traceback is the execution's error.
    admin
        .create_execution(create_request(
            lp("workflows.failing.validate_wf", "v1"),
            "raises",
            inputs(vec![("n", int(-1))]),
        ))
        .await
        .unwrap();
    let e = admin
        .create_execution(create_request(
            lp("workflows.failing.validate_wf", "v1"),
            "raises",
            inputs(vec![("n", int(1))]),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    // An image that does not exist.
    admin
        .create_execution(create_request(
            lp("workflows.hello.hello_wf", "missing"),
            "no-image",
            inputs(vec![]),
        ))
        .await
        .unwrap();

    let raised = wait_done(&mut admin, "raises", TIMEOUT).await;
    assert_eq!(raised.closure.as_ref().unwrap().phase, Phase::Failed as i32);
    let msg = error_of(&raised);
    assert!(
        msg.contains("Traceback") && msg.contains("ValueError: n must be >= 0, got -1"),
        "{msg}"
    );
    assert!(
        msg.contains("in check"),
        "the traceback names the user's function: {msg}"
    );
    let n = &nodes(&mut admin, "raises").await[0];
    assert_eq!(
        n.closure.as_ref().unwrap().phase,
        node_execution::Phase::Failed as i32
    );

    let no_image = wait_done(&mut admin, "no-image", TIMEOUT).await;
    assert_eq!(
        no_image.closure.as_ref().unwrap().phase,
        Phase::Failed as i32
    );
    let msg = error_of(&no_image);
    assert!(
        msg.contains(missing_image) && msg.contains("failed to pull image"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_kills_the_running_container() {
    let s = setup();
    let dir = tempdir();
    let sb = Sandbox::start_in(&dir.path().join("data"));
    let mut admin = sb.admin().await;
    register_exec(&sb, dir.path(), &s.hello_image, "v1");
    // Two at once: one is terminated, the other finishes.
    for (name, secs) in [("long", 300), ("short", 3)] {
        admin
            .create_execution(create_request(
                lp("workflows.slow.sleepy_wf", "v1"),
                name,
                inputs(vec![("seconds", int(secs))]),
            ))
            .await
            .unwrap();
    }
    // Wait until the container is running (the node reached RUNNING).
    let start = std::time::Instant::now();
    loop {
        let n = nodes(&mut admin, "long").await;
        if n.first().is_some_and(|n| {
            n.closure.as_ref().unwrap().phase == node_execution::Phase::Running as i32
        }) {
            break;
        }
        assert!(start.elapsed() < TIMEOUT, "node never ran");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let work_root = std::fs::canonicalize(dir.path().join("data"))
        .unwrap()
        .join("executions");
    admin
        .terminate_execution(ExecutionTerminateRequest {
            id: Some(exec_id("long")),
            cause: "enough".into(),
        })
        .await
        .unwrap();
    let long = wait_done(&mut admin, "long", TIMEOUT).await;
    let closure = long.closure.unwrap();
    assert_eq!(closure.phase, Phase::Aborted as i32);
    match closure.output_result {
        Some(OutputResult::AbortMetadata(m)) => assert_eq!(m.cause, "enough"),
        other => panic!("{other:?}"),
    }
    let short = wait_done(&mut admin, "short", TIMEOUT).await;
    let sc = short.closure.unwrap();
    assert_eq!(sc.phase, Phase::Succeeded as i32, "{:?}", sc.output_result);
    // Both ran at the same time: "short" started before "long" was aborted.
    let started = sc.started_at.unwrap();
    assert!(
        (started.seconds, started.nanos)
            < (
                closure.updated_at.unwrap().seconds,
                closure.updated_at.unwrap().nanos
            )
    );
    let e = admin
        .terminate_execution(ExecutionTerminateRequest {
            id: Some(exec_id("short")),
            cause: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    // Finished containers are removed in the background, off the task's path: none is left.
    let start = std::time::Instant::now();
    while !containers_of(&work_root).is_empty() {
        assert!(
            start.elapsed() < TIMEOUT,
            "containers left: {:?}",
            containers_of(&work_root)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_leaves_no_execution_running() {
    let s = setup();
    let dir = tempdir();
    let data = dir.path().join("data");
    let mut sb = Sandbox::start_in(&data);
    let port = sb.port;
    let mut admin = sb.admin().await;
    register_exec(&sb, dir.path(), &s.hello_image, "v1");
    admin
        .create_execution(create_request(
            lp("workflows.slow.sleepy_wf", "v1"),
            "interrupted",
            inputs(vec![("seconds", int(300))]),
        ))
        .await
        .unwrap();
    wait_until(&mut admin, "interrupted", TIMEOUT, |p| p == Phase::Running).await;
    // The task's container is up (its node runs) before the crash.
    let running = |ns: &[union_idl::flyteidl::admin::NodeExecution]| {
        ns.iter().any(|n| {
            n.closure.as_ref().map(|c| c.phase) == Some(node_execution::Phase::Running as i32)
        })
    };
    let start = std::time::Instant::now();
    while !running(&nodes(&mut admin, "interrupted").await) {
        assert!(start.elapsed() < TIMEOUT, "the node never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sb.kill();
    drop(admin);

    let sb = Sandbox::launch(crate::support::sandbox::Launch {
        data_dir: Some(&data),
        port,
        ..Default::default()
    });
    let mut admin = sb.admin().await;
    let e = wait_done(&mut admin, "interrupted", TIMEOUT).await;
    assert_eq!(e.closure.as_ref().unwrap().phase, Phase::Failed as i32);
    assert!(error_of(&e).contains("the sandbox restarted while this execution was running"));
    for n in nodes(&mut admin, "interrupted").await {
        assert_ne!(
            n.closure.unwrap().phase,
            node_execution::Phase::Running as i32
        );
    }
    // The orphaned container is removed in the background.
    let work_root = std::fs::canonicalize(&data).unwrap().join("executions");
    let start = std::time::Instant::now();
    while !containers_of(&work_root).is_empty() {
        assert!(start.elapsed() < TIMEOUT, "orphaned container not removed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_docker_engine_executions_fail_clearly() {
    venv();
    let dir = tempdir();
    let data = dir.path().join("data");
    let sb = Sandbox::launch(crate::support::sandbox::Launch {
        data_dir: Some(&data),
        env: &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
        ..Default::default()
    });
    let mut admin = sb.admin().await;
    register_exec(&sb, dir.path(), "localhost:30000/any:1", "v1");
    admin
        .create_execution(create_request(
            lp("workflows.hello.hello_wf", "v1"),
            "no-engine",
            inputs(vec![]),
        ))
        .await
        .unwrap();
    let e = wait_done(&mut admin, "no-engine", TIMEOUT).await;
    assert_eq!(e.closure.as_ref().unwrap().phase, Phase::Failed as i32);
    let msg = error_of(&e);
    assert!(
        msg.contains("no Docker engine at unix:///nonexistent/docker.sock"),
        "{msg}"
    );
}
