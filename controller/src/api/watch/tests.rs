use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::BodyDataStream;
use chrono::Utc;
use drover_proto::manifest::Kind;
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::*;
use crate::api::resources;
use crate::store::Store;

fn pods() -> &'static Resource {
    resources::by_kind("Pod").unwrap()
}

fn object(kind: Kind, namespace: &str, name: &str, app: &str) -> StoredObject {
    StoredObject {
        kind,
        namespace: namespace.into(),
        name: name.into(),
        uid: format!("uid-{namespace}-{name}"),
        resource_version: 0,
        generation: 1,
        labels: BTreeMap::from([("app".into(), app.into())]),
        annotations: BTreeMap::new(),
        owner_references: Value::Array(vec![]),
        managed_fields: serde_json::Value::Null,
        spec: json!({"containers": []}),
        status: Value::Null,
        created_at: Utc::now(),
        deletion_timestamp: None,
        agent_revision: 0,
    }
}

fn pod(name: &str, app: &str) -> StoredObject {
    object(Kind::Pod, "default", name, app)
}

/// A store whose changes go to a hub.
fn store_with(settings: HubSettings) -> (Store, WatchHub) {
    let mut store = Store::in_memory().unwrap();
    let hub = WatchHub::with_settings(store.resource_version().unwrap(), settings);
    store.set_change_sink(Box::new(hub.clone()));
    (store, hub)
}

fn store() -> (Store, WatchHub) {
    store_with(HubSettings::default())
}

fn params(pairs: &[(&str, &str)]) -> WatchParams {
    let mut p = WatchParams::default();
    for (k, v) in pairs {
        let v = Some(v.to_string());
        match *k {
            "watch" => p.watch = v,
            "resourceVersion" => p.resource_version = v,
            "resourceVersionMatch" => p.resource_version_match = v,
            "allowWatchBookmarks" => p.allow_watch_bookmarks = v,
            "timeoutSeconds" => p.timeout_seconds = v,
            "sendInitialEvents" => p.send_initial_events = v,
            other => panic!("{other}"),
        }
    }
    p
}

fn query(pairs: &[(&str, &str)]) -> WatchQuery {
    WatchQuery::new(pods(), None, everything(), &params(pairs)).unwrap()
}

fn app_is(app: &'static str) -> Matcher {
    Arc::new(move |o: &StoredObject| o.labels.get("app").is_some_and(|a| a == app))
}

/// Reads a watch body event by event, with a deadline so a missing event fails the test
/// instead of hanging it.
struct Events {
    body: BodyDataStream,
    buffer: Vec<u8>,
}

impl Events {
    fn of(response: Response) -> Events {
        Events {
            body: response.into_body().into_data_stream(),
            buffer: Vec::new(),
        }
    }

    /// The next event, or `None` once the stream has ended.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Some(serde_json::from_slice(&line).unwrap());
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("an event or the end of the stream within 10 s")?;
            self.buffer.extend_from_slice(&chunk.unwrap());
        }
    }

    async fn next_event(&mut self) -> (String, String, String) {
        let event = self.next().await.expect("another event");
        summary(&event)
    }
}

/// (type, name, resourceVersion) of an event.
fn summary(event: &Value) -> (String, String, String) {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        text(&event["type"]),
        text(&event["object"]["metadata"]["name"]),
        text(&event["object"]["metadata"]["resourceVersion"]),
    )
}

fn ev(kind: &str, name: &str, rv: u64) -> (String, String, String) {
    (kind.into(), name.into(), rv.to_string())
}

#[tokio::test]
async fn a_watch_from_an_older_version_replays_every_later_change_in_order() {
    let (mut store, hub) = store();
    let a = store.put(&pod("a", "web")).unwrap();
    let from = a.resource_version;
    let b = store.put(&pod("b", "web")).unwrap();
    let mut a2 = a.clone();
    a2.status = json!({"phase": "Running"});
    let a2 = store.put(&a2).unwrap();
    store.delete(Kind::Pod, "default", "b").unwrap();
    let deleted = store.resource_version().unwrap();
    let mut events = Events::of(respond(
        &hub,
        query(&[("resourceVersion", &from.to_string())]),
        None,
    ));
    assert_eq!(
        events.next_event().await,
        ev("ADDED", "b", b.resource_version)
    );
    assert_eq!(
        events.next_event().await,
        ev("MODIFIED", "a", a2.resource_version)
    );
    assert_eq!(
        events.next_event().await,
        ev("DELETED", "b", deleted),
        "a DELETED object carries the deletion's resourceVersion"
    );
    // Then live changes follow, with nothing lost between the replay and the feed.
    let c = store.put(&pod("c", "web")).unwrap();
    assert_eq!(
        events.next_event().await,
        ev("ADDED", "c", c.resource_version)
    );
}

