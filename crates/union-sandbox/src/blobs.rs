//! Blob storage: `DataProxyService` (signed upload/download locations) and the HTTP endpoint the
//! signed URLs point at, served on the same port as gRPC.
//!
//! Blobs live under `<data dir>/blobs/<key>`, where the key is flyteadmin's
//! `<project>/<domain>/<base32(md5) or filename_root>/<filename>`; the `native_url` is the
//! `file://` URL of that path, so that task containers can later bind-mount the directory at the
//! same path. A signed URL is `http://<host>/blobs/<key>?expires=<unix s>&content_md5=<b64>&signature=<hex>`,
//! the signature being HMAC-SHA256 with a per-sandbox secret (`<data dir>/sandbox.key`) over the
//! method, key, expiry and MD5, so only URLs this sandbox handed out are accepted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use md5::{Digest as _, Md5};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::Sha256;
use tokio::io::AsyncWriteExt;
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

use crate::status::timestamp;
use union_idl::flyteidl::service::data_proxy_service_server::DataProxyService;
use union_idl::flyteidl::service::{
    CreateDownloadLinkRequest, CreateDownloadLinkResponse, CreateDownloadLocationRequest,
    CreateDownloadLocationResponse, CreateUploadLocationRequest, CreateUploadLocationResponse,
    GetDataRequest, GetDataResponse,
};

/// URL path prefix of the blob endpoint.
pub const ROUTE_PREFIX: &str = "/blobs/";
/// flyteadmin's default (and maximum) signed URL lifetime.
pub const MAX_EXPIRES_IN: Duration = Duration::from_secs(3600);
/// flyteadmin names uploads without a filename with this many random characters.
const RANDOM_FILENAME_LEN: usize = 20;
/// File holding the signing secret, in the data directory.
pub const SECRET_FILE: &str = "sandbox.key";

/// Characters kept as they are in URL path segments and query values.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

type HmacSha256 = Hmac<Sha256>;

/// Errors preparing blob storage.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// A directory or the secret file could not be created or read.
    #[error("cannot prepare `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The OS random generator failed, or the secret is unusable.
    #[error("cannot prepare the sandbox signing secret: {0}")]
    Secret(String),
}

/// Blob storage on disk plus the URL signer.
pub struct Blobs {
    root: PathBuf,
    tmp: PathBuf,
    /// HMAC keyed with the secret, cloned for each signature.
    mac: HmacSha256,
}

impl std::fmt::Debug for Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blobs")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Check one `/`-separated component of a blob key: no traversal, no separators, no controls.
pub fn check_component(c: &str) -> Result<(), String> {
    if c.is_empty() || c == "." || c == ".." {
        return Err(format!("`{c}` is not a valid path component"));
    }
    if c.chars().any(|ch| ch == '\\' || ch.is_control()) {
        return Err(format!(
            "`{}` contains a backslash or a control character",
            c.escape_debug()
        ));
    }
    Ok(())
}

fn check_key(key: &str) -> Result<(), String> {
    key.split('/').try_for_each(check_component)
}

impl Blobs {
    /// Blob storage in `<data_dir>/blobs`, with the signing secret of this data directory
    /// (created on first use).
    pub fn open(data_dir: &Path) -> Result<Blobs, BlobError> {
        let root = data_dir.join("blobs");
        let tmp = data_dir.join("tmp");
        std::fs::create_dir_all(&root).map_err(io_err(&root))?;
        std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        let secret_path = data_dir.join(SECRET_FILE);
        let secret = match std::fs::read(&secret_path) {
            Ok(s) if s.len() >= 32 => s,
            Ok(_) | Err(_) => {
                let mut s = vec![0u8; 32];
                getrandom::fill(&mut s).map_err(|e| BlobError::Secret(e.to_string()))?;
                write_private(&secret_path, &s).map_err(io_err(&secret_path))?;
                s
            }
        };
        let mac =
            HmacSha256::new_from_slice(&secret).map_err(|e| BlobError::Secret(e.to_string()))?;
        Ok(Blobs { root, tmp, mac })
    }

