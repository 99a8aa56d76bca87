//! The pods a Job creates, as Kubernetes' Job controller makes them: the template with the
//! Job's labels, and for an Indexed Job its index (label, annotation, env, hostname).

use std::collections::BTreeMap;

use drover_proto::manifest::{EnvVar, JobSpec, Kind};

use super::JobOutcome;
use crate::reconcile::action::{Action, NewPod, ObjectKey, Owner};

/// Label and annotation of a pod's completion index.
pub const INDEX_KEY: &str = "batch.kubernetes.io/job-completion-index";
/// Annotation with the nodes of a per-node Job, one per index.
pub const PER_NODE_TARGETS: &str = "drover.io/per-node-targets";

/// The pod of `job` (with annotations `job_annotations`) for `index` (None: not Indexed).
pub fn new_pod(
    job: &Owner,
    job_annotations: &BTreeMap<String, String>,
    spec: &JobSpec,
    index: Option<u32>,
) -> NewPod {
    let template = &spec.template;
    let mut pod_spec = template.spec.clone();
    let mut labels = template.metadata.labels.clone();
    let mut annotations = template.metadata.annotations.clone();
    let name = &job.key.name;
    for (key, value) in [
        ("batch.kubernetes.io/job-name", name),
        ("job-name", name),
        ("batch.kubernetes.io/controller-uid", &job.uid),
        ("controller-uid", &job.uid),
    ] {
        labels.insert(key.into(), value.clone());
    }
    let generate_name = match index {
        Some(i) => {
            labels.insert(INDEX_KEY.into(), i.to_string());
            annotations.insert(INDEX_KEY.into(), i.to_string());
            // Init containers too: the documentation's Indexed Job picks its input in one.
            for container in pod_spec
                .init_containers
                .iter_mut()
                .chain(&mut pod_spec.containers)
            {
                container
                    .env
                    .push(EnvVar::literal("JOB_COMPLETION_INDEX", i.to_string()));
            }
            // Kubernetes names an Indexed Job's pod hosts after their index.
            let hostname: String = format!("{name}-{i}").chars().take(63).collect();
            pod_spec.hostname = Some(hostname.trim_end_matches('-').to_string());
            if let Some(targets) = job_annotations.get(PER_NODE_TARGETS) {
                pod_spec.node_name = targets.split(',').nth(i as usize).map(str::to_string);
            }
            format!("{name}-{i}-")
        }
        None => format!("{name}-"),
    };
    NewPod {
        owner: job.clone(),
        generate_name,
        labels,
        annotations,
        spec: pod_spec,
    }
}

