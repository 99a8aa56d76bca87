//! Kubernetes' `$(VAR)` references in `command` and `args`.

/// Expands `$(NAME)` with `env`'s value; unknown references stay as written, and `$$(` is an
/// escaped `$(`.
pub fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$$(") {
            out.push_str("$(");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("$(") {
            match after.find(')') {
                Some(end) => {
                    let name = &after[..end];
                    match env.iter().rev().find(|(k, _)| k == name) {
                        Some((_, v)) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &after[end + 1..];
                }
                None => {
                    out.push_str(tail);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

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
        ] {
            assert_eq!(expand(input, &env), output, "{input}");
        }
    }
}
