#!/usr/bin/env bash
# Issue "core" benchmark: a generated fleet of N machines x 10 small generators (N*10 sandboxed
# runs). Reports wall time and peak memory of `generate --all`, the per-generator overhead beyond
# a bare `bwrap … true`, `check` and a no-op `generate`, and the ratio against a bash loop doing
# the same work with the real `sops encrypt` per file.
#   usage: benches/fleet_bench.sh [MACHINES=100] [JOBS=nproc]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}
JOBS=${2:-$(nproc)}
cargo build --release -q
bin=$PWD/target/release/varsmith
work=$(mktemp -d /tmp/varsmith-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
age-keygen -o "$work/admin.agekey" 2>/dev/null
admin=$(age-keygen -y "$work/admin.agekey")
export SOPS_AGE_KEY_FILE="$work/admin.agekey"
mkdir -p "$work/ws/generators"
gens=""
for i in $(seq 1 10); do
  cat > "$work/ws/generators/g$i.yaml" <<EOT
files:
  secret: {}
  public: { secret: false }
script: |
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > \$out/secret
  echo g$i-\$machine > \$out/public
EOT
  gens="$gens${gens:+, }g$i"
done
{
  echo "admins:"; echo "  bench: $admin"; echo "machines:"
  for m in $(seq 1 "$N"); do
    # Host keys given by hand (key.json), so every run is one of the 10 small generators.
    echo "  m$m:"; echo "    generators: [$gens]"
  done
} > "$work/ws/varsmith.yaml"
for m in $(seq 1 "$N"); do
  mkdir -p "$work/ws/sops/machines/m$m"
  r=$(age-keygen 2>/dev/null | grep -o 'age1.*')
  printf '[{"publickey": "%s", "type": "age"}]\n' "$r" > "$work/ws/sops/machines/m$m/key.json"
done
runs=$((N * 10))
echo "== fleet: $N machines x 10 generators = $runs sandboxed runs, jobs=$JOBS, $(nproc) cores"

tv() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -n1; }
read -r gen_s gen_kb < <(tv "$bin" -C "$work/ws" generate --all --jobs "$JOBS")
echo "generate --all: ${gen_s}s wall, peak RSS $((gen_kb / 1024)) MiB"

# Per-generator overhead: varsmith --jobs 1 on the first 20 machines (200 runs, regenerated)
# against the same script in a bare `bwrap … bash -c` loop, both serial.
script='head -c 32 /dev/urandom | od -An -tx1 | tr -d " \n" > /out/secret; echo g1-m1 > /out/public'
mkdir -p /dev/shm/varsmith-bench-out
t0=$(date +%s.%N)
for _ in $(seq 1 200); do
  bwrap --unshare-all --die-with-parent --new-session --ro-bind /usr /usr --symlink usr/bin /bin \
    --symlink usr/lib /lib --symlink usr/lib64 /lib64 --dev /dev --proc /proc --tmpfs /tmp \
    --bind /dev/shm/varsmith-bench-out /out -- /bin/bash -euo pipefail -c "$script"
done
t1=$(date +%s.%N)
rm -rf /dev/shm/varsmith-bench-out
bare_ms=$(echo "($t1 - $t0) * 1000 / 200" | bc -l)
hosts=$(seq -f 'm%g' 1 20 | tr '\n' ' ')
t0=$(date +%s.%N)
# shellcheck disable=SC2086
"$bin" -C "$work/ws" generate --regenerate --jobs 1 $hosts >/dev/null 2>&1
t1=$(date +%s.%N)
per_ms=$(echo "($t1 - $t0) * 1000 / 200" | bc -l)
printf 'serial: bare bwrap + the same script %.2f ms/run; varsmith --jobs 1 %.2f ms/run; overhead %.2f ms/run\n' \
  "$bare_ms" "$per_ms" "$(echo "$per_ms - $bare_ms" | bc -l)"

read -r chk_s chk_kb < <(tv "$bin" -C "$work/ws" check)
echo "check: ${chk_s}s, peak RSS $((chk_kb / 1024)) MiB"
read -r noop_s noop_kb < <(tv "$bin" -C "$work/ws" generate --all)
echo "generate with nothing to do: ${noop_s}s, peak RSS $((noop_kb / 1024)) MiB"
if command -v hyperfine >/dev/null; then
  hyperfine -N -w 2 -r 10 "$bin -C $work/ws check" "$bin -C $work/ws generate --all" 2>/dev/null | grep -E 'Benchmark|Time'
fi

# The bash loop doing the same work: same script in bwrap, then `sops encrypt` per secret.
M=${LOOP_MACHINES:-10}
loopdir="$work/loop"; mkdir -p "$loopdir"
t0=$(date +%s.%N)
for m in $(seq 1 "$M"); do
  r=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))[0]["publickey"])' "$work/ws/sops/machines/m$m/key.json")
  for i in $(seq 1 10); do
    out=$(mktemp -d /dev/shm/loop.XXXXXX)
    bwrap --unshare-all --die-with-parent --new-session --ro-bind /usr /usr --ro-bind-try /bin /bin \
      --ro-bind-try /lib /lib --ro-bind-try /lib64 /lib64 --dev /dev --proc /proc --tmpfs /tmp \
      --bind "$out" /out -- /bin/bash -euo pipefail -c \
      "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > /out/secret; echo g$i-m$m > /out/public"
    mkdir -p "$loopdir/m$m/facts/g$i"
    printf 'secret: %s\n' "$(cat "$out/secret")" > "$out/s.yaml"
    sops encrypt --age "$r,$admin" "$out/s.yaml" > "$loopdir/m$m/g$i.yaml"
    cp "$out/public" "$loopdir/m$m/facts/g$i/public"
    rm -rf "$out"
  done
done
t1=$(date +%s.%N)
loop_per=$(echo "($t1 - $t0) / ($M * 10)" | bc -l)
loop_total=$(echo "$loop_per * $runs" | bc -l)
printf 'bash loop + real sops encrypt: %.1f ms/generator (measured on %d machines), extrapolated to %d runs: %.1fs\n' \
  "$(echo "$loop_per * 1000" | bc -l)" "$M" "$runs" "$loop_total"
printf 'speedup of varsmith generate --all over the loop: %.1fx\n' "$(echo "$loop_total / $gen_s" | bc -l)"
