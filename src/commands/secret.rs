//! `union create secret`, `union get secret`, `union delete secret`: union's secret commands
//! (`union/cli/_create.py`, `_get.py`, `_delete.py`), with its names, options and messages.
//! A value is read from --value, --value-file or a hidden prompt, sent once, and never printed.

use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::process::ExitCode;

use anyhow::Result;

use super::common::runtime;
use crate::cli::{CreateSecretArgs, DeleteSecretArgs, GetSecretArgs, SecretConnectionArgs};
use crate::diagnostics::CliError;
use union_client::admin::AdminError;
use union_client::{config, AdminClient, Overrides, Settings};
use union_idl::cloudidl::secret::{secret_spec, Secret, SecretSpec, SecretType};

fn settings(b: &SecretConnectionArgs) -> Result<Settings, union_client::ConfigError> {
    config::load(&Overrides {
        config: b.config.clone(),
        endpoint: b.endpoint.clone(),
        insecure: b.insecure.then_some(true),
        project: None,
        domain: None,
        org: b.org.clone(),
    })
}

/// The scope flags as the request carries them (empty: every project / domain).
fn scope(b: &SecretConnectionArgs) -> (String, String) {
    (
        b.project.clone().unwrap_or_default(),
        b.domain.clone().unwrap_or_default(),
    )
}

fn scope_text(project: &str, domain: &str) -> String {
    match (project.is_empty(), domain.is_empty()) {
        (true, true) => "without a project or domain".into(),
        (false, true) => format!("in project `{project}`"),
        (true, false) => format!("in domain `{domain}`"),
        (false, false) => format!("in project `{project}`, domain `{domain}`"),
    }
}

fn scope_flags(project: &str, domain: &str) -> String {
    let mut s = String::new();
    if !project.is_empty() {
        let _ = write!(s, " --project {project}");
    }
    if !domain.is_empty() {
        let _ = write!(s, " --domain {domain}");
    }
    s
}

/// union's "Please pass --name once" rule: a positional NAME or --name, exactly one.
fn one_name(positional: Option<String>, option: Option<String>, verb: &str) -> Result<String> {
    match positional.or(option) {
        Some(n) if !n.is_empty() => Ok(n),
        _ => Err(CliError::usage(format!(
            "name the secret: `union {verb} secret --name NAME` (or `union {verb} secret NAME`)"
        ))
        .into()),
    }
}

/// What went wrong talking about secret `name`, with the fix for the common cases.
fn secret_error(e: AdminError, name: &str, project: &str, domain: &str) -> anyhow::Error {
    let code = match &e {
        AdminError::Rpc { code, .. } => Some(*code),
        _ => None,
    };
    let flags = scope_flags(project, domain);
    match code {
        Some(tonic::Code::NotFound) => CliError::new(format!(
            "no secret named `{name}` {}",
            scope_text(project, domain)
        ))
        .hint(format!(
            "list the secrets with `union get secret`; a secret created with --project/--domain is named with the same flags; create it with `union create secret --name {name}{flags}`"
        ))
        .into(),
        Some(tonic::Code::AlreadyExists) => CliError::new(format!(
            "secret `{name}` already exists {}",
            scope_text(project, domain)
        ))
        .hint(format!(
            "to change its value, delete it with `union delete secret {name}{flags}` and create it again"
        ))
        .into(),
        Some(tonic::Code::Unimplemented) => CliError::new(format!(
            "the backend does not serve union's secrets (SecretService) for secret `{name}`"
        ))
        .caused_by(e)
        .hint("secrets need a Union tenant or `union sandbox start`; on a Flyte cluster, create Kubernetes secrets instead")
        .into(),
        _ => e.into(),
    }
}

/// `union create secret`.
pub fn create(a: CreateSecretArgs) -> Result<ExitCode> {
    let name = one_name(a.name, a.name_option, "create")?;
    let secret_type = match a.secret_type {
        Some(crate::cli::SecretTypeArg::ImagePullSecret) => {
            if a.value_file.is_none() {
                return Err(CliError::usage(
                    "--type image-pull-secret needs --value-file (a Docker config JSON)",
                )
                .into());
            }
            SecretType::ImagePullSecret
        }
        None => SecretType::Generic,
    };
    let value = match (&a.value, &a.value_file) {
        (Some(v), _) => secret_spec::Value::StringValue(v.clone()),
        (None, Some(path)) => secret_spec::Value::BinaryValue(read_value_file(path)?),
        (None, None) => secret_spec::Value::StringValue(prompt_hidden("Enter secret value: ")?),
    };
    let s = settings(&a.backend)?;
    let (project, domain) = scope(&a.backend);
    let rt = runtime()?;
    rt.block_on(async {
        let c = AdminClient::connect(&s, crate::process::login_notice()).await?;
        let id = c.secret_id(&name, &project, &domain);
        let spec = SecretSpec {
            r#type: secret_type as i32,
            value: Some(value),
        };
        c.create_secret(id, spec)
            .await
            .map_err(|e| secret_error(e, &name, &project, &domain))
    })?;
    crate::process::write_data(&format!("Created secret with name: {name}\n"))?;
    Ok(ExitCode::SUCCESS)
}

fn read_value_file(path: &std::path::Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut bytes).map_err(|e| {
            CliError::new("cannot read the secret value from standard input").caused_by(e)
        })?;
        return Ok(bytes);
    }
    std::fs::read(path).map_err(|e| {
        CliError::usage(format!("cannot read the value file `{}`", path.display()))
            .caused_by(e)
            .into()
    })
}

