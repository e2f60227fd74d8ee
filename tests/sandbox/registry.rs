//! The sandbox's built-in OCI registry (`/v2/` on the sandbox's port): with the real Docker
//! engine (push, pull, run) and with our own registry client (chunked uploads, mounts, indexes,
//! tag lists, deletes and garbage collection).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use union_registry::{ImageReference, Mount, RegistryClient, RegistryError};

use crate::support::sandbox::Launch;
use crate::support::{
    build::ensure_engine, unique, wait_until, Sandbox, TEST_BASE_IMAGE, TEST_DOCKER_HOST,
};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .env("DOCKER_HOST", TEST_DOCKER_HOST)
        .args(args)
        .output()
        .expect("run docker");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "docker {args:?} failed:\n{text}");
    text
}

/// Every blob file the registry stores.
fn blob_files(data: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let top = data.join("registry/blobs/sha256");
    for dir in std::fs::read_dir(&top).unwrap().flatten() {
        for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
            out.push(f.path());
        }
    }
    out.sort();
    out
}

fn blob_file(data: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap();
    data.join("registry/blobs/sha256").join(&hex[..2]).join(hex)
}

fn client() -> RegistryClient {
    RegistryClient::builder().anonymous().build().unwrap()
}

fn image(sb: &Sandbox, rest: &str) -> ImageReference {
    ImageReference::parse(&format!("localhost:{}/{rest}", sb.port)).unwrap()
}

/// An OCI image manifest naming `config` and `layers` (digest, size).
fn manifest(config: (&str, usize), layers: &[(&str, usize)]) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|(d, s)| {
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
        "layers": layers,
    }))
    .unwrap()
}

