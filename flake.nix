{
  description = "varsmith: secrets and vars generators for NixOS and nix-darwin fleets";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    sops-nix = {
      url = "github:Mic92/sops-nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    nix-darwin = {
      url = "github:nix-darwin/nix-darwin";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      sops-nix,
      nix-darwin,
    }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      nixSide = import ./nix;

      # A machine with the module and sops-nix, before any generate: definitions evaluate and
      # nothing is deployed yet (the check builds their JSON, which the CLI reads).
      exampleNixos = import "${nixpkgs}/nixos/lib/eval-config.nix" {
        system = "x86_64-linux";
        modules = [
          self.nixosModules.default
          sops-nix.nixosModules.sops
          {
            networking.hostName = "example";
            varsmith.directory = ./nix/template;
            varsmith.generators.openssh = { };
            varsmith.generators.password = { };
            boot.loader.grub.enable = false;
            fileSystems."/".device = "/dev/disk/by-label/nixos";
            system.stateVersion = "26.05";
          }
        ];
      };
      exampleDarwin = nix-darwin.lib.darwinSystem {
        modules = [
          self.darwinModules.default
          sops-nix.darwinModules.sops
          {
            networking.hostName = "example";
            varsmith.directory = ./nix/template;
            varsmith.generators.openssh = { };
            nixpkgs.hostPlatform = "aarch64-darwin";
            system.stateVersion = 6;
          }
        ];
      };
      definitionsOf = c: {
        inherit (c.config.varsmith) definitions status;
        secrets = builtins.attrNames c.config.sops.secrets;
      };
    in
    {
      nixosModules.default = nixSide.nixosModules.default;
      darwinModules.default = nixSide.darwinModules.default;
      homeManagerModules.default = nixSide.homeManagerModules.default;
      lib = {
        inherit (nixSide) generators fingerprint flakeCheck;
      };

      overlays.default = final: _prev: {
        varsmith = final.callPackage ./nix/package.nix { };
      };

      packages = forAllSystems (pkgs: rec {
        varsmith = pkgs.callPackage ./nix/package.nix { };
        default = varsmith;
      });

      apps = forAllSystems (pkgs: {
        default = {
          type = "app";
          program = "${self.packages.${pkgs.stdenv.hostPlatform.system}.default}/bin/varsmith";
        };
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.stdenv.hostPlatform.system}.default ];
          packages =
            with pkgs;
            [
              cargo
              rustc
              clippy
              rustfmt
              sops
              age
              openssh
              git
              nix
            ]
            ++ lib.optional stdenv.isLinux bubblewrap;
        };
      });

      templates.default = {
        path = ./nix/template;
        description = "A starter fleet flake with varsmith and sops-nix";
      };

      checks = forAllSystems (
        pkgs:
        {
          package = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
          module-nixos = pkgs.writeText "varsmith-module-nixos.json" (
            builtins.toJSON (definitionsOf exampleNixos)
          );
          module-darwin = pkgs.writeText "varsmith-module-darwin.json" (
            builtins.toJSON (definitionsOf exampleDarwin)
          );
        }
      );
    };
}
