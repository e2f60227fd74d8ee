//! The token cache of the PKCE and device flows, in the file union's keyring backend writes
//! (`~/.union/keyring.cfg`, `union/_keyring/file.py`): an INI file, one section per endpoint,
//! keys `access_token`, `refresh_token`, `id_token`, values base64 (Python's `encodebytes`:
//! 76-character lines). With union installed, Python's `keyring` picks that backend when the
//! machine has no Secret Service, so pyflyte, union and this CLI share one login.
//!
//! Where Python's `keyring` would use the OS keyring instead (a Secret Service on the D-Bus
//! session, as GNOME Keyring and KWallet provide; the macOS Keychain), so do we ([`Store::Os`]):
//! the same service (the endpoint) and usernames, so a login by either CLI serves both.
//!
//! The file is created readable by its owner only. Failures to read or write the cache are not
//! errors (flytekit logs and goes on without a cache): the worst case is logging in again.

use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::Secret;

/// In the order flytekit's `KeyringStore.store` writes them.
const KEYS: [&str; 3] = ["refresh_token", "access_token", "id_token"];

/// What is cached for one endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Cached {
    pub access_token: Option<Secret>,
    pub refresh_token: Option<Secret>,
    pub id_token: Option<Secret>,
}

/// Where tokens are cached.
#[derive(Debug, Clone)]
pub(crate) enum Store {
    /// The OS keyring.
    Os,
    /// union's file.
    File(PathBuf),
}

impl Store {
    /// The OS keyring when one answers, else the file (None: neither, no home directory).
    /// Blocking (D-Bus): call off the async workers.
    pub(crate) fn pick() -> Option<Store> {
        if os::available() {
            return Some(Store::Os);
        }
        default_path().map(Store::File)
    }

    pub(crate) fn load(&self, endpoint: &str) -> Cached {
        match self {
            Store::Os => os::load(endpoint),
            Store::File(p) => load(p, endpoint),
        }
    }

    pub(crate) fn store(&self, endpoint: &str, cached: &Cached) {
        // A cache that cannot be written costs a login next time, nothing more.
        let _ = match self {
            Store::Os => os::store(endpoint, cached),
            Store::File(p) => store(p, endpoint, cached).map_err(|e| e.to_string()),
        };
    }

    pub(crate) fn delete(&self, endpoint: &str) {
        let _ = match self {
            Store::Os => os::delete(endpoint),
            Store::File(p) => delete(p, endpoint).map_err(|e| e.to_string()),
        };
    }
}

/// The OS keyring, holding items shaped exactly as Python keyring's, so each side finds (and
/// replaces) the other's.
mod os {
    use super::{Cached, Secret, KEYS};

    #[cfg(target_os = "linux")]
    mod backend {
        //! A Secret Service on the session bus, as Python keyring's `SecretService` backend uses
        //! it: the default collection, items with attributes `service`, `username`,
        //! `application: Python keyring library` (and the generic schema secretstorage adds),
        //! created with `replace=True`; found by `service` and `username`.
        use std::collections::HashMap;

        use secret_service::blocking::SecretService;
        use secret_service::EncryptionType;

        fn connect() -> Result<SecretService<'static>, String> {
            SecretService::connect(EncryptionType::Dh).map_err(|e| e.to_string())
        }

        pub fn available() -> bool {
            if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
                return false;
            }
            connect()
                .and_then(|ss| {
                    ss.get_default_collection()
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
                .is_ok()
        }

        pub fn get(service: &str, user: &str) -> Option<String> {
            let ss = connect().ok()?;
            let found = ss
                .search_items(HashMap::from([("service", service), ("username", user)]))
                .ok()?;
            let item = found.unlocked.into_iter().chain(found.locked).next()?;
            item.ensure_unlocked().ok()?;
            String::from_utf8(item.get_secret().ok()?).ok()
        }

        pub fn set(service: &str, user: &str, value: &str) -> Result<(), String> {
            let ss = connect()?;
            let collection = ss.get_default_collection().map_err(|e| e.to_string())?;
            collection.ensure_unlocked().map_err(|e| e.to_string())?;
            let attributes = HashMap::from([
                ("service", service),
                ("username", user),
                ("application", "Python keyring library"),
                ("xdg:schema", "org.freedesktop.Secret.Generic"),
            ]);
            collection
                .create_item(
                    &format!("Password for '{user}' on '{service}'"),
                    attributes,
                    value.as_bytes(),
                    true,
                    "text/plain",
                )
                .map(|_| ())
                .map_err(|e| e.to_string())
        }

        pub fn delete(service: &str, user: &str) -> Result<(), String> {
            let ss = connect()?;
            let found = ss
                .search_items(HashMap::from([("service", service), ("username", user)]))
                .map_err(|e| e.to_string())?;
            for item in found.unlocked.iter().chain(found.locked.iter()) {
                item.delete().map_err(|e| e.to_string())?;
            }
            Ok(())
        }
    }

