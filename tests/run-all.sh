#!/usr/bin/env bash
# Install everything the test suite needs, build, and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
unset PYO3_PYTHON
bash tests/setup/python-env.sh
cargo build --release --locked
cargo test --release --locked --no-fail-fast
