//! Unpacking a received build context (a tar, xz- or gzip-compressed, as union's
//! `shutil.make_archive(..., "xztar")` writes it: members `.` and `./<path>`): regular files only,
//! at relative paths inside the context, within the size limits.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use crate::remote::ContextLimits;
use union_diagnostics::human_bytes;

/// A member's path made safe: relative, normal components only (`.` dropped). None for the root.
fn safe_path(path: &Path) -> Result<Option<PathBuf>, String> {
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
    Ok((out.components().count() > 0).then_some(out))
}

/// The archive's tar bytes: xz (union) or gzip, by their magic bytes; a plain tar as it is.
fn decompress(archive: &[u8]) -> Result<Vec<u8>, String> {
    if archive.starts_with(&[0xFD, b'7', b'z', b'X', b'Z', 0]) {
        let mut out = Vec::new();
        lzma_rs::xz_decompress(&mut std::io::BufReader::new(archive), &mut out)
            .map_err(|e| format!("the context is not a valid .tar.xz: {e}"))?;
        return Ok(out);
    }
    if archive.starts_with(&[0x1F, 0x8B]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(archive)
            .read_to_end(&mut out)
            .map_err(|e| format!("the context is not a valid .tar.gz: {e}"))?;
        return Ok(out);
    }
    Ok(archive.to_vec())
}

/// Write the context below `dir`, regular files only, refusing anything that escapes it.
/// Returns the context-relative paths written.
pub fn extract_context(
    archive: &[u8],
    dir: &Path,
    limits: &ContextLimits,
) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    if archive.is_empty() {
        return Ok(written);
    }
    let tar = decompress(archive)?;
    let mut archive = tar::Archive::new(tar.as_slice());
    let entries = archive
        .entries()
        .map_err(|e| format!("the context is not a tar archive: {e}"))?;
    let mut total: u64 = 0;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("the context is not a valid tar: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("a context entry has an unreadable path: {e}"))?
            .into_owned();
        let kind = entry.header().entry_type();
        let rel = safe_path(&path)?;
        if kind.is_dir()
            || matches!(
                kind,
                tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
            )
        {
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
        let Some(rel) = rel else {
            return Err("the context's root is a file".into());
        };
        let rel_str = rel
            .to_str()
            .ok_or_else(|| format!("context entry {rel:?} is not UTF-8"))?
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
                human_bytes(limits.max_bytes)
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
        if !written.contains(&rel_str) {
            written.push(rel_str);
        }
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
    fn union_contexts_unpack_and_escapes_are_refused() {
        let limits = ContextLimits::default();
        let dir = tempfile::tempdir().unwrap();
        let files = [crate::remote::client::ContextEntry::file(
            "a.txt",
            &dir.path().join("src-a"),
        )];
        std::fs::write(dir.path().join("src-a"), "a").unwrap();
        let xz = crate::remote::client::context_tar_xz("t", &files).unwrap();
        assert_eq!(
            extract_context(&xz, &dir.path().join("ok"), &limits).unwrap(),
            ["a.txt"]
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("ok/a.txt")).unwrap(),
            "a"
        );
        for (bad, why) in [
            (
                tar_gz(&[("./../../x", tar::EntryType::Regular, b"a", None)]),
                "`..`",
            ),
            (
                tar_gz(&[("/etc/x", tar::EntryType::Regular, b"a", None)]),
                "absolute",
            ),
            (
                tar_gz(&[("./l", tar::EntryType::Symlink, b"", Some("/etc/passwd"))]),
                "is a link (to `/etc/passwd`)",
            ),
        ] {
            let e = extract_context(&bad, &dir.path().join("bad"), &limits).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        let small = ContextLimits {
            max_bytes: 3,
            max_files: 10,
        };
        let big = tar_gz(&[("./a", tar::EntryType::Regular, b"abcd", None)]);
        assert!(extract_context(&big, &dir.path().join("big"), &small)
            .unwrap_err()
            .contains("exceeds"));
    }
}
