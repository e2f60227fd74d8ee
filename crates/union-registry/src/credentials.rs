//! Registry credentials the way the docker CLI finds them: `config.json` in `$DOCKER_CONFIG` (or
//! `~/.docker`), with `auths` entries, a default `credsStore` and per-registry `credHelpers`.
//!
//! Secrets never appear in `Debug` output or in error messages; errors name the registry and the
//! config file or helper only.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use super::reference::DOCKER_HUB;
use super::RegistryError;

/// The key the docker CLI uses for Docker Hub in `auths` and as a helper's server URL.
pub const DOCKER_HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";

/// Credentials for one registry. `Debug` redacts every secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// User name and password (or personal access token), sent as HTTP Basic or to a token realm.
    Basic {
        /// The user name.
        username: String,
        /// The password or access token.
        password: String,
    },
    /// An OAuth2 refresh token from `docker login` (`identitytoken`), exchanged at the token realm.
    IdentityToken {
        /// The user name, when the config records one.
        username: Option<String>,
        /// The refresh token.
        token: String,
    },
    /// A bearer token to send to the registry as is (`registrytoken`).
    RegistryToken(String),
}

impl Credential {
    /// The user name, if this credential has one (never a secret).
    pub fn username(&self) -> Option<&str> {
        match self {
            Credential::Basic { username, .. } => Some(username),
            Credential::IdentityToken { username, .. } => username.as_deref(),
            Credential::RegistryToken(_) => None,
        }
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(
                f,
                "Basic {{ username: {username:?}, password: <redacted> }}"
            ),
            Credential::IdentityToken { username, .. } => {
                write!(
                    f,
                    "IdentityToken {{ username: {username:?}, token: <redacted> }}"
                )
            }
            Credential::RegistryToken(_) => write!(f, "RegistryToken(<redacted>)"),
        }
    }
}

/// The directory holding `config.json`: `$DOCKER_CONFIG` if set and non-empty, else `~/.docker`.
pub fn default_config_dir() -> Option<PathBuf> {
    config_dir_from(std::env::var_os("DOCKER_CONFIG"), std::env::var_os("HOME"))
}

fn config_dir_from(
    docker_config: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    match docker_config {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => home
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".docker")),
    }
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

/// The docker CLI's credential configuration, loaded once.
#[derive(Debug, Default)]
pub struct DockerConfig {
    path: Option<PathBuf>,
    file: ConfigFile,
    /// Asked when this config has nothing for a registry (a spec's `registry_config` falls back
    /// to the user's docker config).
    fallback: Option<Box<DockerConfig>>,
}

impl std::fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthEntry(<redacted>)")
    }
}