#[tokio::test]
async fn a_watch_older_than_the_history_gets_410_expired_as_one_error_event() {
    let (mut store, hub) = store_with(HubSettings {
        history: 3,
        ..HubSettings::default()
    });
    for i in 0..5 {
        store.put(&pod(&format!("p{i}"), "web")).unwrap();
    }
    // Versions 1..=5; 3, 4, 5 are kept, so a watch may start from 2 but not from 1.
    let response = respond(&hub, query(&[("resourceVersion", "1")]), None);
    assert_eq!(response.status(), StatusCode::OK);
    let mut events = Events::of(response);
    assert_eq!(
        events.next().await.unwrap(),
        json!({"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "too old resource version: 1 (2)", "reason": "Expired", "code": 410,
        }})
    );
    assert_eq!(events.next().await, None);
    let mut events = Events::of(respond(&hub, query(&[("resourceVersion", "2")]), None));
    assert_eq!(events.next_event().await, ev("ADDED", "p2", 3));
}

#[tokio::test]
async fn the_history_keeps_within_its_memory_budget() {
    let one = footprint(&pod("p0", "web"));
    let (mut store, hub) = store_with(HubSettings {
        history_bytes: one * 2 + one / 2,
        ..HubSettings::default()
    });
    for i in 0..5 {
        store.put(&pod(&format!("p{i}"), "web")).unwrap();
    }
    assert_eq!(hub.history().events.len(), 2);
    assert!(hub.history().bytes <= one * 2 + one / 2);
    let mut events = Events::of(respond(&hub, query(&[("resourceVersion", "2")]), None));
    assert_eq!(events.next().await.unwrap()["object"]["code"], 410);
    let mut events = Events::of(respond(&hub, query(&[("resourceVersion", "3")]), None));
    assert_eq!(events.next_event().await, ev("ADDED", "p3", 4));
}

#[tokio::test]
async fn a_watch_from_before_the_server_started_is_expired() {
    let mut store = Store::in_memory().unwrap();
    store.put(&pod("a", "web")).unwrap();
    store.put(&pod("b", "web")).unwrap();
    let hub = WatchHub::new(store.resource_version().unwrap());
    let mut events = Events::of(respond(&hub, query(&[("resourceVersion", "1")]), None));
    let error = events.next().await.unwrap();
    assert_eq!(error["type"], "ERROR");
    assert_eq!(error["object"]["code"], 410);
}

#[tokio::test]
async fn kind_namespace_and_selector_filter_what_a_watcher_sees() {
    let (mut store, hub) = store();
    let query = WatchQuery::new(
        pods(),
        Some("default".into()),
        app_is("web"),
        &params(&[("resourceVersion", "0")]),
    )
    .unwrap();
    let mut events = Events::of(respond(&hub, query, None));
    store
        .put(&object(Kind::DaemonSet, "default", "x", "web"))
        .unwrap();
    store.put(&object(Kind::Pod, "other", "y", "web")).unwrap();
    store.put(&pod("db", "db")).unwrap();
    let web = store.put(&pod("web", "web")).unwrap();
    assert_eq!(
        events.next_event().await,
        ev("ADDED", "web", web.resource_version)
    );
}

