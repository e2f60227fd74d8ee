//! The user-facing commands against real peers: `run` and `list` (compared with the real
//! `pyflyte run`), `package` (compared with `pyflyte package`), `register` (read back through
//! `FlyteRemote`), images built for registration, and `run --remote` / `get` / `terminate`.

// Tests and examples show what they ran; the print lints are for library code.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../support/mod.rs"]
mod support;

mod list;
mod nodes;
mod package;
mod register;
mod register_images;
mod remote;
mod run;
