# varsmith's home-manager module (`homeManagerModules.default`): the same `varsmith.generators`
# and `varsmith.templates` schema as the NixOS / nix-darwin module (nix/schema.nix), for one
# home-manager user, standalone (`homeConfigurations."<user>@<host>"`) or integrated
# (`home-manager.users.<user>`).
#
# Outputs live under `sops/users/<user>/{secrets,facts,state}/` (shared by all of the user's
# homes), or under `sops/users/<user>/homes/<home>/…` with `varsmith.perHome`; shared generators
# under `sops/shared`. Every deployed secret becomes `sops.secrets."varsmith/<g>/<f>"` of
# sops-nix's home-manager module (sopsFile, key, format, mode: that module has no owner, group
# or restartUnits, the file belongs to the user; `credentials` become `LoadCredential` of the
# user's systemd units on Linux), linked at
# `~/.config/sops-nix/secrets/varsmith/<g>/<f>` by default and decrypted by its `sops-nix` user
# unit (launchd agent on darwin). The key source follows `sops/users/<user>/key.json`
# (`varsmith user add`): `sops.age.sshKeyPaths` for a recipient derived from an SSH key,
# `sops.age.keyFile` for an age key. Missing or stale vars fail evaluation, as for machines.
#
# The user imports sops-nix's home-manager module next to this one; without it, a user with
# deployable secrets fails evaluation with an assertion that says so.
{
  config,
  options,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;

  cfg = config.varsmith;
  hasSops = options ? sops && options.sops ? secrets;
  hasTemplates = hasSops && options.sops ? templates;
  user = cfg.userName;
  dir = toString cfg.directory;
  secretsDir = "${config.xdg.configHome}/sops-nix/secrets";

  base =
    if cfg.perHome then
      "sops/users/${user}/homes/${
        if cfg.homeName == null then
          throw "varsmith: user ${user} has varsmith.perHome = true: set varsmith.homeName (e.g. \"${user}@<host>\")"
        else
          cfg.homeName
      }"
    else
      "sops/users/${user}";

  schema = import ./schema.nix {
    inherit lib config pkgs;
    scope = {
      kind = "user";
      name = user;
      platform = "home-manager";
      inherit base hasTemplates;
      keyDir = "sops/users/${user}";
      generateCmd = "varsmith generate --user ${if cfg.perHome && cfg.homeName != null then cfg.homeName else user}";
      secretPath =
        n: _:
        if hasSops && config.sops.secrets ? ${n} then config.sops.secrets.${n}.path else "${secretsDir}/${n}";
      templatePath =
        name:
        if hasTemplates && config.sops.templates ? ${name} then
          config.sops.templates.${name}.path
        else
          "${secretsDir}/rendered/${name}";
      definitionsExtra = {
        inherit (cfg) homeName perHome;
        home = config.home.homeDirectory;
      };
    };
  };
  inherit (schema)
    abs
    credentialList
    deployable
    inDeployedFile
    problems
    sopsFileOf
    sopsName
    secretsRel
    ;

  # The user's recipient as `varsmith user add` registered it (null when not registered).
  keyJson = abs "sops/users/${user}/key.json";
  registered = builtins.pathExists keyJson;
  keyEntry = if registered then builtins.head (builtins.fromJSON (builtins.readFile keyJson)) else { };
  fromSsh = (keyEntry.source or "age") == "ssh";

  sopsSecrets = builtins.listToAttrs (
    map (
      x:
      lib.nameValuePair (sopsName x.gname x.fname) {
        sopsFile = sopsFileOf x.gname x.g;
        key = x.fname;
        format = "yaml";
        inherit (x.f) mode;
      }
    ) (builtins.filter (x: builtins.pathExists (abs (secretsRel x.gname x.g true)) && inDeployedFile x) deployable)
  );
  # Problems fail the home's activation package (what `home-manager switch` and an integrated
  # system build), not `assertions`: a standalone home-manager configuration throws on any
  # `config` access while an assertion fails, and the CLI must read `varsmith.definitions`
  # before the first generate.
  allProblems =
    lib.optional (!hasSops && deployable != [ ]) "varsmith: user ${user} has deployable secrets but sops-nix's home-manager module is not imported: add sops-nix's homeManagerModules.sops to the user's modules"
    ++ lib.optional (!registered && deployable != [ ]) "varsmith: user ${user} has deployable secrets but is not registered (sops/users/${user}/key.json): run `varsmith user add ${user} --ssh-key <public key>` or `--age <recipient>`"
    ++ problems;
in
{
  options.varsmith = {
    directory = mkOption {
      type = types.path;
      description = ''
        The workspace root (where varsmith.yaml and sops/ live), usually the fleet flake's `self`.
        Only the files the home needs are copied to the store, one `builtins.path` each.
      '';
    };
    userName = mkOption {
      type = types.str;
      default = config.home.username;
      defaultText = "config.home.username";
      description = "The user's name in varsmith (sops/users/<name>).";
    };
    perHome = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Keep this home's own outputs apart from the user's other homes
        (sops/users/<user>/homes/<homeName>); by default all of a user's homes share them.
      '';
    };
    homeName = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "alice@stibnite";
      description = "This home's name (required with perHome): its flake attribute, `<user>@<host>`.";
    };
    ageKeyFile = mkOption {
      type = types.str;
      default = "${config.xdg.configHome}/sops/age/keys.txt";
      defaultText = "~/.config/sops/age/keys.txt";
      description = "`sops.age.keyFile` when the user registered an age key (`varsmith user add --age`).";
    };
    sshKeyPath = mkOption {
      type = types.str;
      default = "${config.home.homeDirectory}/.ssh/id_ed25519";
      defaultText = "~/.ssh/id_ed25519";
      description = "`sops.age.sshKeyPaths` entry when the user registered an SSH key (`varsmith user add --ssh-key`).";
    };
  }
  // schema.options;

  config = lib.mkMerge [
    {
      home.activation = lib.mkIf (allProblems != [ ]) {
        varsmith-check = lib.hm.dag.entryAnywhere (
          throw "varsmith: home of user ${user}:\n${lib.concatMapStringsSep "\n" (m: "- ${m}") allProblems}"
        );
      };
    }
    (lib.optionalAttrs hasSops {
      # Only for a registered user: else sops-nix's "No key source" assertion would hide
      # varsmith's own message (the activation check above says to run `varsmith user add`).
      sops.secrets = lib.mkIf registered sopsSecrets;
      sops.age.sshKeyPaths = lib.mkIf (registered && fromSsh) [ cfg.sshKeyPath ];
      sops.age.keyFile = lib.mkIf (registered && !fromSsh) (lib.mkDefault cfg.ageKeyFile);
    })
    {
      # systemd credentials of the user's own units (Linux; refused on darwin by the schema),
      # started after sops-nix's user unit has linked the secrets.
      systemd.user.services = lib.mkIf (registered && credentialList != [ ] && !pkgs.stdenv.hostPlatform.isDarwin) (
        lib.mkMerge (
          map (x: {
            ${lib.removeSuffix ".service" x.unit} = {
              Unit.After = [ "sops-nix.service" ];
              Unit.Wants = [ "sops-nix.service" ];
              Service.LoadCredential = [ "${x.name}:${x.path}" ];
            };
          }) credentialList
        )
      );
    }
    (lib.optionalAttrs hasTemplates {
      sops.templates = lib.mapAttrs (_: t: { inherit (t) content mode; }) cfg.templates;
    })
  ];
}
