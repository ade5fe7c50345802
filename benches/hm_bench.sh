#!/usr/bin/env bash
# Issue 25 benchmark: home-manager user generators (nix/hm-module.nix), offline with the kit of
# ../shared/nix (home-manager 26.11 + sops-nix HEAD's home-manager module + the kit's package
# stub), nothing generated (every verdict is computed: the module's full work):
#  1. reading `varsmith.definitions` of 20 users x 5 generators, homes spread across 4 machines
#     (`homeConfigurations."u<i>@m<i mod 4>"`): one batched `nix eval --apply` over all 20
#     against 20 separate `nix eval` calls (what a per-home CLI would do);
#  2. the module's share of one home's evaluation: `config.sops.secrets`, `config.sops.templates`,
#     the activation entries and the user unit of a home with the module and 5 generators, against
#     the same home with the same sops.secrets and templates written by hand (goal: < 10 %), in
#     wall time (best of RUNS) and in nix's deterministic counters (function calls, thunks).
# Each figure is the best of RUNS (default 3).
#   usage: benches/hm_bench.sh [RUNS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
kit=${VARSMITH_NIX_KIT:-$(cd .. && pwd)/shared/nix}
[ -f "$kit/home-manager-2026-08.tar.gz" ] || { echo "no kit at $kit (set VARSMITH_NIX_KIT)" >&2; exit 1; }
work=$(mktemp -d /tmp/varsmith-hmbench.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
nix=(nix --extra-experimental-features 'nix-command flakes' --option substituters '' --option sandbox false)

ws=$work/ws
mkdir -p "$ws/sops/shared/secrets"
cp -r nix "$ws/varsmith-nix"
# A shared sops file so the hand-written home has something to point at (never parsed at eval).
printf 'k: ENC[AES256_GCM,data:x,iv:x,tag:x,type:str]\nsops:\n    version: 3.11.0\n' > "$ws/sops/shared/secrets/hand.yaml"
cat > "$ws/gens.nix" <<'EOF'
# 5 generators of a user: 4 own ones (one depending on the shared one) and a shared one.
{ config, ... }:
let v = config.varsmith.generators; in
{
  varsmith.generators = {
    shared-seed = { share = true; files.seed = { }; script = "head -c 8 /dev/urandom > $out/seed"; };
    token = { files.token = { }; files.id.secret = false; script = "echo t > $out/token; echo i > $out/id"; };
    pass = { files.pass.mode = "0440"; dependencies = [ "shared-seed" ]; script = "cat $in/shared-seed/seed > $out/pass"; };
    ssh = { files.key = { }; files."key.pub".secret = false; script = "echo k > $out/key; echo p > $out/key.pub"; };
    api = { files.a = { }; files.b = { }; script = "echo a > $out/a; echo b > $out/b"; };
  };
  varsmith.templates.netrc.content = "password ${v.pass.files.pass.placeholder}\n";
}
EOF
cat > "$ws/hand.nix" <<'EOF'
# The same sops-nix wiring written by hand (no varsmith module).
{ config, ... }:
let
  f = builtins.path { name = "hand.yaml"; path = ./sops/shared/secrets/hand.yaml; };
  s = k: { sopsFile = f; key = k; format = "yaml"; };
in
{
  sops.secrets = {
    "varsmith/shared-seed/seed" = s "seed"; "varsmith/token/token" = s "token";
    "varsmith/pass/pass" = s "pass" // { mode = "0440"; }; "varsmith/ssh/key" = s "key";
    "varsmith/api/a" = s "a"; "varsmith/api/b" = s "b";
  };
  sops.templates.netrc.content = "password ${config.sops.placeholder."varsmith/pass/pass"}\n";
}
EOF
cat > "$ws/flake.nix" <<EOF
{
  inputs = {
    nixpkgs-lib = { url = "file://$kit/nixpkgs-lib-2026-06.tar.gz"; flake = false; };
    sops-nix = { url = "file://$kit/sops-nix-2026-06.tar.gz"; flake = false; };
    home-manager = { url = "file://$kit/home-manager-2026-08.tar.gz"; flake = false; };
    hm-pkgs-stub = { url = "file://$kit/hm-pkgs-stub-2026-08.tar.gz"; flake = false; };
  };
  outputs = { self, nixpkgs-lib, sops-nix, home-manager, hm-pkgs-stub }: let
    lib = import "\${nixpkgs-lib}/lib";
    hm = (import "\${home-manager}/lib" { inherit lib; }).homeManagerConfiguration;
    varsmith = import ./varsmith-nix;
    home = user: mods: hm {
      pkgs = import hm-pkgs-stub { system = "x86_64-linux"; };
      modules = [ "\${sops-nix}/modules/home-manager/sops.nix" ({ pkgs, ... }: {
        home = { username = user; homeDirectory = "/home/\${user}"; stateVersion = "25.11"; };
        sops.package = pkgs.writeText "sops-install-secrets-stub" "";
        sops.age.keyFile = "/home/\${user}/.config/sops/age/keys.txt";
      }) ] ++ mods;
    };
    users = builtins.genList (i: "u\${toString i}") 20;
  in {
    homeConfigurations = builtins.listToAttrs (lib.imap0 (i: u: {
      name = "\${u}@m\${toString (lib.mod i 4)}";
      value = home u [ varsmith.homeManagerModules.default ./gens.nix { varsmith.directory = ./.; } ];
    }) users);
    bench.module = home "solo" [ varsmith.homeManagerModules.default ./gens.nix { varsmith.directory = ./.; } ];
    bench.byHand = home "solo" [ ./hand.nix ];
  };
}
EOF
(cd "$ws" && git init -q && git add -A && "${nix[@]}" flake metadata > /dev/null 2>&1 && git add -A)

ms() { local s=$(date +%s%N); "$@" > /dev/null 2>&1 || { "$@" >&2; exit 1; }; echo $(( ($(date +%s%N) - s) / 1000000 )); }
best() { local b=; for _ in $(seq "$RUNS"); do local t; t=$(ms "$@"); [ -z "$b" ] || [ "$t" -lt "$b" ] && b=$t; done; echo "$b"; }
defs='h: builtins.mapAttrs (_: g: builtins.removeAttrs g [ "runtimeInputs" ]) h.config.varsmith.definitions.generators'

cd "$ws"
# Lay out solo's outputs as `generate` does (sops/users/solo/…, the shared one under sops/shared),
# so that the module's home wires the same six secrets as the hand-written one, with every
# verdict "up to date" (values are dummies: sops files are not parsed at evaluation).
"${nix[@]}" eval --json .#bench.module.config.varsmith.definitions.generators \
  --apply 'gs: builtins.mapAttrs (_: g: { inherit (g) fingerprint share; files = builtins.mapAttrs (_: f: f.secret) g.files; deps = g.dependencies; }) gs' \
  > "$work/defs.json" 2> /dev/null
python3 - "$work/defs.json" <<'PY'
import json, sys, hashlib, os
defs = json.load(open(sys.argv[1]))
# solo is registered (`varsmith user add solo --age …`): the module wires secrets only then.
os.makedirs("sops/users/solo", exist_ok=True)
json.dump([{"publickey": "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq", "type": "age", "source": "age"}],
          open("sops/users/solo/key.json", "w"))
runs = {g: hashlib.md5(g.encode()).hexdigest() for g in defs}
for g, d in defs.items():
    base = "sops/shared" if d["share"] else "sops/users/solo"
    secrets = sorted(f for f, s in d["files"].items() if s)
    facts = {}
    for f, s in d["files"].items():
        if not s:
            os.makedirs(f"{base}/facts/{g}", exist_ok=True)
            open(f"{base}/facts/{g}/{f}", "w").write("x\n")
            facts[f] = hashlib.sha256(b"x\n").hexdigest()
    os.makedirs(f"{base}/secrets", exist_ok=True)
    with open(f"{base}/secrets/{g}.yaml", "w") as out:
        for f in secrets:
            out.write(f"{f}: ENC[AES256_GCM,data:x,iv:x,tag:x,type:str]\n")
        out.write(f"varsmith_run_unencrypted: {runs[g]}\nsops:\n    version: 3.11.0\n")
    os.makedirs(f"{base}/state", exist_ok=True)
    json.dump({"run": runs[g], "fingerprint": d["fingerprint"], "deps": {x: runs[x] for x in d["deps"]},
               "facts": facts, "secrets": secrets, "admin_secrets": []}, open(f"{base}/state/{g}.json", "w"))
PY
git add -A
st=$("${nix[@]}" eval --json .#bench.module.config.varsmith.status 2> /dev/null)
[ "$st" = '{"api":null,"pass":null,"shared-seed":null,"ssh":null,"token":null}' ] || { echo "solo not up to date: $st" >&2; exit 1; }
batched=$(best "${nix[@]}" eval --json .#homeConfigurations --apply "hs: builtins.mapAttrs (_: $defs) hs")
separate_one() { for i in $(seq 0 19); do "${nix[@]}" eval --json ".#homeConfigurations.\"u$i@m$((i % 4))\"" --apply "$defs" > /dev/null 2>&1 || return 1; done; }
separate=$(best separate_one)
view='h: { s = h.config.sops.secrets; t = builtins.mapAttrs (_: t: t.content) h.config.sops.templates; a = builtins.attrNames h.config.home.activation; u = h.config.systemd.user.services.sops-nix.Service.ExecStart; }'
n=$("${nix[@]}" eval --json .#bench.module --apply "$view" 2> /dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["s"]))')
[ "$n" = 6 ] || { echo "the module's home wires $n sops secrets, not 6" >&2; exit 1; }
# Deterministic work counters (NIX_SHOW_STATS): wall times on a shared machine are noisy.
stats() { NIX_SHOW_STATS=1 NIX_SHOW_STATS_PATH="$work/stats.json" "${nix[@]}" eval --json "$1" --apply "$view" > /dev/null 2>&1
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["nrFunctionCalls"], d["nrThunks"], d["cpuTime"])' "$work/stats.json"; }
# cpuTime: the best of RUNS, in ms.
bestcpu() { local b=; for _ in $(seq "$RUNS"); do local c; c=$(stats "$1" | awk '{printf "%d", $3 * 1000}'); [ -z "$b" ] || [ "$c" -lt "$b" ] && b=$c; done; echo "$b"; }
read -r calls_with thunks_with _ <<< "$(stats .#bench.module)"
read -r calls_without thunks_without _ <<< "$(stats .#bench.byHand)"
cpu_with=$(bestcpu .#bench.module)
cpu_without=$(bestcpu .#bench.byHand)
with=$(best "${nix[@]}" eval --json .#bench.module --apply "$view")
without=$(best "${nix[@]}" eval --json .#bench.byHand --apply "$view")
echo "20 users x 5 generators on 4 machines, definitions:"
echo "  one batched nix eval:   ${batched} ms"
echo "  20 separate nix evals:  ${separate} ms"
echo "one home (sops.secrets, templates, activation, user unit):"
echo "  with the module:        ${with} ms"
echo "  hand-written sops-nix:  ${without} ms"
echo "  module share:           $(( (with - without) * 100 / with )) % of the wall time (noisy when the machine is shared)"
echo "  function calls:         ${calls_with} with, ${calls_without} by hand: module share $(( (calls_with - calls_without) * 100 / calls_with )) %"
echo "  thunks:                 ${thunks_with} with, ${thunks_without} by hand: module share $(( (thunks_with - thunks_without) * 100 / thunks_with )) %"
echo "  nix cpuTime:            ${cpu_with} ms with, ${cpu_without} ms by hand: module share $(( (cpu_with - cpu_without) * 100 / cpu_with )) %"
