//! User-facing errors, rendered once, on stderr:
//!
//! ```text
//! error: <what went wrong, naming the thing>
//!   caused by: <each cause>
//! <detail block, e.g. the user's Python traceback>
//! hint: <how to fix it>
//! ```
//!
//! Errors travel up typed (each library's own error enum, with its causes as `source()`), and
//! their hints, detail and exit code come from [`union_diagnostics::Hint`], implemented by each
//! error type; `crate::report` (used only by the binary, so that nothing here depends on the
//! modules whose errors it lists) walks the chain and asks each link. [`CliError`] is for the
//! errors a command words itself (a usage mistake, a name that is not in a file).
//!
//! Exit codes: 1 for a failure in the user's code, input or environment, 2 for a usage error, 130
//! for Ctrl-C and 143 for SIGTERM; 101 is never used on purpose (that is a panic: a bug in
//! `union`).

use std::fmt;

pub use union_diagnostics::{human_bytes, Hint, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE};

/// An error a command words itself: a message that names the thing, optional detail and hints.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    /// A preformatted block shown after the message (a listing of what exists...).
    pub detail: Option<String>,
    pub hints: Vec<String>,
    pub exit_code: u8,
    /// What caused it, shown (with its own causes and hints) after the message.
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl CliError {
    pub fn new(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            detail: None,
            hints: Vec::new(),
            exit_code: EXIT_FAILURE,
            source: None,
        }
    }

    /// A command-line usage error (exit code 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            exit_code: EXIT_USAGE,
            ..CliError::new(message)
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        let d = detail.into();
        if !d.trim().is_empty() {
            self.detail = Some(d);
        }
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    pub fn exit_code(mut self, code: u8) -> Self {
        self.exit_code = code;
        self
    }

    /// The error this one wraps: kept whole, as the next link of the chain.
    pub fn caused_by(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl Hint for CliError {
    fn hints(&self) -> Vec<String> {
        self.hints.clone()
    }
    fn detail(&self) -> Option<String> {
        self.detail.clone()
    }
    fn exit_code(&self) -> Option<u8> {
        Some(self.exit_code)
    }
}
