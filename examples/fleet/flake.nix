# The example fleet as a flake: the seed's 8 machines (cinnabar is the ZeroTier controller;
# electrum, galena, scheelite NixOS peers; stibnite, blackphos, rosegold, argentum nix-darwin
# peers). Its generators are the same as in varsmith.yaml, so `varsmith generate --all` here
# produces exactly the vars these configurations check and use:
#   varsmith generate --all && nix flake check
#
# The module comes from this repository (../../nix). In your own fleet flake, take it from
# an input instead:
#   inputs.varsmith.url = "<where you get varsmith>";   # e.g. a github: or git+https: URL
#   … modules = [ varsmith.nixosModules.default sops-nix.nixosModules.sops … ];
{
  description = "varsmith example fleet: 4 NixOS and 4 nix-darwin machines on one ZeroTier network";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    # Separate names for the darwin side, following the NixOS ones by default (pin them apart
    # when you need to; the offline tests do).
    nixpkgs-darwin.follows = "nixpkgs";
    sops-nix = {
      url = "github:Mic92/sops-nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    sops-nix-darwin.follows = "sops-nix";
    nix-darwin = {
      url = "github:nix-darwin/nix-darwin";
      inputs.nixpkgs.follows = "nixpkgs-darwin";
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      nixpkgs-darwin,
      sops-nix,
      sops-nix-darwin,
      nix-darwin,
    }:
    let
      varsmith = import ../../nix;

      # eval-config.nix rather than lib.nixosSystem: it works on any nixpkgs, including older
      # ones whose nixosSystem needs inputs' lastModifiedDate.
      nixos =
        name: system: extra:
        import "${nixpkgs}/nixos/lib/eval-config.nix" {
          inherit system;
          specialArgs = {
            nodes = self.nixosConfigurations;
          };
          modules = [
            varsmith.nixosModules.default
            sops-nix.nixosModules.sops
            ./machines/nixos.nix
            {
              networking.hostName = name;
              varsmith.directory = ./.; # the workspace: this flake's directory (`self` for a flake at a repository root)
            }
            extra
          ];
        };

      darwin =
        name:
        nix-darwin.lib.darwinSystem {
          modules = [
            varsmith.darwinModules.default
            sops-nix-darwin.darwinModules.sops
            ./machines/darwin.nix
            {
              networking.hostName = name;
              varsmith.directory = ./.; # the workspace: this flake's directory (`self` for a flake at a repository root)
            }
          ];
        };
    in
    {
      # `nix flake check` gates every configuration below, darwin included, as `varsmith check`
      # does without keys (your fleet: `checks = varsmith.lib.flakeCheck self;`).
      checks = varsmith.flakeCheck self;

      nixosConfigurations = {
        cinnabar = nixos "cinnabar" "x86_64-linux" {
          varsmith.deploy = {
            targetHost = "root@cinnabar.example.org";
            tags = [
              "vps"
              "zerotier-controller"
            ];
          };
          varsmith.generators.zerotier-controller = { };
        };
        electrum = nixos "electrum" "x86_64-linux" { varsmith.generators.zerotier-member = { }; };
        galena = nixos "galena" "x86_64-linux" { varsmith.generators.zerotier-member = { }; };
        scheelite = nixos "scheelite" "aarch64-linux" { varsmith.generators.zerotier-member = { }; };
      };

      darwinConfigurations = {
        stibnite = darwin "stibnite";
        blackphos = darwin "blackphos";
        rosegold = darwin "rosegold";
        argentum = darwin "argentum";
      };
    };
}
