//! union's secrets: `cloudidl.secret.SecretService` (what `union create|get|delete secret` and
//! `UnionRemote.secret_client` call), kept in the `secrets` table, and the [`SecretSource`] the
//! Docker runner reads task secrets from.
//!
//! Scope, as union's: a secret belongs to an organization and optionally to a project and/or a
//! domain (empty: all of them). A task running in project P, domain D sees the most specific one
//! of its name: (P, D), then (P, any domain), then (any project, D), then the org-wide one.
//!
//! Values are stored as given (SQLite, in the data directory) and leave the database only towards
//! a task's container: Get and List answer names, scopes, types and creation times, and no
//! message, log line or `Debug` output holds a value.

mod service;

use std::sync::Arc;

use rusqlite::{params, OptionalExtension};

use crate::executor::secrets::{SecretSource, SecretValue};
use crate::store::{Store, StoreError};

pub use service::SecretApi;

/// A secret's identity: organization, scope and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretKey {
    pub org: String,
    /// Empty: every project.
    pub project: String,
    /// Empty: every domain.
    pub domain: String,
    pub name: String,
}

/// What is known of a stored secret besides its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretInfo {
    pub key: SecretKey,
    /// `cloudidl.secret.SecretType`.
    pub secret_type: i32,
    /// Unix nanoseconds.
    pub created_at: i64,
}

/// A value to store ([`SecretValue`] keeps it out of `Debug`).
#[derive(Debug)]
pub struct NewSecret {
    pub value: SecretValue,
    /// Given as `binary_value` (else `string_value`).
    pub binary: bool,
    pub secret_type: i32,
}

/// Store a new secret; false when one with this key exists already.
pub fn create(store: &Store, key: &SecretKey, new: &NewSecret) -> Result<bool, StoreError> {
    store.write(|tx| {
        let now = crate::store::now_nanos();
        let n = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO secrets (org, project, domain, name, value, binary, type, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
            )?
            .execute(params![
                key.org,
                key.project,
                key.domain,
                key.name,
                new.value.bytes(),
                new.binary,
                new.secret_type,
                now
            ])?;
        Ok(n == 1)
    })
}

/// Replace a secret's value; false when there is none with this key.
pub fn update(store: &Store, key: &SecretKey, new: &NewSecret) -> Result<bool, StoreError> {
    store.write(|tx| {
        let n = tx
            .prepare_cached(
                "UPDATE secrets SET value=?5, binary=?6, type=?7, updated_at=?8
                 WHERE org=?1 AND project=?2 AND domain=?3 AND name=?4",
            )?
            .execute(params![
                key.org,
                key.project,
                key.domain,
                key.name,
                new.value.bytes(),
                new.binary,
                new.secret_type,
                crate::store::now_nanos()
            ])?;
        Ok(n == 1)
    })
}

/// Delete a secret; false when there is none with this key.
pub fn delete(store: &Store, key: &SecretKey) -> Result<bool, StoreError> {
    store.write(|tx| {
        let n = tx
            .prepare_cached(
                "DELETE FROM secrets WHERE org=?1 AND project=?2 AND domain=?3 AND name=?4",
            )?
            .execute(params![key.org, key.project, key.domain, key.name])?;
        Ok(n == 1)
    })
}

/// One secret's metadata, exactly at this key.
pub fn get(store: &Store, key: &SecretKey) -> Result<Option<SecretInfo>, StoreError> {
    store.read(|c| {
        Ok(c.prepare_cached(
            "SELECT type, created_at FROM secrets WHERE org=?1 AND project=?2 AND domain=?3 AND name=?4",
        )?
        .query_row(params![key.org, key.project, key.domain, key.name], |r| {
            Ok(SecretInfo {
                key: key.clone(),
                secret_type: r.get(0)?,
                created_at: r.get(1)?,
            })
        })
        .optional()?)
    })
}

