#!/usr/bin/env bash
# The demo: generate every var of the 8-machine reference fleet (examples/fleet) into a scratch
# copy, with the fleet's throwaway admin key, then check it and show one machine's vars.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ensure_demo_deps
cargo build --release -q
bin=$PWD/target/release/varsmith
work=$(mktemp -d "${TMPDIR:-/tmp}/varsmith-demo.XXXXXX")
cp examples/fleet/varsmith.yaml examples/fleet/admin.agekey "$work/"
export SOPS_AGE_KEY_FILE="$work/admin.agekey"
echo "== demo workspace: $work"
"$bin" -C "$work" generate --all
"$bin" -C "$work" check
echo "== cinnabar's vars"
"$bin" -C "$work" list cinnabar
echo "== cinnabar's zerotier address (a public fact)"
"$bin" -C "$work" get cinnabar zerotier-controller/ip; echo
echo "== the files, ready to commit:"
(cd "$work" && find sops -type f -not -path 'sops/.tmp/*' | sort | head -20 && echo "…")
