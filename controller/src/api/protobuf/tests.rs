//! Bodies kubectl 1.32 sent (captured with a recording proxy in front of `drover
//! server`), and hostile input.

use serde_json::json;

use super::*;

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// `kubectl create job fromcron --from=cronjob/hello`.
const CREATE_JOB_FROM_CRONJOB: &str = "6b3873000a0f0a0862617463682f763112034a6f6212db020a98010a0866726f6d63726f6e12001a0022002a003200380042005a0d0a047469657212056261746368622b0a2163726f6e6a6f622e6b756265726e657465732e696f2f696e7374616e746961746512066d616e75616c6a420a0743726f6e4a6f621a0568656c6c6f222433323836303664342d343932392d346432612d623366312d3561653233303631396663642a0862617463682f7631300112b30132ae010a100a0012001a0022002a0032003800420012990112590a01631206616c70696e651a0273681a022d631a076563686f2068692a003a060a014112016242210a0d0a0363707512060a043130306d0a100a066d656d6f727912060a0436344d696a007200800100880100900100a201001a054e65766572320c436c7573746572466972737442004a0052005800600068008201008a01009a011164656661756c742d7363686564756c6572c2010038021a082000280030003a001a002200";

/// `kubectl create job plain --image=alpine -- echo hi`.
const CREATE_JOB_IMAGE: &str = "6b3873000a0f0a0862617463682f763112034a6f621289010a150a05706c61696e12001a0022002a00320038004200126632640a100a0012001a0022002a003200380042001250122d0a05706c61696e1206616c70696e651a046563686f1a0268692a0042006a007200800100880100900100a201001a054e65766572320042004a0052005800600068008201008a01009a0100c201001a082000280030003a001a002200";

/// `kubectl create cronjob cj2 --image=alpine --schedule='*/5 * * * *' -- date`.
const CREATE_CRONJOB: &str = "6b3873000a130a0862617463682f7631120743726f6e4a6f6212a6010a130a03636a3212001a0022002a00320038004200128c010a0b2a2f35202a202a202a202a1a002a7b0a130a03636a3212001a0022002a00320038004200126432620a100a0012001a0022002a00320038004200124e12270a03636a321206616c70696e651a04646174652a0042006a007200800100880100900100a201001a094f6e4661696c757265320042004a0052005800600068008201008a01009a0100c201001a001a002200";

/// `kubectl create namespace team`.
const CREATE_NAMESPACE: &str = "6b3873000a0f0a02763112094e616d657370616365121c0a140a047465616d12001a0022002a0032003800420012001a020a001a002200";

/// `kubectl auth can-i create pods`.
const CAN_I_CREATE_PODS: &str = "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a656374416363657373526576696577123f0a100a0012001a0022002a0032003800420012210a1f0a0764656661756c7412066372656174651a0022002a04706f647332003a001a08080012001a0020001a002200";

/// `kubectl auth can-i get /metrics`.
const CAN_I_GET_METRICS: &str = "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a656374416363657373526576696577122f0a100a0012001a0022002a003200380042001211120f0a082f6d65747269637312036765741a08080012001a0020001a002200";

/// `kubectl auth whoami`.
const WHOAMI: &str = "6b3873000a2d0a1861757468656e7469636174696f6e2e6b38732e696f2f7631121153656c665375626a656374526576696577121a0a100a0012001a0022002a0032003800420012060a040a0012001a002200";

/// `kubectl drain --disable-eviction --grace-period=7 (the pod's DELETE)`.
const DRAIN_DELETE_OPTIONS: &str =
    "6b3873000a130a027631120d44656c6574654f7074696f6e73120208071a002200";

/// `kubectl create job richjob --from=cronjob/rich (volumes, affinity, tolerations, ports...)`.
const CREATE_JOB_FROM_RICH_CRONJOB: &str = "6b3873000a0f0a0862617463682f763112034a6f621281040a87010a07726963686a6f6212001a0022002a00320038004200622b0a2163726f6e6a6f622e6b756265726e657465732e696f2f696e7374616e746961746512066d616e75616c6a410a0743726f6e4a6f621a0472696368222465653766623766352d646265302d343231662d613661632d3261373263633764633937612a0862617463682f7631300112ea020801100218d80432de020a1d0a0012001a0022002a003200380042005a0b0a0361707012047269636812bc020a0f0a0773637261746368120412020a000a1b0a04686f737412130a110a042f746d7012094469726563746f727912750a01631206616c70696e6522022d782a052f776f726b32120a0468747470100018903f22035443502a00420c120a0a0363707512030a01314a190a077363726174636810011a082f73637261746368220032006a00720c49664e6f7450726573656e747a041000400a800100880100900100a201001a094f6e4661696c7572652005320c436c757374657246697273743a0b0a046469736b120373736442004a005200580060006800720310e8078201008a01009201200a1e0a1c0a1a0a180a04617263681202496e1a0561726d36341a05616d6436349a011164656661756c742d7363686564756c6572b2011b0a016b12064578697374731a00220a4e6f5363686564756c65281ec2010040001a082000280030003a001a002200";

