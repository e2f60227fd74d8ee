//! Ignore rules with flytekit's semantics (`flytekit/tools/ignore.py`).
//!
//! flytekit builds an `IgnoreGroup` of `Ignore` classes and drops a file as soon as one of them
//! says "ignored". We reproduce each class natively:
//!
//! - [`IgnoreKind::Git`]: flytekit runs `git ls-files -io --exclude-standard` in the root. We apply
//!   the same rules without running git: every `.gitignore` from the work-tree top down to the
//!   file's directory (deeper files win, last matching line wins), then `$GIT_DIR/info/exclude`,
//!   then the global `core.excludesFile` (all three are part of `--exclude-standard`). As in git,
//!   files tracked in the index are never ignored, a directory that is ignored hides everything
//!   below it, and nested repositories are not looked into (their files are never git-ignored).
//!   **Difference:** flytekit applies no git rules at all when the root is not inside a git work
//!   tree (or git isn't installed); we still apply the `.gitignore` files under the root then
//!   (but not the global excludes), since that is what users expect the file to mean.
//! - [`IgnoreKind::Docker`] / [`IgnoreKind::Flyte`]: `.dockerignore` / `.flyteignore` at the root,
//!   matched with docker-py's `PatternMatcher` (patterns relative to the root, `**`, `!` exceptions,
//!   last match wins, a pattern matching a leading directory ignores what is inside it).
//! - [`IgnoreKind::Standard`]: Python `fnmatch` of the relative path against
//!   [`STANDARD_IGNORE_PATTERNS`] (`*` crosses `/` there).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use ignore::gitignore::{gitconfig_excludes_path, Gitignore, GitignoreBuilder};
use ignore::Match;

use super::git::{self, Repo};

/// flytekit's `STANDARD_IGNORE_PATTERNS`, matched with Python's `fnmatch` against the relative path.
pub const STANDARD_IGNORE_PATTERNS: [&str; 5] = [
    "*.pyc",
    ".cache",
    ".cache/*",
    "__pycache__/*",
    "**/__pycache__/*",
];

/// One of flytekit's `Ignore` classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IgnoreKind {
    /// `GitIgnore`: `.gitignore` files, `.git/info/exclude`, global excludes.
    Git,
    /// `DockerIgnore`: `<root>/.dockerignore`.
    Docker,
    /// `StandardIgnore`: [`STANDARD_IGNORE_PATTERNS`].
    Standard,
    /// `FlyteIgnore`: `<root>/.flyteignore`.
    Flyte,
}

/// An ordered set of ignore rules, like flytekit's `IgnoreGroup` (the first kind that matches is
/// the one reported).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreSet {
    /// The kinds, in the order they are consulted.
    pub kinds: Vec<IgnoreKind>,
}

impl IgnoreSet {
    /// `fast_package`'s default ignores: `[GitIgnore, DockerIgnore, StandardIgnore, FlyteIgnore]`.
    pub fn fast_register() -> Self {
        Self {
            kinds: vec![
                IgnoreKind::Git,
                IgnoreKind::Docker,
                IgnoreKind::Standard,
                IgnoreKind::Flyte,
            ],
        }
    }

    /// `ImageSpec.source_root`'s ignores: `[GitIgnore, DockerIgnore, StandardIgnore]` (no `.flyteignore`).
    pub fn image_spec() -> Self {
        Self {
            kinds: vec![IgnoreKind::Git, IgnoreKind::Docker, IgnoreKind::Standard],
        }
    }

    /// No ignore rules at all.
    pub fn none() -> Self {
        Self { kinds: Vec::new() }
    }
}

/// Where the rule that ignored a file comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IgnoreSource {
    /// A `.gitignore` file (its path).
    GitIgnoreFile(PathBuf),
    /// `$GIT_DIR/info/exclude` (its path).
    GitInfoExclude(PathBuf),
    /// The global `core.excludesFile` (its path).
    GitGlobalExcludes(PathBuf),
    /// `<root>/.dockerignore`.
    DockerIgnore,
    /// `<root>/.flyteignore`.
    FlyteIgnore,
    /// flytekit's built-in [`STANDARD_IGNORE_PATTERNS`].
    Standard,
}

