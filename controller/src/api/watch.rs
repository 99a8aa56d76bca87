//! Kubernetes watch streams (`?watch=true`): the store's change feed kept in a bounded
//! history and fanned out to watchers, each event rendered once and shared.
//!
//! Semantics follow the apiserver's watch cache: a watch from resourceVersion N replays
//! every later change in order, or gets one `ERROR` event with a 410 `Expired` Status when
//! N is older than the history (the client then re-lists); a watch without a
//! resourceVersion (or `0`) starts with ADDED events for the objects of a list and goes on
//! from that list's resourceVersion; an object that stops or starts matching a watcher's
//! selector is sent to it as DELETED or ADDED; bookmarks come about once a minute and 2 s
//! before the watch's deadline; a watcher that falls too far behind is closed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::api::resources::Resource;
use crate::store::{Change, ChangeSink, ChangeType, EventRecord, StoredObject};

/// Tuning of a [`WatchHub`].
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// Most changes kept for watches that resume from an older resourceVersion.
    pub history: usize,
    /// Most memory (estimated) those changes may hold; whichever limit is reached first
    /// drops the oldest.
    pub history_bytes: usize,
    /// How far (in changes) a live watcher may fall behind before it is closed.
    pub lag: usize,
    /// How often an idle watcher that allows bookmarks gets one.
    pub bookmark_every: Duration,
    /// The deadline of a watch that names no `timeoutSeconds` (the apiserver's default:
    /// between this and twice this, so that clients do not all reconnect at once).
    pub default_timeout: Duration,
}

impl Default for HubSettings {
    fn default() -> Self {
        HubSettings {
            // The apiserver sizes its history to cover about 75 s of changes. Here memory
            // decides first: a superseded pod is ~16 KiB in memory (its JSON trees are ten
            // times its rendering), so 16 MiB keeps the last ~1,000 pod changes -- minutes
            // of a fleet's status churn -- and the count only bounds tiny objects.
            history: 10_000,
            history_bytes: 16 << 20,
            // A watcher this far behind is not reading (the socket's buffers absorb bursts
            // before it falls behind at all); holding more would only delay the re-list it
            // needs anyway. The feed's ring keeps this many changes alive too.
            lag: 256,
            bookmark_every: Duration::from_secs(60),
            default_timeout: Duration::from_secs(1800),
        }
    }
}

/// The watch side of the store: takes every change (it is the store's [`ChangeSink`]),
/// keeps the recent ones and hands them to watchers. Cheap to clone.
#[derive(Clone)]
pub struct WatchHub {
    inner: Arc<Inner>,
}

struct Inner {
    history: Mutex<History>,
    render: Renderer,
    live: broadcast::Sender<Arc<Event>>,
    settings: HubSettings,
    slow_closed: AtomicU64,
}

struct History {
    events: VecDeque<Arc<Event>>,
    /// Estimated memory of `events`.
    bytes: usize,
    /// Every change after this resourceVersion is in `events`.
    floor: u64,
    /// The newest change published (or the store's version at start).
    latest: u64,
}

/// One change, rendered lazily: once, by the first watcher that sends it, for all of them.
/// Only the line is kept (not the JSON tree, several times bigger); the rare watcher that
/// sees the change differently (a selector transition, a Table) renders its own.
struct Event {
    change: Change,
    line: OnceLock<Bytes>,
    /// Estimated memory, counted against [`HubSettings::history_bytes`].
    footprint: usize,
}

impl Event {
    /// The object as sent, carrying the change's resourceVersion (newer than the object's
    /// own for a delete); `before`: the object before the change.
    fn object(&self, render: &Renderer, before: bool) -> Value {
        if let Some(record) = &self.change.event {
            // Carries the record's own resourceVersion, the change's.
            return crate::object::event_object(record, &self.change.object);
        }
        let object = match (&self.change.previous, before) {
            (Some(previous), true) => previous,
            _ => &self.change.object,
        };
        let mut json = render(object);
        if let Some(metadata) = json.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert(
                "resourceVersion".into(),
                Value::String(self.change.resource_version.to_string()),
            );
        }
        json
    }

    /// The event line for a watcher that sees it as `kind`, its objects shown by `present`.
    fn line_as(&self, kind: ChangeType, render: &Renderer, present: Option<&Presenter>) -> Bytes {
        // A watcher told DELETED because the object no longer matches gets it as it last
        // matched, as the apiserver's cacher does.
        let before = kind == ChangeType::Deleted && self.change.kind == ChangeType::Modified;
        match present {
            None if kind == self.change.kind => self
                .line
                .get_or_init(|| {
                    let object =
                        serde_json::to_vec(&self.object(render, false)).unwrap_or_default();
                    event_line(kind.as_str(), &object)
                })
                .clone(),
            None => {
                json_line(&json!({"type": kind.as_str(), "object": self.object(render, before)}))
            }
            Some(present) => json_line(
                &json!({"type": kind.as_str(), "object": present(&self.object(render, before))}),
            ),
        }
    }
}

