# The home-manager user alice, the same module standalone (homeConfigurations."alice@stibnite")
# and integrated (home-manager.users.alice on m1 and d1): an own generator depending on the
# shared one, a template, and (on Linux, where homes have systemd user units) a credential.
{ config, lib, pkgs, ... }:
let
  v = config.varsmith.generators;
in
{
  imports = [ ./common.nix ];
  home.stateVersion = "25.11";
  varsmith.directory = ./.;
  # sops-nix's default package needs real nixpkgs (the kit has none).
  sops.package = pkgs.writeText "sops-install-secrets-stub" "";
  varsmith.generators.gpg-pass = {
    files.pass.mode = "0440";
    files.pass.credentials = lib.mkIf (!pkgs.stdenv.hostPlatform.isDarwin) { mail-sync = "gpg-pass"; };
    dependencies = [ "seed" ];
    runtimeInputs = [ (import ./tools.nix) ];
    script = ''printf '%s-alice' "$(cat $in/seed/seed)" > $out/pass'';
  };
  systemd.user.services = lib.mkIf (!pkgs.stdenv.hostPlatform.isDarwin) {
    mail-sync.Service.ExecStart = "/bin/sh -c 'cat $CREDENTIALS_DIRECTORY/gpg-pass'";
  };
  varsmith.templates.netrc = {
    content = "machine example.org password ${v.gpg-pass.files.pass.placeholder}\n";
    mode = "0600";
  };
}
