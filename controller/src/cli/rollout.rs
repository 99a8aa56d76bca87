//! `drover rollout` and `drover taint`.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use drover_proto::manifest::Kind;
use serde_json::{json, Value};

use super::{kind, table, Client};

/// `rollout` verbs.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Watch a rollout until it finishes (non-zero exit on timeout)
    Status {
        /// ds/NAME
        resource: String,
        /// Give up after this long (e.g. 5m)
        #[arg(long, default_value = "5m", value_parser = drover_agent::config::parse_duration)]
        timeout: Duration,
        /// Namespace
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
    /// Restart every pod through the update strategy
    Restart {
        /// ds/NAME
        resource: String,
        /// Namespace
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
    /// List revisions
    History {
        /// ds/NAME
        resource: String,
        /// Namespace
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
    /// Go back to the previous (or a given) revision
    Undo {
        /// ds/NAME
        resource: String,
        /// Revision to go back to
        #[arg(long)]
        to_revision: Option<u64>,
        /// Namespace
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
}

fn daemonset_name(resource: &str) -> anyhow::Result<String> {
    let (kind_name, name) = resource
        .split_once('/')
        .context("name the DaemonSet as ds/NAME")?;
    if kind(kind_name)? != Kind::DaemonSet {
        bail!("rollouts are supported for daemonsets (ds/NAME)");
    }
    Ok(name.to_string())
}

fn count(ds: &Value, field: &str) -> i64 {
    ds["status"][field].as_i64().unwrap_or(0)
}

/// The rollout's progress line, or None when it is finished.
pub fn progress(ds: &Value) -> Option<String> {
    let name = ds["metadata"]["name"].as_str().unwrap_or("");
    let desired = count(ds, "desiredNumberScheduled");
    let updated = count(ds, "updatedNumberScheduled");
    let available = count(ds, "numberAvailable");
    if count(ds, "observedGeneration") < ds["metadata"]["generation"].as_i64().unwrap_or(0) {
        return Some("Waiting for daemon set spec update to be observed...".to_string());
    }
    if updated < desired {
        return Some(format!(
            "Waiting for daemon set \"{name}\" rollout to finish: {updated} out of {desired} new pods have been updated..."
        ));
    }
    if available < desired {
        return Some(format!(
            "Waiting for daemon set \"{name}\" rollout to finish: {available} of {desired} updated pods are available..."
        ));
    }
    None
}

/// `drover rollout …`.
pub fn rollout(client: &Client, command: RolloutCommand) -> anyhow::Result<()> {
    match command {
        RolloutCommand::Status {
            resource,
            timeout,
            namespace,
        } => {
            let name = daemonset_name(&resource)?;
            let deadline = Instant::now() + timeout;
            let mut last = String::new();
            loop {
                let ds = client.get(
                    &format!("/drover/v0/daemonsets/{name}"),
                    &[("namespace", &namespace)],
                )?;
                match progress(&ds) {
                    None => {
                        println!("daemon set \"{name}\" successfully rolled out");
                        return Ok(());
                    }
                    Some(line) => {
                        if line != last {
                            println!("{line}");
                            last = line;
                        }
                    }
                }
                if Instant::now() >= deadline {
                    bail!("timed out waiting for the condition");
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        RolloutCommand::Restart {
            resource,
            namespace,
        } => {
            let name = daemonset_name(&resource)?;
            client.post(
                &format!("/drover/v0/daemonsets/{name}/restart?namespace={namespace}"),
                &json!({}),
            )?;
            println!("daemonset.apps/{name} restarted");
            Ok(())
        }
        RolloutCommand::History {
            resource,
            namespace,
        } => {
            let name = daemonset_name(&resource)?;
            let history = client.get(
                &format!("/drover/v0/daemonsets/{name}/revisions"),
                &[("namespace", &namespace)],
            )?;
            let rows: Vec<Vec<String>> = history["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    let cause = r["template"]["metadata"]["annotations"]
                        ["kubernetes.io/change-cause"]
                        .as_str()
                        .unwrap_or("<none>")
                        .to_string();
                    vec![r["revision"].to_string(), cause]
                })
                .collect();
            println!("daemonset.apps/{name}");
            print!("{}", table::render(&["REVISION", "CHANGE-CAUSE"], &rows));
            Ok(())
        }
        RolloutCommand::Undo {
            resource,
            to_revision,
            namespace,
        } => {
            let name = daemonset_name(&resource)?;
            client.post(
                &format!("/drover/v0/daemonsets/{name}/undo?namespace={namespace}"),
                &json!({"toRevision": to_revision}),
            )?;
            println!("daemonset.apps/{name} rolled back");
            Ok(())
        }
    }
}

/// `taint` flags.
#[derive(Debug, Args)]
pub struct TaintArgs {
    /// Resource type (only nodes)
    pub resource: String,
    /// Node name
    pub name: String,
    /// key=value:Effect or key:Effect to add; key-, key:Effect- to remove
    #[arg(required = true)]
    pub taints: Vec<String>,
}

fn effect(text: &str) -> anyhow::Result<Value> {
    match text {
        "NoSchedule" | "PreferNoSchedule" | "NoExecute" => Ok(json!(text)),
        other => {
            bail!("invalid taint effect \"{other}\": use NoSchedule, PreferNoSchedule or NoExecute")
        }
    }
}

/// `drover taint node NAME …`.
pub fn taint(client: &Client, args: TaintArgs) -> anyhow::Result<()> {
    if kind(&args.resource)? != Kind::Node {
        bail!("only nodes can be tainted");
    }
    let mut add = Vec::new();
    let mut remove = Vec::new();
    for spec in &args.taints {
        if let Some(target) = spec.strip_suffix('-') {
            let (key_value, effect_text) = match target.split_once(':') {
                Some((kv, e)) => (kv, Some(effect(e)?)),
                None => (target, None),
            };
            let key = key_value.split_once('=').map_or(key_value, |(k, _)| k);
            remove.push(json!({"key": key, "effect": effect_text}));
        } else {
            let (key_value, effect_text) = spec.split_once(':').with_context(|| {
                format!("invalid taint \"{spec}\": use key=value:Effect or key:Effect")
            })?;
            let (key, value) = match key_value.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (key_value, None),
            };
            add.push(json!({"key": key, "value": value, "effect": effect(effect_text)?}));
        }
    }
    let answer = client.post(
        &format!("/drover/v0/nodes/{}/taints", args.name),
        &json!({"add": add, "remove": remove}),
    )?;
    let verb = if answer["changed"] == true {
        "tainted"
    } else {
        "not tainted (no change)"
    };
    println!("node/{} {verb}", args.name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollout_progress_lines_follow_kubectl() {
        let ds = |generation: i64, observed: i64, desired: i64, updated: i64, available: i64| {
            json!({
                "metadata": {"name": "x", "generation": generation},
                "status": {"observedGeneration": observed, "desiredNumberScheduled": desired,
                           "updatedNumberScheduled": updated, "numberAvailable": available}
            })
        };
        assert_eq!(
            progress(&ds(2, 2, 10, 3, 9)).unwrap(),
            "Waiting for daemon set \"x\" rollout to finish: 3 out of 10 new pods have been updated..."
        );
        assert!(progress(&ds(2, 2, 10, 10, 9))
            .unwrap()
            .contains("9 of 10 updated pods are available"));
        assert!(progress(&ds(3, 2, 10, 10, 10))
            .unwrap()
            .contains("spec update"));
        assert_eq!(progress(&ds(2, 2, 10, 10, 10)), None);
    }
}

/// `create` verbs.
#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// Create a Job now from a CronJob's template: create job NAME --from=cronjob/X
    Job {
        /// Name of the new Job
        name: String,
        /// cronjob/NAME
        #[arg(long = "from")]
        from: String,
        /// Namespace
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
}

/// `drover create job NAME --from=cronjob/X`.
pub fn create(client: &Client, command: CreateCommand) -> anyhow::Result<()> {
    let CreateCommand::Job {
        name,
        from,
        namespace,
    } = command;
    let (kind_name, cronjob) = from.split_once('/').context("--from takes cronjob/NAME")?;
    if kind(kind_name)? != Kind::CronJob {
        bail!("--from must name a cronjob (cronjob/NAME)");
    }
    client.post(
        "/drover/v0/jobs/from-cronjob",
        &json!({"name": name, "cronjob": cronjob, "namespace": namespace}),
    )?;
    println!("job.batch/{name} created");
    Ok(())
}

/// `wait` flags.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// job/NAME
    pub resource: String,
    /// condition=Complete or condition=Failed
    #[arg(long = "for")]
    pub condition: String,
    /// Give up after this long
    #[arg(long, default_value = "30s", value_parser = drover_agent::config::parse_duration)]
    pub timeout: Duration,
    /// Namespace
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
}

/// `drover wait --for=condition=X job/NAME`: exits 0 once the condition is true, 1 on
/// timeout (kubectl's behaviour).
pub fn wait(client: &Client, args: WaitArgs) -> anyhow::Result<()> {
    let wanted = args
        .condition
        .strip_prefix("condition=")
        .context("--for takes condition=NAME (e.g. condition=Complete)")?;
    let (wanted, value) = wanted.split_once('=').unwrap_or((wanted, "True"));
    let (kind_name, name) = args
        .resource
        .split_once('/')
        .context("name the object as KIND/NAME, e.g. job/pi")?;
    let kind = kind(kind_name)?;
    let deadline = Instant::now() + args.timeout;
    loop {
        let object = client.get(
            &format!("/drover/v0/{}/{name}", kind.plural()),
            &[("namespace", &args.namespace)],
        )?;
        let met = object["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| {
                c["type"]
                    .as_str()
                    .is_some_and(|t| t.eq_ignore_ascii_case(wanted))
                    && c["status"] == value
            });
        if met {
            let singular = kind.as_str().to_ascii_lowercase();
            match kind.api_version().split_once('/') {
                Some((group, _)) => println!("{singular}.{group}/{name} condition met"),
                None => println!("{singular}/{name} condition met"),
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "timed out waiting for the condition on {}/{name}",
                kind.plural()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