/// How the hub renders a stored object (the API's JSON of it).
pub type Renderer = Arc<dyn Fn(&StoredObject) -> Value + Send + Sync>;

/// How one watcher shows an object, e.g. as a one-row Table for `kubectl get -w`.
pub type Presenter = Arc<dyn Fn(&Value) -> Value + Send + Sync>;

fn event_line(kind: &str, object: &[u8]) -> Bytes {
    let mut line = Vec::with_capacity(object.len() + 32);
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(kind.as_bytes());
    line.extend_from_slice(b"\",\"object\":");
    line.extend_from_slice(object);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

fn json_line(value: &Value) -> Bytes {
    let mut line = serde_json::to_vec(value).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// Roughly what an object holds in memory, its rendered line included: a walk over its
/// JSON trees, cheaper than the serialization the store's write has just done. Counted
/// whole even while the store shares the object, so the history stays within its budget.
fn footprint(object: &StoredObject) -> usize {
    /// Allocator overhead per allocation.
    const ALLOC: usize = 16;
    /// A B-tree node holds up to 11 entries and is allocated whole, however few it holds.
    fn btree(len: usize, entry: usize) -> usize {
        len.div_ceil(11) * (11 * entry + 32 + ALLOC)
    }
    fn string(s: &str) -> usize {
        if s.is_empty() {
            0
        } else {
            s.len() + ALLOC
        }
    }
    /// Heap owned by a JSON value (a `Value` itself is 32 bytes, inline in its parent).
    fn tree(value: &Value) -> usize {
        match value {
            Value::String(s) => string(s),
            Value::Array(items) => items.len() * 32 + ALLOC + items.iter().map(tree).sum::<usize>(),
            Value::Object(map) => {
                btree(map.len(), 24 + 32)
                    + map.iter().map(|(k, v)| string(k) + tree(v)).sum::<usize>()
            }
            _ => 0,
        }
    }
    let map = |m: &std::collections::BTreeMap<String, String>| {
        btree(m.len(), 48) + m.iter().map(|(k, v)| string(k) + string(v)).sum::<usize>()
    };
    let trees = tree(&object.spec) + tree(&object.status) + tree(&object.owner_references);
    std::mem::size_of::<StoredObject>()
        + ALLOC
        + string(&object.namespace)
        + string(&object.name)
        + string(&object.uid)
        + map(&object.labels)
        + map(&object.annotations)
        + trees
        // The line, once rendered: about a tenth of the trees.
        + trees / 10
}

/// Roughly what a change to an event holds: its record, the few fields that name its
/// object (all the store hands over), and its rendered line.
fn event_footprint(record: &EventRecord, subject: &StoredObject) -> usize {
    let e = &record.event;
    let text = e.kind.len() + e.reason.len() + e.message.len() + e.source.len();
    std::mem::size_of::<EventRecord>() + footprint(subject) + 2 * text + 768
}

/// A `metav1.Status` failure.
pub fn status_json(code: u16, reason: &str, message: &str) -> Value {
    super::status::failure_body(code, reason, message)
}

/// The resourceVersion a watch asked for is older than the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// What was asked.
    pub asked: u64,
    /// The oldest resourceVersion a watch may start from.
    pub oldest: u64,
}

impl WatchHub {
    /// A hub whose history starts at `resource_version` (the store's, from
    /// [`crate::store::Store::resource_version`]): earlier versions are expired.
    pub fn new(resource_version: u64) -> WatchHub {
        WatchHub::with_settings(resource_version, HubSettings::default())
    }

    /// A hub with its own tuning.
    pub fn with_settings(resource_version: u64, settings: HubSettings) -> WatchHub {
        WatchHub::with_renderer(resource_version, settings, Arc::new(crate::object::to_json))
    }

    /// A hub that renders objects with `render` (by default [`crate::object::to_json`]),
    /// so that watch events show objects exactly as get and list do.
    pub fn with_renderer(
        resource_version: u64,
        settings: HubSettings,
        render: Renderer,
    ) -> WatchHub {
        let (live, _) = broadcast::channel(settings.lag.max(1));
        WatchHub {
            inner: Arc::new(Inner {
                history: Mutex::new(History {
                    events: VecDeque::with_capacity(settings.history.min(1024)),
                    bytes: 0,
                    floor: resource_version,
                    latest: resource_version,
                }),
                render,
                live,
                settings,
                slow_closed: AtomicU64::new(0),
            }),
        }
    }

    fn history(&self) -> std::sync::MutexGuard<'_, History> {
        // A panic while holding the lock leaves the history consistent (every step is a
        // single push or pop), so a poisoned lock is still usable.
        self.inner
            .history
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a change and hands it to live watchers. Changes must come in commit order;
    /// one not newer than the last is ignored.
    pub fn publish(&self, change: Change) {
        let mut history = self.history();
        if change.resource_version <= history.latest {
            tracing::warn!(
                resource_version = change.resource_version,
                latest = history.latest,
                "watch: change out of order, ignored"
            );
            return;
        }
        history.latest = history.latest.max(change.resource_version);
        let footprint = match &change.event {
            Some(record) => event_footprint(record, &change.object),
            None => footprint(&change.object),
        };
        let event = Arc::new(Event {
            change,
            line: OnceLock::new(),
            footprint,
        });
        history.events.push_back(Arc::clone(&event));
        history.bytes += footprint;
        let settings = &self.inner.settings;
        while history.events.len() > settings.history
            || (history.bytes > settings.history_bytes && history.events.len() > 1)
        {
            if let Some(oldest) = history.events.pop_front() {
                history.floor = oldest.change.resource_version;
                history.bytes -= oldest.footprint;
            }
        }
        // Sent under the lock, so that a new watcher's replay and subscription meet
        // without a gap or a duplicate. No receivers is not an error.
        let _ = self.inner.live.send(event);
    }

    /// The newest resourceVersion the hub has seen.
    pub fn resource_version(&self) -> u64 {
        self.history().latest
    }

    /// Watchers closed so far for falling behind.
    pub fn slow_watchers_closed(&self) -> u64 {
        self.inner.slow_closed.load(Ordering::Relaxed)
    }

    /// Watchers now streaming.
    pub fn watchers(&self) -> usize {
        self.inner.live.receiver_count()
    }

    /// The changes after `resource_version` and the live feed that follows them.
    fn subscribe(&self, resource_version: u64) -> Result<Subscription, Expired> {
        let history = self.history();
        if resource_version < history.floor {
            return Err(Expired {
                asked: resource_version,
                oldest: history.floor,
            });
        }
        let first = history
            .events
            .partition_point(|e| e.change.resource_version <= resource_version);
        let replay = history.events.range(first..).cloned().collect();
        Ok((replay, self.inner.live.subscribe()))
    }
}

impl ChangeSink for WatchHub {
    fn publish(&self, change: Change) {
        WatchHub::publish(self, change);
    }
}

/// The changes a new watcher replays, and the live feed that follows them.
type Subscription = (VecDeque<Arc<Event>>, broadcast::Receiver<Arc<Event>>);

/// Decides whether a stored object is in a watch (label and field selectors).
pub type Matcher = Arc<dyn Fn(&StoredObject) -> bool + Send + Sync>;

/// Decides whether an Event, as the API shows it, is in a watch.
pub type EventMatcher = Arc<dyn Fn(&Value) -> bool + Send + Sync>;

/// A matcher that takes everything.
pub fn everything() -> Matcher {
    Arc::new(|_| true)
}

/// The watch parameters of a list request (`metav1.ListOptions`), as sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchParams {
    /// `true`/`1`: watch instead of list.
    pub watch: Option<String>,
    /// Where to start.
    pub resource_version: Option<String>,
    /// `NotOlderThan` (with `sendInitialEvents`).
    pub resource_version_match: Option<String>,
    /// Whether BOOKMARK events are wanted.
    pub allow_watch_bookmarks: Option<String>,
    /// Deadline of the watch.
    pub timeout_seconds: Option<String>,
    /// Start with the current objects, then an initial-events-end bookmark.
    pub send_initial_events: Option<String>,
}

