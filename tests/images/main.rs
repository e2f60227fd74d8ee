//! Images: tags identical to flytekit's (`tag`), builds through the real Docker engine
//! (`build`), and the registry client against real registries (`registry`). The remote builder
//! has its own binary (`tests/remote_builder/`).

// Tests and examples show what they ran; the print lints are for library code.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../support/mod.rs"]
mod support;

mod build;
mod registry;
mod tag;
