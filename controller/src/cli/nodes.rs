//! `drover label`, `cordon`/`uncordon` and `taint`: read the node, decide the change here
//! (as kubectl does), and send it as a JSON merge patch.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use clap::Args;
use drover_proto::manifest::{validate_label_key, validate_label_value, Taint, TaintEffect};
use serde_json::{json, Map, Value};

use super::{resource, Client};

const MERGE_PATCH: &str = "application/merge-patch+json";

fn node_path(name: &str) -> String {
    format!("/api/v1/nodes/{name}")
}

fn nodes_only(given: &str, verb: &str) -> anyhow::Result<()> {
    if resource::resolve(given)?.kind != "Node" {
        bail!("only nodes can be {verb} with `drover`; change other objects in their manifest and apply it");
    }
    Ok(())
}

/// `label` flags.
#[derive(Debug, Args)]
pub struct LabelArgs {
    /// Resource type (only nodes)
    pub resource: String,
    /// Node name
    pub name: String,
    /// key=value to set, key- to remove
    #[arg(required = true)]
    pub changes: Vec<String>,
    /// Allow changing the value of an existing label
    #[arg(long)]
    pub overwrite: bool,
}

/// The merge patch of `metadata.labels` for `changes` (`key=value`, `key-`) on a node with
/// `current` labels, or `None` when nothing would change. Like kubectl, changing a value
/// needs `overwrite`.
pub fn label_patch(
    current: &BTreeMap<String, String>,
    changes: &[String],
    overwrite: bool,
) -> anyhow::Result<Option<Value>> {
    let mut patch = Map::new();
    for change in changes {
        if let Some((key, value)) = change.split_once('=') {
            validate_label_key(key).map_err(anyhow::Error::msg)?;
            validate_label_value(value).map_err(anyhow::Error::msg)?;
            match current.get(key) {
                Some(existing) if existing == value => {}
                Some(existing) if !overwrite => {
                    bail!("'{key}' already has a value ({existing}), and --overwrite is false")
                }
                _ => {
                    patch.insert(key.to_string(), json!(value));
                }
            }
        } else if let Some(key) = change.strip_suffix('-') {
            if current.contains_key(key) {
                patch.insert(key.to_string(), Value::Null);
            }
        } else {
            bail!("invalid label change \"{change}\": use key=value or key-");
        }
    }
    Ok((!patch.is_empty()).then(|| json!({"metadata": {"labels": patch}})))
}

/// `drover label node NAME key=value key-`.
pub fn label(client: &Client, args: LabelArgs) -> anyhow::Result<()> {
    nodes_only(&args.resource, "labelled")?;
    let node = client.get(&node_path(&args.name), &[])?;
    let current: BTreeMap<String, String> =
        serde_json::from_value(node["metadata"]["labels"].clone()).unwrap_or_default();
    match label_patch(&current, &args.changes, args.overwrite)? {
        Some(patch) => {
            client.patch(&node_path(&args.name), MERGE_PATCH, &patch)?;
            println!("node/{} labeled", args.name);
        }
        None => println!("node/{} not labeled", args.name),
    }
    Ok(())
}

/// `drover cordon` / `uncordon`.
pub fn cordon(client: &Client, name: &str, unschedulable: bool) -> anyhow::Result<()> {
    let node = client.get(&node_path(name), &[])?;
    let done = if unschedulable {
        "cordoned"
    } else {
        "uncordoned"
    };
    if node["spec"]["unschedulable"].as_bool().unwrap_or(false) == unschedulable {
        println!("node/{name} already {done}");
        return Ok(());
    }
    // `null` removes the field, as an uncordoned node shows it.
    let value = if unschedulable {
        json!(true)
    } else {
        Value::Null
    };
    client.patch(
        &node_path(name),
        MERGE_PATCH,
        &json!({"spec": {"unschedulable": value}}),
    )?;
    println!("node/{name} {done}");
    Ok(())
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
    /// Replace a taint of the same key and effect (without it, that is an error)
    #[arg(long)]
    pub overwrite: bool,
}

