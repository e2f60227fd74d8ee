//! Image building: the Dockerfile and context union generates for each ImageSpec field, the
//! combinations it refuses, and real builds against the Docker engine and registry that
//! tests/setup/docker.sh starts (run automatically when they are not up).

use crate::support::build as build_util;
use crate::support::{unique, TEST_BASE_IMAGE, TEST_DOCKER_HOST, TEST_REGISTRY};

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use build_util::*;
use prost::Message;
use union_image::build::{BuildAllOptions, BuildError, Builder, NoReporter, Outcome};
use union_image::dockerfile::{self, BuildPlan, BuildSettings, PlanError};
use union_image::{BaseImage, HostEnv, ImageSpec, ImageSpecError, TagContext};

const FLYTEKIT: &str = "1.16.31";

fn settings() -> BuildSettings {
    BuildSettings {
        default_base_image: TEST_BASE_IMAGE.to_string(),
        flytekit_version: FLYTEKIT.to_string(),
    }
}

fn spec(yaml: &str) -> ImageSpec {
    ImageSpec::from_yaml_str(yaml, "test.yaml", &HostEnv::x86_64()).unwrap()
}

fn plan_in(dir: &Path, yaml: &str) -> Result<BuildPlan, PlanError> {
    dockerfile::plan(&spec(yaml), &TagContext::new(dir), &settings())
}

fn plan_ok(dir: &Path, yaml: &str) -> BuildPlan {
    plan_in(dir, yaml).unwrap_or_else(|e| panic!("plan failed: {e}"))
}

fn ctx_text(plan: &BuildPlan, path: &str) -> String {
    String::from_utf8(
        plan.context
            .bytes(path)
            .unwrap_or_else(|| panic!("no {path}"))
            .to_vec(),
    )
    .unwrap()
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

// ------------------------------------------------------------------ Dockerfile per field

#[test]
fn default_spec_installs_flytekit_into_a_venv_and_sets_the_image_id_last() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_ok(dir.path(), "name: plain\n");
    let df = &plan.dockerfile;
    assert!(
        df.contains(&format!("FROM {TEST_BASE_IMAGE} AS union-base")),
        "{df}"
    );
    assert!(
        !df.contains("#syntax"),
        "no frontend image may be pulled: {df}"
    );
    assert_eq!(
        ctx_text(&plan, ".union/requirements_uv.txt"),
        format!("flytekit=={FLYTEKIT}")
    );
    assert!(df.contains("uv pip install --python /opt/venv/bin/python"));
    assert!(df.contains("--mount=type=cache,target=/root/.cache/uv"));
    assert!(df.contains("--mount=type=cache,target=/root/.cache/pip"));
    assert!(df.contains("PYTHONPATH=/root"));
    assert!(df.contains("test -x /opt/venv/bin/pyflyte-execute"));
    let lines: Vec<&str> = df.lines().collect();
    assert_eq!(
        lines.last().unwrap(),
        &format!("ENV _F_IMG_ID={}", spec("name: plain\n").id())
    );
    assert!(lines.contains(&"WORKDIR /root"));
    assert_eq!(plan.platform, "linux/amd64");
    assert!(!plan.push);
    // The Dockerfile is in the context, and the context is byte-for-byte reproducible.
    assert_eq!(plan.context.bytes("Dockerfile").unwrap(), df.as_bytes());
    let again = plan_ok(dir.path(), "name: plain\n");
    assert_eq!(
        plan.context.to_tar().unwrap(),
        again.context.to_tar().unwrap()
    );
}