#[test]
fn kubectl_create_job_from_cronjob() {
    let job = decode(&hex(CREATE_JOB_FROM_CRONJOB)).unwrap();
    assert_eq!(
        job,
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": "fromcron",
                "labels": {"tier": "batch"},
                "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
                "ownerReferences": [{
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": "hello",
                    "uid": "328606d4-4929-4d2a-b3f1-5ae230619fcd",
                    "controller": true,
                }],
            },
            "spec": {
                "backoffLimit": 2,
                "template": {"spec": {
                    "containers": [{
                        "name": "c",
                        "image": "alpine",
                        "command": ["sh", "-c", "echo hi"],
                        "env": [{"name": "A", "value": "b"}],
                        "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}},
                    }],
                    "restartPolicy": "Never",
                    "dnsPolicy": "ClusterFirst",
                    "schedulerName": "default-scheduler",
                }},
            },
        })
    );
}

#[test]
fn kubectl_create_job_and_cronjob_with_an_image() {
    let job = decode(&hex(CREATE_JOB_IMAGE)).unwrap();
    assert_eq!(
        job,
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "plain"},
            "spec": {"template": {"spec": {
                "containers": [{"name": "plain", "image": "alpine", "command": ["echo", "hi"]}],
                "restartPolicy": "Never",
            }}},
        })
    );
    let cronjob = decode(&hex(CREATE_CRONJOB)).unwrap();
    assert_eq!(
        cronjob,
        json!({
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "cj2"},
            "spec": {
                "schedule": "*/5 * * * *",
                // The template's name (kubectl sets it to the CronJob's) is dropped.
                "jobTemplate": {
                    "spec": {"template": {"spec": {
                        "containers": [{"name": "cj2", "image": "alpine", "command": ["date"]}],
                        "restartPolicy": "OnFailure",
                    }}},
                },
            },
        })
    );
}

#[test]
fn a_job_with_every_supported_pod_setting() {
    let job = decode(&hex(CREATE_JOB_FROM_RICH_CRONJOB)).unwrap();
    let spec = &job["spec"];
    assert_eq!(spec["completions"], 2);
    assert_eq!(spec["parallelism"], 1);
    assert_eq!(spec["activeDeadlineSeconds"], 600);
    let template = &spec["template"];
    assert_eq!(template["metadata"], json!({"labels": {"app": "rich"}}));
    let pod = &template["spec"];
    assert_eq!(pod["terminationGracePeriodSeconds"], 5);
    assert_eq!(pod["nodeSelector"], json!({"disk": "ssd"}));
    assert_eq!(pod["securityContext"], json!({"runAsUser": 1000}));
    assert_eq!(
        pod["tolerations"],
        json!([{"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 30}])
    );
    assert_eq!(
        pod["affinity"],
        json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "arch", "operator": "In", "values": ["arm64", "amd64"]}]}
        ]}}})
    );
    assert_eq!(
        pod["volumes"],
        json!([
            {"name": "scratch", "emptyDir": {}},
            {"name": "host", "hostPath": {"path": "/tmp", "type": "Directory"}},
        ])
    );
    assert_eq!(
        pod["containers"][0],
        json!({
            "name": "c",
            "image": "alpine",
            "args": ["-x"],
            "workingDir": "/work",
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
            "resources": {"requests": {"cpu": "1"}},
            "volumeMounts": [{"name": "scratch", "mountPath": "/scratch", "readOnly": true}],
            "imagePullPolicy": "IfNotPresent",
            "securityContext": {"privileged": false, "runAsGroup": 10},
        })
    );
}

#[test]
fn kubectl_create_namespace() {
    assert_eq!(
        decode(&hex(CREATE_NAMESPACE)).unwrap(),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    );
}

#[test]
fn kubectl_auth_reviews() {
    assert_eq!(
        decode(&hex(CAN_I_CREATE_PODS)).unwrap(),
        json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}},
        })
    );
    assert_eq!(
        decode(&hex(CAN_I_GET_METRICS)).unwrap()["spec"],
        json!({"nonResourceAttributes": {"path": "/metrics", "verb": "get"}})
    );
    assert_eq!(
        decode(&hex(WHOAMI)).unwrap(),
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    );
}