impl IgnoreSource {
    /// The kind of ignore this source belongs to.
    pub fn kind(&self) -> IgnoreKind {
        match self {
            Self::GitIgnoreFile(_) | Self::GitInfoExclude(_) | Self::GitGlobalExcludes(_) => {
                IgnoreKind::Git
            }
            Self::DockerIgnore => IgnoreKind::Docker,
            Self::FlyteIgnore => IgnoreKind::Flyte,
            Self::Standard => IgnoreKind::Standard,
        }
    }
}

impl fmt::Display for IgnoreSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::GitIgnoreFile(p) | Self::GitInfoExclude(p) | Self::GitGlobalExcludes(p) => {
                write!(f, "{}", p.display())
            }
            Self::DockerIgnore => f.write_str(".dockerignore"),
            Self::FlyteIgnore => f.write_str(".flyteignore"),
            Self::Standard => f.write_str("built-in ignore patterns"),
        }
    }
}

/// The rule that ignored a file: where it is written and the pattern as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IgnoreRule {
    /// The file (or built-in list) holding the pattern.
    pub source: IgnoreSource,
    /// The pattern, as written (for a file inside an ignored directory: the directory's pattern).
    pub pattern: String,
}

// ---------------------------------------------------------------------------------------------
// Glob matching shared by docker-py's fnmatch and Python's fnmatch.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// docker `*`: `[^/]*`
    StarNoSlash,
    /// Python fnmatch `*` and docker trailing `**`: `.*`
    StarAny,
    /// docker `**` not at the end: `(.*/)?`
    DirStar,
    /// docker `?`: `[^/]`
    QNoSlash,
    /// Python fnmatch `?`: `.`
    QAny,
    /// `[...]`: ranges, negated or not.
    Class(bool, Vec<(char, char)>),
}

/// A compiled shell pattern, either with docker-py's or Python's `fnmatch` semantics.
#[derive(Debug, Clone)]
struct Glob {
    toks: Vec<Tok>,
    /// Python regexes compiled without DOTALL: `.` does not match a newline (docker-py only).
    dot_excludes_newline: bool,
}

/// Parses the inside of a `[...]` class the way Python's `re` reads it (after the translators have
/// copied it verbatim): ranges `a-z`, a `-` at either end is literal.
fn parse_class(stuff: &[char]) -> Vec<(char, char)> {
    let mut items = Vec::new();
    let mut i = 0;
    while i < stuff.len() {
        let c = stuff[i];
        if i + 2 < stuff.len() && stuff[i + 1] == '-' {
            let hi = stuff[i + 2];
            if c <= hi {
                items.push((c, hi));
            }
            i += 3;
        } else {
            items.push((c, c));
            i += 1;
        }
    }
    items
}

/// Finds a class starting after `[` at `i` like both translators do: `!` negates, a `]` right
/// after the opener is literal. Returns (negated, contents, index after `]`).
fn scan_class(p: &[char], i: usize) -> Option<(bool, Vec<char>, usize)> {
    let n = p.len();
    let mut j = i;
    if j < n && p[j] == '!' {
        j += 1;
    }
    if j < n && p[j] == ']' {
        j += 1;
    }
    while j < n && p[j] != ']' {
        j += 1;
    }
    if j >= n {
        return None;
    }
    let stuff = &p[i..j];
    let (neg, body) = match stuff.first() {
        Some('!') => (true, stuff[1..].to_vec()),
        _ => (false, stuff.to_vec()),
    };
    Some((neg, body, j + 1))
}

