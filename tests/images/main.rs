//! Images: tags identical to flytekit's (`tag`), builds through the real Docker engine
//! (`build`), the registry client against real registries (`registry`), and the remote builder
//! (`remote_builder`).

#[path = "../support/mod.rs"]
mod support;

mod tag;
mod build;
mod registry;
mod remote_builder;
