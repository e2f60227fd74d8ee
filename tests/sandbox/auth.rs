//! `union sandbox start --auth` against the real clients: pyflyte and union (flytekit's
//! authenticators) and our `union`, with each authType, from a user's project; a call without a
//! token refused; no secret or token in anything printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;

use crate::support::exec::http_get;
use crate::support::sandbox::Launch;
use crate::support::{repo, run, stderr, stdout, venv, Project, Sandbox};

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

/// Start `cmd`, read its output until the device-flow line, approve the code as the user would,
/// and wait for it to finish.
fn device_login(cmd: Command) -> std::process::Output {
    device_login_with(cmd, &[])
}

/// [`device_login`], the approving "browser" run with `env` (a CA to trust, say).
fn device_login_with(mut cmd: Command, env: &[(&str, &Path)]) -> std::process::Output {
    use std::io::{BufRead, BufReader, Read};
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // pyflyte prints it on stdout, we on stderr: read both.
    let (tx, rx) = std::sync::mpsc::channel::<(bool, String)>();
    let mut handles = Vec::new();
    for (is_out, stream) in [
        (
            true,
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        ),
        (
            false,
            Box::new(child.stderr.take().unwrap()) as Box<dyn Read + Send>,
        ),
    ] {
        let tx = tx.clone();
        handles.push(std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send((is_out, line));
            }
        }));
    }
    drop(tx);
    let (mut out, mut err) = (String::new(), String::new());
    let mut approved = false;
    for (is_out, line) in rx {
        if !approved {
            if let Some(i) = line.find("http") {
                if line.contains("user_code=") {
                    let url: String = line[i..]
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != '\u{1b}')
                        .collect();
                    let mut approve = Command::new(venv().join("bin/python"));
                    approve
                        .arg(repo().join("tests/support/oauth.py"))
                        .args(["approve-device", &url]);
                    for (k, v) in env {
                        approve.env(k, v);
                    }
                    let o = approve.output().unwrap();
                    assert!(o.status.success(), "approve: {}", stderr(&o));
                    approved = true;
                }
            }
        }
        let buf = if is_out { &mut out } else { &mut err };
        buf.push_str(&line);
        buf.push('\n');
    }
    for h in handles {
        h.join().unwrap();
    }
    let status = child.wait().unwrap();
    eprintln!("--- stdout:\n{out}--- stderr:\n{err}--- status: {status:?}");
    assert!(approved, "no device-flow URL was printed");
    std::process::Output {
        status,
        stdout: out.into_bytes(),
        stderr: err.into_bytes(),
    }
}

#[test]
fn device_flow_pyflyte_then_ours_with_its_own_login() {
    let a = AuthSandbox::start(&[]);
    let p = Project::hello_pinned();
    let cfg = a.config(p.parent(), "  authType: DeviceFlow\n");
    let mut py = a.pyflyte(&p, &cfg);
    py.args(register_args());
    let py = device_login(py);
    assert_registered(&py);
    // pyflyte cached its tokens where union's keyring keeps them.
    assert!(!a.cached_tokens().is_empty());
    // A fresh HOME for ours: a login of its own.
    let fresh = tempfile::tempdir().unwrap();
    let mut ours = a.union(&p, &cfg);
    ours.env("HOME", fresh.path()).args(register_args());
    let ours = device_login(ours);
    assert_registered(&ours);
    assert!(
        stderr(&ours).contains("To Authenticate, navigate in a browser to the following URL"),
        "{}",
        stderr(&ours)
    );
    a.assert_nothing_leaked(&[&py, &ours]);
}

/// A `$BROWSER` that approves the login as the user would, in the background (Python's
/// webbrowser waits for it), and counts how often it was opened.
fn approving_browser(dir: &Path) -> (PathBuf, PathBuf) {
    let opened = dir.join("browser-opened");
    let script = dir.join("browser.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho opened >> '{}'\n('{}' '{}' approve-authorize \"$1\" >> '{}' 2>&1 &)\n",
            opened.display(),
            venv().join("bin/python").display(),
            repo().join("tests/support/oauth.py").display(),
            dir.join("browser.log").display(),
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, opened)
}

