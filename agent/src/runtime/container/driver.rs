//! One run of an engine container, from image to exit: pull as the pull policy says,
//! create, start, then wait for the end and read the exit code and OOM flag. Each step's
//! failure becomes the event the supervisor needs (`ErrImagePull`, `ErrImageNeverPull`,
//! `ContainerCannotRun`).

use std::sync::Arc;
use std::time::Duration;

use drover_proto::msg::WirePullPolicy;

use super::engine::{ContainerEngine, CreatePlan, EngineError};
use crate::runtime::process::RunKey;

/// What happened to a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerEvent {
    /// The container is running.
    Started {
        /// Which run.
        key: RunKey,
        /// Engine id.
        id: String,
    },
    /// The image is missing and cannot (or may not) be pulled.
    ImageFailed {
        /// Which run.
        key: RunKey,
        /// `ErrImagePull` or `ErrImageNeverPull`.
        reason: &'static str,
        /// The engine's message.
        message: String,
    },
    /// The container could not be created or started.
    CannotRun {
        /// Which run.
        key: RunKey,
        /// The created container, if it got that far.
        id: Option<String>,
        /// The engine's message.
        message: String,
    },
    /// The container stopped.
    Exited {
        /// Which run.
        key: RunKey,
        /// 128+N when killed by signal N.
        exit_code: i32,
        /// Killed by the memory limit.
        oom_killed: bool,
    },
}

/// How long a failed wait on a container waits before asking again.
const WAIT_RETRY: Duration = Duration::from_secs(1);

/// Creates and starts the run's container.
pub async fn launch(
    engine: &dyn ContainerEngine,
    plan: &CreatePlan,
    policy: WirePullPolicy,
    key: RunKey,
) -> ContainerEvent {
    let pull_failed = |message: String| ContainerEvent::ImageFailed {
        key: key.clone(),
        reason: "ErrImagePull",
        message: format!("failed to pull image \"{}\": {message}", plan.image),
    };
    let cannot_run = |id: Option<String>, e: EngineError| ContainerEvent::CannotRun {
        key: key.clone(),
        id,
        message: e.to_string(),
    };
    if policy == WirePullPolicy::Always {
        if let Err(e) = engine.pull(&plan.image).await {
            return pull_failed(e.to_string());
        }
    }
    let mut created = engine.create(plan).await;
    if created == Err(EngineError::NameInUse) {
        // Left by a start the agent did not see through (it restarted meanwhile).
        let _ = engine.remove(&plan.name).await;
        created = engine.create(plan).await;
    }
    if created == Err(EngineError::NoSuchImage) {
        if policy == WirePullPolicy::Never {
            return ContainerEvent::ImageFailed {
                key,
                reason: "ErrImageNeverPull",
                message: format!(
                    "container image \"{}\" is not present with pull policy of Never",
                    plan.image
                ),
            };
        }
        if let Err(e) = engine.pull(&plan.image).await {
            return pull_failed(e.to_string());
        }
        created = engine.create(plan).await;
    }
    let id = match created {
        Ok(id) => id,
        Err(e) => return cannot_run(None, e),
    };
    if plan.run_as_non_root {
        let user = engine.user_of(&id).await;
        if let Some(message) = runs_as_root(user.map_err(|e| e.to_string())) {
            let _ = engine.remove(&id).await;
            return ContainerEvent::ImageFailed {
                key,
                reason: "CreateContainerConfigError",
                message,
            };
        }
    }
    match engine.start(&id).await {
        Ok(()) => ContainerEvent::Started { key, id },
        Err(e) => cannot_run(Some(id), e),
    }
}

