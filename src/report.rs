//! Rendering an error for the user, once, at the top: `error:`, each cause, the detail blocks and
//! `hint:` lines, and the exit code (see `crate::diagnostics` for the format). Only the binary
//! calls this; it is the one place that lists every error type of ours, so it sits above them.

use std::io::Write;
use std::process::ExitCode;

use crate::diagnostics::{CliError, Hint, EXIT_FAILURE};

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
        crate::register::local_data::LocalDataError,
        crate::register::union_builder::UnionBuilderError,
        crate::commands::run_remote::FollowError,
        union_client::ConfigError,
        union_client::AdminError,
        union_client::auth::AuthError,
        union_client::auth::api_key::ApiKeyError,
        union_client::auth::UnknownAuthType,
        union_image::pipeline::ImageError,
        union_image::build::BuildError,
        union_image::remote::RemoteBuildError,
        union_image::ImageSpecError,
        union_registry::RegistryError,
        union_sandbox::SandboxError,
        union_sandbox::auth::AuthError,
        union_sandbox::auth::TokenError,
        union_sandbox::store::StoreError,
        union_sandbox::tls::TlsError,
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
    use crate::diagnostics::EXIT_USAGE;

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

    /// Every error type with a `Hint` impl, in any crate of the workspace, is in `hint_of`'s
    /// list: a type missing there would have its hints and exit code silently dropped.
    #[test]
    fn every_hint_impl_is_listed() {
        fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    rust_files(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        rust_files(&root.join("src"), &mut files);
        rust_files(&root.join("crates"), &mut files);
        let this = std::fs::read_to_string(root.join("src/report.rs")).unwrap();
        let listed = &this[this.find("try_as!(").unwrap()..this.find("    None\n}").unwrap()];
        let mut missing = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for line in text.lines() {
                let Some(rest) = line.trim().strip_prefix("impl ") else {
                    continue;
                };
                let Some((_, ty)) = rest.split_once("Hint for ") else {
                    continue;
                };
                let ty = ty.trim_end_matches(['{', '}', ' ']);
                let named =
                    |l: &str| l.trim().trim_end_matches(',').rsplit("::").next() == Some(ty);
                if !listed.lines().any(named) {
                    missing.push(format!("{ty} ({})", f.display()));
                }
            }
        }
        assert!(missing.is_empty(), "not in hint_of: {missing:?}");
    }
}
