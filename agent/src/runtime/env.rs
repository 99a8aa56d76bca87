//! Kubernetes' `$(VAR)` references in `command` and `args`.

/// Expands `$(NAME)` with `env`'s value as the kubelet does: unknown references stay as
/// written, `$$` is an escaped `$`.
pub use drover_proto::manifest::env::expand;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_expand_like_kubernetes() {
        let env = vec![
            ("A".to_string(), "1".to_string()),
            ("B".to_string(), "two".to_string()),
        ];
        for (input, output) in [
            ("$(A)", "1"),
            ("x$(A)y$(B)z", "x1ytwoz"),
            ("$(C)", "$(C)"),
            ("$$(A)", "$(A)"),
            ("$HOME $(A", "$HOME $(A"),
            ("cost: $5", "cost: $5"),
            ("$$HOME", "$HOME"),
        ] {
            assert_eq!(expand(input, &env), output, "{input}");
        }
    }
}
