//! `union run` against the fixtures: outputs, help, parity with pyflyte, and every error case.

use crate::support::*;

const HELLO: &str = "hello/workflows/hello.py";
const CALC: &str = "typed/workflows/calc.py";
const TYPES: &str = "types/alltypes.py";

#[test]
fn hello_prints_greeting_on_stdout() {
    let o = run(union().args(["run", &fixture(HELLO), "hello_world_wf", "--name", "Alice"]));
    assert!(o.status.success());
    assert_eq!(stdout(&o), "Hello, Alice!\n");
}

#[test]
fn hello_applies_default_input() {
    let o = run(union().args(["run", &fixture(HELLO), "hello_world_wf"]));
    assert!(o.status.success());
    assert_eq!(stdout(&o), "Hello, world!\n");
}

#[test]
fn a_task_runs_directly() {
    let o = run(union().args(["run", &fixture(HELLO), "say_hello", "--name", "Bob"]));
    assert!(o.status.success());
    assert_eq!(stdout(&o), "Hello, Bob!\n");
}

#[test]
fn relative_path_from_another_directory() {
    let o = run(union()
        .current_dir(repo().join("python_fixtures/hello"))
        .args([
            "run",
            "workflows/hello.py",
            "hello_world_wf",
            "--name",
            "Rel",
        ]));
    assert!(o.status.success());
    assert_eq!(stdout(&o), "Hello, Rel!\n");
}

#[test]
fn typed_workflow_matches_pyflyte() {
    let cases: &[&[&str]] = &[
        &["--xs", "[1,2,3,4,5]", "--factor", "2", "--threshold", "4.5"],
        &["--xs", "[1,2,3]"],
        &["--xs", "[10, 20]", "--label", "big", "--threshold", "100"],
    ];
    for args in cases {
        let f = fixture(CALC);
        let mut full = vec!["run", f.as_str(), "calc_wf"];
        full.extend_from_slice(args);
        let o = run(union().args(&full));
        assert!(o.status.success(), "{args:?}");
        let ours = stdout(&o);
        let theirs = pyflyte_run(&fixture(CALC), "calc_wf", args);
        assert_eq!(ours.trim_end(), theirs.trim_end(), "args {args:?}");
    }
}

#[test]
fn subworkflow_returns_dataclass_like_pyflyte() {
    let args = ["--xs", "[2,4]", "--factor", "3"];
    let o = run(union().args(["run", &fixture(CALC), "stats_wf"]).args(args));
    assert!(o.status.success());
    assert_eq!(
        stdout(&o).trim_end(),
        pyflyte_run(&fixture(CALC), "stats_wf", &args).trim_end()
    );
    assert!(
        stdout(&o).contains("Stats(count=2, total=18, mean=9.0)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn every_input_type_converts_like_pyflyte() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("data.csv");
    std::fs::write(&csv, "a,b\n1,2\n").unwrap();
    let sub = dir.path().join("d");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("one"), "1").unwrap();
    std::fs::write(sub.join("two"), "2").unwrap();
    let parquet = dir.path().join("df.parquet");
    let made = std::process::Command::new(venv().join("bin/python"))
        .args([
            "-c",
            &format!(
                "import pandas as pd; pd.DataFrame({{'a': [1, 2, 3]}}).to_parquet({:?})",
                parquet.to_str().unwrap()
            ),
        ])
        .status()
        .unwrap();
    assert!(made.success());
    let csv = csv.to_string_lossy().into_owned();
    let sub = sub.to_string_lossy().into_owned();
    let parquet = parquet.to_string_lossy().into_owned();

    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "scalars",
            vec!["--i", "3", "--f", "2.5", "--s", "hi there", "--b"],
        ),
        (
            "scalars",
            vec!["--i", "-4", "--f", "1e3", "--s", "", "--no_b"],
        ),
        (
            "times",
            vec![
                "--when",
                "2024-01-02T03:04:05",
                "--delta",
                "10 days",
                "--day",
                "2024-05-06",
            ],
        ),
        (
            "times",
            vec!["--when", "now", "--delta", "1:24", "--day", "2024-05-06"],
        ),
        ("color", vec!["--c", "green"]),
        ("optional", vec![]),
        ("optional", vec!["--x", "5", "--s", "text"]),
        (
            "collections",
            vec!["--xs", "[1.5, 2.0]", "--m", "{\"a\": 1, \"b\": 2}"],
        ),
        (
            "point",
            vec!["--p", "{\"x\": 1, \"y\": 2.5, \"tags\": [\"a\", \"b\"]}"],
        ),
        ("model", vec!["--c", "{\"name\": \"n\"}"]),
        ("file_size", vec!["--f", &csv]),
        ("dir_count", vec!["--d", &sub]),
        ("frame_rows", vec!["--df", &parquet]),
        ("flags", vec![]),
        ("flags", vec!["--verbose", "--no-dry-run"]),
        ("defaults_wf", vec![]),
        ("defaults_wf", vec!["--n", "1", "--xs", "[3]"]),
    ];
    for (entity, args) in cases {
        let o = run(union().args(["run", &fixture(TYPES), entity]).args(&args));
        assert!(o.status.success(), "{entity} {args:?}");
        let ours = stdout(&o);
        let theirs = pyflyte_run(&fixture(TYPES), entity, &args);
        if entity == "times" && args[1] == "now" {
            // "now" differs by the clock; compare the rest of the line.
            assert_eq!(
                ours.split(" delta=").nth(1).map(str::trim_end),
                theirs.split(" delta=").nth(1).map(str::trim_end)
            );
        } else {
            assert_eq!(ours.trim_end(), theirs.trim_end(), "{entity} {args:?}");
        }
    }
}