#[tokio::test]
async fn an_object_that_stops_or_starts_matching_is_deleted_or_added_for_that_watcher() {
    let (mut store, hub) = store();
    let a = store.put(&pod("a", "web")).unwrap();
    let from = a.resource_version.to_string();
    let watch = |matches| {
        WatchQuery::new(
            pods(),
            None,
            matches,
            &params(&[("resourceVersion", &from)]),
        )
        .unwrap()
    };
    let mut web = Events::of(respond(&hub, watch(app_is("web")), None));
    let mut all = Events::of(respond(&hub, watch(everything()), None));
    let mut relabelled = a.clone();
    relabelled.labels.insert("app".into(), "db".into());
    let relabelled = store.put(&relabelled).unwrap();
    let back = store.put(&a).unwrap();

    let gone = web.next().await.unwrap();
    assert_eq!(
        summary(&gone),
        ev("DELETED", "a", relabelled.resource_version)
    );
    assert_eq!(
        gone["object"]["metadata"]["labels"]["app"], "web",
        "the watcher gets the object as it last matched"
    );
    assert_eq!(
        web.next_event().await,
        ev("ADDED", "a", back.resource_version)
    );
    assert_eq!(
        all.next_event().await,
        ev("MODIFIED", "a", relabelled.resource_version)
    );
    assert_eq!(
        all.next_event().await,
        ev("MODIFIED", "a", back.resource_version)
    );
}

#[tokio::test]
async fn without_a_version_a_watch_starts_with_the_objects_of_the_list() {
    let (mut store, hub) = store();
    store.put(&pod("a", "web")).unwrap();
    store.put(&pod("b", "db")).unwrap();
    store.put(&object(Kind::Node, "", "n1", "web")).unwrap();
    let q = WatchQuery::new(pods(), None, app_is("web"), &params(&[])).unwrap();
    assert!(q.wants_snapshot());
    let objects: Vec<_> = store
        .list(Kind::Pod, None)
        .unwrap()
        .into_iter()
        .chain(store.list(Kind::Node, None).unwrap())
        .collect();
    let snapshot = Snapshot::of_objects(&hub, &q, &objects, store.resource_version().unwrap());
    let mut events = Events::of(respond(&hub, q, Some(snapshot)));
    let c = store.put(&pod("c", "web")).unwrap();
    assert_eq!(events.next_event().await, ev("ADDED", "a", 1));
    assert_eq!(
        events.next_event().await,
        ev("ADDED", "c", c.resource_version)
    );
}

#[tokio::test]
async fn send_initial_events_ends_them_with_an_annotated_bookmark() {
    let (mut store, hub) = store();
    store.put(&pod("a", "web")).unwrap();
    let q = query(&[
        ("sendInitialEvents", "true"),
        ("resourceVersionMatch", "NotOlderThan"),
        ("allowWatchBookmarks", "true"),
    ]);
    let list = json!({
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": store.resource_version().unwrap().to_string()},
        "items": [crate::object::to_json(&store.list(Kind::Pod, None).unwrap()[0])],
    });
    let snapshot = Snapshot::from_list(list).unwrap();
    let mut events = Events::of(respond(&hub, q, Some(snapshot)));
    assert_eq!(events.next_event().await, ev("ADDED", "a", 1));
    assert_eq!(
        events.next().await.unwrap(),
        json!({"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1", "metadata": {
            "resourceVersion": "1",
            "annotations": {"k8s.io/initial-events-end": "true"},
        }}})
    );
}

#[tokio::test]
async fn an_idle_watcher_gets_bookmarks_with_the_version_it_has_seen() {
    let (mut store, hub) = store_with(HubSettings {
        bookmark_every: Duration::from_millis(20),
        ..HubSettings::default()
    });
    let a = store.put(&pod("a", "web")).unwrap();
    let q = WatchQuery::new(
        pods(),
        None,
        app_is("db"),
        &params(&[
            ("resourceVersion", &a.resource_version.to_string()),
            ("allowWatchBookmarks", "true"),
        ]),
    )
    .unwrap();
    let mut events = Events::of(respond(&hub, q, None));
    let b = store.put(&pod("b", "web")).unwrap();
    // The change to b is filtered out, but a bookmark still moves past it.
    loop {
        let event = events.next().await.unwrap();
        assert_eq!(event["type"], "BOOKMARK");
        assert_eq!(event["object"]["kind"], "Pod");
        if event["object"]["metadata"]["resourceVersion"] == *b.resource_version.to_string() {
            break;
        }
    }
    // Without allowWatchBookmarks there are none: the stream just ends at its deadline.
    let q = query(&[("resourceVersion", "0"), ("timeoutSeconds", "1")]);
    let mut events = Events::of(respond(&hub, q, None));
    assert_eq!(events.next().await, None);
}

