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
//! error type; [`render`] walks the chain and asks each link. [`CliError`] is for the errors a
//! command words itself (a usage mistake, a name that is not in a file).
//!
//! Exit codes: 1 for a failure in the user's code, input or environment, 2 for a usage error, 130
//! for Ctrl-C and 143 for SIGTERM; 101 is never used on purpose (that is a panic: a bug in
//! `union`).

use std::fmt;
use std::io::Write;
use std::process::ExitCode;

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

/// The [`Hint`] side of an error in a chain, for every error type of ours: the one place that
/// lists them.
fn hint_of<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a dyn Hint> {
    macro_rules! try_as {
        ($($t:ty),* $(,)?) => {
            $(if let Some(x) = e.downcast_ref::<$t>() { return Some(x); })*
        };
    }
    try_as!(
        CliError,
        crate::python::PythonError,
        crate::discovery::DiscoveryError,
        crate::register::RegisterError,
        crate::register::upload::UploadError,
        crate::commands::run_remote::FollowError,
        union_client::ConfigError,
        union_client::AdminError,
        union_image::pipeline::ImageError,
        union_image::build::BuildError,
        union_image::remote::RemoteBuildError,
        union_image::ImageSpecError,
        union_registry::RegistryError,
        union_sandbox::SandboxError,
        union_sandbox::store::StoreError,
    );
    None
}

/// Render any error for the user and return the process exit code.
pub fn report(err: &anyhow::Error) -> ExitCode {
    let mut text = Vec::new();
    let code = render(err, &mut text);
    // Error messages and build output may quote a URL with credentials in it.
    let text = String::from_utf8_lossy(&text);
    let stderr = std::io::stderr();
    let mut out = stderr.lock();
    let _ = out.write_all(union_diagnostics::redact::mask_url_credentials(&text).as_bytes());
    let _ = out.flush();
    ExitCode::from(code)
}

/// Write `err` to `out` in the `error:` / `hint:` format and return its exit code.
pub fn render(err: &anyhow::Error, out: &mut dyn Write) -> u8 {
    let mut shown = String::new();
    let mut details: Vec<String> = Vec::new();
    let mut hints: Vec<String> = Vec::new();
    let mut code: Option<u8> = None;
    for (i, cause) in err.chain().enumerate() {
        let text = cause.to_string();
        if i == 0 {
            let _ = writeln!(out, "error: {text}");
            shown = text;
        } else if !text.is_empty() && !shown.contains(&text) {
            // A wrapper that already quotes its cause (`{source}` in its message) is not repeated.
            let _ = writeln!(out, "  caused by: {text}");
            shown.push('\n');
            shown.push_str(&text);
        }
        if let Some(h) = hint_of(cause) {
            if let Some(d) = h.detail().filter(|d| !d.trim().is_empty()) {
                if !details.contains(&d) {
                    details.push(d);
                }
            }
            for hint in h.hints() {
                if !hints.contains(&hint) {
                    hints.push(hint);
                }
            }
            if code.is_none() {
                code = h.exit_code();
            }
        }
    }
    for detail in &details {
        let _ = writeln!(out);
        for line in detail.trim_end().lines() {
            let _ = writeln!(out, "  {line}");
        }
        let _ = writeln!(out);
    }
    for hint in &hints {
        let _ = writeln!(out, "hint: {hint}");
    }
    code.unwrap_or(EXIT_FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_message_detail_and_hints() {
        let err = anyhow::Error::new(
            CliError::new("file `x.py` does not exist")
                .detail("line 1\nline 2")
                .hint("check the path"),
        );
        let mut buf = Vec::new();
        let code = render(&err, &mut buf);
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(code, EXIT_FAILURE);
        assert_eq!(
            text,
            "error: file `x.py` does not exist\n\n  line 1\n  line 2\n\nhint: check the path\n"
        );
    }

    #[test]
    fn context_around_an_error_keeps_its_exit_code_and_hints() {
        let err = anyhow::Error::new(CliError::usage("bad flag").hint("try --help"))
            .context("while running");
        let mut buf = Vec::new();
        assert_eq!(render(&err, &mut buf), EXIT_USAGE);
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(
            text,
            "error: while running\n  caused by: bad flag\nhint: try --help\n"
        );
    }

    #[test]
    fn hints_come_from_every_link_of_the_chain() {
        // A typed library error under a command's wrapper: both say what they know.
        #[derive(Debug, thiserror::Error)]
        #[error("registering failed")]
        struct Outer(#[source] union_client::ConfigError);
        let inner = union_client::ConfigError::Missing {
            path: "/nope.yaml".into(),
            from: "$UNION_CONFIG".into(),
        };
        let err = anyhow::Error::new(Outer(inner));
        let mut buf = Vec::new();
        assert_eq!(render(&err, &mut buf), EXIT_FAILURE);
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(
            text,
            "error: registering failed\n  caused by: config file `/nope.yaml` (from $UNION_CONFIG) does not exist\nhint: unset UNION_CONFIG or point it at an existing file\n"
        );
    }
}
