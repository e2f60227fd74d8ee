//! Manifests by tag and by digest: Docker v2 schema 2 manifests and manifest lists, OCI image
//! manifests and indexes. Stored byte for byte as pushed (their digest is the SHA-256 of those
//! bytes, which signatures and `image@sha256:…` references depend on) with the media type they
//! were pushed with, and refused when a blob or child manifest they name is not in the repository.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use sha2::{Digest as _, Sha256};

use super::routes::{blocking, check_digest, internal, valid_tag, ApiError, Code};
use super::storage::{random_id, ManifestRow, Missing, References};
use super::Registry;

/// Docker's image manifest (schema 2).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker's manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Largest manifest accepted (distribution's limit too): manifests are small JSON documents.
const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, Code::ManifestInvalid, message)
}

/// The media type of a manifest (its `Content-Type`, else its own `mediaType`, else what its
/// shape says) and what it references.
pub fn parse(content_type: Option<&str>, bytes: &[u8]) -> Result<(String, References), ApiError> {
    let doc: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("the manifest is not JSON: {e}")))?;
    let declared = doc.get("mediaType").and_then(|v| v.as_str());
    let header_type = content_type
        .map(|c| c.split(';').next().unwrap_or_default().trim())
        .filter(|c| !c.is_empty() && *c != "application/json" && *c != "application/octet-stream");
    let media_type = header_type
        .or(declared)
        .map(str::to_string)
        .unwrap_or_else(|| {
            if doc.get("manifests").is_some() {
                OCI_INDEX.to_string()
            } else {
                OCI_MANIFEST.to_string()
            }
        });
    if let (Some(h), Some(d)) = (header_type, declared) {
        if h != d {
            return Err(invalid(format!(
                "the manifest says it is `{d}` but was sent as `{h}`"
            )));
        }
    }
    let digest_of = |v: &serde_json::Value, what: &str| -> Result<String, ApiError> {
        let d = v
            .get("digest")
            .and_then(|d| d.as_str())
            .ok_or_else(|| invalid(format!("a {what} descriptor has no digest")))?;
        check_digest(d).map_err(|_| invalid(format!("{what} digest `{d}` is not sha256:<hex>")))
    };
    let mut refs = References::default();
    match media_type.as_str() {
        DOCKER_MANIFEST | OCI_MANIFEST => {
            let config = doc
                .get("config")
                .ok_or_else(|| invalid("the image manifest has no config"))?;
            refs.blobs.push(digest_of(config, "config")?);
            for layer in doc
                .get("layers")
                .and_then(|l| l.as_array())
                .into_iter()
                .flatten()
            {
                // Foreign layers (`urls`: Windows base layers) live elsewhere by design.
                if layer
                    .get("urls")
                    .and_then(|u| u.as_array())
                    .is_some_and(|u| !u.is_empty())
                {
                    continue;
                }
                refs.blobs.push(digest_of(layer, "layer")?);
            }
        }
        DOCKER_MANIFEST_LIST | OCI_INDEX => {
            for m in doc
                .get("manifests")
                .and_then(|l| l.as_array())
                .ok_or_else(|| invalid("the index has no `manifests` list"))?
            {
                refs.manifests.push(digest_of(m, "manifest")?);
            }
        }
        other if other.contains("manifest.v1") => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::ManifestInvalid,
                format!("`{other}` (Docker schema 1) is not supported; push with a current client"),
            ))
        }
        other => {
            return Err(invalid(format!(
                "manifest media type `{other}` is not supported"
            )))
        }
    }
    refs.blobs.sort();
    refs.blobs.dedup();
    refs.manifests.sort();
    refs.manifests.dedup();
    Ok((media_type, refs))
}

/// Does the `Accept` header allow `media_type`? No header, `*/*`, or a header naming no
/// manifest type at all all do; a client that lists manifest types gets only those.
fn acceptable(headers: &HeaderMap, media_type: &str) -> bool {
    let accepted: Vec<String> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.split(';').next().unwrap_or_default().trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    let negotiates = accepted
        .iter()
        .any(|t| t.contains("manifest") || t.contains("image.index"));
    !negotiates || accepted.iter().any(|t| t == "*/*" || t == media_type)
}

fn manifest_unknown(name: &str, reference: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        Code::ManifestUnknown,
        format!("manifest `{reference}` is not in repository `{name}`"),
    )
    .detail(serde_json::json!({ "name": name, "reference": reference }))
}

/// A tag or a digest, validated.
fn check_reference(reference: &str) -> Result<(), ApiError> {
    if reference.contains(':') {
        check_digest(reference).map(|_| ())
    } else if valid_tag(reference) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            Code::ManifestInvalid,
            format!("`{reference}` is neither a tag nor a digest"),
        ))
    }
}

