//! The periodic resync and the per-object error back-off: a missed trigger heals by
//! itself, and an object that fails to reconcile is tried again on a doubling schedule.

use serde_json::{json, Value};

use super::*;
use crate::reconcile::backoff::RETRY_INITIAL;
use crate::store::StoredObject;

fn ms(millis: i64) -> DateTime<Utc> {
    t(0) + chrono::Duration::milliseconds(millis)
}

/// A Job written to the store directly: no trigger tells the controllers about it.
fn stored_job(h: &mut Harness, name: &str, spec: Value) -> String {
    let job = StoredObject {
        spec,
        ..StoredObject::new(Kind::Job, "default", name, format!("uid-{name}"), t(0))
    };
    h.control.store.put(&job).unwrap().uid
}

fn valid_spec() -> Value {
    json!({"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "command": ["true"]}]}}})
}

fn pods(h: &Harness) -> usize {
    h.control.store.list(Kind::Pod, None).unwrap().len()
}

#[test]
fn a_job_no_trigger_announced_gets_its_pod_at_the_next_resync_and_never_without_one() {
    for (period, expected) in [(Duration::from_secs(30), 1), (Duration::ZERO, 0)] {
        let mut h = harness();
        h.control.settings.resync_period = period;
        h.control.tick(t(0));
        stored_job(&mut h, "missed", valid_spec());
        h.control.tick(t(1));
        h.control.tick(t(29));
        assert_eq!(pods(&h), 0, "no input, no resync yet");
        h.control.tick(t(30));
        h.control.tick(t(3600));
        assert_eq!(pods(&h), expected, "resync period {period:?}");
    }
}

#[test]
fn an_object_that_fails_to_reconcile_is_retried_with_doubling_delays_until_it_succeeds() {
    let mut h = harness();
    h.control.settings.resync_period = Duration::ZERO;
    let uid = stored_job(&mut h, "broken", json!({"template": 5}));
    h.control.settle(ms(0));
    let failures = |h: &Harness| h.control.retries.get(&uid).map(|r| r.failures);
    assert_eq!(failures(&h), Some(1));
    assert_eq!(RETRY_INITIAL, Duration::from_millis(500));
    // Tried again at 0.5 s, then 1 s later, then 2 s later: not in between.
    for (at, expected) in [
        (250, 1),
        (500, 2),
        (1_000, 2),
        (1_499, 2),
        (1_500, 3),
        (3_000, 3),
        (3_500, 4),
    ] {
        h.control.tick(ms(at));
        assert_eq!(failures(&h), Some(expected), "at {at} ms");
    }
    // Repaired (with no trigger): its next retry reconciles it, and the back-off is gone.
    let mut job = h
        .control
        .store
        .get(Kind::Job, "default", "broken")
        .unwrap()
        .unwrap();
    job.spec = valid_spec();
    h.control.store.put(&job).unwrap();
    h.control.tick(ms(5_000));
    assert_eq!(pods(&h), 0, "not due before 3.5 s + 4 s");
    h.control.tick(ms(7_500));
    assert_eq!(failures(&h), None);
    assert_eq!(pods(&h), 1);
}

#[test]
fn the_back_off_of_an_object_that_is_gone_is_forgotten() {
    let mut h = harness();
    h.control.settings.resync_period = Duration::ZERO;
    let uid = stored_job(&mut h, "broken", json!({"template": 5}));
    h.control.settle(ms(0));
    assert!(h.control.retries.get(&uid).is_some());
    h.control
        .store
        .delete(Kind::Job, "default", "broken")
        .unwrap();
    h.control.tick(ms(100));
    assert!(h.control.retries.get(&uid).is_none());
}