#[test]
fn bookmarks_come_periodically_and_two_seconds_before_the_deadline() {
    let hub = WatchHub::new(0);
    let mut q = query(&[("allowWatchBookmarks", "true"), ("timeoutSeconds", "100")]);
    q.start = Start::Now;
    let mut watcher = Watcher::start(&hub, q, None).unwrap();
    let start = watcher.deadline - Duration::from_secs(100);
    assert_eq!(watcher.next_bookmark, Some(start + Duration::from_secs(60)));
    watcher.schedule_bookmark(start + Duration::from_secs(60));
    assert_eq!(watcher.next_bookmark, Some(start + Duration::from_secs(98)));
    watcher.schedule_bookmark(start + Duration::from_secs(98));
    assert_eq!(watcher.next_bookmark, None);
}

#[tokio::test]
async fn a_watch_ends_cleanly_at_its_timeout() {
    let (_store, hub) = store();
    let mut q = query(&[("resourceVersion", "0")]);
    q.timeout = Some(Duration::from_millis(50));
    let mut events = Events::of(respond(&hub, q, None));
    assert_eq!(events.next().await, None);
}

#[tokio::test]
async fn a_watcher_too_slow_to_keep_up_is_closed_and_counted() {
    let (mut store, hub) = store_with(HubSettings {
        lag: 4,
        ..HubSettings::default()
    });
    let mut slow = Events::of(respond(&hub, query(&[("resourceVersion", "0")]), None));
    assert_eq!(hub.watchers(), 1);
    for i in 0..10 {
        store.put(&pod(&format!("p{i}"), "web")).unwrap();
    }
    assert_eq!(
        slow.next().await,
        None,
        "closed, not buffered without bound"
    );
    assert_eq!(hub.slow_watchers_closed(), 1);
    assert_eq!(hub.watchers(), 0);
    // The client resumes from the history, which still has everything.
    let mut again = Events::of(respond(&hub, query(&[("resourceVersion", "0")]), None));
    store.put(&pod("late", "web")).unwrap();
    assert_eq!(again.next_event().await, ev("ADDED", "late", 11));
    let mut replay = Events::of(respond(&hub, query(&[("resourceVersion", "9")]), None));
    assert_eq!(replay.next_event().await, ev("ADDED", "p9", 10));
}

#[tokio::test]
async fn each_change_is_rendered_once_for_all_watchers() {
    let (mut store, hub) = store();
    let mut one = Events::of(respond(&hub, query(&[("resourceVersion", "0")]), None));
    let mut two = Events::of(respond(&hub, query(&[("resourceVersion", "0")]), None));
    store.put(&pod("a", "web")).unwrap();
    assert_eq!(one.next_event().await, ev("ADDED", "a", 1));
    assert_eq!(two.next_event().await, ev("ADDED", "a", 1));
    let history = hub.history();
    let event = &history.events[0];
    let line = event.line.get().expect("rendered");
    assert_eq!(
        line.as_ptr(),
        event
            .line_as(ChangeType::Added, &hub.inner.render, None)
            .as_ptr(),
        "shared, not copied"
    );
}

#[test]
fn parameters_are_read_as_the_apiserver_reads_them() {
    let start = |pairs: &[(&str, &str)]| {
        WatchQuery::new(pods(), None, everything(), &params(pairs)).map(|q| q.start)
    };
    assert_eq!(
        start(&[]),
        Ok(Start::Snapshot {
            end_bookmark: false
        })
    );
    assert_eq!(
        start(&[("resourceVersion", "0")]),
        Ok(Start::Snapshot {
            end_bookmark: false
        })
    );
    assert_eq!(start(&[("resourceVersion", "7")]), Ok(Start::After(7)));
    assert_eq!(
        start(&[
            ("sendInitialEvents", "false"),
            ("resourceVersionMatch", "NotOlderThan")
        ]),
        Ok(Start::Now)
    );
    assert!(start(&[("resourceVersion", "x")]).is_err());
    assert!(start(&[("sendInitialEvents", "true")]).is_err());
    assert!(start(&[
        ("sendInitialEvents", "true"),
        ("resourceVersionMatch", "NotOlderThan")
    ])
    .is_err());
    assert!(start(&[("resourceVersionMatch", "NotOlderThan")]).is_err());
    assert!(start(&[("resourceVersionMatch", "Exact")]).is_err());
    assert!(start(&[("timeoutSeconds", "-1")]).is_err());
    assert!(params(&[("watch", "true")]).is_watch());
    assert!(params(&[("watch", "1")]).is_watch());
    assert!(params(&[("watch", "")]).is_watch());
    assert!(!params(&[("watch", "false")]).is_watch());
    assert!(!params(&[("watch", "0")]).is_watch());
    assert!(!params(&[]).is_watch());
    let huge = query(&[("timeoutSeconds", &u64::MAX.to_string())]);
    assert!(Watcher::start(&WatchHub::new(0), huge, None).is_ok());
    let q = query(&[("timeoutSeconds", "30"), ("allowWatchBookmarks", "1")]);
    assert_eq!(q.timeout, Some(Duration::from_secs(30)));
    assert!(q.allow_bookmarks);
}

