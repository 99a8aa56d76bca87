//! The manifest parser against hostile text: it returns errors, never panics.

use drover_proto::manifest::parse_manifests;
use proptest::prelude::*;

const EXAMPLES: [&str; 4] = [
    include_str!("../../examples/pod-hello.yaml"),
    include_str!("../../examples/job-pi.yaml"),
    include_str!("../../examples/cronjob-hello.yaml"),
    include_str!("../../examples/daemonset-heartbeat-logger.yaml"),
];

#[test]
fn the_examples_parse() {
    for text in EXAMPLES {
        parse_manifests("example.yaml", text).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = parse_manifests("fuzz.yaml", &text);
    }

    #[test]
    fn yaml_shaped_text_never_panics(text in "([a-zA-Z:\\-\\[\\]{},&*!|>'\" #\\n]|  ){0,300}") {
        let _ = parse_manifests("fuzz.yaml", &text);
    }

    #[test]
    fn mutated_examples_never_panic(which in 0usize..4, cut in any::<prop::sample::Index>(), insert in "\\PC{0,8}") {
        let text = EXAMPLES[which];
        let mut at = cut.index(text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let mutated = format!("{}{insert}{}", &text[..at], &text[at..]);
        let _ = parse_manifests("fuzz.yaml", &mutated);
        let _ = parse_manifests("fuzz.yaml", &text[..at]);
    }
}
