//! The build context a client sends: the files the spec needs, which the local planner's
//! [`dockerfile`] inputs name (so both builders take the same files), checked against the limits
//! and packed as a deterministic tar.gz.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{human_size, ContextLimits, RemoteBuildError};
use crate::dockerfile::{self, PlanError};
use crate::remote::{copy_entry_rel, CONTEXT_COPY, CONTEXT_REQUIREMENTS, CONTEXT_SRC};
use crate::spec::ImageSpec;
use crate::{ImageSpecError, TagContext};

/// One file of the context a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFile {
    /// Path in the context (`requirements/…`, `copy/…`, `src/…`).
    pub path: String,
    /// The local file.
    pub source: PathBuf,
    /// Its size when listed.
    pub size: u64,
    /// Whether it is executable.
    pub executable: bool,
}

fn io_err(image: &str, path: &Path) -> impl FnOnce(std::io::Error) -> RemoteBuildError {
    let image = image.to_string();
    let path = path.to_path_buf();
    move |source| RemoteBuildError::Io {
        image,
        path,
        source,
    }
}

fn file_entry(image: &str, path: String, source: &Path) -> Result<ContextFile, RemoteBuildError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(source).map_err(io_err(image, source))?;
    Ok(ContextFile {
        path,
        source: source.to_path_buf(),
        size: meta.len(),
        executable: meta.permissions().mode() & 0o111 != 0,
    })
}

