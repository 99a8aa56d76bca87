//! A DaemonSet's failure back-off survives a restart of the controller.

use super::*;
use crate::reconcile::clock::Mono;

#[test]
fn the_back_off_kept_in_the_store_is_loaded_with_what_remains_of_it() {
    let mut store = Store::in_memory().unwrap();
    // Three failures in a row: 4 s, the last at t(0).
    store.record_daemon_failures("ds1", "pi", 3, t(0)).unwrap();
    let (control, _, _, _) = control_with(store, t(1));
    let backoff = control.ds_backoff["ds1"]["pi"];
    assert_eq!(backoff.failures, 3);
    assert_eq!(
        backoff.retry_at,
        Mono::following_wall(t(4)),
        "3 s of the 4 s remain after 1 s"
    );
    assert_eq!(
        control.ds_wake,
        Some(backoff.retry_at),
        "and the loop wakes then"
    );
}

#[test]
fn the_kept_back_off_moves_onto_the_monotonic_clock_when_it_comes() {
    let mut store = Store::in_memory().unwrap();
    store.record_daemon_failures("ds1", "pi", 3, t(0)).unwrap();
    let (mut control, _, _, _) = control_with(store, t(1));
    // The control loop's clock starts near zero, far from the wall clock's reading.
    let started = Mono::at(std::time::Duration::from_millis(7));
    control.set_monotonic(started);
    let remaining = std::time::Duration::from_secs(3);
    assert_eq!(
        control.ds_backoff["ds1"]["pi"].retry_at,
        started.plus(remaining)
    );
    assert_eq!(control.ds_wake, Some(started.plus(remaining)));
}