#[test]
fn packages_and_requirements_follow_flytekit_including_the_flytekit_pin() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "reqs.txt", "  numpy==1.26.4 \n\npandas\n");
    let plan = plan_ok(
        dir.path(),
        "name: r\nrequirements: reqs.txt\npackages: [six]\n",
    );
    assert_eq!(
        ctx_text(&plan, ".union/requirements_uv.txt"),
        format!("numpy==1.26.4\n\npandas\nsix\nflytekit=={FLYTEKIT}")
    );
    // flytekit listed by the user: not added again.
    let plan = plan_ok(
        dir.path(),
        "name: r\npackages: ['flytekit[extra]>=1.10', six]\n",
    );
    assert_eq!(
        ctx_text(&plan, ".union/requirements_uv.txt"),
        "flytekit[extra]>=1.10\nsix"
    );
    // A plugin is not flytekit.
    let plan = plan_ok(dir.path(), "name: r\npackages: [flytekitplugins-pod]\n");
    assert!(
        ctx_text(&plan, ".union/requirements_uv.txt").ends_with(&format!("\nflytekit=={FLYTEKIT}"))
    );
    // A dev flytekit adds a bare requirement.
    let dev = BuildSettings {
        flytekit_version: "1.17.0.dev3".into(),
        ..settings()
    };
    let plan = dockerfile::plan(&spec("name: r\n"), &TagContext::new(dir.path()), &dev).unwrap();
    assert_eq!(ctx_text(&plan, ".union/requirements_uv.txt"), "flytekit");
}

#[test]
fn pyproject_alone_installs_its_pep621_dependencies() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "proj/pyproject.toml",
        "[project]\nname = \"x\"\nversion = \"0\"\ndependencies = [\"requests>=2\", \"six\"]\n",
    );
    let plan = plan_ok(dir.path(), "name: p\nrequirements: proj/pyproject.toml\n");
    assert_eq!(
        ctx_text(&plan, ".union/requirements_uv.txt"),
        format!("requests>=2\nsix\nflytekit=={FLYTEKIT}")
    );
    write(
        dir.path(),
        "poetryish/pyproject.toml",
        "[tool.poetry]\nname = \"x\"\n",
    );
    let err = plan_in(
        dir.path(),
        "name: p\nrequirements: poetryish/pyproject.toml\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("[project]"), "{err}");
}

#[test]
fn uv_lock_runs_uv_sync_locked_with_pyproject_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "app/uv.lock", "version = 1\n");
    write(
        dir.path(),
        "app/pyproject.toml",
        "[project]\nname = \"a\"\nreadme = \"README.md\"\n",
    );
    write(dir.path(), "app/README.md", "# a\n");
    let plan = plan_ok(
        dir.path(),
        "name: u\nrequirements: app/uv.lock\npip_index: https://idx.example/simple\n",
    );
    let df = &plan.dockerfile;
    assert!(
        df.contains(
            "uv sync --locked --no-dev --no-install-project --index-url https://idx.example/simple"
        ),
        "{df}"
    );
    assert!(df.contains("UV_PROJECT_ENVIRONMENT=/opt/venv"));
    assert!(df.contains("--mount=type=bind,source=.union/project,target=/tmp/union/project,rw"));
    assert!(plan.context.contains(".union/project/uv.lock"));
    assert!(plan.context.contains(".union/project/pyproject.toml"));
    assert!(plan.context.contains(".union/project/README.md"));
    assert!(
        !plan.context.contains(".union/requirements_uv.txt"),
        "flytekit is not added to a lock"
    );
}

#[test]
fn poetry_lock_runs_poetry_install_no_root() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "poetry.lock", "# lock\n");
    write(
        dir.path(),
        "pyproject.toml",
        "[tool.poetry]\nname = \"a\"\n",
    );
    let plan = plan_ok(
        dir.path(),
        "name: po\nrequirements: poetry.lock\npip_extra_args: --sync\n",
    );
    let df = &plan.dockerfile;
    assert!(
        df.contains("poetry install --no-interaction --no-root --sync"),
        "{df}"
    );
    assert!(df.contains(&format!("poetry=={}", dockerfile::POETRY_VERSION)));
    assert!(df.contains("POETRY_VIRTUALENVS_CREATE=false"));
}

