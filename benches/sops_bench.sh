#!/usr/bin/env bash
# Decrypt-and-verify benchmark: varsmith vs the real sops, same files, same run.
#   * 1000 small sops YAML files (3 keys each, own data key each)
#   * one sops YAML file with 10,000 keys (made by the real sops)
# Reports wall time and peak RSS (GNU time -v). Needs: cargo, sops, age-keygen, /usr/bin/time.
# Usage: benches/sops_bench.sh [N_SMALL] [N_KEYS]
set -euo pipefail
cd "$(dirname "$0")/.."
N_SMALL=${1:-1000}
N_KEYS=${2:-10000}
cargo build --release --quiet
V=$PWD/target/release/varsmith
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export HOME=$W/home XDG_CONFIG_HOME=$W/home/.config
mkdir -p "$HOME"
unset SOPS_AGE_KEY SOPS_AGE_KEY_CMD SOPS_AGE_SSH_PRIVATE_KEY_FILE
age-keygen -o "$W/key.txt" 2>/dev/null
export SOPS_AGE_KEY_FILE=$W/key.txt
R=$(age-keygen -y "$W/key.txt")

echo "setup: $N_SMALL small files, one file with $N_KEYS keys ..." >&2
mkdir "$W/small"
for i in $(seq 1 "$N_SMALL"); do
  printf 'password: secret-%d\ntoken: tok-%d\nport: %d\n' "$i" "$i" "$i" > "$W/small/f$i.yaml"
  "$V" sops encrypt --age "$R" --in-place "$W/small/f$i.yaml"
done
for i in $(seq 1 "$N_KEYS"); do printf 'key_%d: value-number-%d\n' "$i" "$i"; done > "$W/big.yaml"
sops encrypt --age "$R" --in-place "$W/big.yaml"

# measure NAME CMD... -> prints "wall_seconds max_rss_kb"
measure() {
  local out
  out=$( { /usr/bin/time -v "$@" > /dev/null; } 2>&1 )
  local wall rss
  wall=$(printf '%s\n' "$out" | sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' \
    | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(printf '%s\n' "$out" | sed -n 's/.*Maximum resident set size (kbytes): //p')
  echo "$wall $rss"
}

small_list=$(ls "$W"/small/*.yaml)
# sanity: both tools agree on every small file's output
for f in $(echo "$small_list" | head -5); do
  cmp <(sops decrypt "$f") <("$V" sops decrypt "$f")
done
cmp <(sops decrypt "$W/big.yaml") <("$V" sops decrypt "$W/big.yaml")

read -r vs_small_one vs_small_one_rss < <(measure "$V" sops decrypt $small_list)
read -r vs_small_proc vs_small_proc_rss < <(measure sh -c 'for f in "$@"; do "$0" sops decrypt "$f"; done' "$V" $small_list)
read -r so_small so_small_rss < <(measure sh -c 'for f in "$@"; do sops decrypt "$f"; done' x $small_list)
read -r vs_big vs_big_rss < <(measure "$V" sops decrypt "$W/big.yaml")
read -r so_big so_big_rss < <(measure sops decrypt "$W/big.yaml")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "inf" }'; }
printf '%-52s %10s %12s %10s\n' "case" "wall (s)" "peak RSS KB" "vs sops"
printf '%-52s %10s %12s %10s\n' "sops decrypt, $N_SMALL small files (1 process each)" "$so_small" "$so_small_rss" "1.0x"
printf '%-52s %10s %12s %10s\n' "varsmith sops decrypt, $N_SMALL files in one process" "$vs_small_one" "$vs_small_one_rss" "$(ratio "$so_small" "$vs_small_one")"
printf '%-52s %10s %12s %10s\n' "varsmith sops decrypt, $N_SMALL files, 1 process each" "$vs_small_proc" "$vs_small_proc_rss" "$(ratio "$so_small" "$vs_small_proc")"
printf '%-52s %10s %12s %10s\n' "sops decrypt, 1 file with $N_KEYS keys" "$so_big" "$so_big_rss" "1.0x"
printf '%-52s %10s %12s %10s\n' "varsmith sops decrypt, 1 file with $N_KEYS keys" "$vs_big" "$vs_big_rss" "$(ratio "$so_big" "$vs_big")"
