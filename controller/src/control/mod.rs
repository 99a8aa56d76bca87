//! The control loop: one task owns the store and the node table and handles, in order, API
//! requests, MQTT messages and timer ticks. No locks: everything that changes state passes
//! through here.

mod api;
mod api_tokens;
mod cronjobs;
pub(crate) mod daemonsets;
mod defaults;
mod desired;
mod enroll;
mod eviction;
mod execute;
mod external_broker;
mod jobs;
mod kube_error;
mod namespaces;
mod nodes;
mod objects;
mod ownership;
mod pods;
mod rendered;
mod views;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use drover_proto::manifest::Kind;
use drover_proto::session::ControllerReceived;
use drover_proto::Message;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

pub use api::{ApiError, ApiRequest, ApiResult};
pub(crate) use defaults::as_manifest;
#[cfg(test)]
pub(crate) use defaults::show_defaults;
pub use enroll::Security;
pub use kube_error::{reason_of, Cause, Details, KubeError, KubeResult};
pub(crate) use objects::kube_shape;
pub use objects::{
    parse_body_text, DeleteOptions, KubeReply, KubeRequest, ListOptions, ListRequest, Propagation,
    WriteOptions,
};
pub use rendered::RenderedList;

use crate::metrics::Metrics;
use crate::mqtt::{MqttInput, Publisher};
use crate::reconcile::backoff::{resync_due, Retries};
use crate::reconcile::clock::{Elapsed, Mono, MonoClock};
use crate::reconcile::node_lifecycle::{Liveness, Readiness};
use crate::store::Store;

/// Everything the control loop reacts to.
#[derive(Debug)]
pub enum Input {
    /// A request from the HTTP API, with where to send the answer.
    Api(ApiRequest, oneshot::Sender<ApiResult>),
    /// A request of the Kubernetes API, with where to send the answer.
    Kube(KubeRequest, oneshot::Sender<KubeReply>),
    /// A list request of the Kubernetes API, answered with items already rendered.
    KubeList(
        ListRequest,
        oneshot::Sender<Result<RenderedList, KubeError>>,
    ),
    /// Something from the broker.
    Mqtt(MqttInput),
    /// A `/metrics` scrape asks what the store holds.
    Metrics(oneshot::Sender<crate::metrics::FleetSnapshot>),
}

/// Settings of the control loop.
#[derive(Debug, Clone)]
pub struct ControlSettings {
    /// How long a node may stay silent before it is `Ready=Unknown`.
    pub node_monitor_grace_period: Duration,
    /// How long Job pods stay on an unreachable node before they are evicted (unless
    /// their tolerations say otherwise).
    pub unreachable_toleration: Duration,
    /// Job replacement back-off.
    pub job: crate::reconcile::job::JobSettings,
    /// How often every object is reconciled without any input (zero: never), so a missed
    /// trigger heals by itself.
    pub resync_period: Duration,
}

/// The default [`ControlSettings::resync_period`].
pub const DEFAULT_RESYNC_PERIOD: Duration = Duration::from_secs(30);

impl ControlSettings {
    /// Defaults with the given grace period.
    pub fn with_grace(node_monitor_grace_period: Duration) -> ControlSettings {
        ControlSettings {
            node_monitor_grace_period,
            unreachable_toleration: Duration::from_secs(300),
            job: Default::default(),
            resync_period: DEFAULT_RESYNC_PERIOD,
        }
    }
}

/// What the controller tracks per node in memory.
#[derive(Debug, Clone)]
struct NodeState {
    liveness: Liveness,
    /// Readiness last written to the store.
    recorded: Option<Readiness>,
}

