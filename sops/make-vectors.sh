#!/usr/bin/env bash
# Regenerates the interop vectors: each plaintext in plain/ encrypted to both throwaway keys
# by the real sops 3.11 (by-sops/) and by varsmith (by-varsmith/).
# Usage (from the repo root): sops/make-vectors.sh [path/to/varsmith]
set -euo pipefail
cd "$(dirname "$0")"
V=${1:-../target/release/varsmith}
A=$(age-keygen -y keys/alice.agekey)
H=$(age-keygen -y keys/host.agekey)
for f in plain/*; do
  name=$(basename "$f")
  sops encrypt --age "$A,$H" "$f" > "by-sops/$name"
  "$V" sops encrypt --age "$A,$H" "$f" > "by-varsmith/$name"
done