    /// Directory holding the blobs.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a key is stored on disk.
    pub fn path_of(&self, key: &str) -> PathBuf {
        key.split('/').fold(self.root.clone(), |p, c| p.join(c))
    }

    /// The `file://` URL of a key (what flytekit records as the blob's location).
    pub fn native_url(&self, key: &str) -> String {
        format!("file://{}", self.path_of(key).display())
    }

    /// The key of a `file://` URL under this storage, if it is one.
    pub fn key_of_native_url(&self, url: &str) -> Option<String> {
        let path = url.strip_prefix("file://")?;
        let rest = Path::new(path).strip_prefix(&self.root).ok()?;
        let key = rest.to_str()?.to_string();
        check_key(&key).ok().map(|()| key)
    }

    fn signature(&self, method: &str, key: &str, expires: u64, md5_b64: &str) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(format!("{method}\n{key}\n{expires}\n{md5_b64}").as_bytes());
        mac
    }

    /// A URL on `addr` allowing `method` on `key` until `expires` (unix seconds); with
    /// `md5_b64`, a PUT must carry that `Content-MD5` and a body with that digest. `https`: the
    /// sandbox serves TLS.
    #[allow(clippy::too_many_arguments)]
    pub fn signed_url(
        &self,
        https: bool,
        addr: SocketAddr,
        method: &str,
        key: &str,
        expires: u64,
        md5_b64: &str,
    ) -> String {
        let sig = data_encoding::HEXLOWER.encode(
            &self
                .signature(method, key, expires, md5_b64)
                .finalize()
                .into_bytes(),
        );
        let path: Vec<String> = key
            .split('/')
            .map(|c| utf8_percent_encode(c, SEGMENT).to_string())
            .collect();
        let mut url = format!(
            "{}://{addr}{ROUTE_PREFIX}{}?expires={expires}",
            if https { "https" } else { "http" },
            path.join("/")
        );
        if !md5_b64.is_empty() {
            url.push_str(&format!(
                "&content_md5={}",
                utf8_percent_encode(md5_b64, SEGMENT)
            ));
        }
        url.push_str(&format!("&signature={sig}"));
        url
    }

    fn verify(
        &self,
        method: &str,
        key: &str,
        expires: u64,
        md5_b64: &str,
        signature_hex: &str,
    ) -> bool {
        let Ok(sig) = data_encoding::HEXLOWER_PERMISSIVE.decode(signature_hex.as_bytes()) else {
            return false;
        };
        self.signature(method, key, expires, md5_b64)
            .verify_slice(&sig)
            .is_ok()
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn random_name(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; len];
    // Fall back to time-derived bytes: a filename needs uniqueness, not secrecy.
    if getrandom::fill(&mut bytes).is_err() {
        let seed = crate::store::now_nanos().to_le_bytes();
        bytes
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = seed[i % 8].wrapping_add(i as u8));
    }
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn md5_of_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().to_vec())
}

fn expires_in(d: Option<&prost_types::Duration>) -> Result<Duration, Status> {
    let Some(d) = d else {
        return Ok(MAX_EXPIRES_IN);
    };
    if d.seconds < 0 || d.nanos < 0 || d.nanos >= 1_000_000_000 {
        return Err(Status::invalid_argument(format!(
            "expiresIn [{}s] is invalid",
            d.seconds
        )));
    }
    let dur = Duration::new(d.seconds as u64, d.nanos as u32);
    if dur > MAX_EXPIRES_IN {
        return Err(Status::invalid_argument(format!(
            "expiresIn [{}s] cannot exceed max allowed expiration [{}s]",
            dur.as_secs(),
            MAX_EXPIRES_IN.as_secs()
        )));
    }
    Ok(dur)
}

