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
    #[error("cannot set up an HTTP client")]
    Client(#[source] reqwest::Error),
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
    let req = CreateUploadLocationRequest {
        project: project.to_string(),
        domain: domain.to_string(),
        filename: archive.file_name.clone(),
        content_md5: archive.md5.to_vec(),
        add_content_md5_metadata: true,
        ..Default::default()
    };
    let loc = client.create_upload_location(req).await?;
    let md5_b64 = base64::engine::general_purpose::STANDARD.encode(archive.md5);
    let http = reqwest::Client::builder()
        .build()
        .map_err(UploadError::Client)?;
    let mut put = http
        .put(&loc.signed_url)
        .header("Content-MD5", &md5_b64)
        .header("Content-Length", bytes.len().to_string());
    for (k, v) in &loc.headers {
        put = put.header(k.as_str(), v.as_str());
    }
    if loc.native_url.starts_with("abfs://") {
        put = put.header("x-ms-blob-type", "BlockBlob");
    }
    // The signed URL carries credentials in its query: never show it whole.
    let shown = loc.signed_url.split('?').next().unwrap_or("").to_string();
    let resp = put.body(bytes).send().await.map_err(|e| UploadError::Put {
        file: archive.file_name.clone(),
        url: shown.clone(),
        message: without_url(&e),
    })?;
    let status = resp.status();
    if !(status.as_u16() == 200 || status.as_u16() == 201) {
        let body = resp.text().await.unwrap_or_default();
        let body: String = body.chars().take(500).collect();
        return Err(UploadError::Status {
            file: archive.file_name.clone(),
            url: shown,
            status: status.as_u16(),
            body,
        });
    }
    Ok(loc.native_url)
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
