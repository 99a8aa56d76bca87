//! Pods whose containers name an image run in the node's container engine (Docker, or
//! Podman through its Docker-compatible socket). The agent, not the engine, applies the
//! restart policy; containers carry labels naming node, pod and run, so a restarted agent
//! finds and re-adopts them.

pub mod driver;
pub mod engine;
pub mod plan;
pub mod volumes;

#[cfg(feature = "containers")]
pub mod docker;
#[cfg(test)]
pub mod fake;

pub use driver::ContainerEvent;
pub use engine::{ContainerEngine, EngineError};

/// The node's engine, or why it has none.
#[derive(Clone)]
pub enum EngineSlot {
    /// Still being looked for (the agent does not wait for it to register and run process
    /// pods; engine containers start once it is known).
    Discovering,
    /// Connected.
    Available(std::sync::Arc<dyn ContainerEngine>),
    /// Not available, and why.
    Missing(String),
}

impl std::fmt::Debug for EngineSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineSlot::Discovering => f.write_str("Discovering"),
            EngineSlot::Available(_) => f.write_str("Available"),
            EngineSlot::Missing(why) => write!(f, "Missing({why})"),
        }
    }
}

/// Finds the node's engine: the configured socket, else the usual places. Returns the
/// slot and the runtime version string (empty without an engine).
pub async fn discover(configured: Option<&std::path::Path>) -> (EngineSlot, String) {
    #[cfg(feature = "containers")]
    {
        match docker::connect(configured).await {
            Ok(connected) => {
                tracing::info!(socket = %connected.socket.display(), runtime = %connected.runtime, "container engine found");
                (EngineSlot::Available(connected.engine), connected.runtime)
            }
            Err(why) => {
                tracing::warn!(%why, "no container engine: pods with images cannot run here");
                (EngineSlot::Missing(why), String::new())
            }
        }
    }
    #[cfg(not(feature = "containers"))]
    {
        let _ = configured;
        (
            EngineSlot::Missing("this agent was built without the containers feature".into()),
            String::new(),
        )
    }
}
