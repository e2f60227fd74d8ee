//! The build context a client uploads: the files union copies into its context directory,
//! archived the way `shutil.make_archive(base, "xztar", context_dir)` does (a tar whose members
//! are `.` and `./<path>`, directories included, each directory's entries sorted by name,
//! xz-compressed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::RemoteBuildError;

/// One thing copied into the context: a file, or a directory with everything under it (symlinks
/// followed, as `shutil.copy`/`copytree` do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    /// Where it goes in the context (`/`-separated, relative).
    pub path: String,
    /// The local file or directory.
    pub source: PathBuf,
}

impl ContextEntry {
    /// A file copied to `path`.
    pub fn file(path: &str, source: &Path) -> Self {
        ContextEntry {
            path: path.trim_start_matches("./").to_string(),
            source: source.to_path_buf(),
        }
    }

    /// A file or a directory tree copied to `path`.
    pub fn tree(path: &str, source: &Path) -> Self {
        Self::file(path, source)
    }
}

#[derive(Debug)]
enum Node {
    File { source: PathBuf, executable: bool },
    Dir(BTreeMap<String, Node>),
}

fn io_err(image: &str, path: &Path) -> impl FnOnce(std::io::Error) -> RemoteBuildError {
    let (image, path) = (image.to_string(), path.to_path_buf());
    move |source| RemoteBuildError::Io {
        image,
        path,
        source,
    }
}

fn insert(root: &mut BTreeMap<String, Node>, parts: &[&str], node: Node) {
    let Some((last, dirs)) = parts.split_last() else {
        return;
    };
    let mut cur = root;
    for d in dirs {
        let slot = cur
            .entry(d.to_string())
            .or_insert_with(|| Node::Dir(BTreeMap::new()));
        if !matches!(slot, Node::Dir(_)) {
            *slot = Node::Dir(BTreeMap::new());
        }
        let Node::Dir(next) = slot else { return };
        cur = next;
    }
    match (cur.get_mut(*last), node) {
        // copytree(dirs_exist_ok=True) merges into an existing directory.
        (Some(Node::Dir(existing)), Node::Dir(new)) => merge(existing, new),
        (_, node) => {
            cur.insert(last.to_string(), node);
        }
    }
}

fn merge(into: &mut BTreeMap<String, Node>, from: BTreeMap<String, Node>) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Node::Dir(a)), Node::Dir(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

fn load(image: &str, source: &Path, depth: usize) -> Result<Node, RemoteBuildError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(source).map_err(io_err(image, source))?;
    if !meta.is_dir() {
        return Ok(Node::File {
            source: source.to_path_buf(),
            executable: meta.permissions().mode() & 0o111 != 0,
        });
    }
    if depth > 64 {
        return Err(RemoteBuildError::Io {
            image: image.to_string(),
            path: source.to_path_buf(),
            source: std::io::Error::other("directories nest more than 64 levels (a symlink loop?)"),
        });
    }
    let mut children = BTreeMap::new();
    for entry in std::fs::read_dir(source).map_err(io_err(image, source))? {
        let entry = entry.map_err(io_err(image, source))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        children.insert(name, load(image, &entry.path(), depth + 1)?);
    }
    Ok(Node::Dir(children))
}

/// The entries (later ones over earlier ones) as a `.tar.xz` like `shutil.make_archive`'s.
pub fn context_tar_xz(image: &str, entries: &[ContextEntry]) -> Result<Vec<u8>, RemoteBuildError> {
    let mut root: BTreeMap<String, Node> = BTreeMap::new();
    for e in entries {
        let parts: Vec<&str> = e
            .path
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        let node = load(image, &e.source, 0)?;
        insert(&mut root, &parts, node);
    }
    let mut builder = tar::Builder::new(Vec::new());
    let err = io_err(image, Path::new("<context>"));
    append_dir(&mut builder, ".").map_err(io_err(image, Path::new("<context>")))?;
    append_tree(image, &mut builder, ".", &root)?;
    let tar = builder.into_inner().map_err(err)?;
    let mut xz = Vec::new();
    lzma_rs::xz_compress(&mut std::io::BufReader::new(tar.as_slice()), &mut xz)
        .map_err(io_err(image, Path::new("<context>")))?;
    Ok(xz)
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(315_532_800);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn append_dir(b: &mut tar::Builder<Vec<u8>>, path: &str) -> std::io::Result<()> {
    let h = header(tar::EntryType::Directory, 0, 0o755);
    append(b, h, path, &[])
}

/// Append under `path` as given (`./x`, as Python's tarfile names members); the tar crate
/// would drop the `./`, so short names are written into the header directly (longer ones take
/// the crate's long-name extension, without the `./`).
fn append(
    b: &mut tar::Builder<Vec<u8>>,
    mut h: tar::Header,
    path: &str,
    data: &[u8],
) -> std::io::Result<()> {
    if path.len() < 100 {
        let name = &mut h.as_old_mut().name;
        name.fill(0);
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        b.append(&h, data)
    } else {
        b.append_data(&mut h, path, data)
    }
}

fn append_tree(
    image: &str,
    b: &mut tar::Builder<Vec<u8>>,
    prefix: &str,
    dir: &BTreeMap<String, Node>,
) -> Result<(), RemoteBuildError> {
    for (name, node) in dir {
        let path = format!("{prefix}/{name}");
        match node {
            Node::Dir(children) => {
                append_dir(b, &path).map_err(io_err(image, Path::new(&path)))?;
                append_tree(image, b, &path, children)?;
            }
            Node::File { source, executable } => {
                let data = std::fs::read(source).map_err(io_err(image, source))?;
                let mode = if *executable { 0o755 } else { 0o644 };
                let h = header(tar::EntryType::Regular, data.len() as u64, mode);
                append(b, h, &path, &data).map_err(io_err(image, source))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn members_are_dot_and_dot_slash_paths_sorted_per_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data/sub")).unwrap();
        std::fs::write(dir.path().join("data/sub/b.txt"), "b").unwrap();
        std::fs::write(dir.path().join("data/a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("requirements.txt"), "x\n").unwrap();
        let xz = context_tar_xz(
            "t",
            &[
                ContextEntry::file("requirements.txt", &dir.path().join("requirements.txt")),
                ContextEntry::tree("data", &dir.path().join("data")),
            ],
        )
        .unwrap();
        let mut tar = Vec::new();
        lzma_rs::xz_decompress(&mut std::io::BufReader::new(xz.as_slice()), &mut tar).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut names = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            names.push(format!("{name}={s}"));
        }
        assert_eq!(
            names,
            [
                ".=",
                "./data=",
                "./data/a.txt=a",
                "./data/sub=",
                "./data/sub/b.txt=b",
                "./requirements.txt=x\n"
            ]
        );
    }
}
