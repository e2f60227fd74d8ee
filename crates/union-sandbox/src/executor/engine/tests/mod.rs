//! The scheduler against an in-process runner: "add" adds, "flaky" fails recoverably twice,
//! "boom" fails for good, "sleep" waits to be cancelled. The helpers build workflows and run
//! them; [`scheduling`] holds the DAG's order, parallelism, retries, timeouts and cancellation,
//! [`kinds`] the node kinds (subworkflows, launch plans, branches, arrays) and invalid nodes.

#![allow(deprecated)] // tests build `Operand.primitive`, as flytekit 1.16 still does

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::*;
use crate::executor::bindings::{primitive_literal, START_NODE};
use crate::executor::{
    entity_ref, Event, NoLaunchPlans, NodePhase, ResolvedLaunchPlan, TaskFailure, TaskOutcome,
    TaskPhase, TaskRequest,
};
use union_idl::flyteidl::core::{
    binding_data, boolean_expression, comparison_expression::Operator, literal, node::Target,
    operand, primitive, scalar, task_node, workflow_node, Binding, BindingData, BooleanExpression,
    BranchNode, ComparisonExpression, Identifier, IfBlock, IfElseBlock, Literal, Node, Operand,
    OutputReference, Primitive, RetryStrategy, TaskMetadata, TaskTemplate, WorkflowNode,
    WorkflowTemplate,
};

#[derive(Default)]
struct FakeRunner {
    running: AtomicUsize,
    max_running: AtomicUsize,
    calls: Mutex<Vec<(String, u32)>>,
}

fn int_of(l: Option<&Literal>) -> i64 {
    match l.and_then(|l| l.value.as_ref()) {
        Some(literal::Value::Scalar(s)) => match &s.value {
            Some(scalar::Value::Primitive(Primitive {
                value: Some(primitive::Value::Integer(i)),
            })) => *i,
            _ => 0,
        },
        _ => 0,
    }
}

fn int(i: i64) -> Literal {
    primitive_literal(primitive::Value::Integer(i))
}

fn out(i: i64) -> LiteralMap {
    LiteralMap {
        literals: [("o0".to_string(), int(i))].into(),
    }
}

impl TaskRunner for FakeRunner {
    fn run<'a>(
        &'a self,
        request: &'a TaskRequest,
        cancel: &'a CancelToken,
    ) -> BoxFuture<'a, TaskOutcome> {
        Box::pin(async move {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_running.fetch_max(now, Ordering::SeqCst);
            let name = request
                .task
                .id
                .as_ref()
                .map(|i| i.name.clone())
                .unwrap_or_default();
            self.calls.lock().unwrap().push((
                request.attempt.node_id.clone(),
                request.attempt.retry_attempt,
            ));
            let a = int_of(request.inputs.literals.get("a"));
            let b = int_of(request.inputs.literals.get("b"));
            let outcome = match name.as_str() {
                "add" => {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    TaskOutcome::Succeeded(out(a + b))
                }
                "flaky" if request.attempt.retry_attempt < 2 => TaskOutcome::Failed(TaskFailure {
                    recoverable: true,
                    ..TaskFailure::user("Flaky", "try again")
                }),
                "flaky" => TaskOutcome::Succeeded(out(a)),
                "boom" => TaskOutcome::Failed(TaskFailure::user(
                    "ValueError",
                    "Traceback ...\nValueError: boom",
                )),
                // A map task element: its index from the environment, as flytekit reads it.
                "element" => {
                    let var = request
                        .env
                        .iter()
                        .find(|(k, _)| k == "BATCH_JOB_ARRAY_INDEX_VAR_NAME")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    let i: usize = request
                        .env
                        .iter()
                        .find(|(k, _)| *k == var)
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(usize::MAX);
                    let x = match request
                        .inputs
                        .literals
                        .get("xs")
                        .and_then(|l| l.value.as_ref())
                    {
                        Some(literal::Value::Collection(c)) => int_of(c.literals.get(i)),
                        _ => -1,
                    };
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if x == 3 {
                        TaskOutcome::Failed(TaskFailure::user("ValueError", "ValueError: 3"))
                    } else {
                        TaskOutcome::Succeeded(out(x * 10))
                    }
                }
                "sleep" => {
                    tokio::select! {
                        _ = cancel.cancelled() => TaskOutcome::Aborted,
                        _ = tokio::time::sleep(Duration::from_secs(30)) => TaskOutcome::Succeeded(out(0)),
                    }
                }
                other => TaskOutcome::Failed(TaskFailure::system(
                    "Unknown",
                    format!("no fake task {other}"),
                )),
            };
            self.running.fetch_sub(1, Ordering::SeqCst);
            outcome
        })
    }
}

