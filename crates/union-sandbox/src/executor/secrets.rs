//! Secrets a task asks for (`TaskTemplate.security_context.secrets`), put into its container where
//! flytekit's `SecretsManager` (`current_context().secrets.get(...)`) looks for them, the way
//! flytepropeller's Kubernetes secret webhook does:
//!
//! - `ENV_VAR`: an environment variable `_FSEC_<GROUP>_<GROUP_VERSION>_<KEY>` (upper case, empty
//!   parts left out, as flytekit joins them), plus `FLYTE_SECRETS_ENV_PREFIX=_FSEC_`;
//! - `FILE` and `ANY` (the webhook treats ANY as FILE): a file
//!   `/etc/flyte/secrets/<group>/<group_version>/<key>` (lower case, empty parts left out), plus
//!   `FLYTE_SECRETS_DEFAULT_DIR=/etc/flyte/secrets` and an empty `FLYTE_SECRETS_FILE_PREFIX`;
//! - `env_var` set on the request: that variable too, holding the value (ENV_VAR) or the file's
//!   path (FILE).
//!
//! Files are written on the host under a directory only the sandbox's user can enter, in a
//! per-attempt folder bind-mounted read-only at `/etc/flyte/secrets`, and removed when the attempt
//! ends ([`Provisioned`] removes it on drop). Nothing goes into an image.
//!
//! The runner asks a [`SecretSource`] for values, so it does not depend on where they are kept.
//! Values never appear in a message: a missing secret is named, with the command that creates it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::TaskFailure;
use union_idl::flyteidl::core::{secret::MountType, Secret, WorkflowExecutionIdentifier};

/// Where secret files appear inside the container (flytepropeller's `K8sSecretPathPrefix`).
pub const SECRETS_DIR: &str = "/etc/flyte/secrets";
/// The directory under the Docker runner's work root where attempts' secret files are written.
pub const HOST_DIR: &str = ".secrets";
/// Prefix of secret environment variables (flytekit's and flytepropeller's default).
pub const ENV_PREFIX: &str = "_FSEC_";

/// A secret's value; its `Debug` never shows it.
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    /// Wrap a value.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretValue(bytes)
    }

    /// The value.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// Where the runner gets secret values (the sandbox's store, or a test's map). Blocking.
pub trait SecretSource: Send + Sync + std::fmt::Debug {
    /// The value of the secret `name` that executions in `execution`'s org, project and domain
    /// see, or None when there is none. An error says why it could not be read, never the value.
    fn lookup(
        &self,
        execution: &WorkflowExecutionIdentifier,
        name: &str,
    ) -> Result<Option<SecretValue>, SourceError>;
}

/// Why a [`SecretSource`] could not answer (never holding a value).
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// The name a requested secret is stored under: union names secrets by `key`
/// (`Secret(key="name")`); a request with only a `group` (flytekit's Kubernetes style) uses it.
pub fn stored_name(secret: &Secret) -> &str {
    if secret.key.is_empty() {
        &secret.group
    } else {
        &secret.key
    }
}

fn parts(secret: &Secret) -> Vec<&str> {
    [
        secret.group.as_str(),
        secret.group_version.as_str(),
        secret.key.as_str(),
    ]
    .into_iter()
    .filter(|p| !p.is_empty())
    .collect()
}

/// flytekit's `SecretsManager.get_secrets_env_var`.
pub fn env_var_name(secret: &Secret) -> String {
    let joined: Vec<String> = parts(secret).iter().map(|p| p.to_uppercase()).collect();
    format!("{ENV_PREFIX}{}", joined.join("_"))
}

/// The file's path relative to [`SECRETS_DIR`] (flytekit's `get_secrets_file`, empty prefix).
pub fn file_relative_path(secret: &Secret) -> Result<PathBuf, String> {
    let mut path = PathBuf::new();
    for p in parts(secret) {
        let p = p.to_lowercase();
        if p == "." || p == ".." || p.contains('/') || p.contains('\0') {
            return Err(format!(
                "`{p}` cannot be part of a secret's file path (no `/`, `.` or `..`)"
            ));
        }
        path.push(p);
    }
    Ok(path)
}

/// What a task's container gets for its secrets.
#[derive(Debug, Default)]
pub struct Provisioned {
    /// `NAME=value` environment entries.
    pub env: Vec<String>,
    /// A read-only bind of the secret files at [`SECRETS_DIR`], when a file was asked for.
    pub bind: Option<String>,
    dir: Option<PathBuf>,
}