impl Glob {
    /// docker-py `utils/fnmatch.translate`.
    fn docker(pat: &str) -> Self {
        let p: Vec<char> = pat.chars().collect();
        let (n, mut i) = (p.len(), 0);
        let mut toks = Vec::new();
        while i < n {
            let c = p[i];
            i += 1;
            match c {
                '*' => {
                    if i < n && p[i] == '*' {
                        i += 1;
                        if i < n && p[i] == '/' {
                            i += 1;
                        }
                        toks.push(if i >= n { Tok::StarAny } else { Tok::DirStar });
                    } else {
                        toks.push(Tok::StarNoSlash);
                    }
                }
                '?' => toks.push(Tok::QNoSlash),
                '[' => match scan_class(&p, i) {
                    Some((neg, body, next)) => {
                        toks.push(Tok::Class(neg, parse_class(&body)));
                        i = next;
                    }
                    None => toks.push(Tok::Lit('[')),
                },
                c => toks.push(Tok::Lit(c)),
            }
        }
        Self {
            toks,
            dot_excludes_newline: true,
        }
    }

    /// Python `fnmatch.fnmatch` on POSIX (case-sensitive; `*` and `?` match `/`).
    fn python(pat: &str) -> Self {
        let p: Vec<char> = pat.chars().collect();
        let (n, mut i) = (p.len(), 0);
        let mut toks = Vec::new();
        while i < n {
            let c = p[i];
            i += 1;
            match c {
                '*' => {
                    if toks.last() != Some(&Tok::StarAny) {
                        toks.push(Tok::StarAny);
                    }
                }
                '?' => toks.push(Tok::QAny),
                '[' => match scan_class(&p, i) {
                    Some((neg, body, next)) => {
                        toks.push(Tok::Class(neg, parse_class(&body)));
                        i = next;
                    }
                    None => toks.push(Tok::Lit('[')),
                },
                c => toks.push(Tok::Lit(c)),
            }
        }
        Self {
            toks,
            dot_excludes_newline: false,
        }
    }

    fn is_match(&self, s: &str) -> bool {
        let s: Vec<char> = s.chars().collect();
        let (nt, ns) = (self.toks.len(), s.len());
        let dot_ok = |c: char| !(self.dot_excludes_newline && c == '\n');
        // dp[j] for token i+1 (next) and cur for token i; dp over the string suffix s[j..].
        let mut next = vec![false; ns + 1];
        next[ns] = true;
        for i in (0..nt).rev() {
            let mut cur = vec![false; ns + 1];
            match &self.toks[i] {
                Tok::StarNoSlash | Tok::StarAny => {
                    let any = matches!(self.toks[i], Tok::StarAny);
                    cur[ns] = next[ns];
                    for j in (0..ns).rev() {
                        let step = if any { dot_ok(s[j]) } else { s[j] != '/' };
                        cur[j] = next[j] || (step && cur[j + 1]);
                    }
                }
                Tok::DirStar => {
                    // (.*/)? : either empty, or any run ending with '/'.
                    let mut x = vec![false; ns + 1];
                    for j in (0..ns).rev() {
                        x[j] = (s[j] == '/' && next[j + 1]) || (dot_ok(s[j]) && x[j + 1]);
                    }
                    for j in 0..=ns {
                        cur[j] = next[j] || x[j];
                    }
                }
                tok => {
                    for j in 0..ns {
                        let c = s[j];
                        let ok = match tok {
                            Tok::Lit(l) => c == *l,
                            Tok::QNoSlash => c != '/',
                            Tok::QAny => dot_ok(c),
                            Tok::Class(neg, items) => {
                                items.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *neg
                            }
                            _ => unreachable!("handled above"),
                        };
                        cur[j] = ok && next[j + 1];
                    }
                }
            }
            next = cur;
        }
        next[0]
    }
}

// ---------------------------------------------------------------------------------------------
// docker-py PatternMatcher.

#[derive(Debug, Clone)]
struct DockerPattern {
    original: String,
    exclusion: bool,
    dirs: Vec<String>,
    glob: Glob,
}