/// The control loop's state.
pub struct Control {
    store: Store,
    nodes: HashMap<String, NodeState>,
    publisher: Publisher,
    metrics: Arc<Metrics>,
    settings: ControlSettings,
    security: Security,
    ds_backoff: daemonsets::DsBackoff,
    /// When DaemonSets must be reconciled again without any new input.
    ds_wake: Option<Mono>,
    /// When Jobs must be reconciled again without any new input.
    jobs_wake: Option<Mono>,
    /// When CronJobs must be reconciled again (their next scheduled time).
    cron_wake: Option<DateTime<Utc>>,
    /// Workload controllers have something to look at.
    dirty: bool,
    /// Nodes whose desired state must be recomputed.
    desired_dirty: std::collections::BTreeSet<String>,
    /// Generations of each node's desired states published and not yet handed back by the
    /// broker (the controller subscribes to what it publishes), oldest first.
    awaited_echoes: HashMap<String, std::collections::VecDeque<u64>>,
    /// The monotonic clock's reading for the input being handled ([`Control::set_monotonic`]);
    /// without one, durations follow the wall clock.
    mono: Option<Mono>,
    /// The wall-clock reading deadlines set before the monotonic clock came were measured
    /// from (the start): [`Control::set_monotonic`] moves them onto the monotonic clock.
    started_on_wall: Mono,
    /// Jobs' starts and finishes, measured from on the monotonic clock.
    job_elapsed: Elapsed,
    /// Unreachable and not-ready taints' `timeAdded`, measured from on the monotonic clock.
    taint_elapsed: Elapsed,
    /// Objects (and passes) whose reconciliation failed, tried again with back-off.
    retries: Retries,
    /// When every object was last reconciled by the periodic resync (or the loop started).
    last_resync: Option<Mono>,
    /// Objects' API JSON by version, so a list copies text.
    rendered: rendered::RenderCache,
    /// Warnings for the client of the Kubernetes request being handled.
    warnings: Vec<String>,
}

impl Control {
    /// Gives the monotonic clock's current reading, which durations (node silence) are
    /// measured on; the wall time passed with each input stays for what users read.
    pub fn set_monotonic(&mut self, now: Mono) {
        if self.mono.is_none() {
            // Until now silence was measured on the wall clock: every node's grace period
            // starts again on the monotonic one, as at a controller start.
            for state in self.nodes.values_mut() {
                state.liveness.last_heard_at = now;
            }
            // Deadlines set at the start (the DaemonSet back-offs the store kept) keep the
            // time they had left, now on the monotonic clock.
            let started = self.started_on_wall;
            let moved = |at: Mono| now.plus(at.since(started));
            for backoffs in self.ds_backoff.values_mut() {
                for backoff in backoffs.values_mut() {
                    backoff.retry_at = moved(backoff.retry_at);
                }
            }
            self.ds_wake = self.ds_wake.map(moved);
            self.jobs_wake = self.jobs_wake.map(moved);
        }
        self.mono = Some(now);
    }

    fn mono(&self, now: DateTime<Utc>) -> Mono {
        self.mono.unwrap_or_else(|| Mono::following_wall(now))
    }

    /// A wake-up time a reconciler computed on the wall clock, as the same delay from now
    /// on the monotonic clock (a wall-clock step then neither brings it forward nor delays
    /// it).
    fn mono_wake(&self, at: DateTime<Utc>, now: DateTime<Utc>) -> Mono {
        self.mono(now)
            .plus((at - now).to_std().unwrap_or(Duration::ZERO))
    }
}

/// How often readiness deadlines are checked.
pub const TICK: Duration = Duration::from_millis(250);
/// The workload controllers run at least this often while inputs keep arriving.
const SETTLE_AT_LEAST: Duration = Duration::from_millis(50);

