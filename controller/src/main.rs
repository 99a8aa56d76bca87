//! `drover`: the controller (`server`), the agent (`agent`) and the kubectl-like CLI, in one
//! binary.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use drover::cli::{
    self, BrokerConfigCommand, Client, CreateCommand, DeleteArgs, DescribeArgs, GetArgs,
    KubeconfigCommand, LabelArgs, LogsArgs, RolloutCommand, TaintArgs, Target, TokenCommand,
    WaitArgs,
};
use drover::server::ServerArgs;
use drover_agent::AgentConfig;

#[derive(Parser)]
#[command(
    name = "drover",
    version,
    about = "Drover: a lightweight, MQTT-native fleet manager for edge devices"
)]
struct Cli {
    /// URL of the drover server's API, instead of the kubeconfig's (e.g.
    /// https://127.0.0.1:6443)
    #[arg(long, global = true, env = "DROVER_SERVER", value_name = "URL")]
    server: Option<String>,

    /// kubeconfig file to use (default: the first file in KUBECONFIG, else ~/.kube/config,
    /// else /var/lib/drover/server/kubeconfig.yaml)
    #[arg(long, global = true, value_name = "FILE")]
    kubeconfig: Option<std::path::PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller, with an embedded MQTT broker and a local agent by default
    Server(ServerArgs),
    /// Run an agent that joins this node to the fleet
    Agent(AgentConfig),
    /// Create or update objects from manifest files (-f FILE|DIR|-)
    Apply {
        /// Manifest file, directory, or - for standard input
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<String>,
    },
    /// List objects, or show one
    Get(GetArgs),
    /// Show an object in detail, with its events
    Describe(DescribeArgs),
    /// Delete objects by name or by manifest file
    Delete(DeleteArgs),
    /// Print (or follow) a pod container's log, fetched from its node
    Logs(LogsArgs),
    /// Set (key=value) or remove (key-) node labels
    Label(LabelArgs),
    /// Create a Job from a CronJob: create job NAME --from=cronjob/X
    #[command(subcommand)]
    Create(CreateCommand),
    /// Wait for a condition: wait --for=condition=Complete job/NAME --timeout=60s
    Wait(WaitArgs),
    /// Add (key=value:Effect) or remove (key-, key:Effect-) node taints
    Taint(TaintArgs),
    /// Manage DaemonSet rollouts: status, restart, history, undo
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// Join tokens that let devices enroll: create, list, delete
    #[command(subcommand)]
    Token(TokenCommand),
    /// API credentials (kubeconfig files) for people and tools: create NAME --role
    /// view|admin, list, delete
    #[command(subcommand)]
    Kubeconfig(KubeconfigCommand),
    /// Write the configuration of an external broker that confines every node to its own
    /// topics: broker-config mosquitto --out DIR
    #[command(subcommand)]
    BrokerConfig(BrokerConfigCommand),
    /// Print the client's version and the server's (its /version gitVersion)
    Version {
        /// Only the client's version: do not contact the server
        #[arg(long)]
        client: bool,
    },
    /// Print a shell completion script: completion bash|zsh|fish
    ///
    /// bash: `source <(drover completion bash)` (e.g. in ~/.bashrc); zsh: write it to a file
    /// named _drover in a directory on $fpath; fish: `drover completion fish >
    /// ~/.config/fish/completions/drover.fish`.
    Completion {
        /// Shell to complete in
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Mark a node unschedulable
    Cordon {
        /// Node name
        name: String,
    },
    /// Mark a node schedulable again
    Uncordon {
        /// Node name
        name: String,
    },
}

fn run_daemon<F: std::future::Future<Output = anyhow::Result<()>>>(
    multi_thread: bool,
    make: impl FnOnce() -> F,
) -> anyhow::Result<()> {
    let runtime = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    };
    runtime.block_on(make())
}

fn main() -> ExitCode {
    // A process pod's keeper is this binary, started before anything else is set up.
    if let Some(code) = drover_agent::runtime::keeper::main_if_keeper() {
        return code;
    }
    use drover_agent::config_file::{parse, Parsed};
    let matches = match parse(
        Cli::command(),
        std::env::args_os().collect(),
        &["agent", "server"],
    ) {
        Ok(Parsed::Run(matches)) => matches,
        Ok(Parsed::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => e.exit(),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", cli::error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// Writes the completion script for `shell`. It is generated into memory first: the
/// generator panics on a failed write, and `drover completion bash | head` is no error.
fn completion(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "drover", &mut script);
    cli::emit(&String::from_utf8_lossy(&script))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let client = || {
        Target::resolve(cli.kubeconfig.as_deref(), cli.server.as_deref()).and_then(Client::connect)
    };
    match cli.command {
        Command::Server(args) => {
            drover_agent::logging::init();
            run_daemon(true, || drover::server::run(args))
        }
        Command::Agent(mut config) => {
            config.notify_service = true;
            drover_agent::logging::init();
            run_daemon(false, || {
                drover_agent::run(config, drover_agent::shutdown_signal())
            })
        }
        Command::Apply { files } => cli::apply(&client()?, &files),
        Command::Get(args) => cli::get(&client()?, args),
        Command::Describe(args) => cli::describe(&client()?, args),
        Command::Delete(args) => cli::delete(&client()?, args),
        Command::Label(args) => cli::label(&client()?, args),
        Command::Logs(args) => cli::logs(&client()?, args),
        Command::Taint(args) => cli::taint(&client()?, args),
        Command::Create(command) => cli::create(&client()?, command),
        Command::Wait(args) => cli::wait(&client()?, args),
        Command::Rollout(command) => cli::rollout(&client()?, command),
        Command::Token(command) => cli::token(&client()?, command),
        Command::Kubeconfig(command) => cli::kubeconfig(&client()?, command),
        Command::BrokerConfig(command) => cli::broker_config(command),
        Command::Version { client: only } => cli::version(client, only),
        Command::Completion { shell } => completion(shell),
        Command::Cordon { name } => cli::cordon(&client()?, &name, true),
        Command::Uncordon { name } => cli::cordon(&client()?, &name, false),
    }
}
