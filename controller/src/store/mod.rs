//! The controller's durable state: objects and events in SQLite (WAL).
//!
//! Every write is one transaction; `resourceVersion` comes from one counter that never goes
//! back, even across deletes and restarts.

mod api_tokens;
mod changes;
mod daemon_failures;
mod namespaces;
mod schema;
mod security;

pub use api_tokens::{ApiTokenTable, StoredApiToken};
pub use changes::{Change, ChangeSink, ChangeType};
pub use namespaces::StoredNamespace;
pub use security::StoredCredential;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use drover_proto::manifest::Kind;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::Value;

/// A stored object.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    /// Kind.
    pub kind: Kind,
    /// Namespace; empty for cluster-scoped kinds.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
    /// Changes with every write.
    pub resource_version: u64,
    /// Changes with every spec change.
    pub generation: i64,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Owner references (a JSON array).
    pub owner_references: Value,
    /// `metadata.managedFields` (a JSON array), or null when no writer recorded any.
    pub managed_fields: Value,
    /// Spec.
    pub spec: Value,
    /// Status.
    pub status: Value,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Set when deletion has begun (the object goes once its node confirms).
    pub deletion_timestamp: Option<DateTime<Utc>>,
    /// The newest status revision applied from an agent (pods).
    pub agent_revision: u64,
}

impl StoredObject {
    /// An object not stored yet, created at `now`: generation 1, no labels, annotations,
    /// owner references or managed fields, an empty spec and status. Writers set the rest
    /// with struct update syntax (`StoredObject { spec, ..StoredObject::new(…) }`).
    pub fn new(
        kind: Kind,
        namespace: impl Into<String>,
        name: impl Into<String>,
        uid: impl Into<String>,
        now: DateTime<Utc>,
    ) -> StoredObject {
        StoredObject {
            kind,
            namespace: namespace.into(),
            name: name.into(),
            uid: uid.into(),
            resource_version: 0,
            generation: 1,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            owner_references: Value::Array(Vec::new()),
            managed_fields: Value::Null,
            spec: Value::Object(Default::default()),
            status: Value::Object(Default::default()),
            created_at: now,
            deletion_timestamp: None,
            agent_revision: 0,
        }
    }
}

/// A recorded event about an object.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// `Normal` or `Warning`.
    pub kind: String,
    /// Short reason, e.g. `NodeReady`.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
    /// Reporting component.
    pub source: String,
    /// How often it happened.
    pub count: u64,
    /// First occurrence.
    pub first_seen: DateTime<Utc>,
    /// Last occurrence.
    pub last_seen: DateTime<Utc>,
}

/// An event as stored: its id, the UID of the object it is about and its resourceVersion.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Row id (stable; names the event).
    pub id: u64,
    /// The object it is about.
    pub object_uid: String,
    /// Set when it was recorded or last bumped.
    pub resource_version: u64,
    /// What happened.
    pub event: StoredEvent,
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database file could not be created or made private (0600).
    #[error("store: cannot make {path} private (0600): {source}")]
    Permissions {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Stored JSON could not be read back.
    #[error("store: corrupt record: {0}")]
    Corrupt(String),
    /// A stored object is damaged: its checksum does not match, or it cannot be read.
    #[error("store: {kind} {namespace}/{name} is damaged ({detail}); start the server once with --repair-store to drop it (a workload's controller creates again what it owned)")]
    Damaged {
        /// Its kind, as stored.
        kind: String,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// The write-ahead log is gone while SQLite's index of it is there: the last commits
    /// are lost.
    #[error("store: {wal} is missing while {shm} is there: the store's last changes are lost; start the server once with --repair-store to go on without them")]
    LostWal {
        /// The missing log.
        wal: String,
        /// Its index.
        shm: String,
    },
}

/// An object's row as stored, every field but `updated_at`: what its checksum covers, in
/// one place for writing and for reading back.
struct RowText<'a> {
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
    uid: &'a str,
    resource_version: i64,
    generation: i64,
    labels: &'a str,
    annotations: &'a str,
    owner_references: &'a str,
    spec: &'a str,
    status: &'a str,
    created_at: &'a str,
    agent_revision: i64,
    deletion_timestamp: Option<&'a str>,
    managed_fields: &'a str,
}

impl RowText<'_> {
    /// CRC-32 of the fields' text, in order, each followed by a separator.
    fn checksum(&self) -> i64 {
        let numbers = [
            self.resource_version.to_string(),
            self.generation.to_string(),
            self.agent_revision.to_string(),
        ];
        let fields = [
            self.kind,
            self.namespace,
            self.name,
            self.uid,
            &numbers[0],
            &numbers[1],
            self.labels,
            self.annotations,
            self.owner_references,
            self.spec,
            self.status,
            self.created_at,
            &numbers[2],
            self.deletion_timestamp.unwrap_or(""),
            self.managed_fields,
        ];
        let mut hasher = crc32fast::Hasher::new();
        for field in fields {
            hasher.update(field.as_bytes());
            hasher.update(&[0x1f]);
        }
        i64::from(hasher.finalize())
    }
}

