# `varsmith.lib.flakeCheck self`: the `checks` output that makes `nix flake check` gate what a
# keyless `varsmith check` gates. `nix flake check` evaluates `nixosConfigurations` only
# lightly and never `darwinConfigurations`; this evaluates the varsmith assertions of every
# configuration that imports the module (NixOS and nix-darwin), and reports orphans:
# `sops/machines/<m>/` trees that belong to no configuration and to no machine of
# `varsmith.yaml` (as mirrored in `varsmith.admins.json`).
#
# Returns `{ <system> = { varsmith = <derivation>; }; }` for the four usual systems; the
# derivation's evaluation fails with every problem found, one per line. Only the module's own
# option `varsmith.problems` is forced, never a system's toplevel. Uses builtins only (no
# nixpkgs needed).
self:
let
  systems = [
    "x86_64-linux"
    "aarch64-linux"
    "x86_64-darwin"
    "aarch64-darwin"
  ];
  configs = (self.nixosConfigurations or { }) // (self.darwinConfigurations or { });
  withModule = builtins.filter (c: c.config ? varsmith && c.config.varsmith ? problems) (
    builtins.attrValues configs
  );
  names = map (c: c.config.varsmith.machineName) withModule;
  # The workspace: the configurations' `varsmith.directory` (a flake below the repository
  # root sets it to `./.`), else the flake itself.
  root = toString (
    if withModule == [ ] then self else (builtins.head withModule).config.varsmith.directory
  );
  readJson = p: if builtins.pathExists p then builtins.fromJSON (builtins.readFile p) else null;
  mirror = readJson "${root}/varsmith.admins.json";
  yamlMachines = if mirror == null then [ ] else mirror.machines or [ ];
  machinesDir = "${root}/sops/machines";
  dirs =
    if builtins.pathExists machinesDir then
      builtins.filter (n: (builtins.readDir machinesDir).${n} == "directory") (
        builtins.attrNames (builtins.readDir machinesDir)
      )
    else
      [ ];
  orphans = map (
    h:
    "varsmith: sops/machines/${h}/: machine ${h} has no configuration (nor an entry in varsmith.yaml) but its files are still there, encrypted to its host key; delete the directory (`git rm -r sops/machines/${h}/`) if the machine is gone"
  ) (builtins.filter (h: !(builtins.elem h names) && !(builtins.elem h yamlMachines)) dirs);
  # Shared generators' outputs no configuration uses any more.
  sharedUsed = builtins.concatLists (
    map (
      c:
      builtins.filter (g: c.config.varsmith.generators.${g}.share) (
        builtins.attrNames c.config.varsmith.generators
      )
    ) withModule
  );
  sharedIn =
    sub:
    let
      d = "${root}/sops/shared/${sub}";
    in
    if builtins.pathExists d then builtins.attrNames (builtins.readDir d) else [ ];
  strip = n: if builtins.match ".*\\.json" n != null then builtins.substring 0 (builtins.stringLength n - 5) n else n;
  sharedLeft = builtins.filter (g: !(builtins.elem g sharedUsed) && builtins.substring 0 1 g != ".") (
    map strip (sharedIn "state" ++ sharedIn "facts")
  );
  uniq = l: builtins.attrNames (builtins.listToAttrs (map (n: { name = n; value = null; }) l));
  sharedLeftovers = map (
    g:
    "varsmith: sops/shared/state/${g}.json, sops/shared/facts/${g}/: no machine uses the shared generator ${g} any more, but its outputs are still there; delete them or declare it again"
  ) (uniq sharedLeft);
  problems =
    builtins.concatLists (map (c: c.config.varsmith.problems) withModule) ++ orphans ++ sharedLeftovers;
  report = builtins.concatStringsSep "\n- " problems;
  ok =
    system:
    derivation {
      name = "varsmith-check";
      inherit system;
      builder = "/bin/sh";
      args = [
        "-c"
        "echo ${toString (builtins.length withModule)} configurations checked > $out"
      ];
    };
in
builtins.listToAttrs (
  map (system: {
    name = system;
    value.varsmith =
      if problems == [ ] then
        ok system
      else
        throw "\nFailed assertions (varsmith.lib.flakeCheck, ${toString (builtins.length problems)}):\n- ${report}";
  }) systems
)
