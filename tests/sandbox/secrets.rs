//! union's secrets against the sandbox: `union create|get|delete secret` (ours and the real
//! Python `union`), and tasks reading them in their containers through flytekit's
//! `current_context().secrets` — without the value ever showing in an output, a log or an error.

use std::path::Path;
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

use crate::support::*;

/// The real union Python CLI, with a config pointing at `sb`, run from `dir`.
fn union_py(sb: &Sandbox, dir: &Path) -> Command {
    let mut c = Command::new(venv().join("bin/union"));
    c.current_dir(dir)
        .env("VIRTUAL_ENV", venv())
        .env("HOME", dir)
        .arg("--config")
        .arg(sb.write_config(dir));
    c
}

/// Our `union ARGS... --endpoint <sandbox> --insecure`.
fn ours(sb: &Sandbox, args: &[&str]) -> Output {
    run(union()
        .args(args)
        .args(["--endpoint", &sb.endpoint(), "--insecure"]))
}

fn all_text(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every file under `dir` (recursively) whose bytes contain `needle`, but the database (where
/// secrets live).
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                todo.push(path);
            } else if !name.starts_with("sandbox.db") {
                let bytes = std::fs::read(&path).unwrap_or_default();
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found.push(path.display().to_string());
                }
            }
        }
    }
    found
}