#[test]
fn kubectl_delete_options() {
    assert_eq!(
        decode(&hex(DRAIN_DELETE_OPTIONS)).unwrap(),
        json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 7})
    );
    // `drain --grace-period=5` of an earlier kubectl.
    let body = hex("6b3873000a130a027631120d44656c6574654f7074696f6e73120208051a002200");
    assert_eq!(decode(&body).unwrap()["gracePeriodSeconds"], 5);
}

/// A length-delimited field.
fn ld(number: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    push_varint(&mut out, u64::from(number << 3 | 2));
    push_varint(&mut out, value.len() as u64);
    out.extend_from_slice(value);
    out
}

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let type_meta = [ld(1, api_version.as_bytes()), ld(2, kind.as_bytes())].concat();
    [MAGIC.to_vec(), ld(1, &type_meta), ld(2, raw)].concat()
}

#[test]
fn an_eviction_with_options() {
    let meta = [ld(1, b"p"), ld(3, b"default")].concat();
    // gracePeriodSeconds = 0 is a pointer: kept; -1 is a ten-byte varint.
    let options = [
        vec![0x08, 0x00],
        ld(4, b"Foreground"),
        ld(2, &ld(2, b"42")),
        ld(5, b"All"),
    ]
    .concat();
    let body = envelope(
        "policy/v1",
        "Eviction",
        &[ld(1, &meta), ld(2, &options)].concat(),
    );
    assert_eq!(
        decode(&body).unwrap(),
        json!({
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": "p", "namespace": "default"},
            "deleteOptions": {
                "gracePeriodSeconds": 0,
                "propagationPolicy": "Foreground",
                "preconditions": {"resourceVersion": "42"},
                "dryRun": ["All"],
            },
        })
    );
    let negative = [
        0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ];
    let body = envelope("v1", "DeleteOptions", &negative);
    assert_eq!(decode(&body).unwrap()["gracePeriodSeconds"], -1);
}

#[test]
fn a_setting_drover_does_not_take_is_named() {
    // A container with envFrom (field 19): refused by name, not dropped.
    let container = [ld(1, b"c"), ld(19, &ld(1, b"x"))].concat();
    let pod = envelope("v1", "Pod", &ld(2, &ld(2, &container)));
    let message = decode(&pod).unwrap_err().to_string();
    assert!(
        message.contains("envFrom (field 19 of Container) is not supported"),
        "{message}"
    );
    // A pointer field is set when present, even at zero (`shareProcessNamespace: false`);
    // a plain one at zero is unset (`hostPID: false`).
    let spec = [ld(2, &ld(1, b"c")), vec![0xd8, 0x01, 0x00]].concat();
    let pod = envelope("v1", "Pod", &ld(2, &spec));
    assert!(decode(&pod)
        .unwrap_err()
        .to_string()
        .contains("shareProcessNamespace"));
    // Accepted and ignored, as in JSON: decoded, at zero too.
    let spec = [ld(2, &ld(1, b"c")), vec![0xa8, 0x01, 0x00]].concat();
    let pod = envelope("v1", "Pod", &ld(2, &spec));
    assert_eq!(
        decode(&pod).unwrap()["spec"]["automountServiceAccountToken"],
        false
    );
    let spec = [ld(2, &ld(1, b"c")), vec![0x60, 0x00]].concat();
    let pod = envelope("v1", "Pod", &ld(2, &spec));
    assert!(decode(&pod).is_ok());
    // A field not in the table at all (a future one, say): refused by number.
    let container = [ld(1, b"c"), ld(99, &ld(1, b"x"))].concat();
    let pod = envelope(
        "v1",
        "Pod",
        &[ld(1, &ld(1, b"p")), ld(2, &ld(2, &container))].concat(),
    );
    let DecodeError::Invalid(message) = decode(&pod).unwrap_err() else {
        panic!("not a 400");
    };
    assert!(
        message.contains("unknown field 99 in Container"),
        "{message}"
    );
    assert!(message.contains("spec: containers:"), "{message}");
    // The same field left at its zero value (as Go writes unset fields) is fine.
    let container = [ld(1, b"c"), ld(99, b"")].concat();
    let pod = envelope("v1", "Pod", &ld(2, &ld(2, &container)));
    assert_eq!(
        decode(&pod).unwrap()["spec"],
        json!({"containers": [{"name": "c"}]})
    );
    // Kinds Drover does not read in protobuf: 415.
    let body = envelope("apps/v1", "Deployment", b"");
    assert!(matches!(decode(&body), Err(DecodeError::Unsupported(_))));
}