impl DockerConfig {
    /// Loads `config.json` from `dir`; a missing directory or file means "no credentials".
    pub fn load(dir: &Path) -> Result<Self, RegistryError> {
        let path = dir.join("config.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(RegistryError::Config {
                    path,
                    detail: e.to_string(),
                })
            }
        };
        if text.trim().is_empty() {
            return Ok(Self {
                path: Some(path),
                ..Self::default()
            });
        }
        // serde_json's messages quote no input text, only positions, so they cannot leak a secret.
        let file: ConfigFile = serde_json::from_str(&text).map_err(|e| RegistryError::Config {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        Ok(Self {
            path: Some(path),
            file,
            fallback: None,
        })
    }

    /// Loads a docker config file given by path (an ImageSpec's `registry_config`); unlike the
    /// default config, a missing file is an error: it was named on purpose.
    pub fn load_file(path: &Path) -> Result<Self, RegistryError> {
        if !path.is_file() {
            return Err(RegistryError::Config {
                path: path.to_path_buf(),
                detail: "no such file".into(),
            });
        }
        let mut config = Self::default();
        let text = std::fs::read_to_string(path).map_err(|e| RegistryError::Config {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        config.path = Some(path.to_path_buf());
        if !text.trim().is_empty() {
            config.file = serde_json::from_str(&text).map_err(|e| RegistryError::Config {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
        }
        Ok(config)
    }

    /// Loads from [`default_config_dir`], or an empty config if there is no home directory.
    pub fn load_default() -> Result<Self, RegistryError> {
        match default_config_dir() {
            Some(dir) => Self::load(&dir),
            None => Ok(Self::default()),
        }
    }

    /// This config, asking `other` for registries it has no credentials for.
    pub fn with_fallback(mut self, other: DockerConfig) -> Self {
        self.fallback = Some(Box::new(other));
        self
    }

    /// The file this config was read from, if one existed.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Credentials for `registry` (as named in an image reference, `docker.io` for Docker Hub).
    ///
    /// Order as in the docker CLI: a `credHelpers` entry for the host, else the `credsStore`, else
    /// `auths`; an `auths` entry also serves when a helper has nothing for the host.
    pub fn credentials_for(&self, registry: &str) -> Result<Option<Credential>, RegistryError> {
        let keys = candidate_keys(registry);
        let helper = keys
            .iter()
            .find_map(|k| self.file.cred_helpers.get(k.as_str()))
            .or(self.file.creds_store.as_ref())
            .filter(|h| !h.is_empty());
        if let Some(helper) = helper {
            let server = if registry == DOCKER_HUB {
                DOCKER_HUB_CONFIG_KEY
            } else {
                registry
            };
            if let Some(credential) = run_helper(helper, server, registry)? {
                return Ok(Some(credential));
            }
        }
        for (key, entry) in &self.file.auths {
            if keys.iter().any(|k| normalize_key(key) == *k) {
                if let Some(credential) = self.decode_entry(registry, entry)? {
                    return Ok(Some(credential));
                }
            }
        }
        match &self.fallback {
            Some(other) => other.credentials_for(registry),
            None => Ok(None),
        }
    }

    fn decode_entry(
        &self,
        registry: &str,
        entry: &AuthEntry,
    ) -> Result<Option<Credential>, RegistryError> {
        if let Some(token) = entry.registrytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credential::RegistryToken(token.clone())));
        }
        let (mut username, mut password) = (entry.username.clone(), entry.password.clone());
        if let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
            let bad = |why: &str| RegistryError::Config {
                path: self.path.clone().unwrap_or_default(),
                detail: format!("the `auth` entry for {registry} {why}"),
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad("is not valid base64"))?;
            let text = String::from_utf8(bytes).map_err(|_| bad("is not UTF-8"))?;
            let (u, p) = text
                .split_once(':')
                .ok_or_else(|| bad("has no `:` between user name and password"))?;
            username = Some(u.to_string());
            password = Some(p.to_string());
        }
        if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credential::IdentityToken {
                username: username.filter(|u| !u.is_empty()),
                token: token.clone(),
            }));
        }
        match (username, password) {
            (Some(username), Some(password)) if !username.is_empty() || !password.is_empty() => {
                Ok(Some(Credential::Basic { username, password }))
            }
            _ => Ok(None),
        }
    }
}

/// Config keys that may denote `registry`, normalized with [`normalize_key`].
fn candidate_keys(registry: &str) -> Vec<String> {
    if registry == DOCKER_HUB {
        ["index.docker.io", "docker.io", "registry-1.docker.io"]
            .map(String::from)
            .to_vec()
    } else {
        vec![registry.to_ascii_lowercase()]
    }
}

/// `https://host:port/v1/` → `host:port`, as the docker CLI's `ConvertToHostname`.
fn normalize_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key).to_ascii_lowercase()
}

