#!/usr/bin/env bash
# Issue 21 benchmark: `varsmith import clan` of a clan workspace of N machines with F files
# each (per machine two generators of F/2 files: all secret but one public fact each; every
# secret one sops binary-store file, as clan writes them, encrypted to the machine's age key
# and the admin), into an empty varsmith workspace declaring the same generators. Reports the
# import's wall time and peak RSS (/usr/bin/time -v), then checks the result (`check` clean,
# `generate --plan` empty). The fixture is encrypted with `varsmith sops encrypt --input-type
# binary` (byte-compatible with sops; one real sops file is cross-checked).
#   usage: [VARSMITH_BIN=path] benches/import_bench.sh [MACHINES=100] [FILES=10]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}
F=${2:-10}
H=$((F / 2))
if [ -n "${VARSMITH_BIN:-}" ]; then
  bin=$VARSMITH_BIN
else
  cargo build --release -q
  bin=$PWD/target/release/varsmith
fi
work=$(mktemp -d /tmp/varsmith-import-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
export HOME=$work/home
mkdir -p "$HOME" "$work/clan" "$work/ws/generators"
age-keygen -o "$work/admin.agekey" 2>/dev/null
admin=$(age-keygen -y "$work/admin.agekey")
for g in a b; do
  {
    echo "files:"
    for i in $(seq 1 $((H - 1))); do echo "  s$i: {}"; done
    echo "  pub: { secret: false }"
    echo "script: |"
    echo "  true"
  } > "$work/ws/generators/$g.yaml"
done
{
  echo "admins:"; echo "  bench: $admin"; echo "machines:"
  for m in $(seq 1 "$N"); do echo "  m$m:"; echo "    generators: [a, b]"; done
} > "$work/ws/varsmith.yaml"
plain=/dev/shm/varsmith-import-bench.$$
trap 'rm -rf "$work" "$plain"' EXIT
for m in $(seq 1 "$N"); do
  mkdir -p "$work/clan/sops/machines/m$m"
  r=$(age-keygen 2>/dev/null | grep -o 'age1.*')
  printf '{\n  "publickey": "%s",\n  "type": "age"\n}\n' "$r" > "$work/clan/sops/machines/m$m/key.json"
  for g in a b; do
    base=$work/clan/vars/per-machine/m$m/$g
    for i in $(seq 1 $((H - 1))); do
      mkdir -p "$base/s$i"
      head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$plain"
      "$bin" sops encrypt --input-type binary --age "$r,$admin" --output "$base/s$i/secret" "$plain"
    done
    mkdir -p "$base/pub"
    echo "public m$m $g" > "$base/pub/value"
  done
done
rm -f "$plain"
secrets=$(find "$work/clan/vars" -name secret | wc -l)
if command -v sops >/dev/null; then
  SOPS_AGE_KEY_FILE="$work/admin.agekey" sops decrypt --input-type binary \
    "$work/clan/vars/per-machine/m1/a/s1/secret" >/dev/null
fi
echo "== import clan: $N machines x $F files ($secrets sops files), $(nproc) cores (load $(cut -d' ' -f1 /proc/loadavg))"
SOPS_AGE_KEY_FILE="$work/admin.agekey" /usr/bin/time -v -o "$work/time" \
  "$bin" -C "$work/ws" import clan "$work/clan" >/dev/null 2>"$work/err" || {
  cat "$work/err" >&2; exit 1; }
wall=$(grep 'Elapsed (wall clock)' "$work/time" | awk '{print $NF}')
rss=$(grep 'Maximum resident set size' "$work/time" | awk '{print $NF}')
cpu=$(awk -F': ' '/User time/{u=$2} /System time/{s=$2} END{print u+s}' "$work/time")
echo "import: wall ${wall}, cpu ${cpu}s, peak RSS $((rss / 1024)) MiB"
SOPS_AGE_KEY_FILE="$work/admin.agekey" "$bin" -C "$work/ws" check >/dev/null
plan=$(SOPS_AGE_KEY_FILE="$work/admin.agekey" "$bin" -C "$work/ws" generate --plan --json)
echo "$plan" | tr -d ' \n' | grep -q '"plan":\[\]' || { echo "generate --plan is not empty: $plan" >&2; exit 1; }
echo "check clean, generate --plan empty"
