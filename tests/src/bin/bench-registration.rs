//! Registration storm: N `drover-agent` processes (default 300; `DROVER_BENCH_AGENTS`)
//! started at once against one server, each enrolling with the join token over TLS. Reports
//! the time until all are Ready and, polling the node list every 50 ms for the whole run and
//! 5 s after, how many nodes were ever seen not Ready after they had first been Ready while
//! their agent was alive (budget: 0); then the `NodeNotReady` events the API shows, and the
//! server's RSS.
//!
//! Run: `scripts/bench-registration`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use drover_e2e::*;
use serde_json::Value;

/// Ready condition status of every node in the list.
fn readiness(server: &Server) -> Option<BTreeMap<String, String>> {
    let mut response = server.api_get("/api/v1/nodes").call().ok()?;
    let list = response.body_mut().read_json::<Value>().ok()?;
    let items = list["items"].as_array()?;
    Some(
        items
            .iter()
            .filter_map(|n| {
                let name = n["metadata"]["name"].as_str()?.to_string();
                let ready = n["status"]["conditions"]
                    .as_array()?
                    .iter()
                    .find(|c| c["type"] == "Ready")?["status"]
                    .as_str()?
                    .to_string();
                Some((name, ready))
            })
            .collect(),
    )
}

/// A node's events as (reason, count), oldest first as the API lists them.
fn event_reasons(server: &Server, node: &str) -> Vec<(String, u64)> {
    let selector = format!("involvedObject.kind=Node,involvedObject.name={node}");
    let Ok(mut response) = server
        .api_get("/api/v1/namespaces/default/events")
        .query("fieldSelector", &selector)
        .call()
    else {
        return Vec::new();
    };
    let Ok(events) = response.body_mut().read_json::<Value>() else {
        return Vec::new();
    };
    events["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|e| Some((e["reason"].as_str()?.to_string(), e["count"].as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether process `pid` runs (exists and is not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .map(|(_, rest)| !rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

fn main() {
    let count: usize = std::env::var("DROVER_BENCH_AGENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_alone(dir.path());
    let names: Vec<String> = (0..count).map(|i| format!("reg-{i:03}")).collect();

    // Four threads start the agents (as fast as this machine forks them) while this one
    // polls the node list from the first start on.
    let spawners = 4;
    let agents: Mutex<Vec<Agent>> = Mutex::new(Vec::with_capacity(count));
    let pids: Mutex<HashMap<String, u32>> = Mutex::new(HashMap::new());
    let spawned = Mutex::new(Duration::ZERO);
    let mut first_ready: BTreeMap<String, Duration> = BTreeMap::new();
    let mut flapped: BTreeSet<String> = BTreeSet::new();
    let mut polls = 0u32;
    let mut all_ready = None;
    let mut server_rss_all_ready = 0;
    let timeout = Duration::from_secs(180);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for part in names.chunks(count.div_ceil(spawners)) {
            let (agents, pids, spawned, broker) = (&agents, &pids, &spawned, &server.broker);
            let dir = dir.path();
            scope.spawn(move || {
                for name in part {
                    let agent = Agent::start(dir, broker, name, &[]);
                    pids.lock().unwrap().insert(name.clone(), agent.proc.pid());
                    agents.lock().unwrap().push(agent);
                }
                let mut spawned = spawned.lock().unwrap();
                *spawned = (*spawned).max(start.elapsed());
            });
        }
        loop {
            let now = start.elapsed();
            if let Some(nodes) = readiness(&server) {
                polls += 1;
                let pids = pids.lock().unwrap();
                for name in &names {
                    match nodes.get(name).map(String::as_str) {
                        Some("True") => {
                            first_ready.entry(name.clone()).or_insert(now);
                        }
                        seen if first_ready.contains_key(name)
                            && pids.get(name).is_some_and(|&pid| alive(pid))
                            && flapped.insert(name.clone()) =>
                        {
                            println!(
                                "node {name} seen Ready={seen:?} at {:.1} s after being Ready",
                                now.as_secs_f64()
                            );
                        }
                        _ => {}
                    }
                }
            }
            if all_ready.is_none() && first_ready.len() == count {
                all_ready = Some(now);
                server_rss_all_ready = rss_kib(server.proc.pid());
            }
            match all_ready {
                Some(at) if now > at + Duration::from_secs(5) => break,
                None if now > timeout => break,
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let mut agents = agents.into_inner().unwrap();
    let spawned = spawned.into_inner().unwrap();
    let dead: Vec<&str> = agents
        .iter_mut()
        .filter_map(|a| (!a.proc.is_running()).then_some(a.name.as_str()))
        .collect();

    println!(
        "{count} agents started by {spawners} threads in {:.0} ms",
        spawned.as_secs_f64() * 1000.0
    );
    match all_ready {
        Some(at) => println!(
            "all {count} nodes Ready {:.2} s after the first agent started ({:.2} s after the last)",
            at.as_secs_f64(),
            at.saturating_sub(spawned).as_secs_f64()
        ),
        None => println!(
            "only {} of {count} nodes became Ready within {timeout:?}",
            first_ready.len()
        ),
    }
    let mut times: Vec<Duration> = first_ready.values().copied().collect();
    times.sort();
    if !times.is_empty() {
        println!(
            "first seen Ready: p50 {:.2} s, p99 {:.2} s",
            percentile(&times, 0.5).as_secs_f64(),
            percentile(&times, 0.99).as_secs_f64()
        );
    }
    println!(
        "nodes seen not Ready after first Ready, agent alive ({polls} polls of the node list): {}",
        flapped.len()
    );
    println!("agent processes that exited: {}", dead.len());
    let mut not_ready_events = 0;
    let mut nodes_with_event = 0;
    for name in &names {
        let reasons = event_reasons(&server, name);
        // Events before the node's first NodeReady (if any) belong to its enrollment.
        let after_ready: u64 = reasons
            .iter()
            .skip_while(|(r, _)| r != "NodeReady")
            .filter(|(r, _)| r == "NodeNotReady")
            .map(|(_, n)| n)
            .sum();
        not_ready_events += after_ready;
        nodes_with_event += usize::from(after_ready > 0);
    }
    println!(
        "NodeNotReady events after NodeReady: {not_ready_events} (on {nodes_with_event} nodes)"
    );
    println!(
        "server RSS: {server_rss_all_ready} KiB when all were Ready, {} KiB at the end",
        rss_kib(server.proc.pid())
    );
    let agent_rss: u64 = agents.iter().map(|a| rss_kib(a.proc.pid())).sum();
    println!(
        "agents' RSS: {} KiB in all, {} KiB each on average",
        agent_rss,
        agent_rss / count as u64
    );
}
