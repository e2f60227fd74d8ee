//! Progress for multi-phase commands, on stderr: one line per phase with its result, and a line
//! per item only when asked (`--verbose`). `--quiet` silences everything but warnings.
//! Library code reports here; it never prints directly.

use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

/// How much to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// Phase-by-phase progress on stderr.
pub struct Progress {
    verbosity: Verbosity,
    current: Mutex<Option<(String, Instant)>>,
}

impl Progress {
    pub fn new(verbosity: Verbosity) -> Self {
        Progress {
            verbosity,
            current: Mutex::new(None),
        }
    }

    fn out(&self, line: &str) {
        let stderr = std::io::stderr();
        let mut e = stderr.lock();
        let _ = writeln!(e, "{}", crate::redact::mask_url_credentials(line));
    }

    /// A phase starts ("Packaging code").
    pub fn phase(&self, name: &str) {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((prev, _)) = cur.take() {
            if self.verbosity != Verbosity::Quiet {
                self.out(&format!("{prev}: done"));
            }
        }
        *cur = Some((name.to_string(), Instant::now()));
        if self.verbosity == Verbosity::Verbose {
            self.out(&format!("{name}…"));
        }
    }

    /// The current phase ended with a summary ("12 files, 3.1 KiB").
    pub fn done(&self, summary: &str) {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((name, started)) = cur.take() {
            if self.verbosity != Verbosity::Quiet {
                let ms = started.elapsed().as_millis();
                self.out(&format!("{name}: {summary} ({ms} ms)"));
            }
        }
    }

    /// One item of the current phase (shown with --verbose).
    pub fn item(&self, what: &str, status: &str) {
        if self.verbosity == Verbosity::Verbose {
            self.out(&format!("  {what}: {status}"));
        }
    }

    /// Something the user should know, shown even with --quiet.
    pub fn warn(&self, msg: &str) {
        self.out(&format!("warning: {msg}"));
    }

    /// A note shown unless --quiet.
    pub fn note(&self, msg: &str) {
        if self.verbosity != Verbosity::Quiet {
            self.out(msg);
        }
    }
}
