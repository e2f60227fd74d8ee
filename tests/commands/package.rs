//! `union package` produces the same specs as `pyflyte package` for the fixtures, and a
//! deterministic archive.

use std::path::Path;
use std::process::Command;

use crate::support::*;

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
    check_same_as_pyflyte_at(&repo().join("python_fixtures").join(project_rel), pkg, None);
}

/// `union package` (with UNION_SERIALIZE_WORKERS=`workers` when given) against `pyflyte package`.
fn check_same_as_pyflyte_at(project: &Path, pkg: &str, workers: Option<&str>) {
    let theirs = tempfile::tempdir().unwrap();
    let ours = tempfile::tempdir().unwrap();
    let image = "localhost:30000/union-test/default:1";
    pyflyte_package(project, pkg, theirs.path(), image);
    let mut cmd = union();
    if let Some(w) = workers {
        cmd.env("UNION_SERIALIZE_WORKERS", w);
    }
    let o = run(cmd
        .current_dir(project)
        .args(["package", pkg, "--image", image, "-o"])
        .arg(ours.path()));
    assert!(o.status.success(), "{}", stderr(&o));
    if let Some(w) = workers {
        assert!(
            stderr(&o).contains(&format!(" in {w} processes")),
            "not serialized in {w} processes: {}",
            stderr(&o)
        );
    }
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
    let (a, b) = (archive(theirs.path()), archive(ours.path()));
    assert!(a.is_some(), "pyflyte wrote no code archive");
    assert!(b.is_some(), "union wrote no code archive");
    assert_eq!(a, b);
}

/// A generated project (tests/bench/gen_project.py): `tasks` tasks, `workflows` workflows.
fn generated_project(tasks: u32, workflows: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(venv().join("bin/python"))
        .arg(repo().join("tests/bench/gen_project.py"))
        .arg(dir.path())
        .arg(tasks.to_string())
        .arg(workflows.to_string())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    dir
}

#[test]
fn parallel_serialization_of_a_big_project_equals_pyflyte_package() {
    // 90 specs: serialized by several forked worker processes (three, whatever the CPU count).
    let project = generated_project(60, 15);
    check_same_as_pyflyte_at(project.path(), "benchproj", Some("3"));
}

#[test]
fn parallel_and_single_process_serialization_write_identical_files() {
    let generated = generated_project(60, 15);
    let projects = [
        (repo().join("python_fixtures/hello"), "workflows"),
        (repo().join("python_fixtures/typed"), "workflows"),
        (repo().join("python_fixtures/pkgtree"), "myproj"),
        (generated.path().to_path_buf(), "benchproj"),
    ];
    for (project, pkg) in projects {
        let outs: Vec<_> = ["1", "3"]
            .iter()
            .map(|workers| {
                let out = tempfile::tempdir().unwrap();
                let o = run(union()
                    .current_dir(&project)
                    .env("UNION_SERIALIZE_WORKERS", workers)
                    .args(["package", pkg, "--image", "localhost:30000/x:1", "-o"])
                    .arg(out.path()));
                assert!(o.status.success(), "{}", stderr(&o));
                // The forced worker count is used, even for small projects.
                let parallel = stderr(&o).contains(" in 3 processes");
                assert_eq!(parallel, *workers == "3", "{}", stderr(&o));
                out
            })
            .collect();
        let (one, three) = (dir_files(outs[0].path()), dir_files(outs[1].path()));
        assert!(one.len() > 2, "{}: nothing packaged", project.display());
        let names = |v: &[(String, Vec<u8>)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&one),
            names(&three),
            "{}: different files",
            project.display()
        );
        assert!(one == three, "{}: different bytes", project.display());
    }
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

#[test]
fn a_user_thread_keeps_serialization_in_one_process() {
    // Forking beside a thread of the user's could inherit a lock that thread holds: with one
    // alive, serialization stays in one process (and gives the same files).
    let project = generated_project(40, 10);
    let pkg = project.path().join("benchproj");
    std::fs::write(
        pkg.join("__init__.py"),
        "import threading, time\nthreading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = run(union()
        .current_dir(project.path())
        .env("UNION_SERIALIZE_WORKERS", "3")
        .args([
            "package",
            "benchproj",
            "--image",
            "localhost:30000/x:1",
            "-o",
        ])
        .arg(out.path()));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains(" processes"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Serializing: 60 specs ("),
        "{}",
        stderr(&o)
    );
}