/// Over real HTTP: headers, chunked transfer, one event per line as it happens.
#[tokio::test]
async fn the_stream_is_chunked_newline_delimited_json_over_http() {
    use axum::extract::{Query, State};
    use tokio::io::AsyncWriteExt;

    let (mut store, hub) = store();
    let app = axum::Router::new()
        .route(
            "/api/v1/pods",
            axum::routing::get(
                |State(hub): State<WatchHub>, Query(p): Query<WatchParams>| async move {
                    assert!(p.is_watch());
                    match WatchQuery::new(pods(), None, everything(), &p) {
                        Ok(q) => respond(&hub, q, None),
                        Err(bad) => bad.into_response(),
                    }
                },
            ),
        )
        .with_state(hub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(
            b"GET /api/v1/pods?watch=1&resourceVersion=0 HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n",
        )
        .await
        .unwrap();
    let mut received = Vec::new();
    read_until(&mut received, &mut socket, "\r\n\r\n").await;
    let head = String::from_utf8_lossy(&received).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");

    // Written after the headers went out (the watcher subscribed before they did): the
    // event is flushed as it happens.
    assert_eq!(hub.watchers(), 1);
    store.put(&pod("a", "web")).unwrap();
    read_until(&mut received, &mut socket, "}\n\r\n").await;
    let text = String::from_utf8_lossy(&received).to_string();
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    // One chunk: its size line, then the event line.
    let (size, rest) = body.split_once("\r\n").unwrap();
    let size = usize::from_str_radix(size.trim(), 16).unwrap();
    let event: Value = serde_json::from_str(&rest[..size]).unwrap();
    assert_eq!(summary(&event), ev("ADDED", "a", 1));
    assert!(rest[..size].ends_with('\n'));
}

/// Reads from `socket` until `received` holds `what`.
async fn read_until(received: &mut Vec<u8>, socket: &mut tokio::net::TcpStream, what: &str) {
    use tokio::io::AsyncReadExt;
    let what = what.as_bytes();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !received.windows(what.len()).any(|w| w == what) {
            let mut buffer = [0u8; 4096];
            let n = socket.read(&mut buffer).await.unwrap();
            assert!(n > 0, "connection closed early");
            received.extend_from_slice(&buffer[..n]);
        }
    })
    .await
    .expect("in time");
}

#[tokio::test]
async fn a_watcher_can_be_shown_objects_its_own_way_and_the_hub_renders_as_told() {
    let mut store = Store::in_memory().unwrap();
    let hub = WatchHub::with_renderer(
        0,
        HubSettings::default(),
        Arc::new(|o: &StoredObject| {
            let mut json = crate::object::to_json(o);
            json["rendered"] = json!(true);
            json
        }),
    );
    store.set_change_sink(Box::new(hub.clone()));
    let mut q = query(&[("resourceVersion", "0")]);
    q.present = Some(Arc::new(
        |o: &Value| json!({"kind": "Table", "rows": [{"object": o}]}),
    ));
    let mut tables = Events::of(respond(&hub, q, None));
    let mut plain = Events::of(respond(&hub, query(&[("resourceVersion", "0")]), None));
    store.put(&pod("a", "web")).unwrap();
    let table = tables.next().await.unwrap();
    assert_eq!(table["type"], "ADDED");
    assert_eq!(table["object"]["kind"], "Table");
    assert_eq!(table["object"]["rows"][0]["object"]["rendered"], true);
    let event = plain.next().await.unwrap();
    assert_eq!(event["object"]["kind"], "Pod");
    assert_eq!(event["object"]["rendered"], true);
}

