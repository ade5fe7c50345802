# The generator schema (clan's vars) and everything derived from it, shared by module.nix
# (NixOS, nix-darwin) and hm-module.nix (home-manager): the options `generators`, `templates`,
# `pkgs`, `definitions` and `status`, the missing/stale verdicts (as `varsmith check`), and the
# lists the modules wire into sops-nix. One owner's view: a machine or a home-manager user.
#
# `scope` says whose:
#   kind, name        "machine" "cinnabar" / "user" "alice" (messages and definitions)
#   platform          "nixos", "darwin" or "home-manager"
#   base              where its own (non-shared) outputs live: "sops/machines/<m>", "sops/users/<u>"
#   generateCmd       the command that repairs it (`varsmith generate cinnabar`)
#   secretPath        sops name -> file config -> where the host finds a deployed secret
#   templatePath      template name -> where the host finds the rendered template
#   definitionsExtra  attributes added to `definitions` (deploy settings)
#
# Evaluates on the 2020 nixpkgs lib and on a current one: no `types.anything`, no `mkIf`
# around a submodule's whole config.
{
  lib,
  config,
  pkgs,
  scope,
}:
let
  inherit (lib) mkOption types;

  cfg = config.varsmith;
  isDarwin = scope.platform == "darwin";
  isHome = scope.platform == "home-manager";
  inherit (scope) hasTemplates;

  bundled = import ./bundled.nix;
  fp = import ./fingerprint.nix { inherit lib; };

  machine = scope.name;
  dir = toString cfg.directory;
  inherit (scope) generateCmd;
  # Store path names allow [A-Za-z0-9+-._?=]; generator and file names may also hold '@'.
  storeName = builtins.replaceStrings [ "@" ] [ "_" ];

  # Where a generator's outputs live, relative to the workspace.
  baseOf = g: if g.share then "sops/shared" else scope.base;
  secretsRel = gname: g: deploy: "${baseOf g}/secrets/${if deploy then "" else "admin/"}${gname}.yaml";
  factRel = gname: g: fname: "${baseOf g}/facts/${gname}/${fname}";
  abs = rel: "${dir}/${rel}";
  sopsName = gname: fname: "varsmith/${gname}/${fname}";
  # sops-nix's `sops.placeholder.<name>` (modules/sops/templates), computed here so that it never
  # depends on whether a template exists.
  placeholderOf =
    gname: fname: "<SOPS:${builtins.hashString "sha256" (sopsName gname fname)}:PLACEHOLDER>";
  # A systemd unit name as a `systemd.services` attribute.
  serviceName = lib.removeSuffix ".service";

  # One small store path per sops file (never the whole workspace source).
  sopsFileOf =
    gname: g:
    builtins.path {
      name = storeName "varsmith-${gname}.yaml";
      path = abs (secretsRel gname g true);
    };

  missingMsg =
    what: rel: "varsmith: ${what} does not exist yet (${rel} in the workspace): run `${generateCmd}`";

  # A JSON-able value (validation): the 2020 lib has no types.anything.
  jsonType = lib.mkOptionType {
    name = "json";
    description = "JSON-able value (attribute set, list, string, integer, bool or null)";
    check = x: !(builtins.isFunction x);
    merge = lib.options.mergeEqualOption;
  };

  pkgsType = lib.mkOptionType {
    name = "pkgs";
    description = "nixpkgs package set";
    check = builtins.isAttrs;
    merge = lib.options.mergeOneOption;
  };

  promptModule =
    { name, ... }:
    {
      options = {
        name = mkOption {
          type = types.str;
          default = name;
          readOnly = true;
          description = "The prompt's name (its file under $prompts).";
        };
        description = mkOption {
          type = types.str;
          default = name;
          description = "The question shown to the user.";
        };
        type = mkOption {
          type = types.enum [
            "line"
            "hidden"
            "multiline"
            "multiline-hidden"
          ];
          default = "line";
          description = "How the prompt is asked.";
        };
        persist = mkOption {
          type = types.bool;
          default = false;
          description = ''
            Store the answer as a file of the same name (clan: `files.<prompt> = { }`: secret and
            deployed unless declared otherwise) and reuse it. The answer is at `$out/<prompt>`
            before the script runs; the script may replace it.
          '';
        };
        # clan's display module (modules/clan/vars/display.nix).
        display = {
          group = mkOption {
            type = types.nullOr types.str;
            default = null;
            description = "A heading the prompt is shown under.";
          };
          label = mkOption {
            type = types.nullOr types.str;
            default = null;
            description = "Shown instead of the prompt's name.";
          };
          helperText = mkOption {
            type = types.nullOr types.str;
            default = null;
            description = "A hint shown with the question.";
          };
          required = mkOption {
            type = types.bool;
            default = true;
            description = "Whether an empty answer is refused.";
          };
        };
      };
    };

  fileModule =
    gname: g:
    { name, config, ... }:
    let
      fname = name;
      f = config;
      fact = factRel gname g fname;
      label = "${machine}/${gname}/${fname}";
      sopsPath = scope.secretPath (sopsName gname fname) f;
    in
    {
      options = {
        name = mkOption {
          type = types.str;
          default = fname;
          readOnly = true;
          description = "The file's name.";
        };
        generatorName = mkOption {
          type = types.str;
          default = gname;
          readOnly = true;
          description = "The generator's name.";
        };
        secret = mkOption {
          type = types.bool;
          default = true;
          description = "Encrypted into the sops file (true) or stored as a public fact (false).";
        };
        deploy = mkOption {
          type = types.bool;
          default = true;
          description = "Deployed to the host (false: encrypted to the admins only).";
        };
        owner = mkOption {
          type = types.str;
          default = "root";
          description = "Owner of the file on the host.";
        };
        group = mkOption {
          type = types.str;
          default = if isDarwin then "wheel" else "root";
          defaultText = ''"root" (NixOS), "wheel" (nix-darwin)'';
          description = "Group of the file on the host.";
        };
        mode = mkOption {
          type = types.strMatching "0?[0-7]{3}";
          default = "0400";
          description = "Mode of the file on the host (octal, no setuid/setgid/sticky bits).";
        };
        neededFor = mkOption {
          type = types.enum [
            "partitioning"
            "activation"
            "users"
            "services"
          ];
          default = "services";
          description = "When the host needs the secret.";
        };
        restartUnits = mkOption {
          type = types.listOf types.str;
          default = [ ];
          description = ''
            systemd units restarted when the secret changes (NixOS only: on nix-darwin a non-empty
            list is an evaluation error, never silently dropped).
          '';
        };
        reloadUnits = mkOption {
          type = types.listOf types.str;
          default = [ ];
          description = ''
            systemd units reloaded when the secret changes (NixOS only, as restartUnits; sops-nix's
            `reloadUnits`).
          '';
        };
        credentials = mkOption {
          type = types.attrsOf types.str;
          default = { };
          example = {
            "myapp" = "token";
          };
          description = ''
            systemd credentials (NixOS, and a home-manager home on Linux):
            `{ "<unit>" = "<credential name>"; }` adds `LoadCredential=<credential name>:<path>`
            to `systemd.services.<unit>` (a trailing `.service` is dropped) and restarts the unit
            when the secret changes. The file stays as declared (root-owned 0400 by default); the
            service, even with `DynamicUser`, reads it at `$CREDENTIALS_DIRECTORY/<credential name>`.
            In a home: `systemd.user.services.<unit>.Service.LoadCredential` (systemd 252 or
            later), ordered after sops-nix's `sops-nix.service` user unit; sops-nix's home-manager
            module restarts no unit when the secret changes. Only for deployed secrets.
          '';
        };
        share = mkOption {
          type = types.bool;
          readOnly = true;
          default = g.share;
          defaultText = "the generator's share";
          description = "Mirror of the generator's `share` (as clan's).";
        };
        flakePath = mkOption {
          type = types.nullOr types.str;
          readOnly = true;
          default = if f.secret then null else abs fact;
          defaultText = "the fact's path in the workspace (null for secrets)";
          description = "Where the public file lives in the workspace (clan's flakePath).";
        };
        placeholder = mkOption {
          type = types.str;
          readOnly = true;
          defaultText = "set by varsmith";
          description = ''
            sops-nix's placeholder for this secret (`<SOPS:<sha256 of varsmith/<g>/<f>>:PLACEHOLDER>`),
            for `varsmith.templates.<name>.content`: the store holds the placeholder, the rendered
            file on the host holds the secret. Only for deployed secrets with neededFor "services"
            or "users" (a public file's `.value` can be used directly).
          '';
          default =
            if f.secret && f.deploy && builtins.elem f.neededFor [ "services" "users" ] then
              placeholderOf gname fname
            else
              throw "varsmith: ${label} has no placeholder: only deployed secrets with neededFor \"services\" or \"users\" are rendered into templates";
        };
        path = mkOption {
          type = types.str;
          readOnly = true;
          defaultText = "set by varsmith";
          description = ''
            Where the host finds the file: the sops-nix path for secrets
            (/run/secrets/varsmith/<g>/<f>, /run/secrets-for-users/… for users),
            /var/lib/varsmith/activation/<g>/<f> for activation, /run/partitioning-secrets/<g>/<f>
            for partitioning, and a store path of the fact for public files.
          '';
          default =
            if !f.secret then
              (
                if builtins.pathExists (abs fact) then
                  "${builtins.path {
                    name = storeName "varsmith-${gname}-${fname}";
                    path = abs fact;
                  }}"
                else
                  throw (missingMsg "the fact ${label}" fact)
              )
            else if !f.deploy then
              throw "varsmith: ${label} has deploy = false: it is encrypted to the admins only and has no path on the host"
            else if f.neededFor == "activation" then
              "/var/lib/varsmith/activation/${gname}/${fname}"
            else if f.neededFor == "partitioning" then
              "/run/partitioning-secrets/${gname}/${fname}"
            else
              sopsPath;
        };
        value = mkOption {
          type = types.str;
          defaultText = "set by varsmith";
          description = ''
            The content of a public file (throws for secrets, which never enter Nix). As clan's:
            the generated fact at normal priority, else a throwing option default, so
            `lib.mkDefault` gives a fallback for a file not generated yet.
          '';
        };
        exists = mkOption {
          type = types.bool;
          readOnly = true;
          defaultText = "set by varsmith";
          description = "Whether the file has been generated.";
          default = builtins.pathExists (abs (if f.secret then secretsRel gname g f.deploy else fact));
        };
      };
      config.value =
        if f.secret then
          lib.mkOptionDefault (
            throw "varsmith: ${label} is a secret: its value is never read into Nix (it would end up in the world-readable store); use `.path` on the host instead"
          )
        else if builtins.pathExists (abs fact) then
          builtins.readFile (abs fact)
        else
          lib.mkOptionDefault (throw (missingMsg "the fact ${label}" fact));
    };

  # A template: a file whose content embeds secrets through their `.placeholder`; sops-nix's
  # `sops.templates.<name>` renders it at activation (the store holds placeholders only).
  templateModule =
    { name, config, ... }:
    {
      options = {
        name = mkOption {
          type = types.str;
          default = name;
          readOnly = true;
          description = "The template's name (also its `sops.templates` name).";
        };
        content = mkOption {
          type = types.lines;
          description = ''
            The file's content, with `config.varsmith.generators.<g>.files.<f>.placeholder` where
            a secret goes. It is written to the world-readable store: never put a value here.
          '';
        };
        owner = mkOption {
          type = types.str;
          default = "root";
          description = "Owner of the rendered file.";
        };
        group = mkOption {
          type = types.str;
          default = if isDarwin then "wheel" else "root";
          defaultText = ''"root" (NixOS), "wheel" (nix-darwin)'';
          description = "Group of the rendered file.";
        };
        mode = mkOption {
          type = types.strMatching "0?[0-7]{3}";
          default = "0400";
          description = "Mode of the rendered file (octal).";
        };
        restartUnits = mkOption {
          type = types.listOf types.str;
          default = [ ];
          description = "systemd units restarted when the rendered file changes (NixOS only).";
        };
        reloadUnits = mkOption {
          type = types.listOf types.str;
          default = [ ];
          description = "systemd units reloaded when the rendered file changes (NixOS only).";
        };
        path = mkOption {
          type = types.str;
          readOnly = true;
          defaultText = "set by varsmith";
          description = "Where the host finds the rendered file (sops-nix's, /run/secrets/rendered/<name> by default).";
          default = scope.templatePath name;
        };
      };
    };

  generatorModule =
    {
      name,
      config,
      options,
      ...
    }:
    let
      gname = name;
      g = config;
      b = bundled.generators.${gname} or null;
      # As clan's: a definition that sets its own `script` replaces the bundled one of the
      # same name whole (files, prompts, inputs), instead of merging with it.
      isBundled = b != null && !(options.script.highestPrio < 1000);
      def = lib.mkDefault;
    in
    {
      options = {
        name = mkOption {
          type = types.str;
          default = gname;
          readOnly = true;
          description = "The generator's name.";
        };
        description = mkOption {
          type = types.str;
          default = "";
          description = "Human description.";
        };
        share = mkOption {
          type = types.bool;
          default = false;
          description = "One value set for every machine that declares it (stored under sops/shared).";
        };
        dependencies = mkOption {
          type = types.listOf types.str;
          default = [ ];
          description = "Generators whose outputs appear at $in/<dep>/<file> (declare them on the machine too).";
        };
        runtimeInputs = mkOption {
          type = types.listOf types.package;
          default = [ ];
          description = "Packages whose bin/ directories are the script's PATH.";
        };
        prompts = mkOption {
          type = types.attrsOf (types.submodule promptModule);
          default = { };
          description = "Prompts asked before any script runs.";
        };
        files = mkOption {
          type = types.attrsOf (types.submodule (fileModule gname g));
          default = { };
          description = "The generator's output files.";
        };
        validation = mkOption {
          type = types.nullOr jsonType;
          default = null;
          description = "Free-form JSON-able value; any change regenerates.";
        };
        script = mkOption {
          type = types.either types.str types.path;
          default = "";
          description = "The bash script (run with `bash -euo pipefail`; writes $out/<file>); empty for a prompt-only generator.";
        };
        validationHash = mkOption {
          type = types.nullOr types.str;
          readOnly = true;
          default = fp.validationHash g;
          defaultText = "hash of validation (store paths masked)";
          description = "clan's validationHash: a change regenerates.";
        };
      };
      # A bundled generator's definition, as defaults (each option on its own: never a mkIf
      # around the whole config).
      config = {
        description = lib.mkIf (isBundled && b ? description) (def b.description);
        share = lib.mkIf (isBundled && b ? share) (def b.share);
        dependencies = lib.mkIf (isBundled && b ? dependencies) (def b.dependencies);
        validation = lib.mkIf (isBundled && b ? validation) (def b.validation);
        script = lib.mkIf (b != null) (def b.script);
        runtimeInputs = lib.mkIf (isBundled && b ? runtimeInputs) (
          def (bundled.packagesFor cfg.pkgs b.runtimeInputs)
        );
        prompts = lib.mapAttrs (_: p: lib.mapAttrs (_: def) (if p == null then { } else p)) (
          if isBundled then b.prompts or { } else { }
        );
        files = lib.mkMerge [
          (lib.mapAttrs (_: f: lib.mapAttrs (_: def) (if f == null then { } else f)) (
            if isBundled then b.files or { } else { }
          ))
          # clan: a persisted prompt is a file of the same name.
          (lib.mapAttrs (_: _: { }) (lib.filterAttrs (_: p: p.persist) g.prompts))
        ];
      };
    };

  gens = cfg.generators;
  nodeFps = fp.nodes gens;

  # Reads a generator's manifest (null when it has none).
  manifestOf =
    gname: g:
    let
      p = abs "${baseOf g}/state/${gname}.json";
    in
    if builtins.pathExists p then builtins.fromJSON (builtins.readFile p) else null;

  # The run id recorded in a sops file's plaintext `varsmith_run_unencrypted:` line.
  runIdOf =
    path:
    let
      needle = "varsmith_run_unencrypted: ";
      lines = builtins.filter (lib.hasPrefix needle) (lib.splitString "\n" (builtins.readFile path));
      raw = lib.removePrefix needle (builtins.head lines);
      trimmed = builtins.head (builtins.match "[[:space:]\"]*([^[:space:]\"]*)[[:space:]\"]*" raw);
    in
    if lines == [ ] then null else trimmed;

  # What `varsmith check` says about a generator of this machine (src/plan/graph.rs `status`):
  # null when up to date, else the reason.
  statusOf =
    gname: g:
    let
      man = manifestOf gname g;
      # An older varsmith (manifest format 1) stored a persisted prompt admins-only: it stays
      # where it is until regenerated (src/plan/graph.rs `secrets_status`).
      moved = f: (man.format or 1) < 2 && (g.prompts.${f}.persist or false);
      files = lib.filterAttrs (f: _: !(moved f)) (fp.effectiveFiles g);
      names = pred: lib.sort builtins.lessThan (builtins.attrNames (lib.filterAttrs (_: pred) files));
      checkFact =
        fname:
        let
          rel = factRel gname g fname;
        in
        if !builtins.pathExists (abs rel) then
          "missing: fact ${fname}"
        else if (man.facts.${fname} or null) != builtins.hashFile "sha256" (abs rel) then
          "torn: fact ${fname} is not the one of run ${man.run}"
        else
          null;
      checkSecrets =
        wanted: recorded: rel:
        if wanted == [ ] then
          null
        else if wanted != lib.sort builtins.lessThan (builtins.filter (f: !(moved f)) recorded) then
          "definition changed"
        else if !builtins.pathExists (abs rel) then
          "missing: secrets file ${rel}"
        else if runIdOf (abs rel) != man.run then
          "torn: ${rel} is not the one of run ${man.run}"
        else
          null;
      # A dependency this machine (or user) does not declare is a shared generator of another
      # machine (clan's rule; the CLI checks that one exists).
      depShared = d: if gens ? ${d} then gens.${d}.share else true;
      checkDep =
        d:
        let
          dm = manifestOf d (gens.${d} or { share = true; });
        in
        if dm != null && (man.deps.${d} or null) == dm.run then
          null
        else
          "older than its dependency ${if depShared d then "shared" else machine}/${d}";
      checks =
        map checkFact (names (f: !f.secret))
        ++ [
          (checkSecrets (names (f: f.secret && f.deploy)) (man.secrets or [ ]) (secretsRel gname g true))
          (checkSecrets (names (f: f.secret && !f.deploy)) (man.admin_secrets or [ ]) (
            secretsRel gname g false
          ))
        ]
        ++ map checkDep g.dependencies;
    in
    if man == null then
      "missing: never generated"
    else if
      (man.format or 1) >= 2
      && ((man.validation or null) != fp.validationHash g || (man.shape or null) != fp.shapeHash g)
    then
      "definition changed"
    else
      lib.findFirst (x: x != null) null checks;

  # Generators whose outputs the host uses (any file with deploy = true).
  hostGenerators = lib.filterAttrs (
    _: g: builtins.any (f: f.deploy) (builtins.attrValues (fp.effectiveFiles g))
  ) gens;

  statuses = lib.mapAttrs statusOf hostGenerators;

  problems =
    import ./integrity.nix {
      inherit
        lib
        machine
        dir
        manifestOf
        secretsRel
        ;
      # A user's view checks its shared files too: `varsmith generate` and `rekey` add every
      # registered user of a shared generator to its recipients, as they add machines.
      inherit gens;
      inherit (scope) kind base;
      keyDir = scope.keyDir or scope.base;
    }
    ++ unitProblems
    ++ lib.optional (!hasTemplates && cfg.templates != { }) "varsmith: ${scope.kind} ${machine} declares varsmith.templates (${lib.concatStringsSep ", " (builtins.attrNames cfg.templates)}) but its sops-nix module has no `sops.templates`: import a sops-nix with templates (2022 or later)"
    ++ lib.mapAttrsToList (
      gname: s:
      "varsmith: ${scope.kind} ${machine}: generator ${gname} is ${
        if lib.hasPrefix "missing" s then "missing" else "out of date"
      } (${s}): run `${generateCmd}`"
    ) (lib.filterAttrs (_: s: s != null) statuses);

  # nix-darwin has no systemd: restartUnits, reloadUnits and credentials there are errors
  # (as clan's vars), never silently dropped. Credentials need a deployed secret.
  unitProblems =
    let
      where = what: "varsmith: ${scope.kind} ${machine}: ${what}";
      # A home on darwin has launchd agents, no systemd user units.
      homeOnDarwin = isHome && pkgs.stdenv.hostPlatform.isDarwin;
      unitOpts = [ "restartUnits" "reloadUnits" "credentials" ];
      refused =
        if isDarwin || homeOnDarwin then
          unitOpts
        else if isHome then
          [ "restartUnits" "reloadUnits" ]
        else
          [ ];
      setOpts =
        x:
        builtins.filter (opt: builtins.elem opt refused && x ? ${opt} && x.${opt} != [ ] && x.${opt} != { }) unitOpts;
      darwinMsg =
        path: opt:
        where "${path}.${opt} is set, but ${
          if isHome && opt == "credentials" then
            "a home-manager home on darwin has no systemd user units (launchd passes no credential)"
          else if isHome then
            "sops-nix's home-manager module restarts and reloads no unit"
          else
            "nix-darwin has no systemd units (sops-nix restarts no launchd service)"
        }: remove it";
      fileIssues =
        gname: fname: f:
        let
          path = "generators.${gname}.files.${fname}";
        in
        map (darwinMsg path) (setOpts f)
        ++ lib.optional (isHome && f.secret && f.deploy && f.neededFor != "services") (
          where "${path}.neededFor is \"${f.neededFor}\", but a home-manager user's secrets are only decrypted for its services: use \"services\""
        )
        ++ lib.optional (f.credentials != { } && !(f.secret && f.deploy)) (
          where "${path}.credentials is set, but only deployed secrets can be systemd credentials"
        );
    in
    lib.concatLists (
      lib.mapAttrsToList (gname: g: lib.concatLists (lib.mapAttrsToList (fileIssues gname) g.files)) gens
    )
    ++ lib.concatLists (
      lib.mapAttrsToList (tname: t: map (darwinMsg "templates.${tname}") (setOpts t)) cfg.templates
    );

  # Whether the deployed sops file holds the key (an older varsmith kept a persisted prompt's
  # answer admins-only: no sops-nix secret for it until it is regenerated).
  inDeployedFile =
    x:
    let
      m = manifestOf x.gname x.g;
    in
    m == null || (m.format or 1) >= 2 || builtins.elem x.fname (m.secrets or [ ]);

  # Every secret file the host decrypts with sops-nix.
  deployable = lib.concatLists (
    lib.mapAttrsToList (
      gname: g:
      lib.mapAttrsToList (fname: f: { inherit gname g fname f; }) (
        lib.filterAttrs (
          _: f:
          f.secret
          && f.deploy
          && builtins.elem f.neededFor [
            "services"
            "users"
          ]
        ) g.files
      )
    ) gens
  );

  # Every `LoadCredential` entry: { unit; name; path; } (deployed secrets only; others are
  # reported by unitProblems).
  credentialList = lib.concatLists (
    lib.mapAttrsToList (
      gname: g:
      lib.concatLists (
        lib.mapAttrsToList (
          fname: f:
          lib.mapAttrsToList (unit: name: {
            inherit unit name;
            inherit (f) path;
          }) f.credentials
        ) (lib.filterAttrs (_: f: f.secret && f.deploy) g.files)
      )
    ) gens
  );

  # JSON-able definitions for the CLI, read for every machine in one batched evaluation:
  #   nix eval --json .#nixosConfigurations \
  #     --apply 'cs: builtins.mapAttrs (_: c: c.config.varsmith.definitions or null) cs'
  # Nothing here forces `pkgs` except `runtimeInputs` (store paths; drop them with
  # `removeAttrs g [ "runtimeInputs" ]` to evaluate without any package set), and nothing
  # depends on generated files (so a cache keyed by the flake's sources stays valid).
  definitions = {
    name = machine;
    inherit (scope) platform;
    generators = lib.mapAttrs (gname: g: {
      inherit (g)
        name
        description
        share
        dependencies
        validation
        ;
      script = fp.scriptText g;
      prompts = lib.mapAttrs (_: p: { inherit (p) description type persist display; }) g.prompts;
      files = lib.mapAttrs (_: f: {
        inherit (f)
          secret
          deploy
          owner
          group
          mode
          neededFor
          restartUnits
          ;
      }) g.files;
      ownFingerprint = fp.own g;
      fingerprint = nodeFps.${gname};
      runtimeInputs = map (p: "${p}") g.runtimeInputs;
    }) gens;
  }
  // scope.definitionsExtra;
