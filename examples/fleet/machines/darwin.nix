# What every nix-darwin machine of the example fleet has: host key (sops-nix decrypts with it),
# ZeroTier membership and the fleet-wide identity.
{ config, ... }:
let
  vars = config.varsmith.generators;
in
{
  varsmith.generators = {
    openssh = { };
    zerotier-network = { };
    zerotier-member = { };
    global-identity = { };
  };

  services.openssh.enable = true;
  environment.etc."zerotier/network-id".text = vars.zerotier-network.files.network-id.value;

  nixpkgs.hostPlatform = "aarch64-darwin";
  system.stateVersion = 6;
}
