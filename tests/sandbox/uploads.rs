//! The sandbox's blob endpoint as flytekit uses it: upload locations signed with the content's
//! MD5, PUT and GET through the HTTP server on the sandbox's port.

use crate::support::requests::*;
use crate::support::Sandbox;

use base64::Engine as _;
use md5::{Digest as _, Md5};
use tonic::Code;
use union_idl::flyteidl::service::{CreateDownloadLocationRequest, CreateUploadLocationRequest};

fn upload_request(md5: &[u8], filename: &str) -> CreateUploadLocationRequest {
    CreateUploadLocationRequest {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        filename: filename.into(),
        content_md5: md5.to_vec(),
        add_content_md5_metadata: true,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_check_md5_and_signature() {
    let dir = tempfile::tempdir().unwrap();
    let server = Sandbox::start_in(dir.path());
    let mut proxy = server.data_proxy().await;
    let body = b"fast-registered code archive".to_vec();
    let md5 = Md5::digest(&body).to_vec();
    let md5_b64 = base64::engine::general_purpose::STANDARD.encode(&md5);

    // flyteadmin's argument checks.
    let mut no_project = upload_request(&md5, "f.tar.gz");
    no_project.project.clear();
    let e = proxy.create_upload_location(no_project).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::InvalidArgument,
            "project and domain are required parameters"
        )
    );
    let e = proxy
        .create_upload_location(upload_request(&[], "f.tar.gz"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::InvalidArgument,
            "content_md5 or filename_root is a required parameter"
        )
    );

    let loc = proxy
        .create_upload_location(upload_request(&md5, "fastabc.tar.gz"))
        .await
        .unwrap()
        .into_inner();
    let base32 = data_encoding::BASE32.encode(&md5);
    let canonical = std::fs::canonicalize(dir.path()).unwrap();
    let expected_path = canonical
        .join("blobs")
        .join(PROJECT)
        .join(DOMAIN)
        .join(&base32)
        .join("fastabc.tar.gz");
    assert_eq!(
        loc.native_url,
        format!("file://{}", expected_path.display())
    );
    assert!(
        loc.signed_url
            .starts_with(&format!("http://{}/blobs/", server.endpoint())),
        "{}",
        loc.signed_url
    );
    assert!(loc.expires_at.is_some());

    // Wrong Content-MD5 header: refused, naming it, nothing stored.
    let wrong = base64::engine::general_purpose::STANDARD.encode(Md5::digest(b"other"));
    let (status, msg) = http("PUT", &loc.signed_url, &[("Content-MD5", &wrong)], &body);
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&msg));
    assert!(String::from_utf8_lossy(&msg).contains("Content-MD5"));
    // Right header, other body: the digest check catches it.
    let (status, msg) = http(
        "PUT",
        &loc.signed_url,
        &[("Content-MD5", &md5_b64)],
        b"tampered body",
    );
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&msg).contains("Content-MD5 mismatch"));
    assert!(!expected_path.exists());
    // Tampered signature, or another path with the same signature: forbidden.
    let tampered = {
        let mut u = loc.signed_url.clone();
        let last = u.pop().unwrap();
        u.push(if last == '0' { '1' } else { '0' });
        u
    };
    assert_eq!(
        http("PUT", &tampered, &[("Content-MD5", &md5_b64)], &body).0,
        403
    );
    let moved = loc.signed_url.replace("fastabc.tar.gz", "evil.tar.gz");
    assert_eq!(
        http("PUT", &moved, &[("Content-MD5", &md5_b64)], &body).0,
        403
    );
    let unsigned = loc.signed_url.split('?').next().unwrap().to_string();
    assert_eq!(
        http("PUT", &unsigned, &[("Content-MD5", &md5_b64)], &body).0,
        403
    );
    // A GET needs a GET signature.
    assert_eq!(http("GET", &loc.signed_url, &[], &[]).0, 403);

    let (status, msg) = http("PUT", &loc.signed_url, &[("Content-MD5", &md5_b64)], &body);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&msg));
    assert_eq!(std::fs::read(&expected_path).unwrap(), body);

    // Deprecated in flyteidl in favour of CreateDownloadLink, but it is the one a native_url needs.
    #[allow(deprecated)]
    let download = proxy
        .create_download_location(CreateDownloadLocationRequest {
            native_url: loc.native_url.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (status, got) = http("GET", &download.signed_url, &[], &[]);
    assert_eq!(status, 200);
    assert_eq!(got, body);

    // filename_root locations may only be rewritten with the same content.
    let mut rooted = upload_request(&md5, "data.bin");
    rooted.filename_root = "my-root".into();
    let loc = proxy
        .create_upload_location(rooted.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(
        loc.native_url
            .ends_with("/blobs/flytesnacks/development/my-root/data.bin"),
        "{}",
        loc.native_url
    );
    assert_eq!(
        http("PUT", &loc.signed_url, &[("Content-MD5", &md5_b64)], &body).0,
        200
    );
    proxy.create_upload_location(rooted.clone()).await.unwrap();
    rooted.content_md5 = Md5::digest(b"new content").to_vec();
    assert_eq!(
        proxy
            .create_upload_location(rooted)
            .await
            .unwrap_err()
            .code(),
        Code::AlreadyExists
    );

    let mut traversal = upload_request(&md5, "../../etc/passwd");
    traversal.filename_root = "x".into();
    assert_eq!(
        proxy
            .create_upload_location(traversal)
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    server.stop();
}
