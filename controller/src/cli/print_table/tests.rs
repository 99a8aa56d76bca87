//! Expected texts are kubectl v1.32's output for the same Tables served by a stub API server.

use serde_json::{json, Value};

use super::*;
use crate::api::resources::by_kind;
use crate::api::table::{samples, table, IncludeObject};

/// The sample Table of `kind`: the `default` namespace's objects, or all for `-A`.
fn sample_table(kind: &str, all_namespaces: bool) -> Value {
    let items: Vec<Value> = samples::all()
        .into_iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, items)| items)
        .unwrap_or_default()
        .into_iter()
        .filter(|o| {
            all_namespaces || o["metadata"]["namespace"].as_str().unwrap_or("default") == "default"
        })
        .collect();
    let resource = by_kind(kind).unwrap_or(&crate::api::resources::RESOURCES[0]);
    table(
        resource,
        &items,
        samples::now(),
        IncludeObject::Metadata,
        json!({"resourceVersion": "7"}),
    )
}

fn printed(kind: &str, all_namespaces: bool, options: &PrintOptions) -> String {
    let out = print(&sample_table(kind, all_namespaces), options);
    assert_eq!(out.stderr, "");
    out.stdout
}

#[test]
fn names_carry_the_kind_when_several_kinds_are_listed() {
    let options = PrintOptions {
        with_kind: Some("daemonset.apps".into()),
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("DaemonSet", false, &options),
        r#"NAME                         DESIRED   CURRENT   READY   UP-TO-DATE   AVAILABLE   NODE SELECTOR       AGE
daemonset.apps/log-shipper   3         3         2       3            2           <none>              7d
daemonset.apps/camera        1         1         1       0            1           camera=yes,zone=a   60m
"#
    );
}

#[test]
fn label_columns_follow_the_columns_and_precede_labels() {
    let options = PrintOptions {
        label_columns: vec!["app".into(), "example.com/tier".into(), "job-name".into()],
        show_labels: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Pod", false, &options),
        r#"NAME           READY   STATUS             RESTARTS       AGE   APP   TIER   JOB-NAME   LABELS
web-1          1/1     Running            3 (3m ago)     5m    web                     app=web,tier=front
backup-x7k2p   0/1     Completed          0              2d                 backup     job-name=backup
crashy         1/2     CrashLoopBackOff   12 (50s ago)   3h                            <none>
migrate        0/1     Init:0/1           0              30s                           <none>
"#
    );
    let options = PrintOptions {
        label_columns: vec!["app".into()],
        with_namespace: true,
        wide: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Pod", true, &options),
        r#"NAMESPACE   NAME           READY   STATUS             RESTARTS       AGE    IP         NODE     NOMINATED NODE   READINESS GATES   APP
default     web-1          1/1     Running            3 (3m ago)     5m     10.0.0.2   edge-1   <none>           <none>            web
default     backup-x7k2p   0/1     Completed          0              2d     10.0.0.3   edge-2   <none>           <none>            
default     crashy         1/2     CrashLoopBackOff   12 (50s ago)   3h     10.0.0.2   edge-1   <none>           <none>            
default     migrate        0/1     Init:0/1           0              30s    <none>     edge-2   <none>           <none>            
edge        leaving        0/1     Terminating        0              120m   <none>     <none>   <none>           <none>            
"#
    );
}

#[test]
fn no_rows_print_nothing_but_a_message() {
    let empty = table(
        by_kind("Pod").unwrap_or(&crate::api::resources::RESOURCES[0]),
        &[],
        samples::now(),
        IncludeObject::Metadata,
        json!({}),
    );
    for no_headers in [false, true] {
        let options = PrintOptions {
            namespace: Some("empty".into()),
            no_headers,
            ..PrintOptions::default()
        };
        assert_eq!(
            print(&empty, &options),
            Printed {
                stdout: String::new(),
                stderr: "No resources found in empty namespace.\n".into()
            }
        );
    }
    let all = PrintOptions {
        with_namespace: true,
        ..PrintOptions::default()
    };
    assert_eq!(print(&empty, &all).stderr, "No resources found\n");
}

