//! Telling the service manager (systemd, `Type=notify`) how the process is doing: `READY=1`
//! once it serves, `WATCHDOG=1` at half of `WatchdogSec`, `STOPPING=1` on shutdown, and
//! `STATUS=` lines for `systemctl status`. Without `NOTIFY_SOCKET` every call does nothing.

use std::time::Duration;

use sd_notify::NotifyState;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "cannot notify the service manager");
    }
}

/// The process serves: `READY=1` with a status line.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A new status line.
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// The process is stopping.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// How often to ping the watchdog: half of `WatchdogSec`, when the service manager asks for
/// pings (and they are meant for this process).
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|timeout| timeout / 2)
}

/// Pings the watchdog from the caller's runtime for as long as it runs: a runtime that stops
/// making progress stops the pings, and the service manager restarts the process.
pub fn spawn_watchdog() {
    let Some(interval) = watchdog_interval() else {
        return;
    };
    tracing::info!(interval = ?interval, "pinging the systemd watchdog");
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        loop {
            ticker.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    });
}
