//! Pods, their containers and volumes, and the pod templates of workloads, as kubectl's
//! `PodDescriber` and `DescribePodTemplate` print them.

use serde_json::Value;

use super::{
    annotations, controlled_by, events, labels, or_none, scalar, since, text, time, tolerations,
    Described, Out,
};

/// `kubectl describe pod`.
pub fn describe(out: &mut Out, d: &Described) {
    let pod = d.object;
    let meta = &pod["metadata"];
    let spec = &pod["spec"];
    let status = &pod["status"];
    out.line(0, &format!("Name:\t{}", text(&meta["name"])));
    out.line(0, &format!("Namespace:\t{}", text(&meta["namespace"])));
    if let Some(priority) = spec["priority"].as_i64() {
        out.line(0, &format!("Priority:\t{priority}"));
    }
    if let Some(class) = spec["priorityClassName"].as_str().filter(|c| !c.is_empty()) {
        out.line(0, &format!("Priority Class Name:\t{class}"));
    }
    if let Some(account) = spec["serviceAccountName"]
        .as_str()
        .filter(|a| !a.is_empty())
    {
        out.line(0, &format!("Service Account:\t{account}"));
    }
    match spec["nodeName"].as_str().filter(|n| !n.is_empty()) {
        Some(node) => out.line(0, &format!("Node:\t{node}/{}", text(&status["hostIP"]))),
        None => out.line(0, "Node:\t<none>"),
    }
    if status["startTime"].is_string() {
        out.line(0, &format!("Start Time:\t{}", time(&status["startTime"])));
    }
    labels(out, "Labels", &meta["labels"]);
    annotations(out, "Annotations", &meta["annotations"]);
    if meta["deletionTimestamp"].is_string() {
        out.line(
            0,
            &format!(
                "Status:\tTerminating (lasts {})",
                since(&meta["deletionTimestamp"], d.now)
            ),
        );
        if let Some(grace) = meta["deletionGracePeriodSeconds"].as_i64() {
            out.line(0, &format!("Termination Grace Period:\t{grace}s"));
        }
    } else {
        out.line(0, &format!("Status:\t{}", text(&status["phase"])));
    }
    for (field, title) in [("reason", "Reason"), ("message", "Message")] {
        if let Some(value) = status[field].as_str().filter(|v| !v.is_empty()) {
            out.line(0, &format!("{title}:\t{value}"));
        }
    }
    out.line(0, &format!("IP:\t{}", text(&status["podIP"])));
    match status["podIPs"].as_array().filter(|ips| !ips.is_empty()) {
        Some(ips) => {
            out.line(0, "IPs:");
            for ip in ips {
                out.line(1, &format!("IP:\t{}", text(&ip["ip"])));
            }
        }
        None => out.line(0, "IPs:\t<none>"),
    }
    if let Some(controller) = controlled_by(pod) {
        out.line(0, &format!("Controlled By:\t{controller}"));
    }
    if let Some(nominated) = status["nominatedNodeName"].as_str() {
        out.line(0, &format!("NominatedNodeName:\t{nominated}"));
    }
    let containers = Containers {
        title: "",
        name_indent: "",
        statuses: None,
    };
    if has_items(&spec["initContainers"]) {
        containers
            .with_statuses(&status["initContainerStatuses"])
            .write(out, "Init Containers", &spec["initContainers"]);
    }
    containers
        .with_statuses(&status["containerStatuses"])
        .write(out, "Containers", &spec["containers"]);
    if let Some(conditions) = status["conditions"].as_array().filter(|c| !c.is_empty()) {
        out.line(0, "Conditions:");
        out.line(1, "Type\tStatus");
        for c in conditions {
            out.line(
                1,
                &format!("{} \t{} ", text(&c["type"]), text(&c["status"])),
            );
        }
    }
    volumes(out, "", &spec["volumes"]);
    let qos = match status["qosClass"].as_str() {
        Some(class) if !class.is_empty() => class.to_string(),
        _ => qos_class(spec).to_string(),
    };
    out.line(0, &format!("QoS Class:\t{qos}"));
    labels(out, "Node-Selectors", &spec["nodeSelector"]);
    tolerations(out, "Tolerations", &spec["tolerations"]);
    events(out, d.events, d.now);
}