/// `flyteidl.service.DataProxyService` over [`Blobs`].
#[derive(Debug, Clone)]
pub struct DataProxyApi {
    blobs: Arc<Blobs>,
    /// Address put in signed URLs when the connection's local address is unknown.
    fallback_addr: SocketAddr,
    /// Whether signed URLs are https (the sandbox serves TLS).
    https: bool,
}

impl DataProxyApi {
    /// A DataProxyService signing URLs for the server at `fallback_addr`.
    pub fn new(blobs: Arc<Blobs>, fallback_addr: SocketAddr, https: bool) -> Self {
        DataProxyApi {
            blobs,
            fallback_addr,
            https,
        }
    }
}

#[tonic::async_trait]
impl DataProxyService for DataProxyApi {
    async fn create_upload_location(
        &self,
        request: GrpcRequest<CreateUploadLocationRequest>,
    ) -> Result<GrpcResponse<CreateUploadLocationResponse>, Status> {
        // Signed URLs point at the address the client reached us on.
        let addr = request.local_addr().unwrap_or(self.fallback_addr);
        let req = request.into_inner();
        // Checks and messages as flyteadmin's dataproxy/service.go.
        if req.project.is_empty() || req.domain.is_empty() {
            return Err(Status::invalid_argument(
                "project and domain are required parameters",
            ));
        }
        if req.filename_root.is_empty() && req.content_md5.is_empty() {
            return Err(Status::invalid_argument(
                "content_md5 or filename_root is a required parameter",
            ));
        }
        if !req.content_md5.is_empty() && req.content_md5.len() != 16 {
            return Err(Status::invalid_argument(format!(
                "content_md5 must be the 16 bytes of an MD5 digest, got {} bytes",
                req.content_md5.len()
            )));
        }
        let ttl = expires_in(req.expires_in.as_ref())?;
        let filename = if req.filename.is_empty() {
            random_name(RANDOM_FILENAME_LEN)
        } else {
            req.filename.clone()
        };
        let prefix = if req.filename_root.is_empty() {
            data_encoding::BASE32.encode(&req.content_md5)
        } else {
            req.filename_root.clone()
        };
        let key = format!("{}/{}/{}/{}", req.project, req.domain, prefix, filename);
        check_key(&key).map_err(|e| {
            Status::invalid_argument(format!("invalid upload location `{key}`: {e}"))
        })?;
        let md5_b64 = base64::engine::general_purpose::STANDARD.encode(&req.content_md5);

        // A caller-chosen location (filename_root + filename) may only be overwritten with the
        // same content, like flyteadmin.
        if !req.filename.is_empty() && !req.filename_root.is_empty() {
            let path = self.blobs.path_of(&key);
            let existing = tokio::task::spawn_blocking(move || match md5_of_file(&path) {
                Ok(d) => Ok(Some(d)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            })
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| {
                Status::internal(format!(
                    "failed to check if file exists at location [{key}]: {e}"
                ))
            })?;
            if let Some(digest) = existing {
                if req.content_md5.is_empty() || digest != req.content_md5 {
                    return Err(Status::already_exists(format!(
                        "file already exists at location [{}], specify a matching hash if you wish to rewrite",
                        self.blobs.native_url(&key)
                    )));
                }
            }
        }

        let expires = unix_now() + ttl.as_secs();
        Ok(GrpcResponse::new(CreateUploadLocationResponse {
            signed_url: self
                .blobs
                .signed_url(self.https, addr, "PUT", &key, expires, &md5_b64),
            native_url: self.blobs.native_url(&key),
            expires_at: Some(timestamp(
                i64::try_from(expires)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1_000_000_000),
            )),
            headers: Default::default(),
        }))
    }

    async fn create_download_location(
        &self,
        request: GrpcRequest<CreateDownloadLocationRequest>,
    ) -> Result<GrpcResponse<CreateDownloadLocationResponse>, Status> {
        let addr = request.local_addr().unwrap_or(self.fallback_addr);
        let req = request.into_inner();
        let ttl = expires_in(req.expires_in.as_ref())?;
        let key = self
            .blobs
            .key_of_native_url(&req.native_url)
            .ok_or_else(|| {
                Status::invalid_argument(format!(
                    "native_url `{}` is not a blob of this sandbox (expected file://{}/...)",
                    req.native_url,
                    self.blobs.root().display()
                ))
            })?;
        let expires = unix_now() + ttl.as_secs();
        Ok(GrpcResponse::new(CreateDownloadLocationResponse {
            signed_url: self
                .blobs
                .signed_url(self.https, addr, "GET", &key, expires, ""),
            expires_at: Some(timestamp(
                i64::try_from(expires)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1_000_000_000),
            )),
        }))
    }

    async fn create_download_link(
        &self,
        _request: GrpcRequest<CreateDownloadLinkRequest>,
    ) -> Result<GrpcResponse<CreateDownloadLinkResponse>, Status> {
        Err(Status::unimplemented(
            "flyteidl.service.DataProxyService/CreateDownloadLink is not implemented by the union sandbox",
        ))
    }

    async fn get_data(
        &self,
        _request: GrpcRequest<GetDataRequest>,
    ) -> Result<GrpcResponse<GetDataResponse>, Status> {
        Err(Status::unimplemented(
            "flyteidl.service.DataProxyService/GetData is not implemented by the union sandbox",
        ))
    }
}

