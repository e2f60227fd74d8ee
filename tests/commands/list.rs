//! `union list`: discovery with pyflyte's semantics (project root, module names, directories).

use crate::support::*;

fn list_json(paths: &[&str]) -> serde_json::Value {
    let o = run(union().arg("list").arg("--json").args(paths));
    assert!(o.status.success());
    serde_json::from_str(&stdout(&o)).unwrap()
}

fn names(doc: &serde_json::Value, kind: &str) -> Vec<String> {
    let mut v: Vec<String> = doc["entities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn directory_discovers_every_module_below_it() {
    let doc = list_json(&[&fixture("pkgtree/myproj")]);
    assert!(doc["root"]
        .as_str()
        .unwrap()
        .ends_with("python_fixtures/pkgtree"));
    assert_eq!(
        doc["modules"],
        serde_json::json!([
            "myproj",
            "myproj.greet",
            "myproj.sub",
            "myproj.sub.deep",
            "myproj.sub.deep.leaf",
            "myproj.sub.math_ops"
        ])
    );
    assert_eq!(
        names(&doc, "task"),
        [
            "myproj.greet.greet",
            "myproj.sub.deep.leaf.leaf",
            "myproj.sub.math_ops.add"
        ]
    );
    assert_eq!(
        names(&doc, "workflow"),
        ["myproj.greet.greet_wf", "myproj.sub.math_ops.add_wf"]
    );
    assert_eq!(
        names(&doc, "launch_plan"),
        ["myproj.sub.math_ops.add_three"]
    );
    // A directory without __init__.py is not a package: its module is not imported.
    assert!(
        !stdout(&run(union().args(["list", &fixture("pkgtree/myproj")])))
            .contains("never_discovered")
    );
}

#[test]
fn file_in_a_package_is_named_from_the_project_root() {
    let doc = list_json(&[&fixture("pkgtree/myproj/sub/math_ops.py")]);
    assert_eq!(doc["modules"], serde_json::json!(["myproj.sub.math_ops"]));
    let lp = doc["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "launch_plan")
        .unwrap();
    assert_eq!(lp["workflow"], "myproj.sub.math_ops.add_wf");
    // The launch plan's default for b replaces the workflow's.
    let b = lp["interface"]["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "b")
        .unwrap();
    assert_eq!(b["default"], "3");
}

#[test]
fn imagespec_crosses_as_plain_data_with_every_field() {
    let doc = list_json(&[&fixture("hello/workflows")]);
    let task = doc["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "task")
        .unwrap();
    assert_eq!(task["name"], "workflows.hello.say_hello");
    let img = &task["container_image"];
    assert_eq!(img["kind"], "spec");
    let spec = img["spec"].as_object().unwrap();
    assert_eq!(spec["name"], "say-hello-image");
    assert_eq!(spec["requirements"], "requirements.txt");
    assert_eq!(spec["platform"], "linux/amd64");
    // All 29 dataclass fields plus the force-push flag.
    assert_eq!(spec.len(), 30, "{spec:?}");
}

#[test]
fn both_sdk_styles_are_discovered() {
    // hello uses `import union`; calc uses `from flytekit import ...`.
    let doc = list_json(&[&fixture("typed/workflows/calc.py")]);
    assert_eq!(
        names(&doc, "task"),
        [
            "workflows.calc.above",
            "workflows.calc.scale",
            "workflows.calc.summarize"
        ]
    );
    let scale = doc["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "workflows.calc.scale")
        .unwrap();
    assert_eq!(
        scale["container_image"]["spec"]["apt_packages"],
        serde_json::json!(["ca-certificates"])
    );
    assert_eq!(scale["interface"]["inputs"][0]["type"], "List[int]");
}

#[test]
fn import_error_in_one_module_names_it() {
    let o = run(union().args(["list", &fixture("errors")]));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("importing module `errors.import_error` failed"),
        "{err}"
    );
    assert!(err.contains("import_error.py\", line 3"), "{err}");
}

#[test]
fn paths_from_different_roots_are_refused() {
    let o = run(union().args([
        "list",
        &fixture("hello/workflows"),
        &fixture("pkgtree/myproj"),
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("project root"), "{}", stderr(&o));
}