/// The `Pod Template:` section of a Job, CronJob or DaemonSet.
pub fn template(out: &mut Out, template: &Value) {
    out.line(0, "Pod Template:");
    let meta = &template["metadata"];
    let spec = &template["spec"];
    labels(out, "  Labels", &meta["labels"]);
    if has_entries(&meta["annotations"]) {
        annotations(out, "  Annotations", &meta["annotations"]);
    }
    if let Some(account) = spec["serviceAccountName"]
        .as_str()
        .filter(|a| !a.is_empty())
    {
        out.line(1, &format!("Service Account:\t{account}"));
    }
    let containers = Containers {
        title: "  ",
        name_indent: " ",
        statuses: None,
    };
    if has_items(&spec["initContainers"]) {
        containers.write(out, "Init Containers", &spec["initContainers"]);
    }
    containers.write(out, "Containers", &spec["containers"]);
    volumes(out, " ", &spec["volumes"]);
    if let Some(class) = spec["priorityClassName"].as_str().filter(|c| !c.is_empty()) {
        out.line(1, &format!("Priority Class Name:\t{class}"));
    }
    labels(out, "  Node-Selectors", &spec["nodeSelector"]);
    tolerations(out, "  Tolerations", &spec["tolerations"]);
}

fn has_items(v: &Value) -> bool {
    v.as_array().is_some_and(|a| !a.is_empty())
}

fn has_entries(v: &Value) -> bool {
    v.as_object().is_some_and(|m| !m.is_empty())
}

/// How a list of containers is printed: a pod's with their statuses (at no indent), a
/// template's without (under `Pod Template:`).
#[derive(Clone, Copy)]
struct Containers<'a> {
    /// Before the section title.
    title: &'a str,
    /// Added before each container's name.
    name_indent: &'a str,
    /// The pod's container statuses, for a pod.
    statuses: Option<&'a Value>,
}

impl<'a> Containers<'a> {
    fn with_statuses(self, statuses: &'a Value) -> Self {
        Self {
            statuses: Some(statuses),
            ..self
        }
    }

    fn write(&self, out: &mut Out, section: &str, containers: &Value) {
        out.line(0, &format!("{}{section}:", self.title));
        for c in containers.as_array().map(Vec::as_slice).unwrap_or_default() {
            let name = text(&c["name"]);
            out.line(1, &format!("{}{name}:", self.name_indent));
            // As kubectl: a container without a status yet shows none of its fields.
            let status = self.statuses.and_then(|s| {
                s.as_array()
                    .and_then(|all| all.iter().find(|s| s["name"] == name))
            });
            if let Some(status) = status {
                out.line(
                    2,
                    &format!("Container ID:\t{}", text(&status["containerID"])),
                );
            }
            out.line(2, &format!("Image:\t{}", text(&c["image"])));
            if let Some(status) = status {
                out.line(2, &format!("Image ID:\t{}", text(&status["imageID"])));
            }
            ports(out, &c["ports"]);
            command(out, c);
            if let Some(status) = status {
                state(out, "State", &status["state"]);
                if status["lastState"]["terminated"].is_object() {
                    state(out, "Last State", &status["lastState"]);
                }
                let ready = if status["ready"] == true {
                    "True"
                } else {
                    "False"
                };
                out.line(2, &format!("Ready:\t{ready}"));
                out.line(
                    2,
                    &format!(
                        "Restart Count:\t{}",
                        status["restartCount"].as_i64().unwrap_or(0)
                    ),
                );
            }
            resources(out, &c["resources"]);
            for (field, title) in [
                ("livenessProbe", "Liveness"),
                ("readinessProbe", "Readiness"),
                ("startupProbe", "Startup"),
            ] {
                if c[field].is_object() {
                    out.line(2, &format!("{title}:\t{}", probe(&c[field])));
                }
            }
            environment(out, &c["env"]);
            mounts(out, &c["volumeMounts"]);
        }
    }
}

/// `Port:`/`Host Port:` (`Ports:` for several), as `80/TCP, 81/UDP`.
fn ports(out: &mut Out, ports: &Value) {
    let list = ports.as_array().map(Vec::as_slice).unwrap_or_default();
    let protocol = |p: &Value| p["protocol"].as_str().unwrap_or("TCP").to_string();
    let container: Vec<String> = list
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p["containerPort"].as_i64().unwrap_or(0),
                protocol(p)
            )
        })
        .collect();
    let host: Vec<String> = list
        .iter()
        .map(|p| format!("{}/{}", p["hostPort"].as_i64().unwrap_or(0), protocol(p)))
        .collect();
    let plural = if list.len() > 1 { "s" } else { "" };
    out.line(
        2,
        &format!("Port{plural}:\t{}", or_none(&container.join(", "))),
    );
    out.line(
        2,
        &format!("Host Port{plural}:\t{}", or_none(&host.join(", "))),
    );
}

