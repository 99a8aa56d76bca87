//! The real kubectl against Drover's discovery and OpenAPI: `api-resources`, `version`,
//! `explain`, and client-side dry runs whose strict validation kubectl hands to the server.

use std::path::Path;
use std::process::{Command, Output};

use drover_e2e::*;

/// kubectl 1.32, as the machines have it.
const KUBECTL: &str = "/usr/bin/kubectl";

struct Kubectl<'a> {
    server: &'a Server,
    dir: &'a Path,
}

impl Kubectl<'_> {
    /// Runs kubectl against the server, with its own (empty) kubeconfig and cache so that
    /// nothing of the machine's leaks in.
    fn run(&self, args: &[&str]) -> Output {
        assert!(
            Path::new(KUBECTL).exists(),
            "{KUBECTL} is needed by these tests"
        );
        Command::new(KUBECTL)
            .arg("--kubeconfig")
            .arg(self.server.kubeconfig())
            .arg("--cache-dir")
            .arg(self.dir.join("kube-cache"))
            .args(args)
            .output()
            .expect("kubectl runs")
    }

    fn ok(&self, args: &[&str]) -> (String, String) {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{stdout}\n{stderr}"
        );
        (stdout, stderr)
    }
}

fn start(dir: &Path) -> Server {
    Server::start(
        dir,
        ServerOptions {
            disable_agent: true,
            ..ServerOptions::default()
        },
    )
}

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

#[test]
fn api_resources_lists_exactly_what_drover_serves() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let kubectl = Kubectl {
        server: &server,
        dir: dir.path(),
    };
    let (out, _) = kubectl.ok(&["api-resources", "--no-headers"]);
    let mut rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    rows.sort();
    // NAME SHORTNAMES APIVERSION NAMESPACED KIND (no short name: one column fewer).
    let mut expected: Vec<Vec<&str>> = vec![
        vec![
            "controllerrevisions",
            "apps/v1",
            "true",
            "ControllerRevision",
        ],
        vec!["cronjobs", "cj", "batch/v1", "true", "CronJob"],
        vec!["daemonsets", "ds", "apps/v1", "true", "DaemonSet"],
        vec!["events", "ev", "v1", "true", "Event"],
        vec!["jobs", "batch/v1", "true", "Job"],
        vec!["namespaces", "ns", "v1", "false", "Namespace"],
        vec!["nodes", "no", "v1", "false", "Node"],
        vec!["pods", "po", "v1", "true", "Pod"],
    ];
    expected.sort();
    assert_eq!(rows, expected, "{out}");

    let (out, _) = kubectl.ok(&["api-resources", "--api-group=batch", "-o", "name"]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["cronjobs.batch", "jobs.batch"]
    );
    let (out, _) = kubectl.ok(&["api-versions"]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["apps/v1", "batch/v1", "v1"]
    );
    // The categories kubectl expands `all` with.
    let (out, _) = kubectl.ok(&["api-resources", "--categories=all", "-o", "name"]);
    let mut all: Vec<&str> = out.lines().collect();
    all.sort();
    assert_eq!(
        all,
        ["cronjobs.batch", "daemonsets.apps", "jobs.batch", "pods"]
    );
}

#[test]
fn version_prints_the_server_version_without_skew_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let kubectl = Kubectl {
        server: &server,
        dir: dir.path(),
    };
    let (out, err) = kubectl.ok(&["version"]);
    assert!(out.contains("Server Version: v1.32.0+drover-"), "{out}");
    assert!(!err.to_lowercase().contains("warning"), "{err}");
    let (out, _) = kubectl.ok(&["version", "-o", "json"]);
    let version: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(version["serverVersion"]["major"], "1");
    assert_eq!(version["serverVersion"]["compiler"], "rustc");
}

#[test]
fn unknown_group_versions_are_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let kubectl = Kubectl {
        server: &server,
        dir: dir.path(),
    };
    for path in ["/apis/networking.k8s.io/v1", "/apis/batch/v2", "/api/v2"] {
        let out = kubectl.run(&["get", "--raw", path]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{path}");
        assert!(
            err.contains("NotFound") || err.contains("could not find"),
            "{path}: {err}"
        );
    }
    let (out, _) = kubectl.ok(&["get", "--raw", "/apis/batch"]);
    assert!(out.contains("\"preferredVersion\""), "{out}");
}

#[test]
fn explain_prints_drovers_schema() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let kubectl = Kubectl {
        server: &server,
        dir: dir.path(),
    };
    let (out, _) = kubectl.ok(&["explain", "job.spec.template"]);
    assert!(out.contains("KIND:       Job"), "{out}");
    assert!(out.contains("template <PodTemplateSpec>"), "{out}");
    assert!(out.contains("spec\t<PodSpec> -required-"), "{out}");

    let (out, _) = kubectl.ok(&["explain", "pod.spec.containers.image"]);
    assert!(out.contains("FIELD: image <string>"), "{out}");
    assert!(out.contains("Image; unset for host processes."), "{out}");

    let (out, _) = kubectl.ok(&["explain", "ds", "--recursive"]);
    for field in [
        "updateStrategy",
        "volumeMounts",
        "tolerations",
        "numberReady",
    ] {
        assert!(out.contains(field), "{field} missing:\n{out}");
    }

    let (out, _) = kubectl.ok(&["explain", "job.status"]);
    assert!(out.contains("succeeded\t<integer>"), "{out}");
    let (out, _) = kubectl.ok(&["explain", "pod.spec.restartPolicy"]);
    assert!(out.contains("Always"), "{out}");
    let (out, _) = kubectl.ok(&["explain", "nodes.status.nodeInfo"]);
    assert!(out.contains("architecture"), "{out}");

    for resource in [
        "pods",
        "nodes",
        "namespaces",
        "events",
        "jobs",
        "cronjobs",
        "daemonsets",
        "controllerrevisions",
    ] {
        kubectl.ok(&["explain", resource, "--recursive"]);
    }

    let (sidecar, _) = kubectl.ok(&["explain", "pod.spec.initContainers.restartPolicy"]);
    assert!(sidecar.contains("sidecar"), "{sidecar}");
    let out = kubectl.run(&["explain", "pod.spec.containers.envFrom"]);
    assert!(!out.status.success(), "Drover has no envFrom yet");
}

#[test]
fn strict_validation_is_left_to_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let kubectl = Kubectl {
        server: &server,
        dir: dir.path(),
    };
    let examples = examples();
    let (out, err) = kubectl.ok(&[
        "apply",
        "--dry-run=client",
        "--validate=strict",
        "-f",
        examples.to_str().unwrap(),
        "-v=6",
    ]);
    assert_eq!(out.matches("created (dry run)").count(), 5, "{out}");
    // Every PATCH operation takes fieldValidation, so kubectl never downloads the v2
    // document to validate on its own.
    assert!(err.contains("/openapi/v3"), "{err}");
    assert!(!err.contains("/openapi/v2"), "{err}");
}
