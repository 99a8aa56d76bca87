use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::*;

fn at(text: &str) -> DateTime<Utc> {
    parse(&json!(text)).unwrap()
}

fn describe_without_events(kind: &str, object: &Value, pods: &[Value]) -> String {
    description(
        kind,
        &Described {
            object,
            events: &[],
            pods,
            now: at("2026-12-01T16:40:00Z"),
        },
    )
}

#[test]
fn columns_align_within_blocks_of_lines_with_tabs_as_gos_tabwriter_aligns_them() {
    let text = "Name:\tweb\nControlled By:\tJob/pi\nContainers:\n  a:\n    Image:\tx\n    Restart Count:\t0\n\tcontinued\nEnd:\t1\n";
    assert_eq!(
        tabwrite(text),
        "Name:           web\nControlled By:  Job/pi\nContainers:\n  a:\n    Image:          x\n    Restart Count:  0\n                    continued\nEnd:                1\n"
    );
    // A tab-terminated last cell is padded; a cell past every column is not.
    assert_eq!(
        tabwrite("  Ready \tTrue \n  Type\tStatus\n"),
        "  Ready   True \n  Type    Status\n"
    );
}

#[test]
fn events_print_as_kubectl_describe_prints_them() {
    let now = at("2026-01-01T00:10:00Z");
    let list = vec![
        json!({"type": "Warning", "reason": "BackOff", "count": 3, "source": {"component": "kubelet"},
               "firstTimestamp": "2026-01-01T00:05:00Z", "lastTimestamp": "2026-01-01T00:09:00Z",
               "message": "Back-off restarting failed container"}),
        json!({"type": "Normal", "reason": "Scheduled", "count": 1, "source": {"component": "drover"},
               "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z",
               "message": "Successfully assigned default/web to pi-1"}),
    ];
    let mut out = Out::default();
    events(&mut out, &list, now);
    assert_eq!(
        out.finish(),
        "Events:\n\
         \x20 Type     Reason     Age               From     Message\n\
         \x20 ----     ------     ----              ----     -------\n\
         \x20 Normal   Scheduled  10m               drover   Successfully assigned default/web to pi-1\n\
         \x20 Warning  BackOff    60s (x3 over 5m)  kubelet  Back-off restarting failed container\n"
    );
}

/// A crash-looping DaemonSet pod as a drover server shows it.
fn crash_looping_pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"creationTimestamp": "2026-12-01T16:20:44Z", "labels": {"app": "httpd", "controller-revision-hash": "c360e310ec"},
            "name": "httpd-kxz9j", "namespace": "default",
            "ownerReferences": [{"apiVersion": "apps/v1", "blockOwnerDeletion": true, "controller": true, "kind": "DaemonSet", "name": "httpd", "uid": "b2"}],
            "resourceVersion": "280", "uid": "37"},
        "spec": {"containers": [{"command": ["httpd", "-f", "-p", "80", "-h", "/www"], "image": "busybox:1.36", "name": "httpd",
                "ports": [{"containerPort": 80, "hostPort": 8080}], "resources": {"limits": {"cpu": "100m", "memory": "16Mi"}},
                "volumeMounts": [{"mountPath": "/www", "name": "www", "readOnly": true}]}],
            "nodeName": "server-node", "restartPolicy": "Always",
            "tolerations": [{"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists"},
                            {"effect": "NoSchedule", "key": "node.kubernetes.io/unschedulable", "operator": "Exists"}],
            "volumes": [{"hostPath": {"path": "/srv/www", "type": "Directory"}, "name": "www"}]},
        "status": {"conditions": [{"status": "True", "type": "PodScheduled"}, {"status": "False", "type": "ContainersReady"}],
            "containerStatuses": [{"image": "busybox:1.36", "imageID": "", "name": "httpd", "ready": false, "restartCount": 7,
                "lastState": {"terminated": {"exitCode": 128, "finishedAt": "2026-12-01T16:30:54Z", "message": "hostPath volume \"www\": /srv/www is not a directory",
                                             "reason": "ContainerCannotRun", "startedAt": "2026-12-01T16:30:54Z"}},
                "state": {"waiting": {"message": "back-off 5m", "reason": "CrashLoopBackOff"}}}],
            "hostIP": "127.0.0.1", "phase": "Pending", "podIP": "127.0.0.1", "startTime": "2026-12-01T16:20:44Z"}})
}