/// What an outcome asks of the store, in order: the Job and its pods gone once its TTL has
/// passed; otherwise the pods it stops (never counted), then the pods it creates.
pub fn store_actions(
    job: &Owner,
    job_annotations: &BTreeMap<String, String>,
    spec: &JobSpec,
    outcome: &JobOutcome,
) -> Vec<Action> {
    if outcome.delete_job {
        return vec![Action::DeleteWithDependents(job.key.clone())];
    }
    let deletions = outcome.delete.iter().map(|name| Action::DeletePod {
        pod: ObjectKey::new(Kind::Pod, &job.key.namespace, name),
        never_counted: true,
    });
    let creations = outcome
        .create
        .iter()
        .map(|index| Action::CreatePod(new_pod(job, job_annotations, spec, *index)));
    deletions.chain(creations).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::action::ObjectKey;
    use drover_proto::manifest::{CompletionMode, Kind};

    fn job() -> Owner {
        Owner {
            key: ObjectKey::new(Kind::Job, "batch", "pi"),
            uid: "job-uid".into(),
        }
    }

    fn spec(indexed: bool) -> JobSpec {
        let mut spec: JobSpec = serde_json::from_value(serde_json::json!({
            "template": {
                "metadata": {"labels": {"app": "pi"}, "annotations": {"note": "kept"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "command": ["true"]}],
                },
            },
        }))
        .expect("a valid spec");
        if indexed {
            spec.completion_mode = Some(CompletionMode::Indexed);
        }
        spec
    }

    #[test]
    fn a_pod_carries_the_template_and_the_jobs_labels() {
        let pod = new_pod(&job(), &BTreeMap::new(), &spec(false), None);
        assert_eq!(pod.generate_name, "pi-");
        assert_eq!(pod.owner, job());
        assert_eq!(pod.labels["app"], "pi");
        assert_eq!(pod.labels["job-name"], "pi");
        assert_eq!(pod.labels["batch.kubernetes.io/job-name"], "pi");
        assert_eq!(pod.labels["controller-uid"], "job-uid");
        assert_eq!(pod.labels["batch.kubernetes.io/controller-uid"], "job-uid");
        assert_eq!(pod.annotations["note"], "kept");
        assert!(!pod.labels.contains_key(INDEX_KEY));
        assert!(pod.spec.containers[0].env.is_empty());
        assert_eq!(pod.spec.hostname, None);
        assert_eq!(pod.spec.node_name, None);
    }

    #[test]
    fn an_indexed_pod_carries_its_index_everywhere_kubernetes_puts_it() {
        let pod = new_pod(&job(), &BTreeMap::new(), &spec(true), Some(3));
        assert_eq!(pod.generate_name, "pi-3-");
        assert_eq!(pod.labels[INDEX_KEY], "3");
        assert_eq!(pod.annotations[INDEX_KEY], "3");
        assert_eq!(
            pod.spec.containers[0].env,
            vec![EnvVar::literal("JOB_COMPLETION_INDEX", "3")]
        );
        assert_eq!(pod.spec.hostname.as_deref(), Some("pi-3"));
    }

    #[test]
    fn a_hostname_is_cut_to_63_characters_without_a_trailing_dash() {
        let mut long = job();
        long.key.name = format!("{}-", "a".repeat(62));
        let pod = new_pod(&long, &BTreeMap::new(), &spec(true), Some(7));
        let hostname = pod.spec.hostname.expect("a hostname");
        assert!(hostname.len() <= 63);
        assert!(!hostname.ends_with('-'));
    }

    #[test]
    fn an_outcome_stops_pods_before_it_creates_them() {
        let outcome = JobOutcome {
            create: vec![Some(1), Some(4)],
            delete: vec!["pi-0-xyz".into()],
            ..JobOutcome::default()
        };
        let actions = store_actions(&job(), &BTreeMap::new(), &spec(true), &outcome);
        assert_eq!(actions.len(), 3);
        assert_eq!(
            actions[0],
            Action::DeletePod {
                pod: ObjectKey::new(Kind::Pod, "batch", "pi-0-xyz"),
                never_counted: true
            }
        );
        let created: Vec<&str> = actions[1..]
            .iter()
            .filter_map(|a| match a {
                Action::CreatePod(pod) => Some(pod.generate_name.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(created, ["pi-1-", "pi-4-"]);
    }

    #[test]
    fn a_job_past_its_ttl_goes_with_its_pods_and_nothing_else_happens() {
        let outcome = JobOutcome {
            create: vec![None],
            delete: vec!["pi-abc".into()],
            delete_job: true,
            ..JobOutcome::default()
        };
        assert_eq!(
            store_actions(&job(), &BTreeMap::new(), &spec(false), &outcome),
            vec![Action::DeleteWithDependents(job().key)]
        );
    }

    #[test]
    fn a_per_node_job_pins_each_index_to_its_node() {
        let targets = BTreeMap::from([(PER_NODE_TARGETS.to_string(), "n0,n1,n2".to_string())]);
        let pinned = |i| {
            new_pod(&job(), &targets, &spec(true), Some(i))
                .spec
                .node_name
        };
        assert_eq!(pinned(0).as_deref(), Some("n0"));
        assert_eq!(pinned(2).as_deref(), Some("n2"));
        assert_eq!(pinned(3), None, "an index past the list stays unpinned");
    }
}
