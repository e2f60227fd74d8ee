//! Builds through the remote builder, from its client (no Docker engine here: DOCKER_HOST points
//! nowhere) to the sandbox's builder server and back.

use crate::support::rbuild as rbuild_util;
use crate::support::{unique, TEST_REGISTRY};

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::Sandbox;
use rbuild_util::*;
use union_idl::union::imagebuilder::v1 as pb;
use union_image::remote::client::{build_request, RemoteBuildOptions};
use union_image::remote::{
    ensure_remote_images, spec_to_json, RemoteBuildError, RemoteBuilderClient,
};
use union_image::{HostEnv, ImageSpec, TagContext};
use union_registry::{ImageReference, ImageStatus, RegistryClient};

/// Test setup: infrastructure up, and no Docker engine for this (client) process.
fn setup() {
    ensure_infra();
    static NO_DOCKER: std::sync::Once = std::sync::Once::new();
    NO_DOCKER.call_once(|| std::env::set_var("DOCKER_HOST", "unix:///nonexistent/docker.sock"));
}

fn spec(yaml: &str) -> ImageSpec {
    ImageSpec::from_yaml_str(yaml, "test.yaml", &HostEnv::current()).unwrap()
}

fn options() -> RemoteBuildOptions {
    RemoteBuildOptions {
        flytekit_version: FLYTEKIT.into(),
        ..Default::default()
    }
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

async fn in_registry(image: &str) -> bool {
    let client = RegistryClient::builder().build().unwrap();
    matches!(
        client.check(&ImageReference::parse(image).unwrap()).await,
        ImageStatus::Exists { .. }
    )
}

fn records_for(server: &Sandbox, image: &str) -> Vec<serde_json::Value> {
    server
        .records()
        .into_iter()
        .filter(|r| r["image"] == image)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_on_the_sandbox_pushes_to_its_registry_then_answers_from_the_existence_call() {
    setup();
    let server = Sandbox::start();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "requirements.txt",
        &format!("flytekit=={FLYTEKIT}\n"),
    );
    write(dir.path(), "data/greeting.txt", "hello from the context\n");
    let marker = unique("rbuild-marker");
    // No registry: the sandbox's default registry (--image-registry) is used.
    let s = spec(&format!(
        "name: rbuild-basic\nbuilder: union\nrequirements: requirements.txt\ncopy: [data]\n\
         commands: [\"echo {marker}\"]\n"
    ));
    let ctx = TagContext::new(dir.path());
    let client = RemoteBuilderClient::connect(&server.endpoint())
        .await
        .unwrap();
    let collect = Collect::default();
    let images = ensure_remote_images(
        &client,
        std::slice::from_ref(&s),
        &ctx,
        &options(),
        &collect,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", server.stderr()));
    assert_eq!(images.len(), 1);
    let img = &images[0];
    let name = s.image_name(&ctx).unwrap();
    assert_eq!(img.image_name, name);
    assert_eq!(img.fully_qualified, format!("{TEST_REGISTRY}/{name}"));
    assert!(img.built);
    // The build's own output was streamed to the client.
    assert!(
        collect.log_text().contains(&marker),
        "{}",
        collect.log_text()
    );
    assert!(collect.steps_done().iter().any(|s| s.contains(&marker)));
    assert!(in_registry(&img.fully_qualified).await);

    // The image holds the copied files, flytekit, and the client's spec id.
    let (code, out) = run_sh(
        &img.fully_qualified,
        "cat /root/data/greeting.txt && echo id=$_F_IMG_ID && test -x /opt/venv/bin/pyflyte-execute && echo ok",
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("hello from the context"), "{out}");
    assert!(out.contains(&format!("id={}", s.id())), "{out}");
    assert!(out.contains("ok"), "{out}");

    // Again: served from the existence call, nothing built.
    let again = ensure_remote_images(
        &client,
        std::slice::from_ref(&s),
        &ctx,
        &options(),
        &Collect::default(),
    )
    .await
    .unwrap();
    assert_eq!(again[0].fully_qualified, img.fully_qualified);
    assert!(!again[0].built);
    let found = client.get_image(&name).await.unwrap();
    assert!(found.exists && found.built_by_this_server, "{found:?}");
    assert_eq!(found.fully_qualified_image, img.fully_qualified);
    let recs = records_for(&server, &img.fully_qualified);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["status"], "built");

    // An image this server never built: exists=false, still fully qualified.
    let other = client.get_image("never-built:nope").await.unwrap();
    assert!(!other.exists && !other.built_by_this_server);
    assert_eq!(
        other.fully_qualified_image,
        "localhost:30000/never-built:nope"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_identical_concurrent_requests_build_once_and_both_see_the_logs() {
    setup();
    let server = Sandbox::start();
    let dir = tempfile::tempdir().unwrap();
    let marker = unique("rbuild-concurrent");
    let s = spec(&format!(
        "name: rbuild-concurrent\nregistry: localhost:30000\ncommands: [\"sleep 15\", \"echo {marker}\"]\n"
    ));
    let ctx = TagContext::new(dir.path());
    let name = s.image_name(&ctx).unwrap();
    let req = build_request(&s, &name, &s.id(), &ctx, &options()).unwrap();
    let client = RemoteBuilderClient::connect(&server.endpoint())
        .await
        .unwrap();
    let (ca, cb) = (Collect::default(), Collect::default());
    // The second request goes out once the first one's build is under way (its steps take at
    // least the 15 s `sleep`), so it joins that build.
    let (a, b) = tokio::join!(client.build(req.clone(), &ca), async {
        let deadline = Instant::now() + Duration::from_secs(600);
        while ca.events.lock().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "the first build never started");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        client.build(req.clone(), &cb).await
    });
    let (a, b) = (
        a.unwrap_or_else(|e| panic!("{e}\n{}", server.stderr())),
        b.unwrap(),
    );
    assert_eq!(a.fully_qualified_image, name);
    assert_eq!(a, b, "both callers get the one build's result");
    assert!(a.built);
    for c in [&ca, &cb] {
        assert!(c.log_text().contains(&marker), "{}", c.log_text());
    }
    assert!(
        cb.log_text().contains("already running"),
        "{}",
        cb.log_text()
    );
    let recs = records_for(&server, &name);
    assert_eq!(recs.len(), 1, "built once: {recs:?}");
    assert_eq!(recs[0]["status"], "built");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_build_returns_the_failing_steps_output() {
    setup();
    let server = Sandbox::start();
    let dir = tempfile::tempdir().unwrap();
    let marker = unique("rbuild-fails");
    let s = spec(&format!(
        "name: rbuild-failing\nbuilder: union\ncommands: [\"echo {marker}\", \"exit 3\"]\n"
    ));
    let ctx = TagContext::new(dir.path());
    let client = RemoteBuilderClient::connect(&server.endpoint())
        .await
        .unwrap();
    let collect = Collect::default();
    let err = ensure_remote_images(
        &client,
        std::slice::from_ref(&s),
        &ctx,
        &options(),
        &collect,
    )
    .await
    .unwrap_err();
    let RemoteBuildError::StepFailed {
        step,
        message,
        output,
        image,
    } = &err
    else {
        panic!("expected a failing step, got {err:?}\n{}", server.stderr());
    };
    assert!(step.contains("exit 3"), "{step}");
    assert!(output.contains(&marker), "{output}");
    assert!(message.contains("exit code: 3"), "{message}");
    assert_eq!(
        image,
        &format!("{TEST_REGISTRY}/{}", s.image_name(&ctx).unwrap())
    );
    assert_eq!(err.output(), Some(output.as_str()));
    // The reporter heard about the failure too.
    let finished = collect.finished.lock().unwrap();
    assert!(finished[0].1.as_ref().is_err_and(|e| e.contains("exit 3")));
    let recs = records_for(&server, image);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["status"], "failed");
}

/// A gzip'd tar with one raw entry, bypassing the tar crate's own path checks.
fn raw_tar_gz(path: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    if let Some(l) = link {
        h.set_link_name(l).unwrap();
    }
    h.set_cksum();
    b.append(&h, data).unwrap();
    b.into_inner().unwrap().finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contexts_escaping_their_root_are_refused() {
    setup();
    let server = Sandbox::start();
    let client = RemoteBuilderClient::connect(&server.endpoint())
        .await
        .unwrap();
    let marker = unique("escape");
    let s = spec("name: rbuild-escape\ncopy: [x]\n");
    let ctx = TagContext::new("/nonexistent");
    let name = "rbuild-escape:t1".to_string();
    let victim = format!("/tmp/{marker}");
    for (context, expect) in [
        (
            raw_tar_gz(
                &format!("copy/../../../../../..{victim}"),
                tar::EntryType::Regular,
                b"x",
                None,
            ),
            "`..`",
        ),
        (
            raw_tar_gz(&victim, tar::EntryType::Regular, b"x", None),
            "absolute path",
        ),
        (
            raw_tar_gz("copy/x", tar::EntryType::Symlink, b"", Some("/etc/passwd")),
            "is a link (to `/etc/passwd`)",
        ),
    ] {
        let req = pb::BuildRequest {
            spec_json: serde_json::Value::Object(spec_to_json(&s)).to_string(),
            image_name: name.clone(),
            spec_id: s.id(),
            context_tar_gz: context,
            flytekit_version: FLYTEKIT.into(),
            force: true,
            default_base_image: String::new(),
        };
        let err = client.build(req, &Collect::default()).await.unwrap_err();
        let RemoteBuildError::Invalid { message, .. } = &err else {
            panic!("expected a refusal, got {err:?}");
        };
        assert!(message.contains(expect), "{message}");
    }
    assert!(!Path::new(&victim).exists());
    let _ = ctx;
    assert!(server.records().is_empty(), "nothing was built");

    // A request naming another spec's image is refused too.
    let req = pb::BuildRequest {
        spec_json: serde_json::Value::Object(spec_to_json(&spec("name: a\n"))).to_string(),
        image_name: "b:tag".into(),
        force: true,
        ..Default::default()
    };
    let err = client.build(req, &Collect::default()).await.unwrap_err();
    assert!(err.to_string().contains("is not `a:<tag>`"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_without_an_image_builder_says_so() {
    setup();
    let s = spec("name: rbuild-nobuilder\nbuilder: union\ncommands: [\"true\"]\n");
    let dir = tempfile::tempdir().unwrap();
    let ctx = TagContext::new(dir.path());
    let forced = RemoteBuildOptions {
        force: true,
        ..options()
    };

    let disabled = Sandbox::launch(crate::support::sandbox::Launch {
        args: &["--no-image-builder"],
        ..Default::default()
    });
    let client = RemoteBuilderClient::connect(&disabled.endpoint())
        .await
        .unwrap();
    let err = ensure_remote_images(
        &client,
        std::slice::from_ref(&s),
        &ctx,
        &forced,
        &Collect::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RemoteBuildError::NoBuilder { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("this sandbox has no image builder"),
        "{err}"
    );
    assert!(err.to_string().contains("--no-image-builder"), "{err}");

    let no_engine = Sandbox::launch(crate::support::sandbox::Launch {
        env: &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
        ..Default::default()
    });
    let client = RemoteBuilderClient::connect(&no_engine.endpoint())
        .await
        .unwrap();
    let err = ensure_remote_images(
        &client,
        std::slice::from_ref(&s),
        &ctx,
        &forced,
        &Collect::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RemoteBuildError::NoBuilder { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("this sandbox has no image builder: cannot reach the Docker engine"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_cancels_a_build_nobody_else_waits_for() {
    setup();
    let server = Sandbox::start();
    let dir = tempfile::tempdir().unwrap();
    let marker = unique("rbuild-cancel");
    let s = spec(&format!(
        "name: rbuild-cancel\nregistry: localhost:30000\ncommands: [\"echo {marker} && sleep 120\"]\n"
    ));
    let ctx = TagContext::new(dir.path());
    let name = s.image_name(&ctx).unwrap();
    let req = build_request(&s, &name, &s.id(), &ctx, &options()).unwrap();
    let client = RemoteBuilderClient::connect(&server.endpoint())
        .await
        .unwrap();
    let seen = std::sync::Arc::new(Collect::default());
    let task = tokio::spawn({
        let (client, seen) = (client.clone(), seen.clone());
        async move { client.build(req, &*seen).await }
    });
    // Wait until the build runs its `sleep 120` step (it printed the marker), then go away.
    let deadline = Instant::now() + Duration::from_secs(600);
    while !seen.log_text().contains(&marker) {
        assert!(
            Instant::now() < deadline,
            "the build never reached its command\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    task.abort();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let recs = records_for(&server, &name);
        if recs[0]["status"] == "cancelled" {
            break;
        }
        assert!(Instant::now() < deadline, "not cancelled: {recs:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!in_registry(&name).await);
}

/// The fixture's ImageSpec as flytekit builds it (through union's own bridge code).
fn fixture_spec(fixture: &Path) -> ImageSpec {
    let out = std::process::Command::new(crate::support::repo().join(".venv/bin/python"))
        .current_dir(fixture)
        .arg("-c")
        .arg(
            "import sys, json; sys.path.insert(0, sys.argv[1]); sys.path.insert(0, '.'); \
             from load_bridge import bridge; \
             import workflows.remote_hello as m; print(json.dumps(bridge.image_spec_to_json(m.image_spec)))",
        )
        .arg(crate::support::repo().join("tests/support"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    ImageSpec::from_bridge_json(v.as_object().unwrap(), &HostEnv::current()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_with_builder_union_builds_without_a_local_docker_engine() {
    setup();
    assert_eq!(
        std::env::var("DOCKER_HOST").unwrap(),
        "unix:///nonexistent/docker.sock"
    );
    let server = Sandbox::start();
    let fixture = crate::support::repo().join("python_fixtures/remote_builder");
    let s = fixture_spec(&fixture);
    assert_eq!(s.builder.as_deref(), Some("union"));
    assert!(union_image::remote::wants_remote(&s, None));
    let ctx = TagContext::new(&fixture);
    let client = RemoteBuilderClient::connect(&server.endpoint())
        .await
        .unwrap();
    let forced = RemoteBuildOptions {
        force: true,
        ..options()
    };
    let images = ensure_remote_images(
        &client,
        std::slice::from_ref(&s),
        &ctx,
        &forced,
        &Collect::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", server.stderr()));
    let fq = &images[0].fully_qualified;
    assert_eq!(
        fq,
        &format!("{TEST_REGISTRY}/{}", s.image_name(&ctx).unwrap())
    );
    let (code, out) = run_sh(
        fq,
        "cat /root/greeting.txt && /opt/venv/bin/python -c 'import flytekit; print(flytekit.__version__)'",
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Hello from a remotely built image"), "{out}");
    assert!(out.contains(FLYTEKIT), "{out}");
}
