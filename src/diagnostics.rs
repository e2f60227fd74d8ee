//! User-facing errors: one place renders them, on stderr, as
//!
//! ```text
//! error: <what went wrong, naming the thing>
//!   caused by: <each cause>
//! <detail block, e.g. the user's Python traceback>
//! hint: <how to fix it>
//! ```
//!
//! Exit codes: 1 for a failure in the user's code or input, 2 for a usage error, 130 for Ctrl-C,
//! 101 is never used on purpose (that is a panic: a bug in `union`).

use std::fmt;
use std::io::Write;
use std::process::ExitCode;

/// Exit code for errors in the user's input, code or environment.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for command-line usage errors.
pub const EXIT_USAGE: u8 = 2;
/// Exit code after Ctrl-C (128 + SIGINT), like a shell.
pub const EXIT_INTERRUPTED: u8 = 130;

/// An error meant for the user: a message that names the thing, optional detail and hints.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub message: String,
    /// A preformatted block shown after the message (a traceback, a list of entities...).
    pub detail: Option<String>,
    pub hints: Vec<String>,
    pub exit_code: u8,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            detail: None,
            hints: Vec::new(),
            exit_code: EXIT_FAILURE,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Diagnostic {
            exit_code: EXIT_USAGE,
            ..Diagnostic::new(message)
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
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

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

/// Render any error for the user and return the process exit code.
pub fn report(err: &anyhow::Error) -> ExitCode {
    let mut text = Vec::new();
    let code = render(err, &mut text);
    // Error messages and build output may quote a URL with credentials in it.
    let text = String::from_utf8_lossy(&text);
    let stderr = std::io::stderr();
    let mut out = stderr.lock();
    let _ = out.write_all(crate::redact::mask_url_credentials(&text).as_bytes());
    let _ = out.flush();
    ExitCode::from(code)
}

/// Write `err` to `out` in the `error:` / `hint:` format and return its exit code.
pub fn render(err: &anyhow::Error, out: &mut dyn Write) -> u8 {
    // Only when the outermost error is the diagnostic (anyhow's downcast sees through context).
    if let Some(diag) = err
        .chain()
        .next()
        .and_then(|e| e.downcast_ref::<Diagnostic>())
    {
        let _ = writeln!(out, "error: {}", diag.message);
        for cause in err.chain().skip(1) {
            let _ = writeln!(out, "  caused by: {cause}");
        }
        if let Some(detail) = &diag.detail {
            let text = detail.trim_end();
            let _ = writeln!(out);
            for line in text.lines() {
                let _ = writeln!(out, "  {line}");
            }
            let _ = writeln!(out);
        }
        for hint in &diag.hints {
            let _ = writeln!(out, "hint: {hint}");
        }
        return diag.exit_code;
    }
    // Context added with anyhow around a Diagnostic: the outer message leads, the diagnostic follows.
    let mut chain = err.chain();
    if let Some(first) = chain.next() {
        let _ = writeln!(out, "error: {first}");
    }
    let mut code = EXIT_FAILURE;
    for cause in chain {
        if let Some(diag) = cause.downcast_ref::<Diagnostic>() {
            let _ = writeln!(out, "  caused by: {}", diag.message);
            if let Some(detail) = &diag.detail {
                for line in detail.trim_end().lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
            for hint in &diag.hints {
                let _ = writeln!(out, "hint: {hint}");
            }
            code = diag.exit_code;
        } else {
            let _ = writeln!(out, "  caused by: {cause}");
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_message_detail_and_hints() {
        let err = anyhow::Error::new(
            Diagnostic::new("file `x.py` does not exist")
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
    fn context_around_a_diagnostic_keeps_its_exit_code() {
        let err = anyhow::Error::new(Diagnostic::usage("bad flag")).context("while running");
        let mut buf = Vec::new();
        assert_eq!(render(&err, &mut buf), EXIT_USAGE);
        assert!(String::from_utf8(buf)
            .unwrap()
            .starts_with("error: while running\n  caused by: bad flag\n"));
    }
}
