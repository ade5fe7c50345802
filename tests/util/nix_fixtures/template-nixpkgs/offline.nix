# Added to every configuration by the stand-in nixpkgs (./flake.nix), never by the template.
{ lib, ... }:
let
  # No nixpkgs package builds offline: the host's tools the bundled generators and varsmith's
  # coreutils step call, linked into one derivation that needs no download.
  tools = derivation {
    name = "varsmith-template-tools";
    system = "x86_64-linux";
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    args = [
      "-c"
      "mkdir -p $out/bin; for t in ssh-keygen openssl od tr cut head tail base64 mktemp rm cat cp printf touch sha256sum; do p=$(command -v $t) && ln -s $p $out/bin/ || true; done"
    ];
  };
in
{
  # Every generator's runtime inputs are the host tools (a module added to the submodule type).
  options.varsmith.generators = lib.mkOption {
    type = lib.types.attrsOf (lib.types.submodule { config.runtimeInputs = lib.mkForce [ tools ]; });
  };
  # `users.users.<u>.hashedPasswordFile` (NixOS 23.11) is the 2020 `passwordFile`.
  options.users.users = lib.mkOption {
    type = lib.types.loaOf (
      lib.types.submodule (
        { config, ... }:
        {
          options.hashedPasswordFile = lib.mkOption {
            type = lib.types.nullOr lib.types.str;
            default = null;
          };
          config.passwordFile = lib.mkIf (config.hashedPasswordFile != null) config.hashedPasswordFile;
        }
      )
    );
  };
  config.varsmith.coreutils = tools;
}
