//! Load generator for `union sandbox`: CreateTask/s over loopback with concurrent clients.
//!
//! Usage: `sandbox_create_task <endpoint> [concurrency=64] [total=20000] [connections=8]`
//! (run by `tests/bench/sandbox_create_task.sh`, which starts the sandbox). Every request creates
//! a new task version with a flytekit-sized template (~1 KiB), so each one is a database insert.

// Tests and examples show what they ran; the print lints are for library code.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use union_idl::flyteidl::admin::{TaskCreateRequest, TaskSpec};
use union_idl::flyteidl::core::{
    literal_type, task_template, Container, Identifier, LiteralType, ResourceType, RuntimeMetadata,
    SimpleType, TaskMetadata, TaskTemplate, TypedInterface, Variable, VariableMap,
};
use union_idl::flyteidl::service::admin_service_client::AdminServiceClient;

fn request(run: &str, i: usize) -> TaskCreateRequest {
    let id = Identifier {
        resource_type: ResourceType::Task as i32,
        project: "flytesnacks".into(),
        domain: "development".into(),
        name: format!("bench.{run}.task_{}", i % 100),
        version: format!("v{i}"),
        org: String::new(),
    };
    let int = || Variable {
        r#type: Some(LiteralType {
            r#type: Some(literal_type::Type::Simple(SimpleType::Integer as i32)),
            ..Default::default()
        }),
        ..Default::default()
    };
    let args: Vec<String> = "pyflyte-fast-execute --additional-distribution file:///root/.union/sandbox/blobs/flytesnacks/development/YNMAVK4GLWENUA7MC74HTS7LCQ======/fastfac880bef3a44f48caeb84ea137443bd.tar.gz --dest-dir /root -- pyflyte-execute --inputs {{.input}} --output-prefix {{.outputPrefix}} --raw-output-data-prefix {{.rawOutputDataPrefix}} --checkpoint-path {{.checkpointOutputPrefix}} --prev-checkpoint {{.prevCheckpointPrefix}} --resolver flytekit.core.python_auto_container.default_task_resolver -- task-module bench.tasks task-name add"
        .split(' ')
        .map(str::to_string)
        .collect();
    TaskCreateRequest {
        id: Some(id.clone()),
        spec: Some(TaskSpec {
            template: Some(TaskTemplate {
                id: Some(id),
                r#type: "python-task".into(),
                metadata: Some(TaskMetadata {
                    runtime: Some(RuntimeMetadata {
                        r#type: 1,
                        version: "1.16.31".into(),
                        flavor: "python".into(),
                    }),
                    retries: None,
                    ..Default::default()
                }),
                interface: Some(TypedInterface {
                    inputs: Some(VariableMap {
                        variables: [("a".into(), int()), ("b".into(), int())]
                            .into_iter()
                            .collect(),
                    }),
                    outputs: Some(VariableMap {
                        variables: [("o0".into(), int())].into_iter().collect(),
                    }),
                }),
                target: Some(task_template::Target::Container(Container {
                    image: "cr.flyte.org/flyteorg/flytekit:py3.11-1.16.31".into(),
                    args,
                    ..Default::default()
                })),
                ..Default::default()
            }),
            description: None,
        }),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let endpoint = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:30080".into());
    let concurrency: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64);
    let total: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let connections: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(8).max(1);
    let run = format!("{}", std::process::id());

    let mut clients = Vec::new();
    for _ in 0..connections {
        clients.push(AdminServiceClient::connect(endpoint.clone()).await?);
    }
    // Warm up (connections, prepared statements).
    for i in 0..100 {
        clients[0]
            .create_task(request(&format!("warm{run}"), i))
            .await?;
    }

    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let mut client = clients[w % connections].clone();
        let next = next.clone();
        let run = run.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t = Instant::now();
                client
                    .create_task(request(&run, i))
                    .await
                    .map_err(|e| e.to_string())?;
                latencies.push(t.elapsed());
            }
            Ok::<_, String>(latencies)
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    for w in workers {
        latencies.extend(w.await??);
    }
    let elapsed = start.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "CreateTask: {total} requests, {concurrency} concurrent over {connections} connections, {:.2}s: {:.0} req/s (p50 {:.2} ms, p99 {:.2} ms)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
    Ok(())
}