#[test]
fn cells_stop_at_a_line_break() {
    let t = json!({
        "columnDefinitions": [{"name": "Name", "format": "name", "priority": 0}, {"name": "Message", "priority": 0}, {"name": "N", "priority": 0}],
        "rows": [{"cells": ["a", "first\nsecond", 3]}, {"cells": ["b", null, true]}],
    });
    assert_eq!(
        print(&t, &PrintOptions::default()).stdout,
        "NAME   MESSAGE    N\na      first...   3\nb      <nil>      true\n"
    );
}

#[test]
fn pods() {
    let options = PrintOptions {
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Pod", false, &options),
        r#"NAME           READY   STATUS             RESTARTS       AGE
web-1          1/1     Running            3 (3m ago)     5m
backup-x7k2p   0/1     Completed          0              2d
crashy         1/2     CrashLoopBackOff   12 (50s ago)   3h
migrate        0/1     Init:0/1           0              30s
"#
    );
}

#[test]
fn pods_wide() {
    let options = PrintOptions {
        wide: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Pod", false, &options),
        r#"NAME           READY   STATUS             RESTARTS       AGE   IP         NODE     NOMINATED NODE   READINESS GATES
web-1          1/1     Running            3 (3m ago)     5m    10.0.0.2   edge-1   <none>           <none>
backup-x7k2p   0/1     Completed          0              2d    10.0.0.3   edge-2   <none>           <none>
crashy         1/2     CrashLoopBackOff   12 (50s ago)   3h    10.0.0.2   edge-1   <none>           <none>
migrate        0/1     Init:0/1           0              30s   <none>     edge-2   <none>           <none>
"#
    );
}

#[test]
fn pods_labels() {
    let options = PrintOptions {
        show_labels: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Pod", false, &options),
        r#"NAME           READY   STATUS             RESTARTS       AGE   LABELS
web-1          1/1     Running            3 (3m ago)     5m    app=web,tier=front
backup-x7k2p   0/1     Completed          0              2d    job-name=backup
crashy         1/2     CrashLoopBackOff   12 (50s ago)   3h    <none>
migrate        0/1     Init:0/1           0              30s   <none>
"#
    );
}

#[test]
fn pods_noheaders() {
    let options = PrintOptions {
        no_headers: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Pod", false, &options),
        r#"web-1          1/1   Running            3 (3m ago)     5m
backup-x7k2p   0/1   Completed          0              2d
crashy         1/2   CrashLoopBackOff   12 (50s ago)   3h
migrate        0/1   Init:0/1           0              30s
"#
    );
}

#[test]
fn nodes() {
    let options = PrintOptions {
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Node", false, &options),
        r#"NAME     STATUS                        ROLES    AGE   VERSION
edge-1   Ready                         edge     40d   v0.3.0-drover
edge-2   NotReady,SchedulingDisabled   <none>   30h   v0.3.0-drover
edge-3   Unknown                       <none>   2s    
"#
    );
}

#[test]
fn nodes_wide() {
    let options = PrintOptions {
        wide: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Node", false, &options),
        r#"NAME     STATUS                        ROLES    AGE   VERSION         INTERNAL-IP    EXTERNAL-IP   OS-IMAGE                         KERNEL-VERSION   CONTAINER-RUNTIME
edge-1   Ready                         edge     40d   v0.3.0-drover   192.168.1.10   <none>        Debian GNU/Linux 12 (bookworm)   6.1.0-18-arm64   docker://24.0.7
edge-2   NotReady,SchedulingDisabled   <none>   30h   v0.3.0-drover   192.168.1.11   <none>        Raspbian                         6.6.20           <unknown>
edge-3   Unknown                       <none>   2s                    <none>         <none>        <unknown>                        <unknown>        <unknown>
"#
    );
}

#[test]
fn nodes_labels() {
    let options = PrintOptions {
        show_labels: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Node", false, &options),
        r#"NAME     STATUS                        ROLES    AGE   VERSION         LABELS
edge-1   Ready                         edge     40d   v0.3.0-drover   node-role.kubernetes.io/edge=,zone=a
edge-2   NotReady,SchedulingDisabled   <none>   30h   v0.3.0-drover   <none>
edge-3   Unknown                       <none>   2s                    <none>
"#
    );
}

