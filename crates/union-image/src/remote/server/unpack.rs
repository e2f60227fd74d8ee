//! Unpacking a received build context: regular files only, at relative paths inside the three
//! context roots, within the size limits.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use crate::remote::client::human_size;
use crate::remote::{ContextLimits, CONTEXT_COPY, CONTEXT_REQUIREMENTS, CONTEXT_SRC};

/// Validate a context path: relative, normal components only, under one of the three roots.
fn safe_context_path(path: &Path) -> Result<PathBuf, String> {
    let shown = path.display().to_string();
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err(format!("context entry `{shown}` contains `..`")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("context entry `{shown}` is an absolute path"))
            }
        }
    }
    let top = out
        .components()
        .next()
        .and_then(|c| c.as_os_str().to_str())
        .unwrap_or_default()
        .to_string();
    if ![CONTEXT_REQUIREMENTS, CONTEXT_COPY, CONTEXT_SRC].contains(&top.as_str()) {
        return Err(format!(
            "context entry `{shown}` is outside `{CONTEXT_REQUIREMENTS}/`, `{CONTEXT_COPY}/` and `{CONTEXT_SRC}/`"
        ));
    }
    if out.components().count() < 2 {
        return Err(format!(
            "context entry `{shown}` names a directory, not a file in it"
        ));
    }
    Ok(out)
}

/// Write the received context below `dir`, regular files only, refusing anything that escapes
/// it. Returns the context-relative paths written.
pub fn extract_context(
    tar_gz: &[u8],
    dir: &Path,
    limits: &ContextLimits,
) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    if tar_gz.is_empty() {
        return Ok(written);
    }
    let gz = flate2::read::GzDecoder::new(tar_gz);
    let mut archive = tar::Archive::new(gz);
    let entries = archive
        .entries()
        .map_err(|e| format!("the context is not a gzip-compressed tar: {e}"))?;
    let mut total: u64 = 0;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("the context is not a valid tar: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("a context entry has an unreadable path: {e}"))?
            .into_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            safe_context_path(&path.join("x"))?;
            continue;
        }
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .ok()
                .flatten()
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            return Err(format!(
                "context entry `{}` is a link (to `{target}`); the context holds regular files only",
                path.display()
            ));
        }
        if !kind.is_file() {
            return Err(format!(
                "context entry `{}` is not a regular file",
                path.display()
            ));
        }
        let rel = safe_context_path(&path)?;
        let rel_str = rel
            .to_str()
            .ok_or_else(|| format!("context entry {:?} is not UTF-8", rel))?
            .to_string();
        if written.len() >= limits.max_files {
            return Err(format!(
                "the context has more than {} files",
                limits.max_files
            ));
        }
        let size = entry.header().size().unwrap_or(u64::MAX);
        total = total.saturating_add(size);
        if total > limits.max_bytes {
            return Err(format!(
                "the context exceeds {} uncompressed",
                human_size(limits.max_bytes)
            ));
        }
        let mode = entry.header().mode().unwrap_or(0o644);
        let target = dir.join(&rel);
        // Parents are created by us, as directories; a file where a directory is needed fails.
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("context entry `{rel_str}`: {e}"))?;
        }
        let mut data = Vec::with_capacity(size.min(1 << 20) as usize);
        (&mut entry)
            .take(limits.max_bytes + 1)
            .read_to_end(&mut data)
            .map_err(|e| format!("context entry `{rel_str}`: {e}"))?;
        std::fs::write(&target, &data).map_err(|e| format!("context entry `{rel_str}`: {e}"))?;
        if mode & 0o111 != 0 {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755));
        }
        written.push(rel_str);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for (path, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            // Bypass the tar crate's own path checks: write the raw name.
            let name = path.as_bytes();
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn context_entries_that_escape_are_refused() {
        let limits = ContextLimits::default();
        let dir = tempfile::tempdir().unwrap();
        let ok = tar_gz(&[("copy/a.txt", tar::EntryType::Regular, b"a", None)]);
        assert_eq!(
            extract_context(&ok, &dir.path().join("ok"), &limits).unwrap(),
            ["copy/a.txt"]
        );
        for (bad, why) in [
            (
                tar_gz(&[("copy/../../x", tar::EntryType::Regular, b"a", None)]),
                "`..`",
            ),
            (
                tar_gz(&[("/etc/x", tar::EntryType::Regular, b"a", None)]),
                "absolute",
            ),
            (
                tar_gz(&[("copy/l", tar::EntryType::Symlink, b"", Some("/etc/passwd"))]),
                "is a link (to `/etc/passwd`)",
            ),
            (
                tar_gz(&[("other/x", tar::EntryType::Regular, b"a", None)]),
                "outside",
            ),
        ] {
            let e = extract_context(&bad, &dir.path().join("bad"), &limits).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        let small = ContextLimits {
            max_bytes: 3,
            max_files: 10,
        };
        let big = tar_gz(&[("copy/a", tar::EntryType::Regular, b"abcd", None)]);
        assert!(extract_context(&big, &dir.path().join("big"), &small)
            .unwrap_err()
            .contains("exceeds"));
    }
}
