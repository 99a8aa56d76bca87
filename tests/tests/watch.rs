//! Watch streams over HTTP against a real server and agent: a pod's life seen as ADDED,
//! MODIFIED up to Running, then DELETED, on the Kubernetes path (`?watch=true`).

use std::io::BufRead;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use drover_e2e::*;
use serde_json::Value;

/// Reads a watch stream on a thread; events arrive on the channel as they are sent.
fn watch(server: &Server, query: &str) -> mpsc::Receiver<Value> {
    let path = format!("/api/v1/namespaces/default/pods?watch=true&{query}");
    let response = server.api_get(&path).call().expect("watch request");
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let (events, received) = mpsc::channel();
    std::thread::spawn(move || {
        let reader = std::io::BufReader::new(response.into_body().into_reader());
        for line in reader.lines() {
            let Ok(line) = line else { return };
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                return;
            };
            if events.send(event).is_err() {
                return;
            }
        }
    });
    received
}

/// Events until one satisfies `done`, or panics at the deadline.
fn until(
    events: &mpsc::Receiver<Value>,
    what: &str,
    timeout: Duration,
    done: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(event) => {
                let last = done(&event);
                seen.push(event);
                if last {
                    return seen;
                }
            }
            Err(e) => panic!("no {what} within {timeout:?} ({e}); saw {seen:#?}"),
        }
    }
}

fn kind_of(event: &Value) -> &str {
    event["type"].as_str().unwrap_or("")
}

fn rv(event: &Value) -> u64 {
    event["object"]["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_pod_is_watched_from_added_to_running_to_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), "worker", &[]);
    let events = watch(&server, "allowWatchBookmarks=true");
    server.apply(&process_pod("watched", "worker", "Always", "sleep 300", 1));

    let t = Duration::from_secs(20);
    let life = until(&events, "Running", t, |e| {
        e["object"]["status"]["phase"] == "Running"
    });
    let life: Vec<&Value> = life.iter().filter(|e| kind_of(e) != "BOOKMARK").collect();
    assert_eq!(kind_of(life[0]), "ADDED", "{life:#?}");
    assert!(
        life[1..].iter().all(|e| kind_of(e) == "MODIFIED"),
        "{life:#?}"
    );
    assert!(life
        .iter()
        .all(|e| e["object"]["metadata"]["name"] == "watched"));
    assert!(
        life.windows(2).all(|w| rv(w[0]) < rv(w[1])),
        "in resourceVersion order: {life:#?}"
    );
    let running_at = rv(life[life.len() - 1]);

    // A second watch resuming from the ADDED event replays the same history.
    let replay = watch(&server, &format!("resourceVersion={}", rv(life[0])));
    let again = until(&replay, "Running again", t, |e| rv(e) == running_at);
    assert_eq!(again.len(), life.len() - 1);

    server.cli_ok(&["delete", "pod", "watched"]);
    let end = until(&events, "DELETED", t, |e| kind_of(e) == "DELETED");
    let deleted = end.last().unwrap();
    assert_eq!(deleted["object"]["metadata"]["name"], "watched");
    assert!(rv(deleted) > running_at);
}

#[test]
fn a_watch_from_a_version_older_than_the_server_gets_410() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_alone(dir.path());
    server.apply(&process_pod("p", "nowhere", "Always", "sleep 300", 1));
    server.apply(&process_pod("q", "nowhere", "Always", "sleep 300", 1));
    server.restart();
    let events = watch(&server, "resourceVersion=1");
    let error = until(&events, "ERROR", Duration::from_secs(10), |_| true);
    assert_eq!(error[0]["type"], "ERROR");
    assert_eq!(error[0]["object"]["code"], 410);
    assert_eq!(error[0]["object"]["reason"], "Expired");
}
