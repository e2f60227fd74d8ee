//! Just enough of a git repository to reproduce `git ls-files -io --exclude-standard`: where the
//! repository is, and which paths its index tracks (git never reports a tracked file as ignored).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

/// A git work tree containing the project root.
#[derive(Debug, Clone)]
pub(crate) struct Repo {
    /// The top of the work tree (the directory holding `.git`).
    pub toplevel: PathBuf,
    /// The git directory (`.git`, or where a `gitdir:` file points).
    pub git_dir: PathBuf,
}

/// Whether `dir` holds a `.git` directory or gitfile, i.e. is the top of a work tree.
pub(crate) fn is_repo_top(dir: &Path) -> bool {
    git_dir_of(dir).is_some()
}

/// The git directory of the work tree whose top is `dir`, if any.
fn git_dir_of(dir: &Path) -> Option<PathBuf> {
    let dot_git = dir.join(".git");
    let meta = fs::metadata(&dot_git).ok()?;
    if meta.is_dir() {
        // git only accepts a directory as a repository if it has HEAD (and objects/refs).
        return dot_git.join("HEAD").exists().then_some(dot_git);
    }
    if meta.is_file() {
        let text = fs::read_to_string(&dot_git).ok()?;
        let target = text.lines().next()?.strip_prefix("gitdir:")?.trim();
        let target = Path::new(target);
        let resolved = if target.is_absolute() {
            target.to_path_buf()
        } else {
            dir.join(target)
        };
        return resolved.is_dir().then_some(resolved);
    }
    None
}

/// The innermost work tree containing `root` (which must be absolute), like `git rev-parse`.
pub(crate) fn discover(root: &Path) -> Option<Repo> {
    let mut dir = Some(root);
    while let Some(d) = dir {
        if let Some(git_dir) = git_dir_of(d) {
            return Some(Repo {
                toplevel: d.to_path_buf(),
                git_dir,
            });
        }
        dir = d.parent();
    }
    None
}

impl Repo {
    /// The paths (relative to the top, '/'-separated, raw bytes) recorded in the index.
    ///
    /// `None` when the index is missing or in a format we don't read (split/sparse index): the
    /// caller then treats nothing as tracked, which can only make us ignore *more* than git.
    pub fn tracked_paths(&self) -> Option<HashSet<Vec<u8>>> {
        let data = fs::read(self.git_dir.join("index")).ok()?;
        parse_index(&data)
    }

    /// `$GIT_DIR/info/exclude`, part of `--exclude-standard`.
    pub fn info_exclude(&self) -> PathBuf {
        // Linked worktrees share the main repository's info/exclude via `commondir`.
        let common = fs::read_to_string(self.git_dir.join("commondir"))
            .ok()
            .map(|c| {
                let c = PathBuf::from(c.trim());
                if c.is_absolute() {
                    c
                } else {
                    self.git_dir.join(c)
                }
            })
            .unwrap_or_else(|| self.git_dir.clone());
        common.join("info").join("exclude")
    }
}

/// Parses the path names out of a git index file (versions 2, 3 and 4, SHA-1 or SHA-256).
fn parse_index(data: &[u8]) -> Option<HashSet<Vec<u8>>> {
    if data.len() < 12 || &data[0..4] != b"DIRC" {
        return None;
    }
    let version = u32::from_be_bytes(data[4..8].try_into().ok()?);
    let count = u32::from_be_bytes(data[8..12].try_into().ok()?) as usize;
    if !(2..=4).contains(&version) {
        return None;
    }
    // The trailing checksum's length tells SHA-1 (20) from SHA-256 (32) repositories; try both.
    for hash_len in [20usize, 32] {
        if let Some(paths) = parse_entries(data, version, count, hash_len) {
            return Some(paths);
        }
    }
    None
}

fn parse_entries(
    data: &[u8],
    version: u32,
    count: usize,
    hash_len: usize,
) -> Option<HashSet<Vec<u8>>> {
    let mut paths = HashSet::with_capacity(count);
    let mut pos = 12usize;
    let mut prev: Vec<u8> = Vec::new();
    for _ in 0..count {
        let start = pos;
        let fixed = 40 + hash_len;
        let flags_at = start + fixed;
        let flags = u16::from_be_bytes(data.get(flags_at..flags_at + 2)?.try_into().ok()?);
        pos = flags_at + 2;
        if version >= 3 && flags & 0x4000 != 0 {
            let ext = u16::from_be_bytes(data.get(pos..pos + 2)?.try_into().ok()?);
            // skip-worktree / intent-to-add entries are still "tracked" for ls-files -o.
            let _ = ext;
            pos += 2;
        }
        let mode = u32::from_be_bytes(data.get(start + 24..start + 28)?.try_into().ok()?);
        let path = if version == 4 {
            // Prefix compression: a varint says how many bytes to drop from the previous path.
            let (strip, used) = read_varint(data.get(pos..)?)?;
            pos += used;
            let end = pos + data.get(pos..)?.iter().position(|&b| b == 0)?;
            let keep = prev.len().checked_sub(strip)?;
            let mut p = prev[..keep].to_vec();
            p.extend_from_slice(&data[pos..end]);
            pos = end + 1;
            p
        } else {
            let end = pos + data.get(pos..)?.iter().position(|&b| b == 0)?;
            let p = data[pos..end].to_vec();
            // Entries are NUL-padded to a multiple of 8 bytes.
            let len = end - start;
            pos = start + (len + 8) / 8 * 8;
            p
        };
        // A sparse-directory entry (mode 040000) means a sparse index we don't expand.
        if mode & 0o170000 == 0o040000 {
            return None;
        }
        prev = path.clone();
        paths.insert(path);
    }
    if pos > data.len() {
        return None;
    }
    Some(paths)
}

fn read_varint(data: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    let mut c = *data.get(i)?;
    let mut val = (c & 0x7f) as usize;
    while c & 0x80 != 0 {
        i += 1;
        c = *data.get(i)?;
        val = ((val + 1) << 7) | (c & 0x7f) as usize;
    }
    Some((val, i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> bool {
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    #[test]
    fn reads_index_versions_2_3_4() {
        for version in ["2", "3", "4"] {
            let dir = tempfile::tempdir().unwrap();
            if !git(dir.path(), &["init", "-q", "."]) {
                return; // no git on this machine: nothing to compare against
            }
            fs::create_dir_all(dir.path().join("pkg/deep")).unwrap();
            fs::write(dir.path().join("a.py"), "a").unwrap();
            fs::write(dir.path().join("pkg/deep/b.py"), "b").unwrap();
            fs::write(dir.path().join("pkg/c.py"), "c").unwrap();
            assert!(git(dir.path(), &["add", "."]));
            assert!(git(
                dir.path(),
                &["update-index", "--index-version", version]
            ));
            let repo = discover(dir.path()).unwrap();
            let tracked = repo.tracked_paths().unwrap();
            let mut v: Vec<_> = tracked
                .into_iter()
                .map(|p| String::from_utf8(p).unwrap())
                .collect();
            v.sort();
            assert_eq!(
                v,
                ["a.py", "pkg/c.py", "pkg/deep/b.py"],
                "index version {version}"
            );
        }
    }

    #[test]
    fn garbage_index_is_none() {
        assert!(parse_index(b"DIRC\0\0\0\x02\0\0\0\x05short").is_none());
        assert!(parse_index(b"nope").is_none());
    }
}
