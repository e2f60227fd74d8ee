//! Which modules a path stands for, with pyflyte's semantics.
//!
//! - The project root of a path is the first ancestor directory (starting at the path's parent)
//!   that has no `__init__.py`; it goes on `sys.path`.
//! - A module's name is its path relative to the root, extension dropped, separators as dots.
//! - A directory stands for its package and every module below it, as `pkgutil.walk_packages`
//!   finds them: `.py` files, and subdirectories that have an `__init__.py` (others are skipped),
//!   in sorted order.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// Why a path does not stand for modules.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("file or directory `{}` does not exist", .0.display())]
    Missing(PathBuf),
    #[error("cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is a directory, not a Python file", .0.display())]
    Directory(PathBuf),
    #[error("`{}` is not a Python file (.py)", .0.display())]
    NotPython(PathBuf),
    #[error("`{}` is not inside the project root `{}`", path.display(), root.display())]
    OutsideRoot { path: PathBuf, root: PathBuf },
    #[error("`{}` is the project root itself, not a module", .0.display())]
    IsRoot(PathBuf),
    #[error("`{}` belongs to project root `{}`, but earlier paths to `{}`", path.display(), root.display(), earlier.display())]
    TwoRoots {
        path: PathBuf,
        root: PathBuf,
        earlier: PathBuf,
    },
    #[error("no paths given")]
    NoPaths,
}

impl union_diagnostics::Hint for DiscoveryError {
    fn hints(&self) -> Vec<String> {
        match self {
            DiscoveryError::Missing(_) => {
                vec!["check the path; it is relative to the current directory".into()]
            }
            DiscoveryError::Directory(_) => vec![
                "`union run` takes a .py file; `union register` takes directories".into(),
            ],
            DiscoveryError::TwoRoots { .. } => vec![
                "register one project at a time; all paths must share the first ancestor directory without __init__.py".into(),
            ],
            _ => Vec::new(),
        }
    }
    fn exit_code(&self) -> Option<u8> {
        matches!(self, DiscoveryError::NoPaths).then_some(union_diagnostics::EXIT_USAGE)
    }
}

/// A dotted module name. Built from file names, so it may hold bytes that are not UTF-8 (Python
/// imports such a file under its `os.fsdecode`d name, and so does union); shown lossily.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModuleName(OsString);

impl ModuleName {
    pub fn as_os_str(&self) -> &OsStr {
        &self.0
    }
}

impl std::fmt::Display for ModuleName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.to_string_lossy())
    }
}

impl From<&str> for ModuleName {
    fn from(s: &str) -> Self {
        ModuleName(OsString::from(s))
    }
}

impl PartialEq<&str> for ModuleName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == OsStr::new(other)
    }
}

impl serde::Serialize for ModuleName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string_lossy())
    }
}

/// A resolved path argument: the project root and the modules to import, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSet {
    pub root: PathBuf,
    pub modules: Vec<ModuleName>,
}

/// The project root for `path`: walk up from its parent while the directory has an `__init__.py`.
pub fn project_root(path: &Path) -> PathBuf {
    let mut dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    while dir.join("__init__.py").is_file() {
        match dir.parent() {
            Some(p) => dir = p.to_path_buf(),
            None => break,
        }
    }
    dir
}

/// The dotted module name of `path` (a `.py` file or a package directory) relative to `root`.
pub fn module_name(root: &Path, path: &Path) -> Result<ModuleName, DiscoveryError> {
    let rel = path
        .strip_prefix(root)
        .map_err(|_| DiscoveryError::OutsideRoot {
            path: path.to_path_buf(),
            root: root.to_path_buf(),
        })?;
    let mut parts: Vec<OsString> = rel
        .components()
        .map(|c| c.as_os_str().to_os_string())
        .collect();
    if let Some(last) = parts.last_mut() {
        if let Some(stem) = last.as_encoded_bytes().strip_suffix(b".py") {
            // SAFETY: stripping an ASCII suffix from OS-string bytes keeps them valid.
            *last = unsafe { OsString::from_encoded_bytes_unchecked(stem.to_vec()) };
        }
    }
    if parts.is_empty() {
        return Err(DiscoveryError::IsRoot(path.to_path_buf()));
    }
    Ok(ModuleName(parts.join(OsStr::new("."))))
}

/// Make `path` absolute and normalized (symlinks resolved), with a clear error when it is missing.
pub fn resolve_existing(path: &Path) -> Result<PathBuf, DiscoveryError> {
    std::fs::canonicalize(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DiscoveryError::Missing(path.to_path_buf())
        } else {
            DiscoveryError::Read {
                path: path.to_path_buf(),
                source: e,
            }
        }
    })
}