/// `.dockerignore` / `.flyteignore` rules with docker-py's `PatternMatcher` semantics.
#[derive(Debug, Clone)]
pub(crate) struct DockerMatcher {
    patterns: Vec<DockerPattern>,
}

fn split_path(p: &str) -> Vec<String> {
    p.split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .map(str::to_string)
        .collect()
}

impl DockerMatcher {
    /// Reads `file` like flytekit does (`[l.strip() for l in lines if l and not l.startswith("#")]`);
    /// a missing file gives no patterns.
    pub fn from_file(file: &Path) -> Result<Self, std::io::Error> {
        let lines: Vec<String> = match fs::read(file) {
            Ok(bytes) => String::from_utf8_lossy(&bytes)
                .split_inclusive('\n')
                // The comment test happens before stripping, so "  # x" is a pattern (flytekit).
                .filter(|l| !l.starts_with('#'))
                .map(|l| l.trim().to_string())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok(Self::new(&lines))
    }

    /// `PatternMatcher(patterns)`: empty patterns dropped, `!.dockerignore` appended.
    pub fn new<S: AsRef<str>>(lines: &[S]) -> Self {
        let mut patterns: Vec<DockerPattern> = lines
            .iter()
            .map(|l| Self::pattern(l.as_ref()))
            .filter(|p| !p.dirs.is_empty())
            .collect();
        patterns.push(Self::pattern("!.dockerignore"));
        Self { patterns }
    }

    fn pattern(raw: &str) -> DockerPattern {
        let (exclusion, rest) = match raw.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, raw),
        };
        let split = split_path(rest.trim());
        // ".." removes itself and the previous component (docker-py `Pattern.normalize`).
        let mut dirs: Vec<String> = Vec::new();
        for part in split {
            if part == ".." {
                dirs.pop();
            } else {
                dirs.push(part);
            }
        }
        let glob = Glob::docker(&dirs.join("/"));
        DockerPattern {
            original: raw.to_string(),
            exclusion,
            dirs,
            glob,
        }
    }

    /// `PatternMatcher.matches(relpath)`; returns the deciding (last matching) pattern if ignored.
    pub fn matched(&self, rel: &str) -> Option<&str> {
        let parent = rel.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
        let parent_dirs = split_path(parent);
        let mut decision: Option<&DockerPattern> = None;
        for pat in &self.patterns {
            let mut m = pat.glob.is_match(rel);
            if !m && !parent.is_empty() && pat.dirs.len() <= parent_dirs.len() {
                m = pat.glob.is_match(&parent_dirs[..pat.dirs.len()].join("/"));
            }
            if m {
                decision = Some(pat);
            }
        }
        decision
            .filter(|p| !p.exclusion)
            .map(|p| p.original.as_str())
    }
}

/// flytekit's `StandardIgnore` with its default patterns.
fn standard_match(rel: &str) -> Option<&'static str> {
    STANDARD_IGNORE_PATTERNS
        .into_iter()
        .find(|p| Glob::python(p).is_match(rel))
}

// ---------------------------------------------------------------------------------------------
// Git.

/// A whole-repository exclude file (info/exclude or global) and how to name it in reports.
type Fallback = (Gitignore, fn(PathBuf) -> IgnoreSource);

/// The git side of the matcher: repository facts fixed for one listing.
#[derive(Debug)]
pub(crate) struct GitRules {
    repo: Option<Repo>,
    tracked: Option<std::collections::HashSet<Vec<u8>>>,
    /// info/exclude then global excludes: consulted after every `.gitignore`.
    fallbacks: Vec<Fallback>,
    /// `.gitignore` matchers from the work-tree top down to (excluding) the root.
    above_root: Vec<Gitignore>,
    /// Set when the root itself lies in an ignored directory.
    root_ignored: Option<IgnoreRule>,
    /// Relative path of the root from the work-tree top ("" when they are the same).
    root_prefix: String,
    pub warnings: Vec<String>,
}

