//! `union create login`: union's login command (`union create secret` is in `secret.rs`). Writes `~/.union/config.yaml` as union 0.1.204
//! does (before logging in, as union does, so a failed login can be retried with any client),
//! then asks the server who we are, which makes the session log in and cache its token.

use std::process::ExitCode;

use anyhow::Result;
use union_client::{config, AdminClient, Overrides};

use super::common::runtime;
use crate::cli::{CreateCommand, LoginArgs, LoginAuth};
use crate::diagnostics::CliError;

pub fn create(cmd: CreateCommand) -> Result<ExitCode> {
    match cmd {
        CreateCommand::Login(a) => login(a),
        CreateCommand::Secret(a) => super::secret::create(a),
    }
}

fn login(a: LoginArgs) -> Result<ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    let endpoint = config::login_endpoint(a.host.as_deref(), a.serverless, &env);
    if endpoint.is_empty() {
        return Err(CliError::usage(
            "--host is empty: name the tenant or cluster, e.g. --host acme.union.ai",
        )
        .into());
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            CliError::new("HOME is not set: there is nowhere to write ~/.union/config.yaml")
        })?;
    let path = std::path::PathBuf::from(home)
        .join(".union")
        .join("config.yaml");
    let auth_type = match a.auth {
        LoginAuth::Pkce => "Pkce",
        LoginAuth::DeviceFlow => "DeviceFlow",
    };
    std::fs::create_dir_all(path.parent().unwrap_or(&path))
        .and_then(|_| std::fs::write(&path, config::login_config(&endpoint, auth_type)))
        .map_err(|e| CliError::new(format!("cannot write {}", path.display())).caused_by(e))?;
    crate::process::note(&format!("Configuration saved to {}", path.display()));

    let settings = config::load(&Overrides {
        config: Some(path),
        ..Default::default()
    })?;
    let rt = runtime()?;
    let who = rt.block_on(async {
        let c = AdminClient::connect(&settings, crate::process::login_notice()).await?;
        c.user_info().await
    })?;
    let shown = if a.serverless {
        "serverless"
    } else {
        endpoint.as_str()
    };
    let user = [&who.preferred_username, &who.name, &who.subject]
        .into_iter()
        .find(|s| !s.is_empty())
        .cloned()
        .unwrap_or_default();
    let as_user = if user.is_empty() {
        String::new()
    } else {
        format!(" as {user}")
    };
    crate::process::write_data(&format!("Login successful into {shown}{as_user}\n"))?;
    Ok(ExitCode::SUCCESS)
}
