//! The code archive against the real flytekit: file listing, ls_digest and tar contents.
//!
//! The flytekit side runs `tests/support/package_flytekit.py` with the project's `.venv` Python;
//! without it (or without git) the comparisons are skipped with a message, never failed.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use union_package::{
    build_archive, list_files, list_files_with, ls_digest, write_archive, ArchiveOptions, CopyMode,
    FileList, IgnoreKind, IgnoreSet, IgnoreSource, ListOptions,
};

const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/package_flytekit.py"
);

/// git is part of the test machine (tests/setup/docker.sh installs it): its absence fails.
fn require_git() {
    let ok = Command::new("git")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "these tests need git; install it (`bash tests/setup/docker.sh` does)"
    );
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the flytekit helper; `None` (skip) when the project's venv is missing.
fn flytekit(req: Value) -> Value {
    assert!(
        Path::new(PYTHON).exists(),
        "{PYTHON} not found: create the test virtualenv with `bash tests/setup/python-env.sh`"
    );
    let mut child = Command::new(PYTHON)
        .arg(SCRIPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    serde_json::to_writer(child.stdin.take().unwrap(), &req).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "flytekit helper failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn write(root: &Path, rel: &str, body: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, body).unwrap();
}

fn rels(list: &FileList) -> Vec<String> {
    list.relative_files()
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

/// Compares our listing and digest with flytekit's for each (root, ignore set).
fn assert_same_as_flytekit(cases: &[(PathBuf, &str)]) {
    let req = json!({"cases": cases.iter().map(|(r, i)| json!({"root": r, "ignores": i})).collect::<Vec<_>>()});
    let answer = flytekit(req);
    for ((root, which), expected) in cases.iter().zip(answer["cases"].as_array().unwrap()) {
        let set = if *which == "fast" {
            IgnoreSet::fast_register()
        } else {
            IgnoreSet::image_spec()
        };
        let list = list_files(root, CopyMode::All, &set).unwrap();
        let theirs: Vec<String> = expected["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().into())
            .collect();
        assert_eq!(
            rels(&list),
            theirs,
            "file list for {} ({which})\nignored: {:#?}",
            root.display(),
            list.ignored
        );
        assert_eq!(
            ls_digest(&list.root, &list.files).unwrap(),
            expected["digest"].as_str().unwrap(),
            "{}",
            root.display()
        );
    }
}

/// A git project exercising every ignore rule flytekit applies, plus awkward files.
fn rich_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    git(r, &["init", "-q", "."]);
    write(
        r,
        ".gitignore",
        "*.log\n/build/\ndata/\n!data/keep.txt\nsecret*\n# comment\n",
    );
    write(r, "a.py", "import pkg\n");
    write(r, "a.log", "ignored\n");
    write(r, "tracked.log", "tracked, so never ignored by git\n");
    git(r, &["add", "-f", "tracked.log"]);
    write(r, "build/out.py", "ignored: anchored dir\n");
    write(r, "sub/build/x.py", "kept: /build/ is anchored\n");
    write(r, "data/keep.txt", "still ignored: its directory is\n");
    write(r, "data/x.csv", "1,2\n");
    write(r, "secret_key.txt", "s\n");
    write(r, "sub/.gitignore", "!keep.log\n*.tmp\n");
    write(r, "sub/keep.log", "re-included by the nested .gitignore\n");
    write(r, "sub/x.tmp", "t\n");
    write(r, "sub/deeper/y.tmp", "t\n");
    write(r, "sub/deeper/z.py", "z\n");
    write(
        r,
        ".dockerignore",
        "docs\n**/*.md\n!README.md\n# comment\n\nnotebooks/*.ipynb\n!notebooks/keep.ipynb\n",
    );
    write(r, "docs/a.txt", "d\n");
    write(r, "README.md", "r\n");
    write(r, "sub/NOTES.md", "n\n");
    write(r, "notebooks/a.ipynb", "{}\n");
    write(r, "notebooks/keep.ipynb", "{}\n");
    write(r, "notebooks/sub/b.ipynb", "{}\n");
    write(r, ".flyteignore", "*.csv\nlarge/\n");
    write(r, "large/blob.bin", "b\n");
    write(r, "top.csv", "1\n");
    write(r, "pkg/__init__.py", "");
    write(r, "pkg/m.py", "m = 1\n");
    write(r, "pkg/m.pyc", "c");
    write(r, "pkg/__pycache__/m.cpython-311.pyc", "c");
    write(r, "__pycache__/top.cpython-311.pyc", "c");
    write(r, ".cache/x", "c");
    write(r, "pkg/.cache/y", "kept: .cache is only matched at the top");
    write(r, "my file.py", "spaces\n");
    write(r, "pkg/café.py", "non-ascii name\n");
    let long = format!("pkg/{}/{}.py", "d".repeat(60), "f".repeat(80));
    write(r, &long, "long name\n");
    write(r, "run.sh", "#!/bin/sh\n");
    fs::set_permissions(r.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("a.py", r.join("link.py")).unwrap();
    std::os::unix::fs::symlink("pkg", r.join("linkdir")).unwrap();
    std::os::unix::fs::symlink("missing.py", r.join("broken.py")).unwrap();
    fs::hard_link(r.join("pkg/m.py"), r.join("pkg/m_hard.py")).unwrap();
    // A nested repository: git does not look inside, so its *.log is not git-ignored.
    write(r, "vendor/lib/x.log", "x\n");
    git(&r.join("vendor/lib"), &["init", "-q", "."]);
    // An ignored nested repository: git reports only "ign2/", which flytekit never matches.
    write(
        r,
        ".gitignore",
        "*.log\n/build/\ndata/\n!data/keep.txt\nsecret*\n# comment\nign2/\n",
    );
    write(r, "ign2/e.py", "e\n");
    git(&r.join("ign2"), &["init", "-q", "."]);
    write(r, ".git/info/exclude", "excluded_by_info.txt\n");
    write(r, "excluded_by_info.txt", "x\n");
    git(r, &["add", "a.py", "pkg/__init__.py"]);
    git(r, &["commit", "-q", "-m", "init"]);
    dir
}

#[test]
fn listing_and_digest_match_flytekit_in_a_git_repo() {
    require_git();
    let repo = rich_repo();
    let r = repo.path();
    let list = list_files(r, CopyMode::All, &IgnoreSet::fast_register()).unwrap();
    // Spot checks independent of flytekit being installed.
    let files = rels(&list);
    for kept in [
        "tracked.log",
        "sub/keep.log",
        "sub/build/x.py",
        "vendor/lib/x.log",
        "ign2/e.py",
        "link.py",
        "pkg/.cache/y",
    ] {
        assert!(
            files.contains(&kept.to_string()),
            "{kept} missing from {files:#?}"
        );
    }
    for dropped in [
        "a.log",
        "build/out.py",
        "data/keep.txt",
        "excluded_by_info.txt",
        "docs/a.txt",
        "top.csv",
        "pkg/m.pyc",
    ] {
        assert!(
            !files.contains(&dropped.to_string()),
            "{dropped} should be ignored"
        );
    }
    let info = list
        .ignored
        .iter()
        .find(|f| f.path == Path::new("excluded_by_info.txt"))
        .unwrap();
    assert!(matches!(info.rule.source, IgnoreSource::GitInfoExclude(_)));
    assert_eq!(list.git_toplevel.as_deref(), Some(r));
    assert_same_as_flytekit(&[
        (r.to_path_buf(), "fast"),
        (r.to_path_buf(), "image"),
        (r.join("sub"), "fast"),
    ]);
}

#[test]
fn root_below_the_repository_top() {
    require_git();
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path();
    git(top, &["init", "-q", "."]);
    write(top, ".gitignore", "*.log\nproj/generated/\n");
    write(top, "proj/a.py", "a\n");
    write(top, "proj/b.log", "b\n");
    write(top, "proj/generated/g.py", "g\n");
    write(top, "ignored_parent/proj2/x.py", "x\n");
    write(
        top,
        ".gitignore",
        "*.log\nproj/generated/\nignored_parent/\n",
    );
    let list = list_files(
        &top.join("proj"),
        CopyMode::All,
        &IgnoreSet::fast_register(),
    )
    .unwrap();
    assert_eq!(rels(&list), ["a.py"]);
    let list = list_files(
        &top.join("ignored_parent/proj2"),
        CopyMode::All,
        &IgnoreSet::fast_register(),
    )
    .unwrap();
    assert!(list.files.is_empty());
    assert_same_as_flytekit(&[
        (top.join("proj"), "fast"),
        (top.join("ignored_parent/proj2"), "fast"),
    ]);
}

#[test]
fn without_a_repository() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, "a.py", "a\n");
    write(r, "x.pyc", "c");
    write(r, ".dockerignore", "*.txt\n");
    write(r, "n.txt", "n\n");
    assert_same_as_flytekit(&[(r.to_path_buf(), "fast")]);
    // Deliberate difference: flytekit applies no .gitignore outside a git repository; we do.
    write(r, ".gitignore", "*.log\n");
    write(r, "x.log", "l\n");
    let list = list_files(r, CopyMode::All, &IgnoreSet::fast_register()).unwrap();
    assert_eq!(rels(&list), [".dockerignore", ".gitignore", "a.py"]);
    assert_eq!(list.git_toplevel, None);
}

/// A tiny deterministic generator (no extra crate needed).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.next(xs.len())]
    }
}

