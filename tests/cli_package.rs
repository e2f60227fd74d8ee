//! `union package` produces the same specs as `pyflyte package` for the fixtures, and a
//! deterministic archive.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn pyflyte_package(project: &Path, pkg: &str, out: &Path, image: &str) {
    let cfg = out.join("config.yaml");
    std::fs::write(
        &cfg,
        "admin:\n  endpoint: dns:///localhost:30080\n  insecure: true\n",
    )
    .unwrap();
    let tgz = out.join("pkg.tgz");
    let o = Command::new(venv().join("bin/pyflyte"))
        .current_dir(project)
        // No Docker engine: flytekit must not build the fixtures' images while packaging.
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env("VIRTUAL_ENV", venv())
        .args([
            "-c",
            cfg.to_str().unwrap(),
            "--pkgs",
            pkg,
            "package",
            "--copy",
            "all",
            "--image",
            image,
            "-o",
        ])
        .arg(&tgz)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "pyflyte package failed: {}{}",
        stdout(&o),
        stderr(&o)
    );
    let ok = Command::new("tar")
        .arg("xzf")
        .arg(&tgz)
        .arg("-C")
        .arg(out)
        .status()
        .unwrap();
    assert!(ok.success());
}

fn check_same_as_pyflyte(project_rel: &str, pkg: &str) {
    let project = repo().join("python_fixtures").join(project_rel);
    let theirs = tempfile::tempdir().unwrap();
    let ours = tempfile::tempdir().unwrap();
    let image = "localhost:30000/union-test/default:1";
    pyflyte_package(&project, pkg, theirs.path(), image);
    let o = run(union()
        .current_dir(&project)
        .args(["package", pkg, "--image", image, "-q", "-o"])
        .arg(ours.path()));
    assert!(o.status.success());
    let cmp = Command::new(venv().join("bin/python"))
        .arg(repo().join("tests/support/compare_packages.py"))
        .arg(theirs.path())
        .arg(ours.path())
        .output()
        .unwrap();
    let report = stdout(&cmp);
    eprintln!("{report}");
    assert!(
        cmp.status.success(),
        "specs differ from pyflyte's:\n{report}{}",
        stderr(&cmp)
    );
    // The same code archive, byte for byte in content (same ls_digest in the name).
    let archive = |d: &Path| {
        std::fs::read_dir(d)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with("fast") && n.ends_with(".tar.gz"))
    };
    assert_eq!(archive(theirs.path()), archive(ours.path()));
}

#[test]
fn hello_specs_equal_pyflyte_package() {
    check_same_as_pyflyte("hello", "workflows");
}

#[test]
fn typed_specs_equal_pyflyte_package() {
    check_same_as_pyflyte("typed", "workflows");
}

#[test]
fn package_tree_specs_equal_pyflyte_package() {
    check_same_as_pyflyte("pkgtree", "myproj");
}

#[test]
fn package_names_files_like_pyflyte_and_refuses_to_overwrite() {
    let out = tempfile::tempdir().unwrap();
    let o = run(union()
        .args(["package", &fixture("pkgtree/myproj"), "-q", "-o"])
        .arg(out.path()));
    assert!(o.status.success());
    let mut names: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.contains(&"0_myproj.greet.greet_1.pb".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"7_myproj.sub.math_ops.add_three_3.pb".to_string()),
        "{names:?}"
    );
    assert!(names
        .iter()
        .any(|n| n.starts_with("fast") && n.ends_with(".tar.gz")));
    let first = std::fs::read(out.path().join("0_myproj.greet.greet_1.pb")).unwrap();

    let o = run(union()
        .args(["package", &fixture("pkgtree/myproj"), "-q", "-o"])
        .arg(out.path()));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already holds a package") && stderr(&o).contains("--force"));

    let o = run(union()
        .args(["package", &fixture("pkgtree/myproj"), "-q", "--force", "-o"])
        .arg(out.path()));
    assert!(o.status.success());
    assert_eq!(
        std::fs::read(out.path().join("0_myproj.greet.greet_1.pb")).unwrap(),
        first,
        "deterministic"
    );
}

#[test]
fn package_without_code_archive() {
    let out = tempfile::tempdir().unwrap();
    let o = run(union()
        .args([
            "package",
            &fixture("pkgtree/myproj"),
            "-q",
            "--copy",
            "none",
            "-o",
        ])
        .arg(out.path()));
    assert!(o.status.success());
    assert!(!std::fs::read_dir(out.path()).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".tar.gz")));
}