fn times_opened(marker: &Path) -> usize {
    std::fs::read_to_string(marker)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[test]
fn pkce_login_is_shared_with_pyflyte_and_refreshed_after_expiry() {
    let a = AuthSandbox::start_for_browser_logins(&["--auth-token-lifetime", "2"]);
    let p = Project::hello_pinned();
    // No authType: the default, as in flytekit, is the browser (PKCE).
    let cfg = a.config(p.parent(), "");
    let (browser, opened) = approving_browser(p.parent());

    let py = run(a
        .pyflyte(&p, &cfg)
        .env("BROWSER", &browser)
        .args(register_args()));
    assert_registered(&py);
    assert_eq!(times_opened(&opened), 1);
    let first_tokens = a.cached_tokens();
    assert!(!first_tokens.is_empty(), "pyflyte cached no token");

    // Ours finds pyflyte's login in the keyring file: no browser.
    let ours = run(a
        .union(&p, &cfg)
        .env("BROWSER", &browser)
        .args(register_args()));
    assert_registered(&ours);

    // Once the access token has expired, the refresh token gets a new one: still no browser.
    let expired_at = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while std::time::Instant::now() < expired_at {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let again = run(a
        .union(&p, &cfg)
        .env("BROWSER", &browser)
        .args(register_args()));
    assert_registered(&again);
    assert_eq!(
        times_opened(&opened),
        1,
        "a refresh must not open the browser"
    );
    assert_ne!(
        a.cached_tokens(),
        first_tokens,
        "the refreshed token was not cached"
    );
    // And pyflyte uses what ours cached.
    let py2 = run(a
        .pyflyte(&p, &cfg)
        .env("BROWSER", &browser)
        .args(register_args()));
    assert_registered(&py2);
    a.assert_nothing_leaked(&[&py, &ours, &again, &py2]);
}

#[test]
fn pkce_login_of_ours_from_scratch() {
    let a = AuthSandbox::start_for_browser_logins(&[]);
    let p = Project::hello_pinned();
    let cfg = a.config(p.parent(), "  authType: Pkce\n");
    let (browser, opened) = approving_browser(p.parent());
    let ours = run(a
        .union(&p, &cfg)
        .env("BROWSER", &browser)
        .args(register_args()));
    assert_registered(&ours);
    assert_eq!(times_opened(&opened), 1);
    assert!(!a.cached_tokens().is_empty(), "our login was not cached");
    // pyflyte reads our cache: no browser.
    let py = run(a
        .pyflyte(&p, &cfg)
        .env("BROWSER", &browser)
        .args(register_args()));
    assert_registered(&py);
    assert_eq!(times_opened(&opened), 1);
    a.assert_nothing_leaked(&[&ours, &py]);
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

/// union's API keys name a host without a port (so 443) and always mean TLS: the sandbox on
/// 127.0.0.1:443 with `--tls`, its CA trusted by each client the way that client reads CAs.
/// Then `union create login` writes union's config file and logs in; afterwards ours and the
/// real union CLI both work from that file and the cached token, without logging in again.
#[test]
fn api_key_and_login_over_tls_with_the_real_union_client() {
    let a = AuthSandbox {
        sb: Sandbox::launch(Launch {
            port: 443,
            args: &["--auth", "--tls"],
            ..Launch::default()
        }),
        home: tempfile::tempdir().unwrap(),
    };
    let ca = a.sb.data_dir().join("tls/ca.pem");
    // The banner names the CA to trust.
    crate::support::wait_until(
        "the sandbox names its CA",
        std::time::Duration::from_secs(30),
        || a.sb.stderr().contains(&ca.display().to_string()),
    );
    let p = Project::hello_pinned();
    let key = base64::engine::general_purpose::STANDARD
        .encode(format!("127.0.0.1:union-sandbox:{}:None", a.secret()));
    let ours = run(a
        .union(&p, Path::new(""))
        .env_remove("UNION_CONFIG")
        .env("UNION_API_KEY", &key)
        .env("SSL_CERT_FILE", &ca)
        .args(register_args()));
    assert_registered(&ours);
    let upy = run(Command::new(venv().join("bin/union"))
        .current_dir(p.root())
        .env("VIRTUAL_ENV", venv())
        .env("HOME", a.home.path())
        .env("UNION_API_KEY", &key)
        .env("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", &ca)
        .env("REQUESTS_CA_BUNDLE", &ca)
        .args(register_args()));
    assert_registered(&upy);

    // union create login, with the device flow (no browser here).
    let home = tempfile::tempdir().unwrap();
    let mut login = p.union();
    login
        .env("HOME", home.path())
        .env("SSL_CERT_FILE", &ca)
        .args([
            "create",
            "login",
            "--host",
            "127.0.0.1",
            "--auth",
            "device-flow",
        ]);
    let login = device_login_with(login, &[("SSL_CERT_FILE", &ca)]);
    assert!(login.status.success(), "{}", stderr(&login));
    assert!(
        stdout(&login).contains("Login successful into 127.0.0.1"),
        "{}",
        stdout(&login)
    );
    let written = std::fs::read_to_string(home.path().join(".union/config.yaml")).unwrap();
    assert!(
        written.starts_with(
            "admin:\n  endpoint: dns:///127.0.0.1\n  insecure: false\n  authType: DeviceFlow\n"
        ),
        "{written}"
    );
    // Ours from that file and the cached token: no second login.
    let ours2 = run(p
        .union()
        .env("HOME", home.path())
        .env("SSL_CERT_FILE", &ca)
        .stdin(Stdio::null())
        .args(register_args()));
    assert_registered(&ours2);
    assert!(!stderr(&ours2).contains("user_code="), "{}", stderr(&ours2));
    // The real union CLI from the same file and token cache: no login either (a login would
    // wait for a code nobody approves; `timeout` turns that into a failure).
    let upy2 = run(Command::new("timeout")
        .arg("120")
        .arg(venv().join("bin/union"))
        .current_dir(p.root())
        .env("VIRTUAL_ENV", venv())
        .env("HOME", home.path())
        .env("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", &ca)
        .env("REQUESTS_CA_BUNDLE", &ca)
        .stdin(Stdio::null())
        .args(register_args()));
    assert_registered(&upy2);
    assert!(!stdout(&upy2).contains("user_code="), "{}", stdout(&upy2));
    a.assert_nothing_leaked(&[&ours, &upy, &login, &ours2, &upy2]);
}

/// TLS options as flytekit reads them, against `--tls`: the CA from `caCertFilePath`, or
/// `insecureSkipVerify`; with neither, the unknown CA is refused with a hint. `proxyCommand`
/// runs and its token goes along.
#[test]
fn tls_options_and_proxy_command() {
    let a = AuthSandbox::start(&["--tls"]);
    let ca = a.sb.data_dir().join("tls/ca.pem");
    let p = Project::hello_pinned();
    let marker = p.parent().join("proxy-command-ran");
    let client = format!(
        "  authType: ClientSecret\n  clientId: union-sandbox\n  clientSecretLocation: {}\n",
        a.secret_file().display()
    );
    let write = |transport: &str| {
        let cfg = p.parent().join("tls-config.yaml");
        std::fs::write(
            &cfg,
            format!(
                "admin:\n  endpoint: dns:///127.0.0.1:{}\n  insecure: false\n{transport}{client}",
                a.sb.port
            ),
        )
        .unwrap();
        cfg
    };
    let with_ca = write(&format!(
        "  caCertFilePath: {}\n  proxyCommand: [\"sh\", \"-c\", \"echo ran >> {}; echo proxy-token\"]\n",
        ca.display(),
        marker.display()
    ));
    let py = run(a.pyflyte(&p, &with_ca).args(register_args()));
    assert_registered(&py);
    let ours = run(a.union(&p, &with_ca).args(register_args()));
    assert_registered(&ours);
    let runs = std::fs::read_to_string(&marker).unwrap_or_default();
    assert!(runs.lines().count() >= 2, "proxyCommand ran {runs:?}");

    let skip = write("  insecureSkipVerify: true\n");
    let ours_skip = run(a.union(&p, &skip).args(register_args()));
    assert_registered(&ours_skip);

    let neither = write("");
    let refused = run(a.union(&p, &neither).args(register_args()));
    assert_eq!(refused.status.code(), Some(1));
    let err = stderr(&refused);
    assert!(
        err.contains("cannot reach FlyteAdmin at 127.0.0.1:"),
        "{err}"
    );
    a.assert_nothing_leaked(&[&py, &ours, &ours_skip, &refused]);
}

/// With an OS keyring (a Secret Service on the D-Bus session: GNOME Keyring here), Python's
/// keyring keeps pyflyte's tokens there, not in union's file; so do we, in items each side
/// finds: ours logs in, pyflyte uses that login, no file is written.
#[test]
fn pkce_tokens_live_in_the_os_keyring_when_there_is_one() {
    for tool in ["dbus-run-session", "gnome-keyring-daemon"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .unwrap()
                .status
                .success(),
            "`{tool}` is missing: `bash tests/setup/docker.sh` installs it"
        );
    }
    let a = AuthSandbox::start_for_browser_logins(&[]);
    let p = Project::hello_pinned();
    let cfg = a.config(p.parent(), "  authType: Pkce\n");
    let (browser, opened) = approving_browser(p.parent());
    let home = a.home.path().display().to_string();
    let q = |s: &dyn std::fmt::Display| format!("'{s}'");
    let script = format!(
        "set -e\n\
         echo -n pw | gnome-keyring-daemon --unlock --components=secrets --daemonize >/dev/null\n\
         cd {root}\n\
         export HOME={home} BROWSER={browser} VIRTUAL_ENV={venv} UNION_WARM=0\n\
         UNION_CONFIG={cfg} {union} register workflows\n\
         {pyflyte} -c {cfg} register workflows\n\
         {python} -c \"import keyring; print('os keyring:', type(keyring.get_keyring()).__name__, keyring.get_password('127.0.0.1:{sbport}', 'access_token') is not None)\"\n",
        root = q(&p.root().display()),
        home = q(&home),
        browser = q(&browser.display()),
        venv = q(&venv().display()),
        cfg = q(&cfg.display()),
        union = q(&env!("CARGO_BIN_EXE_union")),
        pyflyte = q(&venv().join("bin/pyflyte").display()),
        python = q(&venv().join("bin/python").display()),
        sbport = a.sb.port,
    );
    let o = run(Command::new("dbus-run-session")
        .args(["--", "bash", "-c", &script])
        .stdin(Stdio::null()));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(times_opened(&opened), 1, "pyflyte logged in again");
    assert!(
        stdout(&o).contains("os keyring: ChainerBackend True"),
        "{}",
        stdout(&o)
    );
    assert!(
        !a.home.path().join(".union/keyring.cfg").exists(),
        "tokens went to the file despite the OS keyring"
    );
    a.assert_nothing_leaked(&[&o]);
}

/// On Serverless (here: `UNION_SERVERLESS_ENDPOINT` naming the sandbox, as union's developers
/// point union at a test Serverless), the org is the signed-in user's handle from
/// `IdentityService.UserInfo`, as union finds it; the org-mode sandbox accepts the calls only
/// with it, and console links name it.
#[test]
fn serverless_org_comes_from_the_users_handle() {
    let a = AuthSandbox::start_for_browser_logins(&["--tls", "--org", "acme"]);
    let ca = a.sb.data_dir().join("tls/ca.pem");
    let p = Project::hello_pinned();
    let (browser, opened) = approving_browser(p.parent());
    let o = run(p
        .union()
        .env("HOME", a.home.path())
        .env("UNION_SERVERLESS_ENDPOINT", a.sb.endpoint())
        .env("SSL_CERT_FILE", &ca)
        .env("BROWSER", &browser)
        .args(register_args()));
    assert_registered(&o);
    assert_eq!(times_opened(&opened), 1);
    a.assert_nothing_leaked(&[&o]);
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
