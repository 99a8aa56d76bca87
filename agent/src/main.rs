//! `drover-agent`: the Drover agent alone, for devices.

use clap::{CommandFactory, FromArgMatches, Parser};
use drover_agent::config_file::{self, Parsed};
use drover_agent::AgentConfig;

#[derive(Parser)]
#[command(
    name = "drover-agent",
    version,
    about = "Drover node agent: joins the fleet over MQTT and runs this node's pods",
    after_help = "Precedence: flags > DROVER_* environment > configuration file > defaults."
)]
struct Cli {
    #[command(flatten)]
    agent: AgentConfig,
}

fn main() -> std::process::ExitCode {
    // A process pod's keeper is this binary, started before anything else is set up.
    if let Some(code) = drover_agent::runtime::keeper::main_if_keeper() {
        return code;
    }
    let matches = match config_file::parse(Cli::command(), std::env::args_os().collect(), &[]) {
        Ok(Parsed::Run(matches)) => matches,
        Ok(Parsed::Print(text)) => {
            print!("{text}");
            return std::process::ExitCode::SUCCESS;
        }
        Err(e) => e.exit(),
    };
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    cli.agent.notify_service = true;
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
            if e.downcast_ref::<drover_agent::NameHeld>().is_some() {
                return std::process::ExitCode::from(drover_agent::EXIT_NAME_HELD);
            }
            std::process::ExitCode::FAILURE
        }
    }
}
