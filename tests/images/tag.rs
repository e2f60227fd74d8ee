//! Live comparison of `union_image` tags with the real flytekit 1.16.31 in `.venv`.
//!
//! A deterministic generator builds a few hundred ImageSpecs combining every hashed field
//! (unicode and quotes in strings, nested base images, tag_format, requirements with CRLF and
//! whitespace, copy lists, source_root in ALL / NO_COPY / LOADED_MODULES mode, builder_options
//! with ints, bools, floats and nesting), plus YAML specs and error cases. One Python process
//! (tests/support/image_tag_oracle.py) computes flytekit's `image_name()` and `id` for all of
//! them; Rust must produce the same, both from the kwargs and from the bridge's JSON dump.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Map, Value};
use union_image::{HostEnv, ImageSpec, TagContext};

fn python() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    p.exists().then_some(p)
}

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

const STRINGS: &[&str] = &[
    "numpy",
    "pandas==2.2.2",
    "scikit-learn>=1.4",
    "it's",
    "say \"hi\"",
    "both ' and \"",
    "back\\slash",
    "tab\there",
    "new\nline",
    "cr\rret",
    "ctl\u{1}\u{1b}\u{7f}",
    "é ü 名前 😀",
    "nbsp\u{a0}shy\u{ad}",
    "sep\u{2028}priv\u{e000}",
    "",
    " spaced ",
    "git+https://github.com/org/repo@main#egg=x",
];

const NAMES: &[&str] = &[
    "my-image",
    "My-Image",
    "flytekit",
    "Ünïcode-ÑAME",
    "ΣΑΣ",
    "img_2",
    "x",
];
const REGISTRIES: &[Option<&str>] = &[
    None,
    Some("ghcr.io/Example-Org"),
    Some("localhost:30000"),
    Some("docker.io/User/Sub"),
    Some("my-registry.example.com:5000/team"),
    Some("ghcr.io/ü"),
    Some(""),
];
const TAG_FORMATS: &[&str] = &[
    "{spec_hash}-dev",
    "v2-{spec_hash}",
    "{spec_hash:>30}",
    "{{lit}}-{spec_hash}",
    "{spec_hash!r}",
    "",
    "{spec_hash:.5}",
];

fn strs(rng: &mut Rng, max: usize) -> Value {
    let n = rng.below(max + 1);
    Value::Array(
        (0..n)
            .map(|_| Value::String(rng.pick(STRINGS).to_string()))
            .collect(),
    )
}

fn opt_str(rng: &mut Rng, percent: u64) -> Option<Value> {
    rng.chance(percent)
        .then(|| Value::String(rng.pick(STRINGS).to_string()))
}

fn json_scalar(rng: &mut Rng) -> Value {
    match rng.below(9) {
        0 => json!(rng.below(1000) as i64 - 500),
        1 => json!(true),
        2 => json!(false),
        3 => Value::Null,
        4 => json!(rng.pick(&[1.0, 0.1, -2.5, 1e20, 1e-7, 123456.789, 1e16, 1e15])),
        5 => json!(4611686018427387904i64),
        6 => json!([1, "a", null, [true]]),
        7 => json!({"nested": {"k": 1.5, "é": "v"}, "list": []}),
        _ => Value::String(rng.pick(STRINGS).to_string()),
    }
}

fn json_dict(rng: &mut Rng) -> Value {
    let keys = [
        "imagepull_secret_name",
        "n",
        "flag",
        "uv_image",
        "é-key",
        "it's",
        "z",
        "a",
    ];
    let mut m = Map::new();
    for _ in 0..rng.below(5) {
        m.insert(rng.pick(&keys).to_string(), json_scalar(rng));
    }
    Value::Object(m)
}

