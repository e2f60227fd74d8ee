//! `union run --remote` against the real sandbox, engine and registry: each task runs in its own
//! container from its image, with the real flytekit inside.

use std::sync::OnceLock;

use crate::support::*;

/// An image with flytekit (and union): the hello fixture's, built if missing.
pub(crate) fn task_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        // hello names no registry: pinned to the suite's, so that every sandbox can pull it.
        let p = Project::hello_pinned();
        let o = run(p.union_docker().args(["build", "-q", "workflows"]));
        assert!(o.status.success(), "building the hello image failed");
        stdout(&o).split_whitespace().next().unwrap().to_string()
    })
}

fn remote(sb: &Sandbox) -> std::process::Command {
    let mut c = union_docker();
    c.args(["run", "--remote", "--endpoint", &sb.endpoint()]);
    c
}

#[test]
fn hello_runs_in_a_container() {
    require_docker_infra();
    let sb = Sandbox::start();
    let o = run(remote(&sb).args([
        "--wait",
        &fixture("hello/workflows/hello.py"),
        "hello_world_wf",
        "--name",
        "Alice",
    ]));
    assert!(o.status.success());
    assert_eq!(stdout(&o), "Hello, Alice!\n");
    let err = stderr(&o);
    assert!(err.contains("node n0: SUCCEEDED"), "{err}");
}

#[test]
fn typed_workflow_gives_the_local_result() {
    require_docker_infra();
    let sb = Sandbox::start();
    let args = [
        "--xs",
        "[1,2,3,4,5]",
        "--factor",
        "2",
        "--threshold",
        "4.5",
        "--label",
        "remote",
    ];
    let local = run(union()
        .args(["run", &fixture("typed/workflows/calc.py"), "calc_wf"])
        .args(args));
    assert!(local.status.success());
    let o = run(remote(&sb)
        .args(["--wait", &fixture("typed/workflows/calc.py"), "calc_wf"])
        .args(args));
    assert!(o.status.success());
    assert_eq!(stdout(&o), stdout(&local));
}

#[test]
fn a_raising_task_shows_the_users_traceback() {
    require_docker_infra();
    let sb = Sandbox::start();
    let o = run(remote(&sb).args([
        "--image",
        task_image(),
        "--wait",
        &fixture("exec/workflows/failing.py"),
        "validate_wf",
        "--n",
        "-3",
    ]));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("failed"), "{err}");
    assert!(err.contains("ValueError"), "{err}");
    assert!(err.contains("n must be >= 0, got -3"), "{err}");
    assert!(err.contains("failing.py"), "{err}");
    assert!(stdout(&o).is_empty());
}

#[test]
fn an_image_that_does_not_exist_fails_with_its_name() {
    require_docker_infra();
    let sb = Sandbox::start();
    let missing = "localhost:30000/union-test/does-not-exist:nope";
    let o = run(remote(&sb).args([
        "--image",
        missing,
        "--wait",
        &fixture("exec/workflows/failing.py"),
        "validate_wf",
        "--n",
        "1",
    ]));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains(missing), "names the image: {err}");
}

#[test]
fn execution_name_get_and_list() {
    require_docker_infra();
    let sb = Sandbox::start();
    let o = run(remote(&sb).args([
        "--name",
        "myexec1",
        &fixture("hello/workflows/hello.py"),
        "hello_world_wf",
        "--name",
        "Bob",
    ]));
    assert!(o.status.success());
    assert_eq!(stdout(&o), "myexec1\n");
    // Wait for it through `union get execution`.
    let mut text = String::new();
    wait_until("myexec1 to end", LONG, || {
        text = get_execution(&sb, "myexec1");
        text.contains("Phase:      SUCCEEDED") || text.contains("FAILED")
    });
    assert!(text.contains("Phase:      SUCCEEDED"), "{text}");
    assert!(text.contains("Output:     o0 = \"Hello, Bob!\""), "{text}");
    assert!(text.contains("Input:      name = \"Bob\""), "{text}");
    let l = run(union().args(["get", "executions", "--endpoint", &sb.endpoint()]));
    assert!(l.status.success());
    assert!(
        stdout(&l).contains("myexec1") && stdout(&l).contains("SUCCEEDED"),
        "{}",
        stdout(&l)
    );
    // A second execution with the same name is refused.
    let again = run(remote(&sb).args([
        "--name",
        "myexec1",
        &fixture("hello/workflows/hello.py"),
        "hello_world_wf",
    ]));
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("myexec1"), "{}", stderr(&again));
    // Unknown names are clear.
    let g = run(union().args([
        "get",
        "execution",
        "nosuchexec",
        "--endpoint",
        &sb.endpoint(),
    ]));
    assert_eq!(g.status.code(), Some(1));
    assert!(
        stderr(&g).contains("no execution named `nosuchexec`"),
        "{}",
        stderr(&g)
    );
}

