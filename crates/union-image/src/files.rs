//! The file digests an ImageSpec tag needs: flytekit's `ls_files` digest for `source_root` and
//! `compute_digest` for `copy`, with flytekit's exact (and sometimes quirky) semantics.
//!
//! Why this is not the shared listing in `crate::package::files`: that one deliberately differs
//! from flytekit (it applies `.gitignore` rules without running git, also outside a git work
//! tree, and always makes the root absolute, whereas flytekit matches ignore rules against
//! `os.path.join(<relative source_root>, ...)`), and a tag must be byte-identical to pyflyte's.
//! Sharing it would need a "flytekit-exact" switch there.
//!
//! Directory order: `compute_digest` hashes directories in `os.walk` order, which is
//! `os.scandir` (readdir) order, i.e. filesystem order. We use `std::fs::read_dir`, which is the
//! same readdir stream, so on the same filesystem the order (and the digest) is the same.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use md5::{Digest, Md5};
use regex::Regex;

use super::{ImageSpecError, Result};

/// Resolve a path string the way Python's `open()` does from a process whose CWD is `base`.
pub(super) fn resolve(base: &Path, p: &str) -> PathBuf {
    if p.starts_with('/') {
        PathBuf::from(p)
    } else {
        // String concatenation keeps trailing slashes, as Python's open()/stat() see them.
        let mut s = base.as_os_str().to_os_string();
        if !base.as_os_str().is_empty() && !s.to_string_lossy().ends_with('/') {
            s.push("/");
        }
        s.push(p);
        PathBuf::from(s)
    }
}

/// `os.path.join(a, b)` for a relative `b` on POSIX.
fn py_join(a: &str, b: &str) -> String {
    if a.is_empty() || a.ends_with('/') {
        format!("{a}{b}")
    } else {
        format!("{a}/{b}")
    }
}

/// One directory visited by `os.walk(top, followlinks=False)`: its path relative to `top` (as
/// components), and its non-directory entries in readdir order.
struct WalkDir {
    rel: Vec<String>,
    files: Vec<(String, PathBuf)>,
}

/// `os.walk(top, topdown=True, followlinks=False)`; `prune` drops subdirectories by name (as
/// `dirnames[:] = ...`). Unreadable directories are skipped silently, like `os.walk`'s default.
fn os_walk(
    top: &Path,
    prune: &dyn Fn(&str) -> bool,
    image: &str,
    visit: &mut dyn FnMut(WalkDir) -> Result<()>,
) -> Result<()> {
    fn rec(
        dir: &Path,
        rel: Vec<String>,
        prune: &dyn Fn(&str) -> bool,
        image: &str,
        visit: &mut dyn FnMut(WalkDir) -> Result<()>,
    ) -> Result<()> {
        let Ok(entries) = fs::read_dir(dir) else {
            return Ok(());
        };
        let mut dirs: Vec<(String, PathBuf, bool)> = Vec::new();
        let mut files = Vec::new();
        for entry in entries {
            let Ok(entry) = entry else { return Ok(()) };
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                return Err(ImageSpecError::NonUtf8Path {
                    image: image.to_string(),
                    path,
                });
            };
            let is_symlink = entry.file_type().map(|t| t.is_symlink()).unwrap_or(false);
            // DirEntry.is_dir() follows symlinks.
            let is_dir = fs::metadata(&path).map(|m| m.is_dir()).unwrap_or(false);
            if is_dir {
                dirs.push((name, path, is_symlink));
            } else {
                files.push((name, path));
            }
        }
        visit(WalkDir {
            rel: rel.clone(),
            files,
        })?;
        for (name, path, is_symlink) in dirs {
            if prune(&name) || is_symlink {
                continue;
            }
            let mut sub = rel.clone();
            sub.push(name);
            rec(&path, sub, prune, image, visit)?;
        }
        Ok(())
    }
    rec(top, Vec::new(), prune, image, visit)
}

/// Feed a file's bytes to the hasher (flytekit's `_filehash_update`).
fn hash_file(hasher: &mut Md5, path: &Path, image: &str) -> Result<()> {
    let io = |source| ImageSpecError::Io {
        image: image.to_string(),
        path: path.to_path_buf(),
        source,
    };
    let mut f = fs::File::open(path).map_err(io)?;
    let mut buf = vec![0u8; 65536];
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
    }
}

