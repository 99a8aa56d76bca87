//! `drover-agent`: the Drover agent alone, for devices.

use clap::Parser;
use drover_agent::AgentConfig;

#[derive(Parser)]
#[command(
    name = "drover-agent",
    version,
    about = "Drover node agent: joins the fleet over MQTT and runs this node's pods"
)]
struct Cli {
    #[command(flatten)]
    agent: AgentConfig,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    drover_agent::logging::init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(drover_agent::run(
        cli.agent,
        drover_agent::shutdown_signal(),
    )) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
