//! Blob uploads: monolithic (`POST ?digest=`), chunked sessions (`POST` → `PATCH`… → `PUT
//! ?digest=`), and cross-repository mounts (`POST ?mount=&from=`).
//!
//! Bodies are streamed to a temporary file and hashed as they arrive (never held whole in
//! memory: layers are hundreds of MB). Sessions live in memory: a restarted sandbox forgets them,
//! and clients start the upload over, as they do when a registry loses one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use super::routes::{internal, ApiError, Code, Query};
use super::storage::random_id;
use super::Registry;
use crate::store::now_nanos;

/// A fresh session writing to `path` (for the collector's tests).
#[cfg(test)]
pub(super) fn test_session(path: PathBuf) -> Session {
    Session {
        path,
        offset: 0,
        hasher: Sha256::new(),
        closed: false,
    }
}

/// One upload session.
#[derive(Debug)]
pub(super) struct Session {
    path: PathBuf,
    /// Bytes received so far.
    offset: u64,
    /// The SHA-256 of those bytes, continued chunk by chunk.
    hasher: Sha256,
    /// Finished, cancelled or expired: a request that waited behind that for the lock finds the
    /// file gone and must not write a new one.
    closed: bool,
}

#[derive(Debug)]
struct Entry {
    repo: String,
    /// Unix nanoseconds of the last request on it.
    touched: AtomicI64,
    /// Requests on one session run one at a time (chunks must land in order).
    state: tokio::sync::Mutex<Session>,
}

/// The open upload sessions, by id.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Arc<Entry>>>,
}

impl Sessions {
    fn get(&self, id: &str) -> Option<Arc<Entry>> {
        let e = self
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned();
        if let Some(e) = &e {
            e.touched.store(now_nanos(), Ordering::Relaxed);
        }
        e
    }

    pub(super) fn insert(&self, id: String, repo: String, session: Session) {
        let entry = Arc::new(Entry {
            repo,
            touched: AtomicI64::new(now_nanos()),
            state: tokio::sync::Mutex::new(session),
        });
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, entry);
    }

    fn remove(&self, id: &str) -> Option<Arc<Entry>> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
    }

    /// Was any session used within `window`?
    pub fn active_within(&self, window: Duration) -> bool {
        let since =
            now_nanos().saturating_sub(i64::try_from(window.as_nanos()).unwrap_or(i64::MAX));
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .any(|e| e.touched.load(Ordering::Relaxed) >= since)
    }

    /// Drop the sessions idle for longer than `idle`, with their files; how many.
    pub async fn expire(&self, idle: Duration) -> usize {
        let since = now_nanos().saturating_sub(i64::try_from(idle.as_nanos()).unwrap_or(i64::MAX));
        let stale: Vec<Arc<Entry>> = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            let ids: Vec<String> = map
                .iter()
                .filter(|(_, e)| e.touched.load(Ordering::Relaxed) < since)
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter().filter_map(|id| map.remove(id)).collect()
        };
        for e in &stale {
            let mut s = e.state.lock().await;
            s.closed = true;
            let _ = tokio::fs::remove_file(&s.path).await;
        }
        stale.len()
    }
}

fn location(repo: &str, id: &str) -> String {
    format!("/v2/{repo}/blobs/uploads/{id}")
}

/// `Range: 0-<last byte>` as distribution sends it (`0-0` before the first byte).
fn range(offset: u64) -> String {
    format!("0-{}", offset.saturating_sub(1))
}

fn progress(status: StatusCode, repo: &str, id: &str, offset: u64) -> Response {
    (
        status,
        [
            (header::LOCATION, location(repo, id)),
            (header::RANGE, range(offset)),
            (
                header::HeaderName::from_static("docker-upload-uuid"),
                id.to_string(),
            ),
            (header::CONTENT_LENGTH, "0".to_string()),
        ],
    )
        .into_response()
}

/// 201 for a blob now in `repo`.
fn created(repo: &str, digest: &str) -> Response {
    (
        StatusCode::CREATED,
        [
            (header::LOCATION, format!("/v2/{repo}/blobs/{digest}")),
            (
                header::HeaderName::from_static("docker-content-digest"),
                digest.to_string(),
            ),
            (header::CONTENT_LENGTH, "0".to_string()),
        ],
    )
        .into_response()
}

/// Append `body` to the file at `path`, feeding `hasher`; returns the bytes written. `offset`
/// follows every chunk written, so a broken connection leaves a consistent session.
async fn append(
    path: &Path,
    body: Body,
    hasher: &mut Sha256,
    offset: &mut u64,
) -> Result<(), ApiError> {
    let mut file = tokio::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .await
        .map_err(|e| internal(format!("cannot open the upload file: {e}")))?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::BlobUploadInvalid,
                format!("the upload's body could not be read: {e}"),
            )
        })?;
        file.write_all(&chunk)
            .await
            .map_err(|e| internal(format!("cannot write the upload file: {e}")))?;
        hasher.update(&chunk);
        *offset += chunk.len() as u64;
    }
    file.flush()
        .await
        .map_err(|e| internal(format!("cannot write the upload file: {e}")))?;
    Ok(())
}