/// Per-directory git state carried down the walk.
#[derive(Debug, Clone, Default)]
pub(crate) struct GitDirState {
    /// `.gitignore` matchers between the root and this directory (outermost first).
    pub stack: Vec<std::sync::Arc<Gitignore>>,
    /// The rule that ignored this directory or one of its parents.
    pub ignored_by: Option<IgnoreRule>,
    /// Inside a nested repository: git does not look in, so nothing is git-ignored.
    pub in_nested_repo: bool,
}

fn rule_from(
    m: Match<&ignore::gitignore::Glob>,
    source: impl Fn(PathBuf) -> IgnoreSource,
    fallback: &Path,
) -> Option<Result<IgnoreRule, ()>> {
    match m {
        Match::None => None,
        Match::Whitelist(_) => Some(Err(())),
        Match::Ignore(g) => Some(Ok(IgnoreRule {
            source: source(
                g.from()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| fallback.to_path_buf()),
            ),
            pattern: g.original().to_string(),
        })),
    }
}

fn load_gitignore(dir: &Path, warnings: &mut Vec<String>) -> Option<Gitignore> {
    let file = dir.join(".gitignore");
    if !file.is_file() {
        return None;
    }
    let mut b = GitignoreBuilder::new(dir);
    if let Some(err) = b.add(&file) {
        // git skips lines it can't parse; so do we, but tell the caller.
        warnings.push(format!("{}: {err}", file.display()));
    }
    b.build().ok().filter(|g| !g.is_empty())
}

impl GitRules {
    /// Gathers the repository facts for a listing rooted at `root` (absolute).
    pub fn new(root: &Path) -> Self {
        let mut warnings = Vec::new();
        let repo = git::discover(root);
        let mut fallbacks: Vec<Fallback> = Vec::new();
        let mut above_root = Vec::new();
        let mut root_prefix = String::new();
        let mut tracked = None;
        let mut root_ignored = None;
        if let Some(repo) = &repo {
            tracked = repo.tracked_paths();
            if tracked.is_none() && repo.git_dir.join("index").exists() {
                warnings.push(format!(
                    "could not read the git index {}; tracked files matching .gitignore are treated as ignored",
                    repo.git_dir.join("index").display()
                ));
            }
            let info = repo.info_exclude();
            if info.is_file() {
                let mut b = GitignoreBuilder::new(&repo.toplevel);
                if let Some(err) = b.add(&info) {
                    warnings.push(format!("{}: {err}", info.display()));
                }
                if let Ok(g) = b.build() {
                    fallbacks.push((g, IgnoreSource::GitInfoExclude));
                }
            }
            if let Some(global) = gitconfig_excludes_path().filter(|p| p.is_file()) {
                let mut b = GitignoreBuilder::new(&repo.toplevel);
                if let Some(err) = b.add(&global) {
                    warnings.push(format!("{}: {err}", global.display()));
                }
                if let Ok(g) = b.build() {
                    fallbacks.push((g, IgnoreSource::GitGlobalExcludes));
                }
            }
            if let Ok(rel) = root.strip_prefix(&repo.toplevel) {
                root_prefix = rel.to_string_lossy().replace('\\', "/");
                // Walk from the top down to the root like git does, so a root inside an ignored
                // directory is entirely ignored and parent .gitignore files apply.
                let mut dir = repo.toplevel.clone();
                for comp in rel.components() {
                    if let Some(g) = load_gitignore(&dir, &mut warnings) {
                        above_root.push(g);
                    }
                    dir = dir.join(comp);
                    if root_ignored.is_none() {
                        root_ignored = Self::decide(&above_root, &[], &fallbacks, &dir, true);
                    }
                }
            }
        }
        Self {
            repo,
            tracked,
            fallbacks,
            above_root,
            root_ignored,
            root_prefix,
            warnings,
        }
    }

    /// The top of the git work tree holding the root, if any.
    pub fn toplevel(&self) -> Option<&Path> {
        self.repo.as_ref().map(|r| r.toplevel.as_path())
    }

