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
    /// The agent process that holds the node's name: the one of the newest online
    /// announcement taken.
    pub instance: Option<u64>,
    /// That agent's start was taken while the one before it was still connected (or had
    /// just been cut off): a restart, or a second agent taking the connection over.
    pub took_over_live: bool,
    /// When the holder's connection last ended (monotonic).
    pub ended_at: Option<Mono>,
    /// Agents refused the name while another holds it, oldest first.
    pub refused: Vec<RefusedAgent>,
    /// The last session of each start that a newer one replaced: an announcement of one of
    /// them again is a replay, not an agent that still runs.
    pub superseded: Vec<Session>,
}

/// An agent refused a node's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusedAgent {
    /// Its instance ([`drover_proto::msg::NodeInfo::agent_instance`]).
    pub instance: u64,
    /// Its latest session (its heartbeats and last will carry only that).
    pub session: Session,
}

/// How many refused agents, and superseded sessions, a node remembers.
const MAX_REMEMBERED: usize = 8;

/// A connection cut off this recently was still live for a start that follows: a broker
/// that sends the last will of a connection taken over sends it just before the new
/// connection's announcement, and the two may wait in the controller's queue a while.
pub const TAKEOVER_WINDOW: Duration = Duration::from_secs(10);

/// What an announcement means for who holds the node's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcement {
    /// Taken: it is from the agent that holds the name.
    Accepted,
    /// Older than what was heard, a repeat, or a refused agent's last will: ignored.
    Stale,
    /// Two agents run under the name: `refused` (an agent instance) must stand down.
    /// `accepted`: the announcement's own agent holds the name now.
    Conflict {
        /// The instance refused.
        refused: u64,
        /// The start number of the agent that keeps the name.
        kept_start: u64,
        /// The start number of the agent refused.
        refused_start: u64,
        /// The announcement was taken.
        accepted: bool,
    },
    /// From an agent refused before, while the other still holds the name: ignored, and
    /// the refusal is said again (the agent may have missed it while cut off).
    Refused(u64),
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
            took_over_live: false,
            ended_at: None,
            refused: Vec::new(),
            superseded: Vec::new(),
        }
    }

    /// Applies an announcement and decides who holds the node's name. Two agents under one
    /// name show themselves by an announcement from another agent process than the holder,
    /// in a session no earlier announcement had: an older start after a newer one (a
    /// restarted agent's old process cannot come back), or the holder's own start (a copy of
    /// a data directory made while its agent was stopped counts the same starts). The second
    /// of the two is refused: the one that took the other's live connection over (or one cut
    /// off within [`TAKEOVER_WINDOW`]), else the one that came back after it was gone. Once
    /// the holder is gone (shut down, or cut off for `grace`), nothing is a conflict: a
    /// refused agent, or any other, may have the name. `retained`: the broker delivered it
    /// from its store, so it says nothing about who runs now.
    pub fn on_announcement(
        &mut self,
        presence: &Presence,
        retained: bool,
        now: DateTime<Utc>,
        mono: Mono,
        grace: Duration,
    ) -> Announcement {
        let session = presence.session;
        let start = session.agent_start;
        match &presence.state {
            PresenceState::Online(info) => {
                let instance = info.agent_instance;
                if let Some(index) = self.refused.iter().position(|r| r.instance == instance) {
                    if retained || session <= self.refused[index].session {
                        return Announcement::Stale;
                    }
                    self.refused[index].session = session;
                    if !self.holder_gone(mono, grace) {
                        return Announcement::Refused(instance);
                    }
                    self.refused.clear();
                    self.forget_holder();
                } else if !retained && self.instance.is_some_and(|h| h != instance) {
                    let current = self.session.map_or(0, |s| s.agent_start);
                    let challenger = start < current && !self.was_superseded(session);
                    let twin = start == current;
                    if (challenger || twin) && self.holder_gone(mono, grace) {
                        self.forget_holder();
                    } else if challenger {
                        return self.conflict(session, instance, now, mono);
                    } else if twin {
                        // Same start: nothing orders the two; the one that came while the
                        // holder was connected is the second.
                        if self.recently_live(mono) {
                            return self.refuse_announcer(session, instance);
                        }
                        self.forget_holder();
                    }
                }
            }
            PresenceState::Offline(_) if self.is_refused_session(session) => {
                return Announcement::Stale;
            }
            PresenceState::Offline(_) => {}
        }
        let newer = self.session.is_none_or(|s| start > s.agent_start);
        let live_before = self.session.is_some() && self.recently_live(mono);
        if !self.on_presence(presence, now, mono) {
            return Announcement::Stale;
        }
        match &presence.state {
            PresenceState::Online(info) => {
                if newer {
                    self.took_over_live =
                        live_before && self.instance.is_some_and(|i| i != info.agent_instance);
                }
                self.instance = Some(info.agent_instance);
                if newer {
                    // The start number is this agent's now (a refused copy had it too).
                    self.refused.retain(|r| r.session.agent_start != start);
                }
            }
            PresenceState::Offline(OfflineReason::Shutdown) => self.refused.clear(),
            PresenceState::Offline(OfflineReason::ConnectionLost) => {}
        }
        Announcement::Accepted
    }

    /// The holder is gone: the next announcement is taken as if it were the first.
    fn forget_holder(&mut self) {
        if let Some(old) = self.session.take() {
            self.remember_superseded(old);
        }
        self.instance = None;
        self.took_over_live = false;
    }

    fn conflict(
        &mut self,
        session: Session,
        instance: u64,
        now: DateTime<Utc>,
        mono: Mono,
    ) -> Announcement {
        let (Some(current), Some(holder)) = (self.session, self.instance) else {
            return Announcement::Stale;
        };
        if !self.took_over_live {
            // The older agent came back after it was gone: it is the second.
            return self.refuse_announcer(session, instance);
        }
        // The holder took the older agent's live connection over: it is the second.
        self.remember_refused(RefusedAgent {
            instance: holder,
            session: current,
        });
        self.session = Some(session);
        self.sequence = 0;
        self.connection = Connection::Online;
        self.last_heard = now;
        self.last_heard_at = mono;
        self.instance = Some(instance);
        self.took_over_live = false;
        self.ended_at = None;
        Announcement::Conflict {
            refused: holder,
            kept_start: session.agent_start,
            refused_start: current.agent_start,
            accepted: true,
        }
    }

    fn refuse_announcer(&mut self, session: Session, instance: u64) -> Announcement {
        let kept_start = self.session.map_or(0, |s| s.agent_start);
        self.remember_refused(RefusedAgent { instance, session });
        Announcement::Conflict {
            refused: instance,
            kept_start,
            refused_start: session.agent_start,
            accepted: false,
        }
    }

    fn remember_refused(&mut self, agent: RefusedAgent) {
        if self.refused.len() >= MAX_REMEMBERED {
            self.refused.remove(0);
        }
        self.refused.push(agent);
    }

    fn remember_superseded(&mut self, session: Session) {
        match self
            .superseded
            .iter_mut()
            .find(|s| s.agent_start == session.agent_start)
        {
            Some(known) => *known = (*known).max(session),
            None => {
                if self.superseded.len() >= MAX_REMEMBERED {
                    self.superseded.remove(0);
                }
                self.superseded.push(session);
            }
        }
    }

    /// A session no later than one a newer session replaced: a replay.
    fn was_superseded(&self, session: Session) -> bool {
        self.superseded
            .iter()
            .any(|s| s.agent_start == session.agent_start && session <= *s)
    }

    /// A refused agent's session: its heartbeats and last will are not the node's.
    fn is_refused_session(&self, session: Session) -> bool {
        let other_start = self
            .session
            .is_none_or(|s| s.agent_start != session.agent_start);
        self.refused.iter().any(|r| {
            r.session == session || (other_start && r.session.agent_start == session.agent_start)
        })
    }

    fn recently_live(&self, mono: Mono) -> bool {
        match self.connection {
            Connection::Online => true,
            // A clean stop means the process is gone: what comes next follows it.
            Connection::ShutDown => false,
            Connection::Lost => self
                .ended_at
                .is_some_and(|ended| mono.since(ended) <= TAKEOVER_WINDOW),
        }
    }

    fn holder_gone(&self, mono: Mono, grace: Duration) -> bool {
        match self.connection {
            Connection::ShutDown => true,
            Connection::Lost => self.ended_at.is_none_or(|ended| mono.since(ended) > grace),
            Connection::Online => mono.since(self.last_heard_at) > grace,
        }
    }

    fn accepts(&mut self, session: Session) -> bool {
        match self.session {
            Some(newest) if session < newest => false,
            Some(newest) if session == newest => true,
            previous => {
                if let Some(old) = previous {
                    self.remember_superseded(old);
                }
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
        match presence.state {
            PresenceState::Online(_) => {
                self.connection = Connection::Online;
                self.last_heard = now;
                self.last_heard_at = mono;
            }
            PresenceState::Offline(OfflineReason::Shutdown) => {
                self.connection = Connection::ShutDown;
                self.ended_at = Some(mono);
            }
            PresenceState::Offline(OfflineReason::ConnectionLost) => {
                self.connection = Connection::Lost;
                self.ended_at = Some(mono);
            }
        }
        true
    }

    /// Applies a heartbeat; false when it was stale (an older session, a sequence number
    /// already seen, or a session that already ended) and ignored.
    pub fn on_heartbeat(&mut self, heartbeat: &Heartbeat, now: DateTime<Utc>, mono: Mono) -> bool {
        let ended =
            self.session == Some(heartbeat.session) && self.connection != Connection::Online;
        let replayed =
            self.session == Some(heartbeat.session) && heartbeat.sequence <= self.sequence;
        let refused = self.is_refused_session(heartbeat.session);
        if ended || replayed || refused || !self.accepts(heartbeat.session) {
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

    fn online_as(s: Session, instance: u64) -> Presence {
        Presence {
            session: s,
            state: PresenceState::Online(Box::new(NodeInfo {
                agent_instance: instance,
                ..info()
            })),
        }
    }

    /// Agent process 1 (start 1) registered at `t(0)`.
    fn held_by_first() -> Liveness {
        let mut l = Liveness::assumed_alive(t(0), m(0));
        let first = l.on_announcement(&online_as(session(1, 1), 1), false, t(0), m(0), GRACE);
        assert_eq!(first, Announcement::Accepted);
        l
    }

    fn announce(l: &mut Liveness, p: Presence, at: i64) -> Announcement {
        l.on_announcement(&p, false, t(at), m(at), GRACE)
    }

    #[test]
    fn a_restart_takes_the_name_and_nothing_is_refused() {
        let mut l = held_by_first();
        // The old process is gone (its connection may still look open): it never speaks.
        assert_eq!(
            announce(&mut l, online_as(session(2, 1), 2), 1),
            Announcement::Accepted
        );
        assert!(l.took_over_live);
        assert_eq!(
            announce(&mut l, online_as(session(2, 2), 2), 5),
            Announcement::Accepted
        );
        assert!(l.refused.is_empty());
        assert_eq!(l.instance, Some(2));
    }

    #[test]
    fn a_second_agent_that_took_a_live_connection_over_is_refused_and_the_first_keeps_the_name() {
        let mut l = held_by_first();
        assert_eq!(
            announce(&mut l, online_as(session(2, 1), 2), 1),
            Announcement::Accepted
        );
        assert_eq!(
            announce(&mut l, online_as(session(1, 2), 1), 2),
            Announcement::Conflict {
                refused: 2,
                kept_start: 1,
                refused_start: 2,
                accepted: true
            }
        );
        assert_eq!(l.instance, Some(1));
        assert_eq!(l.session, Some(session(1, 2)));
        // The copy again: refused again, and nothing of its own counts.
        assert_eq!(
            announce(&mut l, online_as(session(2, 2), 2), 3),
            Announcement::Refused(2)
        );
        assert!(!l.on_heartbeat(&beat(session(2, 2), 1), t(3), m(3)));
        let will = offline(session(2, 2), OfflineReason::ConnectionLost);
        assert_eq!(announce(&mut l, will, 4), Announcement::Stale);
        assert!(l.on_heartbeat(&beat(session(1, 2), 1), t(4), m(4)));
        assert_eq!(l.readiness(m(4), GRACE), Readiness::Ready);
    }

    #[test]
    fn a_last_will_sent_at_the_takeover_does_not_make_the_copy_the_first() {
        let mut l = held_by_first();
        // A broker that sends the will of a connection taken over sends it just before.
        let will = offline(session(1, 1), OfflineReason::ConnectionLost);
        assert_eq!(announce(&mut l, will, 10), Announcement::Accepted);
        let copy = online_as(session(2, 1), 2);
        let at = m(10).plus(Duration::from_millis(300));
        assert_eq!(
            l.on_announcement(&copy, false, t(10), at, GRACE),
            Announcement::Accepted
        );
        assert!(matches!(
            announce(&mut l, online_as(session(1, 2), 1), 11),
            Announcement::Conflict { refused: 2, .. }
        ));
    }

    #[test]
    fn an_agent_back_after_it_was_gone_is_the_second() {
        let mut l = held_by_first();
        let will = offline(session(1, 1), OfflineReason::ConnectionLost);
        assert_eq!(announce(&mut l, will, 10), Announcement::Accepted);
        // Its replacement (a copy) came long after it was gone.
        assert_eq!(
            announce(&mut l, online_as(session(2, 1), 2), 60),
            Announcement::Accepted
        );
        assert!(!l.took_over_live);
        assert_eq!(
            announce(&mut l, online_as(session(1, 2), 1), 70),
            Announcement::Conflict {
                refused: 1,
                kept_start: 2,
                refused_start: 1,
                accepted: false
            }
        );
        assert_eq!(l.instance, Some(2));
        assert_eq!(l.session, Some(session(2, 1)));
    }

    #[test]
    fn a_refused_agent_has_the_name_once_the_other_is_gone() {
        // Shut down cleanly.
        let mut l = held_by_first();
        announce(&mut l, online_as(session(2, 1), 2), 1);
        announce(&mut l, online_as(session(1, 2), 1), 2);
        assert_eq!(
            announce(&mut l, offline(session(1, 2), OfflineReason::Shutdown), 3),
            Announcement::Accepted
        );
        assert_eq!(
            announce(&mut l, online_as(session(2, 2), 2), 4),
            Announcement::Accepted
        );
        assert_eq!(l.instance, Some(2));
        // Cut off for longer than the grace period, whatever the refused one's start.
        let mut l = held_by_first();
        announce(
            &mut l,
            offline(session(1, 1), OfflineReason::ConnectionLost),
            10,
        );
        announce(&mut l, online_as(session(2, 1), 2), 60);
        announce(&mut l, online_as(session(1, 2), 1), 70);
        let lost = offline(session(2, 1), OfflineReason::ConnectionLost);
        assert_eq!(announce(&mut l, lost, 80), Announcement::Accepted);
        assert_eq!(
            announce(&mut l, online_as(session(1, 3), 1), 100),
            Announcement::Refused(1)
        );
        assert_eq!(
            announce(&mut l, online_as(session(1, 4), 1), 121),
            Announcement::Accepted
        );
        assert_eq!(l.instance, Some(1));
        assert_eq!(l.readiness(m(121), GRACE), Readiness::Ready);
    }

    #[test]
    fn a_start_number_a_refused_copy_had_belongs_to_the_next_agent_that_has_it() {
        let mut l = held_by_first();
        announce(&mut l, online_as(session(2, 1), 2), 1);
        announce(&mut l, online_as(session(1, 2), 1), 2);
        // The first restarts after a crash, counting the start the copy also counted.
        assert_eq!(
            announce(&mut l, online_as(session(2, 1), 3), 5),
            Announcement::Accepted
        );
        assert!(l.on_heartbeat(&beat(session(2, 1), 1), t(6), m(6)));
        assert!(l.refused.is_empty());
    }

    #[test]
    fn an_announcement_from_the_brokers_store_is_no_conflict() {
        let mut l = held_by_first();
        announce(&mut l, online_as(session(2, 1), 2), 1);
        let old = online_as(session(1, 9), 1);
        assert_eq!(
            l.on_announcement(&old, true, t(2), m(2), GRACE),
            Announcement::Stale
        );
        assert!(l.refused.is_empty());
    }

    #[test]
    fn a_replayed_announcement_of_a_replaced_session_is_no_conflict() {
        let mut l = held_by_first();
        // kill -9 and a restart whose connection takes the dead one's over.
        announce(
            &mut l,
            offline(session(1, 1), OfflineReason::ConnectionLost),
            5,
        );
        assert_eq!(
            announce(&mut l, online_as(session(2, 1), 2), 6),
            Announcement::Accepted
        );
        assert!(l.took_over_live);
        // Someone who recorded the old process's signed announcement sends it again.
        assert_eq!(
            announce(&mut l, online_as(session(1, 1), 1), 7),
            Announcement::Stale
        );
        assert!(l.refused.is_empty());
        assert_eq!(l.instance, Some(2));
        assert!(l.on_heartbeat(&beat(session(2, 1), 1), t(8), m(8)));
    }

    #[test]
    fn a_replayed_announcement_of_a_refused_agent_is_not_taken_for_it() {
        let mut l = held_by_first();
        announce(&mut l, online_as(session(2, 1), 2), 1);
        announce(&mut l, online_as(session(1, 2), 1), 2);
        assert_eq!(
            announce(&mut l, online_as(session(2, 2), 2), 3),
            Announcement::Refused(2)
        );
        assert_eq!(
            announce(&mut l, online_as(session(2, 2), 2), 4),
            Announcement::Stale
        );
        assert_eq!(
            announce(&mut l, online_as(session(2, 1), 2), 4),
            Announcement::Stale
        );
    }

    #[test]
    fn a_copy_with_the_same_start_is_refused_while_the_holder_is_connected() {
        // A copy made while the agent was stopped counts the same starts.
        let mut l = held_by_first();
        assert_eq!(
            announce(&mut l, online_as(session(1, 1), 2), 1),
            Announcement::Conflict {
                refused: 2,
                kept_start: 1,
                refused_start: 1,
                accepted: false
            }
        );
        assert_eq!(l.instance, Some(1));
        // The holder, back from the takeover, goes on; the copy's next connection is refused.
        assert_eq!(
            announce(&mut l, online_as(session(1, 2), 1), 2),
            Announcement::Accepted
        );
        assert_eq!(
            announce(&mut l, online_as(session(1, 2), 2), 3),
            Announcement::Refused(2)
        );
        // Its heartbeats in that session are not the node's; the holder's next ones are.
        assert!(!l.on_heartbeat(&beat(session(1, 2), 9), t(3), m(3)));
        let back = online_as(session(1, 3), 1);
        assert_eq!(announce(&mut l, back, 4), Announcement::Accepted);
        assert!(l.on_heartbeat(&beat(session(1, 3), 1), t(4), m(4)));
        assert_eq!(l.readiness(m(4), GRACE), Readiness::Ready);
    }

    #[test]
    fn an_agent_whose_holder_is_long_gone_has_the_name_whatever_its_start() {
        // A device restored from an older backup: its start is behind the one last seen.
        let mut l = Liveness::assumed_alive(t(0), m(0));
        announce(&mut l, online_as(session(10, 1), 1), 0);
        announce(
            &mut l,
            offline(session(10, 1), OfflineReason::ConnectionLost),
            5,
        );
        assert_eq!(
            announce(&mut l, online_as(session(6, 1), 2), 100),
            Announcement::Accepted
        );
        assert_eq!(l.instance, Some(2));
        assert!(l.on_heartbeat(&beat(session(6, 1), 1), t(101), m(101)));
        assert_eq!(l.readiness(m(101), GRACE), Readiness::Ready);
        // A copy with the holder's start, after a clean stop: no conflict either.
        let mut l = held_by_first();
        announce(&mut l, offline(session(1, 1), OfflineReason::Shutdown), 3);
        assert_eq!(
            announce(&mut l, online_as(session(1, 1), 2), 4),
            Announcement::Accepted
        );
    }

    #[test]
    fn a_restart_after_a_clean_stop_took_nothing_over() {
        let mut l = held_by_first();
        announce(&mut l, offline(session(1, 1), OfflineReason::Shutdown), 1);
        assert_eq!(
            announce(&mut l, online_as(session(2, 1), 2), 1),
            Announcement::Accepted
        );
        assert!(!l.took_over_live);
    }

    #[test]
    fn one_agent_reconnecting_is_never_a_conflict() {
        let mut l = held_by_first();
        for connection in 2..6 {
            let p = online_as(session(1, connection), 1);
            assert_eq!(
                announce(&mut l, p, connection as i64),
                Announcement::Accepted
            );
        }
        assert!(l.refused.is_empty());
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
