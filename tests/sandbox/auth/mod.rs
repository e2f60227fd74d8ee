//! `union sandbox start --auth` against the real clients: pyflyte and union (flytekit's
//! authenticators) and our `union`, with each authType, from a user's project; a call without a
//! token refused; no secret or token in anything printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;

use crate::support::exec::http_get;
use crate::support::sandbox::Launch;
use crate::support::{repo, run, stderr, stdout, venv, Project, Sandbox};

mod logins;

struct AuthSandbox {
    sb: Sandbox,
    /// HOME of every client in the test: their token caches (`~/.union/keyring.cfg`).
    home: tempfile::TempDir,
}

/// A free port on loopback for a login redirect listener.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl AuthSandbox {
    fn start(args: &[&str]) -> AuthSandbox {
        let mut all = vec!["--auth"];
        all.extend_from_slice(args);
        let sb = Sandbox::launch(Launch {
            args: &all,
            ..Launch::default()
        });
        AuthSandbox {
            sb,
            home: tempfile::tempdir().unwrap(),
        }
    }

    /// With a redirect URI on a free port, for the browser (PKCE) logins.
    fn start_for_browser_logins(args: &[&str]) -> AuthSandbox {
        let redirect = format!("http://localhost:{}/callback", free_port());
        let mut all = vec!["--auth-redirect-uri", redirect.as_str()];
        all.extend_from_slice(args);
        AuthSandbox::start(&all)
    }

    fn secret_file(&self) -> PathBuf {
        self.sb.data_dir().join("auth/client-secret")
    }

    fn secret(&self) -> String {
        std::fs::read_to_string(self.secret_file())
            .unwrap()
            .trim()
            .to_string()
    }

    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.sb.port)
    }

    /// A flytekit config file for this sandbox with `admin_extra` lines under `admin:`.
    fn config(&self, dir: &Path, admin_extra: &str) -> PathBuf {
        let p = dir.join("config.yaml");
        std::fs::write(
            &p,
            format!(
                "admin:\n  endpoint: dns:///127.0.0.1:{}\n  insecure: true\n{admin_extra}",
                self.sb.port
            ),
        )
        .unwrap();
        p
    }

    /// Our `union` from the project's root, with this test's HOME.
    fn union(&self, p: &Project, cfg: &Path) -> Command {
        let mut c = p.union();
        c.env("HOME", self.home.path()).env("UNION_CONFIG", cfg);
        c
    }

    fn pyflyte(&self, p: &Project, cfg: &Path) -> Command {
        let mut c = p.pyflyte(cfg);
        c.env("HOME", self.home.path());
        c
    }

    /// The real union Python CLI.
    fn union_py(&self, p: &Project, cfg: &Path) -> Command {
        let mut c = Command::new(venv().join("bin/union"));
        c.current_dir(p.root())
            .env("VIRTUAL_ENV", venv())
            .env("HOME", self.home.path())
            .arg("--config")
            .arg(cfg);
        c
    }

    /// Every token cached in HOME's keyring file.
    fn cached_tokens(&self) -> Vec<String> {
        let Ok(text) = std::fs::read_to_string(self.home.path().join(".union/keyring.cfg")) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut flush = |cur: &mut String| {
            let compact: String = cur.chars().filter(|c| !c.is_whitespace()).collect();
            if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(compact) {
                if let Ok(s) = String::from_utf8(b) {
                    if s.len() > 16 {
                        out.push(s);
                    }
                }
            }
            cur.clear();
        };
        for line in text.lines() {
            if line.starts_with([' ', '\t']) {
                cur.push_str(line.trim());
            } else {
                flush(&mut cur);
                if let Some((_, v)) = line.split_once(" = ") {
                    cur.push_str(v.trim());
                }
            }
        }
        flush(&mut cur);
        out
    }

    /// No output of any client, nor the sandbox's log, holds the secret or a token.
    fn assert_nothing_leaked(&self, outputs: &[&std::process::Output]) {
        let mut secrets = vec![self.secret()];
        secrets.extend(self.cached_tokens());
        let mut texts: Vec<(String, String)> = outputs
            .iter()
            .map(|o| {
                (
                    "a client's output".to_string(),
                    format!("{}{}", stdout(o), stderr(o)),
                )
            })
            .collect();
        texts.push(("the sandbox's log".into(), self.sb.stderr()));
        for (what, text) in &texts {
            for s in &secrets {
                assert!(!text.contains(s.as_str()), "{what} shows a secret or token");
            }
        }
    }
}

fn register_args() -> [&'static str; 2] {
    ["register", "workflows"]
}