#[test]
fn stdout_carries_only_the_result() {
    // The task prints and flytekit logs; only the output reaches stdout.
    let o = run(union().args([
        "run",
        &fixture("errors/slow.py"),
        "sleepy",
        "--seconds",
        "0",
    ]));
    assert!(o.status.success());
    assert_eq!(stdout(&o), "woke up\n");
    assert!(
        stderr(&o).contains("sleeping"),
        "the task's own print goes to stderr"
    );
}

#[test]
fn file_help_lists_entities() {
    let o = run(union().args(["run", &fixture(HELLO), "--help"]));
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(
        out.contains("hello_world_wf") && out.contains("workflow"),
        "{out}"
    );
    assert!(out.contains("say_hello") && out.contains("task"), "{out}");
}

#[test]
fn entity_help_lists_inputs_with_types_and_defaults() {
    let o = run(union().args(["run", &fixture(CALC), "calc_wf", "--help"]));
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(out.contains("--xs <List[int]>"), "{out}");
    assert!(out.contains("[required]"), "{out}");
    assert!(
        out.contains("--factor <int>") && out.contains("[default: 2]"),
        "{out}"
    );
    assert!(
        out.contains("--threshold <float>") && out.contains("[default: 4.5]"),
        "{out}"
    );
    assert!(out.contains("--label <Optional[str]>"), "{out}");
    let o = run(union().args(["run", &fixture(TYPES), "flags", "--help"]));
    let out = stdout(&o);
    assert!(
        out.contains("--verbose") && out.contains("--no_verbose"),
        "{out}"
    );
}

#[test]
fn help_and_version_never_start_python() {
    for args in [
        vec!["--help"],
        vec!["--version"],
        vec!["run", "--help"],
        vec!["list", "--help"],
    ] {
        let o = run(union().env("VIRTUAL_ENV", "/nonexistent/venv").args(&args));
        assert!(o.status.success(), "{args:?}");
        assert!(!stdout(&o).is_empty());
    }
    let o = run(union().arg("--version"));
    assert!(stdout(&o).starts_with("union "));
}

#[test]
fn file_not_found() {
    let o = run(union().args(["run", "no/such/file.py", "wf"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("error: file or directory `no/such/file.py` does not exist"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
}

#[test]
fn entity_not_found_lists_what_exists() {
    let o = run(union().args(["run", &fixture(HELLO), "hello_wf"]));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("no task, workflow or launch plan named `hello_wf`"),
        "{err}"
    );
    assert!(
        err.contains("hello_world_wf") && err.contains("say_hello"),
        "{err}"
    );
}

#[test]
fn syntax_error_shows_file_and_line() {
    let o = run(union().args(["run", &fixture("errors/syntax_error.py"), "broken"]));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("SyntaxError"), "{err}");
    assert!(err.contains("syntax_error.py\", line 6"), "{err}");
    assert!(!err.contains("union_bridge"), "no bridge internals: {err}");
}

#[test]
fn import_error_shows_users_traceback() {
    let o = run(union().args(["run", &fixture("errors/import_error.py"), "unreachable"]));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("importing module `import_error` failed"),
        "{err}"
    );
    assert!(err.contains("import_error.py\", line 3"), "{err}");
    assert!(
        err.contains("ModuleNotFoundError: No module named 'not_a_real_module_for_union_tests'"),
        "{err}"
    );
    assert!(!err.contains("union_bridge"), "{err}");
}

#[test]
fn missing_required_input() {
    let o = run(union().args(["run", &fixture("errors/raises.py"), "validate_wf"]));
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("missing required input for workflow `validate_wf`: --n (int)"),
        "{err}"
    );
}

