//! Writing to and reading from a repository: blob uploads (monolithic and chunked), cross-
//! repository mounts, manifests, tag lists, deletes. Each call names the repository with an
//! [`ImageReference`] (its registry and repository; its tag or digest where a manifest is meant)
//! and authenticates like the existence check, with `pull,push` scope.
//!
//! Bodies are [`Bytes`]: cheap to send again after an authentication challenge. Pushing whole
//! images from disk is the Docker engine's job; this is for small blobs, manifests and indexes.

use bytes::Bytes;
use reqwest::header::{HeaderName, HeaderValue, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode, Url};
use sha2::{Digest as _, Sha256};

use super::client::{Call, RegistryClient, MANIFEST_ACCEPT};
use super::reference::ImageReference;
use super::RegistryError;

/// An upload session the registry opened (`POST /v2/<name>/blobs/uploads/`).
#[derive(Debug, Clone)]
pub struct UploadSession {
    host: String,
    repository: String,
    location: Url,
    offset: u64,
}

impl UploadSession {
    /// Bytes the registry has received so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

/// What a cross-repository mount did.
#[derive(Debug, Clone)]
pub enum Mount {
    /// The blob is now in the repository.
    Mounted {
        /// Its digest.
        digest: String,
    },
    /// The registry could not mount it and opened an upload session instead.
    Session(UploadSession),
}

/// A manifest as the registry serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Its `Content-Type`.
    pub media_type: String,
    /// Its digest (`Docker-Content-Digest`, else the SHA-256 of the bytes).
    pub digest: String,
    /// The bytes, exactly as stored.
    pub bytes: Vec<u8>,
}

/// One page of a tag list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagPage {
    /// The tags, in the registry's (lexical) order.
    pub tags: Vec<String>,
    /// The `last` to ask for the next page with, when the registry says there is one.
    pub next: Option<String>,
}

/// The `sha256:<hex>` digest of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

