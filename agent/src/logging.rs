//! Log setup shared by the binaries: `DROVER_LOG=error|warn|info|debug|trace` (default info),
//! to stderr, without pulling in a regex engine. The embedded broker's per-connection chatter
//! is held at warn.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber.
pub fn init() {
    let level = std::env::var("DROVER_LOG")
        .ok()
        .and_then(|v| v.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let filter = Targets::new()
        .with_default(level)
        .with_target("drover::broker", level.min(LevelFilter::WARN));
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false),
        )
        .with(filter)
        .try_init();
}
