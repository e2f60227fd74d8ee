//! One file per subcommand.

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub mod build;
pub mod common;
pub mod create;
pub mod get;
pub mod list;
pub mod literal_repr;
pub mod package;
pub mod register;
pub mod run;
pub mod run_inputs;
pub mod run_remote;
pub mod sandbox;
pub mod secret;
pub mod signals;
pub mod warm;

/// Run the parsed command line.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    // The sandbox shuts down gracefully on its own signal handling; the warm server has its own.
    if !matches!(
        cli.command,
        Command::Sandbox(_) | Command::WarmServer { .. }
    ) {
        crate::process::own_signals();
    }
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Sandbox(args) => sandbox::sandbox(args),
        Command::List(args) => list::list(args),
        Command::Get(cmd) => get::get(cmd),
        Command::Terminate(args) => get::terminate(args),
        Command::Approve(args) => signals::decide(args, true),
        Command::Reject(args) => signals::decide(args, false),
        Command::Signal(args) => signals::set(args),
        Command::Create(cmd) => create::create(cmd),
        Command::Delete(crate::cli::DeleteCommand::Secret(args)) => secret::delete(args),
        Command::Warm(cmd) => warm::warm(cmd),
        // The binary starts servers itself (src/main.rs); one asked to run inside a served
        // command (only a hand-made request could) is refused.
        Command::WarmServer { .. } => Err(crate::diagnostics::CliError::usage(
            "`__warm-server` is started by union itself, not run as a command",
        )
        .into()),
        Command::Package(args) => package::package(args),
        Command::Register(args) => register::register(args),
        Command::Build(args) => build::build(args),
    }
}