/// Why a `runAsNonRoot` container may not start as `user` (`uid[:gid]` or a name; empty
/// is root), in the kubelet's words; `None` when it may.
pub fn runs_as_root(user: Result<String, String>) -> Option<String> {
    let user = match user {
        Ok(user) => user,
        Err(e) => {
            return Some(format!(
                "container has runAsNonRoot and its user cannot be read: {e}"
            ))
        }
    };
    let name = user.split(':').next().unwrap_or("");
    match name.parse::<u32>() {
        Ok(0) => Some("container has runAsNonRoot and image will run as root".into()),
        Ok(_) => None,
        Err(_) if name.is_empty() || name == "root" => {
            Some("container has runAsNonRoot and image will run as root".into())
        }
        Err(_) => Some(format!(
            "container has runAsNonRoot and image has non-numeric user ({name}), cannot verify user is non-root"
        )),
    }
}

/// How often, and how far apart, a container killed by SIGKILL is inspected again for the
/// engine's OOM flag.
const OOM_FLAG_CHECKS: usize = 5;
const OOM_FLAG_DELAY: Duration = Duration::from_millis(100);

/// Waits until the container stops and reports how it ended.
pub async fn watch(engine: &dyn ContainerEngine, id: &str, key: RunKey) -> ContainerEvent {
    loop {
        match engine.wait(id).await {
            Ok(()) | Err(EngineError::NoSuchContainer) => break,
            Err(EngineError::Timeout) => continue,
            Err(e) => {
                tracing::debug!(id, error = %e, "waiting on a container failed; asking again");
                match engine.inspect(id).await {
                    Ok(state) if !state.running => break,
                    Err(EngineError::NoSuchContainer) => break,
                    _ => tokio::time::sleep(WAIT_RETRY).await,
                }
            }
        }
    }
    match engine.inspect(id).await {
        Ok(mut state) => {
            // Docker learns of an OOM kill from an event of its own, which can land just
            // after the exit is visible: a SIGKILL exit is asked about again, briefly.
            for _ in 0..OOM_FLAG_CHECKS {
                if state.exit_code != 137 || state.oom_killed {
                    break;
                }
                tokio::time::sleep(OOM_FLAG_DELAY).await;
                match engine.inspect(id).await {
                    Ok(again) => state = again,
                    Err(_) => break,
                }
            }
            ContainerEvent::Exited {
                key,
                exit_code: state.exit_code,
                oom_killed: state.oom_killed,
            }
        }
        Err(e) => {
            tracing::warn!(id, error = %e, "a container vanished; counting it as killed");
            ContainerEvent::Exited {
                key,
                exit_code: 137,
                oom_killed: false,
            }
        }
    }
}

