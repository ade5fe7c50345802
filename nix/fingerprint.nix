# The definition fingerprint, computed in pure Nix exactly as the CLI computes it
# (src/workspace/generator.rs `own_fingerprint`, src/graph.rs `Graph::build`):
#   own  = sha256 hex of builtins.toJSON { dependencies; files.<f> = { deploy; secret; };
#                                           script; share; validation; }
#   node = sha256 hex of (own + the dependencies' node fingerprints, in declared order)
# Owner, group, mode, neededFor, prompts and runtimeInputs are deliberately not part of it:
# changing a mode must not rotate a key.
{ lib }:
rec {
  # The generator's text script (a path is read).
  scriptText = g: if builtins.isPath g.script then builtins.readFile g.script else g.script;

  # Files as the CLI sees them: a persisted prompt without a file of its name becomes a
  # secret, admins-only (deploy = false) output of that name.
  effectiveFiles =
    g:
    lib.mapAttrs (_: p: { secret = true; deploy = false; }) (
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