#[test]
fn terminate_stops_a_running_execution() {
    require_docker_infra();
    let sb = Sandbox::start();
    let o = run(remote(&sb)
        .args([
            "--image",
            task_image(),
            "--name",
            "slowexec",
            &fixture("exec/workflows/slow.py"),
        ])
        .arg(slow_entity())
        .args(slow_args()));
    assert!(o.status.success());
    wait_until("slowexec to run", LONG, || {
        get_execution(&sb, "slowexec").contains("Phase:      RUNNING")
    });
    let t = run(union().args(["terminate", "slowexec", "--endpoint", &sb.endpoint()]));
    assert!(t.status.success());
    let mut text = String::new();
    wait_until("slowexec to be aborted", LONG, || {
        text = get_execution(&sb, "slowexec");
        !text.contains("Phase:      RUNNING")
    });
    assert!(text.contains("Phase:      ABORTED"), "{text}");
}

/// Generous: it bounds a hang on a busy machine, it never decides a result.
pub(crate) const LONG: std::time::Duration = std::time::Duration::from_secs(600);

/// `union get execution NAME` against the sandbox: its stdout.
pub(crate) fn get_execution(sb: &Sandbox, name: &str) -> String {
    let g = run(union().args(["get", "execution", name, "--endpoint", &sb.endpoint()]));
    assert!(g.status.success(), "{}", stderr(&g));
    stdout(&g)
}

fn slow_entity() -> &'static str {
    "sleepy_wf"
}

fn slow_args() -> Vec<&'static str> {
    vec!["--seconds", "120"]
}

