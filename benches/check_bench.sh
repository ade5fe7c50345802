#!/usr/bin/env bash
# Issue 10 part 2 benchmark: `varsmith check` on a generated fleet of N machines x G small
# generators (one deployed sops file each), structure only (no identity: every ENC value and
# the metadata of every file parsed and validated) and with the admin identity (every data key
# unwrapped and every MAC verified). Target: structure only under 1 s for 1000 machines.
#   usage: [VARSMITH_BIN=path] benches/check_bench.sh [MACHINES=1000] [GENERATORS=3] [RUNS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
G=${2:-3}
RUNS=${3:-5}
if [ -n "${VARSMITH_BIN:-}" ]; then
  bin=$VARSMITH_BIN
else
  cargo build --release -q
  bin=$PWD/target/release/varsmith
fi
work=$(mktemp -d /tmp/varsmith-check-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
age-keygen -o "$work/admin.agekey" 2>/dev/null
admin=$(age-keygen -y "$work/admin.agekey")
mkdir -p "$work/ws/generators" "$work/home"
gens=""
for i in $(seq 1 "$G"); do
  cat > "$work/ws/generators/g$i.yaml" <<EOT
files:
  secret: {}
  other: {}
  public: { secret: false }
script: |
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > \$out/secret
  head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > \$out/other
  echo g$i-\$machine > \$out/public
EOT
  gens="$gens${gens:+, }g$i"
done
{
  echo "admins:"; echo "  bench: $admin"; echo "machines:"
  for m in $(seq 1 "$N"); do echo "  m$m:"; echo "    generators: [$gens]"; done
} > "$work/ws/varsmith.yaml"
for m in $(seq 1 "$N"); do
  mkdir -p "$work/ws/sops/machines/m$m"
  r=$(age-keygen 2>/dev/null | grep -o 'age1.*')
  printf '[{"publickey": "%s", "type": "age"}]\n' "$r" > "$work/ws/sops/machines/m$m/key.json"
done
export HOME=$work/home
SOPS_AGE_KEY_FILE="$work/admin.agekey" "$bin" -C "$work/ws" generate --all --no-sandbox >/dev/null 2>&1
files=$(find "$work/ws/sops" -name '*.yaml' -path '*/secrets/*' | wc -l)
echo "== check: $N machines x $G generators, $files sops files, $(nproc) cores (load $(cut -d' ' -f1 /proc/loadavg)), $RUNS runs"

measure() { # label, env...
  local label=$1; shift
  local times=() cpus=()
  for _ in $(seq 1 "$RUNS"); do
    env -u SOPS_AGE_KEY -u SOPS_AGE_KEY_FILE "$@" /usr/bin/time -o "$work/t" -f '%e %U %S' \
      "$bin" -C "$work/ws" check >/dev/null 2>"$work/err" || {
      cat "$work/err" >&2; echo "check failed" >&2; exit 1; }
    read -r e u s < "$work/t"
    times+=("$e")
    cpus+=("$(echo "$u + $s" | bc -l)")
  done
  local sorted csorted
  sorted=$(printf '%s\n' "${times[@]}" | sort -n)
  csorted=$(printf '%s\n' "${cpus[@]}" | sort -n)
  printf '%-32s wall best %.2f s, median %.2f s; CPU median %.2f s  (%s)\n' "$label" \
    "$(echo "$sorted" | head -n1)" "$(echo "$sorted" | sed -n "$(( (RUNS + 1) / 2 ))p")" \
    "$(echo "$csorted" | sed -n "$(( (RUNS + 1) / 2 ))p")" "$(tail -n1 "$work/err")"
}
measure "structure only (no identity):"
measure "with an identity (every MAC):" SOPS_AGE_KEY_FILE="$work/admin.agekey"
for mode in structure identity; do
  key=()
  [ "$mode" = identity ] && key=(SOPS_AGE_KEY_FILE="$work/admin.agekey")
  env -u SOPS_AGE_KEY_FILE "${key[@]}" /usr/bin/time -o "$work/rss" -f '%M' \
    "$bin" -C "$work/ws" check >/dev/null 2>&1
  echo "peak RSS ($mode): $(( $(tail -n1 "$work/rss") / 1024 )) MiB"
done