/// A query parameter read as Kubernetes reads a boolean: present and not `false`/`0`.
fn flag(value: &Option<String>) -> Option<bool> {
    value
        .as_deref()
        .map(|v| !(v == "0" || v.eq_ignore_ascii_case("false")))
}

impl WatchParams {
    /// Whether the request is a watch (`?watch=true`, `?watch=1`, `?watch`).
    pub fn is_watch(&self) -> bool {
        flag(&self.watch).unwrap_or(false)
    }
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// ADDED events for the objects of a list ([`Snapshot`]), then the changes after it;
    /// `end_bookmark`: then a BOOKMARK marking the end of the initial events.
    Snapshot {
        /// `sendInitialEvents=true`.
        end_bookmark: bool,
    },
    /// The changes after this resourceVersion.
    After(u64),
    /// The changes from now on.
    Now,
}

/// One watch request.
#[derive(Clone)]
pub struct WatchQuery {
    /// The resource watched.
    pub resource: &'static Resource,
    /// Only this namespace; `None`: all.
    pub namespace: Option<String>,
    /// Label and field selectors.
    pub matches: Matcher,
    /// Field selectors of an Event watch, tested on the event as shown; `None`: every
    /// event.
    pub event_matches: Option<EventMatcher>,
    /// Where it starts.
    pub start: Start,
    /// Whether BOOKMARK events are sent.
    pub allow_bookmarks: bool,
    /// When the stream ends; `None`: the hub's default.
    pub timeout: Option<Duration>,
    /// How objects are shown (e.g. as Tables); `None`: as they are.
    pub present: Option<Presenter>,
}

