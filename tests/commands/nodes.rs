//! Every kind of Flyte node in the sandbox, from a user's project (`python_fixtures/nodes`,
//! copied into a temporary directory): map tasks, dynamic workflows, attribute access into
//! dataclasses, checkpoints across retries, gate nodes with their commands, failure policies.
//! Each answer is compared with the local run's where the local run can give it.

use std::process::{Command, Output};

use super::remote::{get_execution, task_image, LONG};
use crate::support::*;

/// A sandbox and a copy of the nodes project, with the commands a user would type.
struct Nodes {
    sb: Sandbox,
    project: Project,
}

impl Nodes {
    fn new() -> Nodes {
        require_docker_infra();
        Nodes {
            sb: Sandbox::start(),
            project: Project::new("nodes"),
        }
    }

    /// `union run FILE WF` locally (in-process).
    fn local(&self, file: &str, wf: &str) -> String {
        let o = run(self.project.union().args(["run", file, wf]));
        assert!(o.status.success(), "local run failed: {}", stderr(&o));
        stdout(&o)
    }

    /// `union run --remote --image IMAGE ARGS...` against the sandbox.
    fn remote(&self) -> Command {
        let mut c = self.project.union_docker();
        c.args([
            "run",
            "--remote",
            "--endpoint",
            &self.sb.endpoint(),
            "--image",
            task_image(),
        ]);
        c
    }

    /// `run --remote --wait FILE WF`, which must succeed: its stdout.
    fn run_remote(&self, file: &str, wf: &str) -> String {
        let o = run(self.remote().args(["--wait", file, wf]));
        assert!(o.status.success(), "{wf} failed: {}", stderr(&o));
        stdout(&o)
    }

    /// `union ARGS... --endpoint SANDBOX` from the project.
    fn union(&self, args: &[&str]) -> Output {
        run(self
            .project
            .union()
            .args(args)
            .args(["--endpoint", &self.sb.endpoint()]))
    }

    fn wait_done(&self, name: &str) -> String {
        let mut text = String::new();
        wait_until(&format!("{name} to end"), LONG, || {
            text = get_execution(&self.sb, name);
            ["SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"]
                .iter()
                .any(|p| text.contains(&format!("Phase:      {p}\n")))
        });
        text
    }
}

