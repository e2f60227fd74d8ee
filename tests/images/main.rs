//! Images: tags identical to flytekit's (`tag`), builds through the real Docker engine
//! (`build`), the registry client against real registries (`registry`), and the remote builder
//! (`remote_builder`).

// Tests and examples show what they ran; the print lints are for library code.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../support/mod.rs"]
mod support;

mod build;
mod registry;
mod remote_builder;
mod tag;
