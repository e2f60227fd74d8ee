//! Where the registry keeps things: each blob (layers, configs, manifests alike) once, as a file
//! named by its digest (`<data>/registry/blobs/sha256/<first two hex>/<hex>`), and an index in
//! `sandbox.db` saying which repository links which blob, which manifests exist, what each one
//! references, and the tags.
//!
//! The index lives in SQLite rather than in link files (as CNCF distribution keeps it) because a
//! manifest's "are all its blobs here?" check and its insertion must be one atomic step, and
//! because garbage collection is then one query instead of a walk over every repository.
//!
//! Files are written to a temporary name in the same file system and renamed into place, so a
//! reader sees a blob whole or not at all.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{params, OptionalExtension};

use crate::store::{now_nanos, Store, StoreError};

/// The subdirectory of the data directory the registry owns.
pub const REGISTRY_DIR: &str = "registry";

/// A stored manifest, as `GET /v2/<name>/manifests/<ref>` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRow {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

/// Why a manifest cannot be stored: the first thing it references that is not in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// A layer or config blob.
    Blob(String),
    /// A child manifest of an index or manifest list.
    Manifest(String),
}

/// What a manifest references, split by kind (their existence is checked differently).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    pub blobs: Vec<String>,
    pub manifests: Vec<String>,
}

/// The registry's files and index.
#[derive(Debug)]
pub struct Storage {
    root: PathBuf,
    store: Arc<Store>,
}

impl Storage {
    /// Open (creating) `<data_dir>/registry`.
    pub fn open(data_dir: &Path, store: Arc<Store>) -> std::io::Result<Storage> {
        let root = data_dir.join(REGISTRY_DIR);
        std::fs::create_dir_all(root.join("blobs").join("sha256"))?;
        std::fs::create_dir_all(root.join("tmp"))?;
        Ok(Storage { root, store })
    }

