//! Garbage collection: a blob is deleted when no manifest is it or references it, and no
//! repository link to it was touched (uploaded, mounted, HEAD-checked) within the grace period.
//!
//! A push uploads layers first and names them in a manifest last; the grace period and the rule
//! "no collection while an upload session was active within the grace period" keep a push in
//! progress whole. Collection holds the registry's gate exclusively, so no blob file is renamed
//! into place (or indexed) while it decides and deletes. Untagged manifests are kept (as CNCF
//! distribution keeps them unless told otherwise): a client may have pushed by digest.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use rusqlite::params;

use super::Registry;
use crate::store::{now_nanos, StoreError};

/// What one collection did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Digests of the blobs deleted (index rows and files).
    pub deleted: Vec<String>,
    /// Files found without an index row (left by a crash or a refused manifest) and deleted.
    pub orphans: usize,
    /// Upload sessions idle for too long, dropped with their files.
    pub expired_sessions: usize,
    /// Nothing was collected because an upload is in progress.
    pub deferred: bool,
}

/// Errors of a collection (the next one retries).
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("registry garbage collection failed: {0}")]
    Join(String),
}

impl Registry {
    /// Collect now, with the registry's grace period.
    pub async fn collect_garbage(self: &Arc<Self>) -> Result<GcReport, GcError> {
        self.collect_garbage_with(self.grace).await
    }

    /// Collect now, keeping what was touched within `grace`.
    pub async fn collect_garbage_with(
        self: &Arc<Self>,
        grace: Duration,
    ) -> Result<GcReport, GcError> {
        let mut report = GcReport {
            // Sessions idle for long are abandoned pushes (a client that died mid-upload).
            expired_sessions: self
                .sessions
                .expire(grace.max(Duration::from_secs(3600)))
                .await,
            ..GcReport::default()
        };
        if self.sessions.active_within(grace) {
            report.deferred = true;
            return Ok(report);
        }
        let _exclusive = self.gate.write().await;
        let me = self.clone();
        let (deleted, orphans) = tokio::task::spawn_blocking(move || me.sweep(grace))
            .await
            .map_err(|e| GcError::Join(e.to_string()))??;
        report.deleted = deleted;
        report.orphans = orphans;
        Ok(report)
    }

    /// The collection proper (blocking; the caller holds the gate exclusively).
    fn sweep(&self, grace: Duration) -> Result<(Vec<String>, usize), GcError> {
        let cutoff =
            now_nanos().saturating_sub(i64::try_from(grace.as_nanos()).unwrap_or(i64::MAX));
        let dead = self.storage.store().write(|tx| {
            let dead = {
                let mut q = tx.prepare(
                    "SELECT b.digest FROM registry_blobs b
                     WHERE b.created_at < ?1
                       AND NOT EXISTS (SELECT 1 FROM registry_manifests m WHERE m.digest = b.digest)
                       AND NOT EXISTS (SELECT 1 FROM registry_refs r WHERE r.digest = b.digest)
                       AND NOT EXISTS (SELECT 1 FROM registry_links l
                                       WHERE l.digest = b.digest AND l.touched_at >= ?1)",
                )?;
                let rows = q
                    .query_map(params![cutoff], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                rows
            };
            for d in &dead {
                tx.execute("DELETE FROM registry_blobs WHERE digest = ?1", params![d])?;
                tx.execute("DELETE FROM registry_links WHERE digest = ?1", params![d])?;
            }
            Ok(dead)
        })?;
        for d in &dead {
            // Already gone is fine: that is the state wanted.
            let _ = std::fs::remove_file(self.storage.blob_path(d));
        }
        // Files without a row: every writer indexes its file under the shared gate, so none is
        // between rename and insert now.
        let known: HashSet<String> = self.storage.store().read(|c| {
            let mut q = c.prepare("SELECT digest FROM registry_blobs")?;
            let rows = q
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<HashSet<_>, _>>()?;
            Ok(rows)
        })?;
        let mut orphans = 0;
        let top = self.storage.root().join("blobs").join("sha256");
        for dir in std::fs::read_dir(&top).into_iter().flatten().flatten() {
            for file in std::fs::read_dir(dir.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = file.file_name().to_string_lossy().into_owned();
                if !known.contains(&format!("sha256:{name}"))
                    && std::fs::remove_file(file.path()).is_ok()
                {
                    orphans += 1;
                }
            }
            // Empty fan-out directories are removed; a non-empty one refuses, which is fine.
            let _ = std::fs::remove_dir(dir.path());
        }
        Ok((dead, orphans))
    }
}

/// Run collection at once, then every `period` and whenever a delete asks, for as long as the
/// registry lives (the task holds it weakly, so dropping the router ends it).
pub fn spawn(registry: &Arc<Registry>, period: Duration) {
    let weak: Weak<Registry> = Arc::downgrade(registry);
    let wake = registry.wake.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = wake.notified() => {}
            }
            let Some(registry) = weak.upgrade() else {
                return;
            };
            // A failure is retried by the next run; there is no one to tell (the library never
            // prints) and nothing is lost by waiting.
            let _ = registry.collect_garbage().await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::storage::{ManifestRow, References};