/// Every regular file under `dir` (sorted, symlinks followed as the local builder does, broken
/// ones skipped), below `prefix`.
fn walk_dir(
    image: &str,
    prefix: &str,
    dir: &Path,
    depth: usize,
    limits: &ContextLimits,
    out: &mut Vec<ContextFile>,
) -> Result<(), RemoteBuildError> {
    if depth > 64 {
        return Err(RemoteBuildError::Io {
            image: image.to_string(),
            path: dir.to_path_buf(),
            source: std::io::Error::other("directories nest more than 64 levels (a symlink loop?)"),
        });
    }
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(io_err(image, dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .map_err(io_err(image, dir))?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let Some(name) = name.to_str() else {
            return Err(ImageSpecError::NonUtf8Path {
                image: image.to_string(),
                path,
            }
            .into());
        };
        let rel = format!("{prefix}/{name}");
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk_dir(image, &rel, &path, depth + 1, limits, out)?;
        } else if meta.is_file() {
            out.push(file_entry(image, rel, &path)?);
            if out.len() > limits.max_files {
                // Stop walking early; the size check below reports it.
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The files `spec` needs to be built remotely (not those of a nested base spec), with the
/// limits checked. Refuses `pip_secret_mounts` and `copy` entries outside the base directory.
pub fn collect_context(
    spec: &ImageSpec,
    ctx: &TagContext,
    limits: &ContextLimits,
) -> Result<Vec<ContextFile>, RemoteBuildError> {
    let image = spec.name.as_str();
    if spec
        .pip_secret_mounts
        .as_ref()
        .is_some_and(|m| !m.is_empty())
    {
        return Err(RemoteBuildError::Secrets {
            image: image.to_string(),
        });
    }
    let mut out: Vec<ContextFile> = Vec::new();
    let requirements = dockerfile::requirements_kind(spec, ctx).map_err(plan_error)?;
    for (name, path) in requirements.files() {
        out.push(file_entry(
            image,
            format!("{CONTEXT_REQUIREMENTS}/{name}"),
            &path,
        )?);
    }
    for entry in spec.copy.iter().flatten() {
        let Some(rel) = copy_entry_rel(entry) else {
            return Err(RemoteBuildError::CopyEntry {
                image: image.to_string(),
                entry: entry.clone(),
                reason: "must be a relative path inside the working directory (no `..`, not absolute, not `.`)"
                    .into(),
            });
        };
        let src = dockerfile::copy_source(spec, ctx, entry)?;
        let at = format!("{CONTEXT_COPY}/{rel}");
        if src.is_dir {
            walk_dir(image, &at, &src.path, 0, limits, &mut out)?;
        } else {
            out.push(file_entry(image, at, &src.path)?);
        }
    }
    for (rel, path) in dockerfile::source_files(spec, ctx)? {
        out.push(file_entry(image, format!("{CONTEXT_SRC}/{rel}"), &path)?);
    }
    // Same path twice (copy entries overlapping): the last wins, as in a tar.
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut dedup: Vec<ContextFile> = Vec::with_capacity(out.len());
    for f in out {
        match seen.get(&f.path) {
            Some(&i) => dedup[i] = f,
            None => {
                seen.insert(f.path.clone(), dedup.len());
                dedup.push(f);
            }
        }
    }
    check_limits(image, &dedup, limits)?;
    Ok(dedup)
}

/// The planner's error, keeping spec errors (a missing requirements file) as spec errors.
fn plan_error(e: PlanError) -> RemoteBuildError {
    match e {
        PlanError::Spec(e) => RemoteBuildError::Spec(e),
        other => RemoteBuildError::Plan(other),
    }
}

fn check_limits(
    image: &str,
    files: &[ContextFile],
    limits: &ContextLimits,
) -> Result<(), RemoteBuildError> {
    let total: u64 = files.iter().map(|f| f.size).sum();
    if total <= limits.max_bytes && files.len() <= limits.max_files {
        return Ok(());
    }
    let mut by_size: Vec<&ContextFile> = files.iter().collect();
    by_size.sort_by(|a, b| b.size.cmp(&a.size).then(a.path.cmp(&b.path)));
    let largest = by_size
        .iter()
        .take(5)
        .map(|f| format!("{} ({})", f.source.display(), human_size(f.size)))
        .collect::<Vec<_>>()
        .join(", ");
    Err(RemoteBuildError::ContextTooLarge {
        image: image.to_string(),
        files: files.len(),
        total: human_size(total),
        limit: human_size(limits.max_bytes),
        limit_files: limits.max_files,
        largest,
    })
}

/// The context as a deterministic gzip-compressed tar (sorted, fixed mtime, uid/gid 0).
pub fn context_tar_gz(image: &str, files: &[ContextFile]) -> Result<Vec<u8>, RemoteBuildError> {
    use flate2::write::GzEncoder;
    let mut sorted: Vec<&ContextFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    builder.mode(tar::HeaderMode::Deterministic);
    for f in sorted {
        let data = std::fs::read(&f.source).map_err(io_err(image, &f.source))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(if f.executable { 0o755 } else { 0o644 });
        header.set_mtime(315_532_800);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, &f.path, data.as_slice())
            .map_err(io_err(image, &f.source))?;
    }
    let gz = builder
        .into_inner()
        .map_err(io_err(image, Path::new("<context>")))?;
    gz.finish().map_err(io_err(image, Path::new("<context>")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_name_the_largest_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("big.bin"), vec![0u8; 4096]).unwrap();
        std::fs::write(dir.path().join("small.txt"), "x").unwrap();
        let spec = ImageSpec {
            name: "big".into(),
            copy: Some(vec!["big.bin".into(), "small.txt".into()]),
            ..Default::default()
        };
        let ctx = TagContext::new(dir.path());
        let limits = ContextLimits {
            max_bytes: 1000,
            max_files: 10,
        };
        let err = collect_context(&spec, &ctx, &limits).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("big.bin (4.0 KiB)"), "{msg}");
        assert!(msg.contains("limit is 10 files and 1000 B"), "{msg}");
        let ok = collect_context(&spec, &ctx, &ContextLimits::default()).unwrap();
        let paths: Vec<_> = ok.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["copy/big.bin", "copy/small.txt"]);
    }

    #[test]
    fn secrets_and_escaping_copy_entries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = TagContext::new(dir.path());
        let spec = ImageSpec {
            name: "s".into(),
            pip_secret_mounts: Some(vec![("a".into(), "/b".into())]),
            ..Default::default()
        };
        assert!(matches!(
            collect_context(&spec, &ctx, &ContextLimits::default()),
            Err(RemoteBuildError::Secrets { .. })
        ));
        let spec = ImageSpec {
            name: "s".into(),
            copy: Some(vec!["../x".into()]),
            ..Default::default()
        };
        assert!(matches!(
            collect_context(&spec, &ctx, &ContextLimits::default()),
            Err(RemoteBuildError::CopyEntry { .. })
        ));
    }

    #[test]
    fn lock_file_brings_pyproject_and_readme() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("proj")).unwrap();
        std::fs::write(dir.path().join("proj/uv.lock"), "lock").unwrap();
        std::fs::write(
            dir.path().join("proj/pyproject.toml"),
            "[project]\nname='x'\nreadme='README.md'\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("proj/README.md"), "hi").unwrap();
        let spec = ImageSpec {
            name: "l".into(),
            requirements: Some("proj/uv.lock".into()),
            ..Default::default()
        };
        let files = collect_context(
            &spec,
            &TagContext::new(dir.path()),
            &ContextLimits::default(),
        )
        .unwrap();
        let paths: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "requirements/uv.lock",
                "requirements/pyproject.toml",
                "requirements/README.md"
            ]
        );
        let tgz = context_tar_gz("l", &files).unwrap();
        assert_eq!(tgz, context_tar_gz("l", &files).unwrap());
    }
}