#[test]
fn value_that_does_not_parse_names_flag_and_type() {
    let o = run(union().args([
        "run",
        &fixture("errors/raises.py"),
        "validate_wf",
        "--n",
        "abc",
    ]));
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("invalid value for --n (int)"), "{err}");
    assert!(err.contains("'abc' is not a valid integer"), "{err}");
    let o = run(union().args(["run", &fixture(CALC), "calc_wf", "--xs", "[1,"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("invalid value for --xs (List[int])"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unknown_flag_suggests_the_right_one() {
    let o = run(union().args(["run", &fixture(HELLO), "hello_world_wf", "--nam", "x"]));
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("unexpected argument '--nam'") && err.contains("'--name'"),
        "{err}"
    );
}

#[test]
fn task_raising_shows_traceback_and_exits_1() {
    let o = run(union().args([
        "run",
        &fixture("errors/raises.py"),
        "validate_wf",
        "--n",
        "-3",
    ]));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("ValueError"), "{err}");
    assert!(err.contains("n must be >= 0, got -3"), "{err}");
    assert!(err.contains("raises.py\", line 6, in check"), "{err}");
    assert!(stdout(&o).is_empty());
}

#[test]
fn ctrl_c_stops_promptly_with_130() {
    let mut child = union()
        .args([
            "run",
            &fixture("errors/slow.py"),
            "sleepy",
            "--seconds",
            "3600",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the task is running (it prints "sleeping"), then interrupt: it stops, where
    // the task would have slept for an hour.
    let err = Captured::stderr_of(&mut child);
    err.wait_for("sleeping", LONG);
    signal(&child, libc::SIGINT);
    assert_eq!(wait_exit(&mut child, LONG).code(), Some(130));
    let text = err.all();
    assert!(text.contains("error: interrupted"), "{text}");
}

/// Generous: it bounds a hang on a busy machine, it never decides a result.
const LONG: std::time::Duration = std::time::Duration::from_secs(300);

#[test]
fn venv_from_another_python_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("env");
    std::fs::create_dir_all(env.join("bin")).unwrap();
    std::fs::write(env.join("bin/python"), "").unwrap();
    std::fs::write(
        env.join("pyvenv.cfg"),
        "home = /usr/local/bin\ninclude-system-site-packages = false\nversion = 3.12.1\n",
    )
    .unwrap();
    let o = run(union()
        .env("VIRTUAL_ENV", &env)
        .args(["run", &fixture(HELLO), "hello_world_wf"]));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("was made from the Python in `/usr/local/bin` (3.12.1)"),
        "{err}"
    );
    assert!(err.contains("hint: recreate it with"), "{err}");
}

#[test]
fn venv_without_flytekit_says_how_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("bare");
    // A real venv from the same installation the binary links, with nothing installed.
    let base = String::from_utf8(
        std::process::Command::new(venv().join("bin/python"))
            .args(["-c", "import sys; print(sys.base_prefix)"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let ok = std::process::Command::new(format!("{}/bin/python3", base.trim()))
        .args(["-m", "venv", "--without-pip"])
        .arg(&env)
        .status()
        .unwrap();
    assert!(ok.success());
    let o = run(union()
        .env("VIRTUAL_ENV", &env)
        .args(["run", &fixture(HELLO), "hello_world_wf"]));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("flytekit cannot be imported"), "{err}");
    assert!(
        err.contains(&env.display().to_string()),
        "names where it looked: {err}"
    );
    assert!(err.contains("pip install flytekit"), "{err}");
}

#[test]
fn dot_venv_is_found_upward_without_virtual_env() {
    // From inside the fixtures, with no VIRTUAL_ENV: the repository's .venv is found upward.
    let o = run(union()
        .env_remove("VIRTUAL_ENV")
        .current_dir(repo().join("python_fixtures/hello/workflows"))
        .args(["run", "hello.py", "hello_world_wf", "--name", "Up"]));
    assert!(o.status.success());
    assert_eq!(stdout(&o), "Hello, Up!\n");
}