#[test]
fn apt_commands_env_entrypoint_and_pip_options() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_ok(
        dir.path(),
        r#"name: f
apt_packages: [git, curl]
commands: ["echo one", "echo 'two'"]
env: {A: "1", MSG: "it's \"ok\" $HOME"}
entrypoint: ["python", "-m", "x"]
pip_index: https://pypi.example/simple
pip_extra_index_url: ["https://a.example/simple", "https://b.example/s p"]
pip_extra_args: --no-deps --prerelease=allow
"#,
    );
    let df = &plan.dockerfile;
    assert!(
        df.contains("apt-get install -y -q --no-install-recommends git curl"),
        "{df}"
    );
    assert!(df.contains("--mount=type=cache,target=/var/cache/apt"));
    assert!(df.contains("echo one && echo 'two'"));
    assert!(df.contains(r#"ENV A="1" MSG="it's \"ok\" $HOME""#), "{df}");
    assert!(df.contains(r#"ENTRYPOINT ["python","-m","x"]"#));
    assert!(
        df.contains(
            "--index-url https://pypi.example/simple --extra-index-url https://a.example/simple \
         --extra-index-url 'https://b.example/s p' --no-deps --prerelease=allow --requirement"
        ),
        "{df}"
    );
    // Layer order: apt, python, install, commands, then the image id.
    let pos = |s: &str| df.find(s).unwrap_or_else(|| panic!("{s} missing"));
    assert!(pos("apt-get install") < pos("python.sh"));
    assert!(pos("python.sh") < pos("uv pip install"));
    assert!(pos("uv pip install") < pos("echo one"));
    assert!(pos("echo one") < pos("_F_IMG_ID"));
    // entrypoint [] removes the base image's.
    let plan = plan_ok(dir.path(), "name: e\nentrypoint: []\n");
    assert!(plan.dockerfile.contains("ENTRYPOINT []"));
}

#[test]
fn python_version_python_exec_and_platform() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_ok(
        dir.path(),
        "name: v\npython_version: '3.11'\nplatform: linux/arm64\n",
    );
    assert!(plan.dockerfile.contains("UNION_PYTHON_VERSION=3.11"));
    assert_eq!(plan.platform, "linux/arm64");
    let plan = plan_ok(dir.path(), "name: v\npython_exec: /usr/bin/python3\n");
    assert!(plan
        .dockerfile
        .contains("UNION_PYTHON_EXEC=/usr/bin/python3 UNION_VENV_FLAGS=--system-site-packages"));
    // Several platforms: planned (the tag and Dockerfile are shown), refused only when built.
    let multi = plan_ok(dir.path(), "name: v\nplatform: linux/amd64,linux/arm64\n");
    assert_eq!(multi.platforms(), ["linux/amd64", "linux/arm64"]);
    // The helper script fails clearly when the interpreter is missing.
    let script = ctx_text(&plan, ".union/python.sh");
    assert!(script.contains("cannot download interpreters"));
}

#[test]
fn copy_and_source_root_land_in_root() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "data/a.csv", "1\n");
    write(dir.path(), "data/sub/b.csv", "2\n");
    write(dir.path(), "conf/settings.ini", "x=1\n");
    write(dir.path(), "src/main.py", "x = 1\n");
    write(dir.path(), "src/pkg/a.py", "print('a')\n");
    let plan = plan_ok(dir.path(), "name: c\ncopy: [data, conf/settings.ini]\n");
    let df = &plan.dockerfile;
    assert!(
        df.contains(r#"COPY --chown=flytekit [".union/copy/data","/root/data/"]"#),
        "{df}"
    );
    assert!(
        df.contains(r#"COPY --chown=flytekit [".union/copy/conf/settings.ini","/root/conf/"]"#),
        "{df}"
    );
    assert!(plan.context.contains(".union/copy/data/sub/b.csv"));
    assert!(
        !df.contains(".union/src"),
        "no source is baked in without source_copy_mode"
    );

    let mut s = spec("name: s\nsource_root: src\n");
    s.source_copy_mode = Some(union_image::CopyFileDetection::All);
    let plan = dockerfile::plan(&s, &TagContext::new(dir.path()), &settings()).unwrap();
    assert!(plan
        .dockerfile
        .contains("COPY --chown=flytekit .union/src /root"));
    assert!(plan.context.contains(".union/src/main.py"));
    assert!(plan.context.contains(".union/src/pkg/a.py"));
    // Source goes after commands-free install steps, right before the footer.
    let df = &plan.dockerfile;
    assert!(df.find("uv pip install").unwrap() < df.find(".union/src").unwrap());
}

#[test]
fn nested_base_spec_is_planned_first_and_used_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let host = HostEnv::x86_64();
    let base = ImageSpec {
        name: "base".into(),
        registry: Some(TEST_REGISTRY.into()),
        packages: Some(vec!["six".into()]),
        ..Default::default()
    }
    .post_init(&host)
    .unwrap();
    let child = ImageSpec {
        name: "child".into(),
        registry: Some(TEST_REGISTRY.into()),
        base_image: Some(BaseImage::Spec(Box::new(base.clone()))),
        ..Default::default()
    }
    .post_init(&host)
    .unwrap();
    let ctx = TagContext::new(dir.path());
    let plan = dockerfile::plan(&child, &ctx, &settings()).unwrap();
    let base_name = base.image_name(&ctx).unwrap();
    assert_eq!(plan.base.as_ref().unwrap().image_name, base_name);
    assert!(plan
        .dockerfile
        .contains(&format!("FROM {base_name} AS union-base")));
    assert!(plan.push);
}

#[test]
fn pip_secret_mounts_are_mounted_never_copied() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "netrc",
        "machine x login u password TOPSECRET-VALUE\n",
    );
    let plan = plan_ok(
        dir.path(),
        "name: s\npip_secret_mounts: [[netrc, /root/.netrc]]\n",
    );
    assert!(plan
        .dockerfile
        .contains("--mount=type=secret,id=secret_0,target=/root/.netrc,required=true"));
    assert_eq!(plan.secrets.len(), 1);
    assert_eq!(
        plan.secrets[0].source,
        dockerfile::SecretSource::File(dir.path().join("netrc"))
    );
    let tar = plan.context.to_tar().unwrap();
    assert!(
        !String::from_utf8_lossy(&tar).contains("TOPSECRET"),
        "secret must not be in the context"
    );
    let err = plan_in(
        dir.path(),
        "name: s\npip_secret_mounts: [[missing, /root/.netrc]]\n",
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("pip_secret_mounts path 'missing' not found"),
        "{err}"
    );
}

