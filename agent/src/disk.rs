//! Disk pressure: the agent's data directory holds every record and log, so when its
//! filesystem is nearly full the node stops starting pods (running ones keep running) and
//! says so in its description, which the controller turns into a `DiskPressure` condition.

use std::path::{Path, PathBuf};
use std::time::Duration;

use drover_proto::msg::NodeInfo;
use tokio::sync::{mpsc, watch};

use crate::pods::PodInput;

/// How often the free space is read.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Whether the node is under disk pressure, given the bytes available to the agent, the
/// minimum it wants free, and whether it was under pressure: it leaves pressure only with a
/// quarter more than the minimum free, so a disk at the edge does not flap.
pub fn under_pressure(available: u64, min_free: u64, was: bool) -> bool {
    if was {
        available < min_free.saturating_add(min_free / 4)
    } else {
        available < min_free
    }
}

/// Bytes available to unprivileged writers on the filesystem of `path`.
pub fn available(path: &Path) -> std::io::Result<u64> {
    let stat = nix::sys::statvfs::statvfs(path)?;
    Ok((stat.blocks_available() as u64).saturating_mul(stat.fragment_size() as u64))
}

/// Watches the free space of `data_dir`: tells the pod manager and updates the node's
/// description whenever pressure begins or ends.
pub async fn watch_pressure(
    data_dir: PathBuf,
    min_free: u64,
    info: watch::Sender<NodeInfo>,
    pods: mpsc::Sender<PodInput>,
) {
    let mut pressure = false;
    let mut ticker = tokio::time::interval(CHECK_EVERY);
    loop {
        ticker.tick().await;
        let now = match available(&data_dir) {
            Ok(bytes) => under_pressure(bytes, min_free, pressure),
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the data directory's free space");
                continue;
            }
        };
        if now == pressure {
            continue;
        }
        pressure = now;
        if pressure {
            tracing::warn!(dir = %data_dir.display(), min_free, "the data directory's disk is nearly full (DiskPressure): no new pod starts until there is space");
        } else {
            tracing::info!(dir = %data_dir.display(), "the data directory's disk has space again");
        }
        info.send_modify(|info| info.disk_pressure = pressure);
        if pods.send(PodInput::DiskPressure(pressure)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressure_begins_below_the_minimum_and_ends_with_a_margin() {
        let min = 1000;
        assert!(!under_pressure(1000, min, false));
        assert!(under_pressure(999, min, false));
        assert!(
            under_pressure(1100, min, true),
            "not yet: within the margin"
        );
        assert!(!under_pressure(1250, min, true));
        assert!(!under_pressure(0, 0, false), "no minimum, no pressure");
    }

    #[test]
    fn the_free_space_of_a_directory_is_read() {
        let dir = tempfile::tempdir().unwrap();
        assert!(available(dir.path()).is_ok());
    }
}
