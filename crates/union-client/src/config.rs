//! Configuration compatible with flytekit and union config files.
//!
//! The file is the first of: `--config FILE`, `$UNION_CONFIG` (or `$UNIONAI_CONFIG`),
//! `$FLYTECTL_CONFIG`, `~/.union/config.yaml`, `~/.flyte/config.yaml`. Keys read:
//! `admin.endpoint` (a `dns:///` prefix is dropped), `admin.insecure`, `admin.insecureSkipVerify`,
//! `admin.caCertFilePath`, `task.project`, `task.domain`, `images.<name>`, and our own
//! `union.defaultImage` / `union.baseImage` / `union.imageBuilder`. Environment overrides are read before the file, as
//! flytekit does: `FLYTE_PLATFORM_URL`, `FLYTE_PLATFORM_INSECURE`,
//! `FLYTE_PLATFORM_INSECURE_SKIP_VERIFY`, `FLYTE_DEFAULT_PROJECT`, `FLYTE_DEFAULT_DOMAIN`,
//! `FLYTE_INTERNAL_IMAGE`. Command-line flags win over both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file named by a flag or variable is not there.
    #[error("config file `{}` (from {from}) does not exist", path.display())]
    Missing {
        path: PathBuf,
        /// `--config` or `$VAR`.
        from: String,
    },
    /// The file could not be read.
    #[error("cannot read config file `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not YAML.
    #[error("config file `{}` is not valid YAML", path.display())]
    Yaml {
        path: PathBuf,
        #[source]
        source: serde_yaml::Error,
    },
    /// A key has a value of the wrong kind.
    #[error("`{key}` in {} must be {expected}", file.display())]
    BadKey {
        file: PathBuf,
        key: &'static str,
        expected: &'static str,
    },
    /// An environment variable has a value that cannot be used.
    #[error("${var} is `{value}`; expected {expected}")]
    BadEnv {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
    /// The endpoint is empty.
    #[error("the admin endpoint set by {0} is empty")]
    EmptyEndpoint(Source),
    /// `admin.clientSecretLocation` names a file that cannot be read.
    #[error("cannot read the client secret file `{}` ({key})", path.display())]
    SecretFile {
        path: PathBuf,
        key: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// `admin.authType` names no flow.
    #[error(transparent)]
    AuthType(#[from] crate::auth::UnknownAuthType),
    /// `UNION_API_KEY` (or an alias) cannot be decoded.
    #[error(transparent)]
    ApiKey(#[from] crate::auth::api_key::ApiKeyError),
}

impl union_diagnostics::Hint for ConfigError {
    fn hints(&self) -> Vec<String> {
        match self {
            ConfigError::Missing { from, .. } if from.starts_with('$') => vec![format!(
                "unset {} or point it at an existing file",
                from.trim_start_matches('$')
            )],
            ConfigError::Yaml { .. } => vec![
                "flytekit's INI config files (flytekit.config) are not supported; use the YAML form"
                    .into(),
            ],
            ConfigError::SecretFile { key, .. } => vec![format!(
                "point {key} at a file holding only the client secret, readable by you"
            )],
            ConfigError::AuthType(e) => union_diagnostics::Hint::hints(e),
            ConfigError::ApiKey(e) => union_diagnostics::Hint::hints(e),
            _ => Vec::new(),
        }
    }
}

/// The default FlyteAdmin endpoint (flytekit's and the sandbox's).
pub const DEFAULT_ENDPOINT: &str = "localhost:30080";
/// The default project, as pyflyte.
pub const DEFAULT_PROJECT: &str = "flytesnacks";
/// The default domain, as pyflyte.
pub const DEFAULT_DOMAIN: &str = "development";

/// Where a setting came from (shown in errors: "endpoint localhost:30080, set by ~/.flyte/config.yaml").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    Env(&'static str),
    File(PathBuf),
    Flag(&'static str),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => write!(f, "the default"),
            Source::Env(v) => write!(f, "${v}"),
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Flag(flag) => write!(f, "{flag}"),
        }
    }
}

/// Resolved settings for commands that talk to a backend.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `host:port`, without scheme.
    pub endpoint: String,
    pub endpoint_source: Source,
    pub insecure: bool,
    pub insecure_skip_verify: bool,
    pub ca_cert_file: Option<PathBuf>,
    pub project: String,
    pub domain: String,
    /// `images.<name>: <uri>` from the config file.
    pub images: BTreeMap<String, String>,
    /// The default task image, when configured (`FLYTE_INTERNAL_IMAGE` or `union.defaultImage`).
    pub default_image: Option<String>,
    /// The base image for ImageSpecs that name none (`union.baseImage`).
    pub base_image: Option<String>,
    /// The builder for ImageSpecs that name none (`union.imageBuilder`: `union` for the backend's).
    pub image_builder: Option<String>,
    /// The config file read, if any.
    pub file: Option<PathBuf>,
    /// How to authenticate (used only when the server asks).
    pub auth: crate::auth::AuthSettings,
    /// The organization (Union): from `--org` or a Serverless API key.
    pub org: Option<String>,
    /// `console.endpoint`: where the web console is, when not at the admin endpoint.
    pub console_endpoint: Option<String>,
    /// Union Serverless (or `UNION_SERVERLESS_ENDPOINT` is set): without an org, the org is
    /// the signed-in user's handle (`IdentityService.UserInfo`), as union finds it.
    pub serverless: bool,
}

