#!/usr/bin/env bash
# Issue "The CLI reads generator definitions from the flake" benchmark, offline with the kit of
# ../shared/nix (real 2020 nixpkgs, the real varsmith module):
#  1. a generated flake of MACHINES (100) NixOS machines x GENS (5) generators, one directory per
#     machine (`machines/<name>/default.nix`, listed with readDir): varsmith's cold
#     definitions evaluation (`generate --plan` with an empty cache: batched `nix eval`
#     chunks, wall and peak RSS of the largest process) against MACHINES separate `nix eval`
#     calls of the same attributes (the clan-style per-machine read; goal: >= 3x faster);
#  2. a no-op `generate` with a warm cache after a full generate (no nix started), then RUNS
#     no-op `generate` and keyless `check` runs (goal < 0.5 s each),
#     then one machine's own file changed (goal < 2 s: only that machine is evaluated again);
#  3. a no-op `generate` and `check` on the 1000-machine YAML fleet of benches/fleet_bench.sh
#     (goal < 0.5 s; SKIP_YAML=1 skips it: benches/noop_bench.sh measures the same, finer).
#   usage: [GENS=5] [SAMPLE=100] [RUNS=5] [SKIP_YAML=1] [KEEP=1] benches/flake_bench.sh [MACHINES=100]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}
G=${GENS:-5}
kit=${VARSMITH_NIX_KIT:-$(cd .. && pwd)/shared/nix}
[ -f "$kit/nixpkgs-2020-07.tar.gz" ] || { echo "no kit at $kit (set VARSMITH_NIX_KIT)" >&2; exit 1; }
if [ -n "${VARSMITH_BIN:-}" ]; then bin=$VARSMITH_BIN; else cargo build --release -q; bin=$PWD/target/release/varsmith; fi
work=$(mktemp -d /tmp/varsmith-flakebench.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
export NIX_CONFIG=$'experimental-features = nix-command flakes\nsubstituters =\nsandbox = false'
export XDG_CACHE_HOME=$work/cache
tv() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -n1; }

ws=$work/fleet
mkdir -p "$ws"
cp -r nix "$ws/varsmith-nix"
age-keygen -o "$work/admin.agekey" 2>/dev/null
printf 'admins:\n  bench: %s\n' "$(age-keygen -y "$work/admin.agekey")" > "$ws/varsmith.yaml"
export SOPS_AGE_KEY_FILE=$work/admin.agekey
# The layout of a real fleet: one directory per machine (`machines/<name>/default.nix`), listed
# with readDir; the generators in a shared module.
cat > "$ws/flake.nix" <<EOF
{
  inputs.nixpkgs.url = "file://$kit/nixpkgs-2020-07.tar.gz";
  outputs = { self, nixpkgs }:
    let
      varsmith = import ./varsmith-nix;
      machine = n: import "\${nixpkgs}/nixos/lib/eval-config.nix" {
        system = "x86_64-linux";
        modules = [ varsmith.nixosModules.default ./common.nix (./machines + "/\${n}") { networking.hostName = n; } ];
      };
    in { nixosConfigurations = builtins.mapAttrs (n: _: machine n) (builtins.readDir ./machines); };
}
EOF
cat > "$ws/common.nix" <<'EOF'
{ lib, ... }:
let
  tools = derivation {
    name = "bench-tools"; system = "x86_64-linux"; builder = "/bin/sh"; PATH = "/usr/bin:/bin";
    args = [ "-c" "mkdir -p $out/bin; for t in head od tr cat; do ln -s $(command -v $t) $out/bin/; done" ];
  };
  gen = i: { runtimeInputs = [ tools ]; files.secret = { }; files.public.secret = false;
    script = "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > $out/secret; echo g${toString i} > $out/public"; };
in {
  varsmith.directory = ./.;
  varsmith.coreutils = tools; # pkgs.coreutils cannot be built offline
  boot.isContainer = true;
  varsmith.generators = builtins.listToAttrs (map (i: { name = "g${toString i}"; value = gen i; }) (builtins.genList (i: i + 1) GENS_COUNT));
}
EOF
sed -i "s/GENS_COUNT/$G/" "$ws/common.nix"
for m in $(seq 1 "$N"); do
  mkdir -p "$ws/machines/m$m"
  printf '{ ... }: {\n  time.timeZone = "UTC";\n}\n' > "$ws/machines/m$m/default.nix"
done
for m in $(seq 1 "$N"); do
  mkdir -p "$ws/sops/machines/m$m"
  printf '[{"publickey": "%s", "type": "age"}]\n' "$(age-keygen 2>/dev/null | grep -o 'age1.*')" > "$ws/sops/machines/m$m/key.json"
done
(cd "$ws" && git init -q && git add flake.nix common.nix machines varsmith.yaml varsmith-nix && nix flake metadata "$ws" >/dev/null 2>&1 && git add flake.lock)
echo "== $N NixOS machines x $G generators (2020 nixpkgs, the varsmith module), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
# Warm the store copy of nixpkgs once (not part of either figure).
nix eval --json "$ws#nixosConfigurations.m1.config.networking.hostName" >/dev/null 2>&1
read -r cold_s cold_kb < <(tv "$bin" -C "$ws" generate --plan)
echo "varsmith cold definitions evaluation (generate --plan, empty cache): ${cold_s}s, peak RSS $((cold_kb / 1024)) MiB"
apply='c: builtins.mapAttrs (g: d: { inherit (d) share dependencies validation script; files = builtins.mapAttrs (f: x: { inherit (x) secret deploy owner group mode neededFor; }) d.files; runtimeInputs = map (p: p.outPath) d.runtimeInputs; }) c.config.varsmith.generators'
# Every machine up to SAMPLE (default 100), spread over the fleet; the time is scaled to N.
S=${SAMPLE:-100}; [ "$S" -le "$N" ] || S=$N
t0=$(date +%s.%N)
for k in $(seq 1 "$S"); do
  m=$(( (k - 1) * N / S + 1 ))
  nix eval --json "$ws#nixosConfigurations.m$m" --apply "$apply" >/dev/null 2>&1