#[test]
fn a_pod_is_described_in_kubectls_layout() {
    // kubectl describe's output for the same pod (its ports with their protocol, as
    // Kubernetes defaults it).
    assert_eq!(
        describe_without_events("Pod", &crash_looping_pod(), &[]),
        r#"Name:           httpd-kxz9j
Namespace:      default
Node:           server-node/127.0.0.1
Start Time:     Tue, 01 Dec 2026 16:20:44 +0000
Labels:         app=httpd
                controller-revision-hash=c360e310ec
Annotations:    <none>
Status:         Pending
IP:             127.0.0.1
IPs:            <none>
Controlled By:  DaemonSet/httpd
Containers:
  httpd:
    Container ID:  
    Image:         busybox:1.36
    Image ID:      
    Port:          80/TCP
    Host Port:     8080/TCP
    Command:
      httpd
      -f
      -p
      80
      -h
      /www
    State:          Waiting
      Reason:       CrashLoopBackOff
    Last State:     Terminated
      Reason:       ContainerCannotRun
      Message:      hostPath volume "www": /srv/www is not a directory
      Exit Code:    128
      Started:      Tue, 01 Dec 2026 16:30:54 +0000
      Finished:     Tue, 01 Dec 2026 16:30:54 +0000
    Ready:          False
    Restart Count:  7
    Limits:
      cpu:        100m
      memory:     16Mi
    Environment:  <none>
    Mounts:
      /www from www (ro)
Conditions:
  Type              Status
  PodScheduled      True 
  ContainersReady   False 
Volumes:
  www:
    Type:          HostPath (bare host directory volume)
    Path:          /srv/www
    HostPathType:  Directory
QoS Class:         Burstable
Node-Selectors:    <none>
Tolerations:       node.kubernetes.io/not-ready:NoExecute op=Exists
                   node.kubernetes.io/unschedulable:NoSchedule op=Exists
Events:            <none>
"#
    );
}

#[test]
fn a_pod_has_status_once_and_no_yaml_dump() {
    let text = describe_without_events("Pod", &crash_looping_pod(), &[]);
    assert_eq!(text.matches("Status:").count(), 1, "{text}");
    assert!(!text.contains("Spec:"), "{text}");
}

#[test]
fn a_job_is_described_in_kubectls_layout() {
    let job = json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "uid": "u1", "creationTimestamp": "2026-12-01T16:20:44Z"},
        "spec": {"backoffLimit": 4, "completionMode": "NonIndexed", "completions": 8, "manualSelector": false, "parallelism": 2,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}, "suspend": false,
            "template": {"metadata": {"labels": {"batch.kubernetes.io/controller-uid": "u1", "job-name": "pi"}},
                "spec": {"containers": [{"command": ["sh", "-c", "echo 3.14"], "name": "pi"}], "restartPolicy": "Never"}}},
        "status": {"active": 0, "completionTime": "2026-12-01T16:20:54Z", "ready": 0, "succeeded": 8, "failed": 0,
            "startTime": "2026-12-01T16:20:44Z"}});
    assert_eq!(
        describe_without_events("Job", &job, &[]),
        "Name:             pi
Namespace:        default
Selector:         batch.kubernetes.io/controller-uid=u1
Labels:           <none>
Annotations:      <none>
Parallelism:      2
Completions:      8
Completion Mode:  NonIndexed
Suspend:          false
Backoff Limit:    4
Start Time:       Tue, 01 Dec 2026 16:20:44 +0000
Completed At:     Tue, 01 Dec 2026 16:20:54 +0000
Duration:         10s
Pods Statuses:    0 Active (0 Ready) / 8 Succeeded / 0 Failed
Pod Template:
  Labels:  batch.kubernetes.io/controller-uid=u1
           job-name=pi
  Containers:
   pi:
    Image:      
    Port:       <none>
    Host Port:  <none>
    Command:
      sh
      -c
      echo 3.14
    Environment:   <none>
    Mounts:        <none>
  Volumes:         <none>
  Node-Selectors:  <none>
  Tolerations:     <none>
Events:            <none>
"
    );
}

#[test]
fn a_daemonset_counts_its_pods_by_phase() {
    let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "httpd", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "httpd"}},
            "template": {"metadata": {"labels": {"app": "httpd"}}, "spec": {"containers": [{"name": "httpd", "image": "busybox:1.36"}]}}},
        "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "updatedNumberScheduled": 2, "numberAvailable": 1, "numberMisscheduled": 0}});
    let pods = [
        json!({"status": {"phase": "Running"}}),
        json!({"status": {"phase": "Pending"}}),
    ];
    let text = describe_without_events("DaemonSet", &ds, &pods);
    assert!(
        text.starts_with(
            "Name:           httpd
Selector:       app=httpd
Node-Selector:  <none>
Labels:         <none>
Annotations:    <none>
Desired Number of Nodes Scheduled: 2
Current Number of Nodes Scheduled: 2
Number of Nodes Scheduled with Up-to-date Pods: 2
Number of Nodes Scheduled with Available Pods: 1
Number of Nodes Misscheduled: 0
Pods Status:  1 Running / 1 Waiting / 0 Succeeded / 0 Failed
Pod Template:
  Labels:  app=httpd
  Containers:
   httpd:
    Image:         busybox:1.36
    Port:          <none>
"
        ),
        "{text}"
    );
}

