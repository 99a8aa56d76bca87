//! An in-memory engine for unit tests: records calls, holds images and containers, and
//! lets a test end a container.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use tokio::sync::Notify;

use super::engine::{
    ContainerEngine, ContainerState, CreatePlan, EngineError, EngineFuture, ExecOutput,
    ListedContainer, LogStream,
};
use super::plan::{CONTAINER_LABEL, NODE_LABEL, POD_UID_LABEL, RUN_LABEL};

#[derive(Default)]
struct State {
    images: HashSet<String>,
    pullable: HashSet<String>,
    start_error: Option<String>,
    containers: BTreeMap<String, (CreatePlan, ContainerState)>,
    next_id: u64,
    calls: Vec<String>,
}

/// The fake engine.
#[derive(Default)]
pub struct FakeEngine {
    state: Mutex<State>,
    changed: Notify,
}

impl FakeEngine {
    /// An engine holding these images.
    pub fn with_images(images: &[&str]) -> FakeEngine {
        let engine = FakeEngine::default();
        engine.with(|s| s.images = images.iter().map(|i| i.to_string()).collect());
        engine
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut state)
    }

    /// Pulling `image` succeeds.
    pub fn allow_pull(&self, image: &str) {
        self.with(|s| s.pullable.insert(image.to_string()));
    }

    /// Every start fails with `message`.
    pub fn fail_starts(&self, message: &str) {
        self.with(|s| s.start_error = Some(message.to_string()));
    }

    /// The names of the calls made, in order.
    pub fn call_names(&self) -> Vec<String> {
        self.with(|s| s.calls.clone())
    }

    /// How many containers exist.
    pub fn container_count(&self) -> usize {
        self.with(|s| s.containers.len())
    }

    /// Ends a running container.
    pub fn exit(&self, id: &str, exit_code: i32, oom_killed: bool) {
        self.with(|s| {
            if let Some((_, state)) = s.containers.get_mut(id) {
                *state = ContainerState {
                    running: false,
                    exit_code,
                    oom_killed,
                };
            }
        });
        self.changed.notify_waiters();
    }

    fn call(&self, name: &str) {
        self.with(|s| s.calls.push(name.to_string()));
    }
}

impl ContainerEngine for FakeEngine {
    fn pull<'a>(&'a self, image: &'a str) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            self.call("pull");
            self.with(|s| {
                if s.pullable.contains(image) {
                    s.images.insert(image.to_string());
                    Ok(())
                } else {
                    Err(EngineError::Other(format!(
                        "pull access denied for {image}, repository does not exist"
                    )))
                }
            })
        })
    }

    fn create<'a>(&'a self, plan: &'a CreatePlan) -> EngineFuture<'a, String> {
        Box::pin(async move {
            self.call("create");
            self.with(|s| {
                if !s.images.contains(&plan.image) {
                    return Err(EngineError::NoSuchImage);
                }
                if s.containers.values().any(|(p, _)| p.name == plan.name) {
                    return Err(EngineError::NameInUse);
                }
                s.next_id += 1;
                let id = format!("c{}", s.next_id);
                let state = ContainerState {
                    running: false,
                    exit_code: 0,
                    oom_killed: false,
                };
                s.containers.insert(id.clone(), (plan.clone(), state));
                Ok(id)
            })
        })
    }

    fn start<'a>(&'a self, id: &'a str) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            self.call("start");
            self.with(|s| {
                if let Some(message) = &s.start_error {
                    return Err(EngineError::Other(message.clone()));
                }
                match s.containers.get_mut(id) {
                    Some((_, state)) => {
                        state.running = true;
                        Ok(())
                    }
                    None => Err(EngineError::NoSuchContainer),
                }
            })
        })
    }

    fn wait<'a>(&'a self, id: &'a str) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            loop {
                let changed = self.changed.notified();
                let running = self.with(|s| s.containers.get(id).map(|(_, st)| st.running));
                match running {
                    None => return Err(EngineError::NoSuchContainer),
                    Some(false) => return Ok(()),
                    Some(true) => changed.await,
                }
            }
        })
    }

    fn inspect<'a>(&'a self, id: &'a str) -> EngineFuture<'a, ContainerState> {
        Box::pin(async move {
            self.with(|s| {
                s.containers
                    .get(id)
                    .map(|(_, st)| st.clone())
                    .ok_or(EngineError::NoSuchContainer)
            })
        })
    }

    fn stop<'a>(&'a self, id: &'a str, _grace_seconds: u32) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            self.call("stop");
            self.exit(id, 143, false);
            Ok(())
        })
    }

    fn kill<'a>(&'a self, id: &'a str) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            self.call("kill");
            self.exit(id, 137, false);
            Ok(())
        })
    }

    fn remove<'a>(&'a self, id: &'a str) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            self.call("remove");
            self.with(|s| {
                let found = s
                    .containers
                    .iter()
                    .find(|(cid, (p, _))| cid.as_str() == id || p.name == id)
                    .map(|(cid, _)| cid.clone());
                match found {
                    Some(cid) => {
                        s.containers.remove(&cid);
                        Ok(())
                    }
                    None => Err(EngineError::NoSuchContainer),
                }
            })
        })
    }

    fn list<'a>(&'a self, node: &'a str) -> EngineFuture<'a, Vec<ListedContainer>> {
        Box::pin(async move {
            self.with(|s| {
                Ok(s.containers
                    .iter()
                    .filter(|(_, (p, _))| {
                        p.labels.get(NODE_LABEL).map(String::as_str) == Some(node)
                    })
                    .map(|(id, (p, st))| ListedContainer {
                        id: id.clone(),
                        pod_uid: p.labels.get(POD_UID_LABEL).cloned().unwrap_or_default(),
                        container: p.labels.get(CONTAINER_LABEL).cloned().unwrap_or_default(),
                        run: p
                            .labels
                            .get(RUN_LABEL)
                            .and_then(|r| r.parse().ok())
                            .unwrap_or(0),
                        running: st.running,
                    })
                    .collect())
            })
        })
    }

    fn exec<'a>(&'a self, id: &'a str, command: &'a [String]) -> EngineFuture<'a, ExecOutput> {
        Box::pin(async move {
            self.call("exec");
            let running = self.with(|s| s.containers.get(id).map(|(_, st)| st.running));
            match running {
                Some(true) => Ok(ExecOutput {
                    // `true` succeeds; anything else fails, saying what it was.
                    exit_code: i64::from(command.first().map(String::as_str) != Some("true")),
                    output: command.join(" ").into_bytes(),
                }),
                Some(false) => Err(EngineError::Other("container is not running".into())),
                None => Err(EngineError::NoSuchContainer),
            }
        })
    }

    fn address<'a>(&'a self, _id: &'a str) -> EngineFuture<'a, Option<std::net::IpAddr>> {
        Box::pin(async move { Ok(None) })
    }

    fn user_of<'a>(&'a self, id: &'a str) -> EngineFuture<'a, String> {
        Box::pin(async move {
            self.with(|s| {
                s.containers
                    .get(id)
                    .map(|(plan, _)| plan.user.clone().unwrap_or_default())
                    .ok_or(EngineError::NoSuchContainer)
            })
        })
    }

    fn logs<'a>(&'a self, _id: &'a str, _tail: Option<u32>, _follow: bool) -> LogStream<'a> {
        Box::pin(futures_util::stream::empty())
    }
}
