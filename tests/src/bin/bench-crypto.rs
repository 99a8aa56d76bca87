//! Cost of the wire seal: `seal` and `open` of a heartbeat and of a desired state of 20 pods,
//! one Ed25519 sign and verify, and the bare envelope encode/decode (postcard) of the same
//! messages in the same run.
//!
//! Each figure is the median over 101 samples; a sample times a batch of operations sized to
//! take about 2 ms and divides by the batch size.
//!
//! Run: `scripts/bench-crypto`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use drover_proto::keys::SigningKey;
use drover_proto::msg::{
    DesiredContainer, DesiredPod, DesiredState, Heartbeat, Session, WireRestartPolicy,
};
use drover_proto::topic::NodeTopic;
use drover_proto::{wire, Message};

/// Median cost of one call of `op`, in microseconds.
fn median_us(mut op: impl FnMut()) -> f64 {
    // Size the batch so that one sample takes about 2 ms.
    let start = Instant::now();
    let mut calibration = 0u64;
    while start.elapsed() < Duration::from_millis(20) {
        op();
        calibration += 1;
    }
    let batch = (calibration / 10).max(1);
    let mut samples: Vec<f64> = (0..101)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..batch {
                op();
            }
            start.elapsed().as_secs_f64() * 1e6 / batch as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn desired_state(pods: usize) -> Message {
    let pods = (0..pods)
        .map(|i| DesiredPod {
            uid: drover_proto::random::uid_from_bytes([i as u8; 16]),
            namespace: "default".into(),
            name: format!("sensor-reader-{i}"),
            restart_policy: WireRestartPolicy::Always,
            termination_grace_seconds: 30,
            containers: vec![DesiredContainer {
                name: "main".into(),
                image: Some("registry.example.com/sensors/reader:1.4.2".into()),
                command: vec!["/usr/bin/reader".into()],
                args: vec![
                    "--interval".into(),
                    "5s".into(),
                    "--bus".into(),
                    "i2c-1".into(),
                ],
                env: vec![
                    ("SITE".into(), "north-field".into()),
                    ("LOG_LEVEL".into(), "info".into()),
                ],
                memory_limit_bytes: Some(64 << 20),
                cpu_limit_millis: Some(250),
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    Message::Desired(DesiredState {
        generation: 42,
        pods,
        finished: Vec::new(),
    })
}

fn measure(label: &str, topic: &str, message: &Message, key: &SigningKey) {
    let public = key.public();
    let encoded = wire::encode(message).expect("encode");
    let sealed = wire::seal(topic, message, key).expect("seal");
    assert!(wire::open(topic, &sealed, &public).is_ok(), "open");
    let encode = median_us(|| {
        black_box(wire::encode(black_box(message)).expect("encode"));
    });
    let decode = median_us(|| {
        black_box(wire::decode(black_box(&encoded)).expect("decode"));
    });
    let seal = median_us(|| {
        black_box(wire::seal(topic, black_box(message), key).expect("seal"));
    });
    let open = median_us(|| {
        black_box(wire::open(topic, black_box(&sealed), &public).expect("open"));
    });
    println!(
        "{label}: {} bytes encoded, {} sealed",
        encoded.len(),
        sealed.len()
    );
    println!(
        "  encode {encode:.2} us, seal {seal:.2} us ({:.0}x); decode {decode:.2} us, open {open:.2} us ({:.0}x)",
        seal / encode,
        open / decode
    );
}

fn main() {
    let key = SigningKey::from_seed([7u8; 32]);
    let public = key.public();

    let heartbeat = Message::Heartbeat(Heartbeat {
        session: Session {
            agent_start: 3,
            connection: 1,
        },
        sequence: 12_345,
    });
    measure(
        "heartbeat",
        &NodeTopic::Heartbeat.for_node("edge-01"),
        &heartbeat,
        &key,
    );
    measure(
        "desired state of 20 pods",
        &NodeTopic::Desired.for_node("edge-01"),
        &desired_state(20),
        &key,
    );

    let message = [0x5au8; 64];
    let signature = key.sign(&message);
    assert!(public.verifies(&message, &signature));
    let sign = median_us(|| {
        black_box(key.sign(black_box(&message)));
    });
    let verify = median_us(|| {
        black_box(public.verifies(black_box(&message), black_box(&signature)));
    });
    println!("Ed25519 (ring) of 64 bytes: sign {sign:.2} us, verify {verify:.2} us");
}