#[test]
fn nodes_noheaders() {
    let options = PrintOptions {
        no_headers: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Node", false, &options),
        r#"edge-1   Ready                         edge     40d   v0.3.0-drover
edge-2   NotReady,SchedulingDisabled   <none>   30h   v0.3.0-drover
edge-3   Unknown                       <none>   2s    
"#
    );
}

#[test]
fn jobs() {
    let options = PrintOptions {
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Job", false, &options),
        r#"NAME     STATUS     COMPLETIONS   DURATION   AGE
backup   Complete   1/1           12s        2d
queue    Running    0/1 of 3      10m        10m
flaky    Failed     2/5           60m        60m
"#
    );
}

#[test]
fn jobs_wide() {
    let options = PrintOptions {
        wide: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Job", false, &options),
        r#"NAME     STATUS     COMPLETIONS   DURATION   AGE   CONTAINERS   IMAGES        SELECTOR
backup   Complete   1/1           12s        2d    main         restic:0.17   batch.kubernetes.io/controller-uid=uid-backup
queue    Running    0/1 of 3      10m        10m   main         worker:2      batch.kubernetes.io/controller-uid=uid-queue
flaky    Failed     2/5           60m        60m   main         flaky:1       batch.kubernetes.io/controller-uid=uid-flaky
"#
    );
}

#[test]
fn jobs_labels() {
    let options = PrintOptions {
        show_labels: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Job", false, &options),
        r#"NAME     STATUS     COMPLETIONS   DURATION   AGE   LABELS
backup   Complete   1/1           12s        2d    <none>
queue    Running    0/1 of 3      10m        10m   <none>
flaky    Failed     2/5           60m        60m   <none>
"#
    );
}

#[test]
fn jobs_noheaders() {
    let options = PrintOptions {
        no_headers: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Job", false, &options),
        r#"backup   Complete   1/1        12s   2d
queue    Running    0/1 of 3   10m   10m
flaky    Failed     2/5        60m   60m
"#
    );
}

#[test]
fn cronjobs() {
    let options = PrintOptions {
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("CronJob", false, &options),
        r#"NAME           SCHEDULE    TIMEZONE        SUSPEND   ACTIVE   LAST SCHEDULE   AGE
nightly        0 3 * * *   <none>          True      0        33h             9d
every-minute   * * * * *   Europe/Berlin   False     1        60s             20m
"#
    );
}

#[test]
fn cronjobs_wide() {
    let options = PrintOptions {
        wide: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("CronJob", false, &options),
        r#"NAME           SCHEDULE    TIMEZONE        SUSPEND   ACTIVE   LAST SCHEDULE   AGE   CONTAINERS   IMAGES        SELECTOR
nightly        0 3 * * *   <none>          True      0        33h             9d    main         restic:0.17   <none>
every-minute   * * * * *   Europe/Berlin   False     1        60s             20m   main         busybox       <none>
"#
    );
}

#[test]
fn cronjobs_labels() {
    let options = PrintOptions {
        show_labels: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("CronJob", false, &options),
        r#"NAME           SCHEDULE    TIMEZONE        SUSPEND   ACTIVE   LAST SCHEDULE   AGE   LABELS
nightly        0 3 * * *   <none>          True      0        33h             9d    <none>
every-minute   * * * * *   Europe/Berlin   False     1        60s             20m   <none>
"#
    );
}

#[test]
fn cronjobs_noheaders() {
    let options = PrintOptions {
        no_headers: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("CronJob", false, &options),
        r#"nightly        0 3 * * *   <none>          True    0     33h   9d
every-minute   * * * * *   Europe/Berlin   False   1     60s   20m
"#
    );
}

#[test]
fn daemonsets() {
    let options = PrintOptions {
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("DaemonSet", false, &options),
        r#"NAME          DESIRED   CURRENT   READY   UP-TO-DATE   AVAILABLE   NODE SELECTOR       AGE
log-shipper   3         3         2       3            2           <none>              7d
camera        1         1         1       0            1           camera=yes,zone=a   60m
"#
    );
}

