//! Local files in an execution's inputs (FlyteFile, FlyteDirectory, StructuredDataset), uploaded
//! through the data proxy the way `pyflyte run --remote` uploads them: flytekit converts the
//! inputs with a local raw-data prefix, then every blob or dataset whose URI is a local path is
//! uploaded (a directory file by file under one root) and its URI replaced by the native URL.
//! URIs that are already remote (`s3://`, `https://`, ...) are left as they are.

use std::path::{Path, PathBuf};

use md5::Digest as _;

use super::upload::{upload_bytes, upload_under, UploadError};
use union_client::admin::AdminClient;
use union_idl::flyteidl::core::{literal, scalar, Literal, LiteralMap};

/// Why a local input could not be uploaded.
#[derive(Debug, thiserror::Error)]
pub enum LocalDataError {
    /// A file could not be read.
    #[error("cannot read `{path}` (an input of the execution): {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The upload failed.
    #[error(transparent)]
    Upload(#[from] UploadError),
}

impl union_diagnostics::Hint for LocalDataError {
    fn hints(&self) -> Vec<String> {
        match self {
            LocalDataError::Upload(e) => e.hints(),
            LocalDataError::Read { .. } => Vec::new(),
        }
    }
}

/// The local path a URI names, if it names one: `file://`, or no scheme at all (a path as the
/// user typed it, relative to where they ran the command).
fn local_path(uri: &str) -> Option<PathBuf> {
    if let Some(p) = uri.strip_prefix("file://") {
        return Some(PathBuf::from(p));
    }
    (!uri.is_empty() && !uri.contains("://")).then(|| PathBuf::from(uri))
}

/// Whether `inputs` name any local file, directory or dataset (what [`upload_local_inputs`]
/// uploads).
pub fn has_local_data(inputs: &LiteralMap) -> bool {
    let mut copy = inputs.clone();
    copy.literals.values_mut().any(|v| {
        let mut found = Vec::new();
        uris(v, &mut found);
        found.iter().any(|u| local_path(u).is_some())
    })
}

fn uris<'a>(l: &'a mut Literal, out: &mut Vec<&'a mut String>) {
    match &mut l.value {
        Some(literal::Value::Scalar(s)) => match &mut s.value {
            Some(scalar::Value::Blob(b)) => out.push(&mut b.uri),
            Some(scalar::Value::StructuredDataset(d)) => out.push(&mut d.uri),
            Some(scalar::Value::Union(u)) => {
                if let Some(v) = u.value.as_deref_mut() {
                    uris(v, out)
                }
            }
            _ => {}
        },
        Some(literal::Value::Collection(c)) => c.literals.iter_mut().for_each(|l| uris(l, out)),
        Some(literal::Value::Map(m)) => m.literals.values_mut().for_each(|l| uris(l, out)),
        _ => {}
    }
}

/// Upload every local file or directory `inputs` names and point them at the uploads; the
/// number of files uploaded.
pub async fn upload_local_inputs(
    client: &AdminClient,
    project: &str,
    domain: &str,
    inputs: &mut LiteralMap,
) -> Result<usize, LocalDataError> {
    let mut count = 0;
    for value in inputs.literals.values_mut() {
        let mut found = Vec::new();
        uris(value, &mut found);
        for uri in found {
            let Some(path) = local_path(uri) else {
                continue;
            };
            let read = |p: &Path| {
                std::fs::read(p).map_err(|source| LocalDataError::Read {
                    path: p.to_path_buf(),
                    source,
                })
            };
            if path.is_dir() {
                let files = files_under(&path).map_err(|source| LocalDataError::Read {
                    path: path.clone(),
                    source,
                })?;
                // One root per directory content, so its files share a prefix: the new URI.
                let mut h = md5::Md5::new();
                let mut contents = Vec::new();
                for rel in &files {
                    let bytes = read(&path.join(rel))?;
                    h.update(rel.as_bytes());
                    h.update(md5::Md5::digest(&bytes));
                    contents.push((rel, bytes));
                }
                let root: String = h
                    .finalize()
                    .iter()
                    .take(16)
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let mut prefix = None;
                for (rel, bytes) in contents {
                    let native = upload_under(client, project, domain, &root, rel, bytes).await?;
                    prefix = native.strip_suffix(rel.as_str()).map(str::to_string);
                    count += 1;
                }
                // An empty directory is an empty prefix of its own.
                *uri = prefix
                    .map(|p| p.trim_end_matches('/').to_string())
                    .unwrap_or_else(|| uri.clone());
            } else {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_else(|| "file".into());
                *uri = upload_bytes(client, project, domain, &name, read(&path)?).await?;
                count += 1;
            }
        }
    }
    Ok(count)
}

/// The files under `dir`, as relative paths with `/`, in a stable order.
fn files_under(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let p = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push(
                    rel.components()
                        .map(|c| c.as_os_str().to_string_lossy().to_string())
                        .collect::<Vec<_>>()
                        .join("/"),
                );
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_uploaded() {
        assert_eq!(local_path("file:///tmp/x"), Some(PathBuf::from("/tmp/x")));
        assert_eq!(local_path("/tmp/x"), Some(PathBuf::from("/tmp/x")));
        assert_eq!(local_path("data/x.csv"), Some(PathBuf::from("data/x.csv")));
        assert_eq!(local_path("s3://bucket/x"), None);
        assert_eq!(local_path("https://example.com/x.csv"), None);
    }

    #[test]
    fn directories_list_their_files_relative_and_sorted() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("b.txt"), "b").unwrap();
        std::fs::write(d.path().join("sub/a.txt"), "a").unwrap();
        assert_eq!(files_under(d.path()).unwrap(), ["b.txt", "sub/a.txt"]);
    }
}
