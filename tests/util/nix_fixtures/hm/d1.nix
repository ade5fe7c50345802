# A nix-darwin machine (on the stub package set) with the same generators and a template; it
# also sets what nix-darwin cannot do (restartUnits, reloadUnits, credentials): evaluation
# errors, never silently dropped.
{ config, lib, inputs, ... }:
let
  v = config.varsmith.generators;
in
{
  imports = [ ./common.nix ];
  networking.hostName = "d1";
  varsmith.directory = ./.;
  nixpkgs.hostPlatform = "aarch64-darwin";
  system.stateVersion = 6;
  _module.args.pkgs = lib.mkForce (import inputs.hm-pkgs-stub { system = "aarch64-darwin"; });
  sops.age.keyFile = "/var/lib/sops-nix/key.txt";
  varsmith.generators.api.files.token = {
    restartUnits = [ "myapp.service" ];
    credentials.myapp = "api-token";
  };
  varsmith.templates."app.env" = {
    content = "SEED=${v.seed.files.seed.placeholder}\n";
    reloadUnits = [ "nginx.service" ];
  };
}
