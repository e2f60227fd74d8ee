//! Which files go into the code archive (`flytekit/tools/script_mode.py::ls_files`) and their
//! digest (`ls_digest`), for `--copy all|auto|none`.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use md5::{Digest, Md5};

use super::ignore::{GitDirState, IgnoreRule, IgnoreSet, Matchers};
use super::PackageError;

/// pyflyte's `--copy`: which files to ship with a fast registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CopyMode {
    /// Every file under the root except ignored ones (`CopyFileDetection.ALL`).
    #[default]
    All,
    /// Only the Python modules that were loaded (`CopyFileDetection.LOADED_MODULES`).
    Auto,
    /// No files: the code is already in the image.
    None,
}

impl FromStr for CopyMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(Self::All),
            "auto" => Ok(Self::Auto),
            "none" => Ok(Self::None),
            other => Err(format!(
                "invalid copy mode {other:?} (expected all, auto or none)"
            )),
        }
    }
}

/// Options beyond the copy mode and ignore set.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// pyflyte's `--deref-symlinks`: follow symlinked directories and archive link targets.
    pub deref_symlinks: bool,
    /// Skip directories holding a `pyvenv.cfg` (virtualenvs). Off by default for flytekit parity;
    /// they are always reported in [`FileList::virtualenvs`] either way.
    pub skip_virtualenvs: bool,
    /// `Auto` mode: the absolute `__file__` of every module loaded by Python.
    pub loaded_modules: Vec<PathBuf>,
    /// `Auto` mode: directories of installed code to leave out (the flytekit package directory,
    /// `sys.prefix`, `sys.base_prefix`, user and global site-packages).
    pub installed_prefixes: Vec<PathBuf>,
}

/// Why a file under the root was left out without an ignore rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// A symlink whose target does not exist (flytekit skips these too).
    BrokenSymlink,
    /// A socket (flytekit skips these too).
    Socket,
    /// A FIFO or device node. flytekit would try to read it (and hang on a FIFO); we skip it.
    NotRegular,
    /// A symlink to a directory without `deref_symlinks` (`os.walk` does not follow it).
    SymlinkedDirectory,
    /// A directory we could not read (`os.walk` silently skips these too).
    Unreadable,
    /// A virtualenv directory skipped because [`ListOptions::skip_virtualenvs`] is set.
    Virtualenv,
}

/// A file dropped by an ignore rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredFile {
    /// Path relative to the root.
    pub path: PathBuf,
    /// The rule that dropped it.
    pub rule: IgnoreRule,
}

/// A path left out for a reason other than an ignore rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedPath {
    /// Path relative to the root.
    pub path: PathBuf,
    /// Why.
    pub reason: SkipReason,
}

/// The result of a listing: what goes into the archive and what was left out, and why.
#[derive(Debug, Clone, Default)]
pub struct FileList {
    /// The root the listing is relative to (absolute).
    pub root: PathBuf,
    /// Absolute paths of the selected files, sorted by bytes (flytekit sorts the path strings).
    pub files: Vec<PathBuf>,
    /// Files dropped by ignore rules, sorted by path.
    pub ignored: Vec<IgnoredFile>,
    /// Paths dropped for other reasons, sorted by path.
    pub skipped: Vec<SkippedPath>,
    /// Virtualenv directories (holding `pyvenv.cfg`) found under the root, relative to it.
    pub virtualenvs: Vec<PathBuf>,
    /// The git work tree holding the root, when git rules were applied inside one (without one,
    /// flytekit applies no `.gitignore` at all; we still do).
    pub git_toplevel: Option<PathBuf>,
    /// Non-fatal problems (unparsable ignore lines, unreadable git index).
    pub warnings: Vec<String>,
}

impl FileList {
    /// How many files each ignore source dropped, e.g. for "12 files ignored by .gitignore".
    pub fn ignored_counts(&self) -> Vec<(super::ignore::IgnoreSource, usize)> {
        let mut counts: Vec<(super::ignore::IgnoreSource, usize)> = Vec::new();
        for f in &self.ignored {
            match counts.iter_mut().find(|(s, _)| *s == f.rule.source) {
                Some((_, n)) => *n += 1,
                None => counts.push((f.rule.source.clone(), 1)),
            }
        }
        counts
    }

    /// The selected files relative to the root.
    pub fn relative_files(&self) -> Vec<PathBuf> {
        self.files
            .iter()
            .map(|f| f.strip_prefix(&self.root).unwrap_or(f).to_path_buf())
            .collect()
    }
}

