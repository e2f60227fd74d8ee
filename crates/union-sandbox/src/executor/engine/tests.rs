//! The scheduler against an in-process runner: "add" adds, "flaky" fails recoverably twice,
//! "boom" fails for good, "sleep" waits to be cancelled.

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

#[tokio::test]
async fn diamond_runs_in_dependency_order_with_parallel_fan_out() {
    // n0 = x + 1; n1 = n0 + 10 and n2 = n0 + 100 in parallel; n3 = n1 + n2.
    let wf = workflow(
        "wf",
        vec![
            task_node(
                "n3",
                "add",
                vec![("a", promise("n1", "o0")), ("b", promise("n2", "o0"))],
            ),
            task_node(
                "n0",
                "add",
                vec![("a", promise(START_NODE, "x")), ("b", constant(1))],
            ),
            task_node(
                "n1",
                "add",
                vec![("a", promise("n0", "o0")), ("b", constant(10))],
            ),
            task_node(
                "n2",
                "add",
                vec![("a", promise("n0", "o0")), ("b", constant(100))],
            ),
        ],
        vec![("result", promise("n3", "o0"))],
    );
    let (outcome, runner, events) = run(
        4,
        closure(wf, vec![]),
        inputs(&[("x", 1)]),
        CancelToken::new(),
    )
    .await;
    assert_eq!(
        outcome,
        ExecutionOutcome::Succeeded(LiteralMap {
            literals: [("result".to_string(), int(114))].into()
        })
    );
    assert_eq!(runner.max_running.load(Ordering::SeqCst), 2);
    assert_eq!(
        node_phases(&events, "n3"),
        [NodePhase::Queued, NodePhase::Running, NodePhase::Succeeded]
    );
    let order: Vec<String> = runner
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.0.clone())
        .collect();
    assert_eq!(order[0], "n0");
    assert_eq!(order[3], "n3");
}