#[test]
fn docker_pushes_pulls_and_runs_an_image_through_the_sandbox_registry_and_shared_layers_are_stored_once(
) {
    ensure_engine();
    let sb = Sandbox::start();
    let first = format!("localhost:{}/x/y:t", sb.port);
    docker(&["tag", TEST_BASE_IMAGE, &first]);
    docker(&["push", &first]);
    docker(&["rmi", &first]);
    let pulled = docker(&["pull", &first]);
    assert!(pulled.contains("Downloaded newer image"), "{pulled}");
    let ran = docker(&[
        "run",
        "--rm",
        &first,
        "python3",
        "-c",
        "print('ran from the sandbox')",
    ]);
    assert!(ran.contains("ran from the sandbox"), "{ran}");
    let after_first = blob_files(sb.data_dir());

    // A second image: the base's layers plus one of its own, in another repository.
    let container = unique("registry-layer");
    docker(&[
        "run",
        "--name",
        &container,
        TEST_BASE_IMAGE,
        "sh",
        "-c",
        "echo extra > /extra",
    ]);
    let second = format!("localhost:{}/x/z:t2", sb.port);
    docker(&["commit", &container, &second]);
    docker(&["rm", &container]);
    let pushed = docker(&["push", &second]);
    docker(&["rmi", &second, &first]);

    let after_second = blob_files(sb.data_dir());
    for f in &after_first {
        assert!(after_second.contains(f), "{} went away", f.display());
    }
    // One new layer, one config, one manifest: the shared layers are not stored again.
    assert_eq!(
        after_second.len(),
        after_first.len() + 3,
        "{after_first:#?}\n{after_second:#?}\n{pushed}"
    );
    let (_, tags) =
        crate::support::exec::http_get(&format!("http://127.0.0.1:{}/v2/x/z/tags/list", sb.port));
    assert_eq!(tags, r#"{"name":"x/z","tags":["t2"]}"#);
}

#[tokio::test]
async fn chunked_uploads_are_checked_in_order_and_by_digest() {
    let sb = Sandbox::start();
    let c = client();
    let repo = image(&sb, "chunks/a");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();

    let digest = c
        .upload_blob_chunked(&repo, data.clone().into(), 64 * 1024)
        .await
        .unwrap();
    assert_eq!(digest, union_registry::sha256_digest(&data));
    assert_eq!(c.blob_size(&repo, &digest).await.unwrap(), Some(300_000));
    assert_eq!(c.get_blob(&repo, &digest).await.unwrap(), data);
    assert_eq!(
        std::fs::read(blob_file(sb.data_dir(), &digest)).unwrap(),
        data
    );

    // A chunk that does not continue the upload: 416, and the session is where it was.
    let mut session = c.start_upload(&repo).await.unwrap();
    c.upload_chunk(&mut session, data[..1000].to_vec().into())
        .await
        .unwrap();
    let err = c
        .upload_chunk_at(&mut session, 2000, data[2000..3000].to_vec().into())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::RangeNotSatisfiable {
                offset: Some(1000),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(session.offset(), 1000);
    c.upload_chunk(&mut session, data[1000..3000].to_vec().into())
        .await
        .unwrap();

    // The wrong digest: DIGEST_INVALID, nothing stored.
    let wrong = union_registry::sha256_digest(b"something else");
    let err = c.finish_upload(session, &wrong, None).await.unwrap_err();
    match &err {
        RegistryError::Refused { status, code, .. } => {
            assert_eq!((*status, code.as_str()), (400, "DIGEST_INVALID"), "{err}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.blob_size(&repo, &wrong).await.unwrap(), None);

    // Monolithic, and a cancelled session.
    let small = c
        .upload_blob(&repo, b"tiny blob".to_vec().into())
        .await
        .unwrap();
    assert_eq!(c.blob_size(&repo, &small).await.unwrap(), Some(9));
    let session = c.start_upload(&repo).await.unwrap();
    c.cancel_upload(session.clone()).await.unwrap();
    let err = c.finish_upload(session, &small, None).await.unwrap_err();
    assert!(
        matches!(&err, RegistryError::Refused { code, .. } if code == "BLOB_UPLOAD_UNKNOWN"),
        "{err:?}"
    );
    sb.stop();
}

#[tokio::test]
async fn mounts_indexes_and_tag_pages() {
    let sb = Sandbox::start();
    let c = client();
    let a = image(&sb, "team/app/a");
    let b = image(&sb, "team/app/b");
    let config = c.upload_blob(&a, b"{}".to_vec().into()).await.unwrap();
    let layer = c
        .upload_blob(&a, b"layer one".to_vec().into())
        .await
        .unwrap();

    // Mounting into b: the blob is there at once; from a repository without it, a session.
    match c.mount_blob(&b, &layer, "team/app/a").await.unwrap() {
        Mount::Mounted { digest } => assert_eq!(digest, layer),
        Mount::Session(s) => panic!("not mounted: {s:?}"),
    }
    assert_eq!(c.blob_size(&b, &layer).await.unwrap(), Some(9));
    match c.mount_blob(&b, &config, "team/app/nowhere").await.unwrap() {
        Mount::Session(s) => c.cancel_upload(s).await.unwrap(),
        Mount::Mounted { .. } => panic!("mounted from a repository without the blob"),
    }

    // A manifest whose blob is missing is refused.
    let m = manifest((&config, 2), &[(&layer, 9)]);
    let err = c
        .put_manifest(&image(&sb, "team/app/b:v1"), OCI_MANIFEST, m.clone().into())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RegistryError::Refused { code, .. } if code == "MANIFEST_BLOB_UNKNOWN"),
        "{err:?}"
    );

    // Two manifests and an index over them.
    let linux = c
        .put_manifest(
            &image(&sb, "team/app/a:amd64"),
            OCI_MANIFEST,
            m.clone().into(),
        )
        .await
        .unwrap();
    let other_layer = c
        .upload_blob(&a, b"layer two".to_vec().into())
        .await
        .unwrap();
    let m2 = manifest((&config, 2), &[(&layer, 9), (&other_layer, 9)]);
    let arm = c
        .put_manifest(&image(&sb, "team/app/a:arm64"), OCI_MANIFEST, m2.into())
        .await
        .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": linux, "size": m.len(), "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": arm, "size": 1, "platform": {"architecture": "arm64", "os": "linux"}},
        ],
    }))
    .unwrap();
    let index_digest = c
        .put_manifest(
            &image(&sb, "team/app/a:multi"),
            OCI_INDEX,
            index.clone().into(),
        )
        .await
        .unwrap();
    let got = c
        .get_manifest(&image(&sb, "team/app/a:multi"))
        .await
        .unwrap();
    assert_eq!(got.media_type, OCI_INDEX);
    assert_eq!(got.bytes, index);
    assert_eq!(got.digest, index_digest);
    assert_eq!(got.digest, union_registry::sha256_digest(&index));
    let by_digest = c
        .get_manifest(&image(&sb, &format!("team/app/a@{index_digest}")))
        .await
        .unwrap();
    assert_eq!(by_digest.bytes, index);

    // An index naming a manifest the repository lacks is refused.
    let dangling = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": linux, "size": 1}],
    }))
    .unwrap();
    let err = c
        .put_manifest(&image(&sb, "team/app/b:multi"), OCI_INDEX, dangling.into())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RegistryError::Refused { code, .. } if code == "MANIFEST_UNKNOWN"),
        "{err:?}"
    );

    // Tags, two at a time.
    for tag in ["v1", "v2", "v3"] {
        c.put_manifest(
            &image(&sb, &format!("team/app/a:{tag}")),
            OCI_MANIFEST,
            m.clone().into(),
        )
        .await
        .unwrap();
    }
    let mut pages = Vec::new();
    let mut last = None;
    loop {
        let page = c.tags(&a, Some(2), last.as_deref()).await.unwrap();
        pages.push(page.tags.clone());
        match page.next {
            Some(next) => last = Some(next),
            None => break,
        }
    }
    let all: Vec<String> = pages.concat();
    assert_eq!(all, ["amd64", "arm64", "multi", "v1", "v2", "v3"]);
    assert!(pages.iter().all(|p| p.len() <= 2), "{pages:?}");
    let err = c
        .tags(&image(&sb, "team/none"), None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RegistryError::Refused { status: 404, code, .. } if code == "NAME_UNKNOWN"),
        "{err:?}"
    );
    sb.stop();
}

