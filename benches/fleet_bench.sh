#!/usr/bin/env bash
# Issue "core" benchmark: a generated fleet of N machines x 10 small generators (N*10 sandboxed
# runs). Reports wall time and peak memory of `generate --all`, its JOBS-way speed-up against
# bare bwrap's own, the per-generator overhead beyond a bare `bwrap … true`, `check` and a no-op
# `generate`, and the ratio against a bash loop doing the same work with the real `sops encrypt`
# per file.
#   usage: [VARSMITH_BIN=path] benches/fleet_bench.sh [MACHINES=100] [JOBS=nproc]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}
JOBS=${2:-$(nproc)}
# VARSMITH_BIN: measure another build (e.g. an older commit's) with the same bench.
if [ -n "${VARSMITH_BIN:-}" ]; then
  bin=$VARSMITH_BIN
else
  cargo build --release -q
  bin=$PWD/target/release/varsmith
fi
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

# The machine may be shared: every figure comes with the load average before it and the CPU
# time (user + sys of varsmith and everything it ran) beside its wall time.
load() { cut -d' ' -f1-3 /proc/loadavg; }
# CPU: with perf, the task clock of every descendant (the sandboxed processes are not all
# reaped by varsmith, so getrusage undercounts them); else /usr/bin/time's user + sys.
if command -v perf >/dev/null && perf stat -x, -e task-clock -o /dev/null true 2>/dev/null; then
  tv() {
    local w m ms
    read -r w m < <(/usr/bin/time -f "%e %M" perf stat -x, -e task-clock -o "$work/perf.txt" "$@" 2>&1 >/dev/null | tail -n1)
    ms=$(grep task-clock "$work/perf.txt" | cut -d, -f1)
    echo "$w $m $(echo "${ms:-0} / 1000" | bc -l) 0"
  }
else
  tv() { /usr/bin/time -f "%e %M %U %S" "$@" 2>&1 >/dev/null | tail -n1; }
fi
echo "load average before: $(load)"
read -r gen_s gen_kb gen_u gen_sys < <(tv "$bin" -C "$work/ws" generate --all --jobs "$JOBS")
echo "generate --all --jobs $JOBS: ${gen_s}s wall, CPU $(echo "$gen_u + $gen_sys" | bc -l | xargs printf %.2f)s, peak RSS $((gen_kb / 1024)) MiB (load after: $(load))"

# Speed-up of --jobs JOBS over --jobs 1, like for like: the same SUBSET machines regenerated
# both ways (SUBSET=N regenerates the whole fleet twice more).
S=${SUBSET:-$(( N < 100 ? N : 100 ))}
sub=$(seq -f 'm%g' 1 "$S" | tr '\n' ' ')
# shellcheck disable=SC2086
read -r j1_s _ j1_u j1_sys < <(tv "$bin" -C "$work/ws" generate --regenerate --jobs 1 $sub)
l1=$(load)
# shellcheck disable=SC2086
read -r jn_s _ jn_u jn_sys < <(tv "$bin" -C "$work/ws" generate --regenerate --jobs "$JOBS" $sub)
printf 'regenerate %d machines (%d runs): --jobs 1 %.2fs wall (CPU %.2fs, load %s), --jobs %d %.2fs wall (CPU %.2fs, load %s): speed-up %.2fx\n' \
  "$S" "$((S * 10))" "$j1_s" "$(echo "$j1_u + $j1_sys" | bc -l)" "$l1" "$JOBS" "$jn_s" \
  "$(echo "$jn_u + $jn_sys" | bc -l)" "$(load)" "$(echo "$j1_s / $jn_s" | bc -l)"

# Per-generator overhead: varsmith --jobs 1 on the first 20 machines (200 runs, regenerated)
# against the same script in a bare `bwrap … bash -c` loop, both serial.
script='head -c 32 /dev/urandom | od -An -tx1 | tr -d " \n" > /out/secret; echo g1-m1 > /out/public'
mkdir -p /dev/shm/varsmith-bench-out
# bare K: K runs of the script in bare bwrap, one after another.
bare() {
  for _ in $(seq 1 "$1"); do
    bwrap --unshare-all --die-with-parent --new-session --ro-bind /usr /usr --symlink usr/bin /bin \
      --symlink usr/lib /lib --symlink usr/lib64 /lib64 --dev /dev --proc /proc --tmpfs /tmp \
      --bind /dev/shm/varsmith-bench-out /out -- /bin/bash -euo pipefail -c "$script"
  done
}
t0=$(date +%s.%N)
bare 200
t1=$(date +%s.%N)
bare_ms=$(echo "($t1 - $t0) * 1000 / 200" | bc -l)
# The ceiling of the speed-up above: bare bwrap's own, the same 200 runs in JOBS loops at once
# (namespace set-up and tear-down partly serialise in the kernel).
for _ in $(seq 1 "$JOBS"); do bare $((200 / JOBS)) & done
wait
t2=$(date +%s.%N)
printf 'bare bwrap, 200 runs: one loop %.2fs, %d loops at once %.2fs: its own speed-up %.2fx (load %s)\n' \
  "$(echo "$t1 - $t0" | bc -l)" "$JOBS" "$(echo "$t2 - $t1" | bc -l)" \
  "$(echo "($t1 - $t0) / ($t2 - $t1)" | bc -l)" "$(load)"
