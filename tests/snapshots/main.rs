//! What users read, pinned: help text, dry-run plans, generated Dockerfiles and error output, as
//! insta snapshots (`tests/snapshots/snapshots/*.snap`). Paths, temporary directories, ports,
//! durations and versions are filtered out, so a snapshot changes only when the text a user
//! reads does. After an intended change: `cargo insta review` (or `INSTA_UPDATE=always`), and
//! read the diff.

// Tests and examples show what they ran; the print lints are for library code.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../support/mod.rs"]
mod support;

use support::*;

/// Filters for what changes from run to run or machine to machine.
fn settings(extra: &[(&str, &str)]) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    let repo = repo().display().to_string();
    let mut filters: Vec<(String, String)> = vec![
        (regex_escape(&repo), "[REPO]".into()),
        // Temporary directories (tempfile's `.tmpXXXXXX`), not paths inside images such as `/tmp`.
        (r"/tmp/\.tmp[A-Za-z0-9]+".into(), "[TMP]".into()),
        (r"\(\d+ ms\)".into(), "([N] ms)".into()),
        (r"127\.0\.0\.1:\d+".into(), "127.0.0.1:[PORT]".into()),
        (r"in \d+\.\ds".into(), "in [N]s".into()),
    ];
    for (a, b) in extra {
        filters.push((a.to_string(), b.to_string()));
    }
    for (a, b) in filters {
        s.add_filter(&a, b);
    }
    s
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if "\\.+*?()|[]{}^$#&-~".contains(c) {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn out(o: &std::process::Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        o.status.code().unwrap_or(-1),
        stdout(o),
        stderr(o)
    )
}

// ------------------------------------------------------------------------- help text

#[test]
fn help_text() {
    for (name, args) in [
        ("help_union", vec!["--help"]),
        ("help_run", vec!["run", "--help"]),
        ("help_register", vec!["register", "--help"]),
        ("help_package", vec!["package", "--help"]),
        ("help_build", vec!["build", "--help"]),
        ("help_sandbox_start", vec!["sandbox", "start", "--help"]),
        ("help_get", vec!["get", "--help"]),
    ] {
        let o = run(union().args(&args));
        assert!(o.status.success(), "{}", stderr(&o));
        settings(&[]).bind(|| insta::assert_snapshot!(name, stdout(&o)));
    }
}

/// `union run FILE ENTITY --help`: the entity's inputs, as pyflyte shows them.
#[test]
fn help_of_a_workflows_inputs() {
    let p = Project::new("typed");
    let o = run(p
        .union()
        .args(["run", "workflows/calc.py", "calc_wf", "--help"]));
    assert!(o.status.success(), "{}", stderr(&o));
    settings(&[]).bind(|| insta::assert_snapshot!("help_calc_wf_inputs", stdout(&o)));
}

// ------------------------------------------------------------------------- plans