#[test]
fn random_trees_match_flytekit() {
    require_git();
    const DIRS: &[&str] = &["a", "b", "data", "__pycache__", ".cache", "src", "build"];
    const FILES: &[&str] = &[
        "x.py", "y.pyc", "z.log", "n.md", "keep.txt", "w.csv", ".hidden", "Q.py",
    ];
    const GIT: &[&str] = &[
        "*.log",
        "data/",
        "/a",
        "b/**/x.py",
        "!keep.txt",
        "a/*.md",
        "**/b",
        "*.txt",
        "!a/z.log",
        "data",
        "build/*",
        "!build/keep.txt",
        "src/**",
        "!src/x.py",
        "/*.md",
        "?.py",
        "[xy].py",
        "*.cs?",
        "\\#x",
        "a/**/",
        ".*",
    ];
    const DOCKER: &[&str] = &[
        "data",
        "**/*.md",
        "!a/n.md",
        "a/b",
        "*/x.py",
        "b/**",
        "!b/keep.txt",
        "*.log",
        "a/**/z.log",
        "?.py",
        "/src",
        "!src/Q.py",
        "./build/../data",
        "**/.hidden",
        "[a-b]/w.csv",
        "*",
        "!*.py",
        "**",
    ];
    // PACKAGE_FUZZ_TREES / PACKAGE_FUZZ_SEED widen the search locally; CI uses the defaults.
    let n: usize = std::env::var("PACKAGE_FUZZ_TREES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let seed: u64 = std::env::var("PACKAGE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed);
    let mut rng = Lcg(seed);
    let dirs: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut cases = Vec::new();
    for d in &dirs {
        let r = d.path();
        git(r, &["init", "-q", "."]);
        for _ in 0..(10 + rng.next(25)) {
            let depth = rng.next(4);
            let mut p = String::new();
            for _ in 0..depth {
                p.push_str(rng.pick(DIRS));
                p.push('/');
            }
            p.push_str(rng.pick(FILES));
            if !r.join(&p).is_dir()
                && !Path::new(&p)
                    .ancestors()
                    .skip(1)
                    .any(|a| r.join(a).is_file())
            {
                write(r, &p, &p);
            }
        }
        let gi: Vec<&str> = (0..rng.next(6)).map(|_| rng.pick(GIT)).collect();
        write(r, ".gitignore", &(gi.join("\n") + "\n"));
        for sub in ["a", "b/a", "src"] {
            if r.join(sub).is_dir() && rng.next(2) == 0 {
                let gi: Vec<&str> = (0..1 + rng.next(3)).map(|_| rng.pick(GIT)).collect();
                write(r, &format!("{sub}/.gitignore"), &gi.join("\n"));
            }
        }
        if rng.next(3) > 0 {
            let di: Vec<&str> = (0..1 + rng.next(5)).map(|_| rng.pick(DOCKER)).collect();
            write(r, ".dockerignore", &di.join("\n"));
        }
        if rng.next(2) == 0 {
            let fi: Vec<&str> = (0..1 + rng.next(3)).map(|_| rng.pick(DOCKER)).collect();
            write(r, ".flyteignore", &fi.join("\n"));
        }
        // Track a few files so "tracked beats ignored" gets exercised.
        if rng.next(2) == 0 {
            git(r, &["add", "-f", "--", ".gitignore"]);
            let _ = Command::new("git")
                .args(["add", "-f", "--", "*.log"])
                .current_dir(r)
                .output();
        }
        cases.push((
            r.to_path_buf(),
            if rng.next(2) == 0 { "fast" } else { "image" },
        ));
    }
    assert_same_as_flytekit(&cases);
}