#[test]
fn remote_builder_needs_no_local_docker() {
    require_docker_infra();
    let sb = Sandbox::start();
    let o = run(union()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args([
            "run",
            "--remote",
            "--wait",
            "--endpoint",
            &sb.endpoint(),
            &fixture("remote_builder/workflows/remote_hello.py"),
            "remote_hello_wf",
            "--name",
            "Ada",
        ]));
    assert!(o.status.success());
    assert!(stdout(&o).ends_with(", Ada!\n"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("with the backend's image builder at"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_container_killed_for_memory_says_so() {
    require_docker_infra();
    let sb = Sandbox::start();
    let o = run(remote(&sb).args([
        "--image",
        task_image(),
        "--wait",
        &fixture("exec/workflows/oom.py"),
        "hog_wf",
    ]));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("out of memory"), "{err}");
    assert!(err.contains("64"), "names the limit: {err}");
}

/// pyflyte run's execution options, given to both CLIs from a user's project: the sandbox
/// stores the ExecutionSpec each sent, and ours equals pyflyte's field for field.
#[tokio::test(flavor = "multi_thread")]
async fn execution_options_reach_the_spec_as_pyflytes_do() {
    require_docker_infra();
    let sb = Sandbox::start();
    let p = Project::new("hello");
    let cfg = p.parent().join("config.yaml");
    std::fs::write(
        &cfg,
        format!(
            "admin:\n  endpoint: dns:///{}\n  insecure: true\n",
            sb.endpoint()
        ),
    )
    .unwrap();
    let options = [
        "--service-account",
        "trainer-sa",
        "--raw-output-data-prefix",
        "s3://bucket/raw",
        "--labels",
        "team=ml",
        "--annotations",
        "note=nightly",
        "--tags",
        "t1",
        "--overwrite-cache",
        "--interruptible",
        "true",
        "--max-parallelism",
        "3",
        "--cluster-pool",
        "gpu",
        "--execution-cluster-label",
        "blue",
        "--disable-notifications",
        "--env",
        "A=1",
    ];
    let entity = ["workflows/hello.py", "hello_world_wf", "--name", "Alice"];
    let ours = run(p
        .union_docker()
        .env("UNION_CONFIG", &cfg)
        .args(["run", "--remote"])
        .args(options)
        .args(entity));
    assert!(ours.status.success(), "{}", stderr(&ours));
    let ours_name = stdout(&ours).trim().to_string();
    assert!(
        stderr(&ours).contains(&format!(
            "Go to http://{}/console/projects/flytesnacks/domains/development/executions/{ours_name} to see execution in the console.",
            sb.endpoint()
        )),
        "{}",
        stderr(&ours)
    );
    let py = run(p
        .pyflyte(&cfg)
        .args(["run", "--remote"])
        .args(options)
        .args(entity));
    assert!(py.status.success(), "{}", stderr(&py));
    let py_out = stdout(&py);
    let py_name = py_out
        .split("/executions/")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no console URL in pyflyte's output: {py_out}"))
        .to_string();

    let admin = sb.admin().await;
    let spec_of = |name: String| {
        let mut admin = admin.clone();
        async move {
            admin
                .get_execution(union_idl::flyteidl::admin::WorkflowExecutionGetRequest {
                    id: Some(union_idl::flyteidl::core::WorkflowExecutionIdentifier {
                        project: "flytesnacks".into(),
                        domain: "development".into(),
                        name,
                        ..Default::default()
                    }),
                })
                .await
                .unwrap()
                .into_inner()
                .spec
                .unwrap()
        }
    };
    let mut ours_spec = spec_of(ours_name).await;
    let mut py_spec = spec_of(py_name).await;
    // Versions and the principal's bookkeeping aside, the two specs are the same.
    for s in [&mut ours_spec, &mut py_spec] {
        s.launch_plan = None;
        if let Some(m) = s.metadata.as_mut() {
            m.scheduled_at = None;
            m.system_metadata = None;
        }
    }
    assert_eq!(ours_spec, py_spec);
    assert_eq!(
        ours_spec
            .security_context
            .as_ref()
            .and_then(|s| s.run_as.as_ref())
            .map(|r| r.k8s_service_account.as_str()),
        Some("trainer-sa")
    );
    assert_eq!(ours_spec.max_parallelism, 3);
    assert_eq!(ours_spec.interruptible, Some(true));
}

/// Outputs too large to come inline (flyteadmin's `maxSizeInBytes`; here the sandbox's limit set
/// to 1 byte) are read from where the server put them, through DataProxy, never shown as none.
#[test]
fn outputs_too_large_to_come_inline_are_fetched() {
    require_docker_infra();
    let sb = Sandbox::launch(crate::support::sandbox::Launch {
        env: &[("UNION_SANDBOX_MAX_INLINE_BYTES", "1")],
        ..Default::default()
    });
    let o = run(remote(&sb).args([
        "--wait",
        &fixture("hello/workflows/hello.py"),
        "hello_world_wf",
        "--name",
        "Alice",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Hello, Alice!\n");
    let name = stderr(&o)
        .split("/executions/")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    let got = run(union().args(["get", "execution", &name, "--endpoint", &sb.endpoint()]));
    assert!(got.status.success(), "{}", stderr(&got));
    assert!(
        stdout(&got).contains("Output:     o0 = \"Hello, Alice!\""),
        "{}",
        stdout(&got)
    );
    // They did come the long way: the sandbox wrote them out instead of sending them inline.
    assert!(sb
        .data_dir()
        .join("blobs/offloaded")
        .join(&name)
        .join("outputs.pb")
        .is_file());
}

/// `get execution` shows values as flytekit's `literal_string_repr` does: an Optional input
/// its value, a dataclass output (msgpack on the wire) its fields; never a debug dump or a byte
/// count.
#[test]
fn get_execution_shows_values_as_flytekit_does() {
    require_docker_infra();
    let sb = Sandbox::start();
    let name_of = |o: &std::process::Output| {
        stderr(o)
            .split("/executions/")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap()
            .to_string()
    };
    let calc = run(remote(&sb).args([
        "--wait",
        &fixture("typed/workflows/calc.py"),
        "calc_wf",
        "--xs",
        "[1,2,3]",
        "--label",
        "remote",
    ]));
    assert!(calc.status.success(), "{}", stderr(&calc));
    let stats = run(remote(&sb).args([
        "--wait",
        &fixture("typed/workflows/calc.py"),
        "stats_wf",
        "--xs",
        "[1,2,3]",
    ]));
    assert!(stats.status.success(), "{}", stderr(&stats));
    for (o, want) in [
        (&calc, "Input:      label = \"remote\""),
        (&stats, "Output:     o0 = {\""),
    ] {
        let got = run(union().args([
            "get",
            "execution",
            &name_of(o),
            "--endpoint",
            &sb.endpoint(),
        ]));
        let text = stdout(&got);
        assert!(text.contains(want), "{text}");
        assert!(!text.contains("bytes, msgpack"), "{text}");
        assert!(!text.contains("Union {"), "{text}");
    }
}

/// flytekit's `Echo` task (no container) passes its inputs through, as flytepropeller's echo
/// plugin does; the answer is the local run's.
#[test]
fn an_echo_task_runs_without_a_container() {
    require_docker_infra();
    let sb = Sandbox::start();
    let local = run(union().args([
        "run",
        &fixture("exec/workflows/echo.py"),
        "echo_wf",
        "--a",
        "4",
    ]));
    assert_eq!(stdout(&local), "8\n");
    let o = run(remote(&sb).args([
        "--image",
        task_image(),
        "--wait",
        &fixture("exec/workflows/echo.py"),
        "echo_wf",
        "--a",
        "4",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "8\n");
}
