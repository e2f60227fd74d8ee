//! Upload of the code archive the way FlyteRemote does it: DataProxyService.CreateUploadLocation,
//! then an HTTP PUT of the bytes to the signed URL with Content-MD5, then the native URL goes into
//! every task's fast-execute arguments.

use base64::Engine as _;

use union_client::admin::{AdminClient, AdminError};
use union_idl::flyteidl::service::CreateUploadLocationRequest;
use union_package::Archive;

/// Why the code archive could not be uploaded. The signed URL carries credentials in its query:
/// errors show it without.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// CreateUploadLocation failed.
    #[error(transparent)]
    Location(#[from] AdminError),
    /// The HTTP client could not be set up.
    #[error("cannot set up an HTTP client for the upload: {0}")]
    Client(String),
    /// The PUT did not get through.
    #[error("uploading {file} to {url} failed: {message}")]
    Put {
        file: String,
        url: String,
        message: String,
    },
    /// The storage answered with an error.
    #[error("uploading {file} to {url} failed: HTTP {status}")]
    Status {
        file: String,
        url: String,
        status: u16,
        body: String,
    },
}

impl union_diagnostics::Hint for UploadError {
    fn hints(&self) -> Vec<String> {
        match self {
            UploadError::Location(e) => e.hints(),
            _ => Vec::new(),
        }
    }
    fn detail(&self) -> Option<String> {
        match self {
            UploadError::Status { body, .. } => Some(body.clone()),
            _ => None,
        }
    }
}

/// Upload `bytes` (the archive) for `project`/`domain`; returns the native URL.
pub async fn upload_archive(
    client: &AdminClient,
    project: &str,
    domain: &str,
    archive: &Archive,
    bytes: Vec<u8>,
) -> Result<String, UploadError> {
    upload(
        client,
        project,
        domain,
        &archive.file_name,
        archive.md5,
        bytes,
    )
    .await
}

/// Upload a file's `bytes` under `file_name`, as flytekit's `FlyteRemote.upload_file` does
/// (its MD5 computed here); returns the native URL.
pub async fn upload_bytes(
    client: &AdminClient,
    project: &str,
    domain: &str,
    file_name: &str,
    bytes: Vec<u8>,
) -> Result<String, UploadError> {
    use md5::Digest as _;
    let md5: [u8; 16] = md5::Md5::digest(&bytes).into();
    upload(client, project, domain, file_name, md5, bytes).await
}

/// Upload a file's `bytes` as `file_name` under the chosen `root` (the files of one directory
/// share a root, so that their common prefix is the directory's URL); returns the native URL.
pub async fn upload_under(
    client: &AdminClient,
    project: &str,
    domain: &str,
    root: &str,
    file_name: &str,
    bytes: Vec<u8>,
) -> Result<String, UploadError> {
    use md5::Digest as _;
    let md5: [u8; 16] = md5::Md5::digest(&bytes).into();
    let req = CreateUploadLocationRequest {
        filename_root: root.to_string(),
        ..location_request(project, domain, file_name, md5)
    };
    put_to(client, req, bytes).await
}

fn location_request(
    project: &str,
    domain: &str,
    file_name: &str,
    md5: [u8; 16],
) -> CreateUploadLocationRequest {
    CreateUploadLocationRequest {
        project: project.to_string(),
        domain: domain.to_string(),
        filename: file_name.to_string(),
        content_md5: md5.to_vec(),
        add_content_md5_metadata: true,
        ..Default::default()
    }
}

async fn upload(
    client: &AdminClient,
    project: &str,
    domain: &str,
    file_name: &str,
    md5: [u8; 16],
    bytes: Vec<u8>,
) -> Result<String, UploadError> {
    put_to(
        client,
        location_request(project, domain, file_name, md5),
        bytes,
    )
    .await
}

async fn put_to(
    client: &AdminClient,
    req: CreateUploadLocationRequest,
    bytes: Vec<u8>,
) -> Result<String, UploadError> {
    let file_name = req.filename.clone();
    let file_name = file_name.as_str();
    let md5: [u8; 16] = req.content_md5.as_slice().try_into().unwrap_or_default();
    let loc = client.create_upload_location(req).await?;
    let http = http_client(client.tls())?;
    put_signed(
        &http,
        &SignedPut {
            file: file_name,
            signed_url: &loc.signed_url,
            headers: &loc.headers,
            native_url: &loc.native_url,
            md5,
        },
        bytes,
    )
    .await?;
    Ok(loc.native_url)
}