#[tokio::test]
async fn parallelism_limit_caps_concurrent_attempts() {
    let nodes: Vec<Node> = (0..6)
        .map(|i| {
            task_node(
                &format!("n{i}"),
                "add",
                vec![("a", constant(i)), ("b", constant(0))],
            )
        })
        .collect();
    let (outcome, runner, _) = run(
        2,
        closure(workflow("wf", nodes, vec![]), vec![]),
        inputs(&[]),
        CancelToken::new(),
    )
    .await;
    assert!(matches!(outcome, ExecutionOutcome::Succeeded(_)));
    assert_eq!(runner.max_running.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn recoverable_failures_are_retried_and_user_errors_are_not() {
    let wf = workflow(
        "wf",
        vec![task_node("n0", "flaky", vec![("a", constant(7))])],
        vec![("o", promise("n0", "o0"))],
    );
    let (outcome, runner, events) =
        run(2, closure(wf, vec![]), inputs(&[]), CancelToken::new()).await;
    assert_eq!(
        outcome,
        ExecutionOutcome::Succeeded(LiteralMap {
            literals: [("o".to_string(), int(7))].into()
        })
    );
    assert_eq!(runner.calls.lock().unwrap().len(), 3);
    let task_phases: Vec<TaskPhase> = events
        .iter()
        .filter_map(|e| {
            if let Event::Task(t) = e {
                Some(t.phase)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        task_phases
            .iter()
            .filter(|p| **p == TaskPhase::RetryableFailed)
            .count(),
        2
    );

    let wf = workflow("wf", vec![task_node("n0", "boom", vec![])], vec![]);
    let (outcome, runner, _) = run(2, closure(wf, vec![]), inputs(&[]), CancelToken::new()).await;
    let ExecutionOutcome::Failed { node_id, error } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(node_id, "n0");
    assert!(error.message.contains("ValueError: boom"));
    assert_eq!(
        runner.calls.lock().unwrap().len(),
        1,
        "non-recoverable errors are not retried"
    );
}

#[tokio::test]
async fn a_failure_aborts_running_siblings() {
    let wf = workflow(
        "wf",
        vec![
            task_node("n0", "sleep", vec![]),
            task_node("n1", "boom", vec![]),
        ],
        vec![],
    );
    let (outcome, _, events) = run(4, closure(wf, vec![]), inputs(&[]), CancelToken::new()).await;
    assert!(
        matches!(&outcome, ExecutionOutcome::Failed { node_id, .. } if node_id == "n1"),
        "{outcome:?}"
    );
    assert_eq!(node_phases(&events, "n0").last(), Some(&NodePhase::Aborted));
}

#[tokio::test]
async fn timeouts_fail_the_attempt_and_are_retried() {
    let mut n = task_node("n0", "sleep", vec![]);
    n.target = Some(Target::TaskNode(core::TaskNode {
        overrides: None,
        reference: Some(task_node::Reference::ReferenceId(task_id("slow"))),
    }));
    let (outcome, runner, _) = run(
        2,
        closure(workflow("wf", vec![n], vec![]), vec![]),
        inputs(&[]),
        CancelToken::new(),
    )
    .await;
    let ExecutionOutcome::Failed { error, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(error.code, "Timeout");
    assert_eq!(runner.calls.lock().unwrap().len(), 2, "one retry");
}

#[tokio::test]
async fn cancel_aborts_the_execution() {
    let wf = workflow("wf", vec![task_node("n0", "sleep", vec![])], vec![]);
    let cancel = CancelToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        c2.cancel();
    });
    let (outcome, _, events) = run(2, closure(wf, vec![]), inputs(&[]), cancel).await;
    assert_eq!(outcome, ExecutionOutcome::Aborted);
    assert_eq!(node_phases(&events, "n0").last(), Some(&NodePhase::Aborted));
}

#[tokio::test]
async fn subworkflows_launch_plans_and_branches() {
    let sub = workflow(
        "sub",
        vec![task_node(
            "n0",
            "add",
            vec![("a", promise(START_NODE, "a")), ("b", constant(1))],
        )],
        vec![("o0", promise("n0", "o0"))],
    );
    let sub_node = Node {
        id: "n0".into(),
        inputs: vec![Binding {
            var: "a".into(),
            binding: Some(promise(START_NODE, "x")),
        }],
        target: Some(Target::WorkflowNode(WorkflowNode {
            reference: Some(workflow_node::Reference::SubWorkflowRef(
                sub.id.clone().unwrap(),
            )),
        })),
        ..Default::default()
    };
    let cond = |op: Operator, v: i64| BooleanExpression {
        expr: Some(boolean_expression::Expr::Comparison(ComparisonExpression {
            operator: op as i32,
            left_value: Some(Operand {
                val: Some(operand::Val::Var("n0.o0".into())),
            }),
            right_value: Some(Operand {
                val: Some(operand::Val::Primitive(Primitive {
                    value: Some(primitive::Value::Integer(v)),
                })),
            }),
        })),
    };
    let branch = Node {
        id: "n1".into(),
        inputs: vec![Binding {
            var: "n0.o0".into(),
            binding: Some(promise("n0", "o0")),
        }],
        target: Some(Target::BranchNode(Box::new(BranchNode {
            if_else: Some(Box::new(IfElseBlock {
                case: Some(Box::new(IfBlock {
                    condition: Some(cond(Operator::Gt, 100)),
                    then_node: Some(Box::new(task_node("n1-n0", "boom", vec![]))),
                })),
                other: vec![IfBlock {
                    condition: Some(cond(Operator::Lte, 100)),
                    then_node: Some(Box::new(task_node(
                        "n1-n1",
                        "add",
                        vec![("a", promise("n0", "o0")), ("b", constant(1000))],
                    ))),
                }],
                default: None,
            })),
        }))),
        ..Default::default()
    };
    let lp_id = Identifier {
        resource_type: core::ResourceType::LaunchPlan as i32,
        ..task_id("lp")
    };
    let lp_node = Node {
        id: "n2".into(),
        inputs: vec![Binding {
            var: "a".into(),
            binding: Some(promise("n1", "o0")),
        }],
        target: Some(Target::WorkflowNode(WorkflowNode {
            reference: Some(workflow_node::Reference::LaunchplanRef(lp_id)),
        })),
        ..Default::default()
    };
    let wf = workflow(
        "wf",
        vec![sub_node, branch, lp_node],
        vec![("o", promise("n2", "o0"))],
    );

    struct Lp(Arc<WorkflowClosure>);
    impl LaunchPlanResolver for Lp {
        fn resolve<'a>(
            &'a self,
            _id: &'a Identifier,
        ) -> BoxFuture<'a, Result<ResolvedLaunchPlan, String>> {
            let closure = self.0.clone();
            Box::pin(async move {
                Ok(ResolvedLaunchPlan {
                    closure,
                    default_inputs: inputs(&[("b", 5)]),
                })
            })
        }
    }
    let lp_wf = workflow(
        "lpwf",
        vec![task_node(
            "n0",
            "add",
            vec![
                ("a", promise(START_NODE, "a")),
                ("b", promise(START_NODE, "b")),
            ],
        )],
        vec![("o0", promise("n0", "o0"))],
    );
    let resolver = Arc::new(Lp(closure(lp_wf, vec![])));
    let (outcome, runner, events) = run_with(
        2,
        closure(wf, vec![sub]),
        inputs(&[("x", 1)]),
        CancelToken::new(),
        resolver,
    )
    .await;
    // sub: 1 + 1 = 2; branch: 2 <= 100 → 2 + 1000; launch plan: 1002 + 5.
    assert_eq!(
        outcome,
        ExecutionOutcome::Succeeded(LiteralMap {
            literals: [("o".to_string(), int(1007))].into()
        })
    );
    let nodes: Vec<String> = runner
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.0.clone())
        .collect();
    assert_eq!(nodes, ["n0-0-n0", "n1-0-n1-n1", "n2-0-n0"]);
    let child = events.iter().find_map(|e| match e {
        Event::Node(n) if n.node_id == "n0-0-n0" => Some(n.parent_node_id.clone()),
        _ => None,
    });
    assert_eq!(child, Some(Some("n0".to_string())));
}

