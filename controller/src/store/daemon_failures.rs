//! Failed daemon pods per DaemonSet and node: how many in a row, and when the last one
//! failed, so the replacement back-off survives a controller restart (a pod that crashes at
//! once is not replaced in a tight loop because the controller started again).

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{parse_time, Store, StoreError};

/// Failures of the daemon pods of one DaemonSet on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonFailures {
    /// The DaemonSet's UID.
    pub ds_uid: String,
    /// The node.
    pub node: String,
    /// Failures in a row.
    pub failures: u32,
    /// When the last one was seen.
    pub failed_at: DateTime<Utc>,
}

impl Store {
    /// Records the count of failures in a row on `node`, the last at `at`.
    pub fn record_daemon_failures(
        &mut self,
        ds_uid: &str,
        node: &str,
        failures: u32,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.db
            .prepare_cached(
                "INSERT INTO daemon_failures (ds_uid, node, failures, failed_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (ds_uid, node) DO UPDATE SET failures = excluded.failures, failed_at = excluded.failed_at",
            )?
            .execute(params![ds_uid, node, failures, crate::object::timestamp(at)])?;
        Ok(())
    }

    /// Forgets the failures on `node` (its pod ran).
    pub fn clear_daemon_failures(&mut self, ds_uid: &str, node: &str) -> Result<(), StoreError> {
        self.db
            .prepare_cached("DELETE FROM daemon_failures WHERE ds_uid = ?1 AND node = ?2")?
            .execute(params![ds_uid, node])?;
        Ok(())
    }

    /// Forgets every failure of a DaemonSet (it is gone).
    pub fn delete_daemon_failures(&mut self, ds_uid: &str) -> Result<(), StoreError> {
        self.db
            .prepare_cached("DELETE FROM daemon_failures WHERE ds_uid = ?1")?
            .execute(params![ds_uid])?;
        Ok(())
    }

    /// Every recorded failure count.
    pub fn daemon_failures(&self) -> Result<Vec<DaemonFailures>, StoreError> {
        let mut stmt = self
            .db
            .prepare_cached("SELECT ds_uid, node, failures, failed_at FROM daemon_failures")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (ds_uid, node, failures, failed_at) = row?;
            out.push(DaemonFailures {
                ds_uid,
                node,
                failures,
                failed_at: parse_time(&failed_at)?,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_recorded_replaced_cleared_and_kept_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let at = parse_time("2026-01-01T00:00:00Z").unwrap();
        {
            let mut store = Store::open(dir.path()).unwrap();
            store.record_daemon_failures("ds1", "a", 1, at).unwrap();
            store.record_daemon_failures("ds1", "a", 2, at).unwrap();
            store.record_daemon_failures("ds1", "b", 1, at).unwrap();
            store.record_daemon_failures("ds2", "a", 5, at).unwrap();
            store.clear_daemon_failures("ds1", "b").unwrap();
            store.delete_daemon_failures("ds2").unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.daemon_failures().unwrap(),
            [DaemonFailures {
                ds_uid: "ds1".into(),
                node: "a".into(),
                failures: 2,
                failed_at: at,
            }]
        );
    }
}