rm -rf /dev/shm/varsmith-bench-out
hosts=$(seq -f 'm%g' 1 20 | tr '\n' ' ')
t0=$(date +%s.%N)
# shellcheck disable=SC2086
"$bin" -C "$work/ws" generate --regenerate --jobs 1 $hosts >/dev/null 2>&1
t1=$(date +%s.%N)
per_ms=$(echo "($t1 - $t0) * 1000 / 200" | bc -l)
printf 'serial: bare bwrap + the same script %.2f ms/run; varsmith --jobs 1 %.2f ms/run; overhead %.2f ms/run (load %s)\n' \
  "$bare_ms" "$per_ms" "$(echo "$per_ms - $bare_ms" | bc -l)" "$(load)"

read -r chk_s chk_kb _ _ < <(tv "$bin" -C "$work/ws" check)
echo "check: ${chk_s}s, peak RSS $((chk_kb / 1024)) MiB"
read -r noop_s noop_kb _ _ < <(tv "$bin" -C "$work/ws" generate --all)
echo "generate with nothing to do: ${noop_s}s, peak RSS $((noop_kb / 1024)) MiB"
if command -v hyperfine >/dev/null; then
  hyperfine -N -w 2 -r 10 "$bin -C $work/ws check" "$bin -C $work/ws generate --all" 2>/dev/null | grep -E 'Benchmark|Time'
fi

# The bash loop doing the same work: same script in bwrap, then `sops encrypt` per secret, as
# one command per generator; run serially (against `varsmith --jobs 1`) and through
# `xargs -P JOBS` (against `varsmith --jobs JOBS`), so each ratio compares like with like.
M=${LOOP_MACHINES:-10}
loopdir="$work/loop"; mkdir -p "$loopdir"
cat > "$work/one.sh" <<'EOT'
#!/usr/bin/env bash
# one.sh WORK ADMIN MACHINE GEN: one generator the way a hand-written loop does it.
set -euo pipefail
work=$1 admin=$2 m=$3 i=$4
r=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))[0]["publickey"])' "$work/ws/sops/machines/$m/key.json")
out=$(mktemp -d /dev/shm/loop.XXXXXX)
bwrap --unshare-all --die-with-parent --new-session --ro-bind /usr /usr --ro-bind-try /bin /bin \
  --ro-bind-try /lib /lib --ro-bind-try /lib64 /lib64 --dev /dev --proc /proc --tmpfs /tmp \
  --bind "$out" /out -- /bin/bash -euo pipefail -c \
  "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > /out/secret; echo g$i-$m > /out/public"
mkdir -p "$work/loop/$m/facts/g$i"
printf 'secret: %s\n' "$(cat "$out/secret")" > "$out/s.yaml"
sops encrypt --age "$r,$admin" "$out/s.yaml" > "$work/loop/$m/g$i.yaml"
cp "$out/public" "$work/loop/$m/facts/g$i/public"
rm -rf "$out"
EOT
chmod +x "$work/one.sh"
pairs() { for m in $(seq 1 "$M"); do for i in $(seq 1 10); do echo "m$m $i"; done; done; }
t0=$(date +%s.%N)
pairs | while read -r m i; do "$work/one.sh" "$work" "$admin" "$m" "$i"; done
t1=$(date +%s.%N)
loop_serial=$(echo "($t1 - $t0) / ($M * 10)" | bc -l)
t0=$(date +%s.%N)
pairs | xargs -P "$JOBS" -n 2 "$work/one.sh" "$work" "$admin"
t1=$(date +%s.%N)
loop_par=$(echo "($t1 - $t0) / ($M * 10)" | bc -l)
printf 'bash loop + real sops encrypt (measured on %d machines): serial %.1f ms/generator, xargs -P %d %.1f ms/generator\n' \
  "$M" "$(echo "$loop_serial * 1000" | bc -l)" "$JOBS" "$(echo "$loop_par * 1000" | bc -l)"
printf 'serial:   varsmith --jobs 1 is %.1fx faster than the serial loop\n' \
  "$(echo "$loop_serial * 1000 / $per_ms" | bc -l)"
printf 'parallel: varsmith generate --all --jobs %d is %.1fx faster than the loop under xargs -P %d\n' \
  "$JOBS" "$(echo "$loop_par * $runs / $gen_s" | bc -l)" "$JOBS"