/// A random set of ImageSpec kwargs. `depth` limits nested base images.
fn random_spec(rng: &mut Rng, fixture: &Fixture, depth: usize) -> Map<String, Value> {
    let mut s = Map::new();
    if rng.chance(90) {
        s.insert("name".into(), json!(rng.pick(NAMES)));
    }
    if rng.chance(40) {
        s.insert(
            "python_version".into(),
            json!(rng.pick(&["3.11", "3.10", "3.12"])),
        );
    }
    if rng.chance(20) {
        s.insert(
            "builder".into(),
            json!(rng.pick(&["default", "envd", "noop"])),
        );
    }
    if rng.chance(30) {
        let mut env = Map::new();
        for _ in 0..rng.below(4) {
            env.insert(
                rng.pick(&["A", "PATH", "MSG", "é", "K'Q"]).to_string(),
                json!(rng.pick(STRINGS)),
            );
        }
        s.insert("env".into(), Value::Object(env));
    }
    if let Some(r) = rng.pick(REGISTRIES) {
        s.insert("registry".into(), json!(r));
    }
    for (field, p) in [
        ("packages", 50),
        ("conda_packages", 15),
        ("conda_channels", 15),
        ("apt_packages", 25),
    ] {
        if rng.chance(p) {
            s.insert(field.into(), strs(rng, 3));
        }
    }
    if rng.chance(30) {
        s.insert(
            "requirements".into(),
            json!(rng.pick(&fixture.requirements)),
        );
    }
    for (field, p) in [
        ("cuda", 10),
        ("cudnn", 10),
        ("pip_index", 20),
        ("pip_extra_args", 15),
        ("registry_config", 15),
        ("python_exec", 10),
    ] {
        if let Some(v) = opt_str(rng, p) {
            s.insert(field.into(), v);
        }
    }
    if rng.chance(35) {
        if depth > 0 && rng.chance(40) {
            s.insert(
                "base_image".into(),
                json!({"__spec__": random_spec(rng, fixture, depth - 1)}),
            );
        } else {
            s.insert(
                "base_image".into(),
                json!(rng.pick(&[
                    "python:3.11-slim",
                    "nvcr.io/nvidia/pytorch:24.01-py3",
                    "Ubuntu:22.04"
                ])),
            );
        }
    }
    if rng.chance(25) {
        s.insert(
            "platform".into(),
            json!(rng.pick(&["linux/arm64", "linux/amd64", "linux/amd64,linux/arm64"])),
        );
    }
    for (field, p) in [
        ("pip_extra_index_url", 20),
        ("entrypoint", 15),
        ("commands", 30),
        ("runtime_packages", 15),
    ] {
        if rng.chance(p) {
            s.insert(field.into(), strs(rng, 3));
        }
    }
    if rng.chance(15) {
        s.insert(
            "pip_secret_mounts".into(),
            json!([[".netrc", "/root/.netrc"], ["a'b", "/x"]]),
        );
    }
    if rng.chance(25) {
        s.insert("tag_format".into(), json!(rng.pick(TAG_FORMATS)));
    }
    match rng.below(10) {
        0 | 1 => {
            s.insert(
                "source_root".into(),
                json!(rng.pick(&["src", "./src", "src/", &fixture.abs_src])),
            );
            s.insert("source_copy_mode".into(), json!("ALL"));
        }
        2 => {
            s.insert("source_root".into(), json!("src"));
            s.insert("source_copy_mode".into(), json!("NO_COPY"));
        }
        3 => {
            // LOADED_MODULES (the __post_init__ default) with a relative root: flytekit's
            // commonpath check never matches the absolute module files.
            s.insert("source_root".into(), json!("src"));
        }
        _ => {}
    }
    if rng.chance(25) {
        let n = 1 + rng.below(3);
        let entries: Vec<Value> = (0..n)
            .map(|_| json!(rng.pick(&fixture.copy_entries)))
            .collect();
        s.insert("copy".into(), Value::Array(entries));
    }
    if rng.chance(30) {
        s.insert("builder_options".into(), json_dict(rng));
    }
    if rng.chance(20) {
        s.insert("builder_config".into(), json_dict(rng));
    }
    s
}

