//! The store's change feed: every committed write of an object or an event, in commit
//! order, handed to one sink (the API's watch hub). The store is written only by the control loop, so
//! publishing stays cheap: reference-counted objects and no rendering here.

use std::sync::Arc;

use super::{EventRecord, Store, StoreError, StoredObject};

/// What a write did to an object, as a Kubernetes watch event names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    /// The object is new.
    Added,
    /// The object existed and was replaced.
    Modified,
    /// The object is gone.
    Deleted,
}

impl ChangeType {
    /// The watch event's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One committed write.
#[derive(Debug, Clone)]
pub struct Change {
    /// What happened.
    pub kind: ChangeType,
    /// The write's resourceVersion. For a delete it is the delete's own, newer than the
    /// object's: Kubernetes gives a DELETED event's object the deletion's resourceVersion.
    pub resource_version: u64,
    /// The object after the write; for a delete, its last state.
    pub object: Arc<StoredObject>,
    /// The object before a modification, so a watcher whose selector it no longer (or
    /// only now) matches can be told DELETED (or ADDED).
    pub previous: Option<Arc<StoredObject>>,
    /// Set when what changed is an Event about `object` (a row of the events table,
    /// recorded or repeated), not `object` itself.
    pub event: Option<Arc<EventRecord>>,
}

/// Where the store hands its changes. Called on the control loop after each commit, so it
/// must not block.
pub trait ChangeSink: Send {
    /// Takes one change.
    fn publish(&self, change: Change);
}

impl Store {
    /// Hands every later write to `sink`, replacing any earlier sink.
    pub fn set_change_sink(&mut self, sink: Box<dyn ChangeSink>) {
        self.sink = Some(sink);
    }

    /// The newest resourceVersion handed out (by any write, published or not): a watch from
    /// here misses nothing.
    pub fn resource_version(&self) -> Result<u64, StoreError> {
        let v: i64 = self
            .db
            .prepare_cached("SELECT value FROM counters WHERE name = 'resource_version'")?
            .query_row([], |r| r.get(0))?;
        Ok(v as u64)
    }

    pub(super) fn publish(&self, change: impl FnOnce() -> Change) {
        if let Some(sink) = &self.sink {
            sink.publish(change());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::super::tests::pod;
    use super::*;
    use drover_proto::manifest::Kind;

    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Change>>>);

    impl ChangeSink for Recorder {
        fn publish(&self, change: Change) {
            if let Ok(mut changes) = self.0.lock() {
                changes.push(change);
            }
        }
    }

    fn summary(recorder: &Recorder) -> Vec<(ChangeType, String, u64, Option<u64>)> {
        recorder
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c.kind,
                    c.object.name.clone(),
                    c.resource_version,
                    c.previous.as_ref().map(|p| p.resource_version),
                )
            })
            .collect()
    }

    #[test]
    fn writes_are_published_in_commit_order_with_their_resource_versions() {
        let mut store = Store::in_memory().unwrap();
        let recorder = Recorder::default();
        store.set_change_sink(Box::new(recorder.clone()));
        let a1 = store.put(&pod("a")).unwrap();
        let a2 = store.put(&a1).unwrap();
        let b = store.put(&pod("b")).unwrap();
        store.delete(Kind::Pod, "default", "a").unwrap();
        assert!(store.delete(Kind::Pod, "default", "a").unwrap().is_none());
        let deleted_at = store.resource_version().unwrap();
        assert_eq!(
            summary(&recorder),
            vec![
                (ChangeType::Added, "a".into(), a1.resource_version, None),
                (
                    ChangeType::Modified,
                    "a".into(),
                    a2.resource_version,
                    Some(a1.resource_version)
                ),
                (ChangeType::Added, "b".into(), b.resource_version, None),
                (ChangeType::Deleted, "a".into(), deleted_at, None),
            ]
        );
        let changes = recorder.0.lock().unwrap();
        assert_eq!(
            changes[3].object.resource_version, a2.resource_version,
            "the deleted object is its last state; the change carries the delete's version"
        );
        assert!(deleted_at > b.resource_version);
    }

    #[test]
    fn a_store_without_a_sink_still_writes() {
        let mut store = Store::in_memory().unwrap();
        assert_eq!(store.resource_version().unwrap(), 0);
        store.put(&pod("a")).unwrap();
        assert_eq!(store.resource_version().unwrap(), 1);
    }

    #[test]
    fn an_event_is_published_added_then_modified_on_repeat_with_its_record() {
        let mut store = Store::in_memory().unwrap();
        let recorder = Recorder::default();
        let a = store.put(&pod("a")).unwrap();
        store.set_change_sink(Box::new(recorder.clone()));
        let now = chrono::Utc::now();
        store
            .record_event(&a, "Warning", "BackOff", "again", "drover", now)
            .unwrap();
        store
            .record_event(&a, "Warning", "BackOff", "again", "drover", now)
            .unwrap();
        let changes = recorder.0.lock().unwrap();
        assert_eq!(changes.len(), 2);
        let (first, second) = (&changes[0], &changes[1]);
        assert_eq!(
            (first.kind, second.kind),
            (ChangeType::Added, ChangeType::Modified)
        );
        let (r1, r2) = (
            first.event.as_ref().unwrap(),
            second.event.as_ref().unwrap(),
        );
        assert_eq!(r1.id, r2.id, "the same row");
        assert_eq!((r1.event.count, r2.event.count), (1, 2));
        assert_eq!(r2.resource_version, second.resource_version);
        assert!(first.resource_version > a.resource_version);
        assert!(second.resource_version > first.resource_version);
        assert_eq!(first.object.uid, a.uid, "about the object");
        assert_eq!(
            store.resource_version().unwrap(),
            second.resource_version,
            "nothing else took a version"
        );
    }
}
