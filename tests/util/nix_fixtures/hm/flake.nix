{
  inputs = {
    nixpkgs.url = "file://@KIT@/nixpkgs-2020-07.tar.gz";
    nixpkgs-lib = { url = "file://@KIT@/nixpkgs-lib-2026-06.tar.gz"; flake = false; };
    nix-darwin = { url = "file://@KIT@/nix-darwin-2026-06.tar.gz"; flake = false; };
    sops-nix = { url = "file://@KIT@/sops-nix-2026-06.tar.gz"; flake = false; };
    home-manager = { url = "file://@KIT@/home-manager-2026-08.tar.gz"; flake = false; };
    hm-pkgs-stub = { url = "file://@KIT@/hm-pkgs-stub-2026-08.tar.gz"; flake = false; };
  };
  outputs = { self, nixpkgs, nixpkgs-lib, nix-darwin, sops-nix, home-manager, hm-pkgs-stub }@inputs: let
    varsmith = import ./varsmith-nix;
    lib = import "${nixpkgs-lib}/lib";
    alice = [ varsmith.homeManagerModules.default "${sops-nix}/modules/home-manager/sops.nix" ./alice.nix ];
    # alice integrated into a NixOS or nix-darwin machine (users' pkgs: the kit's stub).
    home = user: {
      users.users.alice = user;
      home-manager.sharedModules = [ { _module.args.pkgsPath = hm-pkgs-stub; } ];
      home-manager.users.alice.imports = alice;
    };
  in {
    homeConfigurations."alice@stibnite" = (import "${home-manager}/lib" { inherit lib; }).homeManagerConfiguration {
      pkgs = import hm-pkgs-stub { system = "x86_64-linux"; };
      modules = alice ++ [ { home.username = "alice"; home.homeDirectory = "/home/alice"; } ];
    };
    nixosConfigurations.m1 = import "${nixpkgs}/nixos/lib/eval-config.nix" {
      system = "x86_64-linux";
      # The 26.11 lib: sops-nix HEAD's templates need it (config values evaluate; no toplevel).
      inherit lib;
      specialArgs = { inherit inputs; };
      modules = [ varsmith.nixosModules.default "${sops-nix}/modules/sops" ./m1.nix "${home-manager}/nixos"
        (home { isNormalUser = true; home = "/home/alice"; }) ];
    };
    darwinConfigurations.d1 = import "${nix-darwin}/eval-config.nix" {
      inherit lib;
      specialArgs = { inherit inputs; };
      modules = [ varsmith.darwinModules.default "${sops-nix}/modules/nix-darwin" ./d1.nix "${home-manager}/nix-darwin"
        (home { name = "alice"; home = "/Users/alice"; }) ];
    };
  };
}
