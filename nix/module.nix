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
  hasTemplates = hasSops && options.sops ? templates;
  hasSystemdServices = !isDarwin && lib.hasAttrByPath [ "systemd" "services" ] options;
  hasHostKeysOption = lib.hasAttrByPath [ "services" "openssh" "hostKeys" ] options;

  machine = cfg.machineName;

  schema = import ./schema.nix {
    inherit lib config pkgs;
    scope = {
      kind = "machine";
      name = machine;
      platform = if isDarwin then "darwin" else "nixos";
      base = "sops/machines/${machine}";
      generateCmd = "varsmith generate ${machine}";
      inherit hasTemplates;
      secretPath =
        n: f:
        if hasSops && config.sops.secrets ? ${n} then
          config.sops.secrets.${n}.path
        else if f.neededFor == "users" then
          "/run/secrets-for-users/${n}"
        else
          "/run/secrets/${n}";
      templatePath =
        name:
        if hasTemplates && config.sops.templates ? ${name} then
          config.sops.templates.${name}.path
        else
          "/run/secrets/rendered/${name}";
      definitionsExtra = {
        inherit (cfg) deploy hostKeyPath;
        coreutils = if cfg.coreutils == null then null else "${cfg.coreutils}";
      };
    };
  };
  inherit (schema)
    abs
    credentialList
    deployable
    gens
    inDeployedFile
    problems
    secretsRel
    serviceName
    sopsFileOf
    sopsName
    ;

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
    isDarwin && lib.hasAttrByPath [ "system" "activationScripts" ] options;

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
        // lib.optionalAttrs (!isDarwin) {
          # A credential is copied when its unit starts: a new secret needs a restart.
          restartUnits =
            x.f.restartUnits
            ++ map (u: "${serviceName u}.service") (builtins.attrNames x.f.credentials);
        }
        # Only when set: sops-nix before 2022 has no reloadUnits.
        // lib.optionalAttrs (!isDarwin && x.f.reloadUnits != [ ]) { inherit (x.f) reloadUnits; }
      )
    ) (builtins.filter (x: builtins.pathExists (abs (secretsRel x.gname x.g true)) && inDeployedFile x) deployable)
  );

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
  }
  // schema.options;

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
    (lib.optionalAttrs hasTemplates {
      sops.templates = lib.mapAttrs (
        _: t:
        {
          inherit (t) content owner group mode;
        }
        // lib.optionalAttrs (!isDarwin && t.restartUnits != [ ]) { inherit (t) restartUnits; }
        // lib.optionalAttrs (!isDarwin && t.reloadUnits != [ ]) { inherit (t) reloadUnits; }
      ) cfg.templates;
    })
    (lib.optionalAttrs hasSystemdServices {
      systemd.services = lib.mkMerge (
        map (x: {
          ${serviceName x.unit}.serviceConfig.LoadCredential = [ "${x.name}:${x.path}" ];
        }) credentialList
      );
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
