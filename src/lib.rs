//! `union`: a fast command-line tool for Flyte and Union users.
//!
//! The binary (`src/main.rs`) parses arguments and renders errors; everything else lives here, one
//! module per concern:
//! - [`cli`]: the command line (clap derive);
//! - [`commands`]: one file per subcommand;
//! - [`python`]: the embedded CPython that imports the user's code with the user's own flytekit;
//! - [`discovery`]: project roots and module names with pyflyte's semantics;
//! - [`entity`]: what discovery hands back, as plain Rust data;
//! - [`register`]: a project's code to a backend: load, images, package, upload, register;
//! - [`warm`]: the warm interpreter, a forking server with flytekit already imported;
//! - [`env_vars`]: the names of the environment variables `union` reads.
//!
//! Everything that needs no Python lives in the workspace's library crates (`crates/`, see
//! docs/architecture.md): wire types, images and the registry client, the code archive, the
//! admin client and config, the sandbox.
//! - [`diagnostics`]: the error a command words itself, hints and exit codes;
//! - [`report`]: an error rendered for the user (`error:` / `caused by:` / `hint:`), by the binary;
//! - [`process`]: process-level plumbing (Ctrl-C, keeping stdout for data).

pub mod cli;
pub mod commands;
pub mod diagnostics;
pub mod discovery;
pub mod entity;
pub mod env_vars;
pub mod process;
pub mod python;
pub mod register;
pub mod report;
pub mod warm;
