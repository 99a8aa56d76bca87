//! Tables and pragmas.

use rusqlite::Connection;

pub(super) fn prepare(db: &Connection) -> rusqlite::Result<()> {
    create(db)?;
    // Stores made before events had a resourceVersion gain the column.
    let has_rv: bool = db
        .prepare("SELECT 1 FROM pragma_table_info('events') WHERE name = 'resource_version'")?
        .exists([])?;
    if !has_rv {
        db.execute_batch(
            "ALTER TABLE events ADD COLUMN resource_version INTEGER NOT NULL DEFAULT 0",
        )?;
    }
    // Stores made before rows carried a checksum gain the column; their rows have none
    // until they are next written.
    let has_checksum: bool = db
        .prepare("SELECT 1 FROM pragma_table_info('objects') WHERE name = 'checksum'")?
        .exists([])?;
    if !has_checksum {
        db.execute_batch("ALTER TABLE objects ADD COLUMN checksum INTEGER")?;
    }
    // Stores made before managedFields were kept gain the column.
    let has_managed: bool = db
        .prepare("SELECT 1 FROM pragma_table_info('objects') WHERE name = 'managed_fields'")?
        .exists([])?;
    if !has_managed {
        db.execute_batch(
            "ALTER TABLE objects ADD COLUMN managed_fields TEXT NOT NULL DEFAULT 'null'",
        )?;
    }
    Ok(())
}

fn create(db: &Connection) -> rusqlite::Result<()> {
    // WAL keeps readers off the writer's back; NORMAL sync is durable across process crashes
    // (only a power loss may drop the last commits).
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "NORMAL")?;
    db.pragma_update(None, "foreign_keys", "ON")?;
    // Sorts and temporary results stay in memory instead of temporary files.
    db.pragma_update(None, "temp_store", "MEMORY")?;
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS objects (
            kind TEXT NOT NULL,
            namespace TEXT NOT NULL,
            name TEXT NOT NULL,
            uid TEXT NOT NULL UNIQUE,
            resource_version INTEGER NOT NULL,
            generation INTEGER NOT NULL,
            labels TEXT NOT NULL,
            annotations TEXT NOT NULL,
            owner_references TEXT NOT NULL,
            spec TEXT NOT NULL,
            status TEXT NOT NULL,
            agent_revision INTEGER NOT NULL DEFAULT 0,
            deletion_timestamp TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (kind, namespace, name)
        );
        CREATE TABLE IF NOT EXISTS events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            object_uid TEXT NOT NULL,
            kind TEXT NOT NULL,
            reason TEXT NOT NULL,
            message TEXT NOT NULL,
            source TEXT NOT NULL,
            count INTEGER NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            resource_version INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX IF NOT EXISTS events_by_object ON events (object_uid, id);
        CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT OR IGNORE INTO counters (name, value) VALUES ('resource_version', 0);
        CREATE TABLE IF NOT EXISTS revisions (
            owner_uid TEXT NOT NULL,
            revision INTEGER NOT NULL,
            hash TEXT NOT NULL,
            template TEXT NOT NULL,
            PRIMARY KEY (owner_uid, hash)
        );
        CREATE TABLE IF NOT EXISTS job_results (
            job_uid TEXT NOT NULL,
            pod_uid TEXT NOT NULL,
            pod_index INTEGER,
            outcome TEXT NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (job_uid, pod_uid)
        );
        CREATE TABLE IF NOT EXISTS daemon_failures (
            ds_uid TEXT NOT NULL,
            node TEXT NOT NULL,
            failures INTEGER NOT NULL,
            failed_at TEXT NOT NULL,
            PRIMARY KEY (ds_uid, node)
        );
        CREATE TABLE IF NOT EXISTS superseded_results (
            job_uid TEXT NOT NULL,
            pod_uid TEXT NOT NULL,
            PRIMARY KEY (job_uid, pod_uid)
        );
        CREATE TABLE IF NOT EXISTS namespaces (
            name TEXT PRIMARY KEY,
            uid TEXT NOT NULL,
            resource_version INTEGER NOT NULL,
            labels TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS desired (
            node TEXT PRIMARY KEY,
            generation INTEGER NOT NULL,
            payload BLOB NOT NULL
        );
        INSERT OR IGNORE INTO counters (name, value) VALUES ('desired_generation', 0);
        CREATE TABLE IF NOT EXISTS join_tokens (
            id TEXT PRIMARY KEY,
            record BLOB NOT NULL
        );
        CREATE TABLE IF NOT EXISTS node_credentials (
            node TEXT PRIMARY KEY,
            public_key BLOB NOT NULL,
            password_hash BLOB NOT NULL,
            token TEXT NOT NULL,
            labels TEXT NOT NULL,
            enrolled_at TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS api_tokens (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL,
            token_hash BLOB NOT NULL,
            created_at TEXT NOT NULL
        );",
    )
}
