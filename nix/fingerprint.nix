# The definition fingerprint, computed in pure Nix exactly as the CLI computes it
# (src/workspace/generator.rs `own_fingerprint`, src/plan/graph.rs `Graph::build`):
#   own  = sha256 hex of builtins.toJSON { dependencies; files.<f> = { deploy; secret; };
#                                           script; share; validation; }
#   node = sha256 hex of (own + the dependencies' node fingerprints, in declared order)
# Owner, group, mode, neededFor, prompts and runtimeInputs are deliberately not part of it:
# changing a mode must not rotate a key. The node fingerprint is recorded in each manifest
# but no longer decides staleness (manifest format 2: `validationHash`/`shapeHash` below);
# for a format-1 manifest a difference is only a notice.
{ lib }:
rec {
  # The generator's text script (a path is read).
  scriptText = g: if builtins.isPath g.script then builtins.readFile g.script else g.script;

  # Files as the CLI sees them: a persisted prompt without a file of its name becomes a
  # secret, deployed output of that name (clan: `files.<prompt> = { }`; the module declares
  # it, so this only matters for definitions built elsewhere).
  effectiveFiles =
    g:
    lib.mapAttrs (_: p: { secret = true; deploy = true; }) (
      lib.filterAttrs (n: p: p.persist && !(g.files ? ${n})) g.prompts
    )
    // g.files;

  ownJSON =
    g:
    builtins.toJSON {
      inherit (g) dependencies share validation;
      files = lib.mapAttrs (_: f: { inherit (f) deploy secret; }) (effectiveFiles g);
      script = scriptText g;
    };

  own = g: builtins.hashString "sha256" (ownJSON g);

  # Every store path replaced by /nix/store/* (src/workspace/generator.rs
  # `mask_store_paths`): a nixpkgs bump changes none of the hashes below.
  maskStorePaths =
    s:
    lib.concatMapStrings (x: if builtins.isList x then "/nix/store/*" else x) (
      builtins.split "/nix/store/[0-9a-z]{32}-[A-Za-z0-9+._?=-]*" s
    );

  # What makes outputs stale, as clan (manifest format 2; src/plan/graph.rs
  # `definition_status`): the validation (clan's validationHash) and the files with their
  # secret/deploy. The script is only a notice.
  validationHash =
    g:
    if g.validation == null then
      null
    else
      builtins.hashString "sha256" (maskStorePaths (builtins.toJSON g.validation));
  shapeHash =
    g:
    builtins.hashString "sha256" (
      builtins.toJSON (lib.mapAttrs (_: f: { inherit (f) deploy secret; }) (effectiveFiles g))
    );
  scriptHash = g: builtins.hashString "sha256" (maskStorePaths (scriptText g));

  # Node fingerprints of every generator in `gens` (an attrset of evaluated generators);
  # dependencies not in `gens` are skipped, as the CLI skips them (they are reported apart).
  nodes =
    gens:
    let
      fps = lib.mapAttrs (
        _: g:
        builtins.hashString "sha256" (
          own g + lib.concatStrings (map (d: fps.${d}) (builtins.filter (d: gens ? ${d}) g.dependencies))
        )
      ) gens;
    in
    fps;
}
