#!/usr/bin/env bash
# ZeroTier identity generation: `varsmith zerotier generate` (release build), N identities, one
# process each (as a generator script runs it). The proof of work dominates: on average ~15
# memory-hard hashes (SHA-512 + Salsa20/20 over 2 MiB) per identity, so times vary a lot from
# one identity to the next. Also times one `validate` (one hash, the check every peer makes).
# ZeroTier's own zerotier-idtool takes about 0.1-1 s per identity. Needs: cargo, awk.
# Usage: benches/zerotier_bench.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-50}
cargo build --release --quiet
V=$PWD/target/release/varsmith
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

now() { date +%s%N; }
: > "$W/gen.ns"
for i in $(seq 1 "$N"); do
  t0=$(now)
  "$V" zerotier generate "$W/$i.secret" "$W/$i.public"
  t1=$(now)
  echo $((t1 - t0)) >> "$W/gen.ns"
done
: > "$W/val.ns"
for i in $(seq 1 "$N"); do
  t0=$(now)
  "$V" zerotier validate "$W/$i.secret" > /dev/null   # every identity is checked, too
  t1=$(now)
  echo $((t1 - t0)) >> "$W/val.ns"
done
addresses=$(cut -c1-10 "$W"/*.public | sort -u | wc -l)
[ "$addresses" -eq "$N" ] || { echo "duplicate addresses" >&2; exit 1; }

stats() {
  awk '{ s += $1; if (NR == 1 || $1 < min) min = $1; if ($1 > max) max = $1 }
       END { printf "mean %.1f ms, min %.1f ms, max %.1f ms", s / NR / 1e6, min / 1e6, max / 1e6 }' "$1"
}
echo "varsmith zerotier generate, $N identities (one process each): $(stats "$W/gen.ns")"
echo "varsmith zerotier validate, $N identities (one process each): $(stats "$W/val.ns")"
echo "zerotier-idtool generate (published): 100-1000 ms per identity"
