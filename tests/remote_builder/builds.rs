//! `ImageSpec(builder="union")` from a user's project, through union's remote image builder
//! protocol, against the builder of the real `union sandbox start`: our `union register` and the
//! real union CLI, neither with a Docker engine.

use crate::support::rbuild::*;
use crate::support::sandbox::Launch;
use crate::support::{require_docker_infra, run, stderr, stdout, unique, Project, Sandbox};

use union_registry::{ImageReference, ImageStatus, RegistryClient};

async fn in_registry(image: &str) -> bool {
    let client = RegistryClient::builder().build().unwrap();
    matches!(
        client.check(&ImageReference::parse(image).unwrap()).await,
        ImageStatus::Exists { .. }
    )
}

fn records_for(sb: &Sandbox, image: &str) -> Vec<serde_json::Value> {
    sb.records()
        .into_iter()
        .filter(|r| r["image"] == image)
        .collect()
}

/// The image name (`name:tag`) union's messages quote, from "Image NAME was not found".
fn quoted_image(err: &str, before: &str, after: &str) -> String {
    let line = err
        .lines()
        .find(|l| l.contains(before) && l.contains(after))
        .unwrap_or_else(|| panic!("no `{before}...{after}` line in:\n{err}"));
    let start = line.find(before).unwrap() + before.len();
    let end = line[start..].find(after).unwrap() + start;
    line[start..end].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ours_builds_on_the_sandbox_then_finds_the_image_through_get_image() {
    require_docker_infra();
    let sb = Sandbox::start();
    let p = Project::new("remote_builder");

    let o = run(&mut ours_register(&p, &sb));
    assert!(o.status.success(), "{}", sb.stderr());
    let err = stderr(&o);
    // union's own progress lines, in union's order.
    let name = quoted_image(&err, "Image ", " was not found or has expired.");
    assert!(name.starts_with("remote-builder-hello:"), "{name}");
    for line in [
        "🐳 Submitting a new build...",
        "👍 Build submitted!",
        "⏳ Waiting for build to finish at: http://127.0.0.1:",
        "✅ Build completed in 0:",
    ] {
        assert!(err.contains(line), "{line}\n{err}");
    }
    // The sandbox built it into its registry; the task uses that image.
    let fq = format!("localhost:30000/{name}");
    assert_eq!(task_images(&sb, TASK).await, std::slice::from_ref(&fq));
    assert!(in_registry(&fq).await);
    let recs = records_for(&sb, &fq);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["status"], "built");
    assert_eq!(recs[0]["target"], name.as_str());
    // The context went along: the copied file, and union's _F_IMG_ID (the image name).
    let (code, out) = run_sh(
        &fq,
        "cat /root/greeting.txt && echo id=$_F_IMG_ID && /opt/venv/bin/python -c 'import union, flytekit; print(flytekit.__version__)'",
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Hello from a remotely built image"), "{out}");
    assert!(out.contains(&format!("id={name}")), "{out}");
    assert!(out.contains("1.16.31"), "{out}");

    // Again: GetImage finds it, nothing is built.
    let again = run(&mut ours_register(&p, &sb));
    assert!(again.status.success());
    let err = stderr(&again);
    assert!(
        err.contains(&format!("Image {name} found. Skip building.")),
        "{err}"
    );
    assert!(!err.contains("Submitting a new build"), "{err}");
    assert_eq!(records_for(&sb, &fq).len(), 1, "built once");
    assert_eq!(task_images(&sb, TASK).await, [fq]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_union_client_builds_through_the_sandbox_and_ours_finds_its_image() {
    require_docker_infra();
    let sb = Sandbox::start();
    let p = Project::new("remote_builder");

    let o = run(&mut union_py_register(&p, &sb));
    assert!(
        o.status.success(),
        "{}\n{}\n{}",
        stdout(&o),
        stderr(&o),
        sb.stderr()
    );
    let images = task_images(&sb, TASK).await;
    assert_eq!(images.len(), 1, "{images:?}");
    let fq = images[0].clone();
    assert!(
        fq.starts_with("localhost:30000/remote-builder-hello:"),
        "{fq}"
    );
    assert!(in_registry(&fq).await);
    let recs = records_for(&sb, &fq);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["status"], "built");

    // Ours, on the same project: the same image name, found through GetImage.
    let ours = run(&mut ours_register(&p, &sb));
    assert!(ours.status.success());
    let name = fq.trim_start_matches("localhost:30000/");
    assert!(
        stderr(&ours).contains(&format!("Image {name} found. Skip building.")),
        "{}",
        stderr(&ours)
    );
    assert_eq!(task_images(&sb, TASK).await, std::slice::from_ref(&fq));
    assert_eq!(
        records_for(&sb, &fq).len(),
        1,
        "built once, by union's request"
    );
}

#[test]
fn a_sandbox_without_the_builder_says_it_is_not_enabled() {
    require_docker_infra();
    let sb = Sandbox::launch(Launch {
        args: &["--no-image-builder"],
        ..Default::default()
    });
    let p = Project::new("remote_builder");
    let o = run(&mut ours_register(&p, &sb));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(
            "error: Union remote image builder is not enabled. Please contact Union support to enable it."
        ),
        "{err}"
    );
    assert!(err.contains("nothing was registered"), "{err}");

    let o = run(&mut union_py_register(&p, &sb));
    assert!(!o.status.success());
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        all.contains("Union remote image builder is not enabled"),
        "{all}"
    );
    assert!(sb.records().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_build_fails_with_the_builds_output() {
    require_docker_infra();
    let sb = Sandbox::start();
    let p = Project::new("remote_builder");
    let marker = unique("rbuild-fails");
    std::fs::write(
        p.root().join("workflows/remote_hello.py"),
        format!(
            "import union\n\n\
             image_spec = union.ImageSpec(name=\"remote-builder-broken\", builder=\"union\", \
             requirements=\"requirements.txt\", commands=[\"echo {marker} && exit 3\"])\n\n\
             @union.task(container_image=image_spec)\n\
             def greet(name: str) -> str:\n    return name\n"
        ),
    )
    .unwrap();
    let o = run(&mut ours_register(&p, &sb));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("error: ❌ Build failed in 0:"), "{err}");
    assert!(err.contains("with error:"), "{err}");
    assert!(err.contains(&marker), "the build's output: {err}");
    assert!(err.contains("exit code: 3"), "{err}");
    assert!(err.contains("nothing was registered"), "{err}");
    let recs = sb.records();
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["status"], "failed");
    assert!(task_images(&sb, TASK).await.is_empty());
}

