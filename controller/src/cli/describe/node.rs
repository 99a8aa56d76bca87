//! Nodes as kubectl's `NodeDescriber` prints them, with the pods that run there.

use drover_proto::phase::PodPhase;
use drover_proto::quantity::{parse_bytes, parse_cpu_millis};
use serde_json::Value;

use super::{
    annotations, events, labels, scalar, since, sorted_entries, text, time, Described, Out,
};
use crate::api::table::node_roles;

/// `kubectl describe node`.
pub fn describe(out: &mut Out, d: &Described) {
    let node = d.object;
    let meta = &node["metadata"];
    let spec = &node["spec"];
    let status = &node["status"];
    let name = text(&meta["name"]);
    out.line(0, &format!("Name:\t{name}"));
    out.line(0, &format!("Roles:\t{}", node_roles(node)));
    labels(out, "Labels", &meta["labels"]);
    annotations(out, "Annotations", &meta["annotations"]);
    out.line(
        0,
        &format!("CreationTimestamp:\t{}", time(&meta["creationTimestamp"])),
    );
    taints(out, &spec["taints"]);
    out.line(
        0,
        &format!("Unschedulable:\t{}", spec["unschedulable"] == true),
    );
    let conditions = status["conditions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    // The agent's heartbeat is what a kubelet's lease renews in Kubernetes.
    let heartbeat = conditions
        .iter()
        .find(|c| c["type"] == "Ready")
        .map(|c| &c["lastHeartbeatTime"])
        .filter(|t| t.is_string());
    out.line(0, "Lease:");
    out.line(1, &format!("HolderIdentity:\t{name}"));
    out.line(1, "AcquireTime:\t<unset>");
    out.line(
        1,
        &format!(
            "RenewTime:\t{}",
            heartbeat.map_or_else(|| "<unset>".into(), time)
        ),
    );
    if !conditions.is_empty() {
        out.line(0, "Conditions:");
        out.line(
            1,
            "Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage",
        );
        out.line(
            1,
            "----\t------\t-----------------\t------------------\t------\t-------",
        );
        for c in conditions {
            out.line(
                1,
                &format!(
                    "{} \t{} \t{} \t{} \t{} \t{}",
                    text(&c["type"]),
                    text(&c["status"]),
                    time(&c["lastHeartbeatTime"]),
                    time(&c["lastTransitionTime"]),
                    text(&c["reason"]),
                    text(&c["message"])
                ),
            );
        }
    }
    if let Some(addresses) = status["addresses"].as_array().filter(|a| !a.is_empty()) {
        out.line(0, "Addresses:");
        for a in addresses {
            out.line(
                1,
                &format!("{}:\t{}", text(&a["type"]), text(&a["address"])),
            );
        }
    }
    for (field, title) in [("capacity", "Capacity:"), ("allocatable", "Allocatable:")] {
        let entries = sorted_entries(&status[field]);
        if entries.is_empty() {
            continue;
        }
        out.line(0, title);
        for (resource, quantity) in entries {
            out.line(1, &format!("{resource}:\t{}", scalar(quantity)));
        }
    }
    let info = &status["nodeInfo"];
    out.line(0, "System Info:");
    for (field, title) in [
        ("machineID", "Machine ID"),
        ("systemUUID", "System UUID"),
        ("bootID", "Boot ID"),
        ("kernelVersion", "Kernel Version"),
        ("osImage", "OS Image"),
        ("operatingSystem", "Operating System"),
        ("architecture", "Architecture"),
        ("containerRuntimeVersion", "Container Runtime Version"),
        ("kubeletVersion", "Kubelet Version"),
        ("kubeProxyVersion", "Kube-Proxy Version"),
    ] {
        out.line(1, &format!("{title}:\t{}", text(&info[field])));
    }
    if let Some(cidr) = spec["podCIDR"].as_str() {
        out.line(0, &format!("PodCIDR:\t{cidr}"));
    }
    if let Some(provider) = spec["providerID"].as_str() {
        out.line(0, &format!("ProviderID:\t{provider}"));
    }
    pods(out, d, status);
    events(out, d.events, d.now);
}

/// `Taints:` one a line, `<none>` without any.
fn taints(out: &mut Out, taints: &Value) {
    let list = taints.as_array().map(Vec::as_slice).unwrap_or_default();
    if list.is_empty() {
        out.line(0, "Taints:\t<none>");
        return;
    }
    for (i, t) in list.iter().enumerate() {
        let head = if i == 0 { "Taints:" } else { "" };
        let key_value = match t["value"].as_str().filter(|v| !v.is_empty()) {
            Some(value) => format!("{}={value}", text(&t["key"])),
            None => text(&t["key"]).to_string(),
        };
        out.line(0, &format!("{head}\t{key_value}:{}", text(&t["effect"])));
    }
}

/// What a pod asks for and is limited to, of one resource: the sum over its containers,
/// or an init container's if larger (they run one at a time), as Kubernetes counts it.
fn pod_total(pod: &Value, kind: &str, resource: &str, parse: fn(&str) -> Option<u64>) -> u64 {
    let amount = |c: &Value| {
        c["resources"][kind][resource]
            .as_str()
            .and_then(parse)
            .unwrap_or(0)
    };
    let list = |field: &str| pod["spec"][field].as_array().cloned().unwrap_or_default();
    let sum: u64 = list("containers").iter().map(amount).sum();
    let init = list("initContainers").iter().map(amount).max().unwrap_or(0);
    sum.max(init)
}

fn cpu_text(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

fn memory_text(bytes: u64) -> String {
    for (suffix, factor) in [("Gi", 1u64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if bytes != 0 && bytes.is_multiple_of(factor) {
            return format!("{}{suffix}", bytes / factor);
        }
    }
    bytes.to_string()
}

fn percent(part: u64, whole: u64) -> u64 {
    if whole == 0 {
        return 0;
    }
    // Truncated, as kubectl's int64(fraction).
    (part as f64 / whole as f64 * 100.0) as u64
}

/// The `Non-terminated Pods` and `Allocated resources` tables.
fn pods(out: &mut Out, d: &Described, status: &Value) {
    let running: Vec<&Value> = d
        .pods
        .iter()
        .filter(|p| {
            !PodPhase::parse(text(&p["status"]["phase"])).is_some_and(PodPhase::is_terminal)
        })
        .collect();
    let allocatable = if sorted_entries(&status["allocatable"]).is_empty() {
        &status["capacity"]
    } else {
        &status["allocatable"]
    };
    let cpu_total = allocatable["cpu"]
        .as_str()
        .and_then(parse_cpu_millis)
        .or_else(|| allocatable["cpu"].as_u64().map(|c| c * 1000))
        .unwrap_or(0);
    let memory_total = allocatable["memory"]
        .as_str()
        .and_then(parse_bytes)
        .unwrap_or(0);
    out.line(
        0,
        &format!("Non-terminated Pods:\t({} in total)", running.len()),
    );
    out.line(
        1,
        "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge",
    );
    out.line(
        1,
        "---------\t----\t\t------------\t----------\t---------------\t-------------\t---",
    );
    let mut totals = [0u64; 6];
    for pod in &running {
        let cpu_req = pod_total(pod, "requests", "cpu", parse_cpu_millis);
        let cpu_lim = pod_total(pod, "limits", "cpu", parse_cpu_millis);
        let mem_req = pod_total(pod, "requests", "memory", parse_bytes);
        let mem_lim = pod_total(pod, "limits", "memory", parse_bytes);
        let storage_req = pod_total(pod, "requests", "ephemeral-storage", parse_bytes);
        let storage_lim = pod_total(pod, "limits", "ephemeral-storage", parse_bytes);
        for (total, amount) in
            totals
                .iter_mut()
                .zip([cpu_req, cpu_lim, mem_req, mem_lim, storage_req, storage_lim])
        {
            *total += amount;
        }
        out.line(
            1,
            &format!(
                "{}\t{}\t\t{} ({}%)\t{} ({}%)\t{} ({}%)\t{} ({}%)\t{}",
                text(&pod["metadata"]["namespace"]),
                text(&pod["metadata"]["name"]),
                cpu_text(cpu_req),
                percent(cpu_req, cpu_total),
                cpu_text(cpu_lim),
                percent(cpu_lim, cpu_total),
                memory_text(mem_req),
                percent(mem_req, memory_total),
                memory_text(mem_lim),
                percent(mem_lim, memory_total),
                since(&pod["metadata"]["creationTimestamp"], d.now)
            ),
        );
    }
    let storage_total = allocatable["ephemeral-storage"]
        .as_str()
        .and_then(parse_bytes)
        .unwrap_or(0);
    out.line(0, "Allocated resources:");
    out.line(
        1,
        "(Total limits may be over 100 percent, i.e., overcommitted.)",
    );
    out.line(1, "Resource\tRequests\tLimits");
    out.line(1, "--------\t--------\t------");
    let [cpu_req, cpu_lim, mem_req, mem_lim, storage_req, storage_lim] = totals;
    out.line(
        1,
        &format!(
            "cpu\t{} ({}%)\t{} ({}%)",
            cpu_text(cpu_req),
            percent(cpu_req, cpu_total),
            cpu_text(cpu_lim),
            percent(cpu_lim, cpu_total)
        ),
    );
    out.line(
        1,
        &format!(
            "memory\t{} ({}%)\t{} ({}%)",
            memory_text(mem_req),
            percent(mem_req, memory_total),
            memory_text(mem_lim),
            percent(mem_lim, memory_total)
        ),
    );
    out.line(
        1,
        &format!(
            "ephemeral-storage\t{} ({}%)\t{} ({}%)",
            memory_text(storage_req),
            percent(storage_req, storage_total),
            memory_text(storage_lim),
            percent(storage_lim, storage_total)
        ),
    );
}