#[test]
fn daemonsets_wide() {
    let options = PrintOptions {
        wide: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("DaemonSet", false, &options),
        r#"NAME          DESIRED   CURRENT   READY   UP-TO-DATE   AVAILABLE   NODE SELECTOR       AGE   CONTAINERS       IMAGES                  SELECTOR
log-shipper   3         3         2       3            2           <none>              7d    fluent-bit       fluent/fluent-bit:3.1   app=log-shipper
camera        1         1         1       0            1           camera=yes,zone=a   60m   capture,upload   capture:4,upload:2      app=camera
"#
    );
}

#[test]
fn daemonsets_labels() {
    let options = PrintOptions {
        show_labels: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("DaemonSet", false, &options),
        r#"NAME          DESIRED   CURRENT   READY   UP-TO-DATE   AVAILABLE   NODE SELECTOR       AGE   LABELS
log-shipper   3         3         2       3            2           <none>              7d    <none>
camera        1         1         1       0            1           camera=yes,zone=a   60m   <none>
"#
    );
}

#[test]
fn daemonsets_noheaders() {
    let options = PrintOptions {
        no_headers: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("DaemonSet", false, &options),
        r#"log-shipper   3     3     2     3     2     <none>              7d
camera        1     1     1     0     1     camera=yes,zone=a   60m
"#
    );
}

#[test]
fn events() {
    let options = PrintOptions {
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Event", false, &options),
        r#"LAST SEEN   TYPE      REASON      OBJECT       MESSAGE
20s         Warning   BackOff     pod/crashy   Back-off restarting failed container main in pod crashy_default(uid-crashy)
47h         Normal    Completed   job/backup   Job completed
"#
    );
}

#[test]
fn events_wide() {
    let options = PrintOptions {
        wide: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Event", false, &options),
        r#"LAST SEEN   TYPE      REASON      OBJECT       SUBOBJECT               SOURCE            MESSAGE                                                                       FIRST SEEN   COUNT   NAME
20s         Warning   BackOff     pod/crashy   spec.containers{main}   kubelet, edge-1   Back-off restarting failed container main in pod crashy_default(uid-crashy)   179m         40      crashy.188a1f2b3c4d5e6f
47h         Normal    Completed   job/backup                           job-controller    Job completed                                                                 47h          1       backup.188a1f2b3c4d0001
"#
    );
}

#[test]
fn events_labels() {
    let options = PrintOptions {
        show_labels: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Event", false, &options),
        r#"LAST SEEN   TYPE      REASON      OBJECT       MESSAGE                                                                       LABELS
20s         Warning   BackOff     pod/crashy   Back-off restarting failed container main in pod crashy_default(uid-crashy)   <none>
47h         Normal    Completed   job/backup   Job completed                                                                 <none>
"#
    );
}

#[test]
fn events_noheaders() {
    let options = PrintOptions {
        no_headers: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Event", false, &options),
        r#"20s   Warning   BackOff     pod/crashy   Back-off restarting failed container main in pod crashy_default(uid-crashy)
47h   Normal    Completed   job/backup   Job completed
"#
    );
}

#[test]
fn namespaces() {
    let options = PrintOptions {
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Namespace", false, &options),
        r#"NAME      STATUS        AGE
default   Active        40d
old       Terminating   60m
"#
    );
}

#[test]
fn namespaces_wide() {
    let options = PrintOptions {
        wide: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Namespace", false, &options),
        r#"NAME      STATUS        AGE
default   Active        40d
old       Terminating   60m
"#
    );
}

#[test]
fn namespaces_labels() {
    let options = PrintOptions {
        show_labels: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Namespace", false, &options),
        r#"NAME      STATUS        AGE   LABELS
default   Active        40d   kubernetes.io/metadata.name=default
old       Terminating   60m   kubernetes.io/metadata.name=old
"#
    );
}

#[test]
fn namespaces_noheaders() {
    let options = PrintOptions {
        no_headers: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Namespace", false, &options),
        r#"default   Active        40d
old       Terminating   60m
"#
    );
}