    #[cfg(target_os = "macos")]
    mod backend {
        //! The login Keychain's generic passwords (service, account), as Python keyring's
        //! macOS backend stores them.
        use keyring::{Entry, Error};

        pub fn available() -> bool {
            true
        }

        pub fn get(service: &str, user: &str) -> Option<String> {
            Entry::new(service, user).ok()?.get_password().ok()
        }

        pub fn set(service: &str, user: &str, value: &str) -> Result<(), String> {
            Entry::new(service, user)
                .and_then(|e| e.set_password(value))
                .map_err(|e| e.to_string())
        }

        pub fn delete(service: &str, user: &str) -> Result<(), String> {
            match Entry::new(service, user).and_then(|e| e.delete_credential()) {
                Ok(()) | Err(Error::NoEntry) => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        }
    }

    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    mod backend {
        pub fn available() -> bool {
            false
        }
        pub fn get(_: &str, _: &str) -> Option<String> {
            None
        }
        pub fn set(_: &str, _: &str, _: &str) -> Result<(), String> {
            Err("no OS keyring".into())
        }
        pub fn delete(_: &str, _: &str) -> Result<(), String> {
            Ok(())
        }
    }

    /// Whether an OS keyring answers (asked once per process).
    pub(super) fn available() -> bool {
        static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *AVAILABLE.get_or_init(backend::available)
    }

    pub(super) fn load(endpoint: &str) -> Cached {
        let get = |k: &str| {
            backend::get(endpoint, k)
                .filter(|v| !v.is_empty())
                .map(Secret::new)
        };
        Cached {
            access_token: get("access_token"),
            refresh_token: get("refresh_token"),
            id_token: get("id_token"),
        }
    }

    pub(super) fn store(endpoint: &str, cached: &Cached) -> Result<(), String> {
        for (key, value) in KEYS.iter().zip([
            &cached.refresh_token,
            &cached.access_token,
            &cached.id_token,
        ]) {
            if let Some(v) = value {
                backend::set(endpoint, key, v.expose())?;
            }
        }
        Ok(())
    }

    pub(super) fn delete(endpoint: &str) -> Result<(), String> {
        for k in KEYS {
            backend::delete(endpoint, k)?;
        }
        Ok(())
    }
}

/// `~/.union/keyring.cfg`, or None without a home.
pub(crate) fn default_path() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".union").join("keyring.cfg"))
}

type Sections = Vec<(String, Vec<(String, String)>)>;

/// Python's ConfigParser, as far as this file needs: `[section]`, `key = value`, indented
/// continuation lines.
fn parse(text: &str) -> Sections {
    let mut out: Sections = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, kvs)) = out.last_mut() {
                if let Some((_, v)) = kvs.last_mut() {
                    v.push('\n');
                    v.push_str(trimmed);
                }
            }
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            out.push((name.to_string(), Vec::new()));
            continue;
        }
        let split = trimmed.find(['=', ':']);
        if let (Some(i), Some((_, kvs))) = (split, out.last_mut()) {
            let key = trimmed[..i].trim().to_ascii_lowercase();
            let value = trimmed[i + 1..].trim().to_string();
            kvs.retain(|(k, _)| *k != key);
            kvs.push((key, value));
        }
    }
    out
}

fn render(sections: &Sections) -> String {
    let mut s = String::new();
    for (name, kvs) in sections {
        s.push_str(&format!("[{name}]\n"));
        for (k, v) in kvs {
            s.push_str(&format!("{k} = {}\n", v.replace('\n', "\n\t")));
        }
        s.push('\n');
    }
    s
}