/// Publish → every watcher's stream yields the event, without HTTP:
/// `cargo test -p drover --lib api::watch::tests::measure -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test"]
async fn measure_publish_to_100_watchers() {
    let (mut store, hub) = store();
    let (arrivals, mut arrived) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..100 {
        let mut events = Events::of(respond(&hub, query(&[("resourceVersion", "0")]), None));
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                let _ = arrivals.send((summary(&event).1, Instant::now()));
            }
        });
    }
    let mut latencies = Vec::new();
    for run in 0..50 {
        let name = format!("p{run}");
        let started = Instant::now();
        store.put(&pod(&name, "web")).unwrap();
        let mut got = 0;
        while got < 100 {
            let (seen, at) = tokio::time::timeout(Duration::from_secs(10), arrived.recv())
                .await
                .unwrap()
                .unwrap();
            if seen == name {
                got += 1;
                latencies.push(at - started);
            }
        }
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "store.put → 100 watchers' streams, {} samples: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        latencies.len(),
        ms(latencies[latencies.len() / 2]),
        ms(latencies[latencies.len() * 99 / 100]),
        ms(latencies[latencies.len() - 1]),
    );
}

#[tokio::test]
async fn serve_lists_only_when_the_watch_starts_with_the_current_objects() {
    let (mut store, hub) = store();
    let a = store.put(&pod("a", "web")).unwrap();
    let list = json!({
        "kind": "PodList",
        "metadata": {"resourceVersion": a.resource_version.to_string()},
        "items": [crate::object::to_json(&a)],
    });
    let mut events = Events::of(serve(&hub, query(&[]), async { Ok(list) }).await);
    assert_eq!(events.next_event().await, ev("ADDED", "a", 1));
    let b = store.put(&pod("b", "web")).unwrap();
    assert_eq!(
        events.next_event().await,
        ev("ADDED", "b", b.resource_version)
    );

    let q = query(&[("resourceVersion", "1")]);
    let mut events = Events::of(
        serve(&hub, q, async {
            panic!("no list is needed to resume from a version")
        })
        .await,
    );
    assert_eq!(
        events.next_event().await,
        ev("ADDED", "b", b.resource_version)
    );

    let failed = serve(&hub, query(&[]), async {
        Err(StatusCode::FORBIDDEN.into_response())
    })
    .await;
    assert_eq!(failed.status(), StatusCode::FORBIDDEN);
    let unversioned = serve(&hub, query(&[]), async { Ok(json!({"items": []})) }).await;
    assert_eq!(unversioned.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

/// What a full history of a pod's status changes costs:
/// `cargo test -p drover --lib api::watch::tests::measure_history -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a test"]
fn measure_history_memory() {
    fn rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }
    let mut template = pod("a", "web");
    template.spec = json!({
        "nodeName": "worker-17",
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "containers": [{
            "name": "main", "image": "registry.example.com/team/app:1.2.3",
            "command": ["/bin/app", "--listen", ":8080"],
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "two"}],
            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            "resources": {"limits": {"memory": "128Mi", "cpu": "500m"}},
        }],
        "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
    });
    template.status = json!({
        "phase": "Running", "hostIP": "10.0.0.17", "podIP": "10.0.0.17",
        "startTime": "2026-12-01T12:00:00Z",
        "conditions": [
            {"type": "Initialized", "status": "True", "lastTransitionTime": "2026-12-01T12:00:00Z"},
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-01T12:00:01Z"},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": "2026-12-01T12:00:01Z"},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-12-01T12:00:00Z"},
        ],
        "containerStatuses": [{
            "name": "main", "ready": true, "restartCount": 3, "started": true,
            "image": "registry.example.com/team/app:1.2.3", "imageID": "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "containerID": "docker://0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "state": {"running": {"startedAt": "2026-12-01T12:00:01Z"}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": "2026-12-01T11:00:01Z", "finishedAt": "2026-12-01T12:00:00Z"}},
        }],
    });
    let rendered = serde_json::to_vec(&crate::object::to_json(&template))
        .unwrap()
        .len();
    let hub = WatchHub::with_settings(
        0,
        HubSettings {
            history_bytes: usize::MAX,
            ..HubSettings::default()
        },
    );
    let before = rss_kib();
    let mut previous: Option<Arc<StoredObject>> = None;
    for rv in 1..=10_000u64 {
        let mut object = template.clone();
        object.resource_version = rv;
        let object = Arc::new(object);
        hub.publish(Change {
            kind: ChangeType::Modified,
            resource_version: rv,
            object: Arc::clone(&object),
            previous: previous.replace(object),
            event: None,
        });
    }
    let objects = rss_kib();
    for event in hub.history().events.iter() {
        event.line_as(ChangeType::Modified, &hub.inner.render, None);
    }
    let lines = rss_kib();
    println!(
        "10,000 changes of a {rendered}-byte pod: +{:.1} MiB for the objects, +{:.1} MiB once every line is rendered; estimated {:.1} MiB",
        (objects - before) as f64 / 1024.0,
        (lines - before) as f64 / 1024.0,
        (footprint(&template) * 10_000) as f64 / 1048576.0,
    );
}