impl Settings {
    /// The console page of an execution, as flytekit's `generate_console_url` makes it (union's
    /// with an org: `/org/<org>/` instead of `/console/`).
    pub fn console_url(&self, project: &str, domain: &str, name: &str) -> String {
        let base = match &self.console_endpoint {
            Some(c) => c.trim_end_matches('/').to_string(),
            None => format!(
                "{}://{}",
                if self.insecure { "http" } else { "https" },
                self.endpoint
            ),
        };
        let path = format!("projects/{project}/domains/{domain}/executions/{name}");
        match &self.org {
            Some(org) => format!("{base}/org/{org}/{path}"),
            None => format!("{base}/console/{path}"),
        }
    }
}

/// Values given on the command line (they win over env and file).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub endpoint: Option<String>,
    pub insecure: Option<bool>,
    pub project: Option<String>,
    pub domain: Option<String>,
    pub org: Option<String>,
}

/// Find the config file to read, in flytekit/union order.
pub fn find_file(
    flag: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
) -> Result<Option<PathBuf>, ConfigError> {
    if let Some(p) = flag {
        if !p.is_file() {
            return Err(ConfigError::Missing {
                path: p.to_path_buf(),
                from: "--config".into(),
            });
        }
        return Ok(Some(p.to_path_buf()));
    }
    for var in ["UNION_CONFIG", "UNIONAI_CONFIG", "FLYTECTL_CONFIG"] {
        if let Some(v) = env(var).filter(|v| !v.is_empty()) {
            let p = PathBuf::from(&v);
            if !p.is_file() {
                return Err(ConfigError::Missing {
                    path: p,
                    from: format!("${var}"),
                });
            }
            return Ok(Some(p));
        }
    }
    if let Some(home) = home {
        for rel in [
            ".union/config.yaml",
            ".uctl/config.yaml",
            ".flyte/config.yaml",
        ] {
            let p = home.join(rel);
            if p.is_file() {
                return Ok(Some(p));
            }
        }
    }
    Ok(None)
}

fn get<'a>(doc: &'a serde_yaml::Value, path: &[&str]) -> Option<&'a serde_yaml::Value> {
    let mut cur = doc;
    for k in path {
        cur = cur.get(*k)?;
    }
    Some(cur)
}

fn as_bool(v: &serde_yaml::Value) -> Option<bool> {
    match v {
        serde_yaml::Value::Bool(b) => Some(*b),
        serde_yaml::Value::String(s) => parse_bool(s),
        _ => None,
    }
}

/// Whether this process runs in CI: `CI` is set to anything but an empty or false value (GitHub
/// Actions, GitLab and most others set `CI=true`). One meaning for every use: the warm interpreter
/// stays off, and progress is plain lines instead of spinners.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| {
        let v = v.to_string_lossy();
        !v.trim().is_empty() && parse_bool(&v) != Some(false)
    })
}

