//! The generated wire types are lossless for what flytekit 1.16 writes.
//!
//! The real flytekit (the project's `.venv`, or `UNION_TEST_PYTHON`) serializes every entity of the
//! fixtures in `python_fixtures/` (`tests/support/serialize_fixture.py`, no image is built); each
//! TaskSpec / WorkflowSpec / LaunchPlan is decoded with `union_idl` and encoded again, and
//! flyteidl's Python types check the result (`tests/support/compare_roundtrip.py`): equal messages,
//! and the deterministic re-serialization byte-identical to flytekit's bytes. prost drops unknown
//! fields, so passing means every field flytekit sets is known to the generated types. The negative
//! tests show the check does fail when a field is lost.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use prost::Message;
use union_idl::flyteidl::{admin, core, service};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// (project root under python_fixtures/, modules to import)
const FIXTURES: &[(&str, &[&str])] = &[
    ("hello", &["workflows.hello"]),
    ("typed", &["workflows.calc"]),
    (
        "pkgtree",
        &[
            "myproj.greet",
            "myproj.sub.math_ops",
            "myproj.sub.deep.leaf",
        ],
    ),
];

const TASK_SPEC: &str = "flyteidl.admin.TaskSpec";
const WORKFLOW_SPEC: &str = "flyteidl.admin.WorkflowSpec";
const LAUNCH_PLAN: &str = "flyteidl.admin.LaunchPlan";

/// One file flytekit wrote: its message type and path.
#[derive(Debug, Clone)]
struct Serialized {
    kind: String,
    path: PathBuf,
}

fn python() -> PathBuf {
    let python = std::env::var_os("UNION_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(MANIFEST_DIR).join(".venv/bin/python"));
    assert!(
        python.exists(),
        "{} not found: these tests need flytekit 1.16 (scripts/setup-python.sh or a .venv with \
         flytekit==1.16.31), or UNION_TEST_PYTHON pointing at such a python",
        python.display()
    );
    python
}

fn work_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("idl_roundtrip")
}