/// `Content-Range: <start>-<end>` of a chunk: it must start where the session is (else 416).
fn check_content_range(
    headers: &HeaderMap,
    repo: &str,
    id: &str,
    offset: u64,
) -> Result<(), Response> {
    let Some(value) = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    let value = value
        .trim()
        .trim_start_matches("bytes")
        .trim_start_matches([' ', '=']);
    let parsed = value
        .split_once('-')
        .and_then(|(a, b)| Some((a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?)));
    let fits = match parsed {
        Some((start, end)) => {
            start == offset
                && end >= start
                && headers
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_none_or(|len| len == end - start + 1)
        }
        None => false,
    };
    if fits {
        return Ok(());
    }
    let mut r = ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        Code::BlobUploadInvalid,
        format!(
            "Content-Range `{value}` does not continue the upload, which has {offset} bytes (next chunk starts at {offset})"
        ),
    )
    .into_response();
    let h = r.headers_mut();
    if let (Ok(l), Ok(rg)) = (location(repo, id).parse(), range(offset).parse()) {
        h.insert(header::LOCATION, l);
        h.insert(header::RANGE, rg);
    }
    Err(r)
}

impl Registry {
    /// Move a finished upload into place as `digest` and link it into `repo`.
    async fn commit(
        self: &Arc<Self>,
        repo: &str,
        tmp: PathBuf,
        digest: &str,
        size: u64,
    ) -> Result<(), ApiError> {
        let _shared = self.gate.read().await;
        let (repo, digest) = (repo.to_string(), digest.to_string());
        super::routes::blocking(self, move |me| {
            me.storage
                .place(&tmp, &digest)
                .map_err(|e| internal(format!("cannot store blob {digest}: {e}")))?;
            Ok(me.storage.commit_blob(&repo, &digest, size)?)
        })
        .await
    }