/// flytekit skips files that don't exist through their links, and sockets.
fn hashable(path: &Path) -> bool {
    match fs::metadata(path) {
        Ok(m) => !m.file_type().is_socket(),
        Err(_) => false,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// flytekit's `compute_digest(copy_list)`: for a file, its bytes then its basename; for a
/// directory, per `os.walk` directory its files sorted by name, each bytes then the path
/// relative to the entry with `/` removed. Missing entries are skipped (as flytekit does).
pub(super) fn copy_digest(base: &Path, entries: &[String], image: &str) -> Result<String> {
    let mut hasher = Md5::new();
    for entry in entries {
        let path = resolve(base, entry);
        if fs::metadata(&path).map(|m| m.is_dir()).unwrap_or(false) {
            os_walk(&path, &|_| false, image, &mut |dir| {
                let mut files = dir.files;
                files.sort_by(|a, b| a.0.cmp(&b.0));
                for (name, file) in files {
                    if !hashable(&file) {
                        continue;
                    }
                    hash_file(&mut hasher, &file, image)?;
                    let rel: String = dir.rel.concat() + &name;
                    hasher.update(rel.as_bytes());
                }
                Ok(())
            })?;
        } else if hashable(&path) {
            hash_file(&mut hasher, &path, image)?;
            // os.path.basename
            let base_name = entry.rsplit('/').next().unwrap_or(entry);
            hasher.update(base_name.as_bytes());
        }
    }
    Ok(hex(&hasher.finalize()))
}

/// `ls_files(source_root, ALL, ignore_group=IgnoreGroup(root, [GitIgnore, DockerIgnore,
/// StandardIgnore]))`'s digest. `root_str` is `source_root` exactly as written (flytekit matches
/// ignore rules against `os.path.join(root_str, ...)` when it is relative).
pub(super) fn ls_digest_all(base: &Path, root_str: &str, image: &str) -> Result<String> {
    digest_listed(&list_all(base, root_str, image)?, image)
}

/// The files `ls_files(source_root, ALL, ...)` selects, as (path relative to the root, full path),
/// sorted; what the image builder copies into `/root` and what [`ls_digest_all`] hashes.
pub(crate) fn list_all(base: &Path, root_str: &str, image: &str) -> Result<Vec<(String, PathBuf)>> {
    let root = resolve(base, root_str);
    let ignores = IgnoreGroup::new(&root);
    let absolute = root_str.starts_with('/');
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    os_walk(&root, &|d| d == ".git", image, &mut |dir| {
        let mut files = dir.files;
        files.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, file) in files {
            if !hashable(&file) {
                continue;
            }
            let mut rel_parts = dir.rel.clone();
            rel_parts.push(name);
            let rel = rel_parts.join("/");
            // What flytekit's Ignore.is_ignored sees: relpath(path, root) for an absolute root,
            // else the joined relative path as is.
            let shown = if absolute {
                rel.clone()
            } else {
                rel_parts
                    .iter()
                    .fold(root_str.to_string(), |acc, part| py_join(&acc, part))
            };
            if ignores.is_ignored(&shown) {
                continue;
            }
            found.push((rel, file));
        }
        Ok(())
    })?;
    // all_files.sort(): every path shares the `root_str` prefix, so this is the order of `rel`.
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// MD5 over each listed file's bytes then its relative path without separators.
fn digest_listed(found: &[(String, PathBuf)], image: &str) -> Result<String> {
    let mut hasher = Md5::new();
    for (rel, file) in found {
        hash_file(&mut hasher, file, image)?;
        hasher.update(rel.replace('/', "").as_bytes());
    }
    Ok(hex(&hasher.finalize()))
}

/// `ls_files(source_root, LOADED_MODULES)`'s digest over the given module files (the `__file__`
/// of loaded modules outside flytekit, `sys.prefix` and site-packages). Only those under
/// `root_str` count, by `os.path.commonpath` as flytekit checks (so a relative `root_str` never
/// contains the absolute module paths, and the digest is that of no files).
pub(super) fn ls_digest_loaded(
    base: &Path,
    root_str: &str,
    modules: &[PathBuf],
    image: &str,
) -> Result<String> {
    digest_listed(&list_loaded(base, root_str, modules, image)?, image)
}

/// The module files `ls_files(source_root, LOADED_MODULES)` selects, as (path relative to the
/// root, full path), sorted; see [`ls_digest_loaded`].
pub(crate) fn list_loaded(
    base: &Path,
    root_str: &str,
    modules: &[PathBuf],
    image: &str,
) -> Result<Vec<(String, PathBuf)>> {
    let mut files: Vec<String> = Vec::new();
    for m in modules {
        let Some(s) = m.to_str() else {
            return Err(ImageSpecError::NonUtf8Path {
                image: image.to_string(),
                path: m.clone(),
            });
        };
        if file_is_in_directory(s, root_str) {
            files.push(s.to_string());
        }
    }
    files.sort();
    Ok(files
        .iter()
        .map(|f| (relpath(f, root_str), resolve(base, f)))
        .collect())
}

fn components(p: &str) -> Vec<&str> {
    p.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

/// `os.path.commonpath([file, directory]) == directory` (False when one is relative and the
/// other absolute, as the ValueError is caught).
fn file_is_in_directory(file: &str, directory: &str) -> bool {
    let abs = file.starts_with('/');
    if abs != directory.starts_with('/') {
        return false;
    }
    let (a, b) = (components(file), components(directory));
    let common: Vec<&str> = a
        .iter()
        .zip(b.iter())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| *x)
        .collect();
    let joined = common.join("/");
    let prefix = if abs { format!("/{joined}") } else { joined };
    prefix == directory
}

/// `os.path.normpath` on POSIX.
fn normpath(p: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let abs = p.starts_with('/');
    for c in components(p) {
        if c == ".." {
            if out.last().is_some_and(|l| l != "..") {
                out.pop();
            } else if !abs {
                out.push("..".into());
            }
        } else {
            out.push(c.to_string());
        }
    }
    out
}

/// `os.path.relpath(path, start)` for two absolute paths (or two relative ones).
fn relpath(path: &str, start: &str) -> String {
    let (p, s) = (normpath(path), normpath(start));
    let i = p.iter().zip(s.iter()).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_string(); s.len() - i];
    parts.extend(p[i..].iter().cloned());
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// `IgnoreGroup(root, [GitIgnore, DockerIgnore, StandardIgnore])`.
struct IgnoreGroup {
    git_ignored: HashSet<String>,
    docker: PatternMatcher,
}

impl IgnoreGroup {
    fn new(root: &Path) -> Self {
        IgnoreGroup {
            git_ignored: git_ignored_files(root),
            docker: PatternMatcher::from_dockerignore(root),
        }
    }

    fn is_ignored(&self, path: &str) -> bool {
        // GitIgnore compares pathlib's as_posix() of the path with git's output.
        (!self.git_ignored.is_empty() && self.git_ignored.contains(&pathlib_posix(path)))
            || self.docker.matches(path)
            || standard_ignored(path)
    }
}

/// `git ls-files -io --exclude-standard` in `root`, as flytekit's GitIgnore reads it (no git, or
/// not a repository: nothing is ignored).
fn git_ignored_files(root: &Path) -> HashSet<String> {
    let Ok(out) = Command::new("git")
        .args(["ls-files", "-io", "--exclude-standard"])
        .current_dir(root)
        .output()
    else {
        return HashSet::new();
    };
    if !out.status.success() {
        return HashSet::new();
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines: Vec<&str> = text.split('\n').collect();
    lines.pop();
    lines.into_iter().map(str::to_string).collect()
}

/// `pathlib.PurePosixPath(p).as_posix()`.
fn pathlib_posix(p: &str) -> String {
    let parts = components(p);
    let lead = if p.starts_with("//") && !p.starts_with("///") {
        "//"
    } else if p.starts_with('/') {
        "/"
    } else {
        ""
    };
    if parts.is_empty() && lead.is_empty() {
        return ".".into();
    }
    format!("{lead}{}", parts.join("/"))
}

/// flytekit's StandardIgnore: `fnmatch` with `*.pyc`, `.cache`, `.cache/*`, `__pycache__/*`,
/// `**/__pycache__/*` (stdlib fnmatch: `*` also matches `/`).
fn standard_ignored(p: &str) -> bool {
    p.ends_with(".pyc")
        || p == ".cache"
        || p.starts_with(".cache/")
        || p.starts_with("__pycache__/")
        || p.contains("/__pycache__/")
}

/// docker-py's `PatternMatcher` (`docker/utils/build.py`) for `.dockerignore`.
struct PatternMatcher {
    patterns: Vec<DockerPattern>,
}

struct DockerPattern {
    exclusion: bool,
    dirs: Vec<String>,
    regex: Option<Regex>,
}

impl DockerPattern {
    fn new(p: &str) -> Self {
        let (exclusion, p) = match p.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, p),
        };
        let mut dirs: Vec<String> = p
            .trim()
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(String::from)
            .collect();
        let mut i = 0;
        while i < dirs.len() {
            if dirs[i] == ".." {
                dirs.remove(i);
                if i > 0 {
                    dirs.remove(i - 1);
                    i -= 1;
                }
            } else {
                i += 1;
            }
        }
        let cleaned = dirs.join("/").to_lowercase();
        let regex = Regex::new(&docker_translate(&cleaned)).ok();
        DockerPattern {
            exclusion,
            dirs,
            regex,
        }
    }

    fn matches(&self, path: &str) -> bool {
        self.regex
            .as_ref()
            .is_some_and(|r| r.is_match(&path.to_lowercase()))
    }
}

impl PatternMatcher {
    fn from_dockerignore(root: &Path) -> Self {
        let mut lines = Vec::new();
        if let Ok(bytes) = fs::read(root.join(".dockerignore")) {
            // Text mode: universal newlines, then `[l.strip() for l in readlines() if l and not
            // l.startswith("#")]`.
            let text = String::from_utf8_lossy(&bytes)
                .replace("\r\n", "\n")
                .replace('\r', "\n");
            for line in text.split_inclusive('\n') {
                if !line.starts_with('#') {
                    lines.push(line.trim().to_string());
                }
            }
        }
        let mut patterns: Vec<DockerPattern> = lines
            .iter()
            .map(|l| DockerPattern::new(l))
            .filter(|p| !p.dirs.is_empty())
            .collect();
        patterns.push(DockerPattern::new("!.dockerignore"));
        PatternMatcher { patterns }
    }

    fn matches(&self, filepath: &str) -> bool {
        // os.path.dirname
        let head = match filepath.rfind('/') {
            Some(i) => &filepath[..=i],
            None => "",
        };
        let parent = if !head.is_empty() && head.chars().any(|c| c != '/') {
            head.trim_end_matches('/')
        } else {
            head
        };
        let parent_dirs = components(parent);
        let mut matched = false;
        for pattern in &self.patterns {
            let mut m = pattern.matches(filepath);
            if !m && !parent.is_empty() && pattern.dirs.len() <= parent_dirs.len() {
                m = pattern.matches(&parent_dirs[..pattern.dirs.len()].join("/"));
            }
            if m {
                matched = !pattern.exclusion;
            }
        }
        matched
    }
}

/// docker-py's `fnmatch.translate` into a Rust regex.
fn docker_translate(pat: &str) -> String {
    let chars: Vec<char> = pat.chars().collect();
    let n = chars.len();
    let mut i = 0;
    let mut res = String::from("^");
    while i < n {
        let c = chars[i];
        i += 1;
        if c == '*' {
            if i < n && chars[i] == '*' {
                i += 1;
                if i < n && chars[i] == '/' {
                    i += 1;
                }
                if i >= n {
                    res.push_str(".*");
                } else {
                    res.push_str("(.*/)?");
                }
            } else {
                res.push_str("[^/]*");
            }
        } else if c == '?' {
            res.push_str("[^/]");
        } else if c == '[' {
            let mut j = i;
            if j < n && chars[j] == '!' {
                j += 1;
            }
            if j < n && chars[j] == ']' {
                j += 1;
            }
            while j < n && chars[j] != ']' {
                j += 1;
            }
            if j >= n {
                res.push_str("\\[");
            } else {
                let stuff: Vec<char> = chars[i..j].to_vec();
                i = j + 1;
                res.push('[');
                let mut k = 0;
                if stuff[0] == '!' {
                    res.push('^');
                    k = 1;
                } else if stuff[0] == '^' {
                    res.push_str("\\^");
                    k = 1;
                }
                for &s in &stuff[k..] {
                    match s {
                        '\\' | '[' | ']' | '&' | '~' | '^' => {
                            res.push('\\');
                            res.push(s);
                        }
                        _ => res.push(s),
                    }
                }
                res.push(']');
            }
        } else {
            res.push_str(&regex::escape(&c.to_string()));
        }
    }
    // Python's `$` also matches before a final newline.
    res.push_str("\n?\\z");
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_path_helpers() {
        assert!(file_is_in_directory("/a/b/c.py", "/a/b"));
        assert!(!file_is_in_directory("/a/b/c.py", "/a/b/"));
        assert!(!file_is_in_directory("/a/bc.py", "/a/b"));
        assert!(!file_is_in_directory("/a/b/c.py", "a/b"));
        assert_eq!(relpath("/a/b/c/d.py", "/a/b"), "c/d.py");
        assert_eq!(relpath("/a/x/../b/c.py", "/a/b/"), "c.py");
        assert_eq!(pathlib_posix("./src//a/./b.py"), "src/a/b.py");
        assert_eq!(py_join("src/", "a"), "src/a");
        assert_eq!(py_join("src", "a"), "src/a");
    }

    #[test]
    fn docker_patterns() {
        let pm = PatternMatcher {
            patterns: ["*.txt", "build", "docs/**/*.md", "!docs/keep.md", "a[!b]c"]
                .iter()
                .map(|p| DockerPattern::new(p))
                .collect(),
        };
        assert!(pm.matches("x.TXT"));
        assert!(!pm.matches("sub/x.txt"));
        assert!(pm.matches("build/out/x.py"));
        assert!(pm.matches("docs/a/b/c.md"));
        assert!(pm.matches("docs/c.md"));
        assert!(!pm.matches("docs/keep.md"));
        assert!(pm.matches("axc") && !pm.matches("abc"));
    }

    #[test]
    fn standard_patterns() {
        assert!(standard_ignored("a/b.pyc"));
        assert!(standard_ignored(".cache"));
        assert!(standard_ignored("src/__pycache__/x.py"));
        assert!(!standard_ignored("src/.cache"));
        assert!(!standard_ignored("main.py"));
    }
}
