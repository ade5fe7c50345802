# varsmith's Nix side without flakes (`import ./nix`); the project's flake.nix exposes the same.
{
  # One module for NixOS and nix-darwin (darwin is detected by `options ? launchd`).
  nixosModules.default = ./module.nix;
  darwinModules.default = ./module.nix;
  # home-manager users (standalone or integrated); the same generator schema (./schema.nix).
  homeManagerModules.default = ./hm-module.nix;
  # The bundled generator library, as the module reads it (from generators/*.yaml).
  generators = (import ./bundled.nix).generators;
  # The definition fingerprint, as `varsmith check` computes it.
  fingerprint = import ./fingerprint.nix;
  # `checks = varsmith.lib.flakeCheck self;`: `nix flake check` gates every configuration
  # importing the module (darwin included) and orphan machine trees, as `varsmith check` does.
  flakeCheck = import ./flake-check.nix;
}
