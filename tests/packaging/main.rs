//! The code archive: file selection, ignore rules and `ls_digest` equal to flytekit's, and a
//! deterministic archive.

// Tests and examples show what they ran; the print lints are for library code.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../support/mod.rs"]
mod support;

mod archive;
