//! The code archive: file selection, ignore rules and `ls_digest` equal to flytekit's, and a
//! deterministic archive.

#[path = "../support/mod.rs"]
mod support;

mod archive;
