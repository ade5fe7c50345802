#!/usr/bin/env bash
# Benchmark of `varsmith deploy` on a 1000-machine inventory (run on demand, not in CI):
#   1. `deploy --all --dry-run --no-check`       planning + printing 1000 commands
#   2. `deploy --all --no-check -j N`            with stand-ins that exit 0 at once
#      (nixos-rebuild, nh, darwin-rebuild, clan are /bin/true), so the figure is varsmith's
#      own orchestration cost plus 1000 process spawns.
#   3. `deploy --all --no-check --verify -j 16`  the same, plus each machine's verification:
#      every machine has a two-secret generator, and an `ssh` stand-in answers the probe
#      (it prints `file root wheel 400 PATH` for every path asked and `systemd-done`); darwin
#      machines deploy on their target, so a `nix` stand-in prints the flake archive JSON.
# Prints wall time, varsmith's own CPU time (children excluded), the children's CPU time and
# peak RSS. CPU times have clock-tick (10 ms) resolution.
# usage: benches/remote_bench.sh [MACHINES] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
RUNS=${2:-5}
cargo build --release --quiet
BIN=$PWD/target/release/varsmith
top=$(mktemp -d)
trap 'rm -rf "$top"' EXIT
# The workspace sits in a subdirectory of a flake (deploy needs one; varsmith evaluates only a
# flake.nix beside varsmith.yaml, and the stand-ins evaluate nothing).
echo '{ outputs = _: { }; }' > "$top/flake.nix"
work=$top/ws
mkdir "$work"

# Inventory: 5 zerotier controllers, 20 relays, 5% darwin, 5% nh, the rest nixos-rebuild.
{
    echo "machines:"
    for i in $(seq 1 "$N"); do
        echo "  m$i:"
        echo "    target: root@10.$((i / 65536 % 256)).$((i / 256 % 256)).$((i % 256))"
        if [ "$i" -le 5 ]; then echo "    tags: [zerotier-controller, zt]"
        elif [ "$i" -le 25 ]; then echo "    tags: [relay, zt]"
        else echo "    tags: [zt, vps]"; fi
        if [ $((i % 20)) -eq 0 ]; then echo "    system: aarch64-darwin"; fi
        if [ $((i % 20)) -eq 10 ]; then echo "    deploy: nh"; fi
        echo "    generators: [api]"
    done
    echo "deploy:"
    echo "  order: [zerotier-controller, relay]"
} > "$work/varsmith.yaml"

mkdir "$work/generators"
cat > "$work/generators/api.yaml" <<'YAML'
files:
  token: { mode: "0400", group: wheel }
  token2: { mode: "0400", group: wheel }
script: 'true'
YAML

mkdir "$work/bin"
for t in nixos-rebuild nh darwin-rebuild clan; do ln -s "$(type -P true)" "$work/bin/$t"; done
# ssh: answers the verify probe (the script is the last argument) and darwin's activation.
cat > "$work/bin/ssh" <<'SH'
#!/bin/sh
for last; do :; done
printf '%s\n' "$last" | sed -n 's/^check \(.*\)$/file root wheel 400 \1/p'
echo systemd-done
SH
printf '#!/bin/sh\necho "{\\"path\\":\\"/nix/store/00000000000000000000000000000000-source\\"}"\n' > "$work/bin/nix"
chmod +x "$work/bin/ssh" "$work/bin/nix"
export PATH="$work/bin:$PATH"

# Runs a command RUNS times and reports the best wall time, varsmith's own CPU time (user+sys
# of the process and its threads, read from /proc/PID/stat while it is a zombie, so the
# children it spawned are excluded), the children's CPU time, and peak RSS (GNU time).
cat > "$work/measure.py" <<'PY'
import os, sys, time
runs = int(sys.argv[1]); label = sys.argv[2]; cmd = sys.argv[3:]
tck = os.sysconf("SC_CLK_TCK")
best = None
for _ in range(runs):
    devnull = os.open(os.devnull, os.O_WRONLY)
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.execvp(cmd[0], cmd)
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    wall = time.perf_counter() - t0
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    own = (int(f[11]) + int(f[12])) / tck
    kids = (int(f[13]) + int(f[14])) / tck
    _, status, ru = os.wait4(pid, 0)
    if status != 0:
        sys.exit(f"{label}: exit status {status}")
    r = (wall, own, kids, ru.ru_maxrss)
    best = r if best is None or r[0] < best[0] else best
wall, own, kids, rss = best
import subprocess, tempfile
with tempfile.NamedTemporaryFile("r") as t:  # peak RSS from GNU time (a fork of Python inflates wait4's)
    subprocess.run(["/usr/bin/time", "-f", "%M", "-o", t.name] + cmd,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    rss = int(t.read().split()[-1])
print(f"{label:<42} wall {wall*1000:7.1f} ms   varsmith CPU {own*1000:4.0f} ms   "
      f"children CPU {kids*1000:4.0f} ms   peak RSS {rss:6d} KiB   (best of {runs})")
PY
measure() { python3 "$work/measure.py" "$RUNS" "$@"; }

echo "varsmith deploy, $N machines, $(nproc) cores"
measure "deploy --all --dry-run --no-check" "$BIN" -C "$work" deploy --all --dry-run --no-check
"$BIN" -C "$work" deploy --all --dry-run --no-check | grep -vc '^#' | sed 's/^/  commands printed: /'
if perf stat --no-inherit -e task-clock -x, -o "$work/perf" "$BIN" -C "$work" deploy --all --dry-run --no-check > /dev/null 2>&1; then
    awk -F, '/task-clock/ {printf "  dry-run task-clock (perf, single-threaded): %.1f ms\n", $1}' "$work/perf"
fi
measure "deploy --all --dry-run --json --verify" "$BIN" -C "$work" deploy --all --dry-run --json --verify --no-check
measure "deploy --all --no-check -j 2 (stand-ins)" "$BIN" -C "$work" deploy --all --no-check -j 2
measure "deploy --all --no-check -j 16 (stand-ins)" "$BIN" -C "$work" deploy --all --no-check -j 16
measure "deploy --all --no-check --verify -j 16" "$BIN" -C "$work" deploy --all --no-check --verify -j 16
"$BIN" -C "$work" deploy --all --no-check --verify -j 16 2>&1 | grep -c 'ok, verified 2 secret' | sed 's/^/  machines verified: /'
# Reference: the bare cost of spawning the same number of /bin/true from a shell loop.
true_bin=$(type -P true)
start=$(date +%s.%N)
for _ in $(seq 1 "$N"); do "$true_bin"; done
end=$(date +%s.%N)
printf '%-44s wall %6.2fs\n' "reference: $N x /bin/true from bash" "$(echo "$end - $start" | bc)"