/// flytekit's str2bool: true/1/yes/y/t (any case) are true.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "t" | "yes" | "y" | "on" => Some(true),
        "0" | "false" | "f" | "no" | "n" | "off" | "" => Some(false),
        _ => None,
    }
}

/// Normalize an endpoint: drop `dns:///`; an `http://` scheme means insecure, `https://` secure.
pub fn normalize_endpoint(raw: &str) -> (String, Option<bool>) {
    let mut e = raw.trim();
    let mut insecure = None;
    if let Some(rest) = e.strip_prefix("dns:///") {
        e = rest;
    }
    if let Some(rest) = e.strip_prefix("http://") {
        e = rest;
        insecure = Some(true);
    } else if let Some(rest) = e.strip_prefix("https://") {
        e = rest;
        insecure = Some(false);
    }
    (e.trim_end_matches('/').to_string(), insecure)
}

/// Resolve settings from flags, the environment and the config file.
pub fn load(overrides: &Overrides) -> Result<Settings, ConfigError> {
    let env = |k: &str| std::env::var(k).ok();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    load_with(overrides, &env, home.as_deref())
}

/// [`load`] with explicit environment and home (for tests).
pub fn load_with(
    overrides: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
) -> Result<Settings, ConfigError> {
    let file = find_file(overrides.config.as_deref(), env, home)?;
    let doc: serde_yaml::Value = match &file {
        None => serde_yaml::Value::Null,
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.clone(),
                source,
            })?;
            if text.trim().is_empty() {
                serde_yaml::Value::Null
            } else {
                serde_yaml::from_str(&text).map_err(|source| ConfigError::Yaml {
                    path: p.clone(),
                    source,
                })?
            }
        }
    };
    let file_src = || Source::File(file.clone().unwrap_or_default());

    let mut s = Settings {
        endpoint: DEFAULT_ENDPOINT.to_string(),
        endpoint_source: Source::Default,
        insecure: false,
        insecure_skip_verify: false,
        ca_cert_file: None,
        project: DEFAULT_PROJECT.to_string(),
        domain: DEFAULT_DOMAIN.to_string(),
        images: BTreeMap::new(),
        default_image: None,
        base_image: None,
        image_builder: None,
        file: file.clone(),
        auth: Default::default(),
        org: None,
        console_endpoint: None,
        serverless: false,
    };
    // The sandbox default is plaintext on localhost; a configured remote endpoint is TLS unless
    // the file says otherwise, as in flytekit.
    let mut insecure_explicit = false;

    // File first, then env over it, then flags over both.
    if let Some(v) = get(&doc, &["admin", "endpoint"]).and_then(|v| v.as_str()) {
        let (e, scheme_insecure) = normalize_endpoint(v);
        s.endpoint = e;
        s.endpoint_source = file_src();
        if let Some(i) = scheme_insecure {
            s.insecure = i;
            insecure_explicit = true;
        }
    }
    if let Some(v) = get(&doc, &["admin", "insecure"]) {
        s.insecure = as_bool(v).ok_or_else(|| bad_key(&file, "admin.insecure", "true or false"))?;
        insecure_explicit = true;
    }
    if let Some(v) = get(&doc, &["admin", "insecureSkipVerify"]) {
        s.insecure_skip_verify = as_bool(v)
            .ok_or_else(|| bad_key(&file, "admin.insecureSkipVerify", "true or false"))?;
    }
    if let Some(v) = get(&doc, &["admin", "caCertFilePath"]).and_then(|v| v.as_str()) {
        s.ca_cert_file = Some(PathBuf::from(v));
    }
    if let Some(v) = get(&doc, &["task", "project"]).and_then(|v| v.as_str()) {
        s.project = v.to_string();
    }
    if let Some(v) = get(&doc, &["task", "domain"]).and_then(|v| v.as_str()) {
        s.domain = v.to_string();
    }
    if let Some(map) = get(&doc, &["images"]).and_then(|v| v.as_mapping()) {
        for (k, v) in map {
            let (Some(k), Some(v)) = (k.as_str(), v.as_str()) else {
                return Err(bad_key(&file, "images", "a map of name: image URI"));
            };
            s.images.insert(k.to_string(), v.to_string());
        }
    }
    if let Some(v) = get(&doc, &["union", "defaultImage"]).and_then(|v| v.as_str()) {
        s.default_image = Some(v.to_string());
    }
    if let Some(v) = get(&doc, &["union", "baseImage"]).and_then(|v| v.as_str()) {
        s.base_image = Some(v.to_string());
    }
    if let Some(v) = get(&doc, &["union", "imageBuilder"]).and_then(|v| v.as_str()) {
        s.image_builder = Some(v.to_string());
    }

    if let Some(v) = env("FLYTE_PLATFORM_URL").filter(|v| !v.is_empty()) {
        let (e, scheme_insecure) = normalize_endpoint(&v);
        s.endpoint = e;
        s.endpoint_source = Source::Env("FLYTE_PLATFORM_URL");
        if let Some(i) = scheme_insecure {
            s.insecure = i;
            insecure_explicit = true;
        }
    }
    if let Some(v) = env("FLYTE_PLATFORM_INSECURE").filter(|v| !v.is_empty()) {
        s.insecure = parse_bool(&v).ok_or_else(|| ConfigError::BadEnv {
            var: "FLYTE_PLATFORM_INSECURE",
            value: v.clone(),
            expected: "true or false",
        })?;
        insecure_explicit = true;
    }
    if let Some(v) = env("FLYTE_PLATFORM_INSECURE_SKIP_VERIFY").filter(|v| !v.is_empty()) {
        s.insecure_skip_verify = parse_bool(&v).unwrap_or(false);
    }
    if let Some(v) = env("FLYTE_DEFAULT_PROJECT").filter(|v| !v.is_empty()) {
        s.project = v;
    }
    if let Some(v) = env("FLYTE_DEFAULT_DOMAIN").filter(|v| !v.is_empty()) {
        s.domain = v;
    }
    if let Some(v) = env("FLYTE_INTERNAL_IMAGE").filter(|v| !v.is_empty()) {
        s.default_image = Some(v);
    }
    read_auth(&mut s, &doc, &file, env)?;
    s.console_endpoint = env("FLYTE_PLATFORM_CONSOLE_ENDPOINT")
        .filter(|v| !v.is_empty())
        .or_else(|| {
            get(&doc, &["console", "endpoint"])
                .and_then(|v| v.as_str())
                .map(str::to_string)
        });
    if overrides.config.is_none() {
        // union's order (`_get_config_obj`): UNION_SERVERLESS_ENDPOINT, then a key in the
        // environment, win over UNION_CONFIG and the files.
        let serverless_var = crate::auth::api_key::SERVERLESS_ENDPOINT_VAR;
        if let Some(ep) = env(serverless_var) {
            let (e, _) = normalize_endpoint(&ep);
            s.endpoint = e;
            s.endpoint_source = Source::Env(serverless_var);
            s.insecure = false;
            s.auth = Default::default();
            insecure_explicit = true;
        } else if let Some(key) = crate::auth::api_key::from_env(env)? {
            apply_api_key(&mut s, key);
            insecure_explicit = true;
        }
    }

    if let Some(e) = &overrides.endpoint {
        let (e, scheme_insecure) = normalize_endpoint(e);
        s.endpoint = e;
        s.endpoint_source = Source::Flag("--endpoint");
        if let Some(i) = scheme_insecure {
            s.insecure = i;
            insecure_explicit = true;
        }
    }
    if let Some(i) = overrides.insecure {
        s.insecure = i;
        insecure_explicit = true;
    }
    if let Some(p) = &overrides.project {
        s.project = p.clone();
    }
    if let Some(d) = &overrides.domain {
        s.domain = d.clone();
    }
    if let Some(o) = &overrides.org {
        s.org = Some(o.clone());
    }
    if !insecure_explicit && is_loopback(&s.endpoint) {
        // The local sandbox speaks plaintext; nothing configured means "the sandbox".
        s.insecure = true;
    }
    if s.endpoint.is_empty() {
        return Err(ConfigError::EmptyEndpoint(s.endpoint_source));
    }
    s.serverless = crate::auth::api_key::is_serverless(&s.endpoint, env);
    Ok(s)
}