/// Read one line without echoing it when standard input is a terminal (click's
/// `hide_input=True`); from a pipe, the first line.
fn prompt_hidden(prompt: &str) -> Result<String> {
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    let mut line = String::new();
    if terminal {
        let mut err = std::io::stderr();
        let _ = err.write_all(prompt.as_bytes()).and_then(|_| err.flush());
        let echo = EchoOff::new();
        stdin.lock().read_line(&mut line)?;
        drop(echo);
    } else {
        stdin.lock().read_line(&mut line)?;
    }
    let value = line.trim_end_matches(['\n', '\r']).to_string();
    if value.is_empty() && line.is_empty() {
        return Err(CliError::usage(
            "no secret value: pass --value, --value-file FILE, or type it at the prompt",
        )
        .into());
    }
    Ok(value)
}

/// The terminal's attributes before the prompt turned echo off, for the signal handler.
static SAVED_TERMINAL: std::sync::OnceLock<libc::termios> = std::sync::OnceLock::new();

/// Ctrl-C or SIGTERM at the hidden prompt: give the terminal its echo back, then exit as every
/// command does (the usual handler `_exit`s, which would leave the terminal silent).
extern "C" fn restore_terminal_and_exit(sig: libc::c_int) {
    let message = b"\nerror: interrupted: no secret was created\n";
    // SAFETY: tcsetattr, write and _exit are async-signal-safe; SAVED_TERMINAL is set before
    // this handler is installed and never changes after.
    unsafe {
        if let Some(saved) = SAVED_TERMINAL.get() {
            libc::tcsetattr(0, libc::TCSANOW, saved);
        }
        libc::write(2, message.as_ptr().cast(), message.len());
        libc::_exit(128 + sig);
    }
}

/// Terminal echo turned off until dropped.
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> Self {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a zeroed, then kernel-filled termios; failure
        // (not a terminal) leaves echo as it was. The handler installed only calls
        // async-signal-safe functions.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return EchoOff(None);
            }
            let saved = t;
            // A second prompt in the same process finds the same attributes stored.
            let _ = SAVED_TERMINAL.set(saved);
            for sig in [libc::SIGINT, libc::SIGTERM] {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = restore_terminal_and_exit as *const () as usize;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(sig, &action, std::ptr::null_mut());
            }
            t.c_lflag &= !libc::ECHO;
            t.c_lflag |= libc::ECHONL;
            if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                crate::process::reown_signals();
                return EchoOff(None);
            }
            EchoOff(Some(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = self.0.take() {
            // SAFETY: restores the attributes read in `new` on the same descriptor.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, &saved);
            }
        }
        crate::process::reown_signals();
    }
}

/// `union get secret [NAME]`: union's table (name, project, domain, type; `-` for all).
pub fn get(a: GetSecretArgs) -> Result<ExitCode> {
    let s = settings(&a.backend)?;
    let (project, domain) = scope(&a.backend);
    let rt = runtime()?;
    let secrets = rt.block_on(async {
        let c = AdminClient::connect(&s, crate::process::login_notice()).await?;
        match &a.name {
            Some(name) => c
                .get_secret(c.secret_id(name, &project, &domain))
                .await
                .map(|s| vec![s])
                .map_err(|e| secret_error(e, name, &project, &domain)),
            None => c
                .list_secrets(&project, &domain)
                .await
                .map_err(anyhow::Error::from),
        }
    })?;
    crate::process::write_data(&render_table(&secrets))?;
    Ok(ExitCode::SUCCESS)
}

fn render_table(secrets: &[Secret]) -> String {
    if secrets.is_empty() {
        return "No secrets found\n".into();
    }
    let rows: Vec<[String; 4]> = secrets
        .iter()
        .map(|s| {
            let id = s.id.clone().unwrap_or_default();
            let t = s
                .secret_metadata
                .as_ref()
                .map(|m| m.r#type)
                .unwrap_or_default();
            let type_name = SecretType::try_from(t)
                .map(|t| {
                    t.as_str_name()
                        .trim_start_matches("SECRET_TYPE_")
                        .to_string()
                })
                .unwrap_or_else(|_| t.to_string());
            let dash = |v: String| if v.is_empty() { "-".to_string() } else { v };
            [id.name, dash(id.project), dash(id.domain), type_name]
        })
        .collect();
    let header = ["NAME", "PROJECT", "DOMAIN", "TYPE"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(header.map(String::from)).chain(rows) {
        let cells: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

/// `union delete secret NAME`.
pub fn delete(a: DeleteSecretArgs) -> Result<ExitCode> {
    let name = one_name(a.name, a.name_option, "delete")?;
    let s = settings(&a.backend)?;
    let (project, domain) = scope(&a.backend);
    let rt = runtime()?;
    rt.block_on(async {
        let c = AdminClient::connect(&s, crate::process::login_notice()).await?;
        c.delete_secret(c.secret_id(&name, &project, &domain))
            .await
            .map_err(|e| secret_error(e, &name, &project, &domain))
    })?;
    crate::process::write_data(&format!("Deleted secret with name: {name}\n"))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use union_idl::cloudidl::secret::{SecretIdentifier, SecretMetadata};

    #[test]
    fn table_shows_dashes_for_every_project_and_domain() {
        let s = |name: &str, project: &str, t: SecretType| Secret {
            id: Some(SecretIdentifier {
                name: name.into(),
                project: project.into(),
                ..Default::default()
            }),
            secret_metadata: Some(SecretMetadata {
                r#type: t as i32,
                ..Default::default()
            }),
        };
        let text = render_table(&[
            s("api_token", "", SecretType::Generic),
            s("pull", "flytesnacks", SecretType::ImagePullSecret),
        ]);
        assert_eq!(
            text,
            "NAME       PROJECT      DOMAIN  TYPE\n\
             api_token  -            -       GENERIC\n\
             pull       flytesnacks  -       IMAGE_PULL_SECRET\n"
        );
        assert_eq!(render_table(&[]), "No secrets found\n");
    }
}