type ObjectKey = (Kind, String, String);

/// The SQLite store. Objects are also kept in memory (written through, read from memory):
/// the control loop reads them far more often than it writes them, and it is the only
/// writer.
pub struct Store {
    db: Connection,
    /// Shared, so listing a kind costs a reference count per object, not a deep copy.
    objects: BTreeMap<ObjectKey, Arc<StoredObject>>,
    by_uid: HashMap<String, ObjectKey>,
    api_tokens: ApiTokenTable,
    /// Told of every object write once it is committed.
    sink: Option<Box<dyn ChangeSink>>,
}

/// Most events kept per object; older ones are dropped.
const EVENTS_PER_OBJECT: i64 = 50;

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp {text}: {e}")))
}

impl Store {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(dir, false)
    }

    /// Opens the store in `dir`; with `repair`, damaged objects are dropped (each logged)
    /// and a lost write-ahead log is accepted, instead of refusing to open.
    pub fn open_with(dir: &Path, repair: bool) -> Result<Store, StoreError> {
        let path = dir.join("drover.db");
        let wal = dir.join("drover.db-wal");
        let shm = dir.join("drover.db-shm");
        // After a crash both stay; a clean close removes both. An index without its log is
        // a log that was removed, and with it the last commits.
        if shm.exists() && !wal.exists() && path.exists() {
            let lost = StoreError::LostWal {
                wal: wal.display().to_string(),
                shm: shm.display().to_string(),
            };
            if !repair {
                return Err(lost);
            }
            tracing::error!("{lost}: going on without them (--repair-store)");
            // The index describes the log that is gone.
            std::fs::remove_file(&shm).map_err(|source| StoreError::Permissions {
                path: shm.display().to_string(),
                source,
            })?;
        }
        // Created 0600 before SQLite opens it: SQLite gives the -wal and -shm files the
        // database's mode. Those an older version left are tightened.
        let private = |p: &Path| {
            let path = p.display().to_string();
            move |source| StoreError::Permissions { path, source }
        };
        drover_agent::private_fs::private_file(&path).map_err(private(&path))?;
        for suffix in ["-wal", "-shm"] {
            let mut name = path.clone().into_os_string();
            name.push(suffix);
            let side = std::path::PathBuf::from(name);
            drover_agent::private_fs::tighten_file_if_present(&side).map_err(private(&side))?;
        }
        let db = Connection::open(&path)?;
        Store::load(db, repair)
    }

    /// An in-memory store for tests.
    pub fn in_memory() -> Result<Store, StoreError> {
        Store::load(Connection::open_in_memory()?, false)
    }

    fn load(db: Connection, repair: bool) -> Result<Store, StoreError> {
        schema::prepare(&db)?;
        let mut store = Store {
            db,
            objects: BTreeMap::new(),
            by_uid: HashMap::new(),
            api_tokens: ApiTokenTable::default(),
            sink: None,
        };
        store.reload_api_tokens()?;
        let mut damaged = Vec::new();
        let loaded: Vec<StoredObject> = {
            let mut stmt = store.db.prepare("SELECT * FROM objects")?;
            let rows = stmt.query_map([], Self::row_to_object)?;
            let mut loaded = Vec::new();
            for row in rows {
                match row? {
                    Ok(object) => loaded.push(object),
                    Err(e @ StoreError::Damaged { .. }) if repair => damaged.push(e),
                    Err(e) => return Err(e),
                }
            }
            loaded
        };
        for e in damaged {
            if let StoreError::Damaged {
                kind,
                namespace,
                name,
                ..
            } = &e
            {
                tracing::error!("{e}: dropped (--repair-store)");
                store.db.execute(
                    "DELETE FROM objects WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
                    params![kind, namespace, name],
                )?;
            }
        }
        for object in loaded {
            store.remember(object);
        }
        Ok(store)
    }

    /// Keeps `object` in memory; returns it shared, with the object it replaced.
    fn remember(&mut self, object: StoredObject) -> (Arc<StoredObject>, Option<Arc<StoredObject>>) {
        let key = (object.kind, object.namespace.clone(), object.name.clone());
        if let Some(previous) = self.objects.get(&key) {
            if previous.uid != object.uid {
                self.by_uid.remove(&previous.uid);
            }
        }
        self.by_uid.insert(object.uid.clone(), key.clone());
        let object = Arc::new(object);
        let previous = self.objects.insert(key, Arc::clone(&object));
        (object, previous)
    }

    fn next_resource_version(tx: &rusqlite::Transaction) -> Result<u64, StoreError> {
        let v: i64 = tx
            .prepare_cached(
                "UPDATE counters SET value = value + 1 WHERE name = 'resource_version' RETURNING value",
            )?
            .query_row([], |r| r.get(0))?;
        Ok(v as u64)
    }

    fn row_to_object(row: &Row) -> rusqlite::Result<Result<StoredObject, StoreError>> {
        let kind: String = row.get("kind")?;
        let labels: String = row.get("labels")?;
        let annotations: String = row.get("annotations")?;
        let owners: String = row.get("owner_references")?;
        let managed: String = row.get("managed_fields")?;
        let spec: String = row.get("spec")?;
        let status: String = row.get("status")?;
        let created: String = row.get("created_at")?;
        let namespace: String = row.get("namespace")?;
        let name: String = row.get("name")?;
        let uid: String = row.get("uid")?;
        let rv: i64 = row.get("resource_version")?;
        let generation: i64 = row.get("generation")?;
        let agent_revision: i64 = row.get("agent_revision")?;
        let deletion: Option<String> = row.get("deletion_timestamp")?;
        let checksum: Option<i64> = row.get("checksum")?;
        let damaged = |detail: String| StoreError::Damaged {
            kind: kind.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
            detail,
        };
        let computed = RowText {
            kind: &kind,
            namespace: &namespace,
            name: &name,
            uid: &uid,
            resource_version: rv,
            generation,
            labels: &labels,
            annotations: &annotations,
            owner_references: &owners,
            spec: &spec,
            status: &status,
            created_at: &created,
            agent_revision,
            deletion_timestamp: deletion.as_deref(),
            managed_fields: &managed,
        }
        .checksum();
        if checksum.is_some_and(|stored| stored != computed) {
            return Ok(Err(damaged(
                "its checksum does not match its content".into(),
            )));
        }
        let read = (|| {
            let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
            Ok(StoredObject {
                kind: Kind::from_resource_name(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("kind {kind}")))?,
                namespace: namespace.clone(),
                name: name.clone(),
                uid,
                resource_version: rv as u64,
                generation,
                labels: serde_json::from_str(&labels).map_err(corrupt)?,
                annotations: serde_json::from_str(&annotations).map_err(corrupt)?,
                owner_references: serde_json::from_str(&owners).map_err(corrupt)?,
                managed_fields: serde_json::from_str(&managed).map_err(corrupt)?,
                spec: serde_json::from_str(&spec).map_err(corrupt)?,
                status: serde_json::from_str(&status).map_err(corrupt)?,
                created_at: parse_time(&created)?,
                deletion_timestamp: deletion.as_deref().map(parse_time).transpose()?,
                agent_revision: agent_revision as u64,
            })
        })();
        Ok(read.map_err(|e: StoreError| damaged(e.to_string())))
    }

    /// One object.
    pub fn get(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Result<Option<StoredObject>, StoreError> {
        Ok(self
            .objects
            .get(&(kind, namespace.to_string(), name.to_string()))
            .map(|o| StoredObject::clone(o)))
    }

    /// The object with this UID.
    pub fn get_by_uid(&self, uid: &str) -> Result<Option<StoredObject>, StoreError> {
        Ok(self
            .by_uid
            .get(uid)
            .and_then(|key| self.objects.get(key))
            .map(|o| StoredObject::clone(o)))
    }

    /// The resourceVersion of the object with this UID.
    pub fn resource_version_of(&self, uid: &str) -> Option<u64> {
        self.by_uid
            .get(uid)
            .and_then(|key| self.objects.get(key))
            .map(|o| o.resource_version)
    }

    /// How many objects are stored, of every kind.
    pub fn object_count(&self) -> usize {
        self.objects.len()
    }

    /// Objects of a kind, in one namespace or all, ordered by namespace and name.
    pub fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
    ) -> Result<Vec<Arc<StoredObject>>, StoreError> {
        let start = (kind, String::new(), String::new());
        Ok(self
            .objects
            .range(start..)
            .take_while(|((k, _, _), _)| *k == kind)
            .filter(|((_, ns, _), _)| namespace.is_none_or(|n| n == ns))
            .map(|(_, o)| Arc::clone(o))
            .collect())
    }

    /// Inserts a new object or replaces an existing one (matched by kind, namespace, name),
    /// assigning a fresh resourceVersion. Returns the stored object.
    pub fn put(&mut self, object: &StoredObject) -> Result<StoredObject, StoreError> {
        let tx = self.db.transaction()?;
        let rv = Self::next_resource_version(&tx)?;
        let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let (labels, annotations, owners, spec, status, managed) = (
            to_json(&object.labels),
            to_json(&object.annotations),
            to_json(&object.owner_references),
            to_json(&object.spec),
            to_json(&object.status),
            to_json(&object.managed_fields),
        );
        let created = object
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let deletion = object
            .deletion_timestamp
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let checksum = RowText {
            kind: object.kind.as_str(),
            namespace: &object.namespace,
            name: &object.name,
            uid: &object.uid,
            resource_version: rv as i64,
            generation: object.generation,
            labels: &labels,
            annotations: &annotations,
            owner_references: &owners,
            spec: &spec,
            status: &status,
            created_at: &created,
            agent_revision: object.agent_revision as i64,
            deletion_timestamp: deletion.as_deref(),
            managed_fields: &managed,
        }
        .checksum();
        tx.prepare_cached(
            "INSERT INTO objects (kind, namespace, name, uid, resource_version, generation, labels, annotations,
                                  owner_references, spec, status, created_at, updated_at, agent_revision,
                                  deletion_timestamp, managed_fields, checksum)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
             ON CONFLICT (kind, namespace, name) DO UPDATE SET
                uid = excluded.uid, resource_version = excluded.resource_version,
                generation = excluded.generation, labels = excluded.labels,
                annotations = excluded.annotations, owner_references = excluded.owner_references,
                spec = excluded.spec, status = excluded.status, updated_at = excluded.updated_at,
                agent_revision = excluded.agent_revision, deletion_timestamp = excluded.deletion_timestamp,
                managed_fields = excluded.managed_fields, checksum = excluded.checksum,
                created_at = excluded.created_at",
        )?
        .execute(params![
            object.kind.as_str(),
            object.namespace,
            object.name,
            object.uid,
            rv as i64,
            object.generation,
            labels,
            annotations,
            owners,
            spec,
            status,
            created,
            now,
            object.agent_revision as i64,
            deletion,
            managed,
            checksum,
        ])?;
        tx.commit()?;
        let mut stored = object.clone();
        stored.resource_version = rv;
        let (shared, previous) = self.remember(stored.clone());
        self.publish(|| Change {
            kind: match previous {
                Some(_) => ChangeType::Modified,
                None => ChangeType::Added,
            },
            resource_version: rv,
            object: shared,
            previous,
            event: None,
        });
        Ok(stored)
    }

    /// Deletes an object with its events; returns what was deleted.
    pub fn delete(
        &mut self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Result<Option<StoredObject>, StoreError> {
        let Some(object) = self.get(kind, namespace, name)? else {
            return Ok(None);
        };
        let tx = self.db.transaction()?;
        let rv = Self::next_resource_version(&tx)?;
        tx.execute("DELETE FROM objects WHERE uid = ?1", params![object.uid])?;
        tx.execute(
            "DELETE FROM events WHERE object_uid = ?1",
            params![object.uid],
        )?;
        tx.commit()?;
        let removed = self
            .objects
            .remove(&(kind, namespace.to_string(), name.to_string()));
        self.by_uid.remove(&object.uid);
        if let Some(removed) = removed {
            self.publish(|| Change {
                kind: ChangeType::Deleted,
                resource_version: rv,
                object: removed,
                previous: None,
                event: None,
            });
        }
        Ok(Some(object))
    }

    /// The newest resourceVersion handed out (what a list made now is consistent with).
    pub fn current_resource_version(&self) -> Result<u64, StoreError> {
        let v: i64 = self.db.query_row(
            "SELECT value FROM counters WHERE name = 'resource_version'",
            [],
            |r| r.get(0),
        )?;
        Ok(v as u64)
    }

    /// Every event with the object it is about, in the order they were first recorded.
    pub fn event_records(&self) -> Result<Vec<EventRecord>, StoreError> {
        let mut stmt = self.db.prepare_cached(
            "SELECT id, object_uid, resource_version, kind, reason, message, source, count, first_seen, last_seen
             FROM events ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, String>(9)?,
            ))
        })?;
        let mut records = Vec::new();
        for row in rows {
            let (id, object_uid, rv, kind, reason, message, source, count, first, last) = row?;
            records.push(EventRecord {
                id: id as u64,
                object_uid,
                resource_version: rv as u64,
                event: StoredEvent {
                    kind,
                    reason,
                    message,
                    source,
                    count: count as u64,
                    first_seen: parse_time(&first)?,
                    last_seen: parse_time(&last)?,
                },
            });
        }
        Ok(records)
    }

    /// Records an event; a repeat of the last event (same reason and message) bumps its count.
    /// Either way the event gets a fresh resourceVersion, so lists and watches order it.
    pub fn record_event(
        &mut self,
        object: &StoredObject,
        kind: &str,
        reason: &str,
        message: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let at = now;
        let now = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let tx = self.db.transaction()?;
        let rv = Self::next_resource_version(&tx)? as i64;
        type Last = (i64, String, String, i64, String, String, String);
        let last: Option<Last> = tx
            .query_row(
                "SELECT id, reason, message, count, first_seen, kind, source FROM events WHERE object_uid = ?1 ORDER BY id DESC LIMIT 1",
                params![object.uid],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
            )
            .optional()?;
        // A repeat keeps the row's type and source; the published event shows the row.
        let (id, count, first_seen, kind, source, change) = match last {
            Some((id, r, m, count, first_seen, stored_kind, stored_source))
                if r == reason && m == message =>
            {
                tx.execute(
                    "UPDATE events SET count = count + 1, last_seen = ?2, resource_version = ?3 WHERE id = ?1",
                    params![id, now, rv],
                )?;
                let first_seen = crate::object::parse_timestamp(&first_seen).unwrap_or(at);
                (
                    id,
                    count as u64 + 1,
                    first_seen,
                    stored_kind,
                    stored_source,
                    ChangeType::Modified,
                )
            }
            _ => {
                tx.execute(
                    "INSERT INTO events (object_uid, kind, reason, message, source, count, first_seen, last_seen, resource_version)
                     VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6, ?7)",
                    params![object.uid, kind, reason, message, source, now, rv],
                )?;
                let id = tx.last_insert_rowid();
                tx.execute(
                    "DELETE FROM events WHERE object_uid = ?1 AND id NOT IN
                        (SELECT id FROM events WHERE object_uid = ?1 ORDER BY id DESC LIMIT ?2)",
                    params![object.uid, EVENTS_PER_OBJECT],
                )?;
                (
                    id,
                    1,
                    at,
                    kind.to_string(),
                    source.to_string(),
                    ChangeType::Added,
                )
            }
        };
        tx.commit()?;
        self.publish(|| Change {
            kind: change,
            resource_version: rv as u64,
            // Only what names the event's object: the watch history must not keep a whole
            // version of it alive once the store has moved on.
            object: Arc::new(StoredObject::new(
                object.kind,
                &object.namespace,
                &object.name,
                &object.uid,
                object.created_at,
            )),
            previous: None,
            event: Some(Arc::new(EventRecord {
                id: id as u64,
                object_uid: object.uid.clone(),
                resource_version: rv as u64,
                event: StoredEvent {
                    kind,
                    reason: reason.to_string(),
                    message: message.to_string(),
                    source,
                    count,
                    first_seen,
                    last_seen: at,
                },
            })),
        });
        Ok(())
    }

    /// Events of an object, oldest first.
    pub fn events(&self, uid: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let mut stmt = self.db.prepare_cached(
            "SELECT kind, reason, message, source, count, first_seen, last_seen FROM events
             WHERE object_uid = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![uid], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        let mut events = Vec::new();
        for row in rows {
            let (kind, reason, message, source, count, first, last) = row?;
            events.push(StoredEvent {
                kind,
                reason,
                message,
                source,
                count: count as u64,
                first_seen: parse_time(&first)?,
                last_seen: parse_time(&last)?,
            });
        }
        Ok(events)
    }

    /// Records `template` (by its hash) as the newest revision of an owner, returning its
    /// revision number. A template seen before moves to the front with a new number, as
    /// Kubernetes does on rollback.
    pub fn record_revision(
        &mut self,
        owner_uid: &str,
        hash: &str,
        template: &Value,
    ) -> Result<u64, StoreError> {
        let tx = self.db.transaction()?;
        let newest: Option<(i64, String)> = tx
            .query_row(
                "SELECT revision, hash FROM revisions WHERE owner_uid = ?1 ORDER BY revision DESC LIMIT 1",
                params![owner_uid],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((revision, newest_hash)) = &newest {
            if newest_hash == hash {
                return Ok(*revision as u64);
            }
        }
        let revision = newest.map_or(1, |(r, _)| r + 1);
        tx.execute(
            "INSERT INTO revisions (owner_uid, revision, hash, template) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (owner_uid, hash) DO UPDATE SET revision = excluded.revision",
            params![owner_uid, revision, hash, to_json(template)],
        )?;
        tx.commit()?;
        Ok(revision as u64)
    }

    /// An owner's revisions, oldest first: (revision, hash, template).
    pub fn revisions(&self, owner_uid: &str) -> Result<Vec<(u64, String, Value)>, StoreError> {
        let mut stmt = self.db.prepare_cached(
            "SELECT revision, hash, template FROM revisions WHERE owner_uid = ?1 ORDER BY revision",
        )?;
        let rows = stmt.query_map(params![owner_uid], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut revisions = Vec::new();
        for row in rows {
            let (revision, hash, template) = row?;
            let template =
                serde_json::from_str(&template).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            revisions.push((revision, hash, template));
        }
        Ok(revisions)
    }

    /// Keeps the newest `keep` revisions of an owner (plus the current one).
    pub fn prune_revisions(&mut self, owner_uid: &str, keep: u64) -> Result<(), StoreError> {
        self.db.execute(
            "DELETE FROM revisions WHERE owner_uid = ?1 AND revision NOT IN
                (SELECT revision FROM revisions WHERE owner_uid = ?1 ORDER BY revision DESC LIMIT ?2)",
            params![owner_uid, (keep + 1) as i64],
        )?;
        Ok(())
    }

    /// Forgets every revision of an owner.
    pub fn delete_revisions(&mut self, owner_uid: &str) -> Result<(), StoreError> {
        self.db.execute(
            "DELETE FROM revisions WHERE owner_uid = ?1",
            params![owner_uid],
        )?;
        Ok(())
    }

    /// Records Job results; a pod already recorded keeps its first result (idempotent).
    pub fn record_job_results(
        &mut self,
        job_uid: &str,
        entries: &[crate::reconcile::job::LedgerEntry],
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let tx = self.db.transaction()?;
        for e in entries {
            tx.execute(
                "INSERT OR IGNORE INTO job_results (job_uid, pod_uid, pod_index, outcome, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    job_uid,
                    e.pod_uid,
                    e.index.map(i64::from),
                    format!("{:?}", e.outcome),
                    e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A Job's recorded results.
    pub fn job_results(
        &self,
        job_uid: &str,
    ) -> Result<Vec<crate::reconcile::job::LedgerEntry>, StoreError> {
        use crate::reconcile::job::{LedgerEntry, Outcome};
        let mut stmt = self.db.prepare_cached(
            "SELECT pod_uid, pod_index, outcome, at FROM job_results WHERE job_uid = ?1",
        )?;
        let rows = stmt.query_map(params![job_uid], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut entries = Vec::new();
        for row in rows {
            let (pod_uid, index, outcome, at) = row?;
            let outcome = match outcome.as_str() {
                "Succeeded" => Outcome::Succeeded,
                "Failed" => Outcome::Failed,
                "Ignored" => Outcome::Ignored,
                "FailJob" => Outcome::FailJob,
                "FailIndex" => Outcome::FailIndex,
                "Superseded" => Outcome::Superseded,
                other => return Err(StoreError::Corrupt(format!("job result outcome {other}"))),
            };
            entries.push(LedgerEntry {
                pod_uid,
                index: index.map(|i| i as u32),
                outcome,
                at: parse_time(&at)?,
            });
        }
        Ok(entries)
    }

    /// Forgets a Job's results (when the Job is deleted).
    pub fn delete_job_results(&mut self, job_uid: &str) -> Result<(), StoreError> {
        let tx = self.db.transaction()?;
        tx.execute(
            "DELETE FROM job_results WHERE job_uid = ?1",
            params![job_uid],
        )?;
        tx.execute(
            "DELETE FROM superseded_results WHERE job_uid = ?1",
            params![job_uid],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Notes that a pod's late result was superseded; true the first time, so it is
    /// reported once.
    pub fn record_superseded(&mut self, job_uid: &str, pod_uid: &str) -> Result<bool, StoreError> {
        let added = self.db.execute(
            "INSERT OR IGNORE INTO superseded_results (job_uid, pod_uid) VALUES (?1, ?2)",
            params![job_uid, pod_uid],
        )?;
        Ok(added > 0)
    }

    /// The last published desired-state payload of every node.
    pub fn desired_states(&self) -> Result<Vec<(String, u64, Vec<u8>)>, StoreError> {
        let mut stmt = self
            .db
            .prepare_cached("SELECT node, generation, payload FROM desired ORDER BY node")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The desired-state generation and payload of one node.
    pub fn desired_state(&self, node: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        Ok(self
            .db
            .query_row(
                "SELECT generation, payload FROM desired WHERE node = ?1",
                params![node],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .optional()?)
    }

    /// Records the desired-state payload published for a node.
    pub fn set_desired_state(
        &mut self,
        node: &str,
        generation: u64,
        payload: &[u8],
    ) -> Result<(), StoreError> {
        self.db.execute(
            "INSERT INTO desired (node, generation, payload) VALUES (?1, ?2, ?3)
             ON CONFLICT (node) DO UPDATE SET generation = excluded.generation, payload = excluded.payload",
            params![node, generation as i64, payload],
        )?;
        Ok(())
    }

    /// Forgets a node's desired state.
    pub fn remove_desired_state(&mut self, node: &str) -> Result<(), StoreError> {
        self.db
            .execute("DELETE FROM desired WHERE node = ?1", params![node])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn pod(name: &str) -> StoredObject {
        StoredObject {
            kind: Kind::Pod,
            namespace: "default".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            resource_version: 0,
            generation: 1,
            labels: BTreeMap::from([("app".into(), "web".into())]),
            annotations: BTreeMap::new(),
            owner_references: Value::Array(vec![]),
            managed_fields: serde_json::Value::Null,
            spec: serde_json::json!({"containers": []}),
            status: Value::Null,
            created_at: Utc::now(),
            deletion_timestamp: None,
            agent_revision: 0,
        }
    }

    #[test]
    fn database_wal_and_shm_files_are_private() {
        use drover_agent::private_fs::mode_of;
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.put(&pod("a")).unwrap();
        for name in ["drover.db", "drover.db-wal", "drover.db-shm"] {
            let path = dir.path().join(name);
            assert!(path.exists(), "{name} exists while the store is open");
            assert_eq!(mode_of(&path), 0o600, "{name}");
        }
    }

    #[test]
    fn an_older_world_readable_database_is_made_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drover.db");
        drop(Store::open(dir.path()).unwrap());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.put(&pod("a")).unwrap();
        assert_eq!(drover_agent::private_fs::mode_of(&path), 0o600);
        let wal = dir.path().join("drover.db-wal");
        assert_eq!(drover_agent::private_fs::mode_of(&wal), 0o600);
    }

    #[test]
    fn put_get_list_delete() {
        let mut store = Store::in_memory().unwrap();
        let a = store.put(&pod("a")).unwrap();
        let b = store.put(&pod("b")).unwrap();
        assert!(b.resource_version > a.resource_version);
        let got = store.get(Kind::Pod, "default", "a").unwrap().unwrap();
        assert_eq!(got.labels["app"], "web");
        assert_eq!(store.get_by_uid("uid-a").unwrap().unwrap().name, "a");
        assert_eq!(got.resource_version, a.resource_version);
        assert_eq!(store.list(Kind::Pod, None).unwrap().len(), 2);
        assert_eq!(store.list(Kind::Pod, Some("other")).unwrap().len(), 0);
        assert!(store.delete(Kind::Pod, "default", "a").unwrap().is_some());
        assert!(store.get(Kind::Pod, "default", "a").unwrap().is_none());
        let c = store.put(&pod("c")).unwrap();
        assert!(
            c.resource_version > b.resource_version + 1,
            "delete also advances the counter"
        );
    }

    #[test]
    fn repeated_events_are_counted_and_history_is_bounded() {
        let mut store = Store::in_memory().unwrap();
        let a = store.put(&pod("a")).unwrap();
        let now = Utc::now();
        store
            .record_event(&a, "Normal", "NodeReady", "ready", "drover", now)
            .unwrap();
        store
            .record_event(&a, "Normal", "NodeReady", "ready", "drover", now)
            .unwrap();
        store
            .record_event(&a, "Warning", "NodeNotReady", "gone", "drover", now)
            .unwrap();
        let events = store.events(&a.uid).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].count, 2);
        for i in 0..100 {
            store
                .record_event(&a, "Normal", "X", &i.to_string(), "drover", now)
                .unwrap();
        }
        assert_eq!(
            store.events(&a.uid).unwrap().len(),
            EVENTS_PER_OBJECT as usize
        );
    }

    #[test]
    fn revisions_number_templates_and_move_a_reused_one_to_the_front() {
        let mut store = Store::in_memory().unwrap();
        let a = serde_json::json!({"a": 1});
        let b = serde_json::json!({"b": 1});
        assert_eq!(store.record_revision("ds", "ha", &a).unwrap(), 1);
        assert_eq!(store.record_revision("ds", "ha", &a).unwrap(), 1);
        assert_eq!(store.record_revision("ds", "hb", &b).unwrap(), 2);
        assert_eq!(
            store.record_revision("ds", "ha", &a).unwrap(),
            3,
            "rollback makes a new revision"
        );
        let revisions = store.revisions("ds").unwrap();
        assert_eq!(
            revisions
                .iter()
                .map(|r| (r.0, r.1.as_str()))
                .collect::<Vec<_>>(),
            vec![(2, "hb"), (3, "ha")]
        );
        for i in 0..10 {
            store.record_revision("ds", &format!("h{i}"), &a).unwrap();
        }
        store.prune_revisions("ds", 3).unwrap();
        assert_eq!(store.revisions("ds").unwrap().len(), 4);
    }

    #[test]
    fn job_results_are_recorded_once_per_pod() {
        use crate::reconcile::job::{LedgerEntry, Outcome};
        let mut store = Store::in_memory().unwrap();
        let entry = |pod: &str, outcome| LedgerEntry {
            pod_uid: pod.into(),
            index: Some(2),
            outcome,
            at: Utc::now(),
        };
        store
            .record_job_results("job", &[entry("p1", Outcome::Succeeded)])
            .unwrap();
        store
            .record_job_results(
                "job",
                &[entry("p1", Outcome::Failed), entry("p2", Outcome::Ignored)],
            )
            .unwrap();
        let results = store.job_results("job").unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(
            results.iter().find(|e| e.pod_uid == "p1").unwrap().outcome,
            Outcome::Succeeded
        );
        store.delete_job_results("job").unwrap();
        assert!(store.job_results("job").unwrap().is_empty());
    }

    #[test]
    fn a_row_changed_behind_the_stores_back_is_named_at_open_and_dropped_on_repair() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = Store::open(dir.path()).unwrap();
            store.put(&pod("a")).unwrap();
            store.put(&pod("b")).unwrap();
        }
        // Still valid JSON, so only the checksum can tell (as with a flipped bit that
        // turns one phase into another).
        let db = Connection::open(dir.path().join("drover.db")).unwrap();
        db.execute(
            "UPDATE objects SET status = status || ' ' WHERE name = 'a'",
            [],
        )
        .unwrap();
        drop(db);
        let err = Store::open(dir.path()).err().expect("refused");
        assert!(
            matches!(&err, StoreError::Damaged { name, namespace, .. } if name == "a" && namespace == "default"),
            "{err}"
        );
        assert!(err.to_string().contains("--repair-store"), "{err}");
        let store = Store::open_with(dir.path(), true).unwrap();
        assert!(store.get(Kind::Pod, "default", "a").unwrap().is_none());
        assert!(store.get(Kind::Pod, "default", "b").unwrap().is_some());
        drop(store);
        // Dropped for good: the next start is clean.
        assert!(Store::open(dir.path()).is_ok());
    }

    #[test]
    fn rows_written_before_checksums_are_read_and_checked_once_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = Store::open(dir.path()).unwrap();
            store.put(&pod("old")).unwrap();
        }
        let db = Connection::open(dir.path().join("drover.db")).unwrap();
        db.execute("UPDATE objects SET checksum = NULL", [])
            .unwrap();
        drop(db);
        let mut store = Store::open(dir.path()).unwrap();
        let old = store.get(Kind::Pod, "default", "old").unwrap().unwrap();
        store.put(&old).unwrap();
        drop(store);
        let db = Connection::open(dir.path().join("drover.db")).unwrap();
        let checksum: Option<i64> = db
            .query_row("SELECT checksum FROM objects", [], |r| r.get(0))
            .unwrap();
        assert!(checksum.is_some());
    }

    #[test]
    fn a_lost_write_ahead_log_is_reported() {
        let live = tempfile::tempdir().unwrap();
        let mut store = Store::open(live.path()).unwrap();
        store.put(&pod("last")).unwrap();
        // What a crash leaves: the database, its log and the log's index, copied while open.
        let crashed = tempfile::tempdir().unwrap();
        for file in ["drover.db", "drover.db-wal", "drover.db-shm"] {
            std::fs::copy(live.path().join(file), crashed.path().join(file)).unwrap();
        }
        drop(store);
        let recovered = Store::open(crashed.path()).expect("a crash alone loses nothing");
        assert!(recovered
            .get(Kind::Pod, "default", "last")
            .unwrap()
            .is_some());
        // The same, with the log removed.
        let lost = tempfile::tempdir().unwrap();
        let mut store = Store::open(live.path()).unwrap();
        store.put(&pod("newer")).unwrap();
        for file in ["drover.db", "drover.db-shm"] {
            std::fs::copy(live.path().join(file), lost.path().join(file)).unwrap();
        }
        drop(store);
        let err = Store::open(lost.path()).err().expect("refused");
        assert!(matches!(err, StoreError::LostWal { .. }), "{err}");
        if let Err(e) = Store::open_with(lost.path(), true) {
            panic!("{e}");
        }
        assert!(Store::open(lost.path()).is_ok(), "repaired for good");
    }

    #[test]
    fn events_take_resource_versions_and_older_stores_gain_the_column() {
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, object_uid TEXT NOT NULL,
                kind TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL, source TEXT NOT NULL,
                count INTEGER NOT NULL, first_seen TEXT NOT NULL, last_seen TEXT NOT NULL);",
        )
        .unwrap();
        let mut store = Store::load(db, false).unwrap();
        let a = store.put(&pod("a")).unwrap();
        let now = Utc::now();
        store
            .record_event(&a, "Normal", "R", "m", "drover", now)
            .unwrap();
        let first = store.event_records().unwrap()[0].resource_version;
        assert!(first > a.resource_version);
        assert_eq!(store.current_resource_version().unwrap(), first);
        store
            .record_event(&a, "Normal", "R", "m", "drover", now)
            .unwrap();
        let bumped = &store.event_records().unwrap()[0];
        assert_eq!(bumped.event.count, 2);
        assert!(bumped.resource_version > first, "a repeat takes a new one");
        assert_eq!(bumped.object_uid, a.uid);
    }

    #[test]
    fn data_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = Store::open(dir.path()).unwrap();
            store.put(&pod("a")).unwrap();
            store.set_desired_state("n1", 3, b"xyz").unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert!(store.get(Kind::Pod, "default", "a").unwrap().is_some());
        assert_eq!(
            store.desired_state("n1").unwrap(),
            Some((3, b"xyz".to_vec()))
        );
    }
}
