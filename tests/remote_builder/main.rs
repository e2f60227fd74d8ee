//! union's remote image builder (`builder="union"`): our `union register` and the real union CLI,
//! run from a user's project with no Docker engine (`DOCKER_HOST` pointing nowhere), against the
//! builder of the real `union sandbox start`, whose engine and registry come from
//! tests/setup/docker.sh.

// Tests and examples show what they ran; the print lints are for library code.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../support/mod.rs"]
mod support;

mod builds;