/// A request the watch cannot serve (400): its Status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadWatch(pub String);

impl IntoResponse for BadWatch {
    fn into_response(self) -> Response {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(status_json(400, "BadRequest", &self.0)),
        )
            .into_response()
    }
}

impl WatchQuery {
    /// Reads the watch parameters as the apiserver does.
    pub fn new(
        resource: &'static Resource,
        namespace: Option<String>,
        matches: Matcher,
        params: &WatchParams,
    ) -> Result<WatchQuery, BadWatch> {
        let version = match params.resource_version.as_deref().unwrap_or("") {
            "" => None,
            text => Some(
                text.parse::<u64>()
                    .map_err(|_| BadWatch(format!("invalid resource version: {text:?}")))?,
            ),
        };
        let allow_bookmarks = flag(&params.allow_watch_bookmarks).unwrap_or(false);
        let not_older_than = match params.resource_version_match.as_deref().unwrap_or("") {
            "" => false,
            "NotOlderThan" => true,
            other => {
                return Err(BadWatch(format!(
                    "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"NotOlderThan\""
                )))
            }
        };
        let start = match flag(&params.send_initial_events) {
            Some(initial) => {
                if !not_older_than {
                    return Err(BadWatch(
                        "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into(),
                    ));
                }
                if initial && !allow_bookmarks {
                    return Err(BadWatch(
                        "allowWatchBookmarks: Forbidden: sendInitialEvents requires allowWatchBookmarks".into(),
                    ));
                }
                match (initial, version) {
                    (true, _) => Start::Snapshot { end_bookmark: true },
                    (false, None | Some(0)) => Start::Now,
                    (false, Some(v)) => Start::After(v),
                }
            }
            None => {
                if not_older_than {
                    return Err(BadWatch(
                        "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided".into(),
                    ));
                }
                match version {
                    None | Some(0) => Start::Snapshot {
                        end_bookmark: false,
                    },
                    Some(v) => Start::After(v),
                }
            }
        };
        let timeout = match params.timeout_seconds.as_deref().unwrap_or("") {
            "" => None,
            text => match text.parse::<u64>() {
                Ok(0) => None,
                Ok(seconds) => Some(Duration::from_secs(seconds)),
                Err(_) => return Err(BadWatch(format!("invalid timeoutSeconds: {text:?}"))),
            },
        };
        Ok(WatchQuery {
            resource,
            namespace,
            matches,
            event_matches: None,
            start,
            allow_bookmarks,
            timeout,
            present: None,
        })
    }

    /// Whether [`respond`] needs a [`Snapshot`] (the caller lists first).
    pub fn wants_snapshot(&self) -> bool {
        matches!(self.start, Start::Snapshot { .. })
    }

