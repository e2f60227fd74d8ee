//! The registry's HTTP routes: `/v2/` and everything under it, dispatched by hand because
//! repository names contain slashes (`a/b/c`) and so cannot be one path parameter; errors in the
//! spec's JSON shape; blobs (GET, HEAD, DELETE), tag lists and the catalog.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Registry;

/// `Docker-Distribution-API-Version: registry/2.0` on every answer (clients look for it on
/// `/v2/` to know they speak to a registry).
const API_VERSION: (HeaderName, &str) = (
    HeaderName::from_static("docker-distribution-api-version"),
    "registry/2.0",
);
/// Tags or repositories listed when the client does not say how many (`n`).
const DEFAULT_PAGE: usize = 1000;
/// Largest page a client may ask for.
const MAX_PAGE: usize = 10_000;

/// The spec's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unsupported,
    /// Not in the spec: a failure of the sandbox itself (as distribution answers it).
    Unknown,
}

impl Code {
    /// The code as the spec spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::Unsupported => "UNSUPPORTED",
            Code::Unknown => "UNKNOWN",
        }
    }
}

/// An error answer: `{"errors":[{"code":…,"message":…,"detail":…}]}` with its status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: Code,
    message: String,
    detail: serde_json::Value,
}

impl ApiError {
    pub fn new(status: StatusCode, code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            detail: serde_json::Value::Null,
        }
    }

    /// With the spec's free-form `detail`.
    pub fn detail(mut self, detail: serde_json::Value) -> ApiError {
        self.detail = detail;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({ "code": self.code.as_str(), "message": self.message });
        if !self.detail.is_null() {
            error["detail"] = self.detail;
        }
        let body = serde_json::json!({ "errors": [error] }).to_string();
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        internal(e.to_string())
    }
}

/// A failure of the sandbox (database, disk), not of the request.
pub fn internal(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, Code::Unknown, message)
}

/// The query string, decoded.
#[derive(Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    fn parse(raw: Option<&str>) -> Query {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        Query(
            raw.unwrap_or_default()
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(p), String::new()),
                })
                .collect(),
        )
    }

    /// A parameter's value (an empty one counts as absent).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// The spec's repository name grammar.
static NAME: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
        .expect("valid regex")
});
/// The spec's tag grammar.
static TAG: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").expect("valid regex")
});

/// Is `tag` a tag?
pub fn valid_tag(tag: &str) -> bool {
    TAG.is_match(tag)
}

/// Is `name` a repository name (at most 255 characters, as Docker limits it)?
pub fn valid_name(name: &str) -> bool {
    name.len() <= 255 && NAME.is_match(name)
}

/// `digest` if it is `sha256:<64 lowercase hex>` (the one algorithm this registry stores).
pub fn check_digest(digest: &str) -> Result<String, ApiError> {
    let ok = digest.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok {
        Ok(digest.to_string())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            Code::DigestInvalid,
            format!("`{digest}` is not a digest this registry accepts (sha256:<64 lowercase hex>)"),
        ))
    }
}

/// What a path under `/v2/` names.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    Base,
    Catalog,
    Tags(&'a str),
    Manifest(&'a str, &'a str),
    Blob(&'a str, &'a str),
    Uploads(&'a str),
    Upload(&'a str, &'a str),
}

/// Split a path after `/v2/` from its end (the name may itself contain `blobs` or `manifests`).
fn target(rest: &str) -> Option<Target<'_>> {
    if rest.is_empty() {
        return Some(Target::Base);
    }
    if rest == "_catalog" {
        return Some(Target::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Target::Tags(name));
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Some(Target::Uploads(name));
    }
    let (head, last) = rest.rsplit_once('/')?;
    if let Some(name) = head.strip_suffix("/blobs/uploads") {
        return Some(Target::Upload(name, last));
    }
    if let Some(name) = head.strip_suffix("/blobs") {
        return Some(Target::Blob(name, last));
    }
    if let Some(name) = head.strip_suffix("/manifests") {
        return Some(Target::Manifest(name, last));
    }
    None
}

