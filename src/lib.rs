//! `union`: a fast command-line tool for Flyte and Union users.
//!
//! The binary (`src/main.rs`) parses arguments and renders errors; everything else lives here, one
//! module per concern:
//! - [`cli`]: the command line (clap derive);
//! - [`commands`]: one file per subcommand;
//! - [`python`]: the embedded CPython that imports the user's code with the user's own flytekit;
//! - [`discovery`]: project roots and module names with pyflyte's semantics;
//! - [`entity`]: what discovery hands back, as plain Rust data;
//! - [`package`]: the fast-register code archive (file selection, ignore rules, ls_digest, tar.gz);
//! - [`diagnostics`]: user-facing errors (`error:` / `hint:`) and exit codes;
//! - [`process`]: process-level plumbing (Ctrl-C, keeping stdout for data).

pub mod admin;
pub mod cli;
pub mod commands;
pub mod config;
pub mod diagnostics;
pub mod discovery;
pub mod entity;
/// Workflow execution for the sandbox: node scheduling, bindings, branches, a Docker task runner.
pub mod executor;
/// Flyte wire types (prost messages, tonic clients/servers) generated from the installed flyteidl.
pub mod idl;
/// flytekit ImageSpec as native Rust data, with tags byte-identical to flytekit 1.16.
pub mod image;
pub mod package;
pub mod process;
pub mod python;
/// Masking credentials written into URLs in everything union prints.
pub mod redact;
pub mod register;
/// Container registry client: image references, docker credentials, manifest existence checks.
pub mod registry;
/// `union sandbox`: a local FlyteAdmin-compatible backend (gRPC + signed blob uploads, SQLite state).
pub mod sandbox;
/// The opt-in warm interpreter (`UNION_WARM=1`): a forking server with flytekit already imported.
pub mod warm;