#[test]
fn map_tasks_run_an_element_per_container_and_gather_in_order() {
    let n = Nodes::new();
    for wf in ["squares_wf", "partial_wf", "tolerant_wf"] {
        let local = n.local("workflows/mapping.py", wf);
        assert_eq!(n.run_remote("workflows/mapping.py", wf), local, "{wf}");
    }
    assert_eq!(
        n.local("workflows/mapping.py", "tolerant_wf"),
        "[1, 2, None, 4]\n"
    );

    // Each element is a node of its own, shown under the array node.
    let o = run(n
        .remote()
        .args(["--name", "squares", "workflows/mapping.py", "squares_wf"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = n.wait_done("squares");
    assert!(text.contains("Phase:      SUCCEEDED"), "{text}");
    for i in 0..6 {
        assert!(
            text.contains(&format!("n1-0-n{i}")),
            "element {i} is not shown:\n{text}"
        );
    }

    // Without a success ratio, one failing element fails the map and names it.
    let o = run(n
        .remote()
        .args(["--wait", "workflows/mapping.py", "strict_wf"]));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("1 of 4 elements failed") && err.contains("element 2 failed first"),
        "{err}"
    );
    assert!(err.contains("ValueError: 3 is a multiple of 3"), "{err}");
}

#[test]
fn dynamic_workflows_run_the_workflow_they_return() {
    let n = Nodes::new();
    let local = n.local("workflows/dynamic.py", "dynamic_wf");
    assert_eq!(local, "[0, 1, 3, 6]\n");
    let o = run(n.remote().args([
        "--name",
        "dyn",
        "--wait",
        "workflows/dynamic.py",
        "dynamic_wf",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), local);
    // The nested dynamic tasks' nodes are children of their dynamic node.
    let text = get_execution(&n.sb, "dyn");
    assert!(text.contains("n0-0-dn3-0-dn4"), "{text}");
    // The real FlyteRemote walks the nodes through each dynamic node's compiled workflow
    // (GetNodeExecutionData's `dynamic_workflow`), as the console draws its edges from it.
    let script = format!(
        "from flytekit.configuration import Config\n\
         from flytekit.remote import FlyteRemote\n\
         r = FlyteRemote(Config.for_endpoint('{}', insecure=True), default_project='flytesnacks', default_domain='development')\n\
         e = r.sync_execution(r.fetch_execution(name='dyn'), sync_nodes=True)\n\
         sums = e.node_executions['n0']\n\
         print(sorted(sums.subworkflow_node_executions))\n\
         inner = sums.subworkflow_node_executions['n0-0-dn3']\n\
         print(len(inner.subworkflow_node_executions), inner.outputs['o0'])\n",
        n.sb.endpoint()
    );
    let o = run(Command::new(venv().join("bin/python"))
        .args(["-c", &script])
        .current_dir(n.project.root()));
    assert!(
        o.status.success(),
        "FlyteRemote.sync_execution: {}",
        stderr(&o)
    );
    assert_eq!(
        stdout(&o),
        "['n0-0-dn0', 'n0-0-dn1', 'n0-0-dn2', 'n0-0-dn3']\n5 6\n"
    );
}

#[test]
fn attribute_access_reads_into_dataclasses_lists_and_dicts() {
    let n = Nodes::new();
    for wf in ["attr_wf", "nested_attr_wf"] {
        let local = n.local("workflows/attributes.py", wf);
        assert_eq!(n.run_remote("workflows/attributes.py", wf), local, "{wf}");
    }
}

/// Each retry reads the checkpoint the previous attempt wrote: the third attempt succeeds with
/// 3 (a local run does not retry, so the answer is Flyte's, not the local one).
#[test]
fn checkpoints_carry_over_from_one_attempt_to_the_next() {
    let n = Nodes::new();
    assert_eq!(
        n.run_remote("workflows/checkpoint.py", "checkpoint_wf"),
        "3\n"
    );
}

#[test]
fn gate_nodes_sleep_and_wait_for_approvals_and_inputs() {
    let n = Nodes::new();
    assert_eq!(
        n.run_remote("workflows/gates.py", "sleep_wf"),
        "HELLO, NAP!\n"
    );

    for (name, wf) in [
        ("approved", "approval_wf"),
        ("rejected", "approval_wf"),
        ("given", "input_wf"),
    ] {
        let o = run(n.remote().args(["--name", name, "workflows/gates.py", wf]));
        assert!(o.status.success(), "{}", stderr(&o));
    }
    // A gate's signal exists once the gate runs.
    for (name, signal, ty) in [
        ("approved", "review", "bool"),
        ("rejected", "review", "bool"),
        ("given", "title", "str"),
    ] {
        wait_until(&format!("{name} to wait for {signal}"), LONG, || {
            let o = n.union(&["get", "signals", name]);
            stdout(&o)
                .lines()
                .any(|l| l.starts_with(signal) && l.contains(ty) && l.ends_with("(waiting)"))
        });
    }

    // The real FlyteRemote approves; our commands reject and give an input.
    let script = format!(
        "from flytekit.configuration import Config\n\
         from flytekit.remote import FlyteRemote\n\
         r = FlyteRemote(Config.for_endpoint('{}', insecure=True), default_project='flytesnacks', default_domain='development')\n\
         r.approve('review', 'approved')\n",
        n.sb.endpoint()
    );
    let o = run(Command::new(venv().join("bin/python"))
        .args(["-c", &script])
        .current_dir(n.project.root()));
    assert!(o.status.success(), "FlyteRemote.approve: {}", stderr(&o));
    let o = n.union(&["reject", "rejected", "review"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Rejected review of rejected\n");
    let o = n.union(&["signal", "given", "title", "big news"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let text = n.wait_done("approved");
    assert!(text.contains("Output:     o0 = \"HELLO, ADA!\""), "{text}");
    let text = n.wait_done("given");
    assert!(text.contains("Output:     o0 = \"BIG NEWS\""), "{text}");
    let text = n.wait_done("rejected");
    assert!(text.contains("Phase:      FAILED"), "{text}");
    assert!(text.contains("`review` was rejected"), "{text}");

    // A signal is set once; an unknown one is named, with where to look.
    let o = n.union(&["signal", "given", "title", "again"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already set"), "{}", stderr(&o));
    let o = n.union(&["approve", "given", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("has no signal `nope`")
            && stderr(&o).contains("union get signals given"),
        "{}",
        stderr(&o)
    );

    // A gate that times out fails its workflow, saying so.
    let o = run(n
        .remote()
        .args(["--wait", "workflows/gates.py", "impatient_wf"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("the gate `never` timed out"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn failure_policies_and_failure_nodes_behave_as_on_flyte() {
    let n = Nodes::new();
    // on_failure: the handler runs with the error (it fails unless it got it).
    let o = run(n.remote().args([
        "--name",
        "handled",
        "--wait",
        "workflows/failures.py",
        "handled_wf",
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("ValueError: boom 1"), "{}", stderr(&o));
    let text = get_execution(&n.sb, "handled");
    let line = |id: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("no node {id}:\n{text}"))
            .to_string()
    };
    assert!(line("fn0").contains("SUCCEEDED"), "{text}");

    // FAIL_AFTER_EXECUTABLE_NODES_COMPLETE: the chain that does not depend on the failure runs
    // to the end; the workflow still fails with the first error.
    let o = run(n.remote().args([
        "--name",
        "keepgoing",
        "--wait",
        "workflows/failures.py",
        "keep_going_wf",
    ]));
    assert_eq!(o.status.code(), Some(1));
    let text = get_execution(&n.sb, "keepgoing");
    assert!(text.contains("Phase:      FAILED"), "{text}");
    let line = |id: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("no node {id}:\n{text}"))
            .to_string()
    };
    assert!(line("n0").contains("FAILED"), "{text}");
    assert!(line("n1").contains("SUCCEEDED"), "{text}");
    assert!(line("n2").contains("SUCCEEDED"), "{text}");
}

/// A launch plan node starts a child execution of its own, linked to the node, with the launch
/// plan's fixed and default inputs (Flyte's answers; a local run ignores the defaults).
#[test]
fn launch_plan_nodes_run_as_child_executions() {
    let n = Nodes::new();
    let o = run(n.remote().args([
        "--name",
        "parent",
        "--wait",
        "workflows/launch_plans.py",
        "defaults_wf",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "15.0\n");
    assert_eq!(
        n.run_remote("workflows/launch_plans.py", "override_wf"),
        "20.0\n"
    );
    let text = get_execution(&n.sb, "parent");
    let child = text
        .lines()
        .find_map(|l| l.split("child execution ").nth(1))
        .unwrap_or_else(|| panic!("no child execution shown:\n{text}"))
        .trim()
        .to_string();
    let child_text = get_execution(&n.sb, &child);
    assert!(child_text.contains("Phase:      SUCCEEDED"), "{child_text}");
    assert!(child_text.contains("rect_lp"), "{child_text}");
    assert!(
        child_text.contains("Input:      width = 5.0"),
        "{child_text}"
    );
    assert!(
        child_text.contains("Input:      height = 3.0"),
        "{child_text}"
    );
    let list = n.union(&["get", "executions"]);
    assert!(stdout(&list).contains(&child), "{}", stdout(&list));

    // Mapped over a list (an array node over a launch plan): element i gets item i.
    let local = n.local("workflows/launch_plans.py", "areas_wf");
    assert_eq!(local, "[5.0, 10.0]\n");
    assert_eq!(n.run_remote("workflows/launch_plans.py", "areas_wf"), local);
}

/// The output of a cached task is random: equal outputs across executions prove the cache.
#[test]
fn cached_tasks_reuse_outputs_across_executions() {
    let n = Nodes::new();
    let run_named = |name: &str, extra: &[&str], wf: &str| {
        let o = run(n
            .remote()
            .args(["--name", name, "--wait"])
            .args(extra)
            .args(["workflows/caching.py", wf]));
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let first = run_named("first", &[], "cached_wf");
    assert_eq!(run_named("second", &[], "cached_wf"), first);
    assert!(get_execution(&n.sb, "first").contains("written to cache"));
    assert!(get_execution(&n.sb, "second").contains("read from cache"));
    // --overwrite-cache runs it again and replaces the entry.
    let fresh = run_named("overwrite", &["--overwrite-cache"], "cached_wf");
    assert_ne!(fresh, first);
    assert_eq!(run_named("third", &[], "cached_wf"), fresh);
    // Other inputs miss; an input left out of the key does not.
    let o = run(n
        .remote()
        .args(["--wait", "workflows/caching.py", "cached_wf", "--seed", "2"]));
    assert_ne!(stdout(&o), fresh);
    let noted = run_named("noted1", &[], "noted_wf");
    let o = run(n.remote().args([
        "--wait",
        "workflows/caching.py",
        "noted_wf",
        "--note",
        "second",
    ]));
    assert_eq!(stdout(&o), noted);

    // cache_serialize: of two executions started together, one computes, the other reads.
    for name in ["ser1", "ser2"] {
        let o = run(n
            .remote()
            .args(["--name", name, "workflows/caching.py", "serialized_wf"]));
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let a = n.wait_done("ser1");
    let b = n.wait_done("ser2");
    let output = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("Output:"))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(output(&a), output(&b), "{a}\n{b}");
    let written = [&a, &b]
        .iter()
        .filter(|t| t.contains("written to cache"))
        .count();
    let read = [&a, &b]
        .iter()
        .filter(|t| t.contains("read from cache"))
        .count();
    assert_eq!((written, read), (1, 1), "{a}\n{b}");
}

/// An eager workflow's container reaches the sandbox (address and config injected, as
/// flytepropeller's default environment gives them) and each task it calls is a real execution.
#[test]
fn eager_workflows_start_executions_of_the_sandbox() {
    let n = Nodes::new();
    let local = n.local("workflows/eager.py", "eager_wf");
    assert_eq!(local, "8\n");
    assert_eq!(n.run_remote("workflows/eager.py", "eager_wf"), local);
    let list = stdout(&n.union(&["get", "executions"]));
    let children: Vec<&str> = list
        .lines()
        .filter(|l| l.starts_with("e-eager-wf-"))
        .collect();
    assert_eq!(children.len(), 2, "one execution per task call:\n{list}");
    assert!(
        children
            .iter()
            .any(|l| l.contains("workflows.eager.add_one"))
            && children
                .iter()
                .any(|l| l.contains("workflows.eager.double"))
            && children.iter().all(|l| l.contains("SUCCEEDED")),
        "{list}"
    );
}

/// Files, directories and dataframes on the user's machine are uploaded through the data proxy
/// (as pyflyte does) and read by the task in its container: the answers are the local run's.
#[test]
fn file_directory_and_dataframe_inputs_are_uploaded() {
    let n = Nodes::new();
    let data = n.project.root().join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("words.txt"), "one two three four\n").unwrap();
    std::fs::write(data.join("sub/a.txt"), "a\n").unwrap();
    std::fs::write(data.join("b.txt"), "b\n").unwrap();
    let o = run(Command::new(venv().join("bin/python"))
        .current_dir(n.project.root())
        .args([
            "-c",
            "import pandas as pd; pd.DataFrame({'n': [1, 2, 3]}).to_parquet('frame.parquet')",
        ]));
    assert!(o.status.success(), "{}", stderr(&o));
    for (file, wf, args) in [
        ("workflows/files.py", "words_wf", ["--f", "data/words.txt"]),
        ("workflows/files.py", "listing_wf", ["--d", "data"]),
        ("workflows/frames.py", "total_wf", ["--df", "frame.parquet"]),
    ] {
        let local = run(n.project.union().args(["run", file, wf]).args(args));
        assert!(local.status.success(), "{}", stderr(&local));
        let remote = run(n.remote().args(["--wait", file, wf]).args(args));
        assert!(remote.status.success(), "{wf}: {}", stderr(&remote));
        assert_eq!(stdout(&remote), stdout(&local), "{wf}");
        assert!(
            stderr(&remote).contains("Uploading inputs"),
            "{}",
            stderr(&remote)
        );
    }
}

/// Several outputs print as pyflyte prints the workflow's NamedTuple, as a local run does.
#[test]
fn several_outputs_print_as_a_local_run_prints_them() {
    let n = Nodes::new();
    let local = n.local("workflows/outputs.py", "stats_wf");
    assert_eq!(local, "stats(total=6, label='sum')\n");
    assert_eq!(n.run_remote("workflows/outputs.py", "stats_wf"), local);
}

/// A restart leaves nothing half-done: the parent, its child execution and the child's map
/// elements all end FAILED with the reason, none stays RUNNING.
#[test]
fn a_restart_fails_child_executions_and_map_elements_with_the_reason() {
    require_docker_infra();
    let data = tempfile::tempdir().unwrap();
    let data = data.path().join("sandbox");
    let mut n = Nodes {
        sb: Sandbox::start_in(&data),
        project: Project::new("nodes"),
    };
    let o = run(n
        .remote()
        .args(["--name", "napper", "workflows/slow.py", "parent_naps_wf"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let mut child = String::new();
    wait_until("the child's map elements to run", LONG, || {
        let text = get_execution(&n.sb, "napper");
        if let Some(c) = text
            .lines()
            .find_map(|l| l.split("child execution ").nth(1))
        {
            child = c.trim().to_string();
        }
        !child.is_empty()
            && get_execution(&n.sb, &child)
                .lines()
                .any(|l| l.trim_start().starts_with("n0-0-n") && l.contains("RUNNING"))
    });
    let port = n.sb.port;
    n.sb.kill();
    n.sb = Sandbox::launch(crate::support::sandbox::Launch {
        data_dir: Some(&data),
        port,
        ..Default::default()
    });
    for name in ["napper", child.as_str()] {
        let text = get_execution(&n.sb, name);
        assert!(text.contains("Phase:      FAILED"), "{text}");
        assert!(
            text.contains("the sandbox restarted while this execution was running"),
            "{text}"
        );
        assert!(!text.contains("RUNNING"), "{text}");
    }
    // The naps' containers are removed (in the background), not left sleeping, and so is one the
    // engine makes only after the restart (a create the killed process had in flight).
    let work_root = std::fs::canonicalize(&data).unwrap().join("executions");
    let late = std::process::Command::new("docker")
        .args(["run", "-d", "--label"])
        .arg(format!("io.union.sandbox={}", work_root.display()))
        .args([crate::support::TEST_BASE_IMAGE, "sleep", "300"])
        .output()
        .unwrap();
    assert!(late.status.success(), "{}", stderr(&late));
    wait_until("the orphaned containers to be removed", LONG, || {
        crate::support::exec::containers_of(&work_root).is_empty()
    });
}
