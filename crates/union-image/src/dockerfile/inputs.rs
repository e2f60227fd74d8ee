//! The local files a spec's build takes: the requirements file (with the pyproject.toml and
//! README a lock file needs beside it), the `copy` entries and the source files
//! `source_copy_mode` selects. The local planner puts them in its build context and the remote
//! client sends them, so both take exactly the same files.

use std::path::{Path, PathBuf};

use super::PlanError;
use crate::files;
use crate::spec::{CopyFileDetection, ImageSpec};
use crate::tag::TagContext;
use crate::ImageSpecError;

/// What the `requirements` field points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Requirements {
    None,
    Txt(PathBuf),
    Pyproject(PathBuf),
    UvLock { lock: PathBuf, pyproject: PathBuf },
    PoetryLock { lock: PathBuf, pyproject: PathBuf },
}

impl Requirements {
    /// The local files these requirements need, with their file names (all in one directory):
    /// the requirements file, and beside a lock file its pyproject.toml and the README that
    /// names, which uv and poetry read.
    pub(crate) fn files(&self) -> Vec<(String, PathBuf)> {
        let name = |p: &Path| {
            p.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("requirements.txt")
                .to_string()
        };
        match self {
            Requirements::None => Vec::new(),
            Requirements::Txt(path) | Requirements::Pyproject(path) => {
                vec![(name(path), path.clone())]
            }
            Requirements::UvLock { lock, pyproject }
            | Requirements::PoetryLock { lock, pyproject } => {
                let lock_name = name(lock);
                let mut out = vec![
                    (lock_name.clone(), lock.clone()),
                    ("pyproject.toml".to_string(), pyproject.clone()),
                ];
                if let Some(readme) = pyproject_readme(pyproject) {
                    let readme_name = name(&readme);
                    // A README that is one of the two files is already there.
                    if readme_name != "pyproject.toml" && readme_name != lock_name {
                        out.push((readme_name, readme));
                    }
                }
                out
            }
        }
    }
}

pub(super) fn resolve(base: &Path, p: &str) -> PathBuf {
    files::resolve(base, p)
}

/// Classify the `requirements` file, refusing what cannot be installed (a missing file, a lock
/// file without its pyproject.toml, `packages` next to a lock file).
pub(crate) fn requirements_kind(
    spec: &ImageSpec,
    ctx: &TagContext,
) -> Result<Requirements, PlanError> {
    let Some(req) = spec.requirements.as_deref().filter(|r| !r.is_empty()) else {
        return Ok(Requirements::None);
    };
    let path = resolve(&ctx.base_dir, req);
    if !path.is_file() {
        return Err(ImageSpecError::RequirementsNotFound {
            image: spec.name.clone(),
            path: req.to_string(),
            base: ctx.base_dir.clone(),
        }
        .into());
    }
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let lock = matches!(file_name, "uv.lock" | "poetry.lock");
    if !lock {
        return Ok(if file_name == "pyproject.toml" {
            Requirements::Pyproject(path)
        } else {
            Requirements::Txt(path)
        });
    }
    let pyproject = path.with_file_name("pyproject.toml");
    if !pyproject.is_file() {
        return Err(PlanError::Invalid {
            image: spec.name.clone(),
            message: format!(
                "requirements file `{file_name}` ('{req}') has no `pyproject.toml` beside it (looked for {})",
                pyproject.display()
            ),
        });
    }
    if non_empty(&spec.packages) {
        return Err(PlanError::Invalid {
            image: spec.name.clone(),
            message: format!(
                "`packages` cannot be combined with requirements `{file_name}`: the lock file fixes the \
                 environment; add the packages to pyproject.toml and re-lock"
            ),
        });
    }
    Ok(if file_name == "uv.lock" {
        Requirements::UvLock {
            lock: path,
            pyproject,
        }
    } else {
        Requirements::PoetryLock {
            lock: path,
            pyproject,
        }
    })
}

/// A `copy` entry's local file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CopySource {
    /// The entry resolved against the base directory.
    pub path: PathBuf,
    /// Whether it is a directory (symlinks followed), copied with everything under it.
    pub is_dir: bool,
}

/// Where a `copy` entry's files come from; an entry that names nothing is an error.
pub(crate) fn copy_source(
    spec: &ImageSpec,
    ctx: &TagContext,
    entry: &str,
) -> Result<CopySource, PlanError> {
    let path = resolve(&ctx.base_dir, entry);
    let meta = std::fs::metadata(&path).map_err(|_| PlanError::MissingFile {
        image: spec.name.clone(),
        field: "copy",
        path: entry.to_string(),
        base: ctx.base_dir.clone(),
    })?;
    Ok(CopySource {
        is_dir: meta.is_dir(),
        path,
    })
}

/// The source files `source_copy_mode` selects, as (path relative to `source_root`, local path);
/// none without a mode or with `NO_COPY`.
pub(crate) fn source_files(
    spec: &ImageSpec,
    ctx: &TagContext,
) -> Result<Vec<(String, PathBuf)>, ImageSpecError> {
    let Some(mode) = spec
        .source_copy_mode
        .filter(|m| *m != CopyFileDetection::NoCopy)
    else {
        return Ok(Vec::new());
    };
    let image = spec.name.as_str();
    let root = spec.source_root.as_deref().unwrap_or_default();
    match mode {
        CopyFileDetection::LoadedModules => {
            files::list_loaded(&ctx.base_dir, root, &ctx.loaded_modules, image)
        }
        _ => files::list_all(&ctx.base_dir, root, image),
    }
}

pub(super) fn read(image: &str, path: &Path) -> Result<Vec<u8>, PlanError> {
    std::fs::read(path).map_err(|source| PlanError::Io {
        image: image.to_string(),
        path: path.to_path_buf(),
        source,
    })
}

/// `[project].dependencies` of a PEP 621 pyproject.toml.
pub(super) fn pyproject_dependencies(image: &str, path: &Path) -> Result<Vec<String>, PlanError> {
    let text = String::from_utf8_lossy(&read(image, path)?).into_owned();
    let invalid = |message: String| PlanError::Invalid {
        image: image.to_string(),
        message,
    };
    let doc: toml::Table = text
        .parse()
        .map_err(|e| invalid(format!("cannot parse {}: {e}", path.display())))?;
    let Some(project) = doc.get("project").and_then(|p| p.as_table()) else {
        return Err(invalid(format!(
            "requirements {} has no PEP 621 [project] table; list dependencies under \
             [project].dependencies or use a lock file (uv.lock, poetry.lock) beside it",
            path.display()
        )));
    };
    let Some(deps) = project.get("dependencies") else {
        return Ok(Vec::new());
    };
    deps.as_array()
        .and_then(|a| a.iter().map(|d| d.as_str().map(str::to_string)).collect())
        .ok_or_else(|| {
            invalid(format!(
                "[project].dependencies in {} must be a list of strings",
                path.display()
            ))
        })
}

/// The README a pyproject.toml references, which poetry/uv may want to see beside it.
fn pyproject_readme(pyproject: &Path) -> Option<PathBuf> {
    let doc: toml::Table = std::fs::read_to_string(pyproject).ok()?.parse().ok()?;
    let readme = doc
        .get("project")
        .and_then(|p| p.get("readme"))
        .or_else(|| doc.get("tool")?.get("poetry")?.get("readme"))?
        .as_str()?
        .to_string();
    let path = pyproject.parent()?.join(&readme);
    (Path::new(&readme).components().count() == 1 && path.is_file()).then_some(path)
}

/// A list field that is set and has entries.
pub(super) fn non_empty<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_empty())
}