impl Drop for Provisioned {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Fetch the secrets a task asks for (`requested`, its security context's) for an attempt of
/// execution `exec`, and lay them out for its container: environment entries, and files in a
/// fresh directory under `root` (created `0700`: only the sandbox's user can reach the files on
/// the host; inside the container they are readable by the task's user, as Kubernetes secret
/// volumes are).
pub fn provision(
    source: Option<&dyn SecretSource>,
    requested: &[Secret],
    exec: &WorkflowExecutionIdentifier,
    root: &Path,
) -> Result<Provisioned, TaskFailure> {
    let mut out = Provisioned::default();
    if requested.is_empty() {
        return Ok(out);
    }
    let mut files: Vec<(PathBuf, SecretValue)> = Vec::new();
    let mut wants_env = false;
    for secret in requested {
        let name = stored_name(secret);
        if name.is_empty() {
            return Err(TaskFailure::user(
                "InvalidSecret",
                "the task asks for a secret with neither a key nor a group: name it with Secret(key=...)",
            ));
        }
        let value = match source {
            Some(s) => s.lookup(exec, name).map_err(|e| {
                TaskFailure::system(
                    "SecretUnavailable",
                    format!("cannot read secret `{name}`: {e}"),
                )
            })?,
            None => None,
        };
        let Some(value) = value else {
            return Err(missing(name, exec));
        };
        let mount = MountType::try_from(secret.mount_requirement).unwrap_or(MountType::Any);
        match mount {
            MountType::EnvVar => {
                let text = std::str::from_utf8(value.bytes())
                    .ok()
                    .filter(|t| !t.contains('\0'))
                    .ok_or_else(|| {
                        TaskFailure::user(
                            "InvalidSecret",
                            format!(
                                "secret `{name}` is binary and cannot be an environment variable: request it with mount_requirement=Secret.MountType.FILE"
                            ),
                        )
                    })?;
                out.env.push(format!("{}={text}", env_var_name(secret)));
                if !secret.env_var.is_empty() {
                    out.env.push(format!("{}={text}", secret.env_var));
                }
                wants_env = true;
            }
            MountType::Any | MountType::File => {
                let rel = file_relative_path(secret)
                    .map_err(|e| TaskFailure::user("InvalidSecret", e))?;
                if !secret.env_var.is_empty() {
                    out.env.push(format!(
                        "{}={}",
                        secret.env_var,
                        Path::new(SECRETS_DIR).join(&rel).display()
                    ));
                }
                files.push((rel, value));
            }
        }
    }
    if wants_env {
        out.env
            .push(format!("FLYTE_SECRETS_ENV_PREFIX={ENV_PREFIX}"));
    }
    if !files.is_empty() {
        out.env
            .push(format!("FLYTE_SECRETS_DEFAULT_DIR={SECRETS_DIR}"));
        out.env.push("FLYTE_SECRETS_FILE_PREFIX=".into());
        let dir = write_files(root, &files).map_err(|e| {
            TaskFailure::system(
                "SecretMount",
                format!(
                    "cannot write the task's secret files under `{}`: {e}",
                    root.display()
                ),
            )
        })?;
        out.bind = Some(format!("{}:{SECRETS_DIR}:ro", dir.display()));
        out.dir = Some(dir);
    }
    Ok(out)
}

/// Remove secret files a previous sandbox process left behind (it stopped mid-attempt): called
/// at start, before any attempt runs.
pub fn remove_leftovers(root: &Path) {
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The failure of a task asking for a secret that does not exist (named, with the fix).
fn missing(name: &str, exec: &WorkflowExecutionIdentifier) -> TaskFailure {
    TaskFailure::user(
        "SecretNotFound",
        format!(
            "the task asks for secret `{name}`, which does not exist in project `{}`, domain `{}`: create it with `union create secret --name {name}` (add --project {} --domain {} to limit it to them), then run again",
            exec.project, exec.domain, exec.project, exec.domain
        ),
    )
}

fn write_files(root: &Path, files: &[(PathBuf, SecretValue)]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(root)?;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))?;
    let mut suffix = [0u8; 8];
    let _ = getrandom::fill(&mut suffix);
    let dir = root.join(
        suffix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
    );
    std::fs::create_dir(&dir)?;
    // Removes what was written if a step below fails.
    let mut guard = Provisioned {
        env: Vec::new(),
        bind: None,
        dir: Some(dir.clone()),
    };
    for (rel, value) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, value.bytes())?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444))?;
    }
    // Directories created above get the umask; the task's user must traverse them.
    for entry in walk_dirs(&dir)? {
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o755))?;
    }
    guard.dir = None;
    Ok(dir)
}