    /// `POST /v2/<name>/blobs/uploads/`.
    pub(super) async fn start_upload(
        self: &Arc<Self>,
        repo: &str,
        query: &Query,
        body: Body,
    ) -> Result<Response, ApiError> {
        if let Some(mount) = query.get("mount") {
            let digest = super::routes::check_digest(mount)?;
            if let Some(from) = query.get("from").filter(|f| super::routes::valid_name(f)) {
                let (r, f, d) = (repo.to_string(), from.to_string(), digest.clone());
                let mounted =
                    super::routes::blocking(self, move |me| Ok(me.storage.mount(&r, &f, &d)?))
                        .await?;
                if mounted.is_some() {
                    return Ok(created(repo, &digest));
                }
            }
            // Nothing to mount: the spec's fallback is an ordinary session.
        } else if let Some(digest) = query.get("digest") {
            let digest = super::routes::check_digest(digest)?;
            let tmp = self.storage.tmp_dir().join(random_id());
            let mut hasher = Sha256::new();
            let mut size = 0;
            let written = append(&tmp, body, &mut hasher, &mut size).await;
            if let Err(e) = written {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e);
            }
            let actual = format!("sha256:{:x}", hasher.finalize());
            if actual != digest {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(digest_mismatch(&digest, &actual));
            }
            self.commit(repo, tmp, &digest, size).await?;
            return Ok(created(repo, &digest));
        }
        let id = random_id();
        let path = self.storage.tmp_dir().join(&id);
        tokio::fs::File::create(&path)
            .await
            .map_err(|e| internal(format!("cannot start an upload: {e}")))?;
        self.sessions.insert(
            id.clone(),
            repo.to_string(),
            Session {
                path,
                offset: 0,
                hasher: Sha256::new(),
                closed: false,
            },
        );
        Ok(progress(StatusCode::ACCEPTED, repo, &id, 0))
    }

    fn session(&self, repo: &str, id: &str) -> Result<Arc<Entry>, ApiError> {
        let entry = self.sessions.get(id).ok_or_else(|| unknown(repo, id))?;
        if entry.repo != repo {
            return Err(unknown(repo, id));
        }
        Ok(entry)
    }

    /// `PATCH /v2/<name>/blobs/uploads/<id>`: one more chunk.
    pub(super) async fn patch_upload(
        self: &Arc<Self>,
        repo: &str,
        id: &str,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Response, ApiError> {
        let entry = self.session(repo, id)?;
        let mut s = entry.state.lock().await;
        if s.closed {
            return Err(unknown(repo, id));
        }
        if let Err(r) = check_content_range(headers, repo, id, s.offset) {
            return Ok(r);
        }
        let s = &mut *s;
        append(&s.path, body, &mut s.hasher, &mut s.offset).await?;
        Ok(progress(StatusCode::ACCEPTED, repo, id, s.offset))
    }

    /// `GET /v2/<name>/blobs/uploads/<id>`: how far it got.
    pub(super) async fn upload_status(
        self: &Arc<Self>,
        repo: &str,
        id: &str,
    ) -> Result<Response, ApiError> {
        let entry = self.session(repo, id)?;
        let s = entry.state.lock().await;
        Ok(progress(StatusCode::NO_CONTENT, repo, id, s.offset))
    }

    /// `DELETE /v2/<name>/blobs/uploads/<id>`: cancel.
    pub(super) async fn cancel_upload(
        self: &Arc<Self>,
        repo: &str,
        id: &str,
    ) -> Result<Response, ApiError> {
        self.session(repo, id)?;
        if let Some(entry) = self.sessions.remove(id) {
            let mut s = entry.state.lock().await;
            s.closed = true;
            let _ = tokio::fs::remove_file(&s.path).await;
        }
        Ok((StatusCode::NO_CONTENT, [(header::CONTENT_LENGTH, "0")]).into_response())
    }

    /// `PUT /v2/<name>/blobs/uploads/<id>?digest=`: the last chunk (if any), then the digest is
    /// checked and the blob stored.
    pub(super) async fn finish_upload(
        self: &Arc<Self>,
        repo: &str,
        id: &str,
        query: &Query,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Response, ApiError> {
        let entry = self.session(repo, id)?;
        let digest = query.get("digest").ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::DigestInvalid,
                "finishing an upload needs `?digest=sha256:<hex>`",
            )
        })?;
        let digest = super::routes::check_digest(digest)?;
        let mut s = entry.state.lock().await;
        if s.closed {
            return Err(unknown(repo, id));
        }
        if let Err(r) = check_content_range(headers, repo, id, s.offset) {
            return Ok(r);
        }
        {
            let s = &mut *s;
            append(&s.path, body, &mut s.hasher, &mut s.offset).await?;
        }
        let actual = format!("sha256:{:x}", s.hasher.clone().finalize());
        // Finished either way: a wrong digest ends the session, as in distribution.
        self.sessions.remove(id);
        s.closed = true;
        if actual != digest {
            let _ = tokio::fs::remove_file(&s.path).await;
            return Err(digest_mismatch(&digest, &actual));
        }
        self.commit(repo, s.path.clone(), &digest, s.offset).await?;
        Ok(created(repo, &digest))
    }
}

fn unknown(repo: &str, id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        Code::BlobUploadUnknown,
        format!("no upload `{id}` in repository `{repo}` (finished, cancelled, or lost when the sandbox restarted)"),
    )
}

fn digest_mismatch(claimed: &str, actual: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        Code::DigestInvalid,
        format!("the uploaded content has digest {actual}, not {claimed}"),
    )
    .detail(serde_json::json!({ "digest": claimed, "actual": actual }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chunk that waited for the session while it was being finished writes nothing: the
    /// finished blob's temporary file is not recreated behind it.
    #[tokio::test(flavor = "current_thread")]
    async fn a_chunk_that_waited_behind_the_end_of_its_session_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::store::Store::open(dir.path()).unwrap());
        let r = Arc::new(Registry::open(dir.path(), store, Duration::ZERO).unwrap());
        let started = r
            .start_upload("a/b", &Query::default(), Body::empty())
            .await
            .unwrap();
        let location = started.headers()[header::LOCATION].to_str().unwrap();
        let id = location.rsplit('/').next().unwrap().to_string();
        let entry = r.sessions.get(&id).unwrap();

        // The session is busy (as while a PUT finishes it); a PATCH arrives and waits for it.
        let busy = entry.state.lock().await;
        let late = tokio::spawn({
            let (r, id) = (r.clone(), id.clone());
            async move {
                r.patch_upload("a/b", &id, &HeaderMap::new(), Body::from("late chunk"))
                    .await
            }
        });
        // On this one thread, the PATCH runs until it waits for the lock.
        tokio::task::yield_now().await;
        let path = busy.path.clone();
        // The PUT ends the session as finish_upload does: the file moves away.
        r.sessions.remove(&id);
        let mut busy = busy;
        busy.closed = true;
        std::fs::remove_file(&path).unwrap();
        drop(busy);

        let refused = late.await.unwrap().unwrap_err();
        assert_eq!(refused.into_response().status(), StatusCode::NOT_FOUND);
        assert!(
            !path.exists(),
            "the late chunk recreated {}",
            path.display()
        );
    }
}