#[test]
fn archive_is_deterministic_and_identical_to_python_tarfile() {
    require_git();
    let repo = rich_repo();
    let r = repo.path();
    let list = list_files(r, CopyMode::All, &IgnoreSet::fast_register()).unwrap();
    let (a1, gz1) = build_archive(&list, &ArchiveOptions::default()).unwrap();

    // Touching every file's mtime changes nothing.
    for f in &list.files {
        if let Ok(file) = fs::File::options().write(true).open(f) {
            let _ = file.set_modified(std::time::SystemTime::now());
        }
    }
    let list2 = list_files(r, CopyMode::All, &IgnoreSet::fast_register()).unwrap();
    let (a2, gz2) = build_archive(&list2, &ArchiveOptions::default()).unwrap();
    assert_eq!(gz1, gz2, "same inputs must give byte-identical archives");
    assert_eq!(a1, a2);
    assert_eq!(a1.ls_digest, ls_digest(&list.root, &list.files).unwrap());
    assert_eq!(a1.file_name, format!("fast{}.tar.gz", a1.ls_digest));
    assert_eq!(a1.file_count, list.files.len());

    let out = tempfile::tempdir().unwrap();
    let written = write_archive(&list, out.path(), &ArchiveOptions::default()).unwrap();
    let path = written.path.clone().unwrap();
    assert_eq!(fs::read(&path).unwrap(), gz1);

    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(&gz1[..])
        .read_to_end(&mut tar_bytes)
        .unwrap();
    assert_eq!(tar_bytes.len() as u64, a1.uncompressed_size);

    let py_tar = out.path().join("flytekit.tar");
    let rel: Vec<String> = rels(&list);
    let req = json!({
        "tar": {"root": r, "files": list.files, "out": py_tar},
        "members": path,
    });
    let answer = flytekit(req);
    // Python's tarfile (PAX format) with flytekit's attribute filter, int mtime: same bytes.
    assert_eq!(
        fs::read(&py_tar).unwrap(),
        tar_bytes,
        "tar stream differs from Python tarfile's"
    );

    let members = answer["members"].as_array().unwrap();
    let names: Vec<&str> = members
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, rel.iter().map(String::as_str).collect::<Vec<_>>());
    for m in members {
        let name = m["name"].as_str().unwrap();
        assert_eq!(m["mtime"], 315532800, "{name}");
        assert_eq!(
            (m["uid"].as_u64(), m["gid"].as_u64()),
            (Some(0), Some(0)),
            "{name}"
        );
        assert_eq!(
            (m["uname"].as_str(), m["gname"].as_str()),
            (Some(""), Some("")),
            "{name}"
        );
        let ty = m["type"].as_str().unwrap();
        match name {
            "link.py" => assert_eq!((ty, m["linkname"].as_str()), ("2", Some("a.py"))),
            "pkg/m_hard.py" => assert_eq!((ty, m["linkname"].as_str()), ("1", Some("pkg/m.py"))),
            _ => {
                assert_eq!(ty, "0", "{name}");
                let expected = fs::read(r.join(name)).unwrap();
                let hex: String = expected.iter().map(|b| format!("{b:02x}")).collect();
                assert_eq!(m["data"].as_str().unwrap(), hex, "{name}");
                let mode = fs::metadata(r.join(name)).unwrap().permissions().mode() & 0o7777;
                assert_eq!(m["mode"].as_u64().unwrap() as u32, mode, "{name}");
            }
        }
        // PAX records only where needed: the long and the non-ASCII names.
        let pax = m["pax"].as_object().unwrap();
        let needs = name.len() > 100 || !name.is_ascii();
        assert_eq!(!pax.is_empty(), needs, "{name}: {pax:?}");
    }
}