#[test]
fn packed_and_unpacked_repeated_ints_both_read() {
    let codes = |values: Vec<u8>| {
        let exit = [ld(2, b"In"), values].concat();
        let rule = [ld(1, b"FailJob"), ld(2, &exit)].concat();
        let spec = ld(11, &ld(1, &rule));
        decode(&envelope("batch/v1", "Job", &ld(2, &spec))).unwrap()["spec"]["podFailurePolicy"]
            ["rules"][0]["onExitCodes"]["values"]
            .clone()
    };
    assert_eq!(codes(vec![0x18, 1, 0x18, 42]), json!([1, 42]));
    assert_eq!(codes(ld(3, &[1, 42])), json!([1, 42]));
}

/// A tiny deterministic generator: the tests need variety, not randomness.
fn lcg(state: &mut u64) -> u8 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*state >> 33) as u8
}

#[test]
fn hostile_bodies_are_errors_never_panics() {
    let fixtures = [
        CREATE_JOB_FROM_CRONJOB,
        CREATE_JOB_IMAGE,
        CREATE_CRONJOB,
        CREATE_NAMESPACE,
        CAN_I_CREATE_PODS,
        DRAIN_DELETE_OPTIONS,
        CREATE_JOB_FROM_RICH_CRONJOB,
    ];
    let mut state = 7;
    for fixture in fixtures {
        let body = hex(fixture);
        // Every truncation.
        for end in 0..body.len() {
            let _ = decode(&body[..end]);
        }
        // Flipped bytes.
        for _ in 0..2000 {
            let mut mutated = body.clone();
            let at = 4 + usize::from(lcg(&mut state)) * (mutated.len() - 4) / 256;
            mutated[at] = lcg(&mut state);
            let _ = decode(&mutated);
        }
    }
    // Pure noise after the magic.
    for _ in 0..2000 {
        let len = usize::from(lcg(&mut state));
        let noise: Vec<u8> = (0..len).map(|_| lcg(&mut state)).collect();
        let _ = decode(&[MAGIC, &noise].concat());
    }
    assert!(decode(b"{}").is_err());
    assert!(decode(b"").is_err());
    assert!(decode(b"k8s\0\x0a\xff").is_err());
    // A length far past the end.
    assert!(decode(b"k8s\0\x12\xff\xff\xff\xff\x0f").is_err());
}

#[test]
fn deep_nesting_is_refused() {
    // Far deeper than any schema: refused without exhausting the stack.
    let mut raw = Vec::new();
    for _ in 0..10_000 {
        raw = ld(2, &raw);
    }
    let body = envelope("batch/v1", "Job", &raw);
    assert!(decode(&body).is_err());
    // The depth limit itself.
    let mut out = Map::new();
    let err = read_message(&schema::JOB, &[], MAX_DEPTH, &mut out).unwrap_err();
    assert!(err.contains("too deeply"), "{err}");
}

#[test]
fn probes_decode_with_their_inline_handler_and_int_or_string_ports() {
    // livenessProbe: httpGet {path: /healthz, port: "web" (IntOrString type 1)},
    // periodSeconds 5; readinessProbe: tcpSocket {port: 8080 (type 0)}.
    let named = [vec![0x08, 0x01], ld(3, b"web")].concat();
    let http = [ld(1, b"/healthz"), ld(2, &named)].concat();
    let liveness = [ld(1, &ld(2, &http)), vec![0x20, 0x05]].concat();
    let numbered = [vec![0x08, 0x00], vec![0x10, 0x90, 0x3f]].concat();
    let readiness = ld(1, &ld(3, &ld(1, &numbered)));
    let container = [ld(1, b"c"), ld(10, &liveness), ld(11, &readiness)].concat();
    let pod = envelope("v1", "Pod", &ld(2, &ld(2, &container)));
    let decoded = decode(&pod).unwrap();
    let c = &decoded["spec"]["containers"][0];
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"path": "/healthz", "port": "web"}, "periodSeconds": 5})
    );
    assert_eq!(c["readinessProbe"], json!({"tcpSocket": {"port": 8080}}));
}

#[test]
fn init_containers_sidecars_and_hooks_decode() {
    let sleep = [0x08, 5]; // SleepAction.seconds = 5
    let lifecycle = ld(2, &ld(4, &sleep)); // preStop.sleep
    let sidecar = [ld(1, b"proxy"), ld(24, b"Always"), ld(12, &lifecycle)].concat();
    let app = ld(1, b"main");
    let spec = [ld(2, &app), ld(20, &sidecar)].concat();
    let pod = envelope("v1", "Pod", &ld(2, &spec));
    let decoded = decode(&pod).unwrap();
    assert_eq!(
        decoded["spec"]["initContainers"],
        json!([{
            "name": "proxy",
            "restartPolicy": "Always",
            "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
        }])
    );
    assert_eq!(decoded["spec"]["containers"][0]["name"], "main");
}
