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

pub mod cli;
pub mod commands;
pub mod diagnostics;
pub mod discovery;
pub mod entity;
pub mod env_vars;
pub mod process;
pub mod python;
pub mod register;
/// The opt-in warm interpreter (`UNION_WARM=1`): a forking server with flytekit already imported.
pub mod warm;