    /// The registry's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The database (blocking: call from `spawn_blocking`).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Where temporary files (uploads in progress) go: the same file system as the blobs, so
    /// that committing one is a rename.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The file of a blob. `digest` must have been validated (`sha256:<64 hex>`).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.root
            .join("blobs")
            .join("sha256")
            .join(&hex[..2.min(hex.len())])
            .join(hex)
    }

    /// Move a finished temporary file into place as `digest` (an existing file with that name
    /// already holds the same bytes: the temporary one is dropped).
    pub fn place(&self, tmp: &Path, digest: &str) -> std::io::Result<()> {
        let path = self.blob_path(digest);
        if path.exists() {
            return std::fs::remove_file(tmp);
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::rename(tmp, &path)
    }

    /// Record a blob placed by [`Storage::place`] and link it into `repo` (a fresh link: the
    /// blob is protected from collection for the grace period, until a manifest names it).
    pub fn commit_blob(&self, repo: &str, digest: &str, size: u64) -> Result<(), StoreError> {
        self.store.write(|tx| {
            let now = now_nanos();
            tx.execute(
                "INSERT OR IGNORE INTO registry_blobs (digest, size, created_at) VALUES (?1, ?2, ?3)",
                params![digest, size as i64, now],
            )?;
            tx.execute(
                "INSERT INTO registry_links (repo, digest, touched_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (repo, digest) DO UPDATE SET touched_at = excluded.touched_at",
                params![repo, digest, now],
            )?;
            Ok(())
        })
    }

    /// The size of a blob linked into `repo`, if it is.
    pub fn blob_in_repo(&self, repo: &str, digest: &str) -> Result<Option<u64>, StoreError> {
        self.store.read(|c| {
            Ok(c.query_row(
                "SELECT b.size FROM registry_blobs b JOIN registry_links l ON l.digest = b.digest
                 WHERE l.repo = ?1 AND l.digest = ?2",
                params![repo, digest],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(|s| s as u64))
        })
    }

    /// Like [`Storage::blob_in_repo`], and marks the link as used now: a client that asks
    /// whether a blob is there (docker does, before skipping its upload) is pushing a manifest
    /// that names it soon, so the blob must outlive the grace period from now.
    pub fn touch_blob(&self, repo: &str, digest: &str) -> Result<Option<u64>, StoreError> {
        self.store.write(|tx| {
            let size = tx
                .query_row(
                    "SELECT b.size FROM registry_blobs b JOIN registry_links l ON l.digest = b.digest
                     WHERE l.repo = ?1 AND l.digest = ?2",
                    params![repo, digest],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?;
            if size.is_some() {
                tx.execute(
                    "UPDATE registry_links SET touched_at = ?3 WHERE repo = ?1 AND digest = ?2",
                    params![repo, digest, now_nanos()],
                )?;
            }
            Ok(size.map(|s| s as u64))
        })
    }

    /// Cross-repository mount: link `digest` into `repo` when `from` links it. Returns its size,
    /// or None when there is nothing to mount.
    pub fn mount(&self, repo: &str, from: &str, digest: &str) -> Result<Option<u64>, StoreError> {
        self.store.write(|tx| {
            let size = tx
                .query_row(
                    "SELECT b.size FROM registry_blobs b JOIN registry_links l ON l.digest = b.digest
                     WHERE l.repo = ?1 AND l.digest = ?2",
                    params![from, digest],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?;
            if size.is_some() {
                tx.execute(
                    "INSERT INTO registry_links (repo, digest, touched_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (repo, digest) DO UPDATE SET touched_at = excluded.touched_at",
                    params![repo, digest, now_nanos()],
                )?;
            }
            Ok(size.map(|s| s as u64))
        })
    }

    /// Unlink a blob from `repo` (`DELETE /v2/<name>/blobs/<digest>`); the file goes at the next
    /// collection if nothing else keeps it. False when it was not linked.
    pub fn unlink_blob(&self, repo: &str, digest: &str) -> Result<bool, StoreError> {
        self.store.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM registry_links WHERE repo = ?1 AND digest = ?2",
                params![repo, digest],
            )? > 0)
        })
    }

    /// Store a manifest whose bytes were placed as `digest`: every blob it references must be
    /// linked into `repo`, every child manifest stored in `repo`. With `tag`, point it there.
    /// Checked and written in one transaction, so a collection cannot slip in between.
    pub fn put_manifest(
        &self,
        repo: &str,
        m: &ManifestRow,
        refs: &References,
        tag: Option<&str>,
    ) -> Result<Result<(), Missing>, StoreError> {
        self.store.write(|tx| {
            for blob in &refs.blobs {
                let there: Option<i64> = tx
                    .query_row(
                        "SELECT 1 FROM registry_blobs b JOIN registry_links l ON l.digest = b.digest
                         WHERE l.repo = ?1 AND l.digest = ?2",
                        params![repo, blob],
                        |r| r.get(0),
                    )
                    .optional()?;
                if there.is_none() {
                    return Ok(Err(Missing::Blob(blob.clone())));
                }
            }
            for child in &refs.manifests {
                let there: Option<i64> = tx
                    .query_row(
                        "SELECT 1 FROM registry_manifests WHERE repo = ?1 AND digest = ?2",
                        params![repo, child],
                        |r| r.get(0),
                    )
                    .optional()?;
                if there.is_none() {
                    return Ok(Err(Missing::Manifest(child.clone())));
                }
            }
            let now = now_nanos();
            tx.execute(
                "INSERT OR IGNORE INTO registry_blobs (digest, size, created_at) VALUES (?1, ?2, ?3)",
                params![m.digest, m.size as i64, now],
            )?;
            let fresh = tx.execute(
                "INSERT OR IGNORE INTO registry_manifests (repo, digest, media_type, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![repo, m.digest, m.media_type, now],
            )? > 0;
            if fresh {
                for d in refs.blobs.iter().chain(&refs.manifests) {
                    tx.execute(
                        "INSERT OR IGNORE INTO registry_refs (repo, manifest, digest) VALUES (?1, ?2, ?3)",
                        params![repo, m.digest, d],
                    )?;
                }
            }
            if let Some(tag) = tag {
                tx.execute(
                    "INSERT INTO registry_tags (repo, tag, digest, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (repo, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at",
                    params![repo, tag, m.digest, now],
                )?;
            }
            Ok(Ok(()))
        })
    }

    /// The manifest a tag or digest names in `repo`.
    pub fn manifest(&self, repo: &str, reference: &str) -> Result<Option<ManifestRow>, StoreError> {
        let by_digest = reference.contains(':');
        self.store.read(|c| {
            let sql = if by_digest {
                "SELECT m.digest, m.media_type, b.size FROM registry_manifests m
                 JOIN registry_blobs b ON b.digest = m.digest
                 WHERE m.repo = ?1 AND m.digest = ?2"
            } else {
                "SELECT m.digest, m.media_type, b.size FROM registry_tags t
                 JOIN registry_manifests m ON m.repo = t.repo AND m.digest = t.digest
                 JOIN registry_blobs b ON b.digest = m.digest
                 WHERE t.repo = ?1 AND t.tag = ?2"
            };
            Ok(c.query_row(sql, params![repo, reference], |r| {
                Ok(ManifestRow {
                    digest: r.get(0)?,
                    media_type: r.get(1)?,
                    size: r.get::<_, i64>(2)? as u64,
                })
            })
            .optional()?)
        })
    }

    /// Delete a manifest (by digest: it, what it references and the tags naming it; by tag: the
    /// tag only). False when there was no such thing.
    pub fn delete_manifest(&self, repo: &str, reference: &str) -> Result<bool, StoreError> {
        let by_digest = reference.contains(':');
        self.store.write(|tx| {
            if !by_digest {
                return Ok(tx.execute(
                    "DELETE FROM registry_tags WHERE repo = ?1 AND tag = ?2",
                    params![repo, reference],
                )? > 0);
            }
            let gone = tx.execute(
                "DELETE FROM registry_manifests WHERE repo = ?1 AND digest = ?2",
                params![repo, reference],
            )? > 0;
            tx.execute(
                "DELETE FROM registry_refs WHERE repo = ?1 AND manifest = ?2",
                params![repo, reference],
            )?;
            tx.execute(
                "DELETE FROM registry_tags WHERE repo = ?1 AND digest = ?2",
                params![repo, reference],
            )?;
            Ok(gone)
        })
    }

    /// Up to `n` tags of `repo` after `last`, in lexical order; None when the repository has
    /// no manifests at all (it is unknown).
    pub fn tags(
        &self,
        repo: &str,
        last: Option<&str>,
        n: usize,
    ) -> Result<Option<Vec<String>>, StoreError> {
        self.store.read(|c| {
            let known: Option<i64> = c
                .query_row(
                    "SELECT 1 FROM registry_manifests WHERE repo = ?1 LIMIT 1",
                    params![repo],
                    |r| r.get(0),
                )
                .optional()?;
            if known.is_none() {
                return Ok(None);
            }
            let mut q = c.prepare(
                "SELECT tag FROM registry_tags WHERE repo = ?1 AND tag > ?2 ORDER BY tag LIMIT ?3",
            )?;
            let tags = q
                .query_map(params![repo, last.unwrap_or(""), n as i64], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(Some(tags))
        })
    }

    /// Up to `n` repositories (those with a manifest) after `last`, in lexical order.
    pub fn repositories(&self, last: Option<&str>, n: usize) -> Result<Vec<String>, StoreError> {
        self.store.read(|c| {
            let mut q = c.prepare(
                "SELECT DISTINCT repo FROM registry_manifests WHERE repo > ?1 ORDER BY repo LIMIT ?2",
            )?;
            let repos = q
                .query_map(params![last.unwrap_or(""), n as i64], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(repos)
        })
    }
}

/// A random name for a temporary file or an upload session (uniqueness, not secrecy).
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        let seed = now_nanos().to_le_bytes();
        bytes
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = seed[i % 8].wrapping_add(i as u8));
    }
    data_encoding::HEXLOWER.encode(&bytes)
}
