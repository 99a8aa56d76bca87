//! A pod's phase and its name in the API: the one place the four names are spelled.

use crate::msg::WirePhase;

/// A pod's phase (`status.phase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PodPhase {
    /// Accepted, not every container started yet (also: no phase recorded).
    Pending,
    /// At least one container runs or restarts.
    Running,
    /// Every container exited 0 and none will restart.
    Succeeded,
    /// Every container terminated, one non-zero, none will restart.
    Failed,
}

impl PodPhase {
    /// Every phase, in the order a pod goes through them.
    pub const ALL: [PodPhase; 4] = [
        PodPhase::Pending,
        PodPhase::Running,
        PodPhase::Succeeded,
        PodPhase::Failed,
    ];

    /// The phase's name in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            PodPhase::Pending => "Pending",
            PodPhase::Running => "Running",
            PodPhase::Succeeded => "Succeeded",
            PodPhase::Failed => "Failed",
        }
    }

    /// The phase an API name stands for; `None` for anything else.
    pub fn parse(name: &str) -> Option<PodPhase> {
        PodPhase::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// The phase a recorded `status.phase` stands for: no phase, or one this version does
    /// not know (Kubernetes' `Unknown`), is `Pending`, as a pod nothing has been heard of.
    pub fn of_recorded(name: Option<&str>) -> PodPhase {
        name.and_then(PodPhase::parse).unwrap_or(PodPhase::Pending)
    }

    /// Succeeded or Failed: the pod will not run again.
    pub const fn is_terminal(self) -> bool {
        matches!(self, PodPhase::Succeeded | PodPhase::Failed)
    }
}

impl std::fmt::Display for PodPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<WirePhase> for PodPhase {
    fn from(phase: WirePhase) -> PodPhase {
        match phase {
            WirePhase::Pending => PodPhase::Pending,
            WirePhase::Running => PodPhase::Running,
            WirePhase::Succeeded => PodPhase::Succeeded,
            WirePhase::Failed => PodPhase::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_phase() {
        for phase in PodPhase::ALL {
            assert_eq!(PodPhase::parse(phase.as_str()), Some(phase));
            assert_eq!(phase.to_string(), phase.as_str());
        }
        assert_eq!(PodPhase::parse("running"), None);
        assert_eq!(PodPhase::parse("Unknown"), None);
    }

    #[test]
    fn a_missing_or_unknown_phase_is_pending() {
        assert_eq!(PodPhase::of_recorded(None), PodPhase::Pending);
        assert_eq!(PodPhase::of_recorded(Some("Unknown")), PodPhase::Pending);
        assert_eq!(PodPhase::of_recorded(Some("Failed")), PodPhase::Failed);
    }

    #[test]
    fn only_succeeded_and_failed_are_terminal() {
        let terminal: Vec<PodPhase> = PodPhase::ALL
            .into_iter()
            .filter(|p| p.is_terminal())
            .collect();
        assert_eq!(terminal, [PodPhase::Succeeded, PodPhase::Failed]);
    }

    #[test]
    fn wire_phases_keep_their_meaning() {
        assert_eq!(PodPhase::from(WirePhase::Running), PodPhase::Running);
        assert_eq!(PodPhase::from(WirePhase::Failed), PodPhase::Failed);
    }
}
