//! Talking to a FlyteAdmin (a Flyte cluster, a Union tenant, or `union sandbox`):
//!
//! - [`config`]: which endpoint, project and domain, read from the same YAML files and
//!   environment variables as pyflyte and union, each setting remembering where it came from;
//! - [`admin`]: the admin client, the generated tonic stubs wrapped so that every failure is a
//!   typed error naming the endpoint, its source and the entity;
//! - [`auth`]: authentication as flytekit and union do it (every `authType`, union's API keys,
//!   the token cache), applied to every call by the channel all clients share.
//!
//! Owns: configuration and the admin protocol on the client side. Depends on `union-idl` (the
//! wire types) and `union-diagnostics` (hints). Never prints.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod admin;
pub mod auth;
pub mod config;
mod execution_options;
mod org;
pub mod secrets;
mod tls;

pub use admin::{id_text, AdminClient, AdminError, Created, ExecutionOptions};
pub use config::{ConfigError, Overrides, Settings, Source};
