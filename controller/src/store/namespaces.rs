//! Namespaces created through the API. Namespaces objects live in need no record: the API
//! derives them; a record adds labels and lets an empty namespace exist.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{parse_time, to_json, Store, StoreError};

/// A created namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredNamespace {
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
    /// Changes with every write.
    pub resource_version: u64,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Every created namespace, by name.
    pub fn namespaces(&self) -> Result<Vec<StoredNamespace>, StoreError> {
        let mut stmt = self.db.prepare_cached(
            "SELECT name, uid, resource_version, labels, created_at FROM namespaces ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut namespaces = Vec::new();
        for row in rows {
            let (name, uid, rv, labels, created) = row?;
            namespaces.push(StoredNamespace {
                name,
                uid,
                resource_version: rv as u64,
                labels: serde_json::from_str(&labels)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                created_at: parse_time(&created)?,
            });
        }
        Ok(namespaces)
    }

    /// Creates or replaces a namespace record with a fresh resourceVersion.
    pub fn put_namespace(
        &mut self,
        namespace: &StoredNamespace,
    ) -> Result<StoredNamespace, StoreError> {
        let tx = self.db.transaction()?;
        let rv = Self::next_resource_version(&tx)?;
        tx.execute(
            "INSERT INTO namespaces (name, uid, resource_version, labels, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (name) DO UPDATE SET resource_version = excluded.resource_version,
                labels = excluded.labels",
            params![
                namespace.name,
                namespace.uid,
                rv as i64,
                to_json(&namespace.labels),
                namespace
                    .created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ],
        )?;
        tx.commit()?;
        Ok(StoredNamespace {
            resource_version: rv,
            ..namespace.clone()
        })
    }

    /// Forgets a namespace record; whether there was one.
    pub fn delete_namespace(&mut self, name: &str) -> Result<bool, StoreError> {
        let tx = self.db.transaction()?;
        Self::next_resource_version(&tx)?;
        let deleted = tx.execute("DELETE FROM namespaces WHERE name = ?1", params![name])?;
        tx.commit()?;
        Ok(deleted > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_created_relabelled_and_deleted() {
        let mut store = Store::in_memory().unwrap();
        let ns = StoredNamespace {
            name: "team".into(),
            uid: "u".into(),
            resource_version: 0,
            labels: BTreeMap::from([("a".into(), "1".into())]),
            created_at: Utc::now(),
        };
        let first = store.put_namespace(&ns).unwrap();
        let second = store
            .put_namespace(&StoredNamespace {
                labels: BTreeMap::new(),
                ..ns
            })
            .unwrap();
        assert!(second.resource_version > first.resource_version);
        let listed = store.namespaces().unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].labels.is_empty());
        assert!(store.delete_namespace("team").unwrap());
        assert!(!store.delete_namespace("team").unwrap());
    }
}
