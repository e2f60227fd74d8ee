//! The web console and the HTTP API it reads, against a real sandbox running real containers:
//! FlyteAdmin's `/api/v1` paths answered as grpc-gateway answers them, then the console in
//! headless Chromium driven by Playwright (`tests/browser/console.mjs`): the link `run --remote`
//! prints, projects and filtered executions, launching the hello workflow from its form, its live
//! status, graph, output and task log, relaunch, a failure's traceback, a running task's log
//! followed then terminated, a branch, a map task and a subworkflow
//! expanded, typed inputs (a list, an Optional) launched from the form. Screenshots are kept under the target directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::cli::{run, stderr, stdout, Project};
use crate::support::exec::{
    build_image, create_request, id, inputs, int, register, wait_done, wait_until,
};
use crate::support::require_docker_infra;
use crate::support::sandbox::{Launch, Sandbox};
use crate::support::{repo, venv};
use union_idl::flyteidl::core::workflow_execution::Phase;
use union_idl::flyteidl::core::ResourceType;

fn lp(name: &str) -> union_idl::flyteidl::core::Identifier {
    id(ResourceType::LaunchPlan, name, "v1")
}

async fn http(method: reqwest::Method, url: &str, body: Option<&str>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut req = client.request(method, url);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let res = req.send().await.expect("the sandbox answers HTTP");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let json =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}) from {url}: {text}"));
    (status, json)
}

async fn get(url: &str) -> (u16, Value) {
    http(reqwest::Method::GET, url, None).await
}

