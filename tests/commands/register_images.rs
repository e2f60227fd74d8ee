//! `union register` with ImageSpecs, against the real Docker engine and registry started by
//! tests/setup/docker.sh: images are built and pushed before any RPC, an unchanged image is not
//! rebuilt, a code-only change rebuilds nothing, and nothing is registered when an image cannot be
//! had.

use std::path::Path;

use crate::support::*;

const BASE: &str = "localhost:30000/union/debian-python:bookworm";

/// A one-task project whose ImageSpec is unique to this test run (so the first build is real).
fn project(dir: &Path, spec_extra: &str, salt: &str) -> std::path::PathBuf {
    let pkg = dir.join("imgproj");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("__init__.py"), "").unwrap();
    std::fs::write(
        dir.join("requirements.txt"),
        format!("flytekit==1.16.31\n# {salt}\n"),
    )
    .unwrap();
    std::fs::write(
        pkg.join("wf.py"),
        format!(
            "from flytekit import ImageSpec, task, workflow\n\nimg = ImageSpec(name='union-test-img', requirements='requirements.txt', registry='localhost:30000'{spec_extra})\n\n@task(container_image=img)\ndef t(x: int) -> int:\n    return x + 1\n\n@workflow\ndef w(x: int = 1) -> int:\n    return t(x=x)\n"
        ),
    )
    .unwrap();
    pkg
}

fn register(dir: &Path, sb: &Sandbox, extra: &[&str]) -> std::process::Output {
    run(union()
        .current_dir(dir)
        .env("DOCKER_HOST", "unix:///run/union-test/docker.sock")
        .env("UNION_BASE_IMAGE", BASE)
        .args(["register", "imgproj", "--endpoint", &sb.endpoint()])
        .args(extra))
}

fn salt() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

fn task_names(sb: &Sandbox) -> String {
    let py = python_support(
        "fetch_entities.py",
        &[
            &sb.endpoint(),
            "flytesnacks",
            "development",
            "--count-tasks",
        ],
    );
    assert!(py.status.success(), "{}", stderr(&py));
    stdout(&py)
}

#[test]
fn builds_once_then_skips_and_code_changes_rebuild_nothing() {
    require_docker_infra();
    let sb = Sandbox::start();
    let dir = tempfile::tempdir().unwrap();
    let pkg = project(dir.path(), "", &salt());

    let first = register(dir.path(), &sb, &[]);
    assert!(first.status.success());
    assert!(
        stderr(&first).contains("1 built, 0 up to date"),
        "{}",
        stderr(&first)
    );
    // The registered task references exactly the pushed image.
    let dry = run(union()
        .current_dir(dir.path())
        .env("UNION_BASE_IMAGE", BASE)
        .args(["register", "imgproj", "--dry-run"]));
    let image = stdout(&dry)
        .lines()
        .find_map(|l| {
            l.strip_prefix("image: localhost:30000/union-test-img:")
                .map(|_| l)
        })
        .unwrap()
        .trim_start_matches("image: ")
        .trim()
        .to_string();
    assert!(stdout(&dry).contains("exists: yes"), "{}", stdout(&dry));
    let version = stdout(&first)
        .split("with version ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let py = python_support(
        "fetch_entities.py",
        &[
            &sb.endpoint(),
            "flytesnacks",
            "development",
            &version,
            "task:imgproj.wf.t",
        ],
    );
    assert!(
        stdout(&py).contains(&format!("\"image\": \"{image}\"")),
        "{} vs {image}",
        stdout(&py)
    );

    let second = register(dir.path(), &sb, &[]);
    assert!(second.status.success());
    assert!(
        stderr(&second).contains("nothing to build"),
        "{}",
        stderr(&second)
    );
    assert!(!stderr(&second).contains("built and pushed"));

    // Only task code changes: a new version, and still no image build.
    let f = pkg.join("wf.py");
    std::fs::write(
        &f,
        std::fs::read_to_string(&f)
            .unwrap()
            .replace("x + 1", "x + 2"),
    )
    .unwrap();
    let third = register(dir.path(), &sb, &[]);
    assert!(third.status.success());
    assert!(
        stderr(&third).contains("nothing to build"),
        "{}",
        stderr(&third)
    );
    assert!(stdout(&third).contains("(3 new"), "{}", stdout(&third));
}

