#!/usr/bin/env bash
# Issue 24 item 4 benchmark: a no-op `generate --all` and a keyless `check` on a YAML fleet of
# MACHINES machines x 10 generators (generated once, without the sandbox), each run RUNS times:
# wall (best, median), CPU (user+sys, median), peak RSS and the load average. CPU time is the
# figure to compare on a loaded machine. Goal: both under 0.5 s wall at 1000 machines, idle.
#   usage: [VARSMITH_BIN=path] [KEEP=dir] benches/noop_bench.sh [MACHINES=1000] [RUNS=3]
#   KEEP=dir reuses (or creates) the fleet in dir, so several builds can be compared on it.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
RUNS=${2:-3}
if [ -n "${VARSMITH_BIN:-}" ]; then
  bin=$VARSMITH_BIN
else
  cargo build --release -q
  bin=$PWD/target/release/varsmith
fi
if [ -n "${KEEP:-}" ]; then
  work=$KEEP
else
  work=$(mktemp -d /tmp/varsmith-noop-bench.XXXXXX)
  trap 'rm -rf "$work"' EXIT
fi
export HOME=$work/home
if [ ! -f "$work/ws/varsmith.yaml" ]; then
  mkdir -p "$work/ws/generators" "$work/home"
  age-keygen -o "$work/admin.agekey" 2>/dev/null
  admin=$(age-keygen -y "$work/admin.agekey")
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
    for m in $(seq 1 "$N"); do echo "  m$m:"; echo "    generators: [$gens]"; done
  } > "$work/ws/varsmith.yaml"
  for m in $(seq 1 "$N"); do
    mkdir -p "$work/ws/sops/machines/m$m"
    r=$(age-keygen 2>/dev/null | grep -o 'age1.*')
    printf '[{"publickey": "%s", "type": "age"}]\n' "$r" > "$work/ws/sops/machines/m$m/key.json"
  done
  SOPS_AGE_KEY_FILE="$work/admin.agekey" "$bin" -C "$work/ws" generate --all --no-sandbox >/dev/null
fi
echo "== no-op runs: $N machines x 10 generators, $(nproc) cores, $RUNS runs, $bin"
# shellcheck source=benches/noop_runs.sh
. benches/noop_runs.sh
noop_runs "$bin" "$work/ws" "$RUNS" "$work"
