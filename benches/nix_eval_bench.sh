#!/usr/bin/env bash
# Issue "The Nix side" benchmark: evaluation time and peak memory (/usr/bin/time -v) of
#  1. `config.sops.secrets` of the 8-machine example flake (examples/fleet), all machines in one
#     `nix eval`, and of one NixOS machine (cinnabar) alone;
#  2. the module's own cost: one NixOS machine's toplevel (instantiated, not built) and its
#     `config.sops.secrets`, with the module and 8 generators against the same configuration
#     without it, i.e. with the same six sops.secrets written by hand (goal: the module adds
#     < 10% to the machine's evaluation).
# Offline with the kit of ../shared/nix (real 2020 nixpkgs + sops-nix, lib 26.11 + nix-darwin),
# after a real `varsmith generate --all`. Each figure is the best of RUNS (default 3).
#   usage: benches/nix_eval_bench.sh [RUNS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
kit=${VARSMITH_NIX_KIT:-$(cd .. && pwd)/shared/nix}
[ -f "$kit/nixpkgs-2020-07.tar.gz" ] || { echo "no kit at $kit (set VARSMITH_NIX_KIT)" >&2; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
cargo build -q
bin=$PWD/target/debug/varsmith
work=$(mktemp -d /tmp/varsmith-nixbench.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

# The scratch repository: nix/ and examples/fleet as in this repository, a fresh admin key.
repo=$work/repo
mkdir -p "$repo/examples/fleet" "$repo/bench"
cp -r nix "$repo/"
cp -r examples/fleet/flake.nix examples/fleet/flake.lock examples/fleet/machines "$repo/examples/fleet/"
age-keygen -o "$work/admin.agekey" 2>/dev/null
admin=$(age-keygen -y "$work/admin.agekey")
sed "s/^  demo: .*/  demo: $admin/" examples/fleet/varsmith.yaml > "$repo/examples/fleet/varsmith.yaml"
export SOPS_AGE_KEY_FILE=$work/admin.agekey
"$bin" -C "$repo/examples/fleet" generate --all > /dev/null

# The same NixOS machine with and without the module (bench/flake.nix).
cat > "$repo/bench/flake.nix" <<'EOF'
{
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    sops-nix = { url = "github:Mic92/sops-nix"; inputs.nixpkgs.follows = "nixpkgs"; };
  };
  outputs = { self, nixpkgs, sops-nix }:
    let
      machine = extra: import "${nixpkgs}/nixos/lib/eval-config.nix" {
        system = "x86_64-linux";
        modules = [
          sops-nix.nixosModules.sops
          {
            networking.hostName = "cinnabar";
            services.openssh.enable = true;
            sops.age.sshKeyPaths = [ "/etc/ssh/ssh_host_ed25519_key" ];
            boot.loader.grub.enable = false;
            fileSystems."/".device = "/dev/disk/by-label/nixos";
            system.stateVersion = "20.09";
          }
        ] ++ extra;
      };
    in {
      # What a sops-nix user writes by hand for the same six deployable secrets (so sops-nix's
      # own work, e.g. instantiating sops-install-secrets, is in both).
      nixosConfigurations.bare = machine [
        {
          sops.secrets = builtins.listToAttrs (map (s: {
            name = "varsmith/${s.g}/${s.f}";
            value = {
              sopsFile = builtins.path {
                name = "varsmith-${s.g}.yaml";
                path = ../examples/fleet + "/sops/${s.o}/secrets/${s.g}.yaml";
              };
              key = s.f;
              format = "yaml";
              mode = s.mode or "0400";
              neededForUsers = s.users or false;
            };
          }) [
            { g = "openssh"; f = "ssh_host_ed25519_key"; o = "machines/cinnabar"; mode = "0600"; }
            { g = "password"; f = "password-hash"; o = "machines/cinnabar"; users = true; }
            { g = "wireguard"; f = "private.key"; o = "machines/cinnabar"; }
            { g = "zerotier-controller"; f = "identity.secret"; o = "machines/cinnabar"; }
            { g = "tls-cert"; f = "cert.key"; o = "machines/cinnabar"; }
            { g = "global-identity"; f = "global_ed25519"; o = "shared"; mode = "0600"; }
          ]);
        }
      ];
      nixosConfigurations.module = machine [
        (import ../nix).nixosModules.default
        {
          varsmith.directory = ../examples/fleet;
          varsmith.generators = {
            openssh = { }; password = { }; wireguard = { }; zerotier-network = { };
            zerotier-controller = { }; tls-ca = { }; tls-cert = { }; global-identity = { };
          };
        }
      ];
    };
}
EOF
git -C "$repo" init -q && git -C "$repo" add -A

nixflags=(--extra-experimental-features 'nix-command flakes' --option substituters ''
  --option sandbox false --option eval-cache false --no-write-lock-file)
fleet_inputs=(--override-input nixpkgs "file://$kit/nixpkgs-2020-07.tar.gz"
  --override-input sops-nix "file://$kit/sops-nix-2021-12.tar.gz"
  --override-input nixpkgs-darwin "file://$kit/nixpkgs-lib-2026-06.tar.gz"
  --override-input sops-nix-darwin "file://$kit/sops-nix-2026-06.tar.gz"
  --override-input nix-darwin "file://$kit/nix-darwin-2026-06.tar.gz")
bench_inputs=(--override-input nixpkgs "file://$kit/nixpkgs-2020-07.tar.gz"
  --override-input sops-nix "file://$kit/sops-nix-2021-12.tar.gz")

# measure LABEL nix-eval-args… : best (lowest) wall time, CPU time (user + sys) and peak RSS over
# RUNS runs. CPU time is the figure to compare: wall time on a shared machine is mostly noise.
measure() {
  local label=$1; shift
  local best_wall="" best_cpu="" best_rss=""
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f '%e %U %S %M' -o "$work/time" nix eval "${nixflags[@]}" "$@" > "$work/out" 2> "$work/err" \
      || { cat "$work/err" >&2; exit 1; }
    read -r wall user sys rss < <(tail -1 "$work/time")
    local cpu
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')
    rss=$((rss / 1024))
    if [ -z "$best_wall" ] || awk "BEGIN { exit !($wall < $best_wall) }"; then best_wall=$wall; fi
    if [ -z "$best_cpu" ] || awk "BEGIN { exit !($cpu < $best_cpu) }"; then best_cpu=$cpu; fi
    if [ -z "$best_rss" ] || [ "$rss" -lt "$best_rss" ]; then best_rss=$rss; fi
  done
  printf '%-56s %6.2f s wall %6.2f s cpu %5d MB\n' "$label" "$best_wall" "$best_cpu" "$best_rss"
  last_cpu=$best_cpu
}

# ab ATTR_A ATTR_B nix-eval-args… : RUNS interleaved pairs of evaluations of two attributes,
# with the evaluator's own counters (NIX_SHOW_STATS: deterministic thunks, calls, allocation)
# and the mean of its cpuTime (interleaving spreads the machine's load over both).
ab() {
  local a=$1 b=$2; shift 2
  for _ in $(seq "$RUNS"); do
    for x in "$a" "$b"; do
      NIX_SHOW_STATS=1 NIX_SHOW_STATS_PATH="$work/stats.json" nix eval "${nixflags[@]}" --raw "$x" "$@" > /dev/null 2> "$work/err" \
        || { cat "$work/err" >&2; exit 1; }
      python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(sys.argv[2], d["cpuTime"], d["nrThunks"], d["nrFunctionCalls"], d["gc"]["totalBytes"])' \
        "$work/stats.json" "$x" >> "$work/ab"
    done
  done
  python3 - "$work/ab" "$a" "$b" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
def agg(x):
    r = [list(map(float, l[1:])) for l in rows if l[0] == x]
    return [sum(c) / len(c) for c in zip(*r)]
a, b = agg(sys.argv[2]), agg(sys.argv[3])
for name, i in [("cpuTime (mean)", 0), ("thunks", 1), ("function calls", 2), ("bytes allocated", 3)]:
    print(f"  {name:<18} without {a[i]:>14.2f}  with {b[i]:>14.2f}  {100 * (b[i] - a[i]) / a[i]:+6.1f}%")
PY
}

fleet=$repo/examples/fleet
echo "nix $(nix --version | awk '{print $3}'), $(nproc) cores, best of $RUNS"
measure "fleet: NixOS config.sops.secrets, 4 machines, one nix eval" --json "$fleet#nixosConfigurations" \
  "${fleet_inputs[@]}" --apply 'cs: builtins.mapAttrs (_: c: builtins.attrNames c.config.sops.secrets) cs'
secrets=$(cat "$work/out")
measure "fleet: darwin config.sops.secrets, 4 machines, one nix eval" --json "$fleet#darwinConfigurations" \
  "${fleet_inputs[@]}" --apply 'ds: builtins.mapAttrs (_: c: builtins.attrNames c.config.sops.secrets) ds'
measure "fleet: cinnabar config.sops.secrets" --json "$fleet#nixosConfigurations.cinnabar.config.sops.secrets" \
  "${fleet_inputs[@]}"
measure "fleet: cinnabar toplevel (instantiate)" --raw "$fleet#nixosConfigurations.cinnabar.config.system.build.toplevel.drvPath" \
  "${fleet_inputs[@]}"
b=$repo/bench
top=config.system.build.toplevel.drvPath
measure "machine without the module: toplevel" --raw "$b#nixosConfigurations.bare.$top" "${bench_inputs[@]}"
measure "machine with the module (8 generators): toplevel" --raw "$b#nixosConfigurations.module.$top" "${bench_inputs[@]}"
measure "machine without the module: config.sops.secrets" --json "$b#nixosConfigurations.bare.config.sops.secrets" "${bench_inputs[@]}"
measure "machine with the module: config.sops.secrets" --json "$b#nixosConfigurations.module.config.sops.secrets" "${bench_inputs[@]}"
measure "nix eval of a constant (process + flake fetch overhead)" --json "$b#nixosConfigurations" "${bench_inputs[@]}" \
  --apply '_: 1'
echo "the module's cost on one machine's toplevel, $RUNS interleaved pairs:"
ab "$b#nixosConfigurations.bare.$top" "$b#nixosConfigurations.module.$top" "${bench_inputs[@]}"
echo "sops.secrets per NixOS machine: $(echo "$secrets" | python3 -c 'import json,sys; print({k: len(v) for k, v in json.load(sys.stdin).items()})')"