#[test]
fn a_cronjob_shows_its_schedule_template_and_last_run() {
    let cj = json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "hello", "namespace": "default"},
        "spec": {"schedule": "* * * * *", "concurrencyPolicy": "Forbid", "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "hello", "command": ["date"]}], "restartPolicy": "OnFailure"}}}}},
        "status": {"lastScheduleTime": "2026-12-01T16:31:00Z", "active": [{"name": "hello-29935711"}]}});
    let text = describe_without_events("CronJob", &cj, &[]);
    for line in [
        "Schedule:                      * * * * *\n",
        "Concurrency Policy:            Forbid\n",
        "Suspend:                       <unset>\n",
        "Successful Job History Limit:  3\n",
        "Starting Deadline Seconds:     <unset>\n",
        "Selector:                      <unset>\n",
        "Pod Template:\n  Labels:  <none>\n  Containers:\n   hello:\n",
        "Last Schedule Time:  Tue, 01 Dec 2026 16:31:00 +0000\n",
        "Active Jobs:         hello-29935711\n",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
}

#[test]
fn a_node_shows_its_conditions_capacity_and_the_pods_it_runs() {
    let node = json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "pi-1", "creationTimestamp": "2026-12-01T16:20:38Z", "labels": {"node-role.kubernetes.io/control-plane": "true"}},
        "spec": {"taints": [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]},
        "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.7"}],
            "capacity": {"cpu": "2", "memory": "1Gi"}, "allocatable": {"cpu": "2", "memory": "1Gi"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "AgentReady", "message": "ok",
                "lastHeartbeatTime": "2026-12-01T16:31:08Z", "lastTransitionTime": "2026-12-01T16:20:38Z"}],
            "nodeInfo": {"kubeletVersion": "v0.1.0", "architecture": "arm64"}}});
    let pods = [
        json!({"metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2026-12-01T16:30:00Z"},
               "spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m"}}}]},
               "status": {"phase": "Running"}}),
        json!({"metadata": {"name": "done", "namespace": "default"}, "spec": {}, "status": {"phase": "Succeeded"}}),
    ];
    let text = describe_without_events("Node", &node, &pods);
    for line in [
        "Roles:              control-plane\n",
        "Taints:             gpu=yes:NoSchedule\nUnschedulable:      false\n",
        "  Ready   True    Tue, 01 Dec 2026 16:31:08 +0000   Tue, 01 Dec 2026 16:20:38 +0000   AgentReady   ok\n",
        "Addresses:\n  InternalIP:  10.0.0.7\n",
        "  Architecture:               arm64\n",
        "Non-terminated Pods:          (1 in total)\n",
        "  default                     web     100m (5%)     500m (25%)  0 (0%)           256Mi (25%)    10m\n",
        "  cpu                100m (5%)  500m (25%)\n",
        "  memory             0 (0%)     256Mi (25%)\n",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
}

#[test]
fn kinds_without_a_describer_show_every_field_as_kubectls_generic_describer_does() {
    let revision = json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "revision": 1,
        "metadata": {"name": "web-1", "namespace": "default"},
        "data": {"spec": {"template": {"spec": {"containers": [{"name": "a", "command": ["sh", "-c"]}]}}}}});
    assert_eq!(
        describe_without_events("ControllerRevision", &revision, &[]),
        "Name:         web-1
Namespace:    default
Labels:       <none>
Annotations:  <none>
API Version:  apps/v1
Data:
  Spec:
    Template:
      Spec:
        Containers:
          Command:
            sh
            -c
          Name:  a
Kind:            ControllerRevision
Revision:        1
Events:          <none>
"
    );
}

#[test]
fn field_names_are_labelled_as_kubectl_labels_them() {
    for (key, label) in [
        ("involvedObject", "Involved Object"),
        ("apiVersion", "API Version"),
        ("uid", "UID"),
        ("cpu", "CPU"),
        ("firstTimestamp", "First Timestamp"),
        ("$patch", "$patch"),
    ] {
        assert_eq!(title_case(key), label);
    }
}