impl Registry {
    /// `GET`/`HEAD /v2/<name>/manifests/<reference>`.
    pub(super) async fn get_manifest(
        self: &Arc<Self>,
        name: &str,
        reference: &str,
        headers: &HeaderMap,
        head: bool,
    ) -> Result<Response, ApiError> {
        check_reference(reference)?;
        let (n, r) = (name.to_string(), reference.to_string());
        let m = blocking(self, move |reg| Ok(reg.storage().manifest(&n, &r)?))
            .await?
            .ok_or_else(|| manifest_unknown(name, reference))?;
        if !acceptable(headers, &m.media_type) {
            return Err(manifest_unknown(name, reference).detail(serde_json::json!({
                "name": name,
                "reference": reference,
                "mediaType": m.media_type,
                "reason": "not among the media types the request accepts",
            })));
        }
        let body = if head {
            Body::empty()
        } else {
            let bytes = tokio::fs::read(self.storage().blob_path(&m.digest))
                .await
                .map_err(|_| manifest_unknown(name, reference))?;
            Body::from(bytes)
        };
        Ok((
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, m.media_type.clone()),
                (header::CONTENT_LENGTH, m.size.to_string()),
                (
                    HeaderName::from_static("docker-content-digest"),
                    m.digest.clone(),
                ),
                (header::ETAG, format!("\"{}\"", m.digest)),
            ],
            body,
        )
            .into_response())
    }

    /// `PUT /v2/<name>/manifests/<reference>`.
    pub(super) async fn put_manifest(
        self: &Arc<Self>,
        name: &str,
        reference: &str,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Response, ApiError> {
        check_reference(reference)?;
        let mut bytes = Vec::new();
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| invalid(format!("the manifest could not be read: {e}")))?;
            if bytes.len() + chunk.len() > MAX_MANIFEST_BYTES {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Code::SizeInvalid,
                    format!("a manifest may have at most {MAX_MANIFEST_BYTES} bytes"),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let (media_type, refs) = parse(content_type, &bytes)?;
        let digest = format!("sha256:{:x}", Sha256::digest(&bytes));
        let tag = if reference.contains(':') {
            if reference != digest {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    Code::DigestInvalid,
                    format!("the manifest's digest is {digest}, not {reference}"),
                )
                .detail(serde_json::json!({ "digest": reference, "actual": digest })));
            }
            None
        } else {
            Some(reference.to_string())
        };
        let row = ManifestRow {
            digest: digest.clone(),
            media_type,
            size: bytes.len() as u64,
        };
        let tmp = self.storage().tmp_dir().join(random_id());
        tokio::fs::write(&tmp, &bytes)
            .await
            .map_err(|e| internal(format!("cannot store the manifest: {e}")))?;
        // The file and its index row under one shared hold of the gate (see `gc`).
        let outcome = {
            let _shared = self.gate.read().await;
            let repo = name.to_string();
            blocking(self, move |reg| {
                reg.storage()
                    .place(&tmp, &row.digest)
                    .map_err(|e| internal(format!("cannot store the manifest: {e}")))?;
                Ok(reg
                    .storage()
                    .put_manifest(&repo, &row, &refs, tag.as_deref())?)
            })
            .await?
        };
        match outcome {
            Ok(()) => Ok((
                StatusCode::CREATED,
                [
                    (header::LOCATION, format!("/v2/{name}/manifests/{digest}")),
                    (HeaderName::from_static("docker-content-digest"), digest),
                    (header::CONTENT_LENGTH, "0".to_string()),
                ],
            )
                .into_response()),
            // The placed file has no index row: the next collection removes it.
            Err(Missing::Blob(d)) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::ManifestBlobUnknown,
                format!("the manifest references blob {d}, which is not in repository `{name}`: push it first"),
            )
            .detail(serde_json::json!({ "digest": d }))),
            Err(Missing::Manifest(d)) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::ManifestUnknown,
                format!("the index references manifest {d}, which is not in repository `{name}`: push it first"),
            )
            .detail(serde_json::json!({ "digest": d }))),
        }
    }

    /// `DELETE /v2/<name>/manifests/<reference>`: by digest the manifest (and its tags), by
    /// tag the tag alone; what becomes unreferenced is collected afterwards.
    pub(super) async fn delete_manifest(
        self: &Arc<Self>,
        name: &str,
        reference: &str,
    ) -> Result<Response, ApiError> {
        check_reference(reference)?;
        let (n, r) = (name.to_string(), reference.to_string());
        let gone = blocking(self, move |reg| {
            Ok(reg.storage().delete_manifest(&n, &r)?)
        })
        .await?;
        if !gone {
            return Err(manifest_unknown(name, reference));
        }
        self.request_gc();
        Ok((StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn image_manifests_reference_config_and_layers_but_not_foreign_layers() {
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": "x", "size": 1, "digest": D1},
            "layers": [
                {"mediaType": "y", "size": 2, "digest": D2},
                {"mediaType": "z", "size": 3, "digest": D1, "urls": ["https://example.com/l"]},
            ]
        });
        let (t, refs) = parse(Some(DOCKER_MANIFEST), m.to_string().as_bytes()).unwrap();
        assert_eq!(t, DOCKER_MANIFEST);
        assert_eq!(refs.blobs, vec![D1.to_string(), D2.to_string()]);
        assert!(refs.manifests.is_empty());
    }

    #[test]
    fn indexes_reference_manifests_and_types_come_from_the_body_when_not_sent() {
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "size": 1, "digest": D2}]
        });
        let (t, refs) = parse(None, m.to_string().as_bytes()).unwrap();
        assert_eq!(t, OCI_INDEX);
        assert_eq!(refs.manifests, vec![D2.to_string()]);
        let e = parse(Some(OCI_MANIFEST), m.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.into_response().status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn accept_lists_without_the_stored_type_are_refused() {
        let mut h = HeaderMap::new();
        assert!(acceptable(&h, OCI_INDEX));
        h.insert(header::ACCEPT, DOCKER_MANIFEST.parse().unwrap());
        assert!(!acceptable(&h, OCI_INDEX));
        h.append(header::ACCEPT, OCI_INDEX.parse().unwrap());
        assert!(acceptable(&h, OCI_INDEX));
    }
}
