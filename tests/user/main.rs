//! How users run `union`: from their project's root with relative paths (`layout`), with bad
//! input (`bad_input`), stopping it with Ctrl-C or SIGTERM (`interrupts`), and the warm
//! interpreter that serves their later commands (`warm`).

// Tests and examples show what they ran; the print lints are for library code.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../support/mod.rs"]
mod support;

mod bad_input;
mod interrupts;
mod layout;
mod warm;