/// Lists the files for `mode` under `root` with default [`ListOptions`].
pub fn list_files(
    root: &Path,
    mode: CopyMode,
    ignores: &IgnoreSet,
) -> Result<FileList, PackageError> {
    list_files_with(root, mode, ignores, &ListOptions::default())
}

/// Lists the files for `mode` under `root`, like flytekit's `ls_files` (without the digest).
pub fn list_files_with(
    root: &Path,
    mode: CopyMode,
    ignores: &IgnoreSet,
    options: &ListOptions,
) -> Result<FileList, PackageError> {
    let root = absolute_root(root)?;
    let mut list = FileList {
        root: root.clone(),
        ..Default::default()
    };
    match mode {
        CopyMode::None => {}
        CopyMode::Auto => {
            list.files =
                loaded_module_files(&root, &options.loaded_modules, &options.installed_prefixes);
        }
        CopyMode::All => {
            let matchers = Matchers::new(&root, ignores)?;
            let mut walker = Walker {
                root: &root,
                options,
                matchers: &matchers,
                list: &mut list,
                visited: HashSet::new(),
            };
            let git_state = matchers
                .git
                .as_ref()
                .map(|g| g.root_state(&root))
                .unwrap_or_default();
            if options.deref_symlinks {
                let meta = fs::metadata(&root).map_err(|source| PackageError::Io {
                    path: root.clone(),
                    source,
                })?;
                walker.visited.insert((meta.dev(), meta.ino()));
            }
            walker.walk(&root, &git_state)?;
            if let Some(g) = &matchers.git {
                list.git_toplevel = g.toplevel().map(Path::to_path_buf);
                list.warnings.extend(g.warnings.iter().cloned());
            }
        }
    }
    list.files
        .sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    list.ignored.sort_by(|a, b| a.path.cmp(&b.path));
    list.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    list.virtualenvs.sort();
    Ok(list)
}

fn absolute_root(root: &Path) -> Result<PathBuf, PackageError> {
    let abs = if root.is_absolute() {
        root.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|source| PackageError::Io {
                path: root.to_path_buf(),
                source,
            })?
            .join(root)
    };
    let abs = normalize(&abs);
    match fs::metadata(&abs) {
        Ok(m) if m.is_dir() => Ok(abs),
        Ok(_) => Err(PackageError::NotADirectory { path: abs }),
        Err(source) => Err(PackageError::Io { path: abs, source }),
    }
}

/// Lexical normalization like `os.path.normpath` (no symlink resolution, as flytekit).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `list_imported_modules_as_files`: module files under the root and not under an installed prefix.
fn loaded_module_files(root: &Path, modules: &[PathBuf], installed: &[PathBuf]) -> Vec<PathBuf> {
    let installed: Vec<PathBuf> = installed.iter().map(|p| normalize(p)).collect();
    let mut seen = HashSet::new();
    modules
        .iter()
        .map(|m| normalize(m))
        // flytekit compares paths with os.path.commonpath: lexical, component-wise, no realpath.
        .filter(|m| {
            m.is_absolute() && !installed.iter().any(|d| m.starts_with(d)) && m.starts_with(root)
        })
        // Two module names for one file would be hashed and archived twice by flytekit; once is enough.
        .filter(|m| seen.insert(m.clone()))
        .collect()
}

struct Walker<'a> {
    root: &'a Path,
    options: &'a ListOptions,
    matchers: &'a Matchers,
    list: &'a mut FileList,
    visited: HashSet<(u64, u64)>,
}

fn rel_string(rel: &Path) -> String {
    rel.to_string_lossy().into_owned()
}