/// The registry's routes: `/v2/` and everything under it.
pub fn router(registry: Arc<Registry>) -> axum::Router {
    axum::Router::new()
        .route("/v2", axum::routing::any(handle))
        .route("/v2/", axum::routing::any(handle))
        .route("/v2/{*rest}", axum::routing::any(handle))
        .with_state(registry)
}

async fn handle(State(registry): State<Arc<Registry>>, req: Request) -> Response {
    let mut response = match dispatch(&registry, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    response.headers_mut().insert(
        API_VERSION.0,
        header::HeaderValue::from_static(API_VERSION.1),
    );
    response
}

fn unsupported(method: &Method, path: &str) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        Code::Unsupported,
        format!("{method} {path} is not part of the registry API"),
    )
}

async fn dispatch(registry: &Arc<Registry>, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = Query::parse(parts.uri.query());
    let method = parts.method.clone();
    let rest = path
        .strip_prefix("/v2")
        .unwrap_or_default()
        .trim_start_matches('/');
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            Code::Unsupported,
            format!("{path} is not a registry API path"),
        )
    };
    let target = target(rest).ok_or_else(not_found)?;
    let name = match &target {
        Target::Base | Target::Catalog => None,
        Target::Tags(n)
        | Target::Manifest(n, _)
        | Target::Blob(n, _)
        | Target::Uploads(n)
        | Target::Upload(n, _) => Some(*n),
    };
    if let Some(name) = name {
        if !valid_name(name) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::NameInvalid,
                format!("`{name}` is not a repository name (lowercase letters, digits and separators `.`, `_`, `-`, components joined by `/`)"),
            ));
        }
    }
    let head = method == Method::HEAD;
    match (target, method.clone()) {
        (Target::Base, Method::GET | Method::HEAD) => Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{}",
        )
            .into_response()),
        (Target::Catalog, Method::GET) => catalog(registry, &query, &path).await,
        (Target::Tags(name), Method::GET) => tags(registry, name, &query).await,
        (Target::Blob(name, digest), Method::GET | Method::HEAD) => {
            get_blob(registry, name, digest, &parts.headers, head).await
        }
        (Target::Blob(name, digest), Method::DELETE) => delete_blob(registry, name, digest).await,
        (Target::Uploads(name), Method::POST) => registry.start_upload(name, &query, body).await,
        (Target::Upload(name, id), Method::PATCH) => {
            registry.patch_upload(name, id, &parts.headers, body).await
        }
        (Target::Upload(name, id), Method::PUT) => {
            registry
                .finish_upload(name, id, &query, &parts.headers, body)
                .await
        }
        (Target::Upload(name, id), Method::GET) => registry.upload_status(name, id).await,
        (Target::Upload(name, id), Method::DELETE) => registry.cancel_upload(name, id).await,
        (Target::Manifest(name, reference), Method::GET | Method::HEAD) => {
            registry
                .get_manifest(name, reference, &parts.headers, head)
                .await
        }
        (Target::Manifest(name, reference), Method::PUT) => {
            registry
                .put_manifest(name, reference, &parts.headers, body)
                .await
        }
        (Target::Manifest(name, reference), Method::DELETE) => {
            registry.delete_manifest(name, reference).await
        }
        _ => Err(unsupported(&method, &path)),
    }
}

/// Run blocking index work off the async workers.
pub async fn blocking<T: Send + 'static>(
    registry: &Arc<Registry>,
    f: impl FnOnce(&Registry) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let me = registry.clone();
    tokio::task::spawn_blocking(move || f(&me))
        .await
        .map_err(|e| internal(e.to_string()))?
}

fn blob_unknown(name: &str, digest: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        Code::BlobUnknown,
        format!("blob {digest} is not in repository `{name}`"),
    )
    .detail(serde_json::json!({ "digest": digest }))
}

