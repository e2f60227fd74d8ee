use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Commands that import the user's code can be served by a warm interpreter (opt-in).
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let python_command = matches!(
        argv.get(1).and_then(|a| a.to_str()),
        Some("run" | "list" | "package" | "register" | "build")
    );
    let wants_help = argv.iter().skip(1).any(|a| a == "--help" || a == "-h");
    if python_command && !wants_help {
        if let Some(code) = union_cli::warm::try_delegate(&argv) {
            return code;
        }
    }
    let cli = union_cli::cli::Cli::parse();
    match union_cli::commands::dispatch(cli) {
        Ok(code) => code,
        Err(err) => union_cli::diagnostics::report(&err),
    }
}
