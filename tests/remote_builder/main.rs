//! The remote image builder (`builder="union"`): the client in this process, which has no Docker
//! engine (its own binary, because `DOCKER_HOST` pointing nowhere is process-wide), against the
//! builder server of the real `union sandbox start`, whose engine and registry come from
//! tests/setup/docker.sh.

// Tests and examples show what they ran; the print lints are for library code.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../support/mod.rs"]
mod support;

mod builds;