in
{
  inherit
    abs
    credentialList
    definitions
    deployable
    gens
    inDeployedFile
    placeholderOf
    problems
    secretsRel
    serviceName
    sopsFileOf
    sopsName
    statuses
    ;

  # Options every varsmith module declares under `varsmith`.
  options = {
    pkgs = mkOption {
      type = pkgsType;
      default = pkgs;
      defaultText = "pkgs";
      description = "The package set the bundled generators' runtimeInputs come from.";
    };
    generators = mkOption {
      type = types.attrsOf (types.submodule generatorModule);
      default = { };
      description = ''
        Generators of this ${scope.kind} (clan's vars schema). A bundled generator's name (openssh,
        password, wireguard, tls-ca, tls-cert, zerotier-network, zerotier-controller,
        zerotier-member, global-identity) picks up its definition as defaults: `= { };`.
      '';
    };
    templates = mkOption {
      type = types.attrsOf (types.submodule templateModule);
      default = { };
      example = lib.literalExpression ''
        {
          "app.env".content = "TOKEN=''${config.varsmith.generators.app.files.token.placeholder}";
          "app.env".owner = "app";
        }
      '';
      description = ''
        Files with secrets embedded, rendered at activation by sops-nix's `sops.templates.<name>`
        (same name): the store holds the content with placeholders only, the host gets the file
        with the secrets at `.path` (/run/secrets/rendered/<name> by default on NixOS,
        ~/.config/sops-nix/secrets/rendered/<name> for home-manager).
      '';
    };
    definitions = mkOption {
      type = types.unspecified;
      readOnly = true;
      internal = true;
      visible = false;
      default = definitions;
      defaultText = "set by varsmith";
      description = "JSON-able generator definitions and deploy settings, for the CLI.";
    };
    status = mkOption {
      type = types.unspecified;
      readOnly = true;
      internal = true;
      visible = false;
      default = statuses;
      defaultText = "set by varsmith";
      description = "Per generator the ${scope.kind} uses: null when up to date, else why not (as `varsmith check`).";
    };
    problems = mkOption {
      type = types.unspecified;
      readOnly = true;
      internal = true;
      visible = false;
      default = problems;
      defaultText = "set by varsmith";
      description = "The messages of this ${scope.kind}'s failing varsmith assertions, for `lib.flakeCheck`.";
    };
  };
}
