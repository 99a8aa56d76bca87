//! Wall-clock steps on the controller (libfaketime, as NTP correcting a clock would step it:
//! the monotonic clock goes on): an hour ahead or back flaps no node, and a node that goes
//! silent is still noticed within its grace period. Needs Debian's `faketime`.

use std::path::Path;
use std::time::Duration;

use drover_e2e::*;

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// libfaketime's settings for a clock offset read from `file` at every call.
fn faketime_env(file: &Path) -> Vec<(String, String)> {
    assert!(
        Path::new(LIBFAKETIME).exists(),
        "libfaketime is needed: apt-get install faketime"
    );
    vec![
        ("LD_PRELOAD".into(), LIBFAKETIME.into()),
        ("FAKETIME_TIMESTAMP_FILE".into(), file.display().to_string()),
        ("FAKETIME_NO_CACHE".into(), "1".into()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
    ]
}

fn step_clock(file: &Path, offset: &str) {
    std::fs::write(file, format!("{offset}\n")).unwrap();
}

#[test]
fn controller_clock_steps_flap_no_node_and_hide_no_silent_one() {
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("faketime");
    step_clock(&clock, "+0");
    let server = Server::start(
        dir.path(),
        ServerOptions {
            disable_agent: true,
            env: faketime_env(&clock),
            ..Default::default()
        },
    );
    let agent = server.join(dir.path(), "edge", &[]);
    let ready = || server.ready_status("edge").as_deref() == Some("True");

    step_clock(&clock, "+1h");
    holds_for("Ready after a step an hour ahead", GRACE * 2, ready);
    step_clock(&clock, "-1h");
    holds_for("Ready after a step an hour back", GRACE * 2, ready);

    // Frozen with its connection open, the agent is noticed by the grace period alone.
    agent.proc.signal("STOP");
    let took = server.wait_ready_status("edge", "Unknown", GRACE + Duration::from_secs(3));
    assert!(
        took >= GRACE - Duration::from_secs(1),
        "went Unknown too early: {took:?}"
    );
    agent.proc.signal("CONT");
    server.wait_ready_status("edge", "True", Duration::from_secs(5));
}