impl Walker<'_> {
    fn rel<'p>(&self, abs: &'p Path) -> &'p Path {
        abs.strip_prefix(self.root).unwrap_or(abs)
    }

    fn skip(&mut self, abs: &Path, reason: SkipReason) {
        let path = self.rel(abs).to_path_buf();
        self.list.skipped.push(SkippedPath { path, reason });
    }

    fn walk(&mut self, dir: &Path, git: &GitDirState) -> Result<(), PackageError> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(_) if dir != self.root => {
                self.skip(dir, SkipReason::Unreadable);
                return Ok(());
            }
            Err(source) => {
                return Err(PackageError::Io {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        };
        let mut names: Vec<_> = entries
            .filter_map(|e| e.ok())
            .map(|e| (e.file_name(), e.file_type().ok()))
            .collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, ftype) in names {
            let abs = dir.join(&name);
            let Some(ftype) = ftype else {
                self.skip(&abs, SkipReason::Unreadable);
                continue;
            };
            // What os.walk sees: symlinks are classified by their target.
            let (meta, is_link) = if ftype.is_symlink() {
                match fs::metadata(&abs) {
                    Ok(m) => (m, true),
                    Err(_) => {
                        self.skip(&abs, SkipReason::BrokenSymlink);
                        continue;
                    }
                }
            } else {
                match fs::symlink_metadata(&abs) {
                    Ok(m) => (m, false),
                    Err(_) => continue, // vanished during the walk
                }
            };
            if meta.is_dir() {
                // flytekit's EXCLUDE_DIRS = {".git"}: any directory so named, at any depth.
                if name == ".git" {
                    continue;
                }
                if is_link && !self.options.deref_symlinks {
                    self.skip(&abs, SkipReason::SymlinkedDirectory);
                    continue;
                }
                if self.options.deref_symlinks && !self.visited.insert((meta.dev(), meta.ino())) {
                    continue; // already walked: the inode guard that stops symlink loops
                }
                if abs.join("pyvenv.cfg").is_file() {
                    self.list.virtualenvs.push(self.rel(&abs).to_path_buf());
                    if self.options.skip_virtualenvs {
                        self.skip(&abs, SkipReason::Virtualenv);
                        continue;
                    }
                }
                let child = match &self.matchers.git {
                    Some(g) => g.child_state(git, &abs, &mut self.list.warnings),
                    None => GitDirState::default(),
                };
                self.walk(&abs, &child)?;
                continue;
            }
            let ft = meta.file_type();
            if ft.is_socket() {
                self.skip(&abs, SkipReason::Socket);
                continue;
            }
            if !ft.is_file() {
                self.skip(&abs, SkipReason::NotRegular);
                continue;
            }
            let rel = rel_string(self.rel(&abs));
            match self.matchers.file_rule(git, &abs, &rel) {
                Some(rule) => self.list.ignored.push(IgnoredFile {
                    path: PathBuf::from(rel),
                    rule,
                }),
                None => self.list.files.push(abs),
            }
        }
        Ok(())
    }
}

/// flytekit's `ls_digest`: MD5 over each file's bytes then its relative path with `/` removed,
/// in sorted order of the absolute paths; lowercase hex.
pub fn ls_digest(root: &Path, files: &[PathBuf]) -> Result<String, PackageError> {
    let mut sorted: Vec<&PathBuf> = files.iter().collect();
    sorted.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 65536];
    for path in sorted {
        let abs = if path.is_absolute() {
            path.clone()
        } else {
            root.join(path)
        };
        let mut f = fs::File::open(&abs).map_err(|source| PackageError::Io {
            path: abs.clone(),
            source,
        })?;
        loop {
            let n = f.read(&mut buf).map_err(|source| PackageError::Io {
                path: abs.clone(),
                source,
            })?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        hasher.update(digest_path_bytes(root, &abs));
    }
    Ok(hex(&hasher.finalize()))
}

