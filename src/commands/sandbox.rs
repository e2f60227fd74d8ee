//! `union sandbox start`: run the local FlyteAdmin-compatible backend in the foreground.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{SandboxArgs, SandboxCommand, SandboxStartArgs};
use crate::diagnostics::CliError;
use union_image::remote::ServerSettings;
use union_sandbox::auth::{AuthSettings, Authority};
use union_sandbox::{Sandbox, SandboxConfig};

/// Run a `union sandbox` subcommand.
pub fn sandbox(args: SandboxArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        SandboxCommand::Start(args) => {
            let image_builder = image_builder_settings(&args)?;
            start(resolve(args)?, image_builder)
        }
    }
}

/// Flags and env (clap already applied UNION_SANDBOX_PORT / UNION_SANDBOX_DIR) over defaults.
fn resolve(args: SandboxStartArgs) -> anyhow::Result<SandboxConfig> {
    let auth = auth_settings(&args)?;
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => {
            let home = std::env::var_os(crate::env_vars::HOME)
                .filter(|h| !h.is_empty())
                .ok_or_else(|| {
                    CliError::new(
                        "cannot find the home directory for the sandbox's data (HOME is not set)",
                    )
                    .hint("pass --data-dir DIR or set UNION_SANDBOX_DIR")
                })?;
            PathBuf::from(home).join(".union").join("sandbox")
        }
    };
    Ok(SandboxConfig {
        host: args.host,
        port: args.port,
        data_dir,
        auth,
        tls: args.tls,
    })
}

/// `--auth` and its options (clap already refused them without `--auth`).
fn auth_settings(args: &SandboxStartArgs) -> anyhow::Result<Option<AuthSettings>> {
    if !args.auth {
        return Ok(None);
    }
    let mut settings = AuthSettings::default();
    if let Some(secs) = args.auth_token_lifetime {
        settings.token_lifetime = std::time::Duration::from_secs(secs);
    }
    if let Some(uri) = &args.auth_redirect_uri {
        settings.redirect_uri = uri.trim().to_string();
    }
    settings.org = args.org.as_ref().map(|o| o.trim().to_string());
    // The mistake is a flag's: a usage error, not a failure to start.
    settings.validate().map_err(|e| {
        CliError::usage(e.to_string())
            .hint("check --auth-token-lifetime, --auth-redirect-uri and --org (`union sandbox start --help`)")
    })?;
    Ok(Some(settings))
}

/// The remote image builder's settings from `--image-registry`, `--base-image` (UNION_BASE_IMAGE)
/// and `--no-image-builder` (None: no builder); the data dir is the sandbox's.
fn image_builder_settings(args: &SandboxStartArgs) -> anyhow::Result<Option<ServerSettings>> {
    let mut settings = ServerSettings::new(PathBuf::new());
    // Without the flag: the sandbox's own registry, filled in once the port is bound.
    settings.default_registry = String::new();
    if let Some(given) = &args.image_registry {
        let registry = given.trim().trim_end_matches('/').to_lowercase();
        if !union_image::spec::validate_registry(&registry) {
            return Err(CliError::usage(format!(
                "--image-registry `{given}` is not a registry name such as `localhost:30000` or `ghcr.io/org`"
            ))
            .into());
        }
        settings.default_registry = registry;
    }
    if let Some(base) = args.base_image.as_deref().filter(|b| !b.trim().is_empty()) {
        settings.default_base_image = base.trim().to_string();
    }
    Ok((!args.no_image_builder).then_some(settings))
}

/// The sandbox's built-in registry as Docker on this machine reaches it: `localhost:<port>` when
/// it listens on loopback or every address (Docker speaks plain HTTP to localhost without being
/// configured to), else its address.
fn own_registry(addr: std::net::SocketAddr) -> String {
    let ip = addr.ip();
    if ip.is_loopback() || ip.is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    }
}

