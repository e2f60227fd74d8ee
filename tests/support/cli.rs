//! Running the real `union` binary (and the real `pyflyte`) the way users do: commands, their
//! output, and user projects ([`Project`]: a copy of a fixture in its own directory, commands run
//! from its root).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{repo, TEST_BASE_IMAGE, TEST_DOCKER_SOCKET};

/// A fixture project's path in this repository (for tests that do not run as a user).
pub fn fixture(rel: &str) -> String {
    repo()
        .join("python_fixtures")
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

/// The test virtualenv with pyflyte (made by tests/setup/python-env.sh); its absence fails the
/// test with the command that makes it.
pub fn venv() -> PathBuf {
    let v = repo().join(".venv");
    assert!(
        v.join("bin").join("pyflyte").exists(),
        "no .venv with pyflyte: create it with `bash tests/setup/python-env.sh`"
    );
    v
}

/// A `union` command run from the repository root, with the test venv active.
pub fn union() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_union"));
    c.current_dir(repo());
    c.env("VIRTUAL_ENV", venv());
    c.env_remove("FLYTE_FORCE_PUSH_IMAGE_SPEC");
    // No warm-interpreter servers from tests (each test directory and environment would start
    // one); tests/user/warm.rs turns it on where it is the subject.
    c.env("UNION_WARM", "0");
    c
}

/// Text of stdout / stderr.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run and return output, printing both streams for debugging when the assertion fails.
pub fn run(cmd: &mut Command) -> Output {
    let o = cmd.output().expect("run union");
    eprintln!(
        "--- stdout:\n{}--- stderr:\n{}--- status: {:?}",
        stdout(&o),
        stderr(&o),
        o.status
    );
    o
}

/// Run real `pyflyte run` (flytekit 1.16.31 in the test venv) the way a user would, and return
/// its result line: pyflyte prints "Running Execution on local." first, then the output.
pub fn pyflyte_run(file: &str, entity: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    // With `union` installed, pyflyte refuses to run without a config file, even locally.
    let cfg = dir.path().join("config.yaml");
    std::fs::write(
        &cfg,
        "admin:\n  endpoint: dns:///localhost:30080\n  insecure: true\n",
    )
    .unwrap();
    let o = Command::new(venv().join("bin/pyflyte"))
        .current_dir(repo())
        .env("VIRTUAL_ENV", venv())
        .arg("-c")
        .arg(&cfg)
        .arg("run")
        .arg(file)
        .arg(entity)
        .args(args)
        .output()
        .expect("run pyflyte");
    let out = stdout(&o);
    assert!(
        o.status.success(),
        "pyflyte failed: {}\n{}",
        out,
        stderr(&o)
    );
    out.lines()
        .filter(|l| !l.starts_with("Running Execution on"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// A `union` command that builds with the test engine and base image.
pub fn union_docker() -> Command {
    let mut c = union();
    c.env("DOCKER_HOST", format!("unix://{TEST_DOCKER_SOCKET}"));
    c.env("UNION_BASE_IMAGE", TEST_BASE_IMAGE);
    c
}

/// Run a Python script from tests/support with the test venv's interpreter.
pub fn python_support<A: AsRef<std::ffi::OsStr>>(script: &str, args: &[A]) -> Output {
    Command::new(venv().join("bin/python"))
        .arg(repo().join("tests/support").join(script))
        .args(args)
        .env("VIRTUAL_ENV", venv())
        .output()
        .expect("run python")
}

/// Every file directly in `dir`, name and bytes, sorted by name.
pub fn dir_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect();
    v.sort();
    v
}

/// A copy of a fixture project in a fresh directory outside this repository, used the way a
/// user uses their project: its root is the working directory, paths are relative, the
/// virtualenv is the user's (the repository's `.venv`, as if activated).
pub struct Project {
    dir: tempfile::TempDir,
    root: PathBuf,
}

impl Project {
    /// `python_fixtures/<fixture>` copied into `<tmp>/union-user-XXXX/my-project`.
    pub fn new(fixture: &str) -> Project {
        Self::named(fixture, "my-project")
    }

    /// The hello example with its ImageSpec naming the suite's registry (`localhost:30000`), as
    /// it did before the sandbox had a registry of its own: for tests about something else,
    /// whose image then already exists there (no build, no push to a per-test sandbox).
    pub fn hello_pinned() -> Project {
        let p = Self::new("hello");
        pin_hello_registry(&p.root, super::TEST_REGISTRY);
        p
    }

    /// The same, in a directory with the given name (for names that are not UTF-8, say).
    pub fn named(fixture: &str, name: impl AsRef<std::ffi::OsStr>) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("union-user-")
            .tempdir()
            .unwrap();
        let root = dir.path().join(name.as_ref());
        copy_tree(&repo().join("python_fixtures").join(fixture), &root);
        assert!(
            !root.starts_with(repo()),
            "a user project must live outside the repository"
        );
        Project { dir, root }
    }

    /// The same, made a git repository with one commit and an `origin` remote (as most are).
    pub fn git(fixture: &str) -> Project {
        let p = Self::new(fixture);
        for args in [
            vec!["init", "-q", "-b", "main"],
            vec!["add", "-A"],
            vec![
                "-c",
                "user.name=Test",
                "-c",
                "user.email=test@example.com",
                "commit",
                "-q",
                "-m",
                "init",
            ],
            vec![
                "remote",
                "add",
                "origin",
                "https://github.com/example/my-project.git",
            ],
        ] {
            let o = Command::new("git")
                .args(&args)
                .current_dir(&p.root)
                .output()
                .expect("run git");
            assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
        }
        p
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The temporary directory holding the project (for files beside it).
    pub fn parent(&self) -> &Path {
        self.dir.path()
    }

    /// `union ARGS...` run from the project's root.
    pub fn union(&self) -> Command {
        let mut c = union();
        c.current_dir(&self.root);
        c
    }

    /// `union ARGS...` from the project's root, with the test engine and base image.
    pub fn union_docker(&self) -> Command {
        let mut c = union_docker();
        c.current_dir(&self.root);
        c
    }

    /// The real `pyflyte ARGS...` from the project's root, with a config (pyflyte refuses to
    /// run without one when `union` is installed).
    pub fn pyflyte(&self, config: &Path) -> Command {
        let mut c = Command::new(venv().join("bin/pyflyte"));
        c.current_dir(&self.root)
            .env("VIRTUAL_ENV", venv())
            .arg("-c")
            .arg(config);
        c
    }
}

/// Make the hello example under `root` push its image to `registry`.
pub fn pin_hello_registry(root: &Path, registry: &str) {
    let file = root.join("workflows/hello.py");
    let source = std::fs::read_to_string(&file).unwrap();
    let pinned = source.replacen(
        "requirements=\"requirements.txt\",",
        &format!("requirements=\"requirements.txt\",\n    registry=\"{registry}\","),
        1,
    );
    assert_ne!(
        pinned, source,
        "the hello example's ImageSpec changed shape"
    );
    std::fs::write(&file, pinned).unwrap();
}

/// Copy a directory tree (regular files and directories; `__pycache__` left out).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "__pycache__" {
            continue;
        }
        let ty = entry.file_type().unwrap();
        if ty.is_dir() {
            copy_tree(&entry.path(), &to.join(&name));
        } else if ty.is_file() {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}
