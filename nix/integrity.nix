# The module's tamper and recipient checks (issue 22): what a keyless `varsmith check` says
# about the sops files of one machine (or home-manager user: `kind`, `base`, `keyDir`), computed
# by Nix from what varsmith recorded.
#
# varsmith records, in each generator's state (`state/<g>.json`, key `files`), every sops
# file's SHA-256 and recipients as it wrote them; the admins are mirrored to
# `varsmith.admins.json` beside `varsmith.yaml`; the host's recipients are in
# `sops/machines/<m>/key.json` (and, during a host key rotation, `rotation.json`'s `old`).
# Returns a list of messages, empty when every file is as recorded and encrypted to what the
# inventory implies. Files recorded before records existed (no `files` key) and workspaces
# without the admins mirror are compared as far as the records go.
{
  lib,
  machine,
  dir,
  gens,
  manifestOf,
  secretsRel,
  # "machine" or "user" (messages); where its own outputs live; where its key.json is.
  kind ? "machine",
  base ? "sops/machines/${machine}",
  keyDir ? base,
}:
let
  abs = rel: "${dir}/${rel}";
  readJson = p: if builtins.pathExists p then builtins.fromJSON (builtins.readFile p) else null;
  trim = s: lib.removeSuffix " " (lib.removePrefix " " s);

  mirror = readJson (abs "varsmith.admins.json");
  admins = if mirror == null then null else mirror.admins;
  adminKeys = if admins == null then [ ] else map trim (builtins.attrValues admins);
  adminOf = r: lib.findFirst (n: trim admins.${n} == r) null (builtins.attrNames admins);

  hostJson = readJson (abs "${keyDir}/key.json");
  rotation = readJson (abs "${keyDir}/rotation.json");
  hostKeys =
    (if hostJson == null then [ ] else map (e: trim e.publickey) hostJson)
    ++ (if rotation == null then [ ] else map trim rotation.old);

  # Messages about one sops file of generator `gname`.
  fileProblems =
    gname: g: man: deploy:
    let
      rel = secretsRel gname g deploy;
      record = (man.files or { }).${rel} or null;
      have = map trim record.recipients;
      hosts = if deploy then hostKeys else [ ];
      want = hosts ++ adminKeys;
      who = r: if admins != null && adminOf r != null then "admin ${adminOf r}" else "${if kind == "machine" then "host" else kind} ${machine}";
      pre = "varsmith: ${kind} ${machine}: ${rel}:";
    in
    if record == null || !builtins.pathExists (abs rel) then
      [ ]
    else if builtins.hashFile "sha256" (abs rel) != record.sha256 then
      [
        "${pre} modified outside varsmith since varsmith wrote it: verify it with an identity (`varsmith check --identity KEY`), then `varsmith rekey` records it"
      ]
    else
      map (r: "${pre} recipient ${r} (${who r}) missing: run `varsmith rekey`") (
        builtins.filter (r: !(builtins.elem r have)) want
      )
      ++ lib.optionals (!g.share && admins != null) (
        map (r: "${pre} unexpected extra recipient ${r} (not in the inventory): run `varsmith rekey`") (
          builtins.filter (r: !(builtins.elem r want)) have
        )
      );

  # `state/<g>.json` and `facts/<g>/` of this machine for a generator it no longer declares
  # (shared ones are `lib.flakeCheck`'s: only it sees every machine).
  entries = sub: if builtins.pathExists (abs "${base}/${sub}") then builtins.readDir (abs "${base}/${sub}") else { };
  stateGens = map (lib.removeSuffix ".json") (
    builtins.filter (lib.hasSuffix ".json") (builtins.attrNames (entries "state"))
  );
  factGens = builtins.attrNames (entries "facts");
  own = builtins.attrNames (lib.filterAttrs (_: g: !g.share) gens);
  leftover = builtins.filter (g: !(builtins.elem g own) && !(lib.hasPrefix "." g)) (
    lib.unique (stateGens ++ factGens)
  );
  leftovers = map (
    g:
    "varsmith: ${kind} ${machine}: ${base}/state/${g}.json, ${base}/facts/${g}/: ${kind} ${machine} no longer declares generator ${g}, but its outputs are still there; delete them or declare it again"
  ) leftover;
in
leftovers
++ lib.concatLists (
  lib.mapAttrsToList (
    gname: g:
    let
      man = manifestOf gname g;
    in
    if man == null then [ ] else fileProblems gname g man true ++ fileProblems gname g man false
  ) gens
)