// ------------------------------------------------------------------ refusals

#[test]
fn refused_combinations_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "uv.lock", "version = 1\n");
    write(dir.path(), "pyproject.toml", "[project]\nname = \"a\"\n");
    write(dir.path(), "lonely/poetry.lock", "#\n");
    let cases: &[(&str, &str)] = &[
        ("name: x\ncuda: '12.1'\n", "field `cuda`"),
        ("name: x\ncudnn: '8'\n", "field `cudnn`"),
        (
            "name: x\nconda_packages: [numpy]\n",
            "field `conda_packages`",
        ),
        (
            "name: x\nconda_channels: [bioconda]\n",
            "field `conda_channels`",
        ),
        (
            "name: x\nrequirements: uv.lock\npackages: [six]\n",
            "`packages` cannot be combined with requirements `uv.lock`",
        ),
        (
            "name: x\nrequirements: lonely/poetry.lock\n",
            "has no `pyproject.toml` beside it",
        ),
        (
            "name: x\ncopy: [/etc/passwd]\n",
            "copy entry '/etc/passwd' is an absolute path",
        ),
        (
            "name: x\ncopy: [../outside]\n",
            "copy entry '../outside' contains `..`",
        ),
        (
            "name: x\ncopy: [nothere]\n",
            "copy path 'nothere' not found",
        ),
    ];
    for (yaml, expected) in cases {
        let err = plan_in(dir.path(), yaml).expect_err(yaml);
        assert!(err.to_string().contains(expected), "{yaml}: {err}");
        assert!(err.to_string().contains("ImageSpec 'x'"), "{yaml}: {err}");
    }
}

