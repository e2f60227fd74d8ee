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

/// The PUT to a real S3-style presigned URL (moto's server, SigV4 as flyteadmin's S3 signer makes
/// them: Content-MD5 and the flytecontentmd5 metadata signed in) lands the object intact; and on
/// the wire each header goes once, the server's values winning (appending them, as reqwest does
/// by default, sent Content-MD5 twice, which real S3 refuses).
#[tokio::test(flavor = "multi_thread")]
async fn a_presigned_s3_put_with_content_md5_succeeds() {
    use base64::Engine as _;
    use md5::Digest as _;
    use std::io::BufRead as _;
    let script = crate::support::repo().join("tests/support/s3_presign.py");
    let python = crate::support::venv().join("bin/python");
    let mut server = std::process::Command::new(&python)
        .arg(&script)
        .arg("serve")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start moto");
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().to_string();
    assert!(port.parse::<u16>().is_ok(), "moto did not start: {line:?}");

    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let md5: [u8; 16] = md5::Md5::digest(&body).into();
    let md5_b64 = base64::engine::general_purpose::STANDARD.encode(md5);
    let presign = |key: &str| {
        let o = std::process::Command::new(&python)
            .arg(&script)
            .args(["presign", &port, "flyte-bucket", key, &md5_b64])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let headers: std::collections::BTreeMap<String, String> = v["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        (v["url"].as_str().unwrap().to_string(), headers)
    };

    let (url, headers) = presign("fast/archive.tar.gz");
    let http = reqwest::Client::new();
    union_cli::register::upload::put_signed(
        &http,
        &union_cli::register::upload::SignedPut {
            file: "archive.tar.gz",
            signed_url: &url,
            headers: &headers,
            native_url: "s3://flyte-bucket/fast/archive.tar.gz",
            md5,
        },
        body.clone(),
    )
    .await
    .expect("the presigned PUT");
    let o = std::process::Command::new(&python)
        .arg(&script)
        .args(["md5", &port, "flyte-bucket", "fast/archive.tar.gz"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        data_encoding::HEXLOWER.encode(&md5)
    );

    drop(server.stdin.take());
    let _ = server.wait();

    // What goes on the wire, byte for byte: each header once, the server's values winning,
    // Content-Length the body's (the server's 999 is not sent).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let capture = std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        let (mut sock, _) = listener.accept().unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 65536];
        let head_end = loop {
            let n = sock.read(&mut chunk).unwrap();
            buf.extend_from_slice(&chunk[..n]);
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        while buf.len() < head_end + 4 + len {
            let n = sock.read(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let _ =
            sock.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        head
    });
    let server_headers: std::collections::BTreeMap<String, String> = [
        ("Content-MD5", md5_b64.as_str()),
        ("Content-Length", "999"),
        ("x-amz-meta-flytecontentmd5", "from-the-server"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let signed = format!("http://{addr}/bucket/key?X-Amz-Signature=abc");
    union_cli::register::upload::put_signed(
        &http,
        &union_cli::register::upload::SignedPut {
            file: "f",
            signed_url: &signed,
            headers: &server_headers,
            native_url: "s3://bucket/key",
            md5: [0; 16],
        },
        b"hello".to_vec(),
    )
    .await
    .unwrap();
    let head = capture.join().unwrap();
    let values = |name: &str| -> Vec<String> {
        head.lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .collect()
    };
    assert_eq!(values("content-md5"), vec![md5_b64.clone()], "{head}");
    assert_eq!(values("content-length"), vec!["5".to_string()], "{head}");
    assert_eq!(
        values("x-amz-meta-flytecontentmd5"),
        vec!["from-the-server".to_string()],
        "{head}"
    );
}