#[test]
fn failing_build_registers_nothing_and_shows_the_step() {
    require_docker_infra();
    let sb = Sandbox::start();
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        ", commands=['echo about to fail >&2 && exit 3']",
        &salt(),
    );
    let o = register(dir.path(), &sb, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("building image localhost:30000/union-test-img:"),
        "{err}"
    );
    assert!(
        err.contains("about to fail"),
        "the failing step's output: {err}"
    );
    assert_eq!(task_names(&sb).trim(), r#"{"task_names": []}"#);
}

#[test]
fn unreachable_registry_stops_unless_allowed() {
    require_docker_infra();
    let sb = Sandbox::start();
    let dir = tempfile::tempdir().unwrap();
    let pkg = project(dir.path(), "", &salt());
    let f = pkg.join("wf.py");
    std::fs::write(
        &f,
        std::fs::read_to_string(&f)
            .unwrap()
            .replace("registry='localhost:30000'", "registry='localhost:1'"),
    )
    .unwrap();
    let o = register(dir.path(), &sb, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("cannot tell whether image localhost:1/union-test-img:"),
        "{err}"
    );
    assert!(err.contains("unreachable"), "{err}");
    assert!(err.contains("--allow-unverified-images"), "{err}");
    assert_eq!(task_names(&sb).trim(), r#"{"task_names": []}"#);

    let o = register(dir.path(), &sb, &["--allow-unverified-images"]);
    assert!(o.status.success());
    assert!(stderr(&o).contains("registering anyway"), "{}", stderr(&o));
}

#[test]
fn missing_image_without_an_engine_says_where_it_looked() {
    require_docker_infra();
    let sb = Sandbox::start();
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), "", &salt());
    let o = run(union()
        .current_dir(dir.path())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env("UNION_BASE_IMAGE", BASE)
        .args(["register", "imgproj", "--endpoint", &sb.endpoint()]));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("cannot reach the Docker engine at unix:///nonexistent/docker.sock"),
        "{err}"
    );
    assert_eq!(task_names(&sb).trim(), r#"{"task_names": []}"#);
}

#[test]
fn missing_requirements_file_names_spec_and_path() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), "", "x");
    std::fs::remove_file(dir.path().join("requirements.txt")).unwrap();
    let o = run(union()
        .current_dir(dir.path())
        .args(["register", "imgproj", "--dry-run"]));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("union-test-img") && err.contains("requirements.txt"),
        "{err}"
    );
}

#[test]
fn image_spec_yaml_as_the_default_image_is_built_and_used() {
    require_docker_infra();
    let sb = Sandbox::start();
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.yaml");
    std::fs::write(&spec, format!("name: union-test-yaml\nregistry: localhost:30000\npackages:\n  - flytekit==1.16.31\nenv:\n  SALT: \"{}\"\n", salt())).unwrap();
    let spec_arg = spec.to_string_lossy().into_owned();
    let dry = run(union().env("UNION_BASE_IMAGE", BASE).args([
        "register",
        &fixture("pkgtree/myproj"),
        "--dry-run",
        "--image",
        &spec_arg,
    ]));
    assert!(dry.status.success());
    let out = stdout(&dry);
    let image = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("image: localhost:30000/union-test-yaml:")
                .map(|_| l)
        })
        .unwrap()
        .trim_start_matches("image: ")
        .trim()
        .to_string();
    assert!(out.contains("no (would build and push)"), "{out}");

    let o = run(union_docker().args([
        "register",
        &fixture("pkgtree/myproj"),
        "--endpoint",
        &sb.endpoint(),
        "--image",
        &spec_arg,
    ]));
    assert!(o.status.success());
    assert!(
        stderr(&o).contains("1 built, 0 up to date"),
        "{}",
        stderr(&o)
    );
    let version = stdout(&o)
        .split("with version ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let py = python_support(
        "fetch_entities.py",
        &[
            &sb.endpoint(),
            "flytesnacks",
            "development",
            &version,
            "task:myproj.greet.greet",
        ],
    );
    assert!(
        stdout(&py).contains(&format!("\"image\": \"{image}\"")),
        "{}",
        stdout(&py)
    );
}