#[test]
fn missing_requirements_file_names_spec_path_and_base_directory() {
    let dir = tempfile::tempdir().unwrap();
    let err = plan_in(dir.path(), "name: hello\nrequirements: requirements.txt\n").unwrap_err();
    assert!(
        matches!(
            err,
            PlanError::Spec(ImageSpecError::RequirementsNotFound { .. })
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("'requirements.txt'") && msg.contains("'hello'"),
        "{msg}"
    );
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
}

// ------------------------------------------------------------------ against the engine

fn union_build(cwd: &Path, args: &[&str]) -> std::process::Output {
    ensure_engine();
    let o = Command::new(env!("CARGO_BIN_EXE_union"))
        .current_dir(cwd)
        .env("UNION_WARM", "0")
        .env("VIRTUAL_ENV", crate::support::repo().join(".venv"))
        .env("DOCKER_HOST", TEST_DOCKER_HOST)
        .env_remove("FLYTE_FORCE_PUSH_IMAGE_SPEC")
        .arg("build")
        .args(args)
        .output()
        .unwrap();
    eprintln!(
        "--- union build {args:?}\n--- stdout:\n{}--- stderr:\n{}--- {:?}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        o.status
    );
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_fixture_builds_pushes_pulls_back_and_runs_its_task() {
    // Pushed to the suite's registry: the example itself names none.
    let project = crate::support::Project::hello_pinned();
    let hello = project.root().to_path_buf();
    let started = Instant::now();
    let o = union_build(
        &hello,
        &[
            "workflows",
            "--force",
            "--quiet",
            "--base-image",
            TEST_BASE_IMAGE,
        ],
    );
    assert!(o.status.success());
    eprintln!("forced build of the hello image: {:?}", started.elapsed());
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let (image, status) = stdout.trim().split_once('\t').expect("image<TAB>status");
    assert!(
        image.starts_with("localhost:30000/say-hello-image:"),
        "{image}"
    );
    assert_eq!(status, "built and pushed");

    // A second build finds the image in the registry and skips.
    let started = Instant::now();
    let o = union_build(
        &hello,
        &["workflows", "--quiet", "--base-image", TEST_BASE_IMAGE],
    );
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("{image}\texists")
    );
    eprintln!("warm (exists) run: {:?}", started.elapsed());

    // Pull it back from the registry and use it.
    let docker = docker().await;
    remove_local(&docker, image).await;
    pull(&docker, image).await;
    let (code, out) = run_in(
        &docker,
        image,
        &[
            "python",
            "-c",
            "import flytekit; print(flytekit.__version__)",
        ],
        &[],
    )
    .await;
    assert_eq!((code, out.trim()), (0, FLYTEKIT), "{out}");

    // Run say_hello the way a cluster does: fast-register archive + pyflyte-execute.
    let work = shared_tempdir();
    let dir = work.path().display().to_string();
    // The image holds flytekit only (the fixture's requirements.txt), so the archive's copy of
    // the module imports flytekit under the name `union` (union re-exports flytekit's API).
    let hello_py = std::fs::read_to_string(hello.join("workflows/hello.py"))
        .unwrap()
        .replace("import union\n", "import flytekit as union\n");
    write_fast_archive(
        &work.path().join("fast.tar.gz"),
        &[
            ("workflows/__init__.py", String::new()),
            ("workflows/hello.py", hello_py),
        ],
    );
    use union_idl::flyteidl::core::{
        literal, primitive, scalar, Literal, LiteralMap, Primitive, Scalar,
    };
    let string_literal = |s: &str| Literal {
        value: Some(literal::Value::Scalar(Box::new(Scalar {
            value: Some(scalar::Value::Primitive(Primitive {
                value: Some(primitive::Value::StringValue(s.to_string())),
            })),
        }))),
        ..Default::default()
    };
    let inputs = LiteralMap {
        literals: [("name".to_string(), string_literal("Container"))]
            .into_iter()
            .collect(),
    };
    std::fs::write(work.path().join("inputs.pb"), inputs.encode_to_vec()).unwrap();
    let fast = format!("file://{dir}/fast.tar.gz");
    let (inputs_pb, out_prefix, raw, ckpt) = (
        format!("{dir}/inputs.pb"),
        format!("{dir}/out"),
        format!("{dir}/raw"),
        format!("{dir}/ckpt"),
    );
    let cmd = [
        "pyflyte-fast-execute",
        "--additional-distribution",
        &fast,
        "--dest-dir",
        "/root",
        "--",
        "pyflyte-execute",
        "--inputs",
        &inputs_pb,
        "--output-prefix",
        &out_prefix,
        "--raw-output-data-prefix",
        &raw,
        "--checkpoint-path",
        &ckpt,
        "--prev-checkpoint",
        "\"\"",
        "--resolver",
        "flytekit.core.python_auto_container.default_task_resolver",
        "--",
        "task-module",
        "workflows.hello",
        "task-name",
        "say_hello",
    ];
    let started = Instant::now();
    let (code, out) = run_in(&docker, image, &cmd, &[format!("{dir}:{dir}")]).await;
    eprintln!("task container: {:?}", started.elapsed());
    assert_eq!(code, 0, "{out}");
    let outputs = LiteralMap::decode(
        std::fs::read(work.path().join("out/outputs.pb"))
            .unwrap()
            .as_slice(),
    )
    .unwrap();
    assert_eq!(outputs.literals["o0"], string_literal("Hello, Container!"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_specs_are_built_once_and_existing_images_skipped() {
    let project = crate::support::Project::hello_pinned();
    let hello = project.root().to_path_buf();
    // Make sure the hello image is in the registry (built by the test above or an earlier run).
    let o = union_build(
        &hello,
        &["workflows", "--quiet", "--base-image", TEST_BASE_IMAGE],
    );
    assert!(o.status.success());
    let s =
        spec("name: say-hello-image\nrequirements: requirements.txt\nregistry: localhost:30000\n");
    let plan = dockerfile::plan(&s, &TagContext::new(&hello), &settings()).unwrap();
    let builder = Builder::connect().await.unwrap();
    let results = builder
        .build_all(
            &[plan.clone(), plan.clone()],
            &BuildAllOptions::default(),
            &builder,
            &NoReporter,
        )
        .await;
    assert_eq!(results.len(), 1, "one image name, one build");
    assert_eq!(results[0].0, plan.image_name);
    assert_eq!(results[0].1.as_ref().unwrap(), &Outcome::Exists);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_command_reports_that_steps_output() {
    ensure_engine();
    let dir = tempfile::tempdir().unwrap();
    let marker = unique("union-marker");
    let yaml = format!(
        "name: failing\ncommands: [\"echo {marker}; ls /no-such-dir-{marker}\", \"echo never-runs\"]\n"
    );
    let plan = plan_ok(dir.path(), &yaml);
    let builder = Builder::connect().await.unwrap();
    let err = builder.build(&plan, &NoReporter).await.unwrap_err();
    let BuildError::StepFailed { step, output, .. } = &err else {
        panic!("expected a failing step, got {err:?}");
    };
    assert!(step.contains(&format!("echo {marker}")), "{step}");
    assert!(!step.contains("--mount"), "{step}");
    assert!(output.contains(&marker), "{output}");
    assert!(
        output.contains(&format!("/no-such-dir-{marker}")),
        "{output}"
    );
    assert!(!output.contains("never-runs"), "{output}");
    assert!(err.to_string().contains("exit code: 2"), "{err}");
    assert!(output.lines().count() <= union_image::build::FAILED_STEP_LINES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_is_used_during_the_build_and_absent_from_every_layer() {
    ensure_engine();
    let dir = tempfile::tempdir().unwrap();
    let secret = unique("UNION-TEST-SECRET");
    // The secret is a requirements file only the install step can read: `six` gets installed
    // from it, so the build must have used it.
    write(
        dir.path(),
        "reqs.secret",
        &format!("six\n# token={secret}\n"),
    );
    let yaml = format!(
        "name: secret-build\nenv: {{RUN_ID: \"{}\"}}\npip_secret_mounts: [[reqs.secret, /run/secrets/reqs]]\n\
         pip_extra_args: --requirement /run/secrets/reqs\n",
        unique("run")
    );
    let plan = plan_ok(dir.path(), &yaml);
    assert!(!plan.dockerfile.contains(&secret));
    let builder = Builder::connect().await.unwrap();
    builder.build(&plan, &NoReporter).await.unwrap();
    let docker = docker().await;
    let image = plan.image_name.as_str();
    let (code, out) = run_in(
        &docker,
        image,
        &["python", "-c", "import six; print('six', six.__version__)"],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let (code, out) = run_in(&docker, image, &["sh", "-c", "cat /run/secrets/reqs"], &[]).await;
    assert_ne!(
        code, 0,
        "the secret file must not exist in the image: {out}"
    );
    let saved = save(&docker, image).await;
    assert!(saved.len() > 1_000_000, "docker save returned the image");
    assert!(
        !saved.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the secret appears in `docker save` output"
    );
    let history = docker.image_history(image).await.unwrap();
    assert!(history.iter().all(|h| !h.created_by.contains(&secret)));
    remove_local(&docker, image).await;
}

#[test]
fn dry_run_prints_name_existence_and_dockerfile_and_builds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("dry-run");
    write(
        dir.path(),
        "spec.yaml",
        &format!("name: {name}\nregistry: localhost:30000\npackages: [six]\n"),
    );
    let o = union_build(
        dir.path(),
        &["spec.yaml", "--dry-run", "--base-image", TEST_BASE_IMAGE],
    );
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!("image: localhost:30000/{name}:")),
        "{out}"
    );
    assert!(out.contains("exists: no"), "{out}");
    assert!(
        out.contains(&format!("  FROM {TEST_BASE_IMAGE} AS union-base")),
        "{out}"
    );
    // Nothing was built or pushed.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let docker = docker().await;
        let image = out
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("image: ")
            .to_string();
        assert!(
            docker.inspect_image(&image).await.is_err(),
            "{image} must not be built"
        );
    });
}

#[test]
fn unreachable_engine_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "spec.yaml", "name: x\n");
    let o = Command::new(env!("CARGO_BIN_EXE_union"))
        .current_dir(dir.path())
        .env("UNION_WARM", "0")
        .env("VIRTUAL_ENV", crate::support::repo().join(".venv"))
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["build", "spec.yaml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot reach the Docker engine at unix:///nonexistent/docker.sock; start it or set DOCKER_HOST"),
        "{err}"
    );
}

#[test]
fn refused_spec_fails_before_any_build_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "spec.yaml", "name: x\ncuda: '12.1'\n");
    // Even with no engine at all: the refusal comes first.
    let o = Command::new(env!("CARGO_BIN_EXE_union"))
        .current_dir(dir.path())
        .env("UNION_WARM", "0")
        .env("VIRTUAL_ENV", crate::support::repo().join(".venv"))
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["build", "spec.yaml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("field `cuda` is not supported"), "{err}");
}
