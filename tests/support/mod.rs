//! What every integration test shares, in one place:
//!
//! - [`cli`]: the real `union` and `pyflyte` run as users run them ([`Project`]), and their
//!   output;
//! - [`sandbox`]: the one way to start `union sandbox start` (port 0, address read from it);
//! - [`process`]: waiting for conditions, never for a fixed time; child processes' stderr and
//!   signals;
//! - [`build`], [`rbuild`], [`registry`], [`exec`], [`requests`]: helpers of the image, remote
//!   builder, registry, execution and sandbox API tests.
//!
//! Infrastructure (the test Docker engine, registry and base image, started by
//! `tests/setup/docker.sh`) is required, never skipped: [`require_docker_infra`] fails a test with
//! the command that fixes it.
#![allow(dead_code)]

pub mod build;
pub mod cli;
pub mod exec;
pub mod process;
pub mod rbuild;
pub mod registry;
pub mod requests;
pub mod sandbox;

// Each test binary uses a part of these.
#[allow(unused_imports)]
pub use cli::*;
#[allow(unused_imports)]
pub use process::*;
#[allow(unused_imports)]
pub use sandbox::{listening_port, Sandbox};

use std::path::PathBuf;

/// The test Docker engine's socket (tests/setup/docker.sh).
pub const TEST_DOCKER_SOCKET: &str = "/run/union-test/docker.sock";
/// The same, as `DOCKER_HOST` takes it.
pub const TEST_DOCKER_HOST: &str = "unix:///run/union-test/docker.sock";
/// The registry tests/setup/docker.sh starts.
pub const TEST_REGISTRY: &str = "localhost:30000";
/// The offline base image tests/setup/docker.sh pushes.
pub const TEST_BASE_IMAGE: &str = "localhost:30000/union/debian-python:bookworm";
/// The command that brings up what the tests need (see README.md).
pub const INFRA_FIX: &str = "bash tests/setup/docker.sh (tests/run-all.sh runs it)";

/// The repository root (where `.venv`, `python_fixtures/` and `tests/` live).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fail the test, with the command that fixes it, unless the test engine, registry and base
/// image are up: a test that needs them never passes without them.
pub fn require_docker_infra() {
    let registry = std::net::TcpStream::connect("127.0.0.1:30000").is_ok();
    let engine = std::os::unix::net::UnixStream::connect(TEST_DOCKER_SOCKET).is_ok();
    assert!(
        registry && engine,
        "this test needs the test Docker engine ({TEST_DOCKER_SOCKET}: {}) and registry (127.0.0.1:30000: {}); start them with `{INFRA_FIX}`",
        if engine { "up" } else { "down" },
        if registry { "up" } else { "down" },
    );
}

/// A name no earlier run used (registries and sandboxes outlive test runs).
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}