#[test]
fn archive_independent_of_location_and_deref() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for r in [a.path(), b.path()] {
        write(r, "wf.py", "from flytekit import task\n");
        write(r, "pkg/util.py", "x = 1\n");
        std::os::unix::fs::symlink("wf.py", r.join("alias.py")).unwrap();
    }
    let la = list_files(a.path(), CopyMode::All, &IgnoreSet::fast_register()).unwrap();
    let lb = list_files(b.path(), CopyMode::All, &IgnoreSet::fast_register()).unwrap();
    let (aa, ga) = build_archive(&la, &ArchiveOptions::default()).unwrap();
    let (ab, gb) = build_archive(&lb, &ArchiveOptions::default()).unwrap();
    assert_eq!(ga, gb);
    assert_eq!(aa.md5, ab.md5);

    // With --deref-symlinks the link becomes a regular file; the digest is the same (it always
    // hashes the link target's bytes), the archive is not.
    let opts = ArchiveOptions {
        deref_symlinks: true,
        ..Default::default()
    };
    let (ad, gd) = build_archive(&la, &opts).unwrap();
    assert_eq!(ad.ls_digest, aa.ls_digest);
    assert_ne!(gd, ga);
    let answer = flytekit(
        json!({"members": write_archive(&la, a.path().join("out").as_path(), &opts).unwrap().path}),
    );
    let alias = answer["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "alias.py")
        .unwrap();
    assert_eq!(alias["type"], "0");
}