fn assert_registered(o: &std::process::Output) {
    assert!(o.status.success(), "{}", stderr(o));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_without_a_token_is_refused_and_discovery_needs_none() {
    let a = AuthSandbox::start(&[]);
    let mut admin = a.sb.admin().await;
    let e = admin
        .list_projects(union_idl::flyteidl::admin::ProjectListRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    // AuthMetadataService answers anyone: it is how clients learn where to get a token.
    let channel = tonic::transport::Endpoint::from_shared(a.sb.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut meta =
        union_idl::flyteidl::service::auth_metadata_service_client::AuthMetadataServiceClient::new(
            channel,
        );
    let public = meta
        .get_public_client_config(union_idl::flyteidl::service::PublicClientAuthConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(public.authorization_metadata_key, "flyte-authorization");
    let oauth = meta
        .get_o_auth2_metadata(union_idl::flyteidl::service::OAuth2MetadataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        oauth.token_endpoint,
        format!("{}/oauth2/token", a.base_url())
    );

    // Our CLI asked for client credentials it was not given says which keys to set.
    let p = Project::hello_pinned();
    let cfg = a.config(p.parent(), "  authType: ClientSecret\n");
    let o = run(a.union(&p, &cfg).args(register_args()).stdin(Stdio::null()));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("authType ClientSecret needs admin.clientId and a client secret"),
        "{err}"
    );
    assert!(err.contains("admin.clientSecretLocation"), "{err}");
}

/// A task's log is read with a token, as the API is: refused without one, and `run --remote
/// --wait` still shows the end of a failed task's log, sending its token to the sandbox alone.
#[test]
fn a_failed_tasks_log_needs_a_token_and_run_wait_shows_its_end() {
    let a = AuthSandbox::start(&[]);
    let refused = http_get(&format!(
        "{}/logs/flytesnacks/development/x/n0/0",
        a.base_url()
    ));
    assert_eq!(refused.0, 401, "{}", refused.1);
    assert!(refused.1.contains("Bearer"), "{}", refused.1);

    let p = Project::hello_pinned();
    // Exits without flytekit writing an error: the log is all the user has.
    std::fs::write(
        p.root().join("workflows/crash.py"),
        "import os\n\nimport union\n\nfrom workflows.hello import image_spec\n\n\n\
         @union.task(container_image=image_spec)\ndef crash() -> None:\n    \
         print(\"the last words before exiting\", flush=True)\n    os._exit(3)\n\n\n\
         @union.workflow\ndef crash_wf():\n    crash()\n",
    )
    .unwrap();
    let cfg = a.config(
        p.parent(),
        &format!(
            "  authType: ClientSecret\n  clientId: union-sandbox\n  clientSecretLocation: {}\n",
            a.secret_file().display()
        ),
    );
    let o = run(a.union(&p, &cfg).args([
        "run",
        "--remote",
        "--wait",
        "workflows/crash.py",
        "crash_wf",
    ]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("last lines of node n0's log"), "{err}");
    assert!(err.contains("the last words before exiting"), "{err}");
    a.assert_nothing_leaked(&[&o]);
}

#[test]
fn client_secret_pyflyte_union_and_ours_register() {
    let a = AuthSandbox::start(&[]);
    let p = Project::hello_pinned();
    let cfg = a.config(
        p.parent(),
        &format!(
            "  authType: ClientSecret\n  clientId: union-sandbox\n  clientSecretLocation: {}\n",
            a.secret_file().display()
        ),
    );
    let py = run(a.pyflyte(&p, &cfg).args(register_args()));
    assert_registered(&py);
    let upy = run(a.union_py(&p, &cfg).args(register_args()));
    assert_registered(&upy);
    let ours = run(a.union(&p, &cfg).args(register_args()));
    assert_registered(&ours);
    assert!(
        stdout(&ours).contains("Registered 3 entities"),
        "{}",
        stdout(&ours)
    );

    // A wrong secret is refused by name, and the wrong secret is not printed either.
    let bad = p.parent().join("bad-secret");
    std::fs::write(&bad, "not-the-secret-at-all\n").unwrap();
    let cfg_bad = a.config(
        p.parent(),
        &format!(
            "  authType: ClientSecret\n  clientId: union-sandbox\n  clientSecretLocation: {}\n",
            bad.display()
        ),
    );
    let o = run(a.union(&p, &cfg_bad).args(register_args()));
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("invalid_client"), "{err}");
    assert!(err.contains("clientId"), "{err}");
    assert!(!err.contains("not-the-secret-at-all"), "{err}");
    a.assert_nothing_leaked(&[&py, &upy, &ours, &o]);
}

#[test]
fn client_secret_from_an_environment_variable() {
    let a = AuthSandbox::start(&[]);
    let p = Project::hello_pinned();
    let cfg = a.config(
        p.parent(),
        "  authType: ClientSecret\n  clientId: union-sandbox\n  clientSecretEnvVar: MY_SANDBOX_SECRET\n",
    );
    let secret = a.secret();
    let py = run(a
        .pyflyte(&p, &cfg)
        .env("MY_SANDBOX_SECRET", &secret)
        .args(register_args()));
    assert_registered(&py);
    let ours = run(a
        .union(&p, &cfg)
        .env("MY_SANDBOX_SECRET", &secret)
        .args(register_args()));
    assert_registered(&ours);
    a.assert_nothing_leaked(&[&py, &ours]);
}

#[test]
fn external_command_prints_the_token() {
    let a = AuthSandbox::start(&[]);
    let p = Project::hello_pinned();
    let py_bin = venv().join("bin/python");
    let script = repo().join("tests/support/oauth.py");
    let cfg = a.config(
        p.parent(),
        &format!(
            "  authType: ExternalCommand\n  command:\n    - {}\n    - {}\n    - token\n    - {}/oauth2/token\n    - {}\n",
            py_bin.display(),
            script.display(),
            a.base_url(),
            a.secret_file().display()
        ),
    );
    let py = run(a.pyflyte(&p, &cfg).args(register_args()));
    assert_registered(&py);
    let ours = run(a.union(&p, &cfg).args(register_args()));
    assert_registered(&ours);

    // A failing command is named, with the key to fix.
    let cfg_bad = a.config(
        p.parent(),
        "  authType: ExternalCommand\n  command: [\"false\"]\n",
    );
    let o = run(a.union(&p, &cfg_bad).args(register_args()));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("admin.command `false` failed"),
        "{}",
        stderr(&o)
    );
    a.assert_nothing_leaked(&[&py, &ours, &o]);
}

#[test]
fn org_mode_requires_the_org_on_every_call() {
    let a = AuthSandbox::start(&["--org", "acme"]);
    let p = Project::hello_pinned();
    let cfg = a.config(
        p.parent(),
        &format!(
            "  authType: ClientSecret\n  clientId: union-sandbox\n  clientSecretLocation: {}\n",
            a.secret_file().display()
        ),
    );
    let ours = run(a
        .union(&p, &cfg)
        .args(register_args())
        .args(["--org", "acme"]));
    assert_registered(&ours);
    // Console links name the org, as union's do.
    let without = run(a.union(&p, &cfg).args(register_args()));
    assert_eq!(without.status.code(), Some(1));
    assert!(stderr(&without).contains("org"), "{}", stderr(&without));
    let other = run(a
        .union(&p, &cfg)
        .args(register_args())
        .args(["--org", "umbrella"]));
    assert_eq!(other.status.code(), Some(1));
    assert!(stderr(&other).contains("umbrella"), "{}", stderr(&other));
    a.assert_nothing_leaked(&[&ours, &without, &other]);
}

/// An eager workflow's container authenticates as the sandbox's confidential client (its
/// secret mounted as a file, never in the environment or a log) and starts real executions.
#[test]
fn eager_workflows_authenticate_to_the_sandbox() {
    crate::support::require_docker_infra();
    crate::support::build::ensure_engine();
    let image = crate::support::exec::build_image("hello", "workflows");
    let a = AuthSandbox::start(&[]);
    let p = Project::new("nodes");
    let cfg = a.config(
        p.parent(),
        &format!(
            "  authType: ClientSecret\n  clientId: union-sandbox\n  clientSecretLocation: {}\n",
            a.secret_file().display()
        ),
    );
    let o = run(a.union(&p, &cfg).args([
        "run",
        "--remote",
        "--image",
        &image,
        "--wait",
        "workflows/eager.py",
        "eager_wf",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "8\n");
    let list = run(a.union(&p, &cfg).args(["get", "executions"]));
    assert!(
        stdout(&list)
            .lines()
            .filter(|l| l.starts_with("e-eager-wf-") && l.contains("SUCCEEDED"))
            .count()
            == 2,
        "{}",
        stdout(&list)
    );
    // The eager task's log is the sandbox's: no secret there either.
    let logs: String = walk_logs(&a.sb.data_dir().join("executions"));
    assert!(
        !logs.contains(&a.secret()),
        "a task log shows the client secret"
    );
    a.assert_nothing_leaked(&[&o, &list]);
}

fn walk_logs(dir: &Path) -> String {
    let mut out = String::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            out.push_str(&walk_logs(&path));
        } else if path.file_name().is_some_and(|n| n == "log.txt") {
            out.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
        }
    }
    out
}
