//! `admin.command` (ExternalCommand) and `admin.proxyCommand`: the command's stripped standard
//! output is the token, as flytekit's `CommandAuthenticator` reads it.

use super::{AuthError, Secret};

pub(crate) async fn run(key: &'static str, argv: &[String]) -> Result<Secret, AuthError> {
    let shown = argv.join(" ");
    let err = |detail: String| AuthError::Command {
        key,
        command: shown.clone(),
        detail,
    };
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| err("the command is empty".into()))?;
    let out = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| err(format!("cannot start `{program}`: {e}")))?;
    if !out.status.success() {
        // stderr only: stdout is where a token would be.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(err(format!("{} ({})", out.status, tail.join(" / ").trim())));
    }
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if token.is_empty() {
        return Err(err("it printed nothing; it must print a token".into()));
    }
    Ok(Secret::new(token))
}
