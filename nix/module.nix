# varsmith's NixOS and nix-darwin module (one file for both; darwin is detected without `pkgs`
# by `options ? launchd`).
#
# Declares generators with clan's vars schema under `varsmith.generators.<name>`, reads what
# `varsmith generate` stored under `<varsmith.directory>/sops/`, and wires sops-nix:
# every secret file with `deploy` and `neededFor` "services" or "users" becomes
# `sops.secrets."varsmith/<g>/<f>"`. The user imports sops-nix's module next to this one
# (this module never forces an input of the varsmith flake); without it, a machine with
# deployable secrets fails evaluation with an assertion that says so.
#
# Evaluates on the 2020 nixpkgs lib and on a current one: no `types.anything`, no `mkIf`
# around a submodule's whole config.
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
  isDarwin = options ? launchd;
  hasSops = options ? sops && options.sops ? secrets;
  hasHostKeysOption = lib.hasAttrByPath [ "services" "openssh" "hostKeys" ] options;

  bundled = import ./bundled.nix;
  fp = import ./fingerprint.nix { inherit lib; };

  machine = cfg.machineName;
  dir = toString cfg.directory;
  generateCmd = "varsmith generate ${machine}";
  # Store path names allow [A-Za-z0-9+-._?=]; generator and file names may also hold '@'.
  storeName = builtins.replaceStrings [ "@" ] [ "_" ];

  # Where a generator's outputs live, relative to the workspace.
  baseOf = g: if g.share then "sops/shared" else "sops/machines/${machine}";
  secretsRel = gname: g: deploy: "${baseOf g}/secrets/${if deploy then "" else "admin/"}${gname}.yaml";
  factRel = gname: g: fname: "${baseOf g}/facts/${gname}/${fname}";
  abs = rel: "${dir}/${rel}";
  sopsName = gname: fname: "varsmith/${gname}/${fname}";

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
      sopsPath =
        let
          n = sopsName gname fname;
        in
        if hasSops && config'.sops.secrets ? ${n} then
          config'.sops.secrets.${n}.path
        else if f.neededFor == "users" then
          "/run/secrets-for-users/${n}"
        else
          "/run/secrets/${n}";
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
          # As clan: an evaluation error on nix-darwin, never silently dropped.
          apply =
            v:
            if v != [ ] && isDarwin then
              throw "varsmith: ${label}: restartUnits is not supported on nix-darwin"
            else
              v;
          description = "systemd units restarted when the secret changes (NixOS only; an error on nix-darwin).";
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

  # `config` of the system, under another name inside the submodules.
  config' = config;

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

  # What `varsmith check` says about a generator of this machine (src/graph.rs `status`):
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
      # A dependency this machine does not declare is a shared generator of another machine
      # (clan's rule; the CLI checks that one exists).
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
        gens
        manifestOf
        secretsRel
        ;
    }
    ++ lib.mapAttrsToList (
      gname: s:
      "varsmith: machine ${machine}: generator ${gname} is ${
        if lib.hasPrefix "missing" s then "missing" else "out of date"
      } (${s}): run `${generateCmd}`"
    ) (lib.filterAttrs (_: s: s != null) statuses);

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

  # Activation files (`neededFor = "activation"`) are not sops-nix secrets: `varsmith deploy`
  # uploads them as root to their staging path, and `bootstrap` and `install` place them under
  # the new root before its users exist, owned by root. Each activation therefore gives them
  # their declared owner, group and mode once users and groups are set up: NixOS in an
  # activation snippet after `users` and `groups`, nix-darwin in `postActivation` (which runs
  # after its `groups` and `users`). Paths only: no value reaches the store.
  activationFiles = lib.concatLists (
    lib.mapAttrsToList (
      gname: g:
      lib.mapAttrsToList (fname: f: { inherit gname fname f; }) (
        lib.filterAttrs (_: f: f.secret && f.deploy && f.neededFor == "activation") g.files
      )
    ) gens
  );
  activationOwners = lib.concatMapStrings (
    x:
    let
      p = lib.escapeShellArg "/var/lib/varsmith/activation/${x.gname}/${x.fname}";
    in
    ''
      if [ -e ${p} ]; then
        chown ${lib.escapeShellArg "${x.f.owner}:${x.f.group}"} ${p}
        chmod ${lib.escapeShellArg x.f.mode} ${p}
      fi
    ''
  ) activationFiles;
  hasActivationScripts = !isDarwin && lib.hasAttrByPath [ "system" "activationScripts" ] options;
  # nix-darwin's `activate` runs under `set -e`: a user that does not exist (yet) is a warning
  # naming the file, and the rest of the activation goes on (as a failed NixOS snippet does).
  darwinActivationOwners = lib.concatMapStrings (
    x:
    let
      p = lib.escapeShellArg "/var/lib/varsmith/activation/${x.gname}/${x.fname}";
      og = lib.escapeShellArg "${x.f.owner}:${x.f.group}";
    in
    ''
      if [ -e ${p} ]; then
        chown ${og} ${p} && chmod ${lib.escapeShellArg x.f.mode} ${p} \
          || echo "varsmith: cannot give "${p}" owner "${og}" and mode ${x.f.mode}" >&2
      fi
    ''
  ) activationFiles;
  hasDarwinActivation =
    isDarwin && lib.hasAttrByPath [ "system" "activationScripts" "postActivation" ] options;

  sopsSecrets = builtins.listToAttrs (
    map (
      x:
      lib.nameValuePair (sopsName x.gname x.fname) (
        {
          sopsFile = sopsFileOf x.gname x.g;
          key = x.fname;
          format = "yaml";
          inherit (x.f) owner group mode;
          neededForUsers = x.f.neededFor == "users";
        }
        // lib.optionalAttrs (!isDarwin) { inherit (x.f) restartUnits; }
      )
    ) (builtins.filter (x: builtins.pathExists (abs (secretsRel x.gname x.g true)) && inDeployedFile x) deployable)
  );

  # JSON-able definitions for the CLI, read for every machine in one batched evaluation:
  #   nix eval --json .#nixosConfigurations \
  #     --apply 'cs: builtins.mapAttrs (_: c: c.config.varsmith.definitions or null) cs'
  # Nothing here forces `pkgs` except `runtimeInputs` (store paths; drop them with
  # `removeAttrs g [ "runtimeInputs" ]` to evaluate without any package set), and nothing
  # depends on generated files (so a cache keyed by the flake's sources stays valid).
  definitions = {
    name = machine;
    platform = if isDarwin then "darwin" else "nixos";
    inherit (cfg) deploy hostKeyPath;
    coreutils = if cfg.coreutils == null then null else "${cfg.coreutils}";
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
  };