mod ordering {
    use futures_util::FutureExt;
    use proptest::prelude::*;

    use super::*;

    const APPS: [&str; 3] = ["web", "db", "cache"];

    #[derive(Debug, Clone)]
    enum Op {
        Put { name: u8, app: usize },
        Delete { name: u8 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u8..4, 0usize..3).prop_map(|(name, app)| Op::Put { name, app }),
            1 => (0u8..4).prop_map(|name| Op::Delete { name }),
        ]
    }

    /// (type, name, resourceVersion) as the watcher should see them.
    type Seen = (&'static str, String, u64);

    /// (type, name, resourceVersion, app before, app after) of a change made.
    type Made = (ChangeType, String, u64, Option<usize>, Option<usize>);

    fn expected(changes: &[Made], from: u64, selector: Option<usize>) -> Vec<Seen> {
        let matches = |app: Option<usize>| app.is_some() && (selector.is_none() || app == selector);
        changes
            .iter()
            .filter(|c| c.2 > from)
            .filter_map(|(kind, name, rv, before, after)| {
                let kind = match kind {
                    ChangeType::Added => matches(*after).then_some("ADDED"),
                    ChangeType::Deleted => matches(*before).then_some("DELETED"),
                    ChangeType::Modified => match (matches(*before), matches(*after)) {
                        (true, true) => Some("MODIFIED"),
                        (false, true) => Some("ADDED"),
                        (true, false) => Some("DELETED"),
                        (false, false) => None,
                    },
                }?;
                Some((kind, name.clone(), *rv))
            })
            .collect()
    }

    fn drain(watcher: &mut Watcher) -> Vec<Seen> {
        let mut seen = Vec::new();
        // Everything was published before reading, so each event is ready at once; a
        // pending read means the stream has nothing more.
        while let Some(Some(line)) = watcher.next().now_or_never() {
            let event: Value = serde_json::from_slice(&line).unwrap();
            let (kind, name, rv) = summary(&event);
            let kind = ["ADDED", "MODIFIED", "DELETED"]
                .into_iter()
                .find(|k| *k == kind)
                .unwrap();
            seen.push((kind, name, rv.parse().unwrap()));
        }
        seen
    }

    fn watcher(hub: &WatchHub, from: u64, selector: Option<usize>) -> Watcher {
        let matches: Matcher = match selector {
            Some(app) => app_is(APPS[app]),
            None => everything(),
        };
        let mut q = WatchQuery::new(pods(), None, matches, &params(&[])).unwrap();
        // Not `resourceVersion=0`, which asks for the current objects first.
        q.start = Start::After(from);
        Watcher::start(hub, q, None).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Watchers live from the start and watchers resuming later from any version see
        /// exactly the changes after their version, in order, as their selector sees them.
        #[test]
        fn every_watcher_sees_every_later_change_in_order(
            ops in proptest::collection::vec(op(), 1..60),
            late in proptest::collection::vec((0u64..80, proptest::option::of(0usize..3)), 1..4),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
            let _guard = runtime.enter();
            let (mut store, hub) = store();
            let mut live: Vec<(Option<usize>, Watcher)> = [None, Some(0), Some(1)]
                .into_iter()
                .map(|s| (s, watcher(&hub, 0, s)))
                .collect();
            let mut apps: BTreeMap<String, usize> = BTreeMap::new();
            let mut changes = Vec::new();
            for op in ops {
                match op {
                    Op::Put { name, app } => {
                        let name = format!("p{name}");
                        let before = apps.insert(name.clone(), app);
                        let stored = store.put(&pod(&name, APPS[app])).unwrap();
                        let kind = if before.is_some() { ChangeType::Modified } else { ChangeType::Added };
                        changes.push((kind, name, stored.resource_version, before, Some(app)));
                    }
                    Op::Delete { name } => {
                        let name = format!("p{name}");
                        if let Some(before) = apps.remove(&name) {
                            store.delete(Kind::Pod, "default", &name).unwrap();
                            let rv = store.resource_version().unwrap();
                            changes.push((ChangeType::Deleted, name, rv, Some(before), Some(before)));
                        }
                    }
                }
            }
            for (selector, w) in &mut live {
                prop_assert_eq!(drain(w), expected(&changes, 0, *selector));
            }
            let latest = store.resource_version().unwrap();
            for (from, selector) in late {
                let from = from.min(latest);
                let mut w = watcher(&hub, from, selector);
                prop_assert_eq!(drain(&mut w), expected(&changes, from, selector), "from {}", from);
            }
        }
    }
}

