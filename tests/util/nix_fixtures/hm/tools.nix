# The host's tools, linked into one offline derivation (the kit builds no nixpkgs package).
derivation {
  name = "varsmith-test-tools";
  system = "x86_64-linux";
  builder = "/bin/sh";
  PATH = "/usr/bin:/bin";
  args = [ "-c" "mkdir -p $out/bin; for t in od tr head cat printf; do ln -s $(command -v $t) $out/bin/; done" ];
}