/// The HTTP routes of the blob endpoint (PUT and GET on `/blobs/<key>`), plus a fallback that
/// answers unknown gRPC services with UNIMPLEMENTED.
pub fn router(blobs: Arc<Blobs>) -> axum::Router {
    axum::Router::new()
        .route("/blobs/{*key}", axum::routing::any(handle))
        .fallback(fallback)
        .with_state(blobs)
}

async fn fallback(req: axum::extract::Request) -> Response {
    let is_grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if is_grpc {
        let method = req.uri().path().trim_start_matches('/').to_string();
        let (parts, ()) =
            Status::unimplemented(format!("{method} is not implemented by the union sandbox"))
                .into_http::<()>()
                .into_parts();
        return Response::from_parts(parts, Body::empty());
    }
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut m = msg.into();
    m.push('\n');
    (status, m).into_response()
}

struct Signed {
    key: String,
    expires: u64,
    md5_b64: String,
    signature: String,
}

/// Refusals come back as the status and message for [`text`], not as a built `Response`: that is
/// too large to carry in every `Result`.
fn parse_signed(uri: &axum::http::Uri) -> Result<Signed, (StatusCode, String)> {
    let raw = uri.path().strip_prefix(ROUTE_PREFIX).unwrap_or_default();
    let mut parts = Vec::new();
    for seg in raw.split('/') {
        let c = percent_decode_str(seg).decode_utf8().map_err(|_| {
            (
                StatusCode::BAD_REQUEST,
                "blob path is not valid UTF-8".into(),
            )
        })?;
        check_component(&c)
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("invalid blob path: {e}")))?;
        parts.push(c.into_owned());
    }
    let mut expires = None;
    let mut md5_b64 = String::new();
    let mut signature = String::new();
    for pair in uri.query().unwrap_or_default().split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode_str(v).decode_utf8_lossy().into_owned();
        match k {
            "expires" => expires = v.parse::<u64>().ok(),
            "content_md5" => md5_b64 = v,
            "signature" => signature = v,
            _ => {}
        }
    }
    let Some(expires) = expires else {
        return Err((
            StatusCode::FORBIDDEN,
            "not a signed URL: `expires` is missing or invalid".into(),
        ));
    };
    Ok(Signed {
        key: parts.join("/"),
        expires,
        md5_b64,
        signature,
    })
}