/// Every `spec.json` uploaded to the sandbox for the builder (`system/production/<md5>/`).
fn uploaded_specs(sb: &Sandbox) -> Vec<String> {
    let dir = sb.data_dir().join("blobs/system/production");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let spec = entry.path().join("spec.json");
        if let Ok(text) = std::fs::read_to_string(&spec) {
            out.push(text);
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_localhost_endpoint_both_clients_always_build_and_upload_the_same_spec_json() {
    require_docker_infra();
    let sb = Sandbox::start();
    let p = Project::new("remote_builder");
    // As union does for sandboxes: an endpoint starting with `localhost` skips GetImage.
    let cfg = p.parent().join("localhost.yaml");
    std::fs::write(
        &cfg,
        format!(
            "admin:\n  endpoint: dns:///localhost:{}\n  insecure: true\n",
            sb.port
        ),
    )
    .unwrap();
    let o = run(&mut union_py_register_with(&p, &cfg));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("🐳 Submitting a new build..."));

    let o = run(&mut ours_register_at(&p, &format!("localhost:{}", sb.port)));
    assert!(o.status.success());
    assert!(stderr(&o).contains("🐳 Submitting a new build..."));
    assert!(!stderr(&o).contains("found. Skip building."));

    // Built twice (each client asked), from one spec.json: the same bytes, the same upload.
    let specs = uploaded_specs(&sb);
    assert_eq!(specs.len(), 1, "{specs:?}");
    assert!(
        specs[0].starts_with(
            r#"{"python_version": "3.11", "env": {"_F_IMG_ID": "remote-builder-hello:"#
        ),
        "{}",
        specs[0]
    );
    let images = task_images(&sb, TASK).await;
    assert_eq!(
        images.len(),
        1,
        "both registered the same image: {images:?}"
    );
    let builds: Vec<_> = sb
        .records()
        .into_iter()
        .filter(|r| r["image"] == images[0].as_str())
        .collect();
    assert_eq!(builds.len(), 2, "{builds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_pull_secret_builds_with_build_image_exec_registered_once_for_both_clients() {
    require_docker_infra();
    let sb = Sandbox::start();
    let p = Project::new("remote_builder");
    let path = p.root().join("workflows/remote_hello.py");
    let code = std::fs::read_to_string(&path).unwrap().replace(
        "    builder=\"union\",\n",
        "    builder=\"union\",\n    builder_options={\"imagepull_secret_name\": \"regcred\"},\n",
    );
    assert!(code.contains("regcred"));
    std::fs::write(&path, code).unwrap();
    // On `localhost` both clients build (no GetImage), so both reach `build-image-exec`.
    let endpoint = format!("localhost:{}", sb.port);
    let o = run(&mut ours_register_at(&p, &endpoint));
    assert!(o.status.success(), "{}", sb.stderr());
    assert!(
        stderr(&o).contains("Task build-image-exec does not exist. Registering a new version."),
        "{}",
        stderr(&o)
    );
    let cfg = p.parent().join("localhost.yaml");
    std::fs::write(
        &cfg,
        format!("admin:\n  endpoint: dns:///{endpoint}\n  insecure: true\n"),
    )
    .unwrap();
    let o = run(&mut union_py_register_with(&p, &cfg));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("build-image-exec already exists. Skipping registration."),
        "{}",
        stdout(&o)
    );

    // One build-image-exec version (union's hash of the secret and build-image's version), with
    // the secret, and both builds ran as its executions.
    let mut admin = sb.admin().await;
    let tasks = admin
        .list_tasks(union_idl::flyteidl::admin::ResourceListRequest {
            id: Some(union_idl::flyteidl::admin::NamedEntityIdentifier {
                project: "system".into(),
                domain: "production".into(),
                name: "build-image-exec".into(),
                ..Default::default()
            }),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tasks;
    assert_eq!(tasks.len(), 1);
    let id = tasks[0].id.clone().unwrap();
    assert_eq!(
        id.version,
        union_image::remote::build_image_exec_version(&["regcred", "sandbox-1"])
    );
    let template = tasks[0]
        .closure
        .clone()
        .unwrap()
        .compiled_task
        .unwrap()
        .template
        .unwrap();
    assert_eq!(template.security_context.unwrap().secrets[0].key, "regcred");
    let images = task_images(&sb, TASK).await;
    assert_eq!(images.len(), 1, "{images:?}");
    let builds: Vec<_> = sb
        .records()
        .into_iter()
        .filter(|r| r["image"] == images[0].as_str() && r["status"] == "built")
        .collect();
    assert_eq!(builds.len(), 2, "{builds:?}");
}

#[test]
fn in_org_mode_the_builder_is_in_the_org() {
    require_docker_infra();
    let sb = Sandbox::launch(Launch {
        args: &["--auth", "--org", "acme"],
        ..Default::default()
    });
    let p = Project::new("remote_builder");
    let cfg = p.parent().join("org.yaml");
    std::fs::write(
        &cfg,
        format!(
            "admin:\n  endpoint: dns:///127.0.0.1:{}\n  insecure: true\n  authType: ClientSecret\n  \
             clientId: union-sandbox\n  clientSecretLocation: {}\n",
            sb.port,
            sb.data_dir().join("auth/client-secret").display()
        ),
    )
    .unwrap();
    let home = p.parent().join("home");
    std::fs::create_dir_all(&home).unwrap();
    // Every call names the org (the sandbox refuses any other): the enabled check finds
    // `build-image` registered in it, the build runs as an execution in it.
    let o = run(p
        .union()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env("HOME", &home)
        .env("UNION_CONFIG", &cfg)
        .args(["register", "workflows", "--org", "acme"]));
    assert!(o.status.success(), "{}", sb.stderr());
    let err = stderr(&o);
    assert!(err.contains("🐳 Submitting a new build..."), "{err}");
    assert!(err.contains("✅ Build completed in"), "{err}");
    assert!(
        err.contains("/org/acme/projects/system/domains/production/executions/"),
        "{err}"
    );
}

/// The context's members as union's tarfile reads them: (name, "file"|"dir", text of a file).
fn members(xz: &[u8]) -> Vec<(String, String, Option<String>)> {
    use std::io::Read;
    let mut tar = Vec::new();
    lzma_rs::xz_decompress(&mut std::io::BufReader::new(xz), &mut tar).unwrap();
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut out = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if e.header().entry_type().is_dir() {
            out.push((name, "dir".to_string(), None));
        } else {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            out.push((name, "file".to_string(), Some(s)));
        }
    }
    out
}

/// Our spec.json and context for specs exercising every field union reads, against union's own
/// `_validate_configuration` on the same specs: the same bytes, the same members.
#[test]
fn spec_json_and_context_are_unions_for_every_field_it_reads() {
    use union_image::{HostEnv, ImageSpec, TagContext};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let write = |rel: &str, text: &str| {
        let p = d.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write("requirements.txt", "numpy\n# a comment\n");
    write("data/b.txt", "b");
    write("data/sub/a.txt", "a");
    write("one.txt", "1");
    write("src/pkg/__init__.py", "");
    write("src/pkg/mod.py", "x = 1\n");
    write("uvproj/uv.lock", "version = 1\n");
    write(
        "uvproj/pyproject.toml",
        "[project]\nname = \"p\"\nversion = \"0\"\nreadme = \"README.md\"\n",
    );
    write("uvproj/README.md", "# p\n");
    let cases = serde_json::json!([
        {"dir": d, "spec": {"name": "every", "builder": "union", "python_version": "3.10",
            "packages": ["pandas==2.0", "unionai"], "apt_packages": ["git", "curl"],
            "commands": ["echo hi", "echo 'quoted \"x\"'"], "env": {"A": "1", "É": "ü\t"},
            "pip_index": "https://idx/simple", "pip_extra_index_url": ["https://x/simple"],
            "pip_extra_args": "--pre", "conda_packages": ["c"], "conda_channels": ["ch"],
            "cuda": "12.1", "platform": "linux/arm64", "entrypoint": ["sh"],
            "builder_options": {"imagepull_secret_name": "regcred"}}},
        {"dir": d, "spec": {"name": "reqs", "builder": "union", "requirements": "requirements.txt",
            "base_image": "localhost:30000/base:1", "copy": ["data", "./one.txt"],
            "registry": "localhost:30000"}},
        {"dir": d, "spec": {"name": "src", "builder": "union", "source_root": "src",
            "source_copy_mode": "ALL", "env": {"_F_IMG_ID": "mine"}}},
        {"dir": d, "spec": {"name": "uv", "builder": "union", "requirements": "uvproj/uv.lock"}},
        // What union refuses, with its messages.
        {"dir": d, "spec": {"name": "py38", "builder": "union", "python_version": "3.8"}},
        {"dir": d, "spec": {"name": "py3", "builder": "union", "python_version": "3"}},
        {"dir": d, "spec": {"name": "uvpkgs", "builder": "union", "requirements": "uvproj/uv.lock",
            "packages": ["x"]}},
        {"dir": d, "spec": {"name": "up", "builder": "union", "copy": ["../x"]}},
    ]);
    let cases_file = d.join("cases.json");
    std::fs::write(&cases_file, cases.to_string()).unwrap();
    let o = crate::support::python_support("union_spec_oracle.py", &[&cases_file]);
    assert!(o.status.success(), "{}", stderr(&o));
    let oracle: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(oracle.len(), 8);
    assert_eq!(
        oracle.iter().filter(|c| c.get("error").is_some()).count(),
        4
    );
    for case in &oracle {
        let spec =
            ImageSpec::from_bridge_json(case["bridge"].as_object().unwrap(), &HostEnv::current())
                .unwrap();
        let ctx = TagContext::new(d);
        let name = case["image_name"].as_str().unwrap();
        assert_eq!(spec.image_name(&ctx).unwrap(), name);
        let ours = union_image::remote::prepare(&spec, name, &ctx, "3.11", Some("0.1.204"));
        if let Some(error) = case.get("error").and_then(|e| e.as_str()) {
            let ours = ours.unwrap_err().to_string();
            assert!(ours.ends_with(&format!(": {error}")), "{ours} vs {error}");
            continue;
        }
        let ours = ours.unwrap();
        assert_eq!(
            String::from_utf8(ours.spec_json.clone()).unwrap(),
            case["spec_json"].as_str().unwrap(),
            "{name}"
        );
        let theirs: Vec<(String, String, Option<String>)> =
            serde_json::from_value(case["members"].clone()).unwrap();
        let ours_members = ours.context.as_deref().map(members).unwrap_or_default();
        assert_eq!(ours_members, theirs, "{name}");
        assert_eq!(
            ours.imagepull_secret_name.as_deref(),
            case["secret"].as_str(),
            "{name}"
        );
    }
}