/// A string or a list of strings (flytekit's list entries; from the environment, comma-separated).
fn str_list(v: &serde_yaml::Value) -> Option<Vec<String>> {
    match v {
        serde_yaml::Value::String(s) => Some(s.split(',').map(str::to_string).collect()),
        serde_yaml::Value::Sequence(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

/// The credential keys, as flytekit's `PlatformConfig.auto` reads them: each
/// `FLYTE_CREDENTIALS_<KEY>` variable over the YAML key; a secret from `clientSecretLocation`
/// or `clientSecretEnvVar` forces ClientSecret.
fn read_auth(
    s: &mut Settings,
    doc: &serde_yaml::Value,
    file: &Option<PathBuf>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let text = |yaml: &str, var: &str| -> Option<String> {
        env(var).filter(|v| !v.is_empty()).or_else(|| {
            get(doc, &["admin", yaml])
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
    };
    let list = |yaml: &'static str, var: &str| -> Result<Vec<String>, ConfigError> {
        if let Some(v) = env(var).filter(|v| !v.is_empty()) {
            return Ok(v.split(',').map(str::to_string).collect());
        }
        match get(doc, &["admin", yaml]) {
            None | Some(serde_yaml::Value::Null) => Ok(Vec::new()),
            Some(v) => {
                str_list(v).ok_or_else(|| bad_key(file, yaml_key(yaml), "a list of strings"))
            }
        }
    };
    let a = &mut s.auth;
    a.client_id = text("clientId", "FLYTE_CREDENTIALS_CLIENT_ID");
    a.client_secret = env("FLYTE_CREDENTIALS_CLIENT_SECRET")
        .filter(|v| !v.is_empty())
        .map(crate::auth::Secret::new);
    if let Some(loc) = text(
        "clientSecretLocation",
        "FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION",
    ) {
        let path = PathBuf::from(&loc);
        let secret = std::fs::read_to_string(&path).map_err(|source| ConfigError::SecretFile {
            path,
            key: "admin.clientSecretLocation",
            source,
        })?;
        if !secret.is_empty() {
            a.client_secret = Some(crate::auth::Secret::new(secret.trim()));
            a.secret_forces_client_secret = true;
        }
    }
    if let Some(var) = text(
        "clientSecretEnvVar",
        "FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR",
    ) {
        if let Some(secret) = env(&var).filter(|v| !v.is_empty()) {
            a.client_secret = Some(crate::auth::Secret::new(secret));
            a.secret_forces_client_secret = true;
        }
    }
    a.scopes = list("scopes", "FLYTE_CREDENTIALS_SCOPES")?;
    a.command = list("command", "FLYTE_CREDENTIALS_COMMAND")?;
    a.proxy_command = list("proxyCommand", "FLYTE_CREDENTIALS_PROXY_COMMAND")?;
    a.audience = text("audience", "FLYTE_CREDENTIALS_AUDIENCE");
    a.http_proxy_url = text("httpProxyURL", "FLYTE_PLATFORM_HTTP_PROXY_URL");
    if let Some(t) = text("authType", "FLYTE_CREDENTIALS_AUTH_MODE") {
        a.auth_type = Some(t.parse()?);
    }
    if let Some(ca) = env("FLYTE_PLATFORM_CA_CERT_FILE_PATH").filter(|v| !v.is_empty()) {
        s.ca_cert_file = Some(PathBuf::from(ca));
    }
    Ok(())
}

fn yaml_key(k: &'static str) -> &'static str {
    match k {
        "scopes" => "admin.scopes",
        "command" => "admin.command",
        "proxyCommand" => "admin.proxyCommand",
        _ => "admin",
    }
}

/// union's `_decode_union_api_key`: the key's endpoint over TLS with ClientSecret; the rest of
/// the platform settings are not used.
fn apply_api_key(s: &mut Settings, key: crate::auth::api_key::ApiKey) {
    let (endpoint, _) = normalize_endpoint(&key.endpoint);
    s.endpoint = endpoint;
    s.endpoint_source = Source::Env(key.from);
    s.insecure = false;
    s.auth = crate::auth::AuthSettings {
        auth_type: Some(crate::auth::AuthType::ClientSecret),
        client_id: Some(key.client_id),
        client_secret: Some(crate::auth::Secret::new(key.client_secret)),
        secret_forces_client_secret: true,
        ..Default::default()
    };
    if key.org.is_some() {
        s.org = key.org;
    }
}

/// union's Serverless endpoint when none is named.
pub const DEFAULT_SERVERLESS_ENDPOINT: &str = "serverless-1.us-east-2.s.union.ai";

/// The endpoint `union create login` logs in to, as union's `_get_endpoint_for_login` finds it:
/// the host without scheme or `dns:///`, or Serverless's (`$UNION_SERVERLESS_ENDPOINT` first),
/// vanity names mapped to the real ones.
pub fn login_endpoint(
    host: Option<&str>,
    serverless: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> String {
    let raw = match host {
        Some(h) if !serverless => h.to_string(),
        _ => env(crate::auth::api_key::SERVERLESS_ENDPOINT_VAR)
            .unwrap_or_else(|| DEFAULT_SERVERLESS_ENDPOINT.to_string()),
    };
    let mut e = raw.trim();
    for prefix in ["dns:///", "http://", "https://"] {
        if let Some(rest) = e.strip_prefix(prefix) {
            e = rest;
            break;
        }
    }
    let e = e.trim_end_matches('/');
    match e {
        "serverless.union.ai" => DEFAULT_SERVERLESS_ENDPOINT.to_string(),
        "serverless.staging.union.ai" => "serverless-gcp.cloud-staging.union.ai".to_string(),
        "serverless.canary.union.ai" => "serverless-preview.canary.unionai.cloud".to_string(),
        other => other.to_string(),
    }
}

/// The config file `union create login` writes (union's `_write_config_to_path` template), so
/// that union, pyflyte and this CLI all read it.
pub fn login_config(endpoint: &str, auth_type: &str) -> String {
    format!(
        "admin:\n  endpoint: dns:///{endpoint}\n  insecure: false\n  authType: {auth_type}\nlogger:\n  show-source: true\n  level: 0\nunion:\n  connection:\n    host: dns:///{endpoint}\n    insecure: false\n  auth:\n    type: {auth_type}\n"
    )
}

/// Is `endpoint` (host:port) on this machine?
pub fn is_loopback(endpoint: &str) -> bool {
    let host = endpoint
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(endpoint);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.starts_with("127.") || host == "::1"
}

fn bad_key(file: &Option<PathBuf>, key: &'static str, expected: &'static str) -> ConfigError {
    ConfigError::BadKey {
        file: file.clone().unwrap_or_default(),
        key,
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    #[test]
    fn defaults_point_at_the_local_sandbox() {
        let t = tempfile::tempdir().unwrap();
        let s = load_with(&Overrides::default(), &env_of(&[]), Some(t.path())).unwrap();
        assert_eq!(s.endpoint, "localhost:30080");
        assert!(s.insecure);
        assert_eq!(
            (s.project.as_str(), s.domain.as_str()),
            ("flytesnacks", "development")
        );
        assert_eq!(s.endpoint_source, Source::Default);
    }

    #[test]
    fn file_order_and_keys() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join(".flyte")).unwrap();
        std::fs::write(
            t.path().join(".flyte/config.yaml"),
            "admin:\n  endpoint: dns:///flyte.example.com:443\ntask:\n  project: p1\n  domain: staging\nimages:\n  trainer: ghcr.io/x/trainer:1\n",
        )
        .unwrap();
        let s = load_with(&Overrides::default(), &env_of(&[]), Some(t.path())).unwrap();
        assert_eq!(s.endpoint, "flyte.example.com:443");
        assert!(
            !s.insecure,
            "a remote endpoint is TLS unless configured otherwise"
        );
        assert_eq!(s.project, "p1");
        assert_eq!(s.domain, "staging");
        assert_eq!(s.images["trainer"], "ghcr.io/x/trainer:1");
        // ~/.union/config.yaml wins over ~/.flyte/config.yaml.
        std::fs::create_dir_all(t.path().join(".union")).unwrap();
        std::fs::write(
            t.path().join(".union/config.yaml"),
            "admin:\n  endpoint: dns:///union.example.com\n  insecure: true\n",
        )
        .unwrap();
        let s = load_with(&Overrides::default(), &env_of(&[]), Some(t.path())).unwrap();
        assert_eq!(s.endpoint, "union.example.com");
        assert!(s.insecure);
        assert_eq!(
            s.endpoint_source,
            Source::File(t.path().join(".union/config.yaml"))
        );
    }

    #[test]
    fn env_and_flags_override_the_file() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("c.yaml");
        std::fs::write(
            &f,
            "admin:\n  endpoint: a:1\n  insecure: false\ntask:\n  project: fromfile\n",
        )
        .unwrap();
        let fs = f.to_string_lossy().into_owned();
        let env = env_of(&[
            ("UNION_CONFIG", &fs),
            ("FLYTE_PLATFORM_URL", "b:2"),
            ("FLYTE_DEFAULT_PROJECT", "fromenv"),
        ]);
        let s = load_with(&Overrides::default(), &env, Some(t.path())).unwrap();
        assert_eq!(s.endpoint, "b:2");
        assert_eq!(s.endpoint_source, Source::Env("FLYTE_PLATFORM_URL"));
        assert_eq!(s.project, "fromenv");
        let o = Overrides {
            project: Some("fromflag".into()),
            endpoint: Some("dns:///c:3".into()),
            ..Default::default()
        };
        let s = load_with(&o, &env, Some(t.path())).unwrap();
        assert_eq!(s.endpoint, "c:3");
        assert_eq!(s.project, "fromflag");
    }

    #[test]
    fn console_urls_as_flytekit_and_union_make_them() {
        let t = tempfile::tempdir().unwrap();
        let mut s = load_with(&Overrides::default(), &env_of(&[]), Some(t.path())).unwrap();
        assert_eq!(
            s.console_url("p", "d", "abc"),
            "http://localhost:30080/console/projects/p/domains/d/executions/abc"
        );
        s.org = Some("acme".into());
        s.insecure = false;
        assert_eq!(
            s.console_url("p", "d", "abc"),
            "https://localhost:30080/org/acme/projects/p/domains/d/executions/abc"
        );
    }

    #[test]
    fn login_writes_what_union_writes() {
        let none = |_: &str| None;
        assert_eq!(
            login_endpoint(Some("https://acme.union.ai/"), false, &none),
            "acme.union.ai"
        );
        assert_eq!(
            login_endpoint(None, true, &none),
            DEFAULT_SERVERLESS_ENDPOINT
        );
        assert_eq!(
            login_endpoint(Some("serverless.union.ai"), false, &none),
            DEFAULT_SERVERLESS_ENDPOINT
        );
        // union 0.1.204: _write_config_to_path("acme.union.ai", "Pkce").
        assert_eq!(
            login_config("acme.union.ai", "Pkce"),
            "admin:\n  endpoint: dns:///acme.union.ai\n  insecure: false\n  authType: Pkce\nlogger:\n  show-source: true\n  level: 0\nunion:\n  connection:\n    host: dns:///acme.union.ai\n    insecure: false\n  auth:\n    type: Pkce\n"
        );
    }

    #[test]
    fn missing_config_file_is_an_error() {
        let env = env_of(&[("FLYTECTL_CONFIG", "/nope/config.yaml")]);
        let e = load_with(&Overrides::default(), &env, None).unwrap_err();
        assert!(e.to_string().contains("$FLYTECTL_CONFIG"), "{e}");
    }

    #[test]
    fn bad_yaml_names_the_file() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("c.yaml");
        std::fs::write(&f, "admin: [unclosed").unwrap();
        let o = Overrides {
            config: Some(f.clone()),
            ..Default::default()
        };
        let e = load_with(&o, &env_of(&[]), None).unwrap_err();
        assert!(e.to_string().contains("c.yaml"), "{e}");
    }
}