#[test]
fn secret_commands_work_like_unions() {
    let sb = Sandbox::start();
    let home = tempfile::tempdir().unwrap();
    let value = unique("SecretValue");
    let file = home.path().join("value.txt");
    std::fs::write(&file, format!("{value}-from-file")).unwrap();

    let mut seen = String::new();
    let o = ours(
        &sb,
        &["create", "secret", "--name", "api_token", "--value", &value],
    );
    assert!(o.status.success());
    assert_eq!(stdout(&o), "Created secret with name: api_token\n");
    seen += &all_text(&o);
    let o = run(union_py(&sb, home.path())
        .args(["create", "secret", "--name", "from_python", "--value-file"])
        .arg(&file));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Created secret with name: from_python"));
    seen += &all_text(&o);
    let o = ours(
        &sb,
        &[
            "create",
            "secret",
            "scoped",
            "--value",
            &value,
            "--project",
            "flytesnacks",
        ],
    );
    assert!(o.status.success());
    seen += &all_text(&o);

    // Both CLIs list all three, with `-` for "every project / domain".
    let o = ours(&sb, &["get", "secret"]);
    assert!(o.status.success());
    seen += &all_text(&o);
    let table = stdout(&o);
    assert!(table.starts_with("NAME"), "{table}");
    for row in [
        "api_token    -            -       GENERIC",
        "from_python  -            -       GENERIC",
        "scoped       flytesnacks  -       GENERIC",
    ] {
        assert!(table.contains(row), "{row:?} in\n{table}");
    }
    let o = run(union_py(&sb, home.path()).args(["get", "secret"]));
    assert!(o.status.success(), "{}", stderr(&o));
    seen += &all_text(&o);
    for name in ["api_token", "from_python", "scoped"] {
        assert!(stdout(&o).contains(name), "{}", stdout(&o));
    }
    let o = ours(&sb, &["get", "secret", "--project", "flytesnacks"]);
    assert!(stdout(&o).contains("scoped") && !stdout(&o).contains("api_token"));
    let o = ours(&sb, &["get", "secret", "api_token"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o).lines().count(), 2, "{}", stdout(&o));

    // Errors name the secret and the fix, exit 1.
    let o = ours(
        &sb,
        &["create", "secret", "--name", "api_token", "--value", &value],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("secret `api_token` already exists"),
        "{}",
        stderr(&o)
    );
    seen += &all_text(&o);
    let o = ours(&sb, &["get", "secret", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no secret named `nosuch`"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("union create secret --name nosuch"));
    let o = ours(&sb, &["delete", "secret", "scoped"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "scoped to a project: not found without it"
    );
    assert!(stderr(&o).contains("--project"), "{}", stderr(&o));

    // Usage errors exit 2.
    for args in [
        vec!["create", "secret", "--value", "x"],
        vec!["create", "secret", "a", "--name", "b", "--value", "x"],
        vec!["create", "secret", "a", "--value", "x", "--value-file", "f"],
        vec![
            "create",
            "secret",
            "a",
            "--type",
            "image-pull-secret",
            "--value",
            "x",
        ],
        vec!["delete", "secret"],
    ] {
        let o = ours(&sb, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }

    // Deleted by ours and by union's, then gone.
    let o = ours(&sb, &["delete", "secret", "api_token"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "Deleted secret with name: api_token\n");
    let o = ours(
        &sb,
        &["delete", "secret", "scoped", "--project", "flytesnacks"],
    );
    assert!(o.status.success());
    let o = run(union_py(&sb, home.path()).args(["delete", "secret", "from_python"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ours(&sb, &["get", "secret"]);
    assert_eq!(stdout(&o), "No secrets found\n");

    assert!(!seen.contains(&value), "a value was shown:\n{seen}");
    assert!(!sb.stderr().contains(&value));
}

#[test]
fn listing_pages_through_every_secret() {
    let sb = Sandbox::start();
    let home = tempfile::tempdir().unwrap();
    // More than one page of union's ListSecrets (20).
    for i in 0..23 {
        let o = ours(
            &sb,
            &["create", "secret", &format!("s{i:02}"), "--value", "v"],
        );
        assert!(o.status.success());
    }
    let o = ours(&sb, &["get", "secret"]);
    assert_eq!(stdout(&o).lines().count(), 24, "{}", stdout(&o));
    let o = run(union_py(&sb, home.path()).args(["get", "secret"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("s00") && stdout(&o).contains("s22"),
        "{}",
        stdout(&o)
    );
}

/// An image with flytekit: the hello fixture's, built if missing.
fn task_image() -> String {
    crate::support::exec::build_image("hello", "workflows")
}

#[test]
fn tasks_read_secrets_from_env_and_file_and_never_show_them() {
    require_docker_infra();
    let image = task_image();
    let sb = Sandbox::start();
    let p = Project::new("exec");
    let token = unique("TokenValue");
    let cert = unique("CertValue");
    // Ours, answering the prompt on standard input; the real union's, from a file.
    let answer = p.parent().join("answer.txt");
    std::fs::write(&answer, format!("{token}\n")).unwrap();
    let o = run(p
        .union()
        .args(["create", "secret", "--name", "api_token"])
        .args(["--endpoint", &sb.endpoint(), "--insecure"])
        .stdin(std::fs::File::open(&answer).unwrap()));
    assert!(o.status.success());
    std::fs::remove_file(&answer).unwrap();
    let cert_file = p.parent().join("cert.pem");
    std::fs::write(&cert_file, &cert).unwrap();
    let o = run(union_py(&sb, p.parent())
        .args(["create", "secret", "--name", "tls_cert", "--value-file"])
        .arg(&cert_file));
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_file(&cert_file).unwrap();

    let o = run(p
        .union_docker()
        .args(["run", "--remote", "--wait", "--endpoint", &sb.endpoint()])
        .args(["--image", &image, "workflows/secrets.py", "secrets_wf"]));
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(
        out.contains(&format!("o0='env:{}'", sha256_hex(&token))),
        "{out}"
    );
    assert!(
        out.contains(&format!("o1='file:{}'", sha256_hex(&cert))),
        "{out}"
    );
    // Secret(group="tls", key="tls_cert"), mount ANY: a file under the group's directory.
    let grouped = format!(
        "o2='file /etc/flyte/secrets/tls/tls_cert:{}'",
        sha256_hex(&cert)
    );
    assert!(out.contains(&grouped), "{out}");
    let name = stderr(&o)
        .lines()
        .find_map(|l| l.strip_prefix("Starting execution: "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the execution's name")
        .to_string();
    let g = run(union().args(["get", "execution", &name, "--endpoint", &sb.endpoint()]));
    assert!(g.status.success());

    let shown = format!("{}{}{}", all_text(&o), all_text(&g), sb.stderr());
    for v in [&token, &cert] {
        assert!(!shown.contains(v.as_str()), "a value was shown:\n{shown}");
        let leaked = files_containing(sb.data_dir(), v);
        assert!(leaked.is_empty(), "the value is in {leaked:?}");
    }
    // The files mounted for the attempts are gone.
    let mounts = sb.data_dir().join("executions/.secrets");
    let left: Vec<_> = std::fs::read_dir(&mounts)
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "left behind in {}: {left:?}",
        mounts.display()
    );
}

#[test]
fn a_missing_secret_fails_the_task_naming_it_and_the_fix() {
    require_docker_infra();
    let image = task_image();
    let sb = Sandbox::start();
    let p = Project::new("exec");
    let o = run(p
        .union_docker()
        .args(["run", "--remote", "--wait", "--endpoint", &sb.endpoint()])
        .args(["--image", &image, "workflows/secrets.py", "missing_wf"]));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("secret `never_created`"), "{err}");
    assert!(
        err.contains("union create secret --name never_created"),
        "{err}"
    );
}