struct Fixture {
    dir: PathBuf,
    abs_src: String,
    requirements: Vec<String>,
    copy_entries: Vec<String>,
}

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

fn make_fixture(root: &Path, k: usize, git: bool) -> Fixture {
    let dir = root.join(format!("f{k}"));
    let src = dir.join("src");
    write(&dir.join("req_lf.txt"), b"numpy==1.26.4\npandas==2.2.2\n");
    write(
        &dir.join("req_crlf.txt"),
        format!("numpy==1.26.{k}\r\npandas\r\n\r\n").as_bytes(),
    );
    write(&dir.join("req_ws.txt"), b"  \n\tnumpy\x0b\n\x0c \r\n");
    write(&dir.join("req_empty.txt"), b"");
    write(
        &dir.join("uv.lock"),
        format!("version = 1\n# {k}\n").as_bytes(),
    );
    write(&dir.join("sub dir/requirements.txt"), "é==1\n".as_bytes());
    for (rel, body) in [
        ("main.py", format!("x = {k}\n")),
        ("a.py", "a\n".into()),
        ("a-b.py", "ab\n".into()),
        ("a b.py", "a space\n".into()),
        ("é.py", "unicode\n".into()),
        ("B.py", "upper\n".into()),
        ("pkg/__init__.py", String::new()),
        ("pkg/mod.py", format!("import pkg.sub.deep\nV = {k}\n")),
        ("pkg/sub/__init__.py", String::new()),
        ("pkg/sub/deep.py", "D = 1\n".into()),
        ("pkg2/x.txt", "x\n".into()),
        ("__pycache__/main.cpython-311.pyc", "junk".into()),
        ("x.pyc", "junk".into()),
        (".cache/f", "cache".into()),
        ("data.log", "log".into()),
        ("build/out.bin", "bin".into()),
        ("build/keep.bin", "keep".into()),
        ("docs/a/b.md", "doc".into()),
        ("docs/c.md", "doc".into()),
        ("tmp.tmp", "tmp".into()),
        ("secret/s.txt", "s".into()),
        (".gitignore", "*.tmp\nsecret/\n".into()),
    ] {
        write(&src.join(rel), body.as_bytes());
    }
    if k.is_multiple_of(2) {
        write(
            &src.join(".dockerignore"),
            b"# comment\n*.log\nbuild\n!build/keep.bin\n\n docs/**/*.md\r\nsrc/a.py\n",
        );
    }
    if git {
        let ok = Command::new("git")
            .args(["init", "-q"])
            .current_dir(&src)
            .status()
            .map(|s| s.success());
        assert!(matches!(ok, Ok(true)), "git init failed");
    }
    // A copy tree with several sibling directories, so os.walk's (readdir) order matters.
    for d in ["zeta", "alpha", "mid", "alpha/inner", "Beta", "q-r"] {
        write(
            &dir.join("copydir").join(d).join("f.txt"),
            format!("{d}{k}").as_bytes(),
        );
        write(&dir.join("copydir").join(d).join("a.txt"), d.as_bytes());
    }
    write(&dir.join("copydir/top.txt"), b"top");
    write(&dir.join("single.txt"), format!("single {k}").as_bytes());
    write(&dir.join("nested/deeper/file.cfg"), b"cfg");
    Fixture {
        abs_src: src.display().to_string(),
        dir,
        requirements: [
            "req_lf.txt",
            "req_crlf.txt",
            "req_ws.txt",
            "req_empty.txt",
            "uv.lock",
            "sub dir/requirements.txt",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        copy_entries: [
            "single.txt",
            "copydir",
            "copydir/",
            "nested/deeper/file.cfg",
            "src",
            "does-not-exist.txt",
            "nested",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    }
}

/// The kwargs the oracle gets, in the bridge's shape (nested `{"__spec__": {...}}` unwrapped).
fn kwargs_to_bridge(spec: &Map<String, Value>) -> Map<String, Value> {
    let mut out = spec.clone();
    if let Some(Value::Object(b)) = spec.get("base_image") {
        if let Some(Value::Object(inner)) = b.get("__spec__") {
            out.insert("base_image".into(), Value::Object(kwargs_to_bridge(inner)));
        }
    }
    out
}

struct Case {
    dir: PathBuf,
    kind: &'static str,
    spec: Map<String, Value>,
    yaml: String,
    sys_path: Option<String>,
    import: Vec<String>,
}

fn rust_result(
    case: &Case,
    host: &HostEnv,
    bridge: Option<&Map<String, Value>>,
    modules: &[PathBuf],
) -> Result<(String, String, String), String> {
    let spec = match (case.kind, bridge) {
        ("yaml", _) => ImageSpec::from_yaml_str(&case.yaml, "case.yaml", host),
        (_, Some(b)) => ImageSpec::from_bridge_json(b, host),
        (_, None) => ImageSpec::from_bridge_json(&kwargs_to_bridge(&case.spec), host),
    }
    .map_err(|e| e.to_string())?;
    let mut ctx = TagContext::new(&case.dir);
    ctx.host = host.clone();
    ctx.loaded_modules = modules.to_vec();
    let name = spec.image_name(&ctx).map_err(|e| e.to_string())?;
    let repr = spec.tag_repr(&ctx).map_err(|e| e.to_string())?;
    Ok((name, spec.id(), repr))
}

#[test]
fn tags_match_flytekit() {
    let Some(py) = python() else {
        panic!("no .venv/bin/python with flytekit 1.16.31 next to Cargo.toml; create it to run this test");
    };
    let tmp = tempfile::tempdir().unwrap();
    let fixtures: Vec<Fixture> = (0..4)
        .map(|k| make_fixture(tmp.path(), k, k >= 2))
        .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut cases = Vec::new();
    for i in 0..320 {
        let f = &fixtures[i % fixtures.len()];
        cases.push(Case {
            dir: f.dir.clone(),
            kind: "kwargs",
            spec: random_spec(&mut rng, f, 2),
            yaml: String::new(),
            sys_path: None,
            import: vec![],
        });
    }
    // YAML specs, as `--image spec.yaml`.
    for (i, yaml) in [
        "name: My-Img\nregistry: GHCR.io/Org\npackages: [numpy, pandas]\n",
        "packages:\n  - \"it's\"\n  - 'say \"hi\"'\nenv:\n  A: \"1\"\n  B: é\nbuilder_options: {n: 1, f: true, x: 1.0, y: null, z: [1, 2.5]}\n",
        "name: r\nrequirements: req_crlf.txt\ntag_format: \"{spec_hash}-dev\"\ncommands: [\"echo 'a'\"]\n",
        "name: c\ncopy: [copydir, single.txt]\nbase_image: python:3.11-slim\nplatform: linux/arm64\n",
        "name: s\nsource_root: src\n",
        "{}\n",
        "name: e\nentrypoint: []\nenv: {}\nbuilder_config: {uv_image: 'ghcr.io/astral-sh/uv:0.5.1'}\n",
    ]
    .iter()
    .enumerate()
    {
        let f = &fixtures[i % fixtures.len()];
        cases.push(Case { dir: f.dir.clone(), kind: "yaml", spec: Map::new(), yaml: yaml.to_string(), sys_path: None, import: vec![] });
    }
    // LOADED_MODULES with real imports (absolute root, so module files count).
    let f0 = &fixtures[0];
    for (root, modules) in [
        (f0.abs_src.clone(), vec!["pkg.mod"]),
        (format!("{}/pkg", f0.abs_src), vec![]),
        (f0.abs_src.clone() + "/", vec![]),
    ] {
        let spec = json!({"name": "loaded", "source_root": root, "packages": ["numpy"]});
        cases.push(Case {
            dir: f0.dir.clone(),
            kind: "kwargs",
            spec: spec.as_object().unwrap().clone(),
            yaml: String::new(),
            sys_path: Some(f0.abs_src.clone()),
            import: modules.iter().map(|s| s.to_string()).collect(),
        });
    }
    // Cases where flytekit raises.
    for spec in [
        json!({"name": "bad", "registry": "Bad Registry"}),
        json!({"name": "bad", "registry": "ghcr.io/"}),
        json!({"name": "bad", "requirements": "missing.txt"}),
        json!({"name": "bad", "source_copy_mode": "ALL"}),
        json!({"name": "bad", "packages": "numpy"}),
    ] {
        cases.push(Case {
            dir: f0.dir.clone(),
            kind: "kwargs",
            spec: spec.as_object().unwrap().clone(),
            yaml: String::new(),
            sys_path: None,
            import: vec![],
        });
    }

    let input: Vec<Value> = cases
        .iter()
        .map(|c| {
            json!({"dir": c.dir, "kind": c.kind, "spec": c.spec, "yaml": c.yaml, "sys_path": c.sys_path, "import": c.import})
        })
        .collect();
    let in_path = tmp.path().join("cases.json");
    let out_path = tmp.path().join("results.json");
    fs::write(&in_path, serde_json::to_vec(&input).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/image_tag_oracle.py");
    let out = Command::new(&py)
        .arg(&script)
        .arg(&in_path)
        .arg(&out_path)
        .env_remove("FLYTE_FORCE_PUSH_IMAGE_SPEC")
        .output()
        .expect("run the flytekit oracle");
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&fs::read(&out_path).unwrap()).unwrap();
    assert_eq!(results.len(), cases.len());

    let host = HostEnv::current();
    let mut failures = Vec::new();
    let (mut compared, mut errors, mut distinct) = (0, 0, std::collections::HashSet::new());
    for (i, (case, res)) in cases.iter().zip(&results).enumerate() {
        let label = format!(
            "case {i} ({}) {}",
            case.kind,
            if case.kind == "yaml" {
                case.yaml.clone()
            } else {
                Value::Object(case.spec.clone()).to_string()
            }
        );
        if let Some(err) = res.get("error") {
            errors += 1;
            let rust = rust_result(case, &host, None, &[]);
            if rust.is_ok() {
                failures.push(format!(
                    "{label}\n  flytekit raised {err} but Rust gave {rust:?}"
                ));
            }
            continue;
        }
        let want_name = res["image_name"].as_str().unwrap();
        let want_id = res["id"].as_str().unwrap();
        let modules: Vec<PathBuf> = res["modules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| PathBuf::from(m.as_str().unwrap()))
            .collect();
        let bridge = res["bridge"].as_object().unwrap();
        let mut attempts = vec![("bridge", rust_result(case, &host, Some(bridge), &modules))];
        if case.kind == "kwargs" {
            attempts.push(("kwargs", rust_result(case, &host, None, &modules)));
        }
        for (how, got) in attempts {
            match got {
                Ok((name, id, repr)) if name == want_name && id == want_id => {
                    compared += 1;
                    distinct.insert(name);
                    let _ = repr;
                }
                Ok((name, id, repr)) => failures.push(format!(
                    "{label}\n  via {how}: rust {name} / id {id}\n  flytekit {want_name} / id {want_id}\n  rust tag text: {repr}\n  flytekit id text: {}",
                    res["id_text"]
                )),
                Err(e) => failures.push(format!("{label}\n  via {how}: rust error {e}; flytekit {want_name}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(compared >= 600, "only {compared} comparisons");
    assert!(
        errors >= 5,
        "expected the error cases to fail in flytekit, got {errors}"
    );
    assert!(
        distinct.len() >= 250,
        "generator produced too few distinct images: {}",
        distinct.len()
    );
}
