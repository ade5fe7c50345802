# varsmith, built from Cargo.lock (no network at build time), with its runtime tools on PATH:
# bubblewrap (the sandbox, Linux), openssh (push-keys, ssh), git (staging), nix (audit), tar;
# the bundled generators' commands (openssl, coreutils) come after the user's own PATH.
{
  lib,
  stdenv,
  rustPlatform,
  makeWrapper,
  bubblewrap,
  openssh,
  git,
  nix,
  gnutar,
  openssl,
  coreutils,
}:
let
  root = ../.;
  # Only what the build reads: a change elsewhere (docs, nix/, examples) does not rebuild.
  keep = [
    "Cargo.toml"
    "Cargo.lock"
    "src"
    "crates"
    "generators"
  ];
  src = lib.cleanSourceWith {
    src = root;
    name = "varsmith-source";
    filter =
      path: _type:
      let
        rel = lib.removePrefix (toString root + "/") (toString path);
      in
      builtins.any (k: rel == k || lib.hasPrefix "${k}/" rel) keep;
  };
in
rustPlatform.buildRustPackage {
  pname = "varsmith";
  version = (builtins.fromTOML (builtins.readFile ../Cargo.toml)).package.version;
  inherit src;
  cargoLock.lockFile = ../Cargo.lock;
  nativeBuildInputs = [ makeWrapper ];
  # The test suite runs against real sops, sshd, bubblewrap and nix (scripts/test.sh); it cannot
  # run inside the build sandbox.
  doCheck = false;
  postInstall = ''
    wrapProgram $out/bin/varsmith \
      --prefix PATH : ${
        lib.makeBinPath (
          lib.optional stdenv.isLinux bubblewrap
          ++ [
            openssh
            git
            nix
            gnutar
          ]
        )
      } \
      --suffix PATH : ${
        lib.makeBinPath [
          openssl
          coreutils
        ]
      }
  '';
  meta = {
    description = "Secrets and vars generator toolkit for NixOS and nix-darwin fleets";
    license = with lib.licenses; [
      mit
      asl20
    ];
    mainProgram = "varsmith";
    platforms = lib.platforms.linux ++ lib.platforms.darwin;
  };
}
