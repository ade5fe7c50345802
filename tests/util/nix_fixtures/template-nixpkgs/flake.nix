# The offline stand-in for the template's `nixpkgs` input (tests/template_walk.rs overrides
# `varsmith/nixpkgs` with this flake; the template itself is unchanged): the kit's 2020 nixpkgs
# (@KIT@ is replaced by the kit's directory), whose `lib.nixosSystem` adds ./offline.nix to
# every configuration: what the template needs of nixpkgs 26.05 that the 2020 one lacks, and
# host tools for the packages nothing can build offline.
{
  inputs.upstream.url = "file://@KIT@/nixpkgs-2020-07.tar.gz";
  outputs =
    { self, upstream }:
    upstream
    // {
      lib = upstream.lib.extend (
        final: prev: {
          nixosSystem = args: prev.nixosSystem (args // { modules = args.modules ++ [ ./offline.nix ]; });
        }
      );
    };
}
