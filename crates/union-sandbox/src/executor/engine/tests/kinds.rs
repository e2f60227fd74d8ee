//! Subworkflows, launch plans, branches and array nodes, and nodes that cannot run.

use super::*;

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