/// Runs `launch` and, once started, `watch`, sending each event.
pub async fn run(
    engine: Arc<dyn ContainerEngine>,
    plan: CreatePlan,
    policy: WirePullPolicy,
    key: RunKey,
    events: tokio::sync::mpsc::UnboundedSender<ContainerEvent>,
) {
    let launched = launch(engine.as_ref(), &plan, policy, key.clone()).await;
    let started = match &launched {
        ContainerEvent::Started { id, .. } => Some(id.clone()),
        _ => None,
    };
    if events.send(launched).is_err() {
        return;
    }
    if let Some(id) = started {
        let _ = events.send(watch(engine.as_ref(), &id, key).await);
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::FakeEngine;
    use super::*;

    fn key() -> RunKey {
        RunKey {
            uid: "u".into(),
            index: 0,
            run: 1,
        }
    }

    fn plan() -> CreatePlan {
        CreatePlan {
            name: "drover_c_p_default_u_1".into(),
            image: "img:1".into(),
            ..CreatePlan::default()
        }
    }

    #[tokio::test]
    async fn present_image_is_not_pulled_unless_always() {
        for (policy, calls) in [
            (WirePullPolicy::IfNotPresent, vec!["create", "start"]),
            (WirePullPolicy::Never, vec!["create", "start"]),
            (WirePullPolicy::Always, vec!["pull", "create", "start"]),
        ] {
            let engine = FakeEngine::with_images(&["img:1"]);
            engine.allow_pull("img:1");
            let event = launch(&engine, &plan(), policy, key()).await;
            assert!(matches!(event, ContainerEvent::Started { .. }), "{event:?}");
            assert_eq!(engine.call_names(), calls, "{policy:?}");
        }
    }

    #[tokio::test]
    async fn missing_image_is_pulled_with_if_not_present() {
        let engine = FakeEngine::with_images(&[]);
        engine.allow_pull("img:1");
        let event = launch(&engine, &plan(), WirePullPolicy::IfNotPresent, key()).await;
        assert!(matches!(event, ContainerEvent::Started { .. }), "{event:?}");
        assert_eq!(engine.call_names(), ["create", "pull", "create", "start"]);
    }

    #[tokio::test]
    async fn missing_image_with_never_is_err_image_never_pull() {
        let engine = FakeEngine::with_images(&[]);
        let event = launch(&engine, &plan(), WirePullPolicy::Never, key()).await;
        match event {
            ContainerEvent::ImageFailed {
                reason, message, ..
            } => {
                assert_eq!(reason, "ErrImageNeverPull");
                assert!(message.contains("img:1"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(engine.call_names(), ["create"]);
    }

    #[tokio::test]
    async fn pull_failure_is_err_image_pull_with_the_engine_message() {
        for policy in [WirePullPolicy::Always, WirePullPolicy::IfNotPresent] {
            let engine = FakeEngine::with_images(&[]);
            let event = launch(&engine, &plan(), policy, key()).await;
            match event {
                ContainerEvent::ImageFailed {
                    reason, message, ..
                } => {
                    assert_eq!(reason, "ErrImagePull");
                    assert!(message.contains("pull access denied"), "{message}");
                }
                other => panic!("{policy:?}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_leftover_container_with_the_same_name_is_replaced() {
        let engine = FakeEngine::with_images(&["img:1"]);
        let first = launch(&engine, &plan(), WirePullPolicy::Never, key()).await;
        let second = launch(&engine, &plan(), WirePullPolicy::Never, key()).await;
        assert!(
            matches!(second, ContainerEvent::Started { .. }),
            "{second:?}"
        );
        assert_ne!(first, second);
        assert_eq!(engine.container_count(), 1);
    }

    #[tokio::test]
    async fn start_failure_cannot_run_and_keeps_the_container_id() {
        let engine = FakeEngine::with_images(&["img:1"]);
        engine.fail_starts("exec: \"nope\": executable file not found");
        match launch(&engine, &plan(), WirePullPolicy::Never, key()).await {
            ContainerEvent::CannotRun { id, message, .. } => {
                assert!(id.is_some());
                assert!(message.contains("executable file not found"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn watch_reports_exit_code_and_oom() {
        let engine = FakeEngine::with_images(&["img:1"]);
        let ContainerEvent::Started { id, .. } =
            launch(&engine, &plan(), WirePullPolicy::Never, key()).await
        else {
            panic!("not started");
        };
        let watching = watch(&engine, &id, key());
        engine.exit(&id, 137, true);
        assert_eq!(
            watching.await,
            ContainerEvent::Exited {
                key: key(),
                exit_code: 137,
                oom_killed: true
            }
        );
    }

    #[tokio::test]
    async fn watch_of_a_vanished_container_reports_it_killed() {
        let engine = FakeEngine::with_images(&[]);
        assert_eq!(
            watch(&engine, "gone", key()).await,
            ContainerEvent::Exited {
                key: key(),
                exit_code: 137,
                oom_killed: false
            }
        );
    }
}

#[cfg(test)]
mod non_root_tests {
    use super::runs_as_root;

    #[test]
    fn run_as_non_root_is_checked_against_the_user_as_the_kubelet_does() {
        for root in ["", "0", "0:0", "root", "root:wheel"] {
            let refused = runs_as_root(Ok(root.into())).unwrap();
            assert!(refused.contains("will run as root"), "{root}: {refused}");
        }
        for fine in ["1000", "65534:65534"] {
            assert_eq!(runs_as_root(Ok(fine.into())), None, "{fine}");
        }
        let named = runs_as_root(Ok("nobody".into())).unwrap();
        assert!(named.contains("non-numeric user (nobody)"), "{named}");
        assert!(runs_as_root(Err("gone".into())).is_some());
    }
}