done
t1=$(date +%s.%N)
per=$(echo "($t1 - $t0) * $N / $S" | bc -l)
printf '%d separate nix eval calls (one per machine; %d timed, scaled): %.1fs; varsmith is %.1fx faster\n' "$N" "$S" "$per" "$(echo "$per / $cold_s" | bc -l)"
"$bin" -C "$ws" generate --all >"$work/generate.log" 2>&1 || { tail -n 20 "$work/generate.log" >&2; exit 1; }
mkdir -p "$work/spy"
printf '#!/bin/sh\necho called >> %s/spy/calls\nexec %s "$@"\n' "$work" "$(command -v nix)" > "$work/spy/nix"
chmod +x "$work/spy/nix"
read -r noop_s noop_kb < <(PATH="$work/spy:$PATH" tv "$bin" -C "$ws" generate --all)
calls=$( [ -f "$work/spy/calls" ] && wc -l < "$work/spy/calls" || echo 0)
echo "no-op generate, warm cache: ${noop_s}s, peak RSS $((noop_kb / 1024)) MiB, nix processes started: $calls"
# The no-op goal's figures (as benches/noop_bench.sh): RUNS (5) runs of a no-op `generate` and
# of a keyless `check` (structure only), wall best and median, CPU median.
# shellcheck source=benches/noop_runs.sh
. benches/noop_runs.sh
noop_runs "$bin" "$ws" "${RUNS:-5}" "$work"
# One machine's definitions changed (a generator added in its own directory): only it is
# evaluated again (goal: under 2 s at 1000 machines).
one=m$(( (N + 1) / 2 ))
cat > "$ws/machines/$one/default.nix" <<'EOF'
{ ... }: {
  time.timeZone = "UTC";
  varsmith.generators.extra = { files.token.secret = false; script = "echo extra > $out/token"; };
}
EOF
# Nix copies a changed flake into the store once, whichever command reads it first (for a
# dirty git tree: every file, a mkdir per directory); timed apart, then varsmith's own part.
read -r copy_s _ < <(tv nix flake metadata "$ws")
read -r one_s one_kb < <(tv "$bin" -C "$ws" generate --plan)
"$bin" -C "$ws" generate --plan 2>/dev/null | grep -q "$one/extra" || { echo "the changed definition of $one is not in the plan" >&2; exit 1; }
printf "one machine's definitions changed (%s): Nix's copy of the changed flake %.2fs, then generate --plan %.2fs (peak RSS %d MiB): %.2fs in all\n" \
  "$one" "$copy_s" "$one_s" $((one_kb / 1024)) "$(echo "$copy_s + $one_s" | bc -l)"

# A shared file changed (every machine's configuration reads common.nix): `generate --plan`
# of one selected machine evaluates that machine alone (it shares no generator), against the
# whole fleet without a selection.
echo '{ ... }: { time.hardwareClockInLocalTime = false; }' > "$ws/shared-extra.nix"
git -C "$ws" add shared-extra.nix
sed -i 's|\./common.nix|./common.nix ./shared-extra.nix|' "$ws/flake.nix"
read -r copy2_s _ < <(tv nix flake metadata "$ws")
/usr/bin/time -f "%e %M" -o "$work/sel.time" "$bin" -C "$ws" generate --plan m1 >/dev/null 2>"$work/sel.err"
read -r sel_s sel_kb < "$work/sel.time"
grep -q "evaluated 1 of $N flake configurations" "$work/sel.err" || { cat "$work/sel.err" >&2; echo "m1 was not evaluated alone" >&2; exit 1; }
printf "a shared file changed: Nix's copy %.2fs, then generate --plan m1 (one of %d evaluated) %.2fs (peak RSS %d MiB)\n" \
  "$copy2_s" "$N" "$sel_s" $((sel_kb / 1024))

[ -z "${SKIP_YAML:-}" ] || exit 0
# The 1000-machine YAML fleet (as benches/fleet_bench.sh makes it, not generated: key.json
# recipients and 10 tiny generators), after one generate.
yws=$work/yaml
mkdir -p "$yws/generators"
gens=""
for i in $(seq 1 10); do
  printf 'files:\n  secret: {}\n  public: { secret: false }\nscript: |\n  echo s%s > $out/secret; echo p%s > $out/public\n' "$i" "$i" > "$yws/generators/g$i.yaml"
  gens="$gens${gens:+, }g$i"
done
{ printf 'admins:\n  bench: %s\nmachines:\n' "$(age-keygen -y "$work/admin.agekey")"
  for m in $(seq 1 1000); do printf '  m%s:\n    generators: [%s]\n' "$m" "$gens"; done; } > "$yws/varsmith.yaml"
for m in $(seq 1 1000); do
  mkdir -p "$yws/sops/machines/m$m"
  printf '[{"publickey": "%s", "type": "age"}]\n' "$(age-keygen 2>/dev/null | grep -o 'age1.*')" > "$yws/sops/machines/m$m/key.json"
done
"$bin" -C "$yws" generate --all >/dev/null 2>&1
read -r y_s y_kb < <(tv "$bin" -C "$yws" generate --all)
read -r c_s c_kb < <(tv "$bin" -C "$yws" check)
echo "1000-machine YAML fleet: no-op generate ${y_s}s (peak RSS $((y_kb / 1024)) MiB), check ${c_s}s (peak RSS $((c_kb / 1024)) MiB)"
