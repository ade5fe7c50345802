# A starter fleet with varsmith (`nix flake init -t <varsmith>`): one NixOS machine with an SSH
# host key (sops-nix decrypts with it) and a root password. varsmith reads the machine and its
# generators from the configuration below (no `varsmith machine add`). Quick start, in a git
# repository (the flake sees tracked files only):
#   varsmith init --admin you       # you: an admin age key (evaluates nothing, needs no network)
#   varsmith generate my-host       # the host key and the password, encrypted with sops
#   git add -A && nix flake check   # green: every var present and untampered
{
  inputs = {
    # Where you get varsmith from (a github:, git+https: or path: flake reference).
    varsmith.url = "github:varsmith/varsmith";
    nixpkgs.follows = "varsmith/nixpkgs";
    sops-nix.follows = "varsmith/sops-nix";
  };

  outputs =
    {
      self,
      varsmith,
      nixpkgs,
      sops-nix,
    }:
    {
      # `nix flake check` evaluates every configuration's varsmith assertions (missing, stale,
      # tampered or wrongly-encrypted vars; darwin configurations too) and orphan machine trees.
      checks = varsmith.lib.flakeCheck self;

      nixosConfigurations.my-host = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [
          varsmith.nixosModules.default
          sops-nix.nixosModules.sops
          (
            { config, ... }:
            {
              networking.hostName = "my-host";
              varsmith.directory = self;
              varsmith.generators.openssh = { };
              varsmith.generators.password = { };
              users.users.root.hashedPasswordFile = config.varsmith.generators.password.files.password-hash.path;
              services.openssh.enable = true;
              boot.loader.grub.device = "nodev";
              fileSystems."/".device = "/dev/disk/by-label/nixos";
              system.stateVersion = "26.05";
            }
          )
        ];
      };
    };
}
