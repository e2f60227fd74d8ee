//! The database schema, as numbered migrations: each runs once, in order, and is never edited
//! once released (a change is a new migration).

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
/// Never edit a released entry: append a new one.
pub const MIGRATIONS: &[&str] = &[
    // 1: versioned definitions.
    "CREATE TABLE entities (
        seq           INTEGER PRIMARY KEY,  -- insertion order: breaks created_at ties
        resource_type INTEGER NOT NULL,     -- flyteidl core.ResourceType: 1 task, 2 workflow, 3 launch plan
        org           TEXT NOT NULL,
        project       TEXT NOT NULL,
        domain        TEXT NOT NULL,
        name          TEXT NOT NULL,
        version       TEXT NOT NULL,
        digest        BLOB NOT NULL,        -- sha256 of the deterministic encoding compared on re-create
        spec          BLOB NOT NULL,        -- admin.TaskSpec / WorkflowSpec / LaunchPlanSpec
        closure       BLOB NOT NULL,        -- admin.TaskClosure / WorkflowClosure / LaunchPlanClosure
        state         INTEGER,              -- launch plans: admin.LaunchPlanState; NULL otherwise
        created_at    INTEGER NOT NULL,     -- unix nanoseconds
        updated_at    INTEGER NOT NULL,     -- unix nanoseconds
        UNIQUE (resource_type, org, project, domain, name, version)
    );
    CREATE INDEX entities_by_name ON entities (resource_type, org, project, domain, name, created_at);
    CREATE INDEX entities_by_project ON entities (resource_type, org, project, domain, created_at);
    CREATE INDEX entities_active ON entities (org, project, domain, name) WHERE state = 1;",
    // 2: executions, node executions and task attempts (read and written by `executions`).
    "
    CREATE TABLE executions (
        seq          INTEGER PRIMARY KEY,
        org          TEXT NOT NULL,
        project      TEXT NOT NULL,
        domain       TEXT NOT NULL,
        name         TEXT NOT NULL,
        phase        INTEGER NOT NULL,     -- core.WorkflowExecution.Phase
        spec         BLOB NOT NULL,        -- admin.ExecutionSpec
        workflow_id  BLOB NOT NULL,        -- core.Identifier
        inputs       BLOB NOT NULL,        -- core.LiteralMap, after defaults
        outputs      BLOB,                 -- core.LiteralMap
        error        BLOB,                 -- core.ExecutionError
        abort_cause  TEXT,
        created_at   INTEGER NOT NULL,     -- unix nanoseconds
        started_at   INTEGER,
        finished_at  INTEGER,
        updated_at   INTEGER NOT NULL,
        UNIQUE (org, project, domain, name)
    );
    CREATE INDEX executions_by_project ON executions (org, project, domain, created_at);
    CREATE INDEX executions_unfinished ON executions (phase) WHERE phase IN (1, 2);
    CREATE TABLE node_executions (
        execution_seq  INTEGER NOT NULL REFERENCES executions(seq),
        node_id        TEXT NOT NULL,      -- unique in the execution (n1-0-n0 inside n1)
        spec_node_id   TEXT NOT NULL,
        parent_node_id TEXT NOT NULL,      -- '' at the top level
        kind           TEXT NOT NULL,      -- task, workflow, launch_plan, branch, gate, array
        phase          INTEGER NOT NULL,   -- core.NodeExecution.Phase
        inputs         BLOB,
        outputs        BLOB,
        error          BLOB,
        created_at     INTEGER NOT NULL,
        started_at     INTEGER,
        finished_at    INTEGER,
        updated_at     INTEGER NOT NULL,
        seq            INTEGER NOT NULL,   -- creation order
        PRIMARY KEY (execution_seq, node_id)
    );
    CREATE TABLE task_executions (
        execution_seq  INTEGER NOT NULL REFERENCES executions(seq),
        node_id        TEXT NOT NULL,
        retry_attempt  INTEGER NOT NULL,
        task_id        BLOB NOT NULL,      -- core.Identifier
        phase          INTEGER NOT NULL,   -- core.TaskExecution.Phase
        log_path       TEXT,
        outputs        BLOB,
        error          BLOB,
        created_at     INTEGER NOT NULL,
        started_at     INTEGER,
        finished_at    INTEGER,
        updated_at     INTEGER NOT NULL,
        PRIMARY KEY (execution_seq, node_id, retry_attempt)
    );",
    // 3: signals gate nodes wait for (read and written by `signals`).
    "CREATE TABLE signals (
        execution_seq INTEGER NOT NULL REFERENCES executions(seq),
        signal_id     TEXT NOT NULL,
        type          BLOB NOT NULL,       -- core.LiteralType
        value         BLOB,                -- core.Literal, once set
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL,
        PRIMARY KEY (execution_seq, signal_id)
    );",
    // 4: the child execution a launch plan node started (core.WorkflowExecutionIdentifier).
    "ALTER TABLE node_executions ADD COLUMN child_execution BLOB;",
    // 5: cached task outputs (read and written by `cache`), and each node's cache status.
    "CREATE TABLE task_cache (
        project     TEXT NOT NULL,
        domain      TEXT NOT NULL,
        task        TEXT NOT NULL,
        version     TEXT NOT NULL,         -- cache_version
        signature   TEXT NOT NULL,         -- sha256 of the task's interface
        inputs      TEXT NOT NULL,         -- sha256 of the inputs (less cache_ignore_input_vars)
        outputs     BLOB NOT NULL,         -- core.LiteralMap
        producer    BLOB NOT NULL,         -- core.WorkflowExecutionIdentifier of the execution that produced them
        node_id     TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (project, domain, task, version, signature, inputs)
    );
    ALTER TABLE node_executions ADD COLUMN cache_status INTEGER;",
    // 6: union's secrets (read and written by `secrets`) and the scheduler's last fire times
    // (`schedules`).
    "
    CREATE TABLE secrets (
        org          TEXT NOT NULL,
        project      TEXT NOT NULL,        -- '' for every project
        domain       TEXT NOT NULL,        -- '' for every domain
        name         TEXT NOT NULL,
        value        BLOB NOT NULL,
        binary       INTEGER NOT NULL,     -- 1: given as binary_value, 0: string_value
        type         INTEGER NOT NULL,     -- cloudidl.secret.SecretType
        created_at   INTEGER NOT NULL,     -- unix nanoseconds
        updated_at   INTEGER NOT NULL,
        PRIMARY KEY (org, name, project, domain)
    );
    CREATE TABLE schedule_fires (
        org          TEXT NOT NULL,
        project      TEXT NOT NULL,
        domain       TEXT NOT NULL,
        name         TEXT NOT NULL,        -- the launch plan
        version      TEXT NOT NULL,
        last_fire    INTEGER NOT NULL,     -- unix seconds of the last scheduled time started
        PRIMARY KEY (org, project, domain, name, version)
    );",
    // 7: the built-in OCI registry's index (read and written by `registry`; the bytes are files
    // under `registry/blobs/`). Repository -> blob links, manifests with what they reference, and
    // tags: what garbage collection needs to tell live blobs from dead ones in one query.
    "
    CREATE TABLE registry_blobs (
        digest       TEXT PRIMARY KEY,     -- sha256:<hex>, the file's name
        size         INTEGER NOT NULL,
        created_at   INTEGER NOT NULL      -- unix nanoseconds
    );
    CREATE TABLE registry_links (
        repo         TEXT NOT NULL,
        digest       TEXT NOT NULL,
        touched_at   INTEGER NOT NULL,     -- last upload, mount or HEAD: a push in progress
        PRIMARY KEY (repo, digest)
    );
    CREATE INDEX registry_links_by_digest ON registry_links (digest);
    CREATE TABLE registry_manifests (
        repo         TEXT NOT NULL,
        digest       TEXT NOT NULL,        -- its bytes are the blob of that digest
        media_type   TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        PRIMARY KEY (repo, digest)
    );
    CREATE INDEX registry_manifests_by_digest ON registry_manifests (digest);
    CREATE TABLE registry_refs (
        repo         TEXT NOT NULL,
        manifest     TEXT NOT NULL,
        digest       TEXT NOT NULL,        -- a layer, the config, or a child manifest
        PRIMARY KEY (repo, manifest, digest)
    );
    CREATE INDEX registry_refs_by_digest ON registry_refs (digest);
    CREATE TABLE registry_tags (
        repo         TEXT NOT NULL,
        tag          TEXT NOT NULL,
        digest       TEXT NOT NULL,
        updated_at   INTEGER NOT NULL,
        PRIMARY KEY (repo, tag)
    );",
    // 8: the workflow a dynamic node ran as its children (core.CompiledWorkflowClosure).
    "ALTER TABLE node_executions ADD COLUMN dynamic_workflow BLOB;",
];