fn header(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

impl RegistryClient {
    fn push_scope(image: &ImageReference) -> String {
        format!("repository:{}:pull,push", image.repository())
    }

    fn repo_url(&self, image: &ImageReference, rest: &str) -> String {
        format!("{}/v2/{}/{rest}", self.base_url(image), image.repository())
    }

    /// The registry's error answer as a typed error (its JSON `errors[0]` when it sent one).
    async fn refusal(host: &str, what: String, response: reqwest::Response) -> RegistryError {
        let status = response.status();
        if status == StatusCode::RANGE_NOT_SATISFIABLE {
            let offset = response
                .headers()
                .get("range")
                .and_then(|v| v.to_str().ok())
                .and_then(|r| r.split_once('-'))
                .and_then(|(_, end)| end.trim().parse::<u64>().ok())
                .map(|end| end + 1);
            return RegistryError::RangeNotSatisfiable {
                host: host.to_string(),
                what,
                offset,
            };
        }
        let bytes = response.bytes().await.unwrap_or_default();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let first = &body["errors"][0];
        RegistryError::Refused {
            host: host.to_string(),
            what,
            status: status.as_u16(),
            code: first["code"].as_str().unwrap_or_default().to_string(),
            message: first["message"].as_str().unwrap_or_default().to_string(),
        }
    }

    /// `Location` of an answer, resolved against the request URL (registries may send either).
    fn location(
        host: &str,
        base: &str,
        response: &reqwest::Response,
    ) -> Result<Url, RegistryError> {
        let bad = |detail: String| RegistryError::Protocol {
            host: host.to_string(),
            detail,
        };
        let value = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| bad("an upload answer has no Location header".into()))?;
        let base = Url::parse(base).map_err(|e| bad(format!("bad URL `{base}`: {e}")))?;
        base.join(value)
            .map_err(|e| bad(format!("the Location `{value}` is not a URL: {e}")))
    }

    /// Is the blob in the repository? Its size when it is.
    pub async fn blob_size(
        &self,
        image: &ImageReference,
        digest: &str,
    ) -> Result<Option<u64>, RegistryError> {
        let r = self.blob_call(image, digest, Method::HEAD).await?;
        match r.status() {
            // The header, not `content_length()`: that is the body's size, 0 for a HEAD.
            s if s.is_success() => Ok(r
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(Self::refusal(image.registry(), format!("blob {digest}"), r).await),
        }
    }

    /// A blob's bytes.
    pub async fn get_blob(
        &self,
        image: &ImageReference,
        digest: &str,
    ) -> Result<Bytes, RegistryError> {
        let host = image.registry();
        let r = self.blob_call(image, digest, Method::GET).await?;
        if !r.status().is_success() {
            return Err(Self::refusal(host, format!("blob {digest}"), r).await);
        }
        r.bytes().await.map_err(|e| self.unreachable(host, &e))
    }

    /// `method` on `/v2/<repository>/blobs/<digest>`, with push scope (the pushing client reads
    /// back what it may write).
    async fn blob_call(
        &self,
        image: &ImageReference,
        digest: &str,
        method: Method,
    ) -> Result<reqwest::Response, RegistryError> {
        let url = self.repo_url(image, &format!("blobs/{digest}"));
        self.send_to(
            image.registry(),
            &url,
            &Self::push_scope(image),
            &Call::new(method),
        )
        .await
    }

    /// Upload `bytes` in one request (`POST ?digest=`); returns the digest.
    pub async fn upload_blob(
        &self,
        image: &ImageReference,
        bytes: Bytes,
    ) -> Result<String, RegistryError> {
        let host = image.registry();
        let digest = sha256_digest(&bytes);
        let url = self.repo_url(image, &format!("blobs/uploads/?digest={digest}"));
        let call = Call::new(Method::POST)
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            )
            .body(bytes);
        let r = self
            .send_to(host, &url, &Self::push_scope(image), &call)
            .await?;
        match r.status() {
            StatusCode::CREATED => Ok(digest),
            // A registry without monolithic uploads opens a session: finish through it.
            StatusCode::ACCEPTED => {
                let session = self.session_of(image, &url, &r)?;
                let body = call.body.unwrap_or_default();
                self.finish_upload(session, &digest, Some(body)).await
            }
            _ => Err(Self::refusal(host, format!("upload of blob {digest}"), r).await),
        }
    }

    fn session_of(
        &self,
        image: &ImageReference,
        url: &str,
        r: &reqwest::Response,
    ) -> Result<UploadSession, RegistryError> {
        Ok(UploadSession {
            host: image.registry().to_string(),
            repository: image.repository().to_string(),
            location: Self::location(image.registry(), url, r)?,
            offset: 0,
        })
    }

    /// Open an upload session.
    pub async fn start_upload(
        &self,
        image: &ImageReference,
    ) -> Result<UploadSession, RegistryError> {
        let host = image.registry();
        let url = self.repo_url(image, "blobs/uploads/");
        let call = Call::new(Method::POST).header(CONTENT_LENGTH, HeaderValue::from_static("0"));
        let r = self
            .send_to(host, &url, &Self::push_scope(image), &call)
            .await?;
        if r.status() != StatusCode::ACCEPTED {
            return Err(Self::refusal(host, "a blob upload".into(), r).await);
        }
        self.session_of(image, &url, &r)
    }

    fn session_scope(session: &UploadSession) -> String {
        format!("repository:{}:pull,push", session.repository)
    }

    /// Send the next chunk of a session (`PATCH` with `Content-Range`).
    pub async fn upload_chunk(
        &self,
        session: &mut UploadSession,
        bytes: Bytes,
    ) -> Result<(), RegistryError> {
        let start = session.offset;
        self.upload_chunk_at(session, start, bytes).await
    }

    /// Send a chunk claimed to start at byte `start` (resuming, or as a client that lost count
    /// would: a registry answers a gap or an overlap with 416).
    pub async fn upload_chunk_at(
        &self,
        session: &mut UploadSession,
        start: u64,
        bytes: Bytes,
    ) -> Result<(), RegistryError> {
        let len = bytes.len() as u64;
        let call = Call::new(Method::PATCH)
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            )
            .header(
                HeaderName::from_static("content-range"),
                header(&format!("{start}-{}", (start + len).saturating_sub(1))),
            )
            .body(bytes);
        let url = session.location.to_string();
        let r = self
            .send_to(&session.host, &url, &Self::session_scope(session), &call)
            .await?;
        if r.status() != StatusCode::ACCEPTED {
            let what = format!("a chunk of an upload to {}", session.repository);
            return Err(Self::refusal(&session.host, what, r).await);
        }
        session.location = Self::location(&session.host, &url, &r)?;
        session.offset = start + len;
        Ok(())
    }

    /// Finish a session (`PUT ?digest=`, with a last chunk if given); returns the digest.
    pub async fn finish_upload(
        &self,
        session: UploadSession,
        digest: &str,
        last: Option<Bytes>,
    ) -> Result<String, RegistryError> {
        let mut url = session.location.clone();
        url.query_pairs_mut().append_pair("digest", digest);
        let mut call = Call::new(Method::PUT).header(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        if let Some(bytes) = last.filter(|b| !b.is_empty()) {
            call = call.body(bytes);
        } else {
            call = call.header(CONTENT_LENGTH, HeaderValue::from_static("0"));
        }
        let r = self
            .send_to(
                &session.host,
                url.as_str(),
                &Self::session_scope(&session),
                &call,
            )
            .await?;
        if r.status() != StatusCode::CREATED {
            return Err(Self::refusal(&session.host, format!("upload of blob {digest}"), r).await);
        }
        Ok(digest.to_string())
    }

    /// Cancel a session.
    pub async fn cancel_upload(&self, session: UploadSession) -> Result<(), RegistryError> {
        let url = session.location.to_string();
        let r = self
            .send_to(
                &session.host,
                &url,
                &Self::session_scope(&session),
                &Call::new(Method::DELETE),
            )
            .await?;
        if !r.status().is_success() {
            return Err(Self::refusal(&session.host, "cancelling an upload".into(), r).await);
        }
        Ok(())
    }

    /// Upload `bytes` in chunks of `chunk_size` bytes over one session; returns the digest.
    pub async fn upload_blob_chunked(
        &self,
        image: &ImageReference,
        bytes: Bytes,
        chunk_size: usize,
    ) -> Result<String, RegistryError> {
        let digest = sha256_digest(&bytes);
        let mut session = self.start_upload(image).await?;
        for chunk in bytes.chunks(chunk_size.max(1)) {
            self.upload_chunk(&mut session, bytes.slice_ref(chunk))
                .await?;
        }
        self.finish_upload(session, &digest, None).await
    }

    /// Mount blob `digest` from repository `from` of the same registry.
    pub async fn mount_blob(
        &self,
        image: &ImageReference,
        digest: &str,
        from: &str,
    ) -> Result<Mount, RegistryError> {
        let host = image.registry();
        let url = self.repo_url(image, &format!("blobs/uploads/?mount={digest}&from={from}"));
        let scope = format!("{} repository:{from}:pull", Self::push_scope(image));
        let call = Call::new(Method::POST).header(CONTENT_LENGTH, HeaderValue::from_static("0"));
        let r = self.send_to(host, &url, &scope, &call).await?;
        match r.status() {
            StatusCode::CREATED => Ok(Mount::Mounted {
                digest: digest.to_string(),
            }),
            StatusCode::ACCEPTED => Ok(Mount::Session(self.session_of(image, &url, &r)?)),
            _ => Err(Self::refusal(host, format!("mount of blob {digest} from {from}"), r).await),
        }
    }

    /// Store a manifest under `image`'s tag (or digest); returns its digest.
    pub async fn put_manifest(
        &self,
        image: &ImageReference,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<String, RegistryError> {
        let host = image.registry();
        let digest = sha256_digest(&bytes);
        let url = self.repo_url(image, &format!("manifests/{}", image.manifest_reference()));
        let call = Call::new(Method::PUT)
            .header(CONTENT_TYPE, header(media_type))
            .body(bytes);
        let r = self
            .send_to(host, &url, &Self::push_scope(image), &call)
            .await?;
        if r.status() != StatusCode::CREATED {
            return Err(Self::refusal(host, format!("manifest {image}"), r).await);
        }
        Ok(r.headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or(digest))
    }

    /// The manifest `image` names, as stored.
    pub async fn get_manifest(&self, image: &ImageReference) -> Result<Manifest, RegistryError> {
        let host = image.registry();
        let url = self.repo_url(image, &format!("manifests/{}", image.manifest_reference()));
        let call = Call::new(Method::GET).header(ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        let r = self
            .send_to(host, &url, &Self::push_scope(image), &call)
            .await?;
        match r.status() {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND => {
                return Err(RegistryError::NotFound {
                    host: host.to_string(),
                    image: image.to_string(),
                })
            }
            _ => return Err(Self::refusal(host, format!("manifest {image}"), r).await),
        }
        let media_type = r
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let sent = r
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = r.bytes().await.map_err(|e| self.unreachable(host, &e))?;
        Ok(Manifest {
            media_type,
            digest: sent.unwrap_or_else(|| sha256_digest(&bytes)),
            bytes: bytes.to_vec(),
        })
    }

    /// Delete the manifest `image` names (by digest: the manifest; by tag: the tag).
    pub async fn delete_manifest(&self, image: &ImageReference) -> Result<(), RegistryError> {
        let host = image.registry();
        let url = self.repo_url(image, &format!("manifests/{}", image.manifest_reference()));
        let r = self
            .send_to(
                host,
                &url,
                &Self::push_scope(image),
                &Call::new(Method::DELETE),
            )
            .await?;
        match r.status() {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Err(RegistryError::NotFound {
                host: host.to_string(),
                image: image.to_string(),
            }),
            _ => Err(Self::refusal(host, format!("deleting {image}"), r).await),
        }
    }

    /// One page of the repository's tags: at most `n` (the registry's page size when None),
    /// after `last`.
    pub async fn tags(
        &self,
        image: &ImageReference,
        n: Option<usize>,
        last: Option<&str>,
    ) -> Result<TagPage, RegistryError> {
        let host = image.registry();
        let mut url = Url::parse(&self.repo_url(image, "tags/list")).map_err(|e| {
            RegistryError::Protocol {
                host: host.to_string(),
                detail: e.to_string(),
            }
        })?;
        if let Some(n) = n {
            url.query_pairs_mut().append_pair("n", &n.to_string());
        }
        if let Some(last) = last {
            url.query_pairs_mut().append_pair("last", last);
        }
        let r = self
            .send_to(
                host,
                url.as_str(),
                &Self::push_scope(image),
                &Call::new(Method::GET),
            )
            .await?;
        if !r.status().is_success() {
            return Err(
                Self::refusal(host, format!("the tags of {}", image.repository()), r).await,
            );
        }
        let has_next = r
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|l| l.contains("rel=\"next\""));
        let bytes = r.bytes().await.map_err(|e| self.unreachable(host, &e))?;
        let body: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::Protocol {
                host: host.to_string(),
                detail: format!("the tag list is not JSON: {e}"),
            })?;
        let tags: Vec<String> = body["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        let next = has_next.then(|| tags.last().cloned()).flatten();
        Ok(TagPage { tags, next })
    }
}