#[test]
fn controllerrevisions() {
    let options = PrintOptions {
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("ControllerRevision", false, &options),
        r#"NAME                    CONTROLLER                   REVISION   AGE
log-shipper-6c9b8d7f4   daemonset.apps/log-shipper   1          7d
log-shipper-75f8c9d6b   daemonset.apps/log-shipper   2          120m
"#
    );
}

#[test]
fn controllerrevisions_wide() {
    let options = PrintOptions {
        wide: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("ControllerRevision", false, &options),
        r#"NAME                    CONTROLLER                   REVISION   AGE
log-shipper-6c9b8d7f4   daemonset.apps/log-shipper   1          7d
log-shipper-75f8c9d6b   daemonset.apps/log-shipper   2          120m
"#
    );
}

#[test]
fn controllerrevisions_labels() {
    let options = PrintOptions {
        show_labels: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("ControllerRevision", false, &options),
        r#"NAME                    CONTROLLER                   REVISION   AGE    LABELS
log-shipper-6c9b8d7f4   daemonset.apps/log-shipper   1          7d     controller-revision-hash=6c9b8d7f4
log-shipper-75f8c9d6b   daemonset.apps/log-shipper   2          120m   controller-revision-hash=75f8c9d6b
"#
    );
}

#[test]
fn controllerrevisions_noheaders() {
    let options = PrintOptions {
        no_headers: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("ControllerRevision", false, &options),
        r#"log-shipper-6c9b8d7f4   daemonset.apps/log-shipper   1     7d
log-shipper-75f8c9d6b   daemonset.apps/log-shipper   2     120m
"#
    );
}

#[test]
fn pods_all_namespaces() {
    let options = PrintOptions {
        with_namespace: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Pod", true, &options),
        r#"NAMESPACE   NAME           READY   STATUS             RESTARTS       AGE
default     web-1          1/1     Running            3 (3m ago)     5m
default     backup-x7k2p   0/1     Completed          0              2d
default     crashy         1/2     CrashLoopBackOff   12 (50s ago)   3h
default     migrate        0/1     Init:0/1           0              30s
edge        leaving        0/1     Terminating        0              120m
"#
    );
}

#[test]
fn pods_all_namespaces_wide_with_labels() {
    let options = PrintOptions {
        with_namespace: true,
        wide: true,
        show_labels: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Pod", true, &options),
        r#"NAMESPACE   NAME           READY   STATUS             RESTARTS       AGE    IP         NODE     NOMINATED NODE   READINESS GATES   LABELS
default     web-1          1/1     Running            3 (3m ago)     5m     10.0.0.2   edge-1   <none>           <none>            app=web,tier=front
default     backup-x7k2p   0/1     Completed          0              2d     10.0.0.3   edge-2   <none>           <none>            job-name=backup
default     crashy         1/2     CrashLoopBackOff   12 (50s ago)   3h     10.0.0.2   edge-1   <none>           <none>            <none>
default     migrate        0/1     Init:0/1           0              30s    <none>     edge-2   <none>           <none>            <none>
edge        leaving        0/1     Terminating        0              120m   <none>     <none>   <none>           <none>            <none>
"#
    );
}

#[test]
fn jobs_all_namespaces_wide() {
    let options = PrintOptions {
        with_namespace: true,
        wide: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        printed("Job", true, &options),
        r#"NAMESPACE   NAME     STATUS     COMPLETIONS   DURATION   AGE   CONTAINERS   IMAGES        SELECTOR
default     backup   Complete   1/1           12s        2d    main         restic:0.17   batch.kubernetes.io/controller-uid=uid-backup
default     queue    Running    0/1 of 3      10m        10m   main         worker:2      batch.kubernetes.io/controller-uid=uid-queue
default     flaky    Failed     2/5           60m        60m   main         flaky:1       batch.kubernetes.io/controller-uid=uid-flaky
"#
    );
}