    /// The state for the root directory.
    pub fn root_state(&self, root: &Path) -> GitDirState {
        let mut st = GitDirState {
            ignored_by: self.root_ignored.clone(),
            ..Default::default()
        };
        if st.ignored_by.is_none() {
            if let Some(g) = load_gitignore(root, &mut Vec::new()) {
                st.stack.push(std::sync::Arc::new(g));
            }
        }
        st
    }

    /// The state for subdirectory `dir` (absolute) of a directory in state `parent`.
    pub fn child_state(
        &self,
        parent: &GitDirState,
        dir: &Path,
        warnings: &mut Vec<String>,
    ) -> GitDirState {
        let mut st = parent.clone();
        if st.in_nested_repo || st.ignored_by.is_some() {
            return st;
        }
        if git::is_repo_top(dir) {
            st.in_nested_repo = true;
            return st;
        }
        let stack: Vec<&Gitignore> = st.stack.iter().map(|a| a.as_ref()).collect();
        st.ignored_by = Self::decide(&self.above_root, &stack, &self.fallbacks, dir, true);
        if st.ignored_by.is_none() {
            if let Some(g) = load_gitignore(dir, warnings) {
                st.stack.push(std::sync::Arc::new(g));
            }
        }
        st
    }

    /// Whether the file `abs` (relative path `rel` from the root) is git-ignored.
    pub fn file_rule(&self, state: &GitDirState, abs: &Path, rel: &str) -> Option<IgnoreRule> {
        if state.in_nested_repo {
            return None;
        }
        if let Some(tracked) = &self.tracked {
            let key = if self.root_prefix.is_empty() {
                rel.to_string()
            } else {
                format!("{}/{}", self.root_prefix, rel)
            };
            if tracked.contains(key.as_bytes()) {
                return None;
            }
        }
        if let Some(rule) = &state.ignored_by {
            return Some(rule.clone());
        }
        let stack: Vec<&Gitignore> = state.stack.iter().map(|a| a.as_ref()).collect();
        Self::decide(&self.above_root, &stack, &self.fallbacks, abs, false)
    }

    /// git's precedence: the deepest `.gitignore` with a matching line decides, then info/exclude,
    /// then the global excludes file.
    fn decide(
        above_root: &[Gitignore],
        stack: &[&Gitignore],
        fallbacks: &[Fallback],
        abs: &Path,
        is_dir: bool,
    ) -> Option<IgnoreRule> {
        let dirs = stack.iter().rev().copied().chain(above_root.iter().rev());
        for g in dirs {
            if let Some(r) = rule_from(
                g.matched(abs, is_dir),
                IgnoreSource::GitIgnoreFile,
                g.path(),
            ) {
                return r.ok();
            }
        }
        for (g, src) in fallbacks {
            if let Some(r) = rule_from(g.matched(abs, is_dir), src, g.path()) {
                return r.ok();
            }
        }
        None
    }
}

/// All compiled ignore rules for one root.
#[derive(Debug)]
pub(crate) struct Matchers {
    pub kinds: Vec<IgnoreKind>,
    pub git: Option<GitRules>,
    docker: Option<DockerMatcher>,
    flyte: Option<DockerMatcher>,
}

impl Matchers {
    /// Compiles `set` for `root` (absolute).
    pub fn new(root: &Path, set: &IgnoreSet) -> Result<Self, super::PackageError> {
        let read = |name: &str| {
            let path = root.join(name);
            DockerMatcher::from_file(&path)
                .map_err(|source| super::PackageError::Io { path, source })
        };
        Ok(Self {
            kinds: set.kinds.clone(),
            git: set
                .kinds
                .contains(&IgnoreKind::Git)
                .then(|| GitRules::new(root)),
            docker: if set.kinds.contains(&IgnoreKind::Docker) {
                Some(read(".dockerignore")?)
            } else {
                None
            },
            flyte: if set.kinds.contains(&IgnoreKind::Flyte) {
                Some(read(".flyteignore")?)
            } else {
                None
            },
        })
    }