/// Where and how to PUT one file: what CreateUploadLocation answered, and the file's digest.
#[derive(Debug, Clone, Copy)]
pub struct SignedPut<'a> {
    /// The file's name, for messages.
    pub file: &'a str,
    pub signed_url: &'a str,
    /// The headers the server says the PUT must carry.
    pub headers: &'a std::collections::BTreeMap<String, String>,
    pub native_url: &'a str,
    pub md5: [u8; 16],
}

/// PUT `bytes` to a signed URL as flytekit does (see `put_headers`); 200 and 201 are success.
pub async fn put_signed(
    http: &reqwest::Client,
    p: &SignedPut<'_>,
    bytes: Vec<u8>,
) -> Result<(), UploadError> {
    let md5_b64 = base64::engine::general_purpose::STANDARD.encode(p.md5);
    let put = http
        .put(p.signed_url)
        .headers(put_headers(&md5_b64, p.headers, p.native_url));
    // The signed URL carries credentials in its query: never show it whole.
    let shown = p.signed_url.split('?').next().unwrap_or("").to_string();
    let resp = put.body(bytes).send().await.map_err(|e| UploadError::Put {
        file: p.file.to_string(),
        url: shown.clone(),
        message: without_url(&e),
    })?;
    let status = resp.status();
    if !(status.as_u16() == 200 || status.as_u16() == 201) {
        let body = resp.text().await.unwrap_or_default();
        let body: String = body.chars().take(500).collect();
        return Err(UploadError::Status {
            file: p.file.to_string(),
            url: shown,
            status: status.as_u16(),
            body,
        });
    }
    Ok(())
}

/// The client for signed URLs: TLS checked as for gRPC (flytekit passes `verify=` the same way:
/// False with `insecureSkipVerify`, else `caCertFilePath`).
fn http_client(tls: &union_client::auth::TlsSettings) -> Result<reqwest::Client, UploadError> {
    union_client::auth::http_client_for(tls).map_err(UploadError::Client)
}

/// The PUT's headers as flytekit sends them: `Content-MD5`, then the server's `headers` over it
/// (`dict.update`: the server wins, one value per name), `x-ms-blob-type` for Azure. A signed
/// URL is signed over exactly these, so none may be sent twice. Content-Length is left to the
/// HTTP client, which sets it from the body (as `requests` does, whatever the server said).
fn put_headers(
    md5_b64: &str,
    server: &std::collections::BTreeMap<String, String>,
    native_url: &str,
) -> reqwest::header::HeaderMap {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH};
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(md5_b64) {
        h.insert("content-md5", v);
    }
    // In name order (a BTreeMap), so two spellings of one name resolve the same way each time.
    for (k, v) in server {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            h.insert(name, value);
        }
    }
    h.remove(CONTENT_LENGTH);
    if native_url.starts_with("abfs://") && !h.contains_key("x-ms-blob-type") {
        h.insert("x-ms-blob-type", HeaderValue::from_static("BlockBlob"));
    }
    h
}

fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "<signed url>");
    }
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_headers_win_and_none_is_sent_twice() {
        let server: std::collections::BTreeMap<String, String> = [
            ("Content-MD5", "c2VydmVy"),
            ("Content-Length", "999"),
            ("x-amz-meta-flytecontentmd5", "abc"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let h = put_headers("b3Vycw==", &server, "s3://bucket/key");
        assert_eq!(h.get_all("content-md5").iter().count(), 1);
        assert_eq!(h["content-md5"], "c2VydmVy");
        assert!(h.get("content-length").is_none());
        assert_eq!(h["x-amz-meta-flytecontentmd5"], "abc");
        assert!(h.get("x-ms-blob-type").is_none());

        let h = put_headers("b3Vycw==", &Default::default(), "abfs://c/k");
        assert_eq!(h["content-md5"], "b3Vycw==");
        assert_eq!(h["x-ms-blob-type"], "BlockBlob");
    }
}
