//! Job dependencies (`drover.io/depends-on`): a Job starts once every Job it names in its
//! namespace has completed, and fails when one of them failed.

use super::Dependencies;

/// Annotation listing a Job's dependencies, comma-separated.
pub const DEPENDS_ON: &str = "drover.io/depends-on";

/// The state of the dependencies `list` names; `finished(name)` says whether that Job has
/// finished and how (None: not finished, or not created yet).
pub fn resolve(list: Option<&str>, finished: impl Fn(&str) -> Option<bool>) -> Dependencies {
    let Some(list) = list else {
        return Dependencies::Ready;
    };
    let mut waiting = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match finished(name) {
            Some(true) => {}
            Some(false) => return Dependencies::Failed(name.to_string()),
            None => waiting.push(name.to_string()),
        }
    }
    if waiting.is_empty() {
        Dependencies::Ready
    } else {
        Dependencies::Waiting(waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(name: &str) -> Option<bool> {
        match name {
            "built" => Some(true),
            "broken" => Some(false),
            _ => None,
        }
    }

    #[test]
    fn no_annotation_or_every_dependency_complete_is_ready() {
        assert_eq!(resolve(None, states), Dependencies::Ready);
        assert_eq!(resolve(Some("built"), states), Dependencies::Ready);
        assert_eq!(resolve(Some(" , built ,"), states), Dependencies::Ready);
    }

    #[test]
    fn unfinished_and_not_yet_created_jobs_are_waited_for_in_order() {
        assert_eq!(
            resolve(Some("later, built, running"), states),
            Dependencies::Waiting(vec!["later".into(), "running".into()])
        );
    }

    #[test]
    fn a_failed_dependency_fails_the_job_even_while_others_run() {
        assert_eq!(
            resolve(Some("running,broken,built"), states),
            Dependencies::Failed("broken".into())
        );
    }
}
