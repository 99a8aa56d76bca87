//! Node readiness as a pure function of presence messages, heartbeats and time.
//!
//! - Online presence or a heartbeat → Ready.
//! - Clean shutdown → NotReady at once (`Ready=False`, taint `not-ready`).
//! - Connection lost (last will), or nothing heard for the grace period →
//!   `Ready=Unknown`, taint `unreachable`.
//!
//! Messages from an older session than the latest one seen are ignored, so a last will the
//! broker delivers late cannot mark a reconnected agent unreachable.

use drover_proto::phase::PodPhase;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::clock::Mono;
use drover_proto::msg::{Heartbeat, OfflineReason, Presence, PresenceState, Session};
use serde_json::{json, Value};

/// Taint key of a node whose agent cannot be reached.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// Taint key of a node whose agent reported it is not ready.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";

/// What the controller has heard from a node's agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Liveness {
    /// When the controller last heard from the agent (controller's wall clock, for users).
    pub last_heard: DateTime<Utc>,
    /// The same moment on the controller's monotonic clock, which silence is measured on.
    pub last_heard_at: Mono,
    /// The agent's connection as last reported.
    pub connection: Connection,
    /// The newest session seen.
    pub session: Option<Session>,
    /// The highest heartbeat sequence seen in that session: a replayed heartbeat (the
    /// broker can replay, though not forge, a signed one) does not count as the agent
    /// speaking.
    pub sequence: u64,
    /// The agent process of the newest online announcement taken (0: an agent too old to
    /// say).
    pub instance: Option<u64>,
}

/// The agent's connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Connected.
    Online,
    /// Stopped cleanly.
    ShutDown,
    /// The broker reported the connection lost.
    Lost,
}

/// The node's `Ready` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// `Ready=True`.
    Ready,
    /// `Ready=False`: the agent said it stopped.
    NotReady,
    /// `Ready=Unknown`: the agent went silent.
    Unknown(UnknownCause),
}

/// Why a node's state is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownCause {
    /// The broker delivered the agent's last will.
    ConnectionLost,
    /// No heartbeat within the grace period.
    SilentPastGrace,
}

impl Liveness {
    /// Liveness for a node known from the store but not heard from yet: it gets one grace
    /// period (from `now`, e.g. controller start) to speak up.
    pub fn assumed_alive(now: DateTime<Utc>, mono: Mono) -> Liveness {
        Liveness {
            last_heard: now,
            last_heard_at: mono,
            connection: Connection::Online,
            session: None,
            sequence: 0,
            instance: None,
        }
    }

    fn accepts(&mut self, session: Session) -> bool {
        match self.session {
            Some(newest) if session < newest => false,
            Some(newest) if session == newest => true,
            _ => {
                self.session = Some(session);
                self.sequence = 0;
                true
            }
        }
    }

    /// Applies a presence message; false when it was stale and ignored.
    pub fn on_presence(&mut self, presence: &Presence, now: DateTime<Utc>, mono: Mono) -> bool {
        if !self.accepts(presence.session) {
            return false;
        }
        match &presence.state {
            PresenceState::Online(info) => {
                self.instance = Some(info.agent_instance);
                self.connection = Connection::Online;
                self.last_heard = now;
                self.last_heard_at = mono;
            }
            PresenceState::Offline(OfflineReason::Shutdown) => {
                self.connection = Connection::ShutDown
            }
            PresenceState::Offline(OfflineReason::ConnectionLost) => {
                self.connection = Connection::Lost
            }
        }
        true
    }

    /// Whether `presence` comes from a second agent running under this node's name: an
    /// online announcement from an older agent start than the newest one seen, or from
    /// another agent process with the same start (a copy of a data directory made while its
    /// agent was stopped counts the same starts). A restarted agent's old process is gone
    /// and cannot announce itself after its successor; two agents that an external broker
    /// lets take each other's connection over do, in turn.
    pub fn name_conflict(&self, presence: &Presence) -> Option<Session> {
        let current = self.session?;
        let PresenceState::Online(info) = &presence.state else {
            return None;
        };
        let start = presence.session.agent_start;
        let twin = start == current.agent_start
            && info.agent_instance != 0
            && self
                .instance
                .is_some_and(|i| i != 0 && i != info.agent_instance);
        (start < current.agent_start || twin).then_some(current)
    }