fn effect(text: &str) -> anyhow::Result<TaintEffect> {
    serde_json::from_value(json!(text)).map_err(|_| {
        anyhow::anyhow!(
            "invalid taint effect \"{text}\": use NoSchedule, PreferNoSchedule or NoExecute"
        )
    })
}

/// A taint to remove: by key, or by key and effect.
struct Removal {
    key: String,
    effect: Option<TaintEffect>,
    spec: String,
}

impl Removal {
    fn matches(&self, taint: &Taint) -> bool {
        taint.key == self.key && self.effect.is_none_or(|e| e == taint.effect)
    }
}

/// What `taint` does to a node: its taints afterwards, and kubectl's word for it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaintChange {
    /// The node's taints afterwards.
    pub taints: Vec<Taint>,
    /// `tainted`, `untainted` or `modified`.
    pub verb: &'static str,
}

/// The node's taints after `specs`, decided as kubectl decides them: the added taints
/// first, then the node's others; adding a key and effect the node has is an error without
/// `overwrite`, as is a removal that matches nothing. The word is kubectl's: `modified`
/// when taints were both added and removed (or with `overwrite`), `tainted` when only
/// added, `untainted` when only removed.
pub fn compute_taints(
    current: &[Taint],
    specs: &[String],
    node: &str,
    overwrite: bool,
) -> anyhow::Result<TaintChange> {
    let mut add: Vec<Taint> = Vec::new();
    let mut remove = Vec::new();
    for spec in specs {
        if let Some(target) = spec.strip_suffix('-') {
            let (key_value, effect) = match target.split_once(':') {
                Some((kv, e)) => (kv, Some(effect(e)?)),
                None => (target, None),
            };
            let key = key_value.split_once('=').map_or(key_value, |(k, _)| k);
            remove.push(Removal {
                key: key.to_string(),
                effect,
                spec: target.to_string(),
            });
        } else {
            let (key_value, effect_text) = spec.split_once(':').with_context(|| {
                format!("invalid taint \"{spec}\": use key=value:Effect or key:Effect")
            })?;
            let (key, value) = match key_value.split_once('=') {
                Some((k, v)) => (k, Some(v.to_string())),
                None => (key_value, None),
            };
            validate_label_key(key).map_err(anyhow::Error::msg)?;
            if let Some(value) = &value {
                validate_label_value(value).map_err(anyhow::Error::msg)?;
            }
            add.push(Taint {
                key: key.to_string(),
                value,
                effect: effect(effect_text)?,
                time_added: None,
            });
        }
    }
    let same = |a: &Taint, b: &Taint| a.key == b.key && a.effect == b.effect;
    let conflicting: Vec<&str> = add
        .iter()
        .filter(|a| {
            remove
                .iter()
                .any(|r| r.key == a.key && r.effect == Some(a.effect))
        })
        .map(|a| a.key.as_str())
        .collect();
    if !conflicting.is_empty() {
        bail!(
            "can not both modify and remove the following taint(s) in the same command: {}",
            conflicting.join(", ")
        );
    }
    if !overwrite {
        let existing: Vec<&str> = add
            .iter()
            .filter(|a| current.iter().any(|c| same(a, c)))
            .map(|a| a.key.as_str())
            .collect();
        if !existing.is_empty() {
            bail!(
                "node {node} already has {} taint(s) with same effect(s) and --overwrite is false",
                existing.join(",")
            );
        }
    }
    let mut taints = add;
    for old in current {
        if !taints.iter().any(|t| same(t, old)) {
            taints.push(old.clone());
        }
    }
    let added = taints.len() != current.len();
    let mut removed = false;
    for removal in &remove {
        let before = taints.len();
        taints.retain(|t| !removal.matches(t));
        removed = taints.len() != before;
        if !removed {
            bail!("taint \"{}\" not found on node \"{node}\"", removal.spec);
        }
    }
    let verb = if (added && removed) || overwrite {
        "modified"
    } else if added {
        "tainted"
    } else {
        "untainted"
    };
    Ok(TaintChange { taints, verb })
}

