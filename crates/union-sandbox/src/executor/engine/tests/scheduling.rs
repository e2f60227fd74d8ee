//! Order, parallelism, retries, timeouts and cancellation.

use super::*;

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
