# Generators every configuration of this test declares: a shared one and an own one.
{ lib, ... }:
{
  varsmith.generators = {
    seed = {
      share = true;
      files.seed = { };
      runtimeInputs = [ (import ./tools.nix) ];
      script = "head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \\n' > $out/seed";
    };
    api = {
      files.token = { };
      files.id.secret = false;
      runtimeInputs = [ (import ./tools.nix) ];
      script = ''
        head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > $out/token
        printf api-id > $out/id
      '';
    };
  };
}
