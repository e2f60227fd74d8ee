//! Upload of the code archive the way FlyteRemote does it: DataProxyService.CreateUploadLocation,
//! then an HTTP PUT of the bytes to the signed URL with Content-MD5, then the native URL goes into
//! every task's fast-execute arguments.

use base64::Engine as _;

use crate::admin::AdminClient;
use crate::diagnostics::Diagnostic;
use crate::idl::flyteidl::service::CreateUploadLocationRequest;
use crate::package::Archive;

/// Upload `bytes` (the archive) for `project`/`domain`; returns the native URL.
pub async fn upload_archive(
    client: &AdminClient,
    project: &str,
    domain: &str,
    archive: &Archive,
    bytes: Vec<u8>,
) -> Result<String, Diagnostic> {
    let req = CreateUploadLocationRequest {
        project: project.to_string(),
        domain: domain.to_string(),
        filename: archive.file_name.clone(),
        content_md5: archive.md5.to_vec(),
        add_content_md5_metadata: true,
        ..Default::default()
    };
    let loc = client
        .create_upload_location(req)
        .await
        .map_err(super::admin_diagnostic)?;
    let md5_b64 = base64::engine::general_purpose::STANDARD.encode(archive.md5);
    let http = reqwest::Client::builder()
        .build()
        .map_err(|e| Diagnostic::new(format!("cannot set up an HTTP client: {e}")))?;
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
    let resp = put.body(bytes).send().await.map_err(|e| {
        Diagnostic::new(format!(
            "uploading {} to {shown} failed: {}",
            archive.file_name,
            without_url(&e)
        ))
    })?;
    let status = resp.status();
    if !(status.as_u16() == 200 || status.as_u16() == 201) {
        let body = resp.text().await.unwrap_or_default();
        let body: String = body.chars().take(500).collect();
        return Err(Diagnostic::new(format!(
            "uploading {} to {shown} failed: HTTP {status}",
            archive.file_name
        ))
        .detail(body));
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
