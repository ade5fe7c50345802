#!/usr/bin/env bash
# Benchmark of `varsmith rotate-host-key` (run on demand, not in CI):
#   1. `rotate-host-key mN --dry-run` for every machine of a 1000-machine inventory
#      (one process per machine: reading the inventory, the progress and rotation records,
#      printing five steps): total wall time, and peak RSS of one run.
#   2. a stand-in rotation of 100 machines, 16 at a time (`xargs -P 16`): real `generate`
#      (the bundled openssh generator in bwrap, real age/sops encryption), `deploy` with a
#      `nixos-rebuild` stand-in that exits 0, `push-keys` over an `ssh` stand-in that runs the
#      remote script locally in a private mount namespace (tmpfs over /etc/ssh), confirm, and
#      the final deploy. Wall time and the peak RSS of the largest single rotation.
# usage: benches/rotate_bench.sh [DRYRUN_MACHINES] [ROTATE_MACHINES] [JOBS]
# BIN=path/to/varsmith uses that binary instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
R=${2:-100}
J=${3:-16}
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet
    BIN=$PWD/target/release/varsmith
fi
. scripts/deps.sh 2>/dev/null && ensure_pip_bin_on_path 2>/dev/null || true
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Deploy needs a flake: one above the workspaces (varsmith evaluates only a flake.nix beside
# varsmith.yaml; the stand-ins evaluate nothing).
echo '{ outputs = _: { }; }' > "$work/flake.nix"

# --- 1: dry runs on a 1000-machine inventory -------------------------------------------------
mkdir "$work/dry"
{
    echo "machines:"
    for i in $(seq 1 "$N"); do
        echo "  m$i: { target: root@10.0.$((i / 256 % 256)).$((i % 256)), generators: [openssh] }"
    done
} > "$work/dry/varsmith.yaml"
t0=$(date +%s.%N)
for i in $(seq 1 "$N"); do
    "$BIN" -C "$work/dry" rotate-host-key "m$i" --dry-run > /dev/null
done
t1=$(date +%s.%N)
rss=$(/usr/bin/time -v "$BIN" -C "$work/dry" rotate-host-key "m$N" --dry-run 2>&1 >/dev/null |
    sed -n 's/.*Maximum resident set size (kbytes): //p')
printf 'dry-run x%d (%d-machine inventory): wall %.2fs total, %.1f ms each; peak RSS %d KiB\n' \
    "$N" "$N" "$(echo "$t1 - $t0" | bc)" "$(echo "($t1 - $t0) * 1000 / $N" | bc -l)" "$rss"

# --- 2: stand-in rotation of R machines, J at a time -----------------------------------------
ws=$work/rot
mkdir -p "$ws" "$work/bin" "$work/home"
age-keygen -o "$work/age.key" 2> /dev/null
admin=$(sed -n 's/# public key: //p' "$work/age.key")
{
    echo "admins:"
    echo "  alice: $admin"
    echo "machines:"
    for i in $(seq 1 "$R"); do echo "  r$i: { generators: [openssh] }"; done
} > "$ws/varsmith.yaml"
ln -s "$(type -P true)" "$work/bin/nixos-rebuild"
# ssh stand-in: runs the remote command (the last argument) here, with a private /etc/ssh.
cat > "$work/bin/ssh" <<'SH'
#!/bin/sh
for last; do :; done
exec unshare --mount --propagation private sh -c 'mount -t tmpfs bench /etc/ssh && exec sh -c "$1"' sh "$last"
SH
chmod +x "$work/bin/ssh"
export PATH="$work/bin:$PATH" SOPS_AGE_KEY_FILE=$work/age.key HOME=$work/home
"$BIN" -C "$ws" generate > /dev/null 2>&1
export BIN ws work
t0=$(date +%s.%N)
seq 1 "$R" | xargs -P "$J" -I{} sh -c \
    '/usr/bin/time -v -o "$work/time.{}" "$BIN" -C "$ws" rotate-host-key r{} --no-global > "$work/out.{}" 2>&1 || { echo "r{} failed:"; tail -3 "$work/out.{}"; }'
t1=$(date +%s.%N)
done=$(grep -l "host key rotation complete" "$work"/out.* | wc -l)
peak=$(cat "$work"/time.* | sed -n 's/.*Maximum resident set size (kbytes): //p' | sort -n | tail -1)
printf 'rotation of %d machines, -P %d: %d complete, wall %.2fs; peak RSS of one rotation %d KiB\n' \
    "$R" "$J" "$done" "$(echo "$t1 - $t0" | bc)" "$peak"