in
{
  options.varsmith = {
    directory = mkOption {
      type = types.path;
      description = ''
        The workspace root (where varsmith.yaml and sops/ live), usually the fleet flake's `self`.
        Only the files the host needs are copied to the store, one `builtins.path` each.
      '';
    };
    machineName = mkOption {
      type = types.str;
      default =
        let
          h = config.networking.hostName or null;
        in
        if h == null || h == "" then
          throw "varsmith: set varsmith.machineName (networking.hostName is empty)"
        else
          h;
      defaultText = "config.networking.hostName";
      description = "The machine's name in varsmith (sops/machines/<name>).";
    };
    hostKeyPath = mkOption {
      type = types.str;
      default = "/etc/ssh/ssh_host_ed25519_key";
      description = ''
        Where the `openssh` generator's host key lives on the host (push-keys and bootstrap put it
        there; `/persist/etc/ssh/…` with --persist). With `varsmith.generators.openssh` declared it
        is the host's `services.openssh.hostKeys` and `sops.age.sshKeyPaths` entry, so sops-nix
        decrypts with its defaults and nothing else.
      '';
    };
    pkgs = mkOption {
      type = pkgsType;
      default = pkgs;
      defaultText = "pkgs";
      description = "The package set the bundled generators' runtimeInputs come from.";
    };
    coreutils = mkOption {
      type = types.nullOr types.package;
      default = if isDarwin then null else cfg.pkgs.coreutils;
      defaultText = "pkgs.coreutils on NixOS, null on nix-darwin";
      description = ''
        A package whose `bin/` is on every generator's PATH after its runtimeInputs (clan's runner
        adds coreutils the same way), realised with them. Read only when the CLI collects the
        runtime inputs, never when generator definitions are merely evaluated. null: nothing is
        added (the default on nix-darwin, whose packages do not run where generators run).
      '';
    };
    deploy = {
      targetHost = mkOption {
        type = types.str;
        default = "root@${machine}";
        defaultText = "root@<machineName>";
        description = "ssh destination for push-keys and deploy.";
      };
      tags = mkOption {
        type = types.listOf types.str;
        default = [ ];
        description = "Tags (deploy order: `varsmith.deploy.order` or `deploy.order` in varsmith.yaml).";
      };
      order = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [
          "tag:zerotier-controller"
          "os:nixos"
          "os:darwin"
        ];
        description = ''
          The fleet's deploy stages, first to last (machines in no entry deploy last): `tag:NAME`,
          `os:nixos`, `os:darwin`, `machine:NAME`, or a bare tag (or machine) name, as
          `deploy.order` in varsmith.yaml. It is one order for the whole fleet: set it in a module
          every machine imports; configurations (and varsmith.yaml) that state different orders
          are an error. Default: none (every machine in one stage).
        '';
      };
      backend = mkOption {
        type = types.enum [
          "nixos-rebuild"
          "nh"
          "darwin-rebuild"
          "clan"
        ];
        default = if isDarwin then "darwin-rebuild" else "nixos-rebuild";
        description = "How `varsmith deploy` switches the machine.";
      };
    };
    generators = mkOption {
      type = types.attrsOf (types.submodule generatorModule);
      default = { };
      description = ''
        Generators of this machine (clan's vars schema). A bundled generator's name (openssh,
        password, wireguard, tls-ca, tls-cert, zerotier-network, zerotier-controller,
        zerotier-member, global-identity) picks up its definition as defaults: `= { };`.
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
      description = "Per generator the host uses: null when up to date, else why not (as `varsmith check`).";
    };
    problems = mkOption {
      type = types.unspecified;
      readOnly = true;
      internal = true;
      visible = false;
      default = problems;
      defaultText = "set by varsmith";
      description = "The messages of this machine's failing varsmith assertions, for `lib.flakeCheck`.";
    };
  };

  config = lib.mkMerge [
    {
      assertions = [
        {
          assertion = hasSops || deployable == [ ];
          message = "varsmith: machine ${machine} has deployable secrets but the sops-nix module is not imported: add sops-nix's ${
            if isDarwin then "darwinModules.sops" else "nixosModules.sops"
          } to its modules";
        }
      ]
      ++ map (message: {
        assertion = false;
        inherit message;
      }) problems;
    }
    (lib.optionalAttrs hasSops {
      sops.secrets = sopsSecrets;
      sops.age.sshKeyPaths = lib.mkIf (gens ? openssh) [ cfg.hostKeyPath ];
    })
    (lib.optionalAttrs hasActivationScripts {
      system.activationScripts.varsmith-activation-files = lib.mkIf (activationFiles != [ ]) {
        deps = [
          "users"
          "groups"
        ];
        text = activationOwners;
      };
    })
    (lib.optionalAttrs hasDarwinActivation {
      system.activationScripts.postActivation.text = lib.mkIf (activationFiles != [ ]) (
        lib.mkAfter ''
          # varsmith: activation secrets' owner, group and mode
          ${darwinActivationOwners}''
      );
    })
    (lib.optionalAttrs hasHostKeysOption {
      services.openssh.hostKeys = lib.mkIf (gens ? openssh) [
        {
          path = cfg.hostKeyPath;
          type = "ed25519";
        }
      ];
    })
  ];
}
