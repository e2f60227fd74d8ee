//! `union warm status|stop`.

use std::fmt::Write as _;
use std::process::ExitCode;

use crate::cli::WarmCommand;

pub fn warm(cmd: WarmCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        WarmCommand::Status => {
            let servers = crate::warm::servers();
            let mut out = String::new();
            if servers.is_empty() {
                crate::process::note(&format!(
                    "No warm interpreters are running{}.",
                    if crate::warm::enabled() {
                        ""
                    } else {
                        " (and they are off here: UNION_WARM=0 or CI is set)"
                    }
                ));
                return Ok(ExitCode::SUCCESS);
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let _ = writeln!(out, "PID\tAGE\tFLYTEKIT\tDIRECTORY\tVENV");
            for s in servers {
                let age = now.saturating_sub(s.started);
                let _ = writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    s.pid,
                    if age >= 60 {
                        format!("{}m{:02}s", age / 60, age % 60)
                    } else {
                        format!("{age}s")
                    },
                    s.flytekit,
                    s.directory.display(),
                    s.venv.display()
                );
            }
            crate::process::write_data(&out)?;
            Ok(ExitCode::SUCCESS)
        }
        WarmCommand::Stop => {
            let n = crate::warm::stop_all();
            crate::process::note(&format!(
                "Stopped {n} warm interpreter{}.",
                if n == 1 { "" } else { "s" }
            ));
            Ok(ExitCode::SUCCESS)
        }
    }
}