async fn handle(State(blobs): State<Arc<Blobs>>, req: axum::extract::Request) -> Response {
    let method = req.method().clone();
    let signed_method = match method {
        Method::PUT => "PUT",
        Method::GET | Method::HEAD => "GET",
        _ => {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not supported on blobs; use PUT or GET"),
            )
        }
    };
    let signed = match parse_signed(req.uri()) {
        Ok(s) => s,
        Err((status, msg)) => return text(status, msg),
    };
    if !blobs.verify(
        signed_method,
        &signed.key,
        signed.expires,
        &signed.md5_b64,
        &signed.signature,
    ) {
        return text(
            StatusCode::FORBIDDEN,
            "the signature of this URL does not match: ask the sandbox for a new one",
        );
    }
    if unix_now() > signed.expires {
        return text(
            StatusCode::FORBIDDEN,
            "this signed URL has expired: ask the sandbox for a new one",
        );
    }
    if method == Method::PUT {
        let headers = req.headers().clone();
        put(&blobs, &signed, &headers, req.into_body()).await
    } else {
        get(&blobs, &signed.key, method == Method::HEAD).await
    }
}

async fn put(blobs: &Blobs, signed: &Signed, headers: &HeaderMap, body: Body) -> Response {
    let header_md5 = match headers.get("content-md5").map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => Some(v.trim().to_string()),
        Some(Err(_)) => {
            return text(
                StatusCode::BAD_REQUEST,
                "Content-MD5 header is not valid text",
            )
        }
    };
    // Like S3 with a Content-MD5-bound signature: the header must be the digest the URL was made for.
    if !signed.md5_b64.is_empty() && header_md5.as_deref() != Some(signed.md5_b64.as_str()) {
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "Content-MD5 header `{}` does not match the MD5 this upload location was created for (`{}`)",
                header_md5.as_deref().unwrap_or(""),
                signed.md5_b64
            ),
        );
    }
    let expected = match &header_md5 {
        Some(v) => match base64::engine::general_purpose::STANDARD.decode(v) {
            Ok(d) if d.len() == 16 => Some(d),
            _ => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("Content-MD5 header `{v}` is not a base64 MD5 digest"),
                )
            }
        },
        None => None,
    };

    let tmp_path = blobs.tmp.join(format!("{}.part", random_name(24)));
    let result = async {
        let mut file = tokio::fs::File::create(&tmp_path).await?;
        let mut hasher = Md5::new();
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(std::io::Error::other)?;
            if let Ok(data) = frame.into_data() {
                hasher.update(&data);
                file.write_all(&data).await?;
            }
        }
        file.flush().await?;
        file.sync_data().await?;
        Ok::<_, std::io::Error>(hasher.finalize().to_vec())
    }
    .await;
    let actual = match result {
        Ok(d) => d,
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp_path).await;
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot store the upload: {e}"),
            );
        }
    };
    if let Some(expected) = expected {
        if expected != actual {
            let _ = tokio::fs::remove_file(&tmp_path).await;
            let b64 = base64::engine::general_purpose::STANDARD;
            return text(
                StatusCode::BAD_REQUEST,
                format!(
                    "Content-MD5 mismatch: the header says `{}`, the body's MD5 is `{}`",
                    b64.encode(&expected),
                    b64.encode(&actual)
                ),
            );
        }
    }
    let dest = blobs.path_of(&signed.key);
    let moved = async {
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::rename(&tmp_path, &dest).await
    }
    .await;
    if let Err(e) = moved {
        let _ = tokio::fs::remove_file(&tmp_path).await;
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot store the upload at `{}`: {e}", dest.display()),
        );
    }
    StatusCode::OK.into_response()
}

async fn get(blobs: &Blobs, key: &str, head_only: bool) -> Response {
    let path = blobs.path_of(key);
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let len = bytes.len();
            let body = if head_only {
                Body::empty()
            } else {
                Body::from(bytes)
            };
            (
                [
                    (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                    (header::CONTENT_LENGTH, len.to_string()),
                ],
                body,
            )
                .into_response()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            text(StatusCode::NOT_FOUND, format!("no blob `{key}`"))
        }
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read blob `{key}`: {e}"),
        ),
    }
}
