//! Init containers and sidecars at apply time: what is accepted, and what is refused with
//! the field named.

use super::{parse_manifests, ContainerRestartPolicy, Manifest};

fn errors_of(text: &str) -> Vec<(String, String)> {
    match parse_manifests("t.yaml", text) {
        Ok(_) => vec![],
        Err(errors) => errors.into_iter().map(|e| (e.path, e.message)).collect(),
    }
}

/// The Kubernetes documentation's Indexed Job ("Indexed Job for Parallel Processing with
/// Static Work Assignment"), unmodified.
const DOCS_INDEXED_JOB: &str = r#"apiVersion: batch/v1
kind: Job
metadata:
  name: 'indexed-job'
spec:
  completions: 5
  parallelism: 3
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      initContainers:
      - name: 'input'
        image: 'docker.io/library/bash'
        command:
        - "bash"
        - "-c"
        - |
          items=(foo bar baz qux xyz)
          echo ${items[$JOB_COMPLETION_INDEX]} > /input/data.txt
        volumeMounts:
        - mountPath: /input
          name: input
      containers:
      - name: 'worker'
        image: 'docker.io/library/busybox'
        command:
        - "rev"
        - "/input/data.txt"
        volumeMounts:
        - mountPath: /input
          name: input
      volumes:
      - name: input
        emptyDir: {}
"#;

const SIDECAR_JOB: &str = "apiVersion: batch/v1
kind: Job
metadata:
  name: with-sidecar
spec:
  template:
    spec:
      restartPolicy: Never
      initContainers:
      - name: log
        image: busybox:1
        restartPolicy: Always
        command: [sh, -c, 'sleep 3600']
        readinessProbe:
          exec: {command: ['true']}
      containers:
      - name: main
        image: busybox:1
        command: ['true']
";

#[test]
fn the_documentations_indexed_job_with_an_init_container_is_accepted() {
    let manifests = parse_manifests("job.yaml", DOCS_INDEXED_JOB).unwrap();
    let Manifest::Job(job) = &manifests[0] else {
        panic!("a Job: {manifests:?}");
    };
    let pod = &job.spec.template.spec;
    assert_eq!(pod.init_containers.len(), 1);
    assert_eq!(pod.init_containers[0].name, "input");
    assert_eq!(pod.init_containers[0].restart_policy, None);
    assert_eq!(pod.containers[0].name, "worker");
}

#[test]
fn a_sidecar_is_an_init_container_that_says_restart_policy_always() {
    let manifests = parse_manifests("job.yaml", SIDECAR_JOB).unwrap();
    let Manifest::Job(job) = &manifests[0] else {
        panic!("a Job: {manifests:?}");
    };
    let sidecar = &job.spec.template.spec.init_containers[0];
    assert_eq!(sidecar.restart_policy, Some(ContainerRestartPolicy::Always));
    assert!(sidecar.readiness_probe.is_some(), "sidecars may be probed");
}

#[test]
fn init_container_mistakes_are_refused_by_field() {
    let cases = [
        (
            SIDECAR_JOB.replace("        restartPolicy: Always\n", ""),
            "spec.template.spec.initContainers[0].readinessProbe",
            "without restartPolicy: Always",
        ),
        (
            SIDECAR_JOB.replace("restartPolicy: Always", "restartPolicy: Never"),
            "spec.template.spec.initContainers[0].restartPolicy",
            "Always",
        ),
        (
            SIDECAR_JOB.replace(
                "        command: ['true']\n",
                "        command: ['true']\n        restartPolicy: Always\n",
            ),
            "spec.template.spec.containers[0].restartPolicy",
            "only be set on init containers",
        ),
        (
            SIDECAR_JOB.replace("- name: main", "- name: log"),
            "spec.template.spec.containers[0].name",
            "duplicate container name",
        ),
        (
            SIDECAR_JOB.replace(
                "        image: busybox:1\n        restartPolicy",
                "        restartPolicy",
            ),
            "spec.template.spec.initContainers[0].image",
            "container engine",
        ),
    ];
    for (text, field, message) in cases {
        let errors = errors_of(&text);
        assert!(
            errors
                .iter()
                .any(|(f, m)| f == field && m.contains(message)),
            "{field}: {errors:?}"
        );
    }
}

#[test]
fn process_pods_take_init_containers_too() {
    let text = "apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers:
  - name: setup
    command: [sh, -c, 'echo ready > /tmp/flag']
  containers:
  - name: main
    command: [cat, /tmp/flag]
";
    assert!(errors_of(text).is_empty(), "{:?}", errors_of(text));
    let mounted = text.replace(
        "    command: [sh, -c, 'echo ready > /tmp/flag']\n",
        "    command: [sh, -c, 'echo ready > /tmp/flag']\n    volumeMounts: [{name: v, mountPath: /v}]\n",
    );
    let errors = errors_of(&mounted);
    assert!(
        errors
            .iter()
            .any(|(f, _)| f.starts_with("spec.initContainers[0].volumeMounts")),
        "{errors:?}"
    );
}