    fn in_scope(&self, object: &StoredObject) -> bool {
        object.kind.as_str() == self.resource.kind
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| ns == object.namespace)
            && (self.matches)(object)
    }

    fn event_in_scope(&self, event: &Value) -> bool {
        self.resource.kind == "Event"
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| event["metadata"]["namespace"] == ns)
            && self.event_matches.as_ref().is_none_or(|m| m(event))
    }

    /// How this watcher sees a change, if at all.
    fn sees(&self, change: &Change) -> Option<ChangeType> {
        if let Some(record) = &change.event {
            if self.resource.kind != "Event" {
                return None;
            }
            let event = crate::object::event_object(record, &change.object);
            return self.event_in_scope(&event).then_some(change.kind);
        }
        let now = self.in_scope(&change.object);
        match change.kind {
            ChangeType::Modified => {
                let before = change.previous.as_deref().is_some_and(|p| self.in_scope(p));
                match (before, now) {
                    (true, true) => Some(ChangeType::Modified),
                    (false, true) => Some(ChangeType::Added),
                    (true, false) => Some(ChangeType::Deleted),
                    (false, false) => None,
                }
            }
            kind => now.then_some(kind),
        }
    }

    fn bookmark(&self, resource_version: u64, initial_events_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": resource_version.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        json_line(&json!({
            "type": "BOOKMARK",
            "object": {
                "kind": self.resource.kind,
                "apiVersion": self.resource.api_version(),
                "metadata": metadata,
            },
        }))
    }
}

/// The objects of a list and the resourceVersion it was taken at (the store's, read in the
/// same turn of the control loop as the objects).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The objects as the list renders them, already filtered by the watch's namespace and
    /// selectors, in the order they are to be sent as ADDED.
    pub items: Vec<Value>,
    /// The list's resourceVersion.
    pub resource_version: u64,
}

impl Snapshot {
    /// The snapshot of a list response (`{"metadata":{"resourceVersion":"R"},"items":[…]}`);
    /// `None` without a numeric resourceVersion.
    pub fn from_list(mut list: Value) -> Option<Snapshot> {
        let resource_version = list
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)?
            .parse()
            .ok()?;
        let items = match list.get_mut("items").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        Some(Snapshot {
            items,
            resource_version,
        })
    }

    /// The snapshot of stored objects: those in the watch's scope, rendered as `hub`
    /// renders them.
    pub fn of_objects(
        hub: &WatchHub,
        query: &WatchQuery,
        objects: &[Arc<StoredObject>],
        resource_version: u64,
    ) -> Snapshot {
        Snapshot {
            items: objects
                .iter()
                .filter(|o| query.in_scope(o))
                .map(|o| (hub.inner.render)(o))
                .collect(),
            resource_version,
        }
    }
}

/// Streams a watch: newline-delimited JSON events, one chunk each, until the deadline, the
/// client leaves, or the watcher falls too far behind. `snapshot` is needed when
/// [`WatchQuery::wants_snapshot`]; without it the watch starts from now.
pub fn respond(hub: &WatchHub, query: WatchQuery, snapshot: Option<Snapshot>) -> Response {
    let stream = match Watcher::start(hub, query, snapshot) {
        Ok(watcher) => Body::from_stream(futures_util::stream::unfold(
            watcher,
            |mut watcher| async move {
                let line = watcher.next().await?;
                Some((Ok::<Bytes, std::convert::Infallible>(line), watcher))
            },
        )),
        Err(expired) => {
            let message = format!(
                "too old resource version: {} ({})",
                expired.asked, expired.oldest
            );
            Body::from(json_line(&json!({
                "type": "ERROR",
                "object": status_json(410, "Expired", &message),
            })))
        }
    };
    let mut response = Response::new(stream);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    response
}

/// Serves a watch request from a list handler: `list` (not run unless the watch starts
/// with the current objects) is the list response the handler would give for the same
/// namespace and selectors, with `metadata.resourceVersion` set to the store's
/// [`crate::store::Store::resource_version`] read in the same control-loop turn as the
/// objects; an `Err` is answered as it is.
pub async fn serve<F>(hub: &WatchHub, query: WatchQuery, list: F) -> Response
where
    F: std::future::Future<Output = Result<Value, Response>>,
{
    if !query.wants_snapshot() {
        return respond(hub, query, None);
    }
    match list.await.map(Snapshot::from_list) {
        Ok(Some(snapshot)) => respond(hub, query, Some(snapshot)),
        Ok(None) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(status_json(
                500,
                "InternalError",
                "the list for the watch's initial events has no resourceVersion",
            )),
        )
            .into_response(),
        Err(response) => response,
    }
}