#[derive(Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `docker-credential-<helper> get` with the server URL on stdin (docker-credential-helpers
/// protocol). "Not found" is `Ok(None)`; the helper's stdout is parsed, never echoed.
fn run_helper(
    helper: &str,
    server: &str,
    registry: &str,
) -> Result<Option<Credential>, RegistryError> {
    let program = format!("docker-credential-{helper}");
    let fail = |detail: String| RegistryError::CredentialHelper {
        host: registry.to_string(),
        helper: program.clone(),
        detail,
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                fail(format!("`{program}` is not on PATH (named by credsStore/credHelpers in the docker config)"))
            } else {
                fail(format!("could not start `{program}`: {e}"))
            }
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| fail(format!("could not write to `{program}`: {e}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| fail(format!("`{program}` failed: {e}")))?;
    if !output.status.success() {
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        // docker-credential-helpers' "not found" error, printed on stdout with exit status 1.
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        // A failing helper printed an error, not a secret; still keep only a short first line.
        let first = stdout
            .lines()
            .chain(stderr.lines())
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no message");
        let first: String = first.chars().take(200).collect();
        return Err(fail(format!(
            "`{program} get` exited with {}: {first}",
            output.status
        )));
    }
    let parsed: HelperOutput = serde_json::from_slice(&output.stdout).map_err(|_| {
        fail(format!(
            "`{program} get` printed something that is not the expected JSON"
        ))
    })?;
    if parsed.secret.is_empty() {
        return Ok(None);
    }
    // The helpers' convention for identity tokens.
    if parsed.username == "<token>" {
        return Ok(Some(Credential::IdentityToken {
            username: None,
            token: parsed.secret,
        }));
    }
    Ok(Some(Credential::Basic {
        username: parsed.username,
        password: parsed.secret,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> (tempfile::TempDir, DockerConfig) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), json).unwrap();
        let cfg = DockerConfig::load(dir.path()).unwrap();
        (dir, cfg)
    }

    #[test]
    fn config_dir_honours_docker_config() {
        let d = config_dir_from(Some("/cfg".into()), Some("/home/u".into()));
        assert_eq!(d, Some(PathBuf::from("/cfg")));
        let d = config_dir_from(Some("".into()), Some("/home/u".into()));
        assert_eq!(d, Some(PathBuf::from("/home/u/.docker")));
        assert_eq!(config_dir_from(None, None), None);
    }

    #[test]
    fn auths_base64_and_fields() {
        let (_d, cfg) = config(
            r#"{"auths": {
                "https://index.docker.io/v1/": {"auth": "aHViOmh1YnBhc3M="},
                "localhost:5000": {"username": "u", "password": "p"},
                "https://ghcr.io": {"auth": "Z2g6dG9rOmVu"},
                "quay.io": {"identitytoken": "refresh"},
                "reg.example": {"registrytoken": "bearer"},
                "empty.example": {}
            }}"#,
        );
        let basic = |u: &str, p: &str| {
            Some(Credential::Basic {
                username: u.into(),
                password: p.into(),
            })
        };
        assert_eq!(
            cfg.credentials_for("docker.io").unwrap(),
            basic("hub", "hubpass")
        );
        assert_eq!(
            cfg.credentials_for("localhost:5000").unwrap(),
            basic("u", "p")
        );
        // Passwords may contain `:`; only the first one separates.
        assert_eq!(
            cfg.credentials_for("ghcr.io").unwrap(),
            basic("gh", "tok:en")
        );
        assert_eq!(
            cfg.credentials_for("quay.io").unwrap(),
            Some(Credential::IdentityToken {
                username: None,
                token: "refresh".into()
            })
        );
        assert_eq!(
            cfg.credentials_for("reg.example").unwrap(),
            Some(Credential::RegistryToken("bearer".into()))
        );
        assert_eq!(cfg.credentials_for("empty.example").unwrap(), None);
        assert_eq!(cfg.credentials_for("other.example").unwrap(), None);
        assert_eq!(cfg.credentials_for("localhost:5001").unwrap(), None);
    }

    #[test]
    fn debug_and_errors_never_show_secrets() {
        let c = Credential::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        let c = Credential::IdentityToken {
            username: None,
            token: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{:?}", Credential::RegistryToken("hunter2".into())).contains("hunter2"));

        // A broken `auth` value: the error names the registry and file, not the value.
        let (_d, cfg) = config(r#"{"auths": {"r.example": {"auth": "hunter2!!"}}}"#);
        let err = cfg.credentials_for("r.example").unwrap_err().to_string();
        assert!(err.contains("r.example") && err.contains("base64"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let (_d, cfg) = config(r#"{"auths": {"r.example": {"auth": "aHVudGVyMg=="}}}"#);
        let err = cfg.credentials_for("r.example").unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
        // Invalid JSON: serde's message has a position, not the text.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths": {"x": {"auth": hunter2}}}"#,
        )
        .unwrap();
        let err = DockerConfig::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("config.json") && !err.contains("hunter2"),
            "{err}"
        );
    }

    #[test]
    fn missing_config_means_no_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = DockerConfig::load(&dir.path().join("nope")).unwrap();
        assert_eq!(cfg.credentials_for("docker.io").unwrap(), None);
    }

    #[test]
    fn missing_helper_is_a_clear_error() {
        let (_d, cfg) = config(r#"{"credHelpers": {"gcr.io": "union-test-does-not-exist"}}"#);
        let err = cfg.credentials_for("gcr.io").unwrap_err().to_string();
        assert!(
            err.contains("gcr.io") && err.contains("docker-credential-union-test-does-not-exist"),
            "{err}"
        );
        // Other registries are not affected by a per-host helper.
        assert_eq!(cfg.credentials_for("ghcr.io").unwrap(), None);
    }

    #[test]
    fn keys_normalize_like_the_docker_cli() {
        assert_eq!(
            normalize_key("https://index.docker.io/v1/"),
            "index.docker.io"
        );
        assert_eq!(normalize_key("http://Localhost:5000/v2/"), "localhost:5000");
        assert_eq!(normalize_key("ghcr.io"), "ghcr.io");
    }
}