#[tokio::test]
async fn deleting_a_manifest_collects_the_blobs_only_it_referenced() {
    // No grace period: what nothing references goes at the next collection.
    let sb = Sandbox::launch(Launch {
        env: &[("UNION_SANDBOX_REGISTRY_GC_GRACE", "0")],
        ..Launch::default()
    });
    let c = client();
    let repo = image(&sb, "gc/app");
    let config = c
        .upload_blob(&repo, b"{\"c\":1}".to_vec().into())
        .await
        .unwrap();
    let shared = c
        .upload_blob(&repo, b"shared layer".to_vec().into())
        .await
        .unwrap();
    let own = c
        .upload_blob(&repo, b"layer of one".to_vec().into())
        .await
        .unwrap();
    let one = c
        .put_manifest(
            &image(&sb, "gc/app:one"),
            OCI_MANIFEST,
            manifest((&config, 7), &[(&shared, 12), (&own, 12)]).into(),
        )
        .await
        .unwrap();
    let two = c
        .put_manifest(
            &image(&sb, "gc/app:two"),
            OCI_MANIFEST,
            manifest((&config, 7), &[(&shared, 12)]).into(),
        )
        .await
        .unwrap();
    let data = sb.data_dir().to_path_buf();
    for d in [&config, &shared, &own, &one, &two] {
        assert!(blob_file(&data, d).exists(), "{d}");
    }

    c.delete_manifest(&image(&sb, &format!("gc/app@{one}")))
        .await
        .unwrap();
    wait_until(
        "the deleted manifest's blobs are collected",
        Duration::from_secs(20),
        || !blob_file(&data, &own).exists() && !blob_file(&data, &one).exists(),
    );
    for d in [&config, &shared, &two] {
        assert!(blob_file(&data, d).exists(), "{d} is still referenced");
    }
    let err = c.get_manifest(&image(&sb, "gc/app:one")).await.unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err:?}");
    assert_eq!(
        c.tags(&repo, None, None).await.unwrap().tags,
        vec!["two".to_string()]
    );
    assert_eq!(c.blob_size(&repo, &own).await.unwrap(), None);
    sb.stop();
}

#[test]
fn run_remote_of_hello_without_a_registry_pushes_its_image_to_the_sandbox() {
    ensure_engine();
    let sb = Sandbox::start();
    let p = crate::support::Project::new("hello");
    let source = std::fs::read_to_string(p.root().join("workflows/hello.py")).unwrap();
    assert!(
        !source
            .lines()
            .any(|l| l.trim_start().starts_with("registry=")),
        "the example names no registry"
    );
    let o = crate::support::run(
        p.union_docker()
            .args(["run", "--remote", "--wait", "--endpoint", &sb.endpoint()])
            .args(["workflows/hello.py", "hello_world_wf", "--name", "Alice"]),
    );
    let (out, err) = (crate::support::stdout(&o), crate::support::stderr(&o));
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("Hello, Alice!"), "{out}\n{err}");
    let (status, tags) = crate::support::exec::http_get(&format!(
        "http://127.0.0.1:{}/v2/say-hello-image/tags/list",
        sb.port
    ));
    assert_eq!(status, 200, "{tags}");
    let tags: serde_json::Value = serde_json::from_str(&tags).unwrap();
    let tag = tags["tags"][0].as_str().expect("a tag").to_string();
    // The tag flytekit computes for the same spec written with this registry.
    let pinned = p.root().join("workflows/pinned.py");
    std::fs::write(
        &pinned,
        source.replace(
            "requirements=\"requirements.txt\",",
            &format!(
                "requirements=\"requirements.txt\",\n    registry=\"localhost:{}\",",
                sb.port
            ),
        ),
    )
    .unwrap();
    let dry =
        crate::support::run(
            p.union_docker()
                .args(["build", "--dry-run", "workflows/pinned.py"]),
        );
    assert!(dry.status.success(), "{}", crate::support::stderr(&dry));
    let expected = format!("localhost:{}/say-hello-image:{tag}", sb.port);
    assert!(
        crate::support::stdout(&dry).contains(&expected),
        "{expected} not in:\n{}",
        crate::support::stdout(&dry)
    );
}