/// Python's `base64.encodebytes`: lines of 76 characters, each ending in a newline.
fn encodebytes(value: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(value.as_bytes());
    let mut out = String::new();
    for chunk in b64.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

fn decodebytes(value: &str) -> Option<String> {
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()?;
    String::from_utf8(bytes).ok()
}

pub(crate) fn load(path: &Path, endpoint: &str) -> Cached {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Cached::default();
    };
    let sections = parse(&text);
    let Some((_, kvs)) = sections.iter().find(|(n, _)| n == endpoint) else {
        return Cached::default();
    };
    let get = |key: &str| {
        kvs.iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| decodebytes(v))
            .filter(|v| !v.is_empty())
            .map(Secret::new)
    };
    Cached {
        access_token: get("access_token"),
        refresh_token: get("refresh_token"),
        id_token: get("id_token"),
    }
}

/// Store what is set in `cached` for `endpoint` (like flytekit's `KeyringStore.store`, a value
/// not given is left as it was).
pub(crate) fn store(path: &Path, endpoint: &str, cached: &Cached) -> std::io::Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut sections = parse(&text);
    let idx = match sections.iter().position(|(n, _)| n == endpoint) {
        Some(i) => i,
        None => {
            sections.push((endpoint.to_string(), Vec::new()));
            sections.len() - 1
        }
    };
    let kvs = &mut sections[idx].1;
    for (key, value) in KEYS.iter().zip([
        &cached.refresh_token,
        &cached.access_token,
        &cached.id_token,
    ]) {
        if let Some(v) = value {
            kvs.retain(|(k, _)| k != key);
            kvs.push((key.to_string(), encodebytes(v.expose())));
        }
    }
    write_private(path, &render(&sections))
}

/// Forget `endpoint`'s tokens (a refresh token the server refused).
pub(crate) fn delete(path: &Path, endpoint: &str) -> std::io::Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let mut sections = parse(&text);
    for (name, kvs) in &mut sections {
        if name == endpoint {
            kvs.retain(|(k, _)| !KEYS.contains(&k.as_str()));
        }
    }
    write_private(path, &render(&sections))
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    use std::os::unix::fs::PermissionsExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Written beside, then renamed: a reader never sees half a file.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written by union 0.1.204's SimplePlainTextKeyring.set_password for endpoint
    // "localhost:30080" (refresh token, then a 100-character access token, as flytekit's
    // KeyringStore.store orders them).
    const FROM_UNION: &str = "[localhost:30080]\nrefresh_token = cmVmcmVzaA==\naccess_token = YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh\n\tYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYQ==\n\t\n\n";

    #[test]
    fn reads_and_writes_unions_file() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("keyring.cfg");
        std::fs::write(&p, FROM_UNION).unwrap();
        let c = load(&p, "localhost:30080");
        assert_eq!(c.access_token.unwrap().expose(), "a".repeat(100));
        assert_eq!(c.refresh_token.unwrap().expose(), "refresh");
        assert_eq!(c.id_token, None);
        assert_eq!(load(&p, "other:1"), Cached::default());

        // Our own write reads back the same (and union reads it: it parses with ConfigParser).
        let p2 = t.path().join("ours.cfg");
        store(
            &p2,
            "localhost:30080",
            &Cached {
                access_token: Some(Secret::new("a".repeat(100))),
                refresh_token: Some(Secret::new("refresh")),
                id_token: None,
            },
        )
        .unwrap();
        let ours = std::fs::read_to_string(&p2).unwrap();
        assert!(ours.contains("access_token = YWFhYWFh"), "{ours}");
        assert_eq!(load(&p2, "localhost:30080"), load(&p, "localhost:30080"));
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&p2).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        // Other endpoints are kept; delete forgets only one.
        store(
            &p2,
            "b:2",
            &Cached {
                access_token: Some(Secret::new("x")),
                ..Default::default()
            },
        )
        .unwrap();
        delete(&p2, "localhost:30080").unwrap();
        assert_eq!(load(&p2, "localhost:30080"), Cached::default());
        assert_eq!(load(&p2, "b:2").access_token.unwrap().expose(), "x");
    }
}
