#!/usr/bin/env bash
# Issue 22 benchmark: `nix flake check` on the example fleet (examples/fleet: 4 NixOS + 4
# nix-darwin machines, offline kit of ../shared/nix, generated with `varsmith generate --all`)
#   A. as shipped: `checks = varsmith.flakeCheck self` with the module's new checks (recorded
#      SHA-256 and recipients of every sops file: nix/integrity.nix; orphan trees and shared
#      leftovers: nix/flake-check.nix);
#   B. the same with those new checks stubbed out (integrity.nix returns [], no orphan or
#      leftover scan): the module's share of the evaluation is (A - B) / A (goal < 10 %);
#   C. without the `checks` output at all (what `nix flake check` did before lib.flakeCheck).
# Wall and CPU (user + sys) time per run, and the load average, since the machine is shared.
# The generators' runtime inputs are the test fixture's offline tool links
# (tests/util/nix_fixtures/test.nix without its two test generators).
# Measured 2026-12-07 (nix 2.8, 2 shared cores, load 6-8, 2 runs): CPU median A 3.90 s, B 3.85 s,
# C 3.70 s (wall 12.4 / 11.2 / 10.1 s): the new checks 1.3 % of the CPU, lib.flakeCheck as a whole
# 5.1 %.
#   usage: [VARSMITH_BIN=path] [VARSMITH_NIX_KIT=dir] benches/flake_check_bench.sh [RUNS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
kit=${VARSMITH_NIX_KIT:-$(cd .. && pwd)/shared/nix}
[ -f "$kit/nixpkgs-2020-07.tar.gz" ] || { echo "no kit at $kit (set VARSMITH_NIX_KIT)" >&2; exit 1; }
if [ -n "${VARSMITH_BIN:-}" ]; then bin=$VARSMITH_BIN; else cargo build --release -q; bin=$PWD/target/release/varsmith; fi
work=$(mktemp -d /tmp/varsmith-flakecheck-bench.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
export NIX_CONFIG=$'experimental-features = nix-command flakes\nsubstituters =\nsandbox = false'
export HOME=$work/home XDG_CACHE_HOME=$work/cache
mkdir -p "$HOME"
flags=(--option substituters '' --option sandbox false --no-write-lock-file
  --override-input nixpkgs "file://$kit/nixpkgs-2020-07.tar.gz"
  --override-input sops-nix "file://$kit/sops-nix-2021-12.tar.gz"
  --override-input nixpkgs-darwin "file://$kit/nixpkgs-lib-2026-06.tar.gz"
  --override-input sops-nix-darwin "file://$kit/sops-nix-2026-06.tar.gz"
  --override-input nix-darwin "file://$kit/nix-darwin-2026-06.tar.gz")

# repo/nix and repo/examples/fleet, as in this repository (the fleet imports ../../nix).
setup() { # dir
  local repo=$1 ws=$1/examples/fleet
  mkdir -p "$ws"
  cp -r nix "$repo/nix"
  cp -r examples/fleet/machines examples/fleet/flake.nix examples/fleet/flake.lock examples/fleet/varsmith.yaml "$ws/"
  sed -e 's/(lib.optionalAttrs (me == "cinnabar") {/(lib.optionalAttrs false {/' \
    -e 's/\[ "zerotier-controller" "marker" "tricky" \]/[ "zerotier-controller" ]/' \
    -e 's|j = builtins.fromJSON (builtins.readFile ./test-generators.json);|j = { };|' \
    tests/util/nix_fixtures/test.nix > "$ws/test.nix"
  sed -i -e 's|./machines/nixos.nix|./machines/nixos.nix ./test.nix|' \
    -e 's|./machines/darwin.nix|./machines/darwin.nix ./test.nix|' "$ws/flake.nix"
  git -C "$repo" init -q
  git -C "$repo" add -A
}
a=$work/a
setup "$a"
echo "generating the example fleet's vars (offline kit)..." >&2
VARSMITH_NIX_FLAGS="$(printf '%q ' "${flags[@]}")"
export VARSMITH_NIX_FLAGS
SOPS_AGE_KEY_FILE=$PWD/examples/fleet/admin.agekey \
  "$bin" -C "$a/examples/fleet" generate --all --no-sandbox >"$work/gen.log" 2>&1 || { cat "$work/gen.log" >&2; exit 1; }
git -C "$a" add -A
env -u SOPS_AGE_KEY -u SOPS_AGE_KEY_FILE "$bin" -C "$a/examples/fleet" check >"$work/check.log" 2>&1 ||
  { cat "$work/check.log" >&2; echo "the generated fleet does not pass varsmith check" >&2; exit 1; }
# B: the new checks stubbed out; C: no checks output.
b=$work/b c=$work/c
cp -a "$a" "$b"
cp -a "$a" "$c"
echo 'args: [ ]' > "$b/nix/integrity.nix"
sed -i -e 's/^  orphans = map ($/  orphans = [ ]; orphans0 = map (/' \
  -e 's/^  sharedLeftovers = map ($/  sharedLeftovers = [ ]; sharedLeftovers0 = map (/' "$b/nix/flake-check.nix"
grep -q 'orphans = \[ \]' "$b/nix/flake-check.nix" && grep -q 'sharedLeftovers = \[ \]' "$b/nix/flake-check.nix" ||
  { echo "nix/flake-check.nix layout changed: update the stub" >&2; exit 1; }
sed -i 's|^      checks = varsmith.flakeCheck self;$|      checks = { };|' "$c/examples/fleet/flake.nix"
grep -q '      checks = { };' "$c/examples/fleet/flake.nix" || { echo "flake.nix layout changed" >&2; exit 1; }
for d in "$b" "$c"; do git -C "$d" add -A; done
# Warm: the kit's tarballs unpacked into the store once (not part of any figure).
nix flake check "$a/examples/fleet" "${flags[@]}" >/dev/null 2>&1 || {
  nix flake check "$a/examples/fleet" "${flags[@]}" 2>&1 | tail -20 >&2; echo "nix flake check (A) failed" >&2; exit 1; }
echo "== nix flake check, example fleet (8 machines, 4 darwin), $(nproc) cores, $RUNS runs each, load $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A wall cpu
for run in $(seq 1 "$RUNS"); do
  for v in a b c; do
    d=${!v}
    /usr/bin/time -o "$work/t" -f '%e %U %S' nix flake check "$d/examples/fleet" "${flags[@]}" >/dev/null 2>"$work/err" ||
      { cat "$work/err" >&2; echo "nix flake check ($v) failed" >&2; exit 1; }
    read -r e u s < "$work/t"
    wall[$v]="${wall[$v]:-} $e"
    cpu[$v]="${cpu[$v]:-} $(echo "$u + $s" | bc -l)"
  done
done
med() { printf '%s\n' $1 | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"; }
for v in a b c; do
  case $v in a) l="A with the new checks";; b) l="B new checks stubbed";; c) l="C no checks output";; esac
  printf '%-24s wall median %6.2f s, CPU median %6.2f s  (runs: wall%s; CPU%s)\n' "$l:" "$(med "${wall[$v]}")" "$(med "${cpu[$v]}")" "${wall[$v]}" "${cpu[$v]}"
done
ca=$(med "${cpu[a]}") cb=$(med "${cpu[b]}") cc=$(med "${cpu[c]}")
printf "the new checks' share of CPU (A-B)/A: %.1f %%; lib.flakeCheck's whole share (A-C)/A: %.1f %%\n" \
  "$(echo "($ca - $cb) * 100 / $ca" | bc -l)" "$(echo "($ca - $cc) * 100 / $ca" | bc -l)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