/// The path part of the digest: `os.path.relpath(abspath, root)` with separators removed.
pub(crate) fn digest_path_bytes(root: &Path, abs: &Path) -> Vec<u8> {
    let rel = abs.strip_prefix(root).unwrap_or(abs);
    rel.as_os_str()
        .as_bytes()
        .iter()
        .copied()
        .filter(|&b| b != b'/')
        .collect()
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ignore::{IgnoreKind, IgnoreSource};

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

    #[test]
    fn digest_matches_known_vector() {
        // Computed with flytekit 1.16.31's ls_files on this tree.
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.py", "print(1)\n");
        write(dir.path(), "pkg/b.py", "x = 2\n");
        let list = list_files(dir.path(), CopyMode::All, &IgnoreSet::none()).unwrap();
        let digest = ls_digest(&list.root, &list.files).unwrap();
        let mut h = Md5::new();
        h.update(b"print(1)\n");
        h.update(b"a.py");
        h.update(b"x = 2\n");
        h.update(b"pkgb.py");
        assert_eq!(digest, hex(&h.finalize()));
    }

    #[test]
    fn all_mode_standard_docker_flyte() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "a.py", "a");
        write(r, "a.pyc", "c");
        write(r, "pkg/__pycache__/m.cpython-311.pyc", "c");
        write(r, "pkg/m.py", "m");
        write(r, "data/big.csv", "1,2");
        write(r, "data/keep.csv", "1,2");
        write(r, "notes.txt", "n");
        write(r, ".dockerignore", "data\n!data/keep.csv\n");
        write(r, ".flyteignore", "notes.txt\n");
        let list = list_files(r, CopyMode::All, &IgnoreSet::fast_register()).unwrap();
        assert_eq!(
            rels(&list),
            [
                ".dockerignore",
                ".flyteignore",
                "a.py",
                "data/keep.csv",
                "pkg/m.py"
            ]
        );
        let counts = list.ignored_counts();
        assert!(counts.contains(&(IgnoreSource::DockerIgnore, 1)));
        assert!(counts.contains(&(IgnoreSource::FlyteIgnore, 1)));
        assert!(counts.contains(&(IgnoreSource::Standard, 2)));
        // ImageSpec's set has no .flyteignore.
        let list = list_files(r, CopyMode::All, &IgnoreSet::image_spec()).unwrap();
        assert!(rels(&list).contains(&"notes.txt".to_string()));
    }

    #[test]
    fn gitignore_without_repo_nested_and_negated() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, ".gitignore", "*.log\n/build/\n");
        write(r, "x.log", "l");
        write(r, "build/out.py", "o");
        write(r, "sub/build/keep.py", "k");
        write(r, "sub/.gitignore", "!important.log\n");
        write(r, "sub/important.log", "i");
        write(r, "sub/other.log", "o");
        let list = list_files(
            r,
            CopyMode::All,
            &IgnoreSet {
                kinds: vec![IgnoreKind::Git],
            },
        )
        .unwrap();
        assert_eq!(
            rels(&list),
            [
                ".gitignore",
                "sub/.gitignore",
                "sub/build/keep.py",
                "sub/important.log"
            ]
        );
        let build = list
            .ignored
            .iter()
            .find(|f| f.path == Path::new("build/out.py"))
            .unwrap();
        assert_eq!(build.rule.pattern, "/build/");
        assert_eq!(
            build.rule.source,
            IgnoreSource::GitIgnoreFile(r.join(".gitignore"))
        );
    }

    #[test]
    fn skips_git_dirs_broken_links_sockets_and_reports_venvs() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "a.py", "a");
        write(r, ".git/HEAD", "ref: refs/heads/main\n");
        write(r, "sub/.git/config", "");
        write(r, ".venv/pyvenv.cfg", "home = /usr\n");
        write(r, ".venv/lib/x.py", "x");
        std::os::unix::fs::symlink(r.join("missing"), r.join("broken.py")).unwrap();
        std::os::unix::fs::symlink(r.join("a.py"), r.join("link.py")).unwrap();
        std::os::unix::fs::symlink(r.join("sub"), r.join("linkdir")).unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(r.join("s.sock")).unwrap();
        let list = list_files(r, CopyMode::All, &IgnoreSet::none()).unwrap();
        assert_eq!(
            rels(&list),
            [".venv/lib/x.py", ".venv/pyvenv.cfg", "a.py", "link.py"]
        );
        assert_eq!(list.virtualenvs, [PathBuf::from(".venv")]);
        let reasons: Vec<_> = list
            .skipped
            .iter()
            .map(|s| (s.path.to_string_lossy().into_owned(), s.reason))
            .collect();
        assert!(reasons.contains(&("broken.py".into(), SkipReason::BrokenSymlink)));
        assert!(reasons.contains(&("s.sock".into(), SkipReason::Socket)));
        assert!(reasons.contains(&("linkdir".into(), SkipReason::SymlinkedDirectory)));

        let opts = ListOptions {
            skip_virtualenvs: true,
            deref_symlinks: true,
            ..Default::default()
        };
        let list = list_files_with(r, CopyMode::All, &IgnoreSet::none(), &opts).unwrap();
        assert_eq!(rels(&list), ["a.py", "link.py"]);
        assert!(list
            .skipped
            .iter()
            .any(|s| s.reason == SkipReason::Virtualenv));
    }

    #[test]
    fn auto_and_none_modes() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "wf.py", "w");
        write(r, ".venv/lib/site-packages/dep.py", "d");
        write(r, "ignored.pyc", "c");
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "other.py", "o");
        let opts = ListOptions {
            loaded_modules: vec![
                r.join("wf.py"),
                r.join("./wf.py"),
                r.join("ignored.pyc"),
                r.join(".venv/lib/site-packages/dep.py"),
                outside.path().join("other.py"),
            ],
            installed_prefixes: vec![r.join(".venv")],
            ..Default::default()
        };
        let list = list_files_with(r, CopyMode::Auto, &IgnoreSet::fast_register(), &opts).unwrap();
        // No ignore rules in auto mode (flytekit parity): the .pyc stays.
        assert_eq!(rels(&list), ["ignored.pyc", "wf.py"]);
        let list = list_files_with(r, CopyMode::None, &IgnoreSet::fast_register(), &opts).unwrap();
        assert!(list.files.is_empty());
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = list_files(&missing, CopyMode::All, &IgnoreSet::none()).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        let err = ls_digest(dir.path(), std::slice::from_ref(&missing)).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        assert!("bogus".parse::<CopyMode>().is_err());
    }
}