fn walk_dirs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        for entry in std::fs::read_dir(&out[i])? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                out.push(entry.path());
            }
        }
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Debug)]
    struct MapSource(HashMap<String, Vec<u8>>);

    impl SecretSource for MapSource {
        fn lookup(
            &self,
            _: &WorkflowExecutionIdentifier,
            name: &str,
        ) -> Result<Option<SecretValue>, SourceError> {
            Ok(self.0.get(name).cloned().map(SecretValue::new))
        }
    }

    fn secret(group: &str, key: &str, mount: MountType, env_var: &str) -> Secret {
        Secret {
            group: group.into(),
            key: key.into(),
            mount_requirement: mount as i32,
            env_var: env_var.into(),
            ..Default::default()
        }
    }

    fn exec() -> WorkflowExecutionIdentifier {
        WorkflowExecutionIdentifier {
            project: "p".into(),
            domain: "d".into(),
            name: "e".into(),
            org: String::new(),
        }
    }

    #[test]
    fn names_follow_flytekit() {
        assert_eq!(
            env_var_name(&secret("", "my_key", MountType::Any, "")),
            "_FSEC_MY_KEY"
        );
        let mut s = secret("Grp", "Key", MountType::Any, "");
        s.group_version = "v1".into();
        assert_eq!(env_var_name(&s), "_FSEC_GRP_V1_KEY");
        assert_eq!(file_relative_path(&s).unwrap(), PathBuf::from("grp/v1/key"));
        assert!(file_relative_path(&secret("", "..", MountType::File, "")).is_err());
        assert_eq!(stored_name(&secret("g", "", MountType::Any, "")), "g");
    }

    #[test]
    fn env_and_file_secrets_are_laid_out_and_removed() {
        let root = tempfile::tempdir().unwrap();
        let source = MapSource(
            [
                ("tok".to_string(), b"abc".to_vec()),
                ("cert".to_string(), b"xyz".to_vec()),
            ]
            .into(),
        );
        let req = vec![
            secret("", "tok", MountType::EnvVar, "MY_TOKEN"),
            secret("", "cert", MountType::Any, "CERT_PATH"),
        ];
        let p = provision(Some(&source), &req, &exec(), root.path()).unwrap();
        assert!(p.env.contains(&"_FSEC_TOK=abc".to_string()));
        assert!(p.env.contains(&"MY_TOKEN=abc".to_string()));
        assert!(p
            .env
            .contains(&"CERT_PATH=/etc/flyte/secrets/cert".to_string()));
        assert!(p
            .env
            .contains(&"FLYTE_SECRETS_DEFAULT_DIR=/etc/flyte/secrets".to_string()));
        let bind = p.bind.clone().unwrap();
        let host = bind.split(':').next().unwrap().to_string();
        assert!(bind.ends_with(":/etc/flyte/secrets:ro"));
        assert_eq!(
            std::fs::read(Path::new(&host).join("cert")).unwrap(),
            b"xyz"
        );
        let mode = std::fs::metadata(root.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        drop(p);
        assert!(!Path::new(&host).exists());
        let again = provision(Some(&source), &req, &exec(), root.path()).unwrap();
        let host = again.bind.clone().unwrap();
        std::mem::forget(again);
        remove_leftovers(root.path());
        assert!(!Path::new(host.split(':').next().unwrap()).exists());
    }

    #[test]
    fn a_missing_secret_is_named_with_the_fix() {
        let root = tempfile::tempdir().unwrap();
        let source = MapSource(HashMap::new());
        let req = [secret("", "absent", MountType::EnvVar, "")];
        let e = provision(Some(&source), &req, &exec(), root.path()).unwrap_err();
        assert_eq!(e.code, "SecretNotFound");
        assert!(e.message.contains("`absent`"), "{}", e.message);
        assert!(e.message.contains("union create secret --name absent"));
    }

    #[test]
    fn binary_secrets_cannot_be_environment_variables() {
        let root = tempfile::tempdir().unwrap();
        let source = MapSource([("bin".to_string(), vec![0xff, 0x00])].into());
        let req = [secret("", "bin", MountType::EnvVar, "")];
        let e = provision(Some(&source), &req, &exec(), root.path()).unwrap_err();
        assert!(e.message.contains("FILE"), "{}", e.message);
        assert!(!e.message.contains('\u{fffd}'));
    }
}
