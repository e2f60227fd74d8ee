//! The sandbox's state: one SQLite database (`sandbox.db` in the data directory), in WAL mode.
//!
//! Concurrency: a single writer connection behind a mutex (SQLite allows one writer at a time
//! anyway; serialising in-process avoids `SQLITE_BUSY` retries), and a small pool of read-only
//! connections, which in WAL mode read a consistent snapshot while the writer commits.
//! `synchronous=NORMAL`: a commit survives a crash of the sandbox, not necessarily a power loss,
//! which is the right trade for a local development backend (and what makes thousands of
//! `CreateTask`/s possible).
//!
//! All methods block: call them from `tokio::task::spawn_blocking`.
//!
//! Schema (see [`MIGRATIONS`]): versioned definitions (tasks, workflows, launch plans) share the
//! `entities` table, keyed like flyteadmin by (resource type, org, project, domain, name, version).
//! Specs and closures are stored as protobuf bytes, exactly what the API returns. New kinds of state
//! (executions, node and task executions, events) get their own tables: append a migration to
//! [`MIGRATIONS`] and write their queries with [`Store::write`] / [`Store::read`], in their own file.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "sandbox.db";

mod schema;
pub use schema::MIGRATIONS;

/// Read connections kept open for reuse.
const MAX_IDLE_READERS: usize = 8;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or prepared.
    #[error("cannot open the sandbox database `{}`", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer `union`.
    #[error("the sandbox database `{}` has schema version {found}, newer than this union supports ({supported})", path.display())]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: usize,
    },
    /// The database file is damaged (SQLite says so, or a row does not match its own checksum).
    #[error("the sandbox database `{}` is corrupted: {detail}", path.display())]
    Corrupt { path: PathBuf, detail: String },
    /// A query failed.
    #[error("sandbox database error: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A connection mutex was poisoned by a panic in another request.
    #[error("the sandbox database connection is unusable after an earlier failure")]
    Poisoned,
}

impl StoreError {
    /// What to do about a corrupted database (shown by the sandbox and sent to clients).
    pub const CORRUPT_HINT: &'static str = "stop the sandbox, move its data directory away (what \
         was registered and run there is lost, unless you repair the file yourself), and start it \
         again; `union register` then registers everything anew";

    /// Whether this error says the database file is damaged.
    pub fn is_corruption(&self) -> bool {
        match self {
            StoreError::Corrupt { .. } => true,
            StoreError::Sql(e) | StoreError::Open { source: e, .. } => sqlite_corruption(e),
            _ => false,
        }
    }
}

impl union_diagnostics::Hint for StoreError {
    fn hints(&self) -> Vec<String> {
        match self {
            // At start, before anything is served: the file, and what to do.
            StoreError::Corrupt { path, .. } | StoreError::Open { path, .. }
                if self.is_corruption() =>
            {
                let dir = path.parent().unwrap_or(path);
                vec![format!(
                    "move the data directory away (`mv {dir} {dir}.corrupt`) and start again: the sandbox starts empty, and `union register` registers your entities anew",
                    dir = dir.display()
                )]
            }
            StoreError::TooNew { .. } => vec![
                "use the union that wrote it, or start this one with another --data-dir".into(),
            ],
            _ => Vec::new(),
        }
    }
}

/// SQLite's own verdict that a file is damaged or not a database at all.
fn sqlite_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// The kinds of versioned definitions, numbered like flyteidl `core.ResourceType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntityKind {
    /// A task (`ResourceType.TASK`).
    Task = 1,
    /// A workflow (`ResourceType.WORKFLOW`).
    Workflow = 2,
    /// A launch plan (`ResourceType.LAUNCH_PLAN`).
    LaunchPlan = 3,
}

impl EntityKind {
    /// From a `core.ResourceType` number.
    pub fn from_resource_type(rt: i32) -> Option<Self> {
        match rt {
            1 => Some(EntityKind::Task),
            2 => Some(EntityKind::Workflow),
            3 => Some(EntityKind::LaunchPlan),
            _ => None,
        }
    }

