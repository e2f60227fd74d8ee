//! The build context sent to the Docker engine: a tar of the generated Dockerfile, helper files
//! and the user's files, written deterministically (sorted entries, fixed mtime, uid/gid 0) so the
//! same inputs give the same bytes and BuildKit's layer cache keys stay stable.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The mtime every context entry carries (1980-01-01Z, as flytekit's archives use).
const FIXED_MTIME: u64 = 315_532_800;

/// Where the bytes of one context entry come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextSource {
    /// Generated content (Dockerfile, requirements list, helper script).
    Bytes(Vec<u8>),
    /// A file on disk, read when the tar is written.
    File(PathBuf),
}

/// One file in the build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    /// Where its bytes come from.
    pub source: ContextSource,
    /// Unix permission bits in the tar (0o644 or 0o755).
    pub mode: u32,
}

/// A build context: context-relative paths (with `/`) mapped to their content, kept sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildContext {
    entries: BTreeMap<String, ContextEntry>,
}

impl BuildContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add generated content at `path`.
    pub fn add_bytes(&mut self, path: impl Into<String>, bytes: impl Into<Vec<u8>>, mode: u32) {
        self.entries.insert(
            path.into(),
            ContextEntry {
                source: ContextSource::Bytes(bytes.into()),
                mode,
            },
        );
    }

    /// Add a file from disk at `path`; its executable bit is kept, everything else normalised.
    pub fn add_file(&mut self, path: impl Into<String>, src: &Path) -> std::io::Result<()> {
        let meta = std::fs::metadata(src)?;
        let mode = if meta.permissions().mode() & 0o111 != 0 {
            0o755
        } else {
            0o644
        };
        self.entries.insert(
            path.into(),
            ContextEntry {
                source: ContextSource::File(src.to_path_buf()),
                mode,
            },
        );
        Ok(())
    }

    /// Add every regular file under `dir` (recursively, sorted, symlinks followed) below `prefix`.
    pub fn add_dir(&mut self, prefix: &str, dir: &Path) -> std::io::Result<()> {
        let mut names: Vec<_> = std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()?;
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let rel = format!("{prefix}/{}", name.to_string_lossy());
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                // A broken symlink: skipped, as flytekit's listing skips it.
                Err(_) => continue,
            };
            if meta.is_dir() {
                self.add_dir(&rel, &path)?;
            } else if meta.is_file() {
                self.add_file(rel, &path)?;
            }
        }
        Ok(())
    }

    /// The entries, sorted by path.
    pub fn entries(&self) -> impl Iterator<Item = (&String, &ContextEntry)> {
        self.entries.iter()
    }

    /// The generated content at `path`, if it is generated.
    pub fn bytes(&self, path: &str) -> Option<&[u8]> {
        match &self.entries.get(path)?.source {
            ContextSource::Bytes(b) => Some(b),
            ContextSource::File(_) => None,
        }
    }

    /// Whether the context has an entry at `path`.
    pub fn contains(&self, path: &str) -> bool {
        self.entries.contains_key(path)
    }

    /// Write the context as an uncompressed tar with fixed metadata.
    pub fn to_tar(&self) -> std::io::Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        builder.mode(tar::HeaderMode::Deterministic);
        for (path, entry) in &self.entries {
            let data = match &entry.source {
                ContextSource::Bytes(b) => b.clone(),
                ContextSource::File(p) => std::fs::read(p).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("cannot read {}: {e}", p.display()))
                })?,
            };
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(entry.mode);
            header.set_mtime(FIXED_MTIME);
            header.set_uid(0);
            header.set_gid(0);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, path, data.as_slice())?;
        }
        builder.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_is_deterministic_and_sorted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.txt"), "b").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a.py"), "a").unwrap();
        let mut ctx = BuildContext::new();
        ctx.add_bytes("Dockerfile", "FROM x\n", 0o644);
        ctx.add_dir("copy/d", dir.path()).unwrap();
        let one = ctx.to_tar().unwrap();
        let two = ctx.clone().to_tar().unwrap();
        assert_eq!(one, two);
        let mut archive = tar::Archive::new(one.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["Dockerfile", "copy/d/b.txt", "copy/d/sub/a.py"]);
    }
}