/// The module a single Python file stands for.
pub fn file_module(path: &Path) -> Result<ModuleSet, DiscoveryError> {
    let path = resolve_existing(path)?;
    if path.is_dir() {
        return Err(DiscoveryError::Directory(path));
    }
    if path.extension().and_then(|e| e.to_str()) != Some("py") {
        return Err(DiscoveryError::NotPython(path));
    }
    let root = project_root(&path);
    let module = module_name(&root, &path)?;
    Ok(ModuleSet {
        root,
        modules: vec![module],
    })
}

/// The modules a file or directory argument stands for (a directory: the package and all below).
pub fn path_modules(path: &Path) -> Result<ModuleSet, DiscoveryError> {
    let path = resolve_existing(path)?;
    if !path.is_dir() {
        return file_module(&path);
    }
    let root = project_root(&path);
    let top = module_name(&root, &path)?;
    let mut modules = vec![top.clone()];
    // Submodules are found by name as pkgutil.walk_packages finds them: valid identifiers only.
    if let Some(prefix) = top.as_os_str().to_str() {
        let mut names = Vec::new();
        walk_package(&path, prefix, &mut names)?;
        modules.extend(names.into_iter().map(|n| ModuleName::from(n.as_str())));
    }
    Ok(ModuleSet { root, modules })
}

fn walk_package(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), DiscoveryError> {
    let mut entries: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| DiscoveryError::Read {
            path: dir.to_path_buf(),
            source: e,
        })?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(|n| (n.to_string(), e.path())))
        .collect();
    entries.sort();
    for (name, path) in entries {
        if path.is_dir() {
            if !is_identifier(&name) || !path.join("__init__.py").is_file() {
                continue;
            }
            let module = format!("{prefix}.{name}");
            out.push(module.clone());
            walk_package(&path, &module, out)?;
        } else if let Some(stem) = name.strip_suffix(".py") {
            if stem == "__init__" || !is_identifier(stem) {
                continue;
            }
            out.push(format!("{prefix}.{stem}"));
        }
    }
    Ok(())
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

/// Resolve several path arguments; they must share one project root (pyflyte's rule).
pub fn modules_for_paths(paths: &[PathBuf]) -> Result<ModuleSet, DiscoveryError> {
    let mut set: Option<ModuleSet> = None;
    for p in paths {
        let next = path_modules(p)?;
        match &mut set {
            None => set = Some(next),
            Some(s) => {
                if s.root != next.root {
                    return Err(DiscoveryError::TwoRoots {
                        path: p.clone(),
                        root: next.root,
                        earlier: s.root.clone(),
                    });
                }
                for m in next.modules {
                    if !s.modules.contains(&m) {
                        s.modules.push(m);
                    }
                }
            }
        }
    }
    set.ok_or(DiscoveryError::NoPaths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn touch(p: &Path) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, "").unwrap();
    }

    #[test]
    fn root_is_first_ancestor_without_init() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().canonicalize().unwrap();
        touch(&base.join("proj/pkg/__init__.py"));
        touch(&base.join("proj/pkg/sub/__init__.py"));
        touch(&base.join("proj/pkg/sub/mod.py"));
        let f = base.join("proj/pkg/sub/mod.py");
        assert_eq!(project_root(&f), base.join("proj"));
        assert_eq!(module_name(&base.join("proj"), &f).unwrap(), "pkg.sub.mod");
    }

    #[test]
    fn a_script_outside_packages_is_its_own_module() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().canonicalize().unwrap();
        touch(&base.join("hello.py"));
        let set = file_module(&base.join("hello.py")).unwrap();
        assert_eq!(set.root, base);
        assert_eq!(set.modules, vec![ModuleName::from("hello")]);
    }

    #[test]
    fn directory_walk_matches_walk_packages() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().canonicalize().unwrap();
        touch(&base.join("proj/pkg/__init__.py"));
        touch(&base.join("proj/pkg/b.py"));
        touch(&base.join("proj/pkg/a.py"));
        touch(&base.join("proj/pkg/sub/__init__.py"));
        touch(&base.join("proj/pkg/sub/c.py"));
        touch(&base.join("proj/pkg/notapkg/d.py"));
        touch(&base.join("proj/pkg/data.txt"));
        touch(&base.join("proj/pkg/bad-name.py"));
        let set = path_modules(&base.join("proj/pkg")).unwrap();
        assert_eq!(set.root, base.join("proj"));
        let names: Vec<String> = set.modules.iter().map(|m| m.to_string()).collect();
        assert_eq!(names, vec!["pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c"]);
    }

    #[test]
    fn missing_path_is_a_clear_error() {
        let e = path_modules(Path::new("/definitely/not/here.py")).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }

    #[test]
    fn paths_must_share_a_root() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().canonicalize().unwrap();
        touch(&base.join("a/x.py"));
        touch(&base.join("b/c/y.py"));
        let e = modules_for_paths(&[base.join("a/x.py"), base.join("b/c/y.py")]).unwrap_err();
        assert!(e.to_string().contains("project root"));
    }
}