#[tokio::test]
async fn events_are_in_the_feed_for_event_watchers_only_and_selected_by_their_fields() {
    let (mut store, hub) = store();
    let web = store.put(&pod("web", "web")).unwrap();
    let db = store.put(&pod("db", "db")).unwrap();
    let events_resource = crate::api::resources::by_kind("Event").unwrap();
    let from = store.resource_version().unwrap().to_string();
    let watch = |fields: Option<&str>| {
        let mut query = WatchQuery::new(
            events_resource,
            None,
            everything(),
            &params(&[("resourceVersion", &from)]),
        )
        .unwrap();
        if let Some(text) = fields {
            let selector = crate::api::selectors::FieldSelector::parse(text).unwrap();
            query.event_matches = Some(Arc::new(move |e: &Value| selector.matches("Event", e)));
        }
        Events::of(respond(&hub, query, None))
    };
    let mut every_event = watch(None);
    let mut about_web = watch(Some("involvedObject.name=web"));
    let mut pod_watch = Events::of(respond(&hub, query(&[("resourceVersion", &from)]), None));
    store
        .record_event(
            &db,
            "Normal",
            "Pulled",
            "image pulled",
            "drover",
            Utc::now(),
        )
        .unwrap();
    store
        .record_event(
            &web,
            "Warning",
            "BackOff",
            "restarting",
            "drover",
            Utc::now(),
        )
        .unwrap();
    store
        .record_event(
            &web,
            "Warning",
            "BackOff",
            "restarting",
            "drover",
            Utc::now(),
        )
        .unwrap();
    let later = store.put(&pod("later", "web")).unwrap();

    let first = every_event.next().await.unwrap();
    assert_eq!(first["type"], "ADDED");
    assert_eq!(first["object"]["kind"], "Event");
    assert_eq!(first["object"]["reason"], "Pulled");
    assert_eq!(first["object"]["involvedObject"]["name"], "db");
    let added = every_event.next().await.unwrap();
    let repeated = every_event.next().await.unwrap();
    assert_eq!(
        (added["type"].as_str(), repeated["type"].as_str()),
        (Some("ADDED"), Some("MODIFIED")),
        "a repeat bumps the same event"
    );
    assert_eq!(
        added["object"]["metadata"]["name"],
        repeated["object"]["metadata"]["name"]
    );
    assert_eq!(repeated["object"]["count"], 2);
    let rv = |e: &Value| -> u64 {
        e["object"]["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(rv(&first) < rv(&added) && rv(&added) < rv(&repeated));
    assert!(rv(&repeated) < later.resource_version);

    let web_first = about_web.next().await.unwrap();
    assert_eq!(
        web_first["object"]["reason"], "BackOff",
        "db's event is not selected"
    );
    assert_eq!(
        pod_watch.next_event().await,
        ev("ADDED", "later", later.resource_version),
        "a pod watcher sees no event"
    );
}