/// `drover taint node NAME …`.
pub fn taint(client: &Client, args: TaintArgs) -> anyhow::Result<()> {
    nodes_only(&args.resource, "tainted")?;
    let node = client.get(&node_path(&args.name), &[])?;
    let current: Vec<Taint> =
        serde_json::from_value(node["spec"]["taints"].clone()).unwrap_or_default();
    let change = compute_taints(&current, &args.taints, &args.name, args.overwrite)?;
    let value = if change.taints.is_empty() {
        Value::Null
    } else {
        serde_json::to_value(&change.taints)?
    };
    client.patch(
        &node_path(&args.name),
        MERGE_PATCH,
        &json!({"spec": {"taints": value}}),
    )?;
    println!("node/{} {}", args.name, change.verb);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: Option<&str>, effect: TaintEffect) -> Taint {
        Taint {
            key: key.into(),
            value: value.map(str::to_string),
            effect,
            time_added: None,
        }
    }

    fn specs(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn taints_are_added_replaced_and_removed_with_kubectls_words() {
        let current = vec![
            taint("gpu", Some("yes"), TaintEffect::NoSchedule),
            taint("gpu", None, TaintEffect::NoExecute),
        ];
        let change = |list: &[&str], overwrite: bool| {
            compute_taints(&current, &specs(list), "n", overwrite).unwrap()
        };
        assert_eq!(
            change(&["zone:PreferNoSchedule"], false),
            TaintChange {
                taints: vec![
                    taint("zone", None, TaintEffect::PreferNoSchedule),
                    current[0].clone(),
                    current[1].clone(),
                ],
                verb: "tainted"
            }
        );
        assert_eq!(
            change(&["gpu=no:NoSchedule"], true),
            TaintChange {
                taints: vec![
                    taint("gpu", Some("no"), TaintEffect::NoSchedule),
                    current[1].clone()
                ],
                verb: "modified"
            }
        );
        assert_eq!(
            change(&["gpu:NoExecute-"], false),
            TaintChange {
                taints: current[..1].to_vec(),
                verb: "untainted"
            }
        );
        assert_eq!(
            change(&["gpu-"], false),
            TaintChange {
                taints: vec![],
                verb: "untainted"
            }
        );
        assert_eq!(
            change(&["zone:NoSchedule", "gpu:NoExecute-"], false).verb,
            "modified"
        );
    }

    #[test]
    fn adding_a_taint_the_node_has_needs_overwrite_as_with_kubectl() {
        let current = vec![taint("gpu", Some("yes"), TaintEffect::NoSchedule)];
        let error = compute_taints(&current, &specs(&["gpu=no:NoSchedule"]), "pi-1", false)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "node pi-1 already has gpu taint(s) with same effect(s) and --overwrite is false"
        );
        // Another effect is another taint.
        assert!(compute_taints(&current, &specs(&["gpu:NoExecute"]), "pi-1", false).is_ok());
    }

    #[test]
    fn bad_taints_are_refused() {
        for bad in ["gpu", "gpu=x:Sometimes", "missing-", "bad key:NoSchedule"] {
            assert!(
                compute_taints(&[], &specs(&[bad]), "n", false).is_err(),
                "{bad}"
            );
        }
        assert!(
            compute_taints(&[], &specs(&["a:NoSchedule", "a:NoSchedule-"]), "n", false)
                .unwrap_err()
                .to_string()
                .contains("can not both modify and remove")
        );
    }

    #[test]
    fn labels_need_overwrite_to_change_and_no_change_is_no_patch() {
        let current = BTreeMap::from([("role".to_string(), "sensor".to_string())]);
        assert!(label_patch(&current, &specs(&["role=gateway"]), false)
            .unwrap_err()
            .to_string()
            .contains("--overwrite"));
        assert_eq!(
            label_patch(&current, &specs(&["role=gateway", "zone=n"]), true).unwrap(),
            Some(json!({"metadata": {"labels": {"role": "gateway", "zone": "n"}}}))
        );
        assert_eq!(
            label_patch(&current, &specs(&["role-"]), false).unwrap(),
            Some(json!({"metadata": {"labels": {"role": null}}}))
        );
        assert_eq!(
            label_patch(&current, &specs(&["role=sensor", "gone-"]), false).unwrap(),
            None
        );
    }
}
