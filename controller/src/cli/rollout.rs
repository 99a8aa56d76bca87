//! `drover rollout`: DaemonSet rollouts through the Kubernetes API, as kubectl does them
//! (restart annotates the template, history and undo read the ControllerRevisions).

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use clap::Subcommand;
use serde_json::{json, Value};

use super::{resource, table, Client};

fn daemonset_path(namespace: &str, name: &str) -> String {
    format!("/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}")
}

/// The DaemonSet's revisions (ControllerRevisions it controls), oldest first.
pub fn owned_revisions(ds: &Value, revisions: &Value) -> Vec<Value> {
    let uid = &ds["metadata"]["uid"];
    let mut owned: Vec<Value> = revisions["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| {
            r["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|o| &o["uid"] == uid))
        })
        .cloned()
        .collect();
    owned.sort_by_key(|r| r["revision"].as_u64().unwrap_or(0));
    owned
}

/// The template `undo` goes back to: revision `to_revision`, or the one before the latest.
pub fn undo_template(
    name: &str,
    revisions: &[Value],
    to_revision: Option<u64>,
) -> anyhow::Result<(u64, Value)> {
    let target = match to_revision {
        Some(wanted) => revisions.iter().find(|r| r["revision"] == wanted),
        None => revisions.iter().rev().nth(1),
    };
    let Some(revision) = target else {
        match to_revision {
            Some(r) => bail!("unable to find specified revision {r} in history"),
            None => bail!("no rollout history found for daemonset \"{name}\""),
        }
    };
    let mut template = revision["data"]["spec"]["template"].clone();
    // The revision keeps the strategic-merge directive that replaces the whole template.
    if let Some(map) = template.as_object_mut() {
        map.remove("$patch");
    }
    Ok((revision["revision"].as_u64().unwrap_or(0), template))
}

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
    if resource::resolve(kind_name)?.kind != "DaemonSet" {
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
                let ds = client.get(&daemonset_path(&namespace, &name), &[])?;
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
            let now = crate::object::timestamp(Utc::now());
            client.patch(
                &daemonset_path(&namespace, &name),
                "application/merge-patch+json",
                &json!({"spec": {"template": {"metadata": {"annotations": {
                    "kubectl.kubernetes.io/restartedAt": now
                }}}}}),
            )?;
            println!("daemonset.apps/{name} restarted");
            Ok(())
        }
        RolloutCommand::History {
            resource,
            namespace,
        } => {
            let name = daemonset_name(&resource)?;
            let ds = client.get(&daemonset_path(&namespace, &name), &[])?;
            let revisions = client.get(
                &format!("/apis/apps/v1/namespaces/{namespace}/controllerrevisions"),
                &[],
            )?;
            let rows: Vec<Vec<String>> = owned_revisions(&ds, &revisions)
                .iter()
                .map(|r| {
                    let cause = r["metadata"]["annotations"]["kubernetes.io/change-cause"]
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
            let path = daemonset_path(&namespace, &name);
            let mut ds = client.get(&path, &[])?;
            let revisions = client.get(
                &format!("/apis/apps/v1/namespaces/{namespace}/controllerrevisions"),
                &[],
            )?;
            let (_, template) =
                undo_template(&name, &owned_revisions(&ds, &revisions), to_revision)?;
            ds["spec"]["template"] = template;
            if let Some(map) = ds.as_object_mut() {
                map.remove("status");
            }
            client.put(&path, &[], &ds)?;
            println!("daemonset.apps/{name} rolled back");
            Ok(())
        }
    }
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

#[cfg(test)]
mod revision_tests {
    use super::*;

    fn revision(owner: &str, number: u64, image: &str) -> Value {
        json!({"metadata": {"ownerReferences": [{"uid": owner}]}, "revision": number,
               "data": {"spec": {"template": {"$patch": "replace", "spec": {"image": image}}}}})
    }

    #[test]
    fn undo_goes_to_the_previous_or_named_revision_of_this_daemonset() {
        let ds = json!({"metadata": {"uid": "me"}});
        let all = json!({"items": [revision("me", 2, "b"), revision("other", 9, "x"), revision("me", 1, "a")]});
        let owned = owned_revisions(&ds, &all);
        assert_eq!(owned.len(), 2);
        let (number, template) = undo_template("d", &owned, None).unwrap();
        assert_eq!((number, template), (1, json!({"spec": {"image": "a"}})));
        assert_eq!(undo_template("d", &owned, Some(2)).unwrap().0, 2);
        assert!(undo_template("d", &owned, Some(7)).is_err());
        assert!(undo_template("d", &owned[..1], None).is_err());
    }
}
