//! Logging in against `union sandbox start --auth`: the device flow and PKCE (shared with
//! pyflyte's cache, refreshed after expiry, kept in the OS keyring when there is one), union's API
//! keys over TLS with the real union client, TLS options and `admin.proxyCommand`, and the
//! Serverless org from the signed-in user.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;

use super::{assert_registered, register_args, AuthSandbox};
use crate::support::sandbox::Launch;
use crate::support::{repo, run, stderr, stdout, venv, Project, Sandbox};

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