    /// Applies a heartbeat; false when it was stale (an older session, a sequence number
    /// already seen, or a session that already ended) and ignored.
    pub fn on_heartbeat(&mut self, heartbeat: &Heartbeat, now: DateTime<Utc>, mono: Mono) -> bool {
        let ended =
            self.session == Some(heartbeat.session) && self.connection != Connection::Online;
        let replayed =
            self.session == Some(heartbeat.session) && heartbeat.sequence <= self.sequence;
        if ended || replayed || !self.accepts(heartbeat.session) {
            return false;
        }
        self.sequence = heartbeat.sequence;
        // Within one session, the broker forwards a heartbeat before any will or shutdown
        // notice that follows it, so an accepted heartbeat means the agent is connected.
        self.connection = Connection::Online;
        self.last_heard = now;
        self.last_heard_at = mono;
        true
    }

    /// The node's readiness at `now` (monotonic).
    pub fn readiness(&self, now: Mono, grace: Duration) -> Readiness {
        match self.connection {
            Connection::ShutDown => Readiness::NotReady,
            Connection::Lost => Readiness::Unknown(UnknownCause::ConnectionLost),
            Connection::Online => {
                let silent = now.since(self.last_heard_at);
                if silent > grace {
                    Readiness::Unknown(UnknownCause::SilentPastGrace)
                } else {
                    Readiness::Ready
                }
            }
        }
    }

    /// When readiness may next change without new messages (for timers).
    pub fn next_deadline(&self, grace: Duration) -> Option<Mono> {
        (self.connection == Connection::Online).then(|| self.last_heard_at.plus(grace))
    }
}

impl Readiness {
    /// The `Ready` condition's status, reason and message.
    pub fn condition(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Readiness::Ready => ("True", "AgentReady", "drover agent is posting ready status"),
            Readiness::NotReady => ("False", "AgentStopped", "drover agent stopped cleanly"),
            Readiness::Unknown(UnknownCause::ConnectionLost) => (
                "Unknown",
                "NodeStatusUnknown",
                "drover agent lost its connection to the broker",
            ),
            Readiness::Unknown(UnknownCause::SilentPastGrace) => (
                "Unknown",
                "NodeStatusUnknown",
                "drover agent stopped posting node status",
            ),
        }
    }

    /// The `NoExecute` taint the node carries in this state, if any.
    pub fn taint_key(self) -> Option<&'static str> {
        match self {
            Readiness::Ready => None,
            Readiness::NotReady => Some(TAINT_NOT_READY),
            Readiness::Unknown(_) => Some(TAINT_UNREACHABLE),
        }
    }
}