/// `bytes=<start>-[<end>]` of a `Range` header, clamped to `size`; None: the whole blob.
fn byte_range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(value) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let spec = value.trim().strip_prefix("bytes=").ok_or(())?;
    let (start, end) = spec.split_once('-').ok_or(())?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| ())?;
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        (s, "") => (s.parse().map_err(|_| ())?, size.saturating_sub(1)),
        (s, e) => (
            s.parse().map_err(|_| ())?,
            e.parse::<u64>()
                .map_err(|_| ())?
                .min(size.saturating_sub(1)),
        ),
    };
    if start > end || start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

async fn get_blob(
    registry: &Arc<Registry>,
    name: &str,
    digest: &str,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, ApiError> {
    let digest = check_digest(digest)?;
    let (n, d) = (name.to_string(), digest.clone());
    // A HEAD is how docker decides to skip an upload: it keeps the blob for the push.
    let size = blocking(registry, move |r| {
        Ok(if head {
            r.storage().touch_blob(&n, &d)?
        } else {
            r.storage().blob_in_repo(&n, &d)?
        })
    })
    .await?
    .ok_or_else(|| blob_unknown(name, &digest))?;
    let range = byte_range(headers, size).map_err(|()| {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            Code::BlobUnknown,
            format!("the requested range is outside blob {digest} ({size} bytes)"),
        )
    })?;
    let (status, start, len) = match range {
        Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e - s + 1),
        None => (StatusCode::OK, 0, size),
    };
    let body = if head {
        Body::empty()
    } else {
        let file = open_at(&registry.storage().blob_path(&digest), start)
            .await
            // Collected between the index lookup and here: it is gone.
            .map_err(|_| blob_unknown(name, &digest))?;
        Body::from_stream(read_stream(file, len))
    };
    let mut response = (
        status,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                HeaderName::from_static("docker-content-digest"),
                digest.clone(),
            ),
            (header::ACCEPT_RANGES, "bytes".to_string()),
            (header::ETAG, format!("\"{digest}\"")),
        ],
        body,
    )
        .into_response();
    if let Some((s, e)) = range {
        if let Ok(v) = format!("bytes {s}-{e}/{size}").parse() {
            response.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(response)
}

/// The blob file, positioned at `start`.
pub async fn open_at(path: &std::path::Path, start: u64) -> std::io::Result<tokio::fs::File> {
    use tokio::io::AsyncSeekExt;
    let mut file = tokio::fs::File::open(path).await?;
    if start > 0 {
        file.seek(std::io::SeekFrom::Start(start)).await?;
    }
    Ok(file)
}

/// `len` bytes of `file`, in chunks, as a body stream.
pub fn read_stream(
    file: tokio::fs::File,
    len: u64,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> + Send {
    futures_util::stream::unfold((file, len), |(mut file, left)| async move {
        use tokio::io::AsyncReadExt;
        if left == 0 {
            return None;
        }
        let mut buf = vec![0u8; (256 * 1024).min(left as usize)];
        match file.read(&mut buf).await {
            Ok(0) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "blob file shorter than its recorded size",
                )),
                (file, 0),
            )),
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(buf), (file, left - n as u64)))
            }
            Err(e) => Some((Err(e), (file, 0))),
        }
    })
}

async fn delete_blob(
    registry: &Arc<Registry>,
    name: &str,
    digest: &str,
) -> Result<Response, ApiError> {
    let digest = check_digest(digest)?;
    let (n, d) = (name.to_string(), digest.clone());
    let gone = blocking(registry, move |r| Ok(r.storage().unlink_blob(&n, &d)?)).await?;
    if !gone {
        return Err(blob_unknown(name, &digest));
    }
    registry.request_gc();
    Ok((StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response())
}

/// `n` and `last` of a paginated list.
fn page(query: &Query) -> Result<(usize, Option<String>), ApiError> {
    let n = match query.0.get("n") {
        None => DEFAULT_PAGE,
        Some(v) => v.parse::<usize>().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::Unsupported,
                format!("`n={v}` is not a number of results"),
            )
        })?,
    };
    Ok((n.min(MAX_PAGE), query.get("last").map(str::to_string)))
}

