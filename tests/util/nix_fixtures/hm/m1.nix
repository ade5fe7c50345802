# A NixOS machine (2020 nixpkgs, sops-nix HEAD for templates) with a template, reloadUnits and a
# systemd credential for a DynamicUser service.
{ config, ... }:
let
  v = config.varsmith.generators;
in
{
  imports = [ ./common.nix ];
  networking.hostName = "m1";
  varsmith.directory = ./.;
  # pkgs.coreutils cannot be built offline: the same tools stand in for it.
  varsmith.coreutils = import ./tools.nix;
  boot.loader.grub.enable = false;
  fileSystems."/".device = "/dev/sda1";
  sops.age.keyFile = "/var/lib/sops-nix/key.txt";
  varsmith.generators.api.files.token = {
    reloadUnits = [ "nginx.service" ];
    credentials.myapp = "api-token";
  };
  varsmith.templates."app.env" = {
    content = "TOKEN=${v.api.files.token.placeholder}\nSEED=${v.seed.files.seed.placeholder}\nID=${v.api.files.id.value}\n";
    owner = "nobody";
    mode = "0440";
    restartUnits = [ "myapp.service" ];
    reloadUnits = [ "nginx.service" ];
  };
  systemd.services.myapp = {
    serviceConfig.DynamicUser = true;
    serviceConfig.ExecStart = "/bin/sh -c 'test -s \"$CREDENTIALS_DIRECTORY/api-token\"'";
  };
}