fn command(out: &mut Out, container: &Value) {
    for (field, title) in [("command", "Command:"), ("args", "Args:")] {
        let Some(words) = container[field].as_array().filter(|w| !w.is_empty()) else {
            continue;
        };
        out.line(2, title);
        for word in words {
            for line in text(word).split('\n') {
                out.line(3, line);
            }
        }
    }
}

fn state(out: &mut Out, title: &str, state: &Value) {
    if let Some(running) = state["running"].as_object() {
        out.line(2, &format!("{title}:\tRunning"));
        let started = running.get("startedAt").unwrap_or(&Value::Null);
        out.line(3, &format!("Started:\t{}", time(started)));
    } else if let Some(waiting) = state["waiting"].as_object() {
        out.line(2, &format!("{title}:\tWaiting"));
        if let Some(reason) = waiting.get("reason").and_then(Value::as_str) {
            out.line(3, &format!("Reason:\t{reason}"));
        }
    } else if state["terminated"].is_object() {
        let t = &state["terminated"];
        out.line(2, &format!("{title}:\tTerminated"));
        for (field, name) in [("reason", "Reason"), ("message", "Message")] {
            if let Some(value) = t[field].as_str().filter(|v| !v.is_empty()) {
                out.line(3, &format!("{name}:\t{value}"));
            }
        }
        out.line(
            3,
            &format!("Exit Code:\t{}", t["exitCode"].as_i64().unwrap_or(0)),
        );
        if let Some(signal) = t["signal"].as_i64().filter(|s| *s > 0) {
            out.line(3, &format!("Signal:\t{signal}"));
        }
        out.line(3, &format!("Started:\t{}", time(&t["startedAt"])));
        out.line(3, &format!("Finished:\t{}", time(&t["finishedAt"])));
    } else {
        out.line(2, &format!("{title}:\tWaiting"));
    }
}

fn resources(out: &mut Out, resources: &Value) {
    for (field, title) in [("limits", "Limits:"), ("requests", "Requests:")] {
        let entries = super::sorted_entries(&resources[field]);
        if entries.is_empty() {
            continue;
        }
        out.line(2, title);
        for (name, quantity) in entries {
            out.line(3, &format!("{name}:\t{}", scalar(quantity)));
        }
    }
}

/// A probe as kubectl's `DescribeProbe` shows it, with Kubernetes' defaults for what is
/// unset.
fn probe(p: &Value) -> String {
    let number = |field: &str, default: i64| p[field].as_i64().unwrap_or(default);
    let attrs = format!(
        "delay={}s timeout={}s period={}s #success={} #failure={}",
        number("initialDelaySeconds", 0),
        number("timeoutSeconds", 1),
        number("periodSeconds", 10),
        number("successThreshold", 1),
        number("failureThreshold", 3)
    );
    let port = |v: &Value| match v {
        Value::Null => String::new(),
        other => scalar(other),
    };
    if let Some(command) = p["exec"]["command"].as_array() {
        let words: Vec<&str> = command.iter().map(text).collect();
        format!("exec [{}] {attrs}", words.join(" "))
    } else if p["httpGet"].is_object() {
        let get = &p["httpGet"];
        let scheme = get["scheme"].as_str().unwrap_or("HTTP").to_lowercase();
        format!(
            "http-get {scheme}://{}:{}{} {attrs}",
            text(&get["host"]),
            port(&get["port"]),
            text(&get["path"])
        )
    } else if p["tcpSocket"].is_object() {
        let socket = &p["tcpSocket"];
        format!(
            "tcp-socket {}:{} {attrs}",
            text(&socket["host"]),
            port(&socket["port"])
        )
    } else if p["grpc"].is_object() {
        format!(
            "grpc <pod>:{} {} {attrs}",
            port(&p["grpc"]["port"]),
            text(&p["grpc"]["service"])
        )
    } else {
        format!("unknown {attrs}")
    }
}