#[test]
fn copy_modes() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, "wf.py", "import helper\n");
    write(r, "helper.py", "h\n");
    write(r, "unused.py", "u\n");
    write(r, "cache.pyc", "c");
    write(r, ".venv/pyvenv.cfg", "home = /usr/bin\n");
    write(r, ".venv/lib/python3.11/site-packages/dep.py", "d\n");

    // all: everything not ignored; the venv is reported (and kept, like flytekit).
    let all = list_files(r, CopyMode::All, &IgnoreSet::fast_register()).unwrap();
    assert_eq!(
        rels(&all),
        [
            ".venv/lib/python3.11/site-packages/dep.py",
            ".venv/pyvenv.cfg",
            "helper.py",
            "unused.py",
            "wf.py"
        ]
    );
    assert_eq!(all.virtualenvs, [PathBuf::from(".venv")]);
    let skip_venv = ListOptions {
        skip_virtualenvs: true,
        ..Default::default()
    };
    let all = list_files_with(r, CopyMode::All, &IgnoreSet::fast_register(), &skip_venv).unwrap();
    assert_eq!(rels(&all), ["helper.py", "unused.py", "wf.py"]);

    // auto: loaded modules under the root, minus installed prefixes, no ignore rules.
    let auto = ListOptions {
        loaded_modules: vec![
            r.join("wf.py"),
            r.join("helper.py"),
            r.join("cache.pyc"),
            r.join(".venv/lib/python3.11/site-packages/dep.py"),
            PathBuf::from("/usr/lib/python3.11/os.py"),
        ],
        installed_prefixes: vec![r.join(".venv")],
        ..Default::default()
    };
    let list = list_files_with(r, CopyMode::Auto, &IgnoreSet::fast_register(), &auto).unwrap();
    assert_eq!(rels(&list), ["cache.pyc", "helper.py", "wf.py"]);
    let (archive, _) = build_archive(&list, &ArchiveOptions::default()).unwrap();
    assert_eq!(archive.file_count, 3);

    // none: nothing.
    let none = list_files_with(r, CopyMode::None, &IgnoreSet::fast_register(), &auto).unwrap();
    assert!(none.files.is_empty());
    let (archive, _) = build_archive(&none, &ArchiveOptions::default()).unwrap();
    assert_eq!(archive.file_count, 0);

    // Reporting: what was ignored, by which source.
    let list = list_files(
        r,
        CopyMode::All,
        &IgnoreSet {
            kinds: vec![IgnoreKind::Standard],
        },
    )
    .unwrap();
    assert_eq!(list.ignored_counts(), [(IgnoreSource::Standard, 1)]);
}

#[test]
fn known_difference_non_ascii_git_ignored_names() {
    require_git();
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    git(r, &["init", "-q", "."]);
    write(r, ".gitignore", "*.log\n");
    write(r, "ignorée.log", "x\n");
    let list = list_files(r, CopyMode::All, &IgnoreSet::fast_register()).unwrap();
    assert_eq!(rels(&list), [".gitignore"]);
    // flytekit keeps it: `git ls-files` prints the name C-quoted, so it never matches.
    let answer = flytekit(json!({"cases": [{"root": r, "ignores": "fast"}]}));
    assert_eq!(
        answer["cases"][0]["files"],
        json!([".gitignore", "ignorée.log"])
    );
}