impl Control {
    /// Loads the node table from the store; every known node gets one grace period from
    /// `now` to be heard from.
    pub fn new(
        store: Store,
        publisher: Publisher,
        metrics: Arc<Metrics>,
        settings: ControlSettings,
        security: Security,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Control> {
        let mut control = Control {
            store,
            nodes: HashMap::new(),
            publisher,
            metrics,
            settings,
            security,
            ds_backoff: Default::default(),
            ds_wake: None,
            jobs_wake: None,
            cron_wake: None,
            dirty: true,
            desired_dirty: Default::default(),
            awaited_echoes: HashMap::new(),
            mono: None,
            started_on_wall: Mono::following_wall(now),
            job_elapsed: Elapsed::default(),
            taint_elapsed: Elapsed::default(),
            retries: Retries::default(),
            rendered: Default::default(),
            warnings: Vec::new(),
            last_resync: None,
        };
        control.load_nodes(now)?;
        control.load_daemon_failures(now)?;
        control.load_credentials()?;
        Ok(control)
    }

    /// Handles one input.
    pub fn handle(&mut self, input: Input, now: DateTime<Utc>) {
        match input {
            Input::Api(request, reply) => {
                let result = self.handle_api(request, now);
                let _ = reply.send(result);
            }
            Input::Kube(request, reply) => {
                let result = self.handle_kube(request, now);
                let warnings = std::mem::take(&mut self.warnings);
                let _ = reply.send(KubeReply { result, warnings });
            }
            Input::KubeList(request, reply) => {
                let result = self.kube_list(
                    request.resource,
                    request.namespace.as_deref(),
                    &request.options,
                );
                let _ = reply.send(result);
            }
            Input::Mqtt(MqttInput::Connected) => {
                self.republish_all_desired();
                self.resync_external_broker();
            }
            Input::Mqtt(MqttInput::Received { message, retained }) => {
                self.handle_message(message, retained, now)
            }
            Input::Metrics(reply) => {
                let _ = reply.send(self.fleet_snapshot());
            }
        }
        self.flush_desired(now);
    }

    fn handle_message(&mut self, received: ControllerReceived, retained: bool, now: DateTime<Utc>) {
        match received {
            ControllerReceived::Node { node, message } => match message {
                Message::Presence(p) => self.on_presence(&node, p, retained, now),
                Message::Heartbeat(h) => self.on_heartbeat(&node, h, now),
                Message::Status(report) => self.on_status(&node, report, now),
                // Log data goes to the log router, not here; nothing else reaches here.
                other => warn!(node, message = other.name(), "ignored a message"),
            },
            ControllerReceived::Enroll { token, request } => self.on_enroll(&token, request, now),
            ControllerReceived::Desired { node, ours } => self.on_desired_seen(&node, ours),
            ControllerReceived::DesiredCleared { node } => self.on_desired_cleared(&node),
        }
    }

    fn fleet_snapshot(&self) -> crate::metrics::FleetSnapshot {
        let list = |kind| self.store.list(kind, None).unwrap_or_default();
        let (nodes, pods, jobs, daemonsets) = (
            list(Kind::Node),
            list(Kind::Pod),
            list(Kind::Job),
            list(Kind::DaemonSet),
        );
        crate::metrics::FleetSnapshot::count(
            nodes.iter().map(|o| &**o),
            pods.iter().map(|o| &**o),
            jobs.iter().map(|o| &**o),
            daemonsets.iter().map(|o| &**o),
        )
    }

    /// Notes that the workload controllers must look again (after a change of nodes, pods
    /// or workloads); [`Control::settle`] does it once for any number of changes.
    pub(super) fn workloads_changed(&mut self) {
        self.dirty = true;
    }

    /// Runs the workload controllers if anything changed since they last ran. CronJobs go
    /// first (they create Jobs), then Jobs (they create pods), then DaemonSets.
    pub fn settle(&mut self, now: DateTime<Utc>) {
        // A pass may change what another pass sees (a Job finishing frees its dependents):
        // repeat while passes keep finding work, a bounded number of times.
        for _ in 0..3 {
            if !self.dirty {
                break;
            }
            self.dirty = false;
            let result = self.reconcile_cronjobs(now);
            self.pass_result("cronjobs", result, now);
            let result = self.reconcile_jobs(now);
            self.pass_result("jobs", result, now);
            let result = self.reconcile_daemonsets(now);
            self.pass_result("daemonsets", result, now);
            let result = self
                .finish_foreground_deletions(now)
                .map_err(|e| anyhow::anyhow!("{e}"));
            self.pass_result("foreground deletions", result, now);
            // Last: it places what the passes before created, and whatever a change of
            // nodes (Ready, labels, taints, uncordon) or a resync lets go somewhere now.
            let result = self.schedule_pending(now);
            self.pass_result("scheduling", result, now);
        }
        self.flush_desired(now);
    }

    /// Notes how reconciling one object went: a failure is logged and the object is tried
    /// again after its back-off; a success clears its back-off.
    pub(super) fn object_result(
        &mut self,
        object: &crate::store::StoredObject,
        result: anyhow::Result<()>,
        now: DateTime<Utc>,
    ) {
        match result {
            Ok(()) => self.retries.succeeded(&object.uid),
            Err(e) => {
                let retry_in = self
                    .retries
                    .failed(&object.uid, self.mono(now))
                    .since(self.mono(now));
                warn!(kind = object.kind.as_str(), namespace = %object.namespace, name = %object.name, error = %e, ?retry_in, "cannot reconcile");
            }
        }
    }

    /// As [`Control::object_result`], for a whole pass (when listing failed).
    fn pass_result(&mut self, pass: &str, result: anyhow::Result<()>, now: DateTime<Utc>) {
        let key = format!("pass:{pass}");
        match result {
            Ok(()) => self.retries.succeeded(&key),
            Err(e) => {
                let retry_in = self
                    .retries
                    .failed(&key, self.mono(now))
                    .since(self.mono(now));
                warn!(error = %e, ?retry_in, "cannot reconcile {pass}");
            }
        }
    }

    /// Re-evaluates time-dependent state (node grace periods).
    pub fn tick(&mut self, now: DateTime<Utc>) {
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        for name in names {
            self.refresh_readiness(&name, now);
        }
        if let Err(e) = self.evict_from_lost_nodes(now) {
            warn!(error = %e, "cannot evict pods from lost nodes");
        }
        let mono = self.mono(now);
        let last_resync = *self.last_resync.get_or_insert(mono);
        let resync = resync_due(last_resync, mono, self.settings.resync_period);
        if resync {
            self.last_resync = Some(mono);
        }
        // Objects that are gone, or going (no pass reconciles them any more), have nothing
        // left to retry: kept, they would be due at every tick.
        let store = &self.store;
        self.retries.retain(|key| {
            key.starts_with("pass:")
                || store
                    .get_by_uid(key)
                    .ok()
                    .flatten()
                    .is_some_and(|o| o.deletion_timestamp.is_none())
        });
        // Durations run on the monotonic clock; only CronJob schedules are wall time.
        let due = resync
            || self.retries.due(mono)
            || [self.jobs_wake, self.ds_wake]
                .iter()
                .any(|w| w.is_some_and(|at| at <= mono))
            || self.cron_wake.is_some_and(|at| at <= now);
        if due {
            self.dirty = true;
        }
        self.settle(now);
    }
}

/// Runs the control loop until the input channels close. What comes from the broker has a
/// channel of its own, short, so that the API and the messages of every node are served in
/// turn: a deep queue shared by all would put a request behind thousands of one flooding
/// node's messages (the MQTT adapter queues them per sender instead).
pub async fn run(
    mut control: Control,
    mut inputs: mpsc::Receiver<Input>,
    mut from_broker: mpsc::Receiver<Input>,
) {
    let mut ticker = tokio::time::interval(TICK);
    let mut last_settle = std::time::Instant::now();
    let clock = MonoClock::start();
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut broker_open = true;
    loop {
        let input = tokio::select! {
            input = inputs.recv() => match input {
                Some(input) => input,
                None => return,
            },
            input = from_broker.recv(), if broker_open => match input {
                Some(input) => input,
                None => {
                    broker_open = false;
                    continue;
                }
            },
            _ = ticker.tick() => {
                control.set_monotonic(clock.now());
                control.tick(Utc::now());
                continue;
            }
        };
        control.set_monotonic(clock.now());
        control.handle(input, Utc::now());
        // Under load, changes pile up and the controllers run once for all of them, but
        // never less often than every SETTLE_AT_LEAST.
        if (inputs.is_empty() && from_broker.is_empty()) || last_settle.elapsed() >= SETTLE_AT_LEAST
        {
            control.settle(Utc::now());
            last_settle = std::time::Instant::now();
        }
    }
}

#[cfg(test)]
mod tests;