/// The Tables `get pods --watch` receives: the list, then an event with columns (web-1 is
/// being deleted) and one without (a new pod with a longer name).
fn watch_tables() -> Vec<Value> {
    let resource = by_kind("Pod").unwrap_or(&crate::api::resources::RESOURCES[0]);
    let mut leaving = samples::pods()[0].clone();
    leaving["metadata"]["deletionTimestamp"] = json!("2026-01-10T12:00:00Z");
    let mut new = samples::pods()[3].clone();
    new["metadata"]["name"] = json!("a-much-longer-pod-name");
    new["metadata"]["creationTimestamp"] = json!("2026-01-10T12:00:00Z");
    new["status"] = json!({"phase": "Pending"});
    vec![
        sample_table("Pod", false),
        crate::api::table::table_of_one(
            resource,
            &leaving,
            samples::now(),
            IncludeObject::Metadata,
            true,
        ),
        crate::api::table::table_of_one(
            resource,
            &new,
            samples::now(),
            IncludeObject::Metadata,
            false,
        ),
    ]
}

#[test]
fn watch_prints_headers_once_and_keeps_column_widths() {
    let mut printer = WatchPrinter::new(PrintOptions::default());
    let text: String = watch_tables().iter().map(|t| printer.print(t)).collect();
    assert_eq!(
        text,
        r#"NAME           READY   STATUS             RESTARTS       AGE
web-1          1/1     Running            3 (3m ago)     5m
backup-x7k2p   0/1     Completed          0              2d
crashy         1/2     CrashLoopBackOff   12 (50s ago)   3h
migrate        0/1     Init:0/1           0              30s
web-1          1/1     Terminating        3 (3m ago)     5m
a-much-longer-pod-name   0/1     Pending            0              0s
"#
    );
}

#[test]
fn watch_prints_headers_again_when_the_columns_change() {
    let mut printer = WatchPrinter::new(PrintOptions::default());
    let pods = sample_table("Pod", false);
    let namespaces = sample_table("Namespace", false);
    assert!(printer.print(&pods).starts_with("NAME "));
    assert!(!printer.print(&pods).starts_with("NAME "));
    assert!(printer.print(&namespaces).starts_with("NAME "));
    assert_eq!(printer.print(&json!({"rows": []})), "");
}

#[test]
fn listing_options_follow_the_resource_scope() {
    let pods = by_kind("Pod").unwrap_or(&crate::api::resources::RESOURCES[0]);
    let nodes = by_kind("Node").unwrap_or(&crate::api::resources::RESOURCES[0]);
    let in_ns = PrintOptions::for_listing(pods, "edge", false);
    assert!(!in_ns.with_namespace);
    assert_eq!(in_ns.namespace.as_deref(), Some("edge"));
    let across = PrintOptions::for_listing(pods, "edge", true);
    assert!(across.with_namespace);
    assert_eq!(across.namespace, None);
    let cluster = PrintOptions::for_listing(nodes, "edge", true);
    assert!(!cluster.with_namespace);
    assert_eq!(cluster.namespace, None);
    assert_eq!(kind_prefix(pods), "pod");
    assert_eq!(
        by_kind("DaemonSet").map(kind_prefix).as_deref(),
        Some("daemonset.apps")
    );
    assert_eq!(
        by_kind("Job").map(kind_prefix).as_deref(),
        Some("job.batch")
    );
}

#[test]
fn terminal_escapes_from_the_server_are_shown_not_obeyed() {
    let t = json!({
        "columnDefinitions": [{"name": "Name", "format": "name", "priority": 0}, {"name": "Status", "priority": 0}],
        "rows": [{"cells": ["default", "\u{1b}[31mred\rx"], "object": {"metadata": {"labels": {"x": "\u{1b}]0;t"}}}}],
    });
    let options = PrintOptions {
        show_labels: true,
        ..PrintOptions::default()
    };
    assert_eq!(
        print(&t, &options).stdout,
        "NAME      STATUS         LABELS\ndefault   ^[[31mred...   x=^[]0;t\n"
    );
}

#[test]
fn objects_print_as_their_table() {
    let nodes = by_kind("Node").unwrap_or(&crate::api::resources::RESOURCES[0]);
    let options = PrintOptions::default();
    assert_eq!(
        print_objects(nodes, &samples::nodes(), samples::now(), &options),
        print(&sample_table("Node", false), &options)
    );
}