/// Secrets of `org` whose project and domain match the filters (empty filter: any), by name,
/// `offset` rows skipped, at most `limit`.
pub fn list(
    store: &Store,
    org: &str,
    project: &str,
    domain: &str,
    offset: u32,
    limit: u32,
) -> Result<Vec<SecretInfo>, StoreError> {
    store.read(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT project, domain, name, type, created_at FROM secrets
             WHERE org=?1 AND (?2='' OR project=?2) AND (?3='' OR domain=?3)
             ORDER BY name, project, domain LIMIT ?4 OFFSET ?5",
        )?;
        let rows = stmt.query_map(params![org, project, domain, limit, offset], |r| {
            Ok(SecretInfo {
                key: SecretKey {
                    org: org.to_string(),
                    project: r.get(0)?,
                    domain: r.get(1)?,
                    name: r.get(2)?,
                },
                secret_type: r.get(3)?,
                created_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    })
}

/// The value a task in `org`/`project`/`domain` sees for `name` (the most specific scope).
pub fn resolve(
    store: &Store,
    org: &str,
    project: &str,
    domain: &str,
    name: &str,
) -> Result<Option<SecretValue>, StoreError> {
    store.read(|c| {
        Ok(c.prepare_cached(
            "SELECT value FROM secrets
             WHERE org=?1 AND name=?4 AND project IN (?2, '') AND domain IN (?3, '')
             ORDER BY project='', domain='' LIMIT 1",
        )?
        .query_row(params![org, project, domain, name], |r| {
            r.get::<_, Vec<u8>>(0)
        })
        .optional()?
        .map(SecretValue::new))
    })
}

/// The sandbox's store as the Docker runner's [`SecretSource`].
#[derive(Debug)]
pub struct StoreSecrets(pub Arc<Store>);

impl SecretSource for StoreSecrets {
    fn lookup(
        &self,
        execution: &union_idl::flyteidl::core::WorkflowExecutionIdentifier,
        name: &str,
    ) -> Result<Option<SecretValue>, crate::executor::secrets::SourceError> {
        Ok(resolve(
            &self.0,
            &execution.org,
            &execution.project,
            &execution.domain,
            name,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(project: &str, domain: &str, name: &str) -> SecretKey {
        SecretKey {
            org: String::new(),
            project: project.into(),
            domain: domain.into(),
            name: name.into(),
        }
    }

    fn value(v: &str) -> NewSecret {
        NewSecret {
            value: SecretValue::new(v.as_bytes().to_vec()),
            binary: false,
            secret_type: 0,
        }
    }

    fn resolved(store: &Store, project: &str, domain: &str, name: &str) -> Option<Vec<u8>> {
        resolve(store, "", project, domain, name)
            .unwrap()
            .map(|v| v.bytes().to_vec())
    }

    #[test]
    fn the_most_specific_scope_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(create(&store, &key("", "", "s"), &value("org")).unwrap());
        assert!(!create(&store, &key("", "", "s"), &value("again")).unwrap());
        assert_eq!(resolved(&store, "p", "d", "s").unwrap(), b"org");
        create(&store, &key("", "d", "s"), &value("domain")).unwrap();
        assert_eq!(resolved(&store, "p", "d", "s").unwrap(), b"domain");
        create(&store, &key("p", "", "s"), &value("project")).unwrap();
        assert_eq!(resolved(&store, "p", "d", "s").unwrap(), b"project");
        create(&store, &key("p", "d", "s"), &value("both")).unwrap();
        assert_eq!(resolved(&store, "p", "d", "s").unwrap(), b"both");
        assert_eq!(resolved(&store, "q", "d", "s").unwrap(), b"domain");
        assert_eq!(resolved(&store, "p", "d", "other"), None);
        // Another org sees none of them.
        assert!(resolve(&store, "acme", "p", "d", "s").unwrap().is_none());
    }

    #[test]
    fn list_filters_and_pages_and_delete_removes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for (p, n) in [("", "a"), ("p", "b"), ("q", "c")] {
            create(&store, &key(p, "", n), &value("v")).unwrap();
        }
        let all = list(&store, "", "", "", 0, 10).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(list(&store, "", "p", "", 0, 10).unwrap().len(), 1);
        assert_eq!(list(&store, "", "", "", 2, 10).unwrap()[0].key.name, "c");
        assert!(update(&store, &key("p", "", "b"), &value("w")).unwrap());
        assert!(!update(&store, &key("x", "", "b"), &value("w")).unwrap());
        assert!(delete(&store, &key("p", "", "b")).unwrap());
        assert!(!delete(&store, &key("p", "", "b")).unwrap());
        assert!(get(&store, &key("p", "", "b")).unwrap().is_none());
        assert!(get(&store, &key("", "", "a")).unwrap().is_some());
    }
}