/// `Link: <…?n=&last=>; rel="next"` when a full page was returned (there may be more).
fn with_next(mut response: Response, path: &str, n: usize, items: &[String]) -> Response {
    if n > 0 && items.len() == n {
        if let Some(last) = items.last() {
            let last =
                percent_encoding::utf8_percent_encode(last, percent_encoding::NON_ALPHANUMERIC);
            if let Ok(v) = format!("<{path}?n={n}&last={last}>; rel=\"next\"").parse() {
                response.headers_mut().insert(header::LINK, v);
            }
        }
    }
    response
}

async fn tags(registry: &Arc<Registry>, name: &str, query: &Query) -> Result<Response, ApiError> {
    let (n, last) = page(query)?;
    let repo = name.to_string();
    let tags = blocking(registry, move |r| {
        Ok(r.storage().tags(&repo, last.as_deref(), n)?)
    })
    .await?
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            Code::NameUnknown,
            format!("repository `{name}` is not known to this registry"),
        )
        .detail(serde_json::json!({ "name": name }))
    })?;
    let body = serde_json::json!({ "name": name, "tags": tags }).to_string();
    let response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    Ok(with_next(
        response,
        &format!("/v2/{name}/tags/list"),
        n,
        &tags,
    ))
}

async fn catalog(
    registry: &Arc<Registry>,
    query: &Query,
    path: &str,
) -> Result<Response, ApiError> {
    let (n, last) = page(query)?;
    let repos = blocking(registry, move |r| {
        Ok(r.storage().repositories(last.as_deref(), n)?)
    })
    .await?;
    let body = serde_json::json!({ "repositories": repos }).to_string();
    let response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    Ok(with_next(response, path, n, &repos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_from_the_end_so_names_may_contain_api_words() {
        assert_eq!(target(""), Some(Target::Base));
        assert_eq!(target("a/b/c/tags/list"), Some(Target::Tags("a/b/c")));
        assert_eq!(
            target("blobs/blobs/uploads/"),
            Some(Target::Uploads("blobs"))
        );
        assert_eq!(
            target("x/manifests/manifests/latest"),
            Some(Target::Manifest("x/manifests", "latest"))
        );
        assert_eq!(
            target("x/blobs/uploads/abc"),
            Some(Target::Upload("x", "abc"))
        );
        assert_eq!(
            target("x/y/blobs/sha256:00"),
            Some(Target::Blob("x/y", "sha256:00"))
        );
        assert_eq!(target("nothing"), None);
    }

    #[test]
    fn names_follow_the_spec_grammar() {
        for ok in ["a", "a/b/c", "foo-bar_baz.qux", "a__b", "x--y/z"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["A", "a//b", "-a", "a-", "a/", "a:b", "a___b", ""] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(TAG.is_match("v1.0_rc-1"));
        assert!(!TAG.is_match(".hidden"));
    }

    #[test]
    fn ranges_are_clamped_or_refused() {
        let mut h = HeaderMap::new();
        assert_eq!(byte_range(&h, 10), Ok(None));
        h.insert(header::RANGE, "bytes=2-4".parse().unwrap());
        assert_eq!(byte_range(&h, 10), Ok(Some((2, 4))));
        h.insert(header::RANGE, "bytes=5-".parse().unwrap());
        assert_eq!(byte_range(&h, 10), Ok(Some((5, 9))));
        h.insert(header::RANGE, "bytes=-3".parse().unwrap());
        assert_eq!(byte_range(&h, 10), Ok(Some((7, 9))));
        h.insert(header::RANGE, "bytes=10-".parse().unwrap());
        assert_eq!(byte_range(&h, 10), Err(()));
    }
}