    /// Lower-case name as flyteadmin uses it in messages ("task", "workflow", "launch plan").
    pub fn noun(self) -> &'static str {
        match self {
            EntityKind::Task => "task",
            EntityKind::Workflow => "workflow",
            EntityKind::LaunchPlan => "launch plan",
        }
    }
}

/// The full identity of one version of a definition.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntityKey {
    pub org: String,
    pub project: String,
    pub domain: String,
    pub name: String,
    pub version: String,
}

/// A definition name across versions (flyteidl `NamedEntityIdentifier`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NamedKey {
    pub org: String,
    pub project: String,
    pub domain: String,
    pub name: String,
}

/// One stored version of a definition.
#[derive(Clone, Debug)]
pub struct EntityRow {
    pub kind: EntityKind,
    pub key: EntityKey,
    /// Encoded admin spec message.
    pub spec: Vec<u8>,
    /// Encoded admin closure message (launch plans: state and timestamps come from the columns).
    pub closure: Vec<u8>,
    /// Launch plans: `admin.LaunchPlanState`.
    pub state: Option<i32>,
    /// Unix nanoseconds.
    pub created_at: i64,
    /// Unix nanoseconds.
    pub updated_at: i64,
}

/// A new definition to store.
#[derive(Clone, Debug)]
pub struct NewEntity<'a> {
    pub kind: EntityKind,
    pub key: &'a EntityKey,
    pub digest: &'a [u8],
    pub spec: &'a [u8],
    pub closure: &'a [u8],
    pub state: Option<i32>,
}

/// What [`Store::create_entity`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// Stored, at this time (unix nanoseconds).
    Created(i64),
    /// The same id already exists with the same digest (flyteadmin: ALREADY_EXISTS).
    Identical,
    /// The same id already exists with another digest (flyteadmin: INVALID_ARGUMENT). The stored
    /// digest and spec come along, so that a damaged row is told apart from a real conflict.
    Different {
        stored_digest: Vec<u8>,
        stored_spec: Vec<u8>,
    },
}

/// Columns a list may filter or sort on (whitelisted: they are spliced into SQL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Name,
    Version,
    State,
    CreatedAt,
    UpdatedAt,
}

impl Column {
    fn sql(self) -> &'static str {
        match self {
            Column::Name => "name",
            Column::Version => "version",
            Column::State => "state",
            Column::CreatedAt => "created_at",
            Column::UpdatedAt => "updated_at",
        }
    }
}

/// A comparison in a list filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterOp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    Contains,
    ValueIn,
}

/// Value compared by a filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterValue {
    Text(String),
    Int(i64),
}

/// One `op(column, values)` term; terms are ANDed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub column: Column,
    pub op: FilterOp,
    pub values: Vec<FilterValue>,
}

/// A page of a listing within one project and domain.
#[derive(Clone, Debug)]
pub struct ListQuery {
    pub org: String,
    pub project: String,
    pub domain: String,
    /// Only this name (versions of one definition) when set.
    pub name: Option<String>,
    pub filters: Vec<Filter>,
    pub sort: Column,
    pub ascending: bool,
    pub limit: u32,
    pub offset: u64,
}

/// A name with at least one stored version, for `List*Ids` and `ListNamedEntities`.
#[derive(Clone, Debug)]
pub struct NamedRow {
    pub key: NamedKey,
    /// Creation time of the newest version (unix nanoseconds).
    pub created_at: i64,
}