/// What the browser test needs: Node.js and the Playwright package `tests/run-all.sh` installs,
/// and Debian's chromium. Missing ones fail the test, saying how to install them.
fn browser_tooling() -> PathBuf {
    let dir = repo().join("tests/browser");
    let fix = "run `bash tests/setup/browser.sh` (tests/run-all.sh does)";
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "the browser test needs playwright-core in tests/browser/node_modules: {fix}"
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "the browser test needs Debian's chromium at /usr/bin/chromium: {fix}"
    );
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_and_its_http_api_in_a_real_browser() {
    require_docker_infra();
    let browser = browser_tooling();
    let hello_image = build_image("hello", "workflows");
    build_image("typed", "workflows");
    let sb = Sandbox::start();
    let base = sb.url();

    // A user's project: `union run --remote` prints the execution's console link.
    let p = Project::new("hello");
    let cfg = sb.write_config(p.parent());
    let o = run(p.union_docker().env("UNION_CONFIG", &cfg).args([
        "run",
        "--remote",
        "--wait",
        "workflows/hello.py",
        "hello_world_wf",
        "--name",
        "Bob",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Hello, Bob!"), "{}", stdout(&o));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    let printed_url = all
        .split_whitespace()
        .find(|w| w.contains("/console/projects/"))
        .unwrap_or_else(|| panic!("no console link in:\n{all}"))
        .to_string();
    let printed_name = printed_url.rsplit('/').next().unwrap().to_string();
    assert_eq!(
        printed_url,
        format!(
            "{base}/console/projects/flytesnacks/domains/development/executions/{printed_name}"
        )
    );

    // The real FlyteRemote's links: the execution's is the one we printed; an entity version's
    // (flyteconsole's `/launch_plan/NAME/version/V`) is opened in the browser below.
    let script = format!(
        "from flytekit.configuration import Config\n\
         from flytekit.remote import FlyteRemote\n\
         r = FlyteRemote(Config.for_endpoint('{}', insecure=True), default_project='flytesnacks', default_domain='development')\n\
         print(r.generate_console_url(r.fetch_execution(name='{printed_name}')))\n\
         print(r.generate_console_url(r.fetch_launch_plan(name='workflows.hello.hello_world_wf')))\n",
        sb.endpoint()
    );
    let o = run(Command::new(venv().join("bin/python"))
        .args(["-c", &script])
        .current_dir(p.root()));
    assert!(o.status.success(), "FlyteRemote: {}", stderr(&o));
    let remote_urls = stdout(&o);
    let mut remote_urls = remote_urls.lines();
    assert_eq!(remote_urls.next(), Some(printed_url.as_str()));
    let lp_version_url = remote_urls.next().expect("a launch plan link").to_string();
    assert!(
        lp_version_url.starts_with(&format!(
            "{base}/console/projects/flytesnacks/domains/development/launch_plan/workflows.hello.hello_world_wf/version/"
        )),
        "{lp_version_url}"
    );

    // Flyte's own examples style: a failing task, a sleeping one, a branch (flytekit registers).
    register(
        &cfg,
        p.parent(),
        "exec",
        "workflows",
        Some(&hello_image),
        "v1",
    );
    // A subworkflow, a dataclass, a list and an Optional input, to launch from the form.
    register(&cfg, p.parent(), "typed", "workflows", None, "t1");
    let mut admin = sb.admin().await;
    let start = |name: &'static str, lp_name: &'static str, n: (&'static str, i64)| {
        let req = create_request(lp(lp_name), name, inputs(vec![(n.0, int(n.1))]));
        let mut admin = admin.clone();
        async move {
            admin.create_execution(req).await.unwrap();
        }
    };
    start("consolefail", "workflows.failing.validate_wf", ("n", -1)).await;
    start("consolebranch", "workflows.fanout.parity_wf", ("n", 7)).await;
    start("consolemap", "workflows.mapped.map_wf", ("n", 3)).await;
    start("consoledynamic", "workflows.dynamic.chain_wf", ("n", 3)).await;
    // Gate nodes the browser answers: an approval and an input.
    for (name, lp_name) in [
        ("consolereview", "workflows.review.review_wf"),
        ("consoletitle", "workflows.review.title_wf"),
    ] {
        let req = create_request(lp(lp_name), name, inputs(vec![]));
        admin.clone().create_execution(req).await.unwrap();
    }
    start(
        "consolesleepy",
        "workflows.slow.sleepy_wf",
        ("seconds", 600),
    )
    .await;
    wait_done(&mut admin, "consolefail", Duration::from_secs(240)).await;
    wait_done(&mut admin, "consoledynamic", Duration::from_secs(240)).await;

    // FlyteAdmin's HTTP API, as grpc-gateway answers.
    let api = format!("{base}/api/v1");
    let (status, projects) = get(&format!("{api}/projects")).await;
    assert_eq!(status, 200);
    let flytesnacks = projects["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "flytesnacks")
        .expect("flytesnacks is listed");
    assert_eq!(flytesnacks["domains"].as_array().unwrap().len(), 3);
    let exec_url = format!("{api}/executions/flytesnacks/development/{printed_name}");
    let (status, exec) = get(&exec_url).await;
    assert_eq!(status, 200, "{exec}");
    assert_eq!(exec["closure"]["phase"], "SUCCEEDED", "{exec}");
    assert_eq!(
        exec["spec"]["launch_plan"]["name"],
        "workflows.hello.hello_world_wf"
    );
    let (_, data) = get(&format!(
        "{api}/data/executions/flytesnacks/development/{printed_name}"
    ))
    .await;
    assert_eq!(
        data["full_outputs"]["literals"]["o0"]["scalar"]["primitive"]["string_value"],
        "Hello, Bob!"
    );
    let (_, failed) = get(&format!(
        "{api}/executions/flytesnacks/development?limit=10&filters=eq(phase,FAILED)"
    ))
    .await;
    let names: Vec<&str> = failed["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["consolefail"]);
    let (_, lps) = get(&format!(
        "{api}/launch_plan_ids/flytesnacks/development?limit=1000"
    ))
    .await;
    for name in ["workflows.hello.hello_world_wf", "workflows.calc.calc_wf"] {
        assert!(
            lps["entities"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == name),
            "{name} is not listed: {lps}"
        );
    }
    let (_, nodes) = get(&format!(
        "{api}/node_executions/flytesnacks/development/{printed_name}"
    ))
    .await;
    assert_eq!(nodes["node_executions"][0]["id"]["node_id"], "n0");
    let (_, attempts) = get(&format!(
        "{api}/task_executions/flytesnacks/development/{printed_name}/n0"
    ))
    .await;
    let log_uri = attempts["task_executions"][0]["closure"]["logs"][0]["uri"]
        .as_str()
        .expect("a log link")
        .to_string();
    assert!(log_uri.starts_with(&format!("{base}/logs/")), "{log_uri}");
    let (status, missing) = get(&format!("{api}/executions/flytesnacks/development/nosuch")).await;
    assert_eq!(
        (status, missing["code"].as_i64()),
        (404, Some(5)),
        "{missing}"
    );
    let (status, bad) = http(
        reqwest::Method::POST,
        &format!("{api}/executions"),
        Some(r#"{"project": 3}"#),
    )
    .await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad["message"]
        .as_str()
        .unwrap()
        .contains("ExecutionCreateRequest"));
    // A dynamic node's workflow, compiled as flytepropeller reports it: its chain is the edges.
    let dynamic = format!("{api}/node_executions/flytesnacks/development/consoledynamic");
    let (status, compiled) = get(&format!("{dynamic}/n0/dynamic_workflow")).await;
    assert_eq!(status, 200, "{compiled}");
    let primary = &compiled["compiled_workflow"]["primary"];
    assert_eq!(
        primary["template"]["id"]["name"], "dynamic_n0",
        "{compiled}"
    );
    assert_eq!(
        primary["connections"]["downstream"]["dn0"]["ids"],
        serde_json::json!(["dn1"]),
        "{compiled}"
    );
    assert_eq!(
        compiled["compiled_workflow"]["tasks"][0]["template"]["id"]["name"],
        "workflows.dynamic.inc"
    );
    let (status, none) = get(&format!("{dynamic}/n0-0-dn0/dynamic_workflow")).await;
    assert_eq!((status, none["code"].as_i64()), (404, Some(5)), "{none}");

    // The log, from a byte offset on (how the console follows a running attempt).
    let client = reqwest::Client::new();
    let whole = client.get(&log_uri).send().await.unwrap();
    let size: usize = whole.headers()["x-log-size"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(whole.bytes().await.unwrap().len(), size);
    let tail = client
        .get(format!("{log_uri}?from={size}"))
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status().as_u16(), 200);
    assert!(
        tail.bytes().await.unwrap().is_empty(),
        "nothing written past the end"
    );

    // The console in Chromium.
    // Running before the browser looks at it: the page then shows its log while it runs.
    wait_until(&mut admin, "consolesleepy", Duration::from_secs(240), |p| {
        p == Phase::Running
    })
    .await;
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let _ = std::fs::remove_dir_all(&artifacts);
    let facts = serde_json::json!({
        "printed_url": printed_url,
        "printed_name": printed_name,
        "failed_name": "consolefail",
        "sleepy_name": "consolesleepy",
        "branch_name": "consolebranch",
        "map_name": "consolemap",
        "dynamic_name": "consoledynamic",
        "lp_version_url": lp_version_url,
        "review_name": "consolereview",
        "title_name": "consoletitle",
    });
    let out = Command::new("node")
        .current_dir(&browser)
        .arg("console.mjs")
        .arg(&base)
        .arg(&artifacts)
        .arg(facts.to_string())
        .output()
        .expect("node runs (Node.js is needed for the browser test)");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "the browser checks failed (screenshots in {}):\n{}{}",
        artifacts.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let kept = std::fs::read_dir(&artifacts)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .ends_with("-execution-succeeded.png")
        });
    assert!(kept, "screenshots are kept in {}", artifacts.display());
}

/// With `--auth` the HTTP API wants a token as gRPC does, and the console gets one the way
/// flytekit's public client does: the sandbox's approve page, then back where it started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_signs_in_to_a_sandbox_with_auth() {
    let browser = browser_tooling();
    let sb = Sandbox::launch(Launch {
        args: &["--auth"],
        ..Launch::default()
    });
    let base = sb.url();
    let (status, refused) = get(&format!("{base}/api/v1/projects")).await;
    assert_eq!(status, 401, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("Bearer"),
        "{refused}"
    );
    // Refused before its body is read: no token, no parse errors.
    let (status, refused) = http(
        reqwest::Method::POST,
        &format!("{base}/api/v1/executions"),
        Some("not json"),
    )
    .await;
    assert_eq!(status, 401, "{refused}");
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-signin-screenshots");
    let out = Command::new("node")
        .current_dir(&browser)
        .arg("signin.mjs")
        .arg(&base)
        .arg(&artifacts)
        .output()
        .expect("node runs (Node.js is needed for the browser test)");
    assert!(
        out.status.success(),
        "signing in from the console failed (screenshots in {}):\n{}{}",
        artifacts.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
