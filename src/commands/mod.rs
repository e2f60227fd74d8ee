//! One file per subcommand.

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub mod build;
pub mod list;
pub mod run;
pub mod sandbox;

/// Run the parsed command line.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Sandbox(args) => sandbox::sandbox(args),
        Command::List(args) => list::list(args),
        Command::Build(args) => build::build(args),
    }
}