/// A pod's status as its node's readiness leaves it: on a node that is not Ready, the
/// `Ready` condition and every container's `ready` are false, as Kubernetes' node lifecycle
/// controller marks them (nobody can vouch for them); once it is Ready again, they are what
/// the agent reports — a running container is ready unless its pod is stopping — until its
/// next report says otherwise. Finished pods keep their status. None when nothing changes.
pub fn pod_status_for_node(status: &Value, node_ready: bool, terminating: bool) -> Option<Value> {
    let phase = status["phase"].as_str().and_then(PodPhase::parse);
    if phase.is_none_or(PodPhase::is_terminal) {
        return None;
    }
    let mut updated = status.clone();
    let mut all_ready = true;
    let mut any = false;
    for c in updated["containerStatuses"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        let ready = node_ready && !terminating && c["state"].get("running").is_some();
        c["ready"] = json!(ready);
        all_ready &= ready;
        any = true;
    }
    // Init containers are never made ready here (a running one may be a sidecar or one
    // still at work: the agent's next report tells), but one not ready holds the pod back.
    for c in updated
        .get_mut("initContainerStatuses")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if !node_ready || terminating {
            c["ready"] = json!(false);
        }
        if c["state"].get("running").is_some() && c["ready"] != true {
            all_ready = false;
        }
    }
    let ready = node_ready && any && all_ready;
    for c in updated["conditions"].as_array_mut().into_iter().flatten() {
        let restored = node_ready && c["type"] == "ContainersReady";
        if c["type"] == "Ready" || restored {
            c["status"] = json!(if ready { "True" } else { "False" });
        }
    }
    (updated != *status).then_some(updated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_proto::msg::NodeInfo;

    const GRACE: Duration = Duration::from_secs(40);

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn m(seconds: i64) -> Mono {
        Mono::following_wall(t(seconds))
    }

    fn session(agent_start: u64, connection: u64) -> Session {
        Session {
            agent_start,
            connection,
        }
    }

    fn info() -> NodeInfo {
        NodeInfo {
            name: "pi".into(),
            uid: "u".into(),
            labels: vec![],
            architecture: "arm64".into(),
            operating_system: "linux".into(),
            kernel_version: "6".into(),
            os_image: "x".into(),
            model: None,
            cpus: 4,
            memory_bytes: 1,
            agent_version: "0".into(),
            boot_id: "b".into(),
            addresses: vec![],
            heartbeat_interval_ms: 10_000,
            container_runtime: "docker://28.2.2".into(),
            container_runtime_problem: String::new(),
            disk_pressure: false,
            agent_instance: 1,
        }
    }

    fn online(s: Session) -> Presence {
        Presence {
            session: s,
            state: PresenceState::Online(Box::new(info())),
        }
    }

    fn offline(s: Session, reason: OfflineReason) -> Presence {
        Presence {
            session: s,
            state: PresenceState::Offline(reason),
        }
    }

    fn beat(session: Session, sequence: u64) -> Heartbeat {
        Heartbeat { session, sequence }
    }

    fn registered_at(at: DateTime<Utc>) -> Liveness {
        let mut l = Liveness::assumed_alive(at, Mono::following_wall(at));
        assert!(l.on_presence(&online(session(1, 1)), at, Mono::following_wall(at)));
        l
    }

    #[test]
    fn an_older_agent_start_announcing_itself_is_a_name_conflict() {
        let mut l = registered_at(t(0));
        assert!(
            l.on_presence(&online(session(2, 0)), t(1), m(1)),
            "a restart"
        );
        assert_eq!(
            l.name_conflict(&online(session(1, 7))),
            Some(session(2, 0)),
            "the first agent is still there"
        );
        assert!(!l.on_presence(&online(session(1, 7)), t(2), m(2)), "stale");
        // Its last will, or a reconnect of the newest agent, is none.
        assert_eq!(
            l.name_conflict(&offline(session(1, 1), OfflineReason::ConnectionLost)),
            None
        );
        assert_eq!(l.name_conflict(&online(session(2, 1))), None);
        assert_eq!(l.name_conflict(&online(session(3, 0))), None);
    }

    #[test]
    fn another_agent_process_with_the_same_start_is_a_name_conflict() {
        let as_instance = |s: Session, instance: u64| Presence {
            session: s,
            state: PresenceState::Online(Box::new(NodeInfo {
                agent_instance: instance,
                ..info()
            })),
        };
        let mut l = registered_at(t(0));
        // A copy made while the agent was stopped: the same start, another process.
        assert_eq!(
            l.name_conflict(&as_instance(session(1, 1), 2)),
            Some(session(1, 1))
        );
        // The same process reconnecting is none; nor an agent too old to say.
        assert_eq!(l.name_conflict(&as_instance(session(1, 2), 1)), None);
        assert_eq!(l.name_conflict(&as_instance(session(1, 2), 0)), None);
        assert!(l.on_presence(&as_instance(session(1, 2), 0), t(1), m(1)));
        assert_eq!(l.name_conflict(&as_instance(session(1, 3), 5)), None);
    }

    #[test]
    fn ready_while_heartbeats_arrive_within_grace() {
        let mut l = registered_at(t(0));
        for s in (10..=200).step_by(10) {
            assert!(l.on_heartbeat(&beat(session(1, 1), s as u64), t(s), m(s)));
            assert_eq!(l.readiness(m(s + 39), GRACE), Readiness::Ready);
        }
    }

    #[test]
    fn unknown_exactly_after_the_grace_period() {
        let l = registered_at(t(0));
        assert_eq!(l.readiness(m(40), GRACE), Readiness::Ready);
        assert_eq!(
            l.readiness(m(41), GRACE),
            Readiness::Unknown(UnknownCause::SilentPastGrace)
        );
        assert_eq!(l.next_deadline(GRACE), Some(m(40)));
    }

    #[test]
    fn clean_shutdown_is_not_ready_at_once() {
        let mut l = registered_at(t(0));
        l.on_presence(&offline(session(1, 1), OfflineReason::Shutdown), t(1), m(1));
        assert_eq!(l.readiness(m(1), GRACE), Readiness::NotReady);
        assert_eq!(l.readiness(m(1), GRACE).taint_key(), Some(TAINT_NOT_READY));
        assert_eq!(l.next_deadline(GRACE), None);
    }

    #[test]
    fn last_will_makes_the_node_unreachable_at_once() {
        let mut l = registered_at(t(0));
        l.on_presence(
            &offline(session(1, 1), OfflineReason::ConnectionLost),
            t(2),
            m(2),
        );
        let r = l.readiness(m(2), GRACE);
        assert_eq!(r, Readiness::Unknown(UnknownCause::ConnectionLost));
        assert_eq!(r.taint_key(), Some(TAINT_UNREACHABLE));
        assert_eq!(r.condition().0, "Unknown");
    }

    #[test]
    fn a_late_will_from_an_older_session_is_ignored() {
        let mut l = registered_at(t(0));
        assert!(l.on_presence(&online(session(1, 2)), t(5), m(5)));
        assert!(!l.on_presence(
            &offline(session(1, 1), OfflineReason::ConnectionLost),
            t(6),
            m(6)
        ));
        assert_eq!(l.readiness(m(6), GRACE), Readiness::Ready);
        // A restarted agent supersedes every session of the previous start.
        assert!(l.on_presence(&online(session(2, 1)), t(7), m(7)));
        assert!(!l.on_presence(&offline(session(1, 9), OfflineReason::Shutdown), t(8), m(8)));
        assert_eq!(l.readiness(m(8), GRACE), Readiness::Ready);
    }

    #[test]
    fn restarting_agent_becomes_ready_again() {
        let mut l = registered_at(t(0));
        l.on_presence(&offline(session(1, 1), OfflineReason::Shutdown), t(1), m(1));
        l.on_presence(&online(session(2, 1)), t(3), m(3));
        assert_eq!(l.readiness(m(3), GRACE), Readiness::Ready);
    }

    #[test]
    fn stale_heartbeats_do_not_revive_a_node() {
        let mut l = registered_at(t(0));
        l.on_presence(&online(session(2, 1)), t(1), m(1));
        l.on_presence(&offline(session(2, 1), OfflineReason::Shutdown), t(2), m(2));
        assert!(!l.on_heartbeat(&beat(session(1, 1), 1), t(3), m(3)));
        assert_eq!(l.readiness(m(3), GRACE), Readiness::NotReady);
    }

    #[test]
    fn a_heartbeat_from_a_newer_session_revives_a_lost_node() {
        let mut l = registered_at(t(0));
        l.on_presence(
            &offline(session(1, 1), OfflineReason::ConnectionLost),
            t(1),
            m(1),
        );
        // Controller missed the new Online (e.g. it restarted) but heartbeats keep coming.
        assert!(l.on_heartbeat(&beat(session(1, 2), 1), t(2), m(2)));
        assert_eq!(l.readiness(m(2), GRACE), Readiness::Ready);
    }

    #[test]
    fn a_replayed_heartbeat_does_not_keep_a_silent_node_ready() {
        let mut l = registered_at(t(0));
        assert!(l.on_heartbeat(&beat(session(1, 1), 1), t(10), m(10)));
        assert!(
            !l.on_heartbeat(&beat(session(1, 1), 1), t(20), m(20)),
            "a replay"
        );
        assert!(
            !l.on_heartbeat(&beat(session(1, 1), 0), t(30), m(30)),
            "an older one"
        );
        assert!(matches!(l.readiness(m(51), GRACE), Readiness::Unknown(_)));
        assert!(l.on_heartbeat(&beat(session(1, 1), 2), t(52), m(52)));
        assert_eq!(l.readiness(m(52), GRACE), Readiness::Ready);
    }

    #[test]
    fn heartbeats_of_a_session_whose_will_arrived_do_not_revive_it() {
        let mut l = registered_at(t(0));
        assert!(l.on_heartbeat(&beat(session(1, 1), 1), t(1), m(1)));
        l.on_presence(
            &offline(session(1, 1), OfflineReason::ConnectionLost),
            t(2),
            m(2),
        );
        assert!(!l.on_heartbeat(&beat(session(1, 1), 2), t(3), m(3)));
        assert_eq!(
            l.readiness(m(3), GRACE),
            Readiness::Unknown(UnknownCause::ConnectionLost)
        );
    }

    #[test]
    fn a_node_loaded_at_start_gets_one_grace_period() {
        let l = Liveness::assumed_alive(t(100), m(100));
        assert_eq!(l.readiness(m(140), GRACE), Readiness::Ready);
        assert!(matches!(l.readiness(m(141), GRACE), Readiness::Unknown(_)));
    }

    #[test]
    fn wall_clock_steps_change_no_readiness() {
        let mut l = registered_at(t(0));
        // The controller's wall clock steps an hour ahead, then an hour back; the monotonic
        // clock goes on a second per second.
        assert!(l.on_heartbeat(&beat(session(1, 1), 1), t(3600), m(10)));
        assert_eq!(l.readiness(m(45), GRACE), Readiness::Ready);
        assert!(l.on_heartbeat(&beat(session(1, 1), 2), t(-3600), m(20)));
        assert_eq!(l.readiness(m(59), GRACE), Readiness::Ready);
        // A node that then goes silent is still noticed one grace period later.
        assert_eq!(
            l.readiness(m(61), GRACE),
            Readiness::Unknown(UnknownCause::SilentPastGrace)
        );
        assert_eq!(l.last_heard, t(-3600), "users read the wall time");
    }

    fn running_pod() -> Value {
        json!({
            "phase": "Running",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "ContainersReady", "status": "True"},
                {"type": "Ready", "status": "True"},
            ],
            "containerStatuses": [
                {"name": "a", "ready": true, "state": {"running": {"startedAt": "x"}}},
                {"name": "b", "ready": true, "state": {"running": {"startedAt": "x"}}},
            ],
        })
    }

    fn condition(status: &Value, kind: &str) -> String {
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == kind)
            .unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn pods_on_a_node_that_is_not_ready_are_not_ready_and_ready_again_when_it_is() {
        let running = running_pod();
        assert_eq!(pod_status_for_node(&running, true, false), None);
        let marked = pod_status_for_node(&running, false, false).unwrap();
        assert_eq!(condition(&marked, "Ready"), "False");
        assert_eq!(
            condition(&marked, "ContainersReady"),
            "True",
            "the kubelet's condition, which Kubernetes leaves alone"
        );
        assert!(marked["containerStatuses"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ready"] == false));
        assert_eq!(pod_status_for_node(&marked, false, false), None);
        assert_eq!(pod_status_for_node(&marked, true, false), Some(running));
    }

    #[test]
    fn a_sidecar_is_not_ready_on_a_lost_node_and_not_vouched_for_when_it_is_back() {
        let mut pod = running_pod();
        pod["initContainerStatuses"] =
            json!([{"name": "proxy", "ready": true, "state": {"running": {}}}]);
        let marked = pod_status_for_node(&pod, false, false).unwrap();
        assert_eq!(marked["initContainerStatuses"][0]["ready"], false);
        assert_eq!(condition(&marked, "Ready"), "False");
        // Back: the app containers are ready again, the sidecar waits for its agent's word.
        let back = pod_status_for_node(&marked, true, false).unwrap_or(marked);
        assert_eq!(condition(&back, "Ready"), "False");
    }

    #[test]
    fn finished_and_stopping_pods_are_not_made_ready() {
        let mut finished = running_pod();
        finished["phase"] = json!("Succeeded");
        assert_eq!(pod_status_for_node(&finished, false, false), None);
        let marked = pod_status_for_node(&running_pod(), false, false).unwrap();
        let stopping = pod_status_for_node(&marked, true, true).unwrap_or(marked);
        assert_eq!(
            condition(&stopping, "Ready"),
            "False",
            "a stopping pod stays not ready"
        );
        let mut waiting = running_pod();
        waiting["containerStatuses"][1]["state"] =
            json!({"waiting": {"reason": "CrashLoopBackOff"}});
        waiting["containerStatuses"][1]["ready"] = json!(false);
        waiting["conditions"][2]["status"] = json!("False");
        waiting["conditions"][3]["status"] = json!("False");
        let marked = pod_status_for_node(&waiting, false, false).unwrap();
        assert_eq!(pod_status_for_node(&marked, true, false), Some(waiting));
    }
}