/// `union register --dry-run` from a user's project: target, version, archive, images with
/// their Dockerfiles, entities.
#[test]
fn register_dry_run_plan() {
    let p = Project::new("hello");
    let o = run(p.union().args([
        "register",
        "workflows",
        "--dry-run",
        "--version",
        "v1",
        "--copy",
        "auto",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    // Whether the image exists depends on what ran before: not part of the plan's text.
    settings(&[(r"exists: [^\n]+", "exists: [CHECKED]")])
        .bind(|| insta::assert_snapshot!("register_dry_run_hello", stdout(&o)));
}

/// `union build --dry-run` of an ImageSpec YAML with most fields.
#[test]
fn build_dry_run_plan_and_dockerfile() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("requirements.txt"), "flytekit==1.16.31\npandas\n").unwrap();
    std::fs::create_dir_all(d.join("data")).unwrap();
    std::fs::write(d.join("data/a.csv"), "1\n").unwrap();
    std::fs::write(
        d.join("spec.yaml"),
        "name: snapshot-image\nregistry: localhost:30000\npython_version: '3.11'\n\
         requirements: requirements.txt\napt_packages: [git, curl]\npackages: [numpy]\n\
         env: {MODE: snapshot}\ncopy: [data]\ncommands: ['echo built']\n\
         pip_index: https://alice:TOPSECRET@pypi.example.com/simple\nentrypoint: []\n",
    )
    .unwrap();
    let o = run(union()
        .current_dir(d)
        .args(["build", "--dry-run", "spec.yaml"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("TOPSECRET"));
    settings(&[(r"exists: [^\n]+", "exists: [CHECKED]")])
        .bind(|| insta::assert_snapshot!("build_dry_run_spec_yaml", stdout(&o)));
}

/// The Dockerfiles of the fixtures' ImageSpecs (requirements, packages, nested bases, uv.lock),
/// straight from the planner.
#[test]
fn dockerfiles() {
    use union_image::dockerfile::{self, BuildSettings};
    use union_image::{HostEnv, ImageSpec, TagContext};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("requirements.txt"), "flytekit==1.16.31\n").unwrap();
    std::fs::write(d.join("uv.lock"), "version = 1\n").unwrap();
    std::fs::write(
        d.join("pyproject.toml"),
        "[project]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [\"flytekit\"]\n",
    )
    .unwrap();
    let settings_ = BuildSettings {
        default_base_image: "debian:bookworm-slim".into(),
        flytekit_version: "1.16.31".into(),
    };
    for (name, yaml) in [
        (
            "dockerfile_requirements",
            "name: req\nregistry: localhost:30000\nrequirements: requirements.txt\n",
        ),
        (
            "dockerfile_packages_apt_env",
            "name: pkgs\npackages: [numpy, pandas]\napt_packages: [git]\nenv: {A: '1'}\npython_version: '3.11'\n",
        ),
        ("dockerfile_uv_lock", "name: locked\nrequirements: uv.lock\n"),
    ] {
        let path = d.join(format!("{name}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        let spec = ImageSpec::from_yaml_file(&path, &HostEnv::current()).unwrap();
        let plan = dockerfile::plan(&spec, &TagContext::new(d), &settings_).unwrap();
        settings(&[]).bind(|| insta::assert_snapshot!(name, plan.dockerfile));
    }
}

// ------------------------------------------------------------------------- errors

#[test]
fn error_output() {
    let p = Project::new("typed");
    let (_socket, port) = support::registry::closed_port();
    let endpoint = format!("127.0.0.1:{port}");
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "error_missing_file",
            vec!["run", "workflows/nope.py", "calc_wf"],
        ),
        (
            "error_unknown_entity",
            vec!["run", "workflows/calc.py", "nope_wf"],
        ),
        (
            "error_wrong_input_type",
            vec!["run", "workflows/calc.py", "calc_wf", "--xs", "[1, \"x\"]"],
        ),
        (
            "error_missing_input",
            vec!["run", "workflows/calc.py", "calc_wf"],
        ),
        (
            "error_backend_down",
            vec!["register", "workflows", "--endpoint", &endpoint],
        ),
        (
            "error_copy_none_without_version",
            vec!["register", "workflows", "--copy", "none"],
        ),
    ];
    for (name, args) in cases {
        let o = run(p.union().args(&args));
        assert!(!o.status.success());
        settings(&[(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]")])
            .bind(|| insta::assert_snapshot!(name, out(&o)));
    }
}

/// An error in the user's own code: their traceback, their file and line, nothing of union's.
#[test]
fn error_output_of_a_failing_task() {
    let o = run(union()
        .current_dir(repo().join("python_fixtures/errors"))
        .args(["run", "raises.py", "validate_wf", "--n", "-3"]));
    assert_eq!(o.status.code(), Some(1));
    settings(&[]).bind(|| insta::assert_snapshot!("error_task_raised", out(&o)));
}