fn task_id(name: &str) -> Identifier {
    Identifier {
        resource_type: core::ResourceType::Task as i32,
        project: "p".into(),
        domain: "d".into(),
        name: name.into(),
        version: "v1".into(),
        org: String::new(),
    }
}

fn task(name: &str, retries: u32, timeout: Option<Duration>) -> TaskTemplate {
    TaskTemplate {
        id: Some(task_id(name)),
        r#type: "python-task".into(),
        metadata: Some(TaskMetadata {
            retries: Some(RetryStrategy { retries }),
            timeout: timeout.map(|t| prost_types::Duration {
                seconds: t.as_secs() as i64,
                nanos: t.subsec_nanos() as i32,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn promise(node: &str, var: &str) -> BindingData {
    BindingData {
        value: Some(binding_data::Value::Promise(OutputReference {
            node_id: node.into(),
            var: var.into(),
            attr_path: vec![],
        })),
        union: None,
    }
}

fn constant(i: i64) -> BindingData {
    let Some(literal::Value::Scalar(s)) = int(i).value else {
        unreachable!()
    };
    BindingData {
        value: Some(binding_data::Value::Scalar(*s)),
        union: None,
    }
}

fn task_node(id: &str, task: &str, inputs: Vec<(&str, BindingData)>) -> Node {
    Node {
        id: id.into(),
        inputs: inputs
            .into_iter()
            .map(|(v, b)| Binding {
                var: v.into(),
                binding: Some(b),
            })
            .collect(),
        target: Some(Target::TaskNode(core::TaskNode {
            overrides: None,
            reference: Some(task_node::Reference::ReferenceId(task_id(task))),
        })),
        ..Default::default()
    }
}

fn workflow(name: &str, nodes: Vec<Node>, outputs: Vec<(&str, BindingData)>) -> WorkflowTemplate {
    WorkflowTemplate {
        id: Some(Identifier {
            resource_type: core::ResourceType::Workflow as i32,
            ..task_id(name)
        }),
        nodes,
        outputs: outputs
            .into_iter()
            .map(|(v, b)| Binding {
                var: v.into(),
                binding: Some(b),
            })
            .collect(),
        ..Default::default()
    }
}

fn closure(primary: WorkflowTemplate, subs: Vec<WorkflowTemplate>) -> Arc<WorkflowClosure> {
    let mut c = WorkflowClosure {
        primary,
        ..Default::default()
    };
    for t in [
        task("add", 0, None),
        task("flaky", 3, None),
        task("boom", 5, None),
        task("sleep", 0, None),
    ] {
        c.tasks
            .insert(entity_ref(t.id.as_ref().unwrap()), Arc::new(t));
    }
    c.tasks.insert(
        entity_ref(&task_id("slow")),
        Arc::new(TaskTemplate {
            id: Some(task_id("sleep")),
            ..task("sleep", 1, Some(Duration::from_millis(50)))
        }),
    );
    for s in subs {
        c.sub_workflows
            .insert(entity_ref(s.id.as_ref().unwrap()), s);
    }
    Arc::new(c)
}

struct Recorder(Mutex<Vec<Event>>);

impl EventSink for Recorder {
    fn emit(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

fn exec_id() -> core::WorkflowExecutionIdentifier {
    core::WorkflowExecutionIdentifier {
        project: "p".into(),
        domain: "d".into(),
        name: "e1".into(),
        org: String::new(),
    }
}

async fn run(
    parallelism: usize,
    closure: Arc<WorkflowClosure>,
    inputs: LiteralMap,
    cancel: CancelToken,
) -> (ExecutionOutcome, Arc<FakeRunner>, Vec<Event>) {
    run_with(
        parallelism,
        closure,
        inputs,
        cancel,
        Arc::new(NoLaunchPlans),
    )
    .await
}

async fn run_with(
    parallelism: usize,
    closure: Arc<WorkflowClosure>,
    inputs: LiteralMap,
    cancel: CancelToken,
    resolver: Arc<dyn LaunchPlanResolver>,
) -> (ExecutionOutcome, Arc<FakeRunner>, Vec<Event>) {
    let runner = Arc::new(FakeRunner::default());
    let exec = Executor::new(
        ExecutorConfig {
            max_parallelism: parallelism,
        },
        runner.clone(),
        resolver,
    );
    let rec = Arc::new(Recorder(Mutex::new(Vec::new())));
    let outcome = exec
        .run(exec_id(), closure, inputs, rec.clone(), cancel)
        .await;
    let events = rec.0.lock().unwrap().clone();
    (outcome, runner, events)
}

fn inputs(pairs: &[(&str, i64)]) -> LiteralMap {
    LiteralMap {
        literals: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), int(*v)))
            .collect(),
    }
}

fn node_phases(events: &[Event], id: &str) -> Vec<NodePhase> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Node(n) if n.node_id == id => Some(n.phase),
            _ => None,
        })
        .collect()
}

mod kinds;
mod scheduling;
