use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = union_cli::cli::Cli::parse();
    match union_cli::commands::dispatch(cli) {
        Ok(code) => code,
        Err(err) => union_cli::diagnostics::report(&err),
    }
}