/// Serializes all fixtures once per test binary (the three projects in parallel).
fn serialized() -> &'static [Serialized] {
    static ONCE: OnceLock<Vec<Serialized>> = OnceLock::new();
    ONCE.get_or_init(|| {
        let root = work_dir();
        let _ = std::fs::remove_dir_all(&root);
        let script = Path::new(MANIFEST_DIR).join("tests/support/serialize_fixture.py");
        let python = python();
        let handles: Vec<_> = FIXTURES
            .iter()
            .map(|(project, modules)| {
                let out = root.join(project);
                let mut cmd = Command::new(&python);
                cmd.arg(&script)
                    .arg(
                        Path::new(MANIFEST_DIR)
                            .join("python_fixtures")
                            .join(project),
                    )
                    .arg(&out)
                    .args(modules.iter());
                std::thread::spawn(move || {
                    let output = cmd.output().expect("run serialize_fixture.py");
                    assert!(
                        output.status.success(),
                        "serialize_fixture.py failed for {}:\n{}",
                        out.display(),
                        String::from_utf8_lossy(&output.stderr)
                    );
                    // The script prints one file name per line; flytekit may print other noise.
                    String::from_utf8_lossy(&output.stdout)
                        .lines()
                        .filter(|l| l.ends_with(".pb"))
                        .map(|name| {
                            let kind = [TASK_SPEC, WORKFLOW_SPEC, LAUNCH_PLAN]
                                .into_iter()
                                .find(|k| name.ends_with(&format!(".{k}.pb")))
                                .unwrap_or_else(|| panic!("no message type in file name {name}"));
                            Serialized {
                                kind: kind.to_string(),
                                path: out.join(name),
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("serializer thread"))
            .collect()
    })
}

/// Decodes with the generated prost type for `kind` and encodes again.
fn reencode(kind: &str, bytes: &[u8]) -> Vec<u8> {
    match kind {
        TASK_SPEC => admin::TaskSpec::decode(bytes)
            .expect("decode TaskSpec")
            .encode_to_vec(),
        WORKFLOW_SPEC => admin::WorkflowSpec::decode(bytes)
            .expect("decode WorkflowSpec")
            .encode_to_vec(),
        LAUNCH_PLAN => admin::LaunchPlan::decode(bytes)
            .expect("decode LaunchPlan")
            .encode_to_vec(),
        other => panic!("unexpected message type {other}"),
    }
}

/// Runs compare_roundtrip.py over (kind, original, re-encoded) triples; returns its verdict lines,
/// in order, each `ok ...` or `mismatch ...: reason`.
fn compare(triples: &[(String, PathBuf, PathBuf)]) -> Vec<String> {
    let script = Path::new(MANIFEST_DIR).join("tests/support/compare_roundtrip.py");
    let mut cmd = Command::new(python());
    cmd.arg(script);
    for (kind, original, reencoded) in triples {
        cmd.arg(kind).arg(original).arg(reencoded);
    }
    let output = cmd.output().expect("run compare_roundtrip.py");
    assert!(
        output.status.success(),
        "compare_roundtrip.py failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        lines.len(),
        triples.len(),
        "one verdict per triple: {lines:#?}"
    );
    lines
}

fn hello_task_spec() -> (&'static Serialized, Vec<u8>) {
    let entity = serialized()
        .iter()
        .find(|s| {
            s.kind == TASK_SPEC
                && s.path
                    .to_string_lossy()
                    .contains("workflows.hello.say_hello")
        })
        .expect("hello's say_hello TaskSpec");
    (entity, std::fs::read(&entity.path).unwrap())
}

#[test]
fn every_fixture_entity_round_trips_losslessly() {
    let entities = serialized();
    // hello: 1 task, 1 workflow, 1 launch plan; typed: 3 + 2 + 2; pkgtree: 3 + 2 + 3.
    assert_eq!(entities.len(), 18, "{entities:#?}");
    for kind in [TASK_SPEC, WORKFLOW_SPEC, LAUNCH_PLAN] {
        assert!(
            entities.iter().any(|e| e.kind == kind),
            "no {kind} among {entities:#?}"
        );
    }

    let mut triples = Vec::new();
    let mut byte_identical = 0;
    for e in entities {
        let original = std::fs::read(&e.path).unwrap();
        let again = reencode(&e.kind, &original);
        // prost's own view: decoding its output gives the same message and the same bytes.
        assert_eq!(
            reencode(&e.kind, &again),
            again,
            "prost re-encoding not stable for {}",
            e.path.display()
        );
        if again == original {
            byte_identical += 1;
        }
        let out = e.path.with_extension("prost.pb");
        std::fs::write(&out, &again).unwrap();
        triples.push((e.kind.clone(), e.path.clone(), out));
    }

    let verdicts = compare(&triples);
    let bad: Vec<_> = verdicts.iter().filter(|v| !v.starts_with("ok ")).collect();
    assert!(bad.is_empty(), "lossy round trips:\n{bad:#?}");
    eprintln!(
        "{} entities round-tripped losslessly ({byte_identical} byte-identical to flytekit's deterministic bytes)",
        entities.len()
    );
}

/// The comparison is not vacuous: a field unknown to the generated types (which prost drops), or a
/// field cleared on the Rust side, is reported.
#[test]
fn round_trip_check_detects_a_dropped_field() {
    let (entity, original) = hello_task_spec();
    let dir = work_dir().join("negative");
    std::fs::create_dir_all(&dir).unwrap();

    // 1. Original bytes carrying a field no flyteidl version defines (field 4095, varint 1), as if
    //    flytekit spoke a newer schema than the generated types.
    let mut with_unknown = original.clone();
    with_unknown.extend_from_slice(&[0xf8, 0xff, 0x03, 0x01]); // key (4095 << 3 | 0), value 1
    let unknown_orig = dir.join("unknown.orig.pb");
    let unknown_rt = dir.join("unknown.prost.pb");
    std::fs::write(&unknown_orig, &with_unknown).unwrap();
    std::fs::write(&unknown_rt, reencode(TASK_SPEC, &with_unknown)).unwrap();

    // 2. A known field lost on the way: TaskMetadata.generates_deck (a BoolValue flytekit always
    //    sets, to false here: presence is the only thing that distinguishes it from unset).
    let mut spec = admin::TaskSpec::decode(original.as_slice()).unwrap();
    let metadata = spec.template.as_mut().unwrap().metadata.as_mut().unwrap();
    assert_eq!(metadata.generates_deck, Some(false));
    metadata.generates_deck = None;
    let dropped_rt = dir.join("dropped.prost.pb");
    std::fs::write(&dropped_rt, spec.encode_to_vec()).unwrap();

    // 3. Control: the untouched round trip passes.
    let control_rt = dir.join("control.prost.pb");
    std::fs::write(&control_rt, reencode(TASK_SPEC, &original)).unwrap();

    let verdicts = compare(&[
        (TASK_SPEC.into(), unknown_orig, unknown_rt),
        (TASK_SPEC.into(), entity.path.clone(), dropped_rt),
        (TASK_SPEC.into(), entity.path.clone(), control_rt),
    ]);
    assert!(
        verdicts[0].starts_with("mismatch "),
        "unknown field not detected: {}",
        verdicts[0]
    );
    assert!(
        verdicts[1].starts_with("mismatch "),
        "dropped generates_deck not detected: {}",
        verdicts[1]
    );
    assert!(
        verdicts[2].starts_with("ok "),
        "control failed: {}",
        verdicts[2]
    );
}

/// TaskMetadata as flytekit 1.16 fills it, decoded field by field.
#[test]
fn task_metadata_has_the_flytekit_1_16_fields() {
    let (_, original) = hello_task_spec();
    let spec = admin::TaskSpec::decode(original.as_slice()).unwrap();
    let template = spec.template.expect("template");
    assert_eq!(
        template.id.as_ref().unwrap().name,
        "workflows.hello.say_hello"
    );
    let md = template.metadata.expect("metadata");
    let runtime = md.runtime.as_ref().expect("runtime");
    assert_eq!(runtime.flavor, "python");
    assert_eq!(runtime.version, "1.16.31");
    assert!(!md.is_eager);
    assert_eq!(
        md.generates_deck,
        Some(false),
        "BoolValue present and false"
    );
    assert!(md.metadata.is_some(), "K8sObjectMetadata present (empty)");
    assert!(md.cache_ignore_input_vars.is_empty());
    let Some(core::task_template::Target::Container(container)) = template.target else {
        panic!("a container task: {:?}", template.target)
    };
    assert!(
        container.image.starts_with("say-hello-image:"),
        "{}",
        container.image
    );

    // Compile-time check of the field names and types the 1.16 schema has.
    let built = core::TaskMetadata {
        is_eager: true,
        generates_deck: Some(true),
        cache_ignore_input_vars: vec!["x".to_string()],
        metadata: Some(core::K8sObjectMetadata::default()),
        ..Default::default()
    };
    assert_eq!(
        core::TaskMetadata::decode(built.encode_to_vec().as_slice()).unwrap(),
        built
    );
}

#[test]
fn schema_and_services_come_from_flyteidl_1_16_8() {
    assert_eq!(union_idl::FLYTEIDL_VERSION, "1.16.8");
    let fds = prost_types::FileDescriptorSet::decode(union_idl::FLYTEIDL_DESCRIPTOR_SET).unwrap();
    let names: Vec<&str> = fds.file.iter().map(|f| f.name()).collect();
    for want in [
        "flyteidl/service/admin.proto",
        "flyteidl/service/dataproxy.proto",
        "flyteidl/core/tasks.proto",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let admin_proto = fds
        .file
        .iter()
        .find(|f| f.name() == "flyteidl/service/admin.proto")
        .unwrap();
    let methods = &admin_proto
        .service
        .iter()
        .find(|s| s.name() == "AdminService")
        .unwrap()
        .method;
    assert!(methods.iter().any(|m| m.name() == "CreateTask"));

    // The stubs exist with the expected paths and shapes (checked at compile time).
    fn _stubs(channel: tonic::transport::Channel) {
        let _admin: service::admin_service_client::AdminServiceClient<tonic::transport::Channel> =
            service::admin_service_client::AdminServiceClient::new(channel.clone());
        let _proxy = service::data_proxy_service_client::DataProxyServiceClient::new(channel);
    }
    fn _servers<A, D>(a: A, d: D)
    where
        A: service::admin_service_server::AdminService,
        D: service::data_proxy_service_server::DataProxyService,
    {
        let _ = service::admin_service_server::AdminServiceServer::new(a);
        let _ = service::data_proxy_service_server::DataProxyServiceServer::new(d);
    }
}
