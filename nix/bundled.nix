# The bundled generator library (generators/*.yaml), as Nix sees it. nix/generators.json is
# produced from the YAML (the only source of truth) and checked by tests/nix_module.rs; run
#   VARSMITH_UPDATE_NIX_GENERATORS=1 cargo test --test nix_module bundled_generators_json
# after editing generators/*.yaml. It holds only what each YAML file sets explicitly (keys in
# the module's camelCase), so the module's defaults (group "wheel" on darwin …) still apply.
let
  generators = builtins.fromJSON (builtins.readFile ./generators.json);

  # Which nixpkgs attribute provides each command the bundled scripts call.
  commandPackages = {
    ssh-keygen = "openssh";
    openssl = "openssl";
    base64 = "coreutils";
    cat = "coreutils";
    cut = "coreutils";
    od = "coreutils";
    tail = "coreutils";
    tr = "coreutils";
  };

  # The packages for a list of commands, from `pkgs`; nothing is forced until a package is.
  packagesFor =
    pkgs: commands:
    let
      attrs = builtins.foldl' (
        acc: c:
        let
          a =
            commandPackages.${c}
              or (throw "varsmith: no nixpkgs package is known for the command `${c}`: set runtimeInputs");
        in
        if builtins.elem a acc then acc else acc ++ [ a ]
      ) [ ] commands;
    in
    map (a: pkgs.${a}) attrs;
in
{
  inherit generators commandPackages packagesFor;
}