    /// The first rule (in the set's order) that ignores the file, like `IgnoreGroup.is_ignored`.
    pub fn file_rule(&self, git_state: &GitDirState, abs: &Path, rel: &str) -> Option<IgnoreRule> {
        for kind in &self.kinds {
            let rule = match kind {
                IgnoreKind::Git => self
                    .git
                    .as_ref()
                    .and_then(|g| g.file_rule(git_state, abs, rel)),
                IgnoreKind::Docker => {
                    self.docker
                        .as_ref()
                        .and_then(|m| m.matched(rel))
                        .map(|p| IgnoreRule {
                            source: IgnoreSource::DockerIgnore,
                            pattern: p.to_string(),
                        })
                }
                IgnoreKind::Flyte => {
                    self.flyte
                        .as_ref()
                        .and_then(|m| m.matched(rel))
                        .map(|p| IgnoreRule {
                            source: IgnoreSource::FlyteIgnore,
                            pattern: p.to_string(),
                        })
                }
                IgnoreKind::Standard => standard_match(rel).map(|p| IgnoreRule {
                    source: IgnoreSource::Standard,
                    pattern: p.to_string(),
                }),
            };
            if rule.is_some() {
                return rule;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dm(lines: &[&str]) -> DockerMatcher {
        DockerMatcher::new(lines)
    }

    #[test]
    fn docker_glob_translation() {
        assert!(Glob::docker("*.py").is_match("a.py"));
        assert!(!Glob::docker("*.py").is_match("d/a.py"));
        assert!(Glob::docker("**/*.py").is_match("a.py"));
        assert!(Glob::docker("**/*.py").is_match("d/e/a.py"));
        assert!(Glob::docker("d/**").is_match("d/e/a.py"));
        assert!(Glob::docker("a?c").is_match("abc"));
        assert!(!Glob::docker("a?c").is_match("a/c"));
        assert!(Glob::docker("[a-c]x").is_match("bx"));
        assert!(!Glob::docker("[!a-c]x").is_match("bx"));
        assert!(Glob::docker("[x").is_match("[x"));
    }

    #[test]
    fn python_fnmatch_crosses_slashes() {
        assert!(Glob::python("*.pyc").is_match("a/b/c.pyc"));
        assert!(Glob::python("**/__pycache__/*").is_match("a/__pycache__/x.py"));
        assert!(!Glob::python("**/__pycache__/*").is_match("__pycache__/x.py"));
        assert!(Glob::python("__pycache__/*").is_match("__pycache__/x.py"));
        assert!(Glob::python(".cache/*").is_match(".cache/a/b"));
        assert!(!Glob::python(".cache").is_match("a/.cache"));
        assert_eq!(standard_match("pkg/mod.pyc"), Some("*.pyc"));
        assert_eq!(standard_match("pkg/.cache/x"), None);
    }

    #[test]
    fn docker_pattern_matcher_semantics() {
        let m = dm(&[
            "data",
            "*.csv",
            "!keep.csv",
            "build/**/*.o",
            "/abs/x",
            "a/../b",
        ]);
        assert_eq!(m.matched("data/x/y.txt"), Some("data"));
        assert_eq!(m.matched("big.csv"), Some("*.csv"));
        assert_eq!(m.matched("keep.csv"), None);
        // "*.csv" is anchored at the root in docker semantics.
        assert_eq!(m.matched("sub/big.csv"), None);
        assert_eq!(m.matched("build/x/y/z.o"), Some("build/**/*.o"));
        assert_eq!(m.matched("abs/x"), Some("/abs/x"));
        assert_eq!(m.matched("b"), Some("a/../b"));
        // .dockerignore is always re-included.
        assert_eq!(dm(&["*"]).matched(".dockerignore"), None);
        assert_eq!(dm(&["*"]).matched(".flyteignore"), Some("*"));
        assert_eq!(dm(&["."]).matched("x"), None);
    }
}