    fn digest(bytes: &[u8]) -> String {
        use sha2::{Digest as _, Sha256};
        format!("sha256:{:x}", Sha256::digest(bytes))
    }

    /// Store `bytes` as a blob of `repo`, as a finished upload does.
    fn blob(r: &Registry, repo: &str, bytes: &[u8]) -> String {
        let d = digest(bytes);
        let tmp = r
            .storage
            .tmp_dir()
            .join(crate::registry::storage::random_id());
        std::fs::write(&tmp, bytes).unwrap();
        r.storage.place(&tmp, &d).unwrap();
        r.storage.commit_blob(repo, &d, bytes.len() as u64).unwrap();
        d
    }

    fn manifest(r: &Registry, repo: &str, tag: &str, blobs: &[&str]) -> String {
        let bytes = format!("{{\"tag\":\"{tag}\",\"blobs\":{blobs:?}}}").into_bytes();
        let d = blob(r, repo, &bytes);
        let row = ManifestRow {
            digest: d.clone(),
            media_type: crate::registry::manifests::OCI_MANIFEST.into(),
            size: bytes.len() as u64,
        };
        let refs = References {
            blobs: blobs.iter().map(|b| b.to_string()).collect(),
            manifests: Vec::new(),
        };
        r.storage
            .put_manifest(repo, &row, &refs, Some(tag))
            .unwrap()
            .unwrap();
        d
    }

    fn open() -> (tempfile::TempDir, Arc<Registry>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::store::Store::open(dir.path()).unwrap());
        let r = Registry::open(dir.path(), store, Duration::ZERO).unwrap();
        (dir, Arc::new(r))
    }

    #[tokio::test]
    async fn collection_deletes_unreferenced_blobs_and_keeps_shared_ones() {
        let (_dir, r) = open();
        let shared = blob(&r, "a/b", b"shared layer");
        let only_one = blob(&r, "a/b", b"layer of one");
        let config = blob(&r, "a/b", b"config");
        let stray = blob(&r, "a/b", b"uploaded, never referenced");
        let one = manifest(&r, "a/b", "one", &[&config, &shared, &only_one]);
        let _two = manifest(&r, "a/b", "two", &[&config, &shared]);

        let report = r.collect_garbage().await.unwrap();
        assert_eq!(report.deleted, vec![stray.clone()]);
        assert!(!r.storage.blob_path(&stray).exists());
        assert!(r.storage.blob_path(&shared).exists());

        assert!(r.storage.delete_manifest("a/b", &one).unwrap());
        let mut deleted = r.collect_garbage().await.unwrap().deleted;
        deleted.sort();
        let mut expected = vec![one.clone(), only_one.clone()];
        expected.sort();
        assert_eq!(deleted, expected);
        for kept in [&shared, &config] {
            assert!(r.storage.blob_path(kept).exists(), "{kept} was shared");
        }
        assert_eq!(
            r.storage.tags("a/b", None, 10).unwrap(),
            Some(vec!["two".to_string()])
        );
    }

    #[tokio::test]
    async fn blobs_touched_within_the_grace_period_and_open_uploads_are_kept() {
        let (_dir, r) = open();
        let fresh = blob(&r, "x", b"pushed a moment ago");
        let report = r
            .collect_garbage_with(Duration::from_secs(600))
            .await
            .unwrap();
        assert!(report.deleted.is_empty());
        assert!(r.storage.blob_path(&fresh).exists());

        // An upload in progress defers collection altogether.
        r.sessions.insert(
            "s".into(),
            "x".into(),
            super::super::uploads::test_session(r.storage.tmp_dir().join("s")),
        );
        let report = r
            .collect_garbage_with(Duration::from_secs(600))
            .await
            .unwrap();
        assert!(report.deferred);
        // With no grace at all the open session no longer protects anything.
        let report = r.collect_garbage_with(Duration::ZERO).await.unwrap();
        assert!(!report.deferred);
        assert_eq!(report.deleted, vec![fresh]);
    }

    #[tokio::test]
    async fn files_without_an_index_row_are_swept() {
        let (_dir, r) = open();
        let d = digest(b"orphan");
        let tmp = r.storage.tmp_dir().join("t");
        std::fs::write(&tmp, b"orphan").unwrap();
        r.storage.place(&tmp, &d).unwrap();
        let report = r.collect_garbage().await.unwrap();
        assert_eq!(report.orphans, 1);
        assert!(!r.storage.blob_path(&d).exists());
    }
}