/// The sandbox database: one writer, pooled readers.
pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Current time in unix nanoseconds.
pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Store {
    /// Open (creating and migrating if needed) `sandbox.db` in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let path = data_dir.join(DB_FILE);
        let open_err = |source| open_error(&path, source);
        let mut writer = Connection::open(&path).map_err(open_err)?;
        writer
            .execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
            )
            .map_err(open_err)?;
        writer
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(open_err)?;
        migrate(&mut writer, &path)?;
        // A damaged file is reported at start, not as odd answers later (quick_check reads every
        // page once: milliseconds for a sandbox's database).
        let verdict: String = writer
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(open_err)?;
        if verdict != "ok" {
            let detail = verdict
                .lines()
                .filter(|l| !l.starts_with("***"))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(StoreError::Corrupt {
                path,
                detail: format!("SQLite's integrity check says: {detail}"),
            });
        }
        Ok(Store {
            path,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` in a write transaction (committed when `f` returns Ok).
    pub fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Run `f` on a pooled read-only connection.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.readers.lock().map_err(|_| StoreError::Poisoned)?.pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|source| StoreError::Open {
                    path: self.path.clone(),
                    source,
                })?;
                c.busy_timeout(std::time::Duration::from_secs(10))?;
                c
            }
        };
        let out = f(&conn);
        if let Ok(mut idle) = self.readers.lock() {
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
        }
        out
    }

    /// Store a new definition version unless its id exists; compares digests like flyteadmin.
    pub fn create_entity(&self, new: &NewEntity<'_>) -> Result<Inserted, StoreError> {
        self.write(|tx| {
            let k = new.key;
            let existing: Option<(Vec<u8>, Vec<u8>)> = tx
                .prepare_cached(
                    "SELECT digest, spec FROM entities WHERE resource_type=?1 AND org=?2 AND project=?3
                     AND domain=?4 AND name=?5 AND version=?6",
                )?
                .query_row(
                    params![
                        new.kind as i32,
                        k.org,
                        k.project,
                        k.domain,
                        k.name,
                        k.version
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((digest, spec)) = existing {
                return Ok(if digest == new.digest {
                    Inserted::Identical
                } else {
                    Inserted::Different {
                        stored_digest: digest,
                        stored_spec: spec,
                    }
                });
            }
            let now = now_nanos();
            tx.prepare_cached(
                "INSERT INTO entities (resource_type, org, project, domain, name, version, digest,
                 spec, closure, state, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
            )?
            .execute(params![
                new.kind as i32,
                k.org,
                k.project,
                k.domain,
                k.name,
                k.version,
                new.digest,
                new.spec,
                new.closure,
                new.state,
                now
            ])?;
            Ok(Inserted::Created(now))
        })
    }

    /// One version of a definition.
    pub fn get_entity(
        &self,
        kind: EntityKind,
        key: &EntityKey,
    ) -> Result<Option<EntityRow>, StoreError> {
        self.read(|conn| get_entity_on(conn, kind, key))
    }

    /// Several versions at once (missing ones are absent from the result), on one snapshot.
    pub fn get_entities(
        &self,
        kind: EntityKind,
        keys: &[EntityKey],
    ) -> Result<Vec<EntityRow>, StoreError> {
        self.read(|conn| {
            let mut out = Vec::with_capacity(keys.len());
            for k in keys {
                if let Some(row) = get_entity_on(conn, kind, k)? {
                    out.push(row);
                }
            }
            Ok(out)
        })
    }

    /// A page of versions in a project/domain (optionally of one name).
    pub fn list_entities(
        &self,
        kind: EntityKind,
        q: &ListQuery,
    ) -> Result<Vec<EntityRow>, StoreError> {
        self.read(|conn| {
            let (where_sql, args) = where_clause(kind, q);
            let dir = if q.ascending { "ASC" } else { "DESC" };
            let sql = format!(
                "SELECT {ENTITY_COLUMNS} FROM entities WHERE {where_sql}
                 ORDER BY {col} {dir}, seq {dir} LIMIT ?{l} OFFSET ?{o}",
                col = q.sort.sql(),
                l = args.len() + 1,
                o = args.len() + 2,
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut all: Vec<&dyn rusqlite::ToSql> =
                args.iter().map(|a| a as &dyn rusqlite::ToSql).collect();
            let limit = i64::from(q.limit);
            let offset = i64::try_from(q.offset).unwrap_or(i64::MAX);
            all.push(&limit);
            all.push(&offset);
            let rows = stmt.query_map(all.as_slice(), |r| entity_from_row(kind, r))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// A page of distinct names in a project/domain, newest-created first or by name.
    pub fn list_names(&self, kind: EntityKind, q: &ListQuery) -> Result<Vec<NamedRow>, StoreError> {
        self.read(|conn| {
            let (where_sql, args) = where_clause(kind, q);
            let dir = if q.ascending { "ASC" } else { "DESC" };
            let order = match q.sort {
                Column::Name => format!("name {dir}"),
                _ => format!("MAX(created_at) {dir}, name {dir}"),
            };
            let sql = format!(
                "SELECT org, project, domain, name, MAX(created_at) FROM entities WHERE {where_sql}
                 GROUP BY org, project, domain, name ORDER BY {order} LIMIT ?{l} OFFSET ?{o}",
                l = args.len() + 1,
                o = args.len() + 2,
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut all: Vec<&dyn rusqlite::ToSql> =
                args.iter().map(|a| a as &dyn rusqlite::ToSql).collect();
            let limit = i64::from(q.limit);
            let offset = i64::try_from(q.offset).unwrap_or(i64::MAX);
            all.push(&limit);
            all.push(&offset);
            let rows = stmt.query_map(all.as_slice(), |r| {
                Ok(NamedRow {
                    key: NamedKey {
                        org: r.get(0)?,
                        project: r.get(1)?,
                        domain: r.get(2)?,
                        name: r.get(3)?,
                    },
                    created_at: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Whether any version of a name exists.
    pub fn name_exists(&self, kind: EntityKind, key: &NamedKey) -> Result<bool, StoreError> {
        self.read(|conn| {
            let found: Option<i64> = conn
                .prepare_cached(
                    "SELECT 1 FROM entities WHERE resource_type=?1 AND org=?2 AND project=?3
                     AND domain=?4 AND name=?5 LIMIT 1",
                )?
                .query_row(
                    params![kind as i32, key.org, key.project, key.domain, key.name],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(found.is_some())
        })
    }

    /// Set a launch plan version's state; activating deactivates every other version of the
    /// name (flyteadmin keeps at most one active version per launch plan name).
    /// Returns false when the version does not exist.
    pub fn set_launch_plan_state(&self, key: &EntityKey, state: i32) -> Result<bool, StoreError> {
        self.write(|tx| {
            let now = now_nanos();
            let lp = EntityKind::LaunchPlan as i32;
            let exists: Option<i64> = tx
                .prepare_cached(
                    "SELECT seq FROM entities WHERE resource_type=?1 AND org=?2 AND project=?3
                     AND domain=?4 AND name=?5 AND version=?6",
                )?
                .query_row(
                    params![lp, key.org, key.project, key.domain, key.name, key.version],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(seq) = exists else { return Ok(false) };
            if state == 1 {
                tx.prepare_cached(
                    "UPDATE entities SET state=0, updated_at=?1 WHERE resource_type=?2 AND org=?3
                     AND project=?4 AND domain=?5 AND name=?6 AND state=1 AND seq<>?7",
                )?
                .execute(params![
                    now,
                    lp,
                    key.org,
                    key.project,
                    key.domain,
                    key.name,
                    seq
                ])?;
            }
            tx.prepare_cached("UPDATE entities SET state=?1, updated_at=?2 WHERE seq=?3")?
                .execute(params![state, now, seq])?;
            Ok(true)
        })
    }

    /// The active version of a launch plan name, if any.
    pub fn active_launch_plan(&self, key: &NamedKey) -> Result<Option<EntityRow>, StoreError> {
        self.read(|conn| {
            let sql = format!(
                "SELECT {ENTITY_COLUMNS} FROM entities WHERE resource_type=3 AND org=?1 AND project=?2
                 AND domain=?3 AND name=?4 AND state=1 ORDER BY updated_at DESC LIMIT 1"
            );
            Ok(conn
                .prepare_cached(&sql)?
                .query_row(params![key.org, key.project, key.domain, key.name], |r| {
                    entity_from_row(EntityKind::LaunchPlan, r)
                })
                .optional()?)
        })
    }

    /// Active launch plans of a project/domain, a page at a time (sorted as `q` says).
    pub fn list_active_launch_plans(&self, q: &ListQuery) -> Result<Vec<EntityRow>, StoreError> {
        let mut q = q.clone();
        q.filters.push(Filter {
            column: Column::State,
            op: FilterOp::Eq,
            values: vec![FilterValue::Int(1)],
        });
        self.list_entities(EntityKind::LaunchPlan, &q)
    }
}

const ENTITY_COLUMNS: &str =
    "org, project, domain, name, version, spec, closure, state, created_at, updated_at";

fn entity_from_row(kind: EntityKind, r: &rusqlite::Row<'_>) -> rusqlite::Result<EntityRow> {
    Ok(EntityRow {
        kind,
        key: EntityKey {
            org: r.get(0)?,
            project: r.get(1)?,
            domain: r.get(2)?,
            name: r.get(3)?,
            version: r.get(4)?,
        },
        spec: r.get(5)?,
        closure: r.get(6)?,
        state: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
    })
}

fn get_entity_on(
    conn: &Connection,
    kind: EntityKind,
    k: &EntityKey,
) -> Result<Option<EntityRow>, StoreError> {
    let sql = format!(
        "SELECT {ENTITY_COLUMNS} FROM entities WHERE resource_type=?1 AND org=?2 AND project=?3
         AND domain=?4 AND name=?5 AND version=?6"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(
            params![kind as i32, k.org, k.project, k.domain, k.name, k.version],
            |r| entity_from_row(kind, r),
        )
        .optional()?)
}

/// SQL argument: filters bind text or integers.
#[derive(Debug)]
enum Arg {
    Text(String),
    Int(i64),
}

impl rusqlite::ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Arg::Text(s) => s.to_sql(),
            Arg::Int(i) => i.to_sql(),
        }
    }
}

fn where_clause(kind: EntityKind, q: &ListQuery) -> (String, Vec<Arg>) {
    let mut args = vec![
        Arg::Int(kind as i64),
        Arg::Text(q.org.clone()),
        Arg::Text(q.project.clone()),
        Arg::Text(q.domain.clone()),
    ];
    let mut sql = String::from("resource_type=?1 AND org=?2 AND project=?3 AND domain=?4");
    if let Some(name) = &q.name {
        args.push(Arg::Text(name.clone()));
        sql.push_str(&format!(" AND name=?{}", args.len()));
    }
    for f in &q.filters {
        let col = f.column.sql();
        let mut placeholders = Vec::new();
        for v in &f.values {
            args.push(match v {
                FilterValue::Text(s) if f.op == FilterOp::Contains => {
                    Arg::Text(format!("%{}%", escape_like(s)))
                }
                FilterValue::Text(s) => Arg::Text(s.clone()),
                FilterValue::Int(i) => Arg::Int(*i),
            });
            placeholders.push(format!("?{}", args.len()));
        }
        let first = placeholders
            .first()
            .cloned()
            .unwrap_or_else(|| "NULL".into());
        let term = match f.op {
            FilterOp::Eq => format!("{col} = {first}"),
            FilterOp::Ne => format!("{col} <> {first}"),
            FilterOp::Gt => format!("{col} > {first}"),
            FilterOp::Gte => format!("{col} >= {first}"),
            FilterOp::Lt => format!("{col} < {first}"),
            FilterOp::Lte => format!("{col} <= {first}"),
            FilterOp::Contains => format!("{col} LIKE {first} ESCAPE '\\'"),
            FilterOp::ValueIn => format!("{col} IN ({})", placeholders.join(", ")),
        };
        sql.push_str(" AND ");
        sql.push_str(&term);
    }
    (sql, args)
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Why the file could not be opened: damage (wherever SQLite finds it first: the schema, a
/// migration, the integrity check) is reported as such.
fn open_error(path: &Path, source: rusqlite::Error) -> StoreError {
    if sqlite_corruption(&source) {
        StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: source.to_string(),
        }
    } else {
        StoreError::Open {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let open_err = |source| open_error(path, source);
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(open_err)?;
    if current > MIGRATIONS.len() as i64 {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: current,
            supported: MIGRATIONS.len(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        let tx = conn.transaction().map_err(open_err)?;
        tx.execute_batch(sql).map_err(open_err)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(open_err)?;
        tx.commit().map_err(open_err)?;
    }
    Ok(())
}
