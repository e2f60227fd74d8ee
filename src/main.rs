use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Commands that import the user's code can be served by a warm interpreter (src/warm.rs).
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let python_command = matches!(
        argv.get(1).and_then(|a| a.to_str()),
        Some("run" | "list" | "package" | "register" | "build")
    );
    let wants_help = argv.iter().skip(1).any(|a| a == "--help" || a == "-h");
    let mut start_server = None;
    if python_command && !wants_help {
        match union_cli::warm::try_delegate(&argv) {
            union_cli::warm::Delegation::Served(code) => return code,
            union_cli::warm::Delegation::Cold(path) => start_server = path,
        }
    }
    let cli = union_cli::cli::Cli::parse();
    if let union_cli::cli::Command::WarmServer { socket } = &cli.command {
        return union_cli::warm::serve(socket, execute);
    }
    let code = execute(cli);
    // After the command, not before: the server's own `import flytekit` must not slow this one.
    if let Some(path) = start_server {
        union_cli::warm::start_server(&path);
    }
    code
}

/// Run a parsed command and report its error: what every command line comes to, here or in a
/// warm server's child.
fn execute(cli: union_cli::cli::Cli) -> ExitCode {
    match union_cli::commands::dispatch(cli) {
        Ok(code) => code,
        Err(err) => union_cli::report::report(&err),
    }
}
