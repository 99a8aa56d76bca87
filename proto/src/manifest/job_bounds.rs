//! Upper bounds on the numbers in a Job spec that size what the controller allocates.
//!
//! The Job reconciler walks `0..completions` of an Indexed Job (pending indexes, success
//! policies without `succeededIndexes`), expands `succeededIndexes` ranges into sets, and
//! creates up to `parallelism` pods in one pass. Unbounded, a 300-byte manifest with
//! `completions: 2147483647` makes it allocate gigabytes. The limits follow Kubernetes'
//! `pkg/apis/batch/validation` (100,000 for Indexed parallelism and `maxFailedIndexes`);
//! Drover also caps Indexed `completions` and every Job's `parallelism` at 100,000, because
//! it keeps indexes expanded rather than as compressed intervals.

use super::types::{CompletionMode, JobSpec};

/// Largest `completions` of an Indexed Job, and of any Job with `backoffLimitPerIndex`.
pub const MAX_INDEXED_COMPLETIONS: i32 = 100_000;
/// Largest `parallelism` of any Job.
pub const MAX_PARALLELISM: i32 = 100_000;
/// Largest `maxFailedIndexes`.
pub const MAX_FAILED_INDEXES: i32 = 100_000;

/// The bound violations of a Job spec at `path` (e.g. `spec`, `spec.jobTemplate.spec`), as
/// (field path, message) pairs; empty when the spec is within bounds. Used at apply and by
/// the controller before it reconciles a stored Job (which an older version may have
/// accepted).
pub fn job_spec_bounds(path: &str, spec: &JobSpec) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let indexed = spec.completion_mode == Some(CompletionMode::Indexed);
    let le = |limit: i32| format!("must be less than or equal to {limit}");
    if let Some(completions) = spec.completions {
        if indexed && completions > MAX_INDEXED_COMPLETIONS {
            errors.push((
                format!("{path}.completions"),
                format!(
                    "{} when completionMode is Indexed",
                    le(MAX_INDEXED_COMPLETIONS)
                ),
            ));
        } else if spec.backoff_limit_per_index.is_some() && completions > MAX_INDEXED_COMPLETIONS {
            errors.push((
                format!("{path}.completions"),
                format!(
                    "{} when backoffLimitPerIndex is set",
                    le(MAX_INDEXED_COMPLETIONS)
                ),
            ));
        }
    }
    if spec.parallelism.is_some_and(|p| p > MAX_PARALLELISM) {
        let message = if indexed {
            format!("{} when completionMode is Indexed", le(MAX_PARALLELISM))
        } else {
            le(MAX_PARALLELISM)
        };
        errors.push((format!("{path}.parallelism"), message));
    }
    if let Some(max_failed) = spec.max_failed_indexes {
        if max_failed > MAX_FAILED_INDEXES {
            errors.push((format!("{path}.maxFailedIndexes"), le(MAX_FAILED_INDEXES)));
        } else if spec.completions.is_some_and(|c| max_failed > c) {
            errors.push((
                format!("{path}.maxFailedIndexes"),
                "must be less than or equal to completions".into(),
            ));
        }
    }
    if let Some(policy) = &spec.success_policy {
        let completions = spec.completions.unwrap_or(0).max(0);
        for (i, rule) in policy.rules.iter().enumerate() {
            let rpath = format!("{path}.successPolicy.rules[{i}]");
            if let Some(indexes) = &rule.succeeded_indexes {
                if let Err(message) = check_index_intervals(indexes, completions) {
                    errors.push((format!("{rpath}.succeededIndexes"), message));
                }
            }
            if rule.succeeded_count.is_some_and(|n| n > completions) {
                errors.push((
                    format!("{rpath}.succeededCount"),
                    "must be less than or equal to completions".into(),
                ));
            }
        }
    }
    errors
}

