//! Kubernetes API budgets (issue 11), with 1,000 nodes and 10,000 pods in the store:
//! list of every pod (JSON, and as kubectl's Table), get of one pod (p50/p99), and the
//! controller's RSS; each against the floor of an authenticated `/version` round trip over
//! the same TLS connection, measured in the same run.
//!
//! The store is filled before the server starts (nodes register themselves over MQTT and
//! cannot be created through the API), with the objects' shapes the controller writes.
//!
//! Run: `scripts/bench-api`.

use std::time::{Duration, Instant};

use chrono::Utc;
use drover::store::{Store, StoredObject};
use drover_e2e::*;
use drover_proto::manifest::Kind;
use serde_json::{json, Value};

const NODES: usize = 1_000;
const PODS: usize = 10_000;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn object(
    kind: Kind,
    name: &str,
    labels: &[(&str, &str)],
    spec: Value,
    status: Value,
) -> StoredObject {
    StoredObject {
        kind,
        namespace: if kind.namespaced() {
            "default".into()
        } else {
            String::new()
        },
        name: name.into(),
        uid: drover_proto::random::new_uid().expect("uid"),
        resource_version: 0,
        generation: 1,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        annotations: Default::default(),
        owner_references: json!([]),
        managed_fields: serde_json::Value::Null,
        spec,
        status,
        created_at: Utc::now(),
        deletion_timestamp: None,
        agent_revision: 0,
    }
}

fn fill(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).expect("data dir");
    let mut store = Store::open(dir).expect("store");
    let now = drover::object::timestamp(Utc::now());
    for n in 0..NODES {
        let name = format!("node-{n:04}");
        store
            .put(&object(
                Kind::Node,
                &name,
                &[("kubernetes.io/hostname", &name), ("kubernetes.io/arch", "arm64")],
                json!({}),
                json!({
                    "conditions": [{"type": "Ready", "status": "True", "reason": "AgentReady",
                                    "lastTransitionTime": now}],
                    "nodeInfo": {"architecture": "arm64", "operatingSystem": "linux",
                                 "kubeletVersion": "v0.1.0", "osImage": "Debian GNU/Linux 12",
                                 "kernelVersion": "6.1.0", "containerRuntimeVersion": "process"},
                    "addresses": [{"type": "InternalIP", "address": format!("10.0.{}.{}", n / 250, n % 250)}],
                }),
            ))
            .expect("put node");
    }
    for p in 0..PODS {
        let name = format!("pod-{p:05}");
        let node = format!("node-{:04}", p % NODES);
        store
            .put(&object(
                Kind::Pod,
                &name,
                &[("app", "bench")],
                json!({
                    "nodeName": node,
                    "restartPolicy": "Always",
                    "containers": [{"name": "main", "command": ["sleep", "3600"]}],
                }),
                json!({
                    "phase": "Running",
                    "startTime": now,
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [{"name": "main", "ready": true, "restartCount": 0,
                                           "state": {"running": {"startedAt": now}}}],
                }),
            ))
            .expect("put pod");
    }
}

fn timed(runs: usize, mut request: impl FnMut()) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            request();
            start.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let filling = Instant::now();
    fill(&dir.path().join("server"));
    println!(
        "store filled with {NODES} nodes and {PODS} pods in {:.1} s",
        filling.elapsed().as_secs_f64()
    );
    let server = Server::start(
        dir.path(),
        ServerOptions {
            disable_agent: true,
            ..Default::default()
        },
    );
    let http = server.http();
    let token = format!("Bearer {}", server.token());
    let get = |path: &str, accept: &str| -> Vec<u8> {
        http.get(format!("{}{path}", server.api))
            .header("Authorization", &token)
            .header("Accept", accept)
            .call()
            .expect("GET")
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .expect("body")
    };
    let idle_rss_mib = rss_kib(server.proc.pid()) as f64 / 1024.0;
    let cold = Instant::now();
    let list = get("/api/v1/namespaces/default/pods", "application/json");
    let cold_list = cold.elapsed();
    let list: Value = serde_json::from_slice(&list).expect("pod list");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(PODS));

    let floor = timed(200, || {
        get("/version", "application/json");
    });
    let json_lists = timed(20, || {
        get("/api/v1/pods", "application/json");
    });
    let json_rss_mib = rss_kib(server.proc.pid()) as f64 / 1024.0;
    let table_lists = timed(20, || {
        get(
            "/api/v1/pods",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        );
    });
    let mut n = 0;
    let gets = timed(1_000, || {
        n = (n + 7919) % PODS;
        get(
            &format!("/api/v1/namespaces/default/pods/pod-{n:05}"),
            "application/json",
        );
    });
    let rss_mib = rss_kib(server.proc.pid()) as f64 / 1024.0;

    let floor_p50 = percentile(&floor, 0.5);
    println!(
        "floor: authenticated GET /version over TLS: p50 {:.3} ms, p99 {:.3} ms",
        ms(floor_p50),
        ms(percentile(&floor, 0.99))
    );
    for (what, times, budget) in [
        ("list of 10,000 pods (JSON)", &json_lists, Some(150.0)),
        ("list of 10,000 pods (Table)", &table_lists, None),
    ] {
        let p50 = percentile(times, 0.5);
        println!(
            "{what}: p50 {:.1} ms, max {:.1} ms ({:.0}x the floor){}",
            ms(p50),
            ms(*times.last().expect("runs")),
            p50.as_secs_f64() / floor_p50.as_secs_f64(),
            budget
                .map(|b| format!(" — budget {b} ms"))
                .unwrap_or_default()
        );
    }
    println!(
        "get of one pod: p50 {:.3} ms, p99 {:.3} ms ({:.1}x the floor) — budget p99 2 ms",
        ms(percentile(&gets, 0.5)),
        ms(percentile(&gets, 0.99)),
        percentile(&gets, 0.5).as_secs_f64() / floor_p50.as_secs_f64()
    );
    println!(
        "first list of 10,000 pods (JSON), each pod rendered: {:.1} ms",
        ms(cold_list)
    );
    println!(
        "controller RSS with {NODES} nodes and {PODS} pods, before any list: {idle_rss_mib:.1} MiB"
    );
    println!("controller RSS after 21 JSON lists: {json_rss_mib:.1} MiB");
    println!(
        "controller RSS with {NODES} nodes and {PODS} pods, after the Table lists too: {rss_mib:.1} MiB — budget 128 MiB"
    );
}
