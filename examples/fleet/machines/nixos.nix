# What every NixOS machine of the example fleet has: host key, root password, WireGuard mesh
# with every other NixOS machine (peers' public keys read through `.value`), ZeroTier, the
# fleet CA and a per-host certificate, and the fleet-wide identity.
{
  config,
  lib,
  nodes,
  ...
}:
let
  vars = config.varsmith.generators;
  me = config.varsmith.machineName;
  index = {
    cinnabar = 1;
    electrum = 2;
    galena = 3;
    scheelite = 4;
  };
  # users.users.<u>.hashedPasswordFile since NixOS 23.11, passwordFile before.
  passwordFileOption =
    if lib.versionAtLeast lib.version "23.11" then "hashedPasswordFile" else "passwordFile";
  trim = lib.removeSuffix "\n";
in
{
  # Bundled generators, by name; only what differs from the bundled definition is set.
  varsmith.generators = {
    openssh = { };
    password = { };
    wireguard.files."private.key" = {
      owner = "root";
      group = "root";
      restartUnits = [ "wireguard-wg0.service" ];
    };
    zerotier-network = { };
    tls-ca = { };
    tls-cert = { };
    global-identity.files.global_ed25519 = {
      mode = "0440";
      group = "wheel";
    };
  };

  services.openssh.enable = true;

  users.mutableUsers = false;
  users.users.root.${passwordFileOption} = vars.password.files.password-hash.path;

  networking.wireguard.interfaces.wg0 = {
    ips = [ "10.100.0.${toString index.${me}}/24" ];
    listenPort = 51820;
    privateKeyFile = vars.wireguard.files."private.key".path;
    peers = lib.mapAttrsToList (name: node: {
      publicKey = trim node.config.varsmith.generators.wireguard.files."public.key".value;
      allowedIPs = [ "10.100.0.${toString index.${name}}/32" ];
      endpoint = "${name}.example.org:51820";
    }) (lib.filterAttrs (name: _: name != me) nodes);
  };

  services.zerotierone = {
    enable = true;
    joinNetworks = [ vars.zerotier-network.files.network-id.value ];
  };
  # ZeroTier is BSL-licensed (unfree in nixpkgs).
  nixpkgs.config.allowUnfreePredicate =
    pkg: (pkg.pname or (builtins.parseDrvName (pkg.name or "")).name) == "zerotierone";

  security.pki.certificateFiles = [ vars.tls-ca.files."ca.crt".path ];

  boot.loader.grub.enable = false;
  fileSystems."/".device = "/dev/disk/by-label/nixos";
  system.stateVersion = "20.09";
}