/// Checks `"0,2-4"` without expanding it: every index below `completions`, ranges ascending.
fn check_index_intervals(text: &str, completions: i32) -> Result<(), String> {
    let limit = u32::try_from(completions).unwrap_or(0);
    for part in text.split(',').map(str::trim) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let parse = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| format!("\"{part}\" is not an index or a range of indexes like 2-4"))
        };
        let (first, last) = (parse(first)?, parse(last)?);
        if first > last {
            return Err(format!("range \"{part}\" must be ascending"));
        }
        if last >= limit {
            return Err(format!(
                "index {last} must be less than completions ({completions})"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::types::{SuccessPolicy, SuccessPolicyRule};
    use super::*;

    fn indexed(completions: i32) -> JobSpec {
        JobSpec {
            completion_mode: Some(CompletionMode::Indexed),
            completions: Some(completions),
            ..JobSpec::default()
        }
    }

    fn fields(spec: &JobSpec) -> Vec<String> {
        job_spec_bounds("spec", spec)
            .into_iter()
            .map(|(f, m)| format!("{f}: {m}"))
            .collect()
    }

    #[test]
    fn indexed_completions_and_parallelism_are_bounded_at_100000() {
        assert!(fields(&indexed(100_000)).is_empty());
        assert_eq!(
            fields(&indexed(100_001)),
            ["spec.completions: must be less than or equal to 100000 when completionMode is Indexed"]
        );
        let spec = JobSpec {
            parallelism: Some(100_001),
            ..indexed(10)
        };
        assert_eq!(
            fields(&spec),
            ["spec.parallelism: must be less than or equal to 100000 when completionMode is Indexed"]
        );
    }

    #[test]
    fn any_jobs_parallelism_is_bounded_but_non_indexed_completions_are_not() {
        let spec = JobSpec {
            completions: Some(i32::MAX),
            parallelism: Some(i32::MAX),
            ..JobSpec::default()
        };
        assert_eq!(
            fields(&spec),
            ["spec.parallelism: must be less than or equal to 100000"]
        );
    }

    #[test]
    fn backoff_limit_per_index_bounds_completions_and_max_failed_indexes() {
        let spec = JobSpec {
            completions: Some(200_000),
            backoff_limit_per_index: Some(1),
            ..JobSpec::default()
        };
        assert_eq!(
            fields(&spec),
            ["spec.completions: must be less than or equal to 100000 when backoffLimitPerIndex is set"]
        );
        let spec = JobSpec {
            backoff_limit_per_index: Some(1),
            max_failed_indexes: Some(11),
            ..indexed(10)
        };
        assert_eq!(
            fields(&spec),
            ["spec.maxFailedIndexes: must be less than or equal to completions"]
        );
        let spec = JobSpec {
            backoff_limit_per_index: Some(1),
            max_failed_indexes: Some(100_001),
            ..indexed(100_000)
        };
        assert_eq!(
            fields(&spec),
            ["spec.maxFailedIndexes: must be less than or equal to 100000"]
        );
    }

    #[test]
    fn succeeded_indexes_must_lie_below_completions_and_are_not_expanded() {
        let rule = |indexes: &str, count: Option<i32>| JobSpec {
            success_policy: Some(SuccessPolicy {
                rules: vec![SuccessPolicyRule {
                    succeeded_indexes: Some(indexes.into()),
                    succeeded_count: count,
                }],
            }),
            ..indexed(10)
        };
        assert!(fields(&rule("0,2-4,9", Some(3))).is_empty());
        for (indexes, count, want) in [
            ("0-4294967295", None, "spec.successPolicy.rules[0].succeededIndexes: index 4294967295 must be less than completions (10)"),
            ("10", None, "spec.successPolicy.rules[0].succeededIndexes: index 10 must be less than completions (10)"),
            ("4-2", None, "spec.successPolicy.rules[0].succeededIndexes: range \"4-2\" must be ascending"),
            ("x", None, "spec.successPolicy.rules[0].succeededIndexes: \"x\" is not an index or a range of indexes like 2-4"),
            ("1", Some(11), "spec.successPolicy.rules[0].succeededCount: must be less than or equal to completions"),
        ] {
            assert_eq!(fields(&rule(indexes, count)), [want], "{indexes}");
        }
    }
}