fn start(config: SandboxConfig, image_builder: Option<ServerSettings>) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("union-sandbox")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        let mut sandbox = Sandbox::bind(&config).await?;
        if let Some(mut settings) = image_builder {
            if settings.default_registry.is_empty() {
                settings.default_registry = own_registry(sandbox.local_addr());
            }
            sandbox = sandbox.with_image_builder(settings);
        }
        sandbox = sandbox.with_schedule_reporter(std::sync::Arc::new(ScheduleNotes));
        {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "union sandbox listening on {} (data: {})",
                sandbox.local_addr(),
                sandbox.data_dir().display()
            )?;
            out.flush()?;
        }
        // On stderr: tests read stdout's first line and may close it.
        crate::process::note(&format!(
            "Registry: {} (docker push/pull; ImageSpecs without a registry go here)",
            own_registry(sandbox.local_addr())
        ));
        crate::process::note(&format!(
            "Console: {}{}",
            sandbox.console_url(),
            if sandbox.auth().is_some() {
                " (it signs in through this sandbox's OAuth2 server)"
            } else {
                ""
            }
        ));
        if let Some(ca) = sandbox.tls_ca_cert() {
            crate::process::note(&format!(
                "TLS: on, with a certificate from the local CA {} (clients: admin.caCertFilePath, or SSL_CERT_FILE; Python's gRPC: GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, requests: REQUESTS_CA_BUNDLE)",
                ca.display()
            ));
        }
        if let Some(auth) = sandbox.auth() {
            auth_banner(auth, sandbox.tls_ca_cert())
                .iter()
                .for_each(|l| crate::process::note(l));
        }
        sandbox.serve(shutdown).await?;
        crate::process::note("union sandbox stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// The scheduler's doings, one line each on stderr.
#[derive(Debug)]
struct ScheduleNotes;

impl union_sandbox::schedules::ScheduleReporter for ScheduleNotes {
    fn report(&self, event: union_sandbox::schedules::ScheduleEvent) {
        use union_sandbox::schedules::{cron::rfc3339, ScheduleEvent};
        crate::process::note(&match event {
            ScheduleEvent::Started {
                launch_plan,
                scheduled_at,
                execution,
            } => format!(
                "schedule: started {execution} of {launch_plan} for {}",
                rfc3339(scheduled_at)
            ),
            ScheduleEvent::Failed {
                launch_plan,
                scheduled_at,
                error,
            } => format!(
                "schedule: cannot start {launch_plan} for {}: {error}",
                rfc3339(scheduled_at)
            ),
            ScheduleEvent::Invalid { launch_plan, error } => {
                format!("schedule: {launch_plan} cannot run: {error}")
            }
        });
    }
}

/// What a user needs to connect to a sandbox with authentication: never the secret, only where
/// it is.
fn auth_banner(auth: &Authority, tls_ca: Option<&std::path::Path>) -> Vec<String> {
    let secret = auth.client_secret_path().display().to_string();
    let mut lines = vec![
        "authentication: on (every gRPC call needs an OAuth2 access token)".to_string(),
        format!("  token endpoint: {}", auth.token_endpoint()),
        format!(
            "  confidential client: {} (its secret is in {secret})",
            union_sandbox::auth::CONFIDENTIAL_CLIENT_ID
        ),
        format!(
            "  public client: {} (PKCE and device flow; redirect URI {})",
            union_sandbox::auth::PUBLIC_CLIENT_ID,
            auth.settings().redirect_uri
        ),
    ];
    if let Some(org) = &auth.settings().org {
        lines.push(format!(
            "  org mode: requests must name org `{org}` ({})",
            union_sandbox::auth::ORG_METADATA_KEY
        ));
    }
    let transport = match tls_ca {
        Some(ca) => format!(
            "insecure: false, caCertFilePath: {}",
            yaml_scalar(&ca.display().to_string())
        ),
        None => "insecure: true".to_string(),
    };
    lines.push(format!(
        "  flytekit config: admin: {{endpoint: dns:///{}, {transport}, authType: ClientSecret, clientId: {}, clientSecretLocation: {}}}",
        auth.endpoint(),
        union_sandbox::auth::CONFIDENTIAL_CLIENT_ID,
        yaml_scalar(&secret)
    ));
    lines
}

/// `s` as a YAML flow scalar: as is when it is plain, else single-quoted.
fn yaml_scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || "/._-~+@".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// Resolves on Ctrl-C or SIGTERM; the server then drains in-flight requests. The handlers are
/// installed here, eagerly, so that a signal arriving right after the "listening" line is not
/// fatal (tokio installs them only when asked).
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
        crate::process::note("union sandbox: shutting down (finishing in-flight requests)");
    })
}
