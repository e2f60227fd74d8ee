//! What users are told when something goes wrong, and what they are never shown.
//!
//! - [`Hint`]: an error that knows more than its message (how to fix it, a block to show such as
//!   a traceback or a failing build step's output, its exit code). Library errors implement it on
//!   their own types; the binary walks an error's chain of causes and renders it once, as
//!   `error:` / each cause / the detail / `hint:` lines.
//! - Exit codes: [`EXIT_FAILURE`], [`EXIT_USAGE`], [`EXIT_INTERRUPTED`].
//! - [`redact`]: credentials written into URLs, masked in everything printed.
//!
//! Owns: the error-reporting vocabulary shared by every crate. Depends on nothing of ours.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod redact;

/// Exit code for errors in the user's input, code or environment.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for command-line usage errors (an unknown flag, an input of the wrong type).
pub const EXIT_USAGE: u8 = 2;
/// Exit code after Ctrl-C (128 + SIGINT), as a shell reports it.
pub const EXIT_INTERRUPTED: u8 = 130;

/// What an error can tell the user beyond its message. Everything has a default: implement only
/// what the error knows.
pub trait Hint: std::error::Error {
    /// How to fix it, one sentence each ("start it with `union sandbox start`").
    fn hints(&self) -> Vec<String> {
        Vec::new()
    }
    /// A preformatted block shown after the messages: the user's traceback, a failing step's
    /// last lines, a listing of what exists.
    fn detail(&self) -> Option<String> {
        None
    }
    /// The process exit code this error means, when it is not [`EXIT_FAILURE`].
    fn exit_code(&self) -> Option<u8> {
        None
    }
}

/// Human-readable byte counts, e.g. `12.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_like_a_person_writes_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(10 * 1024 * 1024), "10.0 MiB");
    }
}