/// One watcher's state between events.
struct Watcher {
    hub: WatchHub,
    query: WatchQuery,
    /// Lines to send before any change (initial events, their end bookmark).
    pending: VecDeque<Bytes>,
    /// Changes from the history, then the live feed.
    replay: VecDeque<Arc<Event>>,
    live: broadcast::Receiver<Arc<Event>>,
    /// Every change up to here has been sent or skipped: what a bookmark may promise.
    progress: u64,
    deadline: Instant,
    next_bookmark: Option<Instant>,
}

impl Watcher {
    fn start(
        hub: &WatchHub,
        query: WatchQuery,
        snapshot: Option<Snapshot>,
    ) -> Result<Watcher, Expired> {
        let mut pending = VecDeque::new();
        let from = match (query.start, snapshot) {
            (Start::Snapshot { end_bookmark }, Some(snapshot)) => {
                for item in snapshot.items {
                    let object = match &query.present {
                        Some(present) => present(&item),
                        None => item,
                    };
                    pending.push_back(json_line(&json!({"type": "ADDED", "object": object})));
                }
                if end_bookmark {
                    pending.push_back(query.bookmark(snapshot.resource_version, true));
                }
                snapshot.resource_version
            }
            (Start::Snapshot { .. }, None) => {
                tracing::warn!(
                    resource = query.resource.plural,
                    "watch: no initial list given; starting from now"
                );
                hub.resource_version()
            }
            (Start::After(version), _) => version,
            (Start::Now, _) => hub.resource_version(),
        };
        let (replay, live) = hub.subscribe(from)?;
        let now = Instant::now();
        let timeout = query.timeout.unwrap_or_else(|| {
            let base = hub.inner.settings.default_timeout;
            base + base.mul_f64(jitter())
        });
        // timeoutSeconds comes from the client: one past what an Instant holds means
        // "never" rather than an overflow.
        let deadline = now
            .checked_add(timeout)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600));
        let mut watcher = Watcher {
            hub: hub.clone(),
            query,
            pending,
            replay,
            live,
            progress: from,
            deadline,
            next_bookmark: None,
        };
        watcher.schedule_bookmark(now);
        Ok(watcher)
    }

    /// About once a period, and 2 s before the deadline so that a client resuming after
    /// the timeout starts as late as possible (as the apiserver does).
    fn schedule_bookmark(&mut self, now: Instant) {
        if !self.query.allow_bookmarks {
            return;
        }
        let periodic = now + self.hub.inner.settings.bookmark_every;
        let before_deadline = self.deadline.checked_sub(Duration::from_secs(2));
        self.next_bookmark = match before_deadline {
            Some(last) if last < periodic => (last > now).then_some(last),
            _ => Some(periodic),
        };
    }

    fn line_for(&mut self, event: &Event) -> Option<Bytes> {
        self.progress = self.progress.max(event.change.resource_version);
        let kind = self.query.sees(&event.change)?;
        Some(event.line_as(kind, &self.hub.inner.render, self.query.present.as_ref()))
    }

    async fn next(&mut self) -> Option<Bytes> {
        if let Some(line) = self.pending.pop_front() {
            return Some(line);
        }
        while let Some(event) = self.replay.pop_front() {
            if let Some(line) = self.line_for(&event) {
                return Some(line);
            }
        }
        loop {
            let bookmark = self.next_bookmark;
            tokio::select! {
                biased;
                _ = tokio::time::sleep_until(self.deadline) => return None,
                received = self.live.recv() => match received {
                    Ok(event) => {
                        if event.change.resource_version <= self.progress {
                            continue;
                        }
                        if let Some(line) = self.line_for(&event) {
                            return Some(line);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        let closed = self.hub.inner.slow_closed.fetch_add(1, Ordering::Relaxed) + 1;
                        tracing::warn!(
                            resource = self.query.resource.plural,
                            missed,
                            closed_so_far = closed,
                            "watch: watcher too slow, closed (its client re-lists)"
                        );
                        return None;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = sleep_until_some(bookmark), if bookmark.is_some() => {
                    self.schedule_bookmark(Instant::now());
                    return Some(self.query.bookmark(self.progress, false));
                }
            }
        }
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A fraction in [0, 1) that differs between watches, so default deadlines spread out.
fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(nanos % 1000) / 1000.0
}

#[cfg(test)]
mod tests;
