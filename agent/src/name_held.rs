//! An agent that stood down for another running as its node: the mark it leaves in its data
//! directory, so that it does not start again (at the next boot, say) and run the node's pods
//! beside the other until it is refused once more.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The exit status of an agent that stood down (`EX_CONFIG`): the systemd unit does not
/// restart it.
pub const EXIT_NAME_HELD: u8 = 78;

/// The mark's file in the data directory.
pub const MARK_FILE: &str = "name-held";

/// Another agent holds this node's name; this one stopped its pods (or, at start, found the
/// mark of having done so).
#[derive(Debug)]
pub struct NameHeld {
    /// Why, as the agent found it (the broker refused the node's client id that long).
    pub reason: String,
    /// The mark that keeps this agent from starting, to remove once the other is gone.
    pub mark: PathBuf,
}

impl std::fmt::Display for NameHeld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "another agent runs as this node ({}): this agent stopped its pods and will not start again while {} exists; stop the other agent and remove that file, or give this device its own node name and data directory",
            self.reason,
            self.mark.display()
        )
    }
}

impl std::error::Error for NameHeld {}

/// Leaves the mark, with the reason; `Err` with what to report.
pub fn mark(data_dir: &Path, reason: &str) -> NameHeld {
    let mark = data_dir.join(MARK_FILE);
    let written = crate::private_fs::create_file(&mark).and_then(|mut file| {
        writeln!(file, "{reason}")?;
        file.sync_all()
    });
    if let Err(e) = written {
        tracing::warn!(path = %mark.display(), error = %e, "cannot leave the stand-down mark; this agent may start again at the next boot");
    }
    NameHeld {
        reason: reason.to_string(),
        mark,
    }
}

/// The mark an earlier run left, if any.
pub fn check(data_dir: &Path) -> Result<(), NameHeld> {
    let mark = data_dir.join(MARK_FILE);
    match std::fs::read_to_string(&mark) {
        Ok(reason) => Err(NameHeld {
            reason: reason.trim().to_string(),
            mark,
        }),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_keeps_the_agent_from_starting_until_it_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check(dir.path()).is_ok());
        let held = mark(dir.path(), "another agent is connected as node pi");
        assert_eq!(held.mark, dir.path().join(MARK_FILE));
        let found = check(dir.path()).unwrap_err();
        assert_eq!(found.reason, "another agent is connected as node pi");
        let said = found.to_string();
        assert!(
            said.starts_with(
                "another agent runs as this node (another agent is connected as node pi)"
            ),
            "{said}"
        );
        assert!(said.contains(&found.mark.display().to_string()), "{said}");
        assert_eq!(crate::private_fs::mode_of(&found.mark) & 0o077, 0);
        std::fs::remove_file(&found.mark).unwrap();
        assert!(check(dir.path()).is_ok());
    }
}