/// A map task: one attempt per element with its index in the environment, at most
/// `parallelism` at once, outputs in order, a failed element `None` within the success ratio.
#[tokio::test]
async fn array_nodes_run_each_element_and_gather_in_order() {
    use union_idl::flyteidl::core::{
        array_node::{ParallelismOption, SuccessCriteria},
        ArrayNode, LiteralCollection, TypedInterface, Variable, VariableMap,
    };
    let mut element = task("element", 0, None);
    element.interface = Some(TypedInterface {
        outputs: Some(VariableMap {
            variables: [("o0".to_string(), Variable::default())].into(),
        }),
        ..Default::default()
    });
    let xs = |v: &[i64]| Literal {
        value: Some(literal::Value::Collection(LiteralCollection {
            literals: v.iter().map(|i| int(*i)).collect(),
        })),
        ..Default::default()
    };
    let array = |ratio: Option<f32>| Node {
        id: "n0".into(),
        inputs: vec![Binding {
            var: "xs".into(),
            binding: Some(promise(START_NODE, "xs")),
        }],
        target: Some(Target::ArrayNode(Box::new(ArrayNode {
            node: Some(Box::new(task_node("n0", "element", vec![]))),
            parallelism_option: Some(ParallelismOption::Parallelism(2)),
            success_criteria: ratio.map(SuccessCriteria::MinSuccessRatio),
            is_original_sub_node_interface: Some(false),
            ..Default::default()
        }))),
        ..Default::default()
    };
    let wf = |ratio| {
        let mut c = (*closure(
            workflow("wf", vec![array(ratio)], vec![("o", promise("n0", "o0"))]),
            vec![],
        ))
        .clone();
        c.tasks
            .insert(entity_ref(&task_id("element")), Arc::new(element.clone()));
        Arc::new(c)
    };
    let given = |v: &[i64]| LiteralMap {
        literals: [("xs".to_string(), xs(v))].into(),
    };
    let (outcome, runner, events) =
        run(4, wf(None), given(&[1, 2, 4, 5, 6]), CancelToken::new()).await;
    assert_eq!(
        outcome,
        ExecutionOutcome::Succeeded(LiteralMap {
            literals: [("o".to_string(), xs(&[10, 20, 40, 50, 60]))].into()
        })
    );
    assert!(runner.max_running.load(Ordering::SeqCst) <= 2);
    let elements: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Node(n) if n.parent_node_id.as_deref() == Some("n0") => Some(n.node_id.clone()),
            _ => None,
        })
        .collect();
    assert!(elements.contains(&"n0-0-n4".to_string()), "{elements:?}");

    // 3 fails: within a ratio of 0.5 its output is None; without one the array fails.
    let none = Literal {
        value: Some(literal::Value::Scalar(Box::new(core::Scalar {
            value: Some(scalar::Value::NoneType(Default::default())),
        }))),
        ..Default::default()
    };
    let (outcome, _, _) = run(4, wf(Some(0.5)), given(&[1, 3]), CancelToken::new()).await;
    let expected = Literal {
        value: Some(literal::Value::Collection(LiteralCollection {
            literals: vec![int(10), none],
        })),
        ..Default::default()
    };
    assert_eq!(
        outcome,
        ExecutionOutcome::Succeeded(LiteralMap {
            literals: [("o".to_string(), expected)].into()
        })
    );
    let (outcome, _, _) = run(4, wf(None), given(&[1, 3]), CancelToken::new()).await;
    let ExecutionOutcome::Failed { node_id, error } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(node_id, "n0");
    assert!(
        error.message.contains("1 of 2 elements failed") && error.message.contains("element 1"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn invalid_nodes_fail_clearly() {
    let gate = Node {
        id: "n0".into(),
        target: Some(Target::GateNode(Default::default())),
        ..Default::default()
    };
    let (outcome, _, _) = run(
        2,
        closure(workflow("wf", vec![gate], vec![]), vec![]),
        inputs(&[]),
        CancelToken::new(),
    )
    .await;
    let ExecutionOutcome::Failed { error, .. } = outcome else {
        panic!()
    };
    assert!(
        error.message.contains("gate node without a condition"),
        "{}",
        error.message
    );

    let dangling = task_node("n0", "add", vec![("a", promise("nX", "o0"))]);
    let (outcome, _, _) = run(
        2,
        closure(workflow("wf", vec![dangling], vec![]), vec![]),
        inputs(&[]),
        CancelToken::new(),
    )
    .await;
    let ExecutionOutcome::Failed { error, .. } = outcome else {
        panic!()
    };
    assert!(error.message.contains("nX"), "{}", error.message);

    let missing_input = task_node("n0", "add", vec![("a", promise(START_NODE, "x"))]);
    let (outcome, _, _) = run(
        2,
        closure(workflow("wf", vec![missing_input], vec![]), vec![]),
        inputs(&[]),
        CancelToken::new(),
    )
    .await;
    let ExecutionOutcome::Failed { node_id, error } = outcome else {
        panic!()
    };
    assert_eq!(node_id, "n0");
    assert!(
        error.message.contains("`x` was not given"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn single_task_closures_bind_inputs_and_outputs() {
    let c = WorkflowClosure::single_task(task("add", 0, None));
    let (outcome, _, _) = run(
        1,
        Arc::new(c),
        inputs(&[("a", 2), ("b", 3)]),
        CancelToken::new(),
    )
    .await;
    // The fake "add" task's interface is empty, so only the bindings the interface names exist.
    assert!(matches!(outcome, ExecutionOutcome::Succeeded(_)));
}

/// A conditional whose condition reads only a workflow input while its case reads an upstream
/// task's output (flytekit binds only the condition's operands to the branch node): the branch
/// waits for that task, as flytepropeller's does.
#[tokio::test]
async fn a_branch_waits_for_the_nodes_its_cases_read() {
    let cond = BooleanExpression {
        expr: Some(boolean_expression::Expr::Comparison(ComparisonExpression {
            operator: Operator::Gt as i32,
            left_value: Some(Operand {
                val: Some(operand::Val::Var(".x".into())),
            }),
            right_value: Some(Operand {
                val: Some(operand::Val::Primitive(Primitive {
                    value: Some(primitive::Value::Integer(0)),
                })),
            }),
        })),
    };
    let branch = Node {
        id: "n1".into(),
        inputs: vec![Binding {
            var: ".x".into(),
            binding: Some(promise(START_NODE, "x")),
        }],
        target: Some(Target::BranchNode(Box::new(BranchNode {
            if_else: Some(Box::new(IfElseBlock {
                case: Some(Box::new(IfBlock {
                    condition: Some(cond),
                    then_node: Some(Box::new(task_node(
                        "n1-n0",
                        "add",
                        vec![("a", promise("n0", "o0")), ("b", constant(1000))],
                    ))),
                })),
                other: vec![],
                default: None,
            })),
        }))),
        ..Default::default()
    };
    let wf = workflow(
        "wf",
        vec![
            // Listed after the branch, and slow (30 ms): only the dependency orders them.
            branch,
            task_node(
                "n0",
                "add",
                vec![("a", promise(START_NODE, "x")), ("b", constant(1))],
            ),
        ],
        vec![("o", promise("n1", "o0"))],
    );
    let (outcome, _runner, events) = run(
        4,
        closure(wf, vec![]),
        inputs(&[("x", 5)]),
        CancelToken::new(),
    )
    .await;
    match outcome {
        ExecutionOutcome::Succeeded(out) => assert_eq!(int_of(out.literals.get("o")), 1006),
        other => panic!("{other:?}"),
    }
    // The branch started only after n0 had succeeded.
    let order: Vec<(String, NodePhase)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Node(n) => Some((n.node_id.clone(), n.phase)),
            _ => None,
        })
        .collect();
    let n0_done = order
        .iter()
        .position(|(id, p)| id == "n0" && *p == NodePhase::Succeeded)
        .expect("n0 succeeded");
    let n1_start = order.iter().position(|(id, _)| id == "n1").expect("n1 ran");
    assert!(n0_done < n1_start, "{order:?}");
}
