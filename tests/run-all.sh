#!/usr/bin/env bash
# Install everything the test suite needs, build, and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
unset PYO3_PYTHON
bash tests/setup/python-env.sh
# A private Docker engine (BuildKit), a registry on 127.0.0.1:30000 and an offline base image.
bash tests/setup/docker.sh
# Debian's chromium and Playwright's driver, for the web console's browser test.
bash tests/setup/browser.sh
export DOCKER_HOST=unix:///run/union-test/docker.sock
# Lints first: library crates may not print, and clippy's warnings are errors (see Cargo.toml).
cargo clippy --release --locked --workspace --all-targets -- -D warnings
# The API docs build without a broken link (a newcomer reads them to find their way).
RUSTDOCFLAGS="-D warnings" cargo doc --release --locked --workspace --no-deps
cargo build --release --locked --workspace
cargo test --release --locked --workspace --no-fail-fast