fn environment(out: &mut Out, env: &Value) {
    let Some(vars) = env.as_array().filter(|v| !v.is_empty()) else {
        out.line(2, "Environment:\t<none>");
        return;
    };
    out.line(2, "Environment:");
    for var in vars {
        let name = text(&var["name"]);
        let from = &var["valueFrom"];
        if from.is_object() {
            let source = if from["fieldRef"].is_object() {
                format!(
                    " ({}:{})",
                    text(&from["fieldRef"]["apiVersion"]),
                    text(&from["fieldRef"]["fieldPath"])
                )
            } else if from["resourceFieldRef"].is_object() {
                format!(" ({})", text(&from["resourceFieldRef"]["resource"]))
            } else if from["secretKeyRef"].is_object() {
                let r = &from["secretKeyRef"];
                format!(
                    "<set to the key '{}' in secret '{}'>\tOptional: {}",
                    text(&r["key"]),
                    text(&r["name"]),
                    r["optional"] == true
                )
            } else if from["configMapKeyRef"].is_object() {
                let r = &from["configMapKeyRef"];
                format!(
                    "<set to the key '{}' of config map '{}'>\tOptional: {}",
                    text(&r["key"]),
                    text(&r["name"]),
                    r["optional"] == true
                )
            } else {
                String::new()
            };
            out.line(3, &format!("{name}:\t{source}"));
            continue;
        }
        for (i, line) in text(&var["value"]).split('\n').enumerate() {
            if i == 0 {
                out.line(3, &format!("{name}:\t{line}"));
            } else {
                out.line(3, &format!("\t{line}"));
            }
        }
    }
}

fn mounts(out: &mut Out, mounts: &Value) {
    let mut list: Vec<&Value> = mounts
        .as_array()
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    if list.is_empty() {
        out.line(2, "Mounts:\t<none>");
        return;
    }
    out.line(2, "Mounts:");
    list.sort_by(|a, b| text(&a["mountPath"]).cmp(text(&b["mountPath"])));
    for m in list {
        let mut flags = vec![if m["readOnly"] == true { "ro" } else { "rw" }.to_string()];
        if let Some(sub) = m["subPath"].as_str().filter(|s| !s.is_empty()) {
            flags.push(format!("path={sub:?}"));
        }
        out.line(
            3,
            &format!(
                "{} from {} ({})",
                text(&m["mountPath"]),
                text(&m["name"]),
                flags.join(",")
            ),
        );
    }
}

/// `Volumes:`, each with its source as kubectl describes it.
fn volumes(out: &mut Out, indent: &str, volumes: &Value) {
    let Some(list) = volumes.as_array().filter(|v| !v.is_empty()) else {
        out.line(
            0,
            &format!(
                "{}Volumes:\t<none>",
                if indent.is_empty() { "" } else { "  " }
            ),
        );
        return;
    };
    out.line(
        0,
        &format!("{}Volumes:", if indent.is_empty() { "" } else { "  " }),
    );
    for v in list {
        out.line(1, &format!("{indent}{}:", text(&v["name"])));
        if v["hostPath"].is_object() {
            out.line(2, "Type:\tHostPath (bare host directory volume)");
            out.line(2, &format!("Path:\t{}", text(&v["hostPath"]["path"])));
            out.line(
                2,
                &format!("HostPathType:\t{}", text(&v["hostPath"]["type"])),
            );
        } else if v["emptyDir"].is_object() {
            let dir = &v["emptyDir"];
            out.line(
                2,
                "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)",
            );
            out.line(2, &format!("Medium:\t{}", text(&dir["medium"])));
            let limit = match &dir["sizeLimit"] {
                Value::Null => "<unset>".into(),
                other => scalar(other),
            };
            out.line(2, &format!("SizeLimit:\t{limit}"));
        } else if v["configMap"].is_object() {
            out.line(2, "Type:\tConfigMap (a volume populated by a ConfigMap)");
            out.line(2, &format!("Name:\t{}", text(&v["configMap"]["name"])));
            out.line(
                2,
                &format!("Optional:\t{}", v["configMap"]["optional"] == true),
            );
        } else if v["secret"].is_object() {
            out.line(2, "Type:\tSecret (a volume populated by a Secret)");
            out.line(
                2,
                &format!("SecretName:\t{}", text(&v["secret"]["secretName"])),
            );
            out.line(
                2,
                &format!("Optional:\t{}", v["secret"]["optional"] == true),
            );
        } else {
            out.line(2, "<unknown>");
        }
    }
}

/// The QoS class kubectl computes for a pod without one in its status: `BestEffort`
/// without any request or limit, `Guaranteed` when every container limits CPU and memory
/// and requests just that, else `Burstable`. (Kubernetes would default missing requests to
/// the limits first; Drover stores none, so kubectl sees none.)
fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .flat_map(|list| spec[*list].as_array().into_iter().flatten())
        .collect();
    let set = |c: &Value, field: &str| has_entries(&c["resources"][field]);
    if containers
        .iter()
        .all(|c| !set(c, "limits") && !set(c, "requests"))
    {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        let limits = &c["resources"]["limits"];
        let requests = &c["resources"]["requests"];
        ["cpu", "memory"]
            .iter()
            .all(|r| !limits[*r].is_null() && requests[*r] == limits[*r])
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}
