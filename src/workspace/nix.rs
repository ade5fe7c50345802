//! Machines and generator definitions from the workspace's flake.
//!
//! Every `nixosConfigurations.<m>` / `darwinConfigurations.<m>` that imports the varsmith module
//! is a machine, named by its `config.varsmith.machineName`. They are read with batched
//! `nix eval --json OUTPUT --apply F` calls over chunks of configurations (sized to a memory
//! budget per process, `--eval-memory`, default 2 GiB; one process per core at once), where
//! `F` selects exactly what varsmith needs for every machine and forces nothing of `pkgs` but
//! the runtime inputs' store paths. The result is cached (`$XDG_CACHE_HOME/varsmith/`, see
//! `workspace::nix_cache`: private, owner-checked, MAC-authenticated) per configuration, keyed
//! by the flake's content, which is what Nix would copy (every tracked file of the git
//! repository from its top level, plus `flake.lock`) minus what varsmith itself writes
//! (`sops/`, `.sops.yaml`): a `generate` or `check` with nothing changed runs no `nix` at all.
//! Files that only one configuration reads (its own directory, `machines/<name>/`: see
//! `workspace::nix_trace` for the exact rule) key only that configuration's entry, so an edit
//! there evaluates that configuration again, not the fleet; any other change evaluates every
//! configuration. An entry that does not parse or verify or has another version is ignored.
//!
//! Nothing private reaches the store through evaluation: a workspace inside git is evaluated as
//! a git flake (tracked files only); a workspace outside git is refused when it holds an age
//! identity, an OpenSSH private key or a prompts file, unless `VARSMITH_ALLOW_PATH_FLAKE=1`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Error;
use super::nix_trace;

/// The flake outputs that hold machines and home-manager homes, and whether they are
/// nix-darwin (`homeConfigurations` holds homes only).
pub(crate) const OUTPUTS: &[(&str, bool)] = &[
    ("nixosConfigurations", false),
    ("darwinConfigurations", true),
    (HOMES_OUTPUT, false),
];

/// Bumped whenever the cached shape or the apply function changes.
const CACHE_VERSION: u32 = 6;

/// Extra arguments for every `nix eval` (split like a shell would), e.g.
/// `--override-input nixpkgs path:/src/nixpkgs --option substituters ''`. Part of the cache key.
/// Its `--option NAME VALUE` settings also go to `nix-store --realise`.
pub(crate) const NIX_FLAGS_ENV: &str = "VARSMITH_NIX_FLAGS";

/// The extra `nix` arguments from [`NIX_FLAGS_ENV`].
fn extra_flags() -> Result<Vec<String>, String> {
    match std::env::var(NIX_FLAGS_ENV) {
        Ok(v) if !v.trim().is_empty() => {
            shlex::split(&v).ok_or_else(|| format!("{NIX_FLAGS_ENV}: unbalanced quotes"))
        }
        _ => Ok(Vec::new()),
    }
}

/// The `--option NAME VALUE` settings among the extra flags: the only ones that also apply to
/// `nix-store --realise` (the flake flags, e.g. `--override-input`, mean nothing to it).
fn extra_options() -> Result<Vec<String>, String> {
    Ok(options_of(&extra_flags()?))
}

/// The `--option NAME VALUE` triples of `flags`, in order.
fn options_of(flags: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < flags.len() {
        if flags[i] == "--option" && i + 2 < flags.len() {
            out.extend_from_slice(&flags[i..i + 3]);
            i += 3;
        } else {
            i += 1;
        }
    }
    out
}

/// Environment variable that allows import-from-derivation in evaluation (`1`), like the
/// global `--allow-ifd` flag.
pub(crate) const ALLOW_IFD_ENV: &str = "VARSMITH_ALLOW_IFD";

/// Set by `--allow-ifd`.
static ALLOW_IFD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Allows import-from-derivation for the rest of this process (`--allow-ifd`).
pub(crate) fn allow_ifd() {
    ALLOW_IFD.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Is import-from-derivation allowed? Default: no. Evaluation then passes
/// `--option allow-import-from-derivation false`, so no builder runs while the flake is read
/// (a builder could be a hostile flake's fixed-output derivation, which has network access).
pub(crate) fn ifd_allowed() -> bool {
    ALLOW_IFD.load(std::sync::atomic::Ordering::Relaxed)
        || std::env::var(ALLOW_IFD_ENV).as_deref() == Ok("1")
}

/// Nix's error when a definition needs import-from-derivation, explained.
fn explain_ifd(stderr: String) -> String {
    if ifd_allowed() || !stderr.contains("'allow-import-from-derivation' is disabled") {
        return stderr;
    }
    format!(
        "a definition needs import-from-derivation (a derivation built while the flake is evaluated), which varsmith refuses by default: a builder run by `check` or `list` is code from the flake. Remove it from the definition, or allow it with --allow-ifd (or {ALLOW_IFD_ENV}=1).\n{stderr}"
    )
}

/// Whether an evaluation error is varsmith's refusal of import-from-derivation (see
/// `explain_ifd`): a refusal with an opt-in to name, not a broken flake to work around.
pub(crate) fn is_ifd_refusal(err: &str) -> bool {
    err.contains("which varsmith refuses by default")
}

/// Environment variable that allows evaluating a workspace outside git as a `path:` flake.
pub(crate) const ALLOW_PATH_FLAKE_ENV: &str = "VARSMITH_ALLOW_PATH_FLAKE";

/// What `--apply` returns per configuration: `{ machine; homes; }` (`machine` null when it does
/// not import the module; `homes`: its `home-manager.users.<u>` that import the home-manager
/// module), or null when it has neither. Standalone `homeConfigurations` go through
/// [`APPLY_HOMES`], in the same batched evaluation.
const APPLY: &str = r#"cfgs: let
    EXTRACT
  in builtins.mapAttrs (attr: c:
  let
    homes = if c ? options && c.options ? home-manager && c.config ? home-manager
      then builtins.mapAttrs (_: home) c.config.home-manager.users else { };
    hasHomes = builtins.any (h: h != null) (builtins.attrValues homes);
    m = if !(c ? options && c.options ? varsmith) then null else let
      v = c.config.varsmith;
      np = c.config.nixpkgs or { };
      sys = builtins.tryEval (
        if np ? hostPlatform then (if builtins.isString np.hostPlatform then np.hostPlatform else np.hostPlatform.system)
        else np.system or null);
    in {
      machineName = v.machineName;
      system = if sys.success then sys.value else null;
      coreutils = if (v.coreutils or null) == null then null else input v.coreutils;
      deploy = { targetHost = v.deploy.targetHost or null; tags = v.deploy.tags or [ ]; backend = v.deploy.backend or null; order = v.deploy.order or [ ]; };
      generators = gens v;
    };
  in if m == null && !hasHomes then null else { machine = m; homes = if hasHomes then homes else { }; }) cfgs"#;

/// `--apply` of `homeConfigurations`: per home, the same shape as [`APPLY`]'s with no machine.
const APPLY_HOMES: &str = r#"cfgs: let
    EXTRACT
  in builtins.mapAttrs (attr: c: let
    r = builtins.tryEval (let h = home c.config; in builtins.deepSeq (if h == null then null else h.userName) h);
    h = if r.success then r.value else { userName = ""; error = "the home did not evaluate (run `nix eval .#homeConfigurations.\"${attr}\".config.varsmith.generators` for the message)"; generators = { }; };
  in if h == null then null else { machine = null; homes = { "${attr}" = h; }; }) cfgs"#;

/// The shared part of [`APPLY`] and [`APPLY_HOMES`]: `gens` reads a `varsmith` config's
/// generators, `home` a home-manager config's user (null without varsmith's module).
const EXTRACT: &str = r#"input = p: { out = builtins.unsafeDiscardStringContext p.outPath; drv = builtins.unsafeDiscardStringContext (p.drvPath or ""); name = p.name or ""; };
    script = s: if builtins.isPath s then builtins.readFile s else s;
    refs = s: if builtins.isPath s then [ ] else builtins.concatLists (builtins.attrValues (builtins.mapAttrs
      (k: v: if v ? outputs || (v.allOutputs or false) then [ { out = ""; drv = k; name = "script reference"; } ] else [ ])
      (builtins.getContext s)));
    gens = v: builtins.mapAttrs (g: d: {
      share = d.share;
      dependencies = d.dependencies;
      validation = d.validation;
      script = script d.script;
      runtimeInputs = map input d.runtimeInputs;
      scriptInputs = refs d.script;
      files = builtins.mapAttrs (f: x: { inherit (x) secret deploy owner group mode neededFor; }) d.files;
      prompts = builtins.mapAttrs (p: x: { description = x.description or p; type = x.type or "line"; persist = x.persist or false; display = x.display or null; }) d.prompts;
    }) v.generators;
    home = h: if !(h ? varsmith && h.varsmith ? userName && h.varsmith ? perHome) then null else {
      userName = h.varsmith.userName;
      perHome = h.varsmith.perHome;
      homeName = h.varsmith.homeName;
      generators = gens h.varsmith;
    };"#;

/// The apply function of `output` ([`APPLY`] or [`APPLY_HOMES`], with [`EXTRACT`] in).
fn apply_of(output: &str) -> String {
    let f = if output == HOMES_OUTPUT {
        APPLY_HOMES
    } else {
        APPLY
    };
    f.replace("EXTRACT", EXTRACT)
}

/// The flake output of standalone home-manager configurations.
pub(crate) const HOMES_OUTPUT: &str = "homeConfigurations";

/// One home-manager user's home as the home-manager module exports it (see
/// [`super::users`]): the generators of `varsmith.userName`, standalone
/// (`homeConfigurations."<user>@<host>"`) or integrated (`home-manager.users.<user>` of a
/// machine configuration).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NixHome {
    /// `varsmith.userName` (default `home.username`).
    #[serde(rename = "userName")]
    pub user_name: String,
    /// `varsmith.perHome`: this home's outputs are its own
    /// (`sops/users/<user>/homes/<homeName>/`).
    #[serde(rename = "perHome", default)]
    pub per_home: bool,
    /// `varsmith.homeName` (required with `perHome`).
    #[serde(rename = "homeName", default)]
    pub home_name: Option<String>,
    /// Generators by name (one `Arc` per distinct definition when read from the cache).
    #[serde(with = "super::gen_table")]
    pub generators: super::gen_table::Generators,
    /// Filled by varsmith: `homeConfigurations.<attr>` or
    /// `nixosConfigurations.<m>.config.home-manager.users.<u>`.
    #[serde(default)]
    pub attr: String,
    /// Set when a standalone home did not evaluate (e.g. another module's failed assertion,
    /// which home-manager raises on any `config` access): the home is left out, with a
    /// warning, rather than failing every command of the fleet.
    #[serde(default)]
    pub error: Option<String>,
}

impl NixHome {
    /// The owner key of this home's own outputs: the user, or `<user>@…` (its `homeName`) for
    /// a per-home home (see [`super::Owner::User`]).
    pub fn owner_key(&self) -> String {
        match (&self.per_home, &self.home_name) {
            (true, Some(h)) => h.clone(),
            _ => self.user_name.clone(),
        }
    }

    /// The home's generators as validated definitions (same checks and defaults as a
    /// machine's; no `coreutils`: a home's PATH is its runtime inputs).
    pub fn definitions(
        &self,
    ) -> Result<IndexMap<String, std::sync::Arc<super::Generator>>, String> {
        let mut out = IndexMap::new();
        for (name, g) in &self.generators {
            let src = PathBuf::from(format!("flake:{}.varsmith.generators.{name}", self.attr));
            let def = to_generator(name, &src, g, None)
                .map_err(|e| format!("user {}, generator {name}: {e}", self.user_name))?;
            out.insert(name.clone(), std::sync::Arc::new(def));
        }
        Ok(out)
    }
}

/// What one configuration contributes: a machine, homes, or both.
#[derive(Deserialize)]
struct Entry {
    machine: Option<NixMachine>,
    #[serde(default)]
    homes: IndexMap<String, Option<NixHome>>,
}

/// The machines and home-manager homes of the flake, from one batched evaluation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Flake {
    /// Machine configurations importing the module.
    pub machines: Vec<NixMachine>,
    /// Homes importing the home-manager module (standalone and integrated).
    #[serde(default)]
    pub homes: Vec<NixHome>,
}

/// A runtime input: the output to put on PATH and the derivation that builds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub struct StoreInput {
    /// The output path (its `bin/` goes on PATH).
    pub out: String,
    /// The derivation (realised when the output is missing).
    pub drv: String,
    /// The package name, for messages.
    #[serde(default)]
    pub name: String,
}

/// One generator as the module exports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NixGenerator {
    /// `share`.
    pub share: bool,
    /// `dependencies`.
    pub dependencies: Vec<String>,
    /// `validation` (any JSON value).
    pub validation: serde_json::Value,
    /// The script's text.
    pub script: String,
    /// Runtime inputs.
    #[serde(rename = "runtimeInputs")]
    pub runtime_inputs: Vec<StoreInput>,
    /// Derivations the script text refers to (its string context: `${pkgs.nix}/bin/…`),
    /// realised with the runtime inputs; `out` is empty (only the derivation is known).
    #[serde(rename = "scriptInputs", default)]
    pub script_inputs: Vec<StoreInput>,
    /// `files.<f>`.
    pub files: IndexMap<String, serde_json::Value>,
    /// `prompts.<p>`.
    pub prompts: IndexMap<String, serde_json::Value>,
}

/// Deploy settings of a flake machine.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NixDeploy {
    /// `varsmith.deploy.targetHost`.
    #[serde(rename = "targetHost")]
    pub target_host: Option<String>,
    /// `varsmith.deploy.tags`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `varsmith.deploy.backend`.
    pub backend: Option<String>,
    /// `varsmith.deploy.order`: the fleet's stage order as this configuration states it (empty:
    /// says nothing). Every configuration that states one, and `varsmith.yaml`, must agree.
    #[serde(default)]
    pub order: Vec<String>,
}

/// One machine of the flake.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NixMachine {
    /// `config.varsmith.machineName`.
    #[serde(rename = "machineName")]
    pub machine_name: String,
    /// The configuration's system, when it could be read without forcing packages.
    pub system: Option<String>,
    /// Deploy settings.
    #[serde(default)]
    pub deploy: NixDeploy,
    /// `varsmith.coreutils`: on every generator's PATH after its runtime inputs (clan's
    /// runner does the same), realised with them; `None` when the module sets none.
    #[serde(default)]
    pub coreutils: Option<StoreInput>,
    /// Generators by name (one `Arc` per distinct definition when read from the cache).
    #[serde(with = "super::gen_table")]
    pub generators: super::gen_table::Generators,
    /// Filled by varsmith: `nixosConfigurations.<attr>` or `darwinConfigurations.<attr>`.
    #[serde(default)]
    pub attr: String,
    /// Filled by varsmith: from `darwinConfigurations`.
    #[serde(default)]
    pub darwin: bool,
}

/// The cache entry of a workspace: the key of its global files and, per configuration, its
/// private files (see [`super::nix_trace`]), the key of their contents and what it contributed.
/// A configuration's entry is used while the global key and its own key hold.
#[derive(Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    root: PathBuf,
    global: String,
    configs: Vec<CachedConfig>,
}

/// One configuration's cache entry.
#[derive(Clone, Serialize, Deserialize)]
struct CachedConfig {
    output: String,
    attr: String,
    /// Files only this configuration reads (relative to the source's top).
    private: Vec<PathBuf>,
    /// [`config_key`] of the global key and the private files' contents.
    key: String,
    machine: Option<NixMachine>,
    homes: Vec<NixHome>,
}

impl CacheFile {
    /// The machines and homes, in output and attribute order.
    fn flake(self) -> Flake {
        let mut f = Flake::default();
        for c in self.configs {
            f.machines.extend(c.machine);
            f.homes.extend(c.homes);
        }
        f
    }

    /// Which configuration each private file belongs to.
    /// The configurations [`partial`] evaluates for `focus` (machine names): theirs and those
    /// of machines declaring a shared generator they need. `None` when `focus` is empty, names
    /// a machine the cache does not know, or comes to every configuration.
    fn focus(&self, focus: &[String]) -> Option<Vec<usize>> {
        if focus.is_empty() {
            return None;
        }
        // Every generator set of a configuration: its machine's and its homes'.
        let gens = |i: usize| {
            let c = &self.configs[i];
            c.machine
                .iter()
                .map(|m| &m.generators)
                .chain(c.homes.iter().map(|h| &h.generators))
        };
        let mut wanted: std::collections::BTreeSet<usize> = std::collections::BTreeSet::new();
        for name in focus {
            let i = (0..self.configs.len()).find(|&i| {
                self.configs[i]
                    .machine
                    .as_ref()
                    .is_some_and(|m| &m.machine_name == name)
            })?;
            wanted.insert(i);
        }
        // The shared generators they use, with the shared ones those depend on.
        let mut shared: Vec<String> = Vec::new();
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        for &i in &wanted {
            for (g, d) in gens(i).flatten() {
                if d.share && seen.insert(g.clone()) {
                    shared.push(g.clone());
                }
            }
        }
        while let Some(g) = shared.pop() {
            for i in 0..self.configs.len() {
                for d in gens(i).filter_map(|set| set.get(&g)) {
                    wanted.insert(i);
                    for dep in &d.dependencies {
                        if seen.insert(dep.clone()) {
                            shared.push(dep.clone());
                        }
                    }
                }
            }
        }
        (wanted.len() < self.configs.len()).then(|| wanted.into_iter().collect())
    }

    /// Takes the evaluation `ev` of the configurations `which` (their machines, homes and keys
    /// under `global`); `false` when it cannot be used: a re-evaluated configuration read
    /// another one's private file, or one is missing from `ev`.
    fn update(
        &mut self,
        ev: &Evaluation,
        which: &[usize],
        global: &str,
        contents: &std::collections::HashMap<&Path, Option<&[u8]>>,
    ) -> bool {
        {
            let owners = self.owners();
            let at = |output: &str, attr: &str| {
                self.configs
                    .iter()
                    .position(|c| c.output == output && c.attr == attr)
            };
            for (output, t) in &ev.traces {
                let Some(t) = t else { return false };
                if t.pre.iter().any(|f| owners.contains_key(f.as_path())) {
                    return false;
                }
                for (attr, fs) in &t.windows {
                    let me = at(output, attr);
                    if fs
                        .iter()
                        .any(|f| owners.get(f.as_path()).is_some_and(|o| Some(*o) != me))
                    {
                        return false;
                    }
                }
            }
        }
        let fresh: std::collections::HashMap<&nix_trace::ConfigId, &Evaluated> =
            ev.configs.iter().map(|c| (&c.id, c)).collect();
        for &i in which {
            let id = nix_trace::ConfigId {
                output: self.configs[i].output.clone(),
                attr: self.configs[i].attr.clone(),
            };
            let Some(e) = fresh.get(&id) else {
                return false;
            };
            let c = &mut self.configs[i];
            c.machine = e.machine.clone();
            c.homes = e.homes.clone();
            c.key = config_key(global, c, contents);
        }
        true
    }

    /// The ids of the configurations `which`.
    fn ids(&self, which: &[usize]) -> Vec<nix_trace::ConfigId> {
        which
            .iter()
            .map(|&i| nix_trace::ConfigId {
                output: self.configs[i].output.clone(),
                attr: self.configs[i].attr.clone(),
            })
            .collect()
    }

    fn owners(&self) -> std::collections::HashMap<&Path, usize> {
        let mut m = std::collections::HashMap::new();
        for (i, c) in self.configs.iter().enumerate() {
            for f in &c.private {
                m.insert(f.as_path(), i);
            }
        }
        m
    }
}

fn flake_err(root: &Path, msg: impl Into<String>) -> Error {
    Error::Invalid {
        path: root.join("flake.nix"),
        msg: msg.into(),
    }
}

/// Is the workspace a flake?
pub(crate) fn is_flake(root: &Path) -> bool {
    root.join("flake.nix").is_file()
}

/// The flake's machines and homes. With nothing changed they come from the cache and no `nix`
/// runs; when only some configurations' private files changed, only those are evaluated; else
/// every configuration is (see [`super::nix_trace`] for which files are private).
pub(crate) fn machines(root: &Path) -> Result<Flake, Error> {
    machines_for(root, &[])
}

/// [`machines`] for a command that works on `focus` (machine names) only: when the flake's
/// shared files changed, only the configurations of those machines and of the machines
/// sharing a generator with them are evaluated ([`partial`]); the others keep their earlier
/// definitions for this command and are evaluated by the next command that needs them. An
/// empty `focus` is the whole fleet.
pub(crate) fn machines_for(root: &Path, focus: &[String]) -> Result<Flake, Error> {
    // The cache is keyed by the absolute path: `-C fleet` and `-C /abs/fleet` share an entry,
    // and `-C fleet` run from two directories do not.
    let absolute = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let root = absolute.as_path();
    let source = Source::of(root)?;
    let files = source.read_files(root);
    let cache = super::nix_cache::Cache::open();
    let entry = cache_entry(root);
    let old = cache
        .as_ref()
        .and_then(|c| read_cache(&c.read(&entry)?, root));
    let (index, changed) = match old {
        Some(old) => match refresh(root, &source, &files, old, focus)? {
            Refreshed::Done(r, changed) => (r, changed),
            Refreshed::GlobalChanged(old) => match partial(root, &source, &files, old, focus)? {
                Some(r) => (r, true),
                None => (evaluate_all(root, &source, &files)?, true),
            },
            Refreshed::No => (evaluate_all(root, &source, &files)?, true),
        },
        None => (evaluate_all(root, &source, &files)?, true),
    };
    if changed && let Some(c) = &cache {
        write_cache(c, &entry, &index);
    }
    Ok(index.flake())
}

/// What [`refresh`] made of the cached entry.
enum Refreshed {
    /// Up to date (`true`: some configurations were evaluated again).
    Done(CacheFile, bool),
    /// The global files changed: the entry as it was.
    GlobalChanged(CacheFile),
    /// A re-evaluated configuration reached another's private file: evaluate everything.
    No,
}

/// The cached entry brought up to date without evaluating every configuration.
fn refresh(
    root: &Path,
    source: &Source,
    files: &FlakeFiles,
    mut old: CacheFile,
    focus: &[String],
) -> Result<Refreshed, Error> {
    let global = {
        let owners = old.owners();
        source.global_key(root, files, &|f| owners.contains_key(f))
    };
    if global != old.global {
        return Ok(Refreshed::GlobalChanged(old));
    }
    let contents = files.contents();
    let stale: Vec<usize> = (0..old.configs.len())
        .filter(|&i| config_key(&global, &old.configs[i], &contents) != old.configs[i].key)
        .collect();
    // With a focus, stale configurations outside it stay stale for the next command.
    let todo: Vec<usize> = match old.focus(focus) {
        Some(wanted) => stale
            .iter()
            .copied()
            .filter(|i| wanted.binary_search(i).is_ok())
            .collect(),
        None => stale.clone(),
    };
    if todo.is_empty() {
        if !stale.is_empty() {
            eprintln!(
                "varsmith: {} flake configuration(s) changed since they were last evaluated, none of them selected: evaluated by the next command that needs them",
                stale.len()
            );
        }
        return Ok(Refreshed::Done(old, false));
    }
    let ids = old.ids(&todo);
    let ev = evaluate(root, source, &files.rel, Some(&ids))?;
    if !old.update(&ev, &todo, &global, &contents) {
        return Ok(Refreshed::No);
    }
    if todo.len() == stale.len() {
        eprintln!(
            "varsmith: re-evaluated {} of {} flake configurations (changed since they were last evaluated)",
            todo.len(),
            old.configs.len()
        );
    } else {
        eprintln!(
            "varsmith: re-evaluated {} of {} flake configurations (changed since they were last evaluated, of the selected machines and those sharing their generators); {} other(s) are evaluated by the next command that needs them",
            todo.len(),
            old.configs.len(),
            stale.len() - todo.len()
        );
    }
    Ok(Refreshed::Done(old, true))
}

/// The cached entry with only `focus`'s configurations evaluated again, when the flake's
/// global files changed (`refresh` could not help): `None` to evaluate everything instead.
///
/// Evaluated: the configurations of the machines named in `focus` and of every machine that,
/// as last evaluated, declares a shared generator one of them uses (or one those depend on),
/// so a shared generator's consumers all have current definitions. The others keep their
/// earlier definitions for this command only: their entries are marked stale and the next
/// command evaluates them ([`refresh`]). Everything is evaluated instead when a focused
/// machine is unknown to the cache, when that would be every configuration, when a
/// re-evaluated configuration read another one's private file, and when the flake's set of
/// configurations changed (a machine added or removed must be seen by the fleet-wide steps:
/// `.sops.yaml`, the recipients of shared secrets), which a concurrent `attrNames` per output
/// tells.
fn partial(
    root: &Path,
    source: &Source,
    files: &FlakeFiles,
    mut old: CacheFile,
    focus: &[String],
) -> Result<Option<CacheFile>, Error> {
    let Some(wanted) = old.focus(focus) else {
        return Ok(None);
    };
    let global = {
        let owners = old.owners();
        source.global_key(root, files, &|f| owners.contains_key(f))
    };
    let ids = old.ids(&wanted);
    let flake = source.flake_ref(root);
    let (names, ev) = with_attr_names(root, &flake, || {
        evaluate(root, source, &files.rel, Some(&ids))
    });
    let ev = ev?;
    for (&(output, _), names) in OUTPUTS.iter().zip(names) {
        let mut now = names?;
        now.sort();
        let mut was: Vec<String> = old
            .configs
            .iter()
            .filter(|c| c.output == output)
            .map(|c| c.attr.clone())
            .collect();
        was.sort();
        if now != was {
            return Ok(None);
        }
    }
    let contents = files.contents();
    if !old.update(&ev, &wanted, &global, &contents) {
        return Ok(None);
    }
    let wanted: std::collections::HashSet<usize> = wanted.into_iter().collect();
    for (i, c) in old.configs.iter_mut().enumerate() {
        if !wanted.contains(&i) {
            // Never a real key: evaluated again by the next command.
            c.key = String::new();
        }
    }
    old.global = global;
    eprintln!(
        "varsmith: evaluated {} of {} flake configurations (the selected machines and those sharing their generators): the flake's shared files changed; the others are evaluated by the next command that needs them",
        ids.len(),
        old.configs.len()
    );
    Ok(Some(old))
}

/// Evaluates every configuration and partitions the flake's files by what each read.
fn evaluate_all(root: &Path, source: &Source, files: &FlakeFiles) -> Result<CacheFile, Error> {
    let ev = evaluate(root, source, &files.rel, None)?;
    let ids: Vec<nix_trace::ConfigId> = ev.configs.iter().map(|c| c.id.clone()).collect();
    let private = nix_trace::private_files(&ev.traces, &ids, &files.files);
    let owned: std::collections::HashSet<&Path> =
        private.iter().flatten().map(PathBuf::as_path).collect();
    let global = source.global_key(root, files, &|f| owned.contains(f));
    let contents = files.contents();
    let configs = ev
        .configs
        .into_iter()
        .zip(private.iter())
        .map(|(e, private)| {
            let mut c = CachedConfig {
                output: e.id.output,
                attr: e.id.attr,
                private: private.clone(),
                key: String::new(),
                machine: e.machine,
                homes: e.homes,
            };
            c.key = config_key(&global, &c, &contents);
            c
        })
        .collect();
    Ok(CacheFile {
        version: CACHE_VERSION,
        root: root.to_path_buf(),
        global,
        configs,
    })
}

/// The key of one configuration: the global key, its name and its private files' contents.
fn config_key(
    global: &str,
    c: &CachedConfig,
    contents: &std::collections::HashMap<&Path, Option<&[u8]>>,
) -> String {
    let mut h = Sha256::new();
    h.update(global.as_bytes());
    h.update(format!("\0{}\0{}\0", c.output, c.attr));
    for f in &c.private {
        h.update(f.as_os_str().as_encoded_bytes());
        h.update([0]);
        match contents.get(f.as_path()) {
            Some(Some(b)) => {
                h.update((b.len() as u64).to_le_bytes());
                h.update(b);
            }
            _ => h.update(b"\xffmissing"),
        }
    }
    hex::encode(h.finalize())
}

/// What Nix would copy of the flake, read once: see [`Source::files`].
struct FlakeFiles {
    /// The workspace's directory relative to the source's top (`?dir=`).
    rel: PathBuf,
    /// Every copied file, relative to the top, with its contents (`None`: unreadable).
    files: Vec<(PathBuf, Option<Vec<u8>>)>,
}

impl FlakeFiles {
    fn contents(&self) -> std::collections::HashMap<&Path, Option<&[u8]>> {
        self.files
            .iter()
            .map(|(p, b)| (p.as_path(), b.as_deref()))
            .collect()
    }
}

/// How Nix sees the workspace: a git flake (tracked files) or a path flake (everything).
enum Source {
    Git { top: PathBuf },
    Path,
}

impl Source {
    fn of(root: &Path) -> Result<Source, Error> {
        if let Some(top) = super::read::git_toplevel(root) {
            return Ok(Source::Git { top });
        }
        if std::env::var(ALLOW_PATH_FLAKE_ENV).as_deref() != Ok("1") {
            for f in walk_files(root) {
                if let Some(why) = private_material(&f) {
                    return Err(flake_err(
                        root,
                        format!(
                            "the workspace is not in git, so Nix would copy all of it into the world-readable store, including {} ({why}); put the workspace in git (untracked files are not copied), move the file out, or set {ALLOW_PATH_FLAKE_ENV}=1",
                            f.display()
                        ),
                    ));
                }
            }
        }
        Ok(Source::Path)
    }

    /// The flake reference for `nix eval`.
    fn flake_ref(&self, root: &Path) -> String {
        match self {
            Source::Git { top } => {
                let rel = root.strip_prefix(top).unwrap_or(Path::new(""));
                let mut r = format!("git+file://{}", top.display());
                if !rel.as_os_str().is_empty() {
                    r.push_str(&format!("?dir={}", rel.display()));
                }
                r
            }
            Source::Path => format!("path:{}", root.display()),
        }
    }

    /// What Nix would copy, minus varsmith's own outputs (`sops/`, `.sops.yaml` of the
    /// workspace): the directory the paths are relative to and the sorted paths. A git flake
    /// is copied whole from the repository's top level (a flake in `fleet/` may import
    /// `../gens.nix`): every tracked or intent-to-add file there, as Nix's git fetcher lists
    /// them; a path flake is its directory.
    fn files(&self, root: &Path) -> (PathBuf, Vec<PathBuf>) {
        let (base, rel, mut files): (PathBuf, PathBuf, Vec<PathBuf>) = match self {
            Source::Git { top } => {
                let rel = root
                    .strip_prefix(top)
                    .unwrap_or(Path::new(""))
                    .to_path_buf();
                (top.clone(), rel, git_files(top))
            }
            Source::Path => (
                root.to_path_buf(),
                PathBuf::new(),
                walk_files(root)
                    .into_iter()
                    .filter_map(|p| p.strip_prefix(root).ok().map(Path::to_path_buf))
                    .collect(),
            ),
        };
        files.push(rel.join("flake.lock"));
        let (sops, sops_yaml) = (rel.join("sops"), rel.join(".sops.yaml"));
        files.retain(|f| !(f.starts_with(&sops) || *f == sops_yaml));
        files.sort();
        files.dedup();
        (base, files)
    }

    /// Every copied file with its contents (see [`Source::files`]).
    fn read_files(&self, root: &Path) -> FlakeFiles {
        let (base, files) = self.files(root);
        let rel = match self {
            Source::Git { top } => root
                .strip_prefix(top)
                .unwrap_or(Path::new(""))
                .to_path_buf(),
            Source::Path => PathBuf::new(),
        };
        let files = files
            .into_iter()
            .map(|f| {
                let b = std::fs::read(base.join(&f)).ok();
                (f, b)
            })
            .collect();
        FlakeFiles { rel, files }
    }

    /// The global key: the apply functions, the flake reference, the Nix flags, every copied
    /// file's path, and the contents of every file that is not private to one configuration
    /// (`private`).
    fn global_key(
        &self,
        root: &Path,
        files: &FlakeFiles,
        private: &dyn Fn(&Path) -> bool,
    ) -> String {
        let mut h = Sha256::new();
        h.update(format!(
            "varsmith-flake-cache-v{CACHE_VERSION}\0{APPLY}\0{APPLY_HOMES}\0{EXTRACT}\0"
        ));
        h.update(self.flake_ref(root).as_bytes());
        h.update(std::env::var(NIX_FLAGS_ENV).unwrap_or_default().as_bytes());
        if ifd_allowed() {
            h.update(b"\0allow-ifd");
        }
        for (f, body) in &files.files {
            h.update(f.as_os_str().as_encoded_bytes());
            h.update([0]);
            match body {
                _ if private(f) => h.update(b"\xfeprivate"),
                Some(b) => {
                    h.update((b.len() as u64).to_le_bytes());
                    h.update(b);
                }
                None => h.update(b"\xffmissing"),
            }
        }
        hex::encode(h.finalize())
    }
}

/// Tracked and intent-to-add files of the repository whose top level is `top` (relative to it).
fn git_files(top: &Path) -> Vec<PathBuf> {
    let out = crate::child::command("git")
        .arg("-C")
        .arg(top)
        .args(["ls-files", "-z", "--cached"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let Ok(out) = out else {
        return Vec::new();
    };
    out.stdout
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| PathBuf::from(String::from_utf8_lossy(s).into_owned()))
        .collect()
}

/// Every regular file under `root` (absolute), skipping `.git` and `sops/`.
fn walk_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                let name = e.file_name();
                if name != ".git" && !(d == root && name == "sops") {
                    stack.push(p);
                }
            } else if t.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Why a file must not be copied into the store, if it must not.
fn private_material(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_string_lossy();
    if name.contains("prompts") && (name.ends_with(".yaml") || name.ends_with(".yml")) {
        return Some("a prompts file");
    }
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > 1024 * 1024 {
        return None;
    }
    let text = std::fs::read(path).ok()?;
    let has = |needle: &[u8]| memchr::memmem::find(&text, needle).is_some();
    if has(b"AGE-SECRET-KEY-1") {
        return Some("an age identity");
    }
    if has(b"-----BEGIN OPENSSH PRIVATE KEY-----") || has(b"PRIVATE KEY-----") {
        return Some("a private key");
    }
    None
}

/// The cache entry of the workspace at `root`.
fn cache_entry(root: &Path) -> String {
    let id = hex::encode(Sha256::digest(root.as_os_str().as_encoded_bytes()));
    format!("flake-{}.json", &id[..32])
}

/// A cache entry as stored: the [`CacheFile`] with each distinct generator definition once
/// ([`super::gen_table`]), the table before the configurations naming its entries.
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    version: u32,
    root: PathBuf,
    global: String,
    generators: Vec<std::sync::Arc<NixGenerator>>,
    #[serde(borrow)]
    configs: &'a serde_json::value::RawValue,
}

fn read_cache(bytes: &[u8], root: &Path) -> Option<CacheFile> {
    let s: Stored<'_> = serde_json::from_slice(bytes).ok()?;
    if s.version != CACHE_VERSION || s.root != root {
        return None;
    }
    let configs = super::gen_table::read(s.generators, || {
        serde_json::from_str::<Vec<CachedConfig>>(s.configs.get())
    })
    .ok()?;
    Some(CacheFile {
        version: s.version,
        root: s.root,
        global: s.global,
        configs,
    })
}

fn write_cache(cache: &super::nix_cache::Cache, entry: &str, c: &CacheFile) {
    let (configs, generators) = super::gen_table::write(|| serde_json::to_string(&c.configs));
    let Some(configs) = configs
        .ok()
        .and_then(|t| serde_json::value::RawValue::from_string(t).ok())
    else {
        return;
    };
    let stored = Stored {
        version: c.version,
        root: c.root.clone(),
        global: c.global.clone(),
        generators,
        configs: &configs,
    };
    if let Ok(bytes) = serde_json::to_vec(&stored) {
        cache.write(entry, &bytes);
    }
}

/// Machines per batched call below which an output is not split further.
const MIN_CHUNK: usize = 8;

/// Default memory budget of one `nix eval` process, in MiB (`--eval-memory`).
pub(crate) const DEFAULT_EVAL_MEMORY_MIB: u64 = 2048;

/// The memory budget of one `nix eval` process, in MiB (set once by the CLI).
static EVAL_MEMORY_MIB: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(DEFAULT_EVAL_MEMORY_MIB);

/// Sets the memory budget of one `nix eval` process (`--eval-memory`), in MiB (at least 1).
pub(crate) fn set_eval_memory_mib(mib: u64) {
    EVAL_MEMORY_MIB.store(mib.max(1), std::sync::atomic::Ordering::Relaxed);
}

/// What one `nix eval` costs before any machine (Nix, nixpkgs' lib, the module system), and
/// per NixOS machine held in the same process: measured on the 2020 nixpkgs, 1.6 GB per process
/// for 100 machines in two processes, 6.4 GB for 400, 691 MiB for a chunk of 20 (every evaluated configuration stays reachable until the JSON
/// is printed, so a process's memory grows with its machines, and so does each garbage
/// collection's scan: that is what made one process per output super-linear in time).
const BASE_MIB: u64 = 256;
const PER_MACHINE_MIB: u64 = 32;

/// Machines per `nix eval` that fit the budget (at least one).
fn budget_chunk(budget_mib: u64) -> usize {
    (budget_mib.saturating_sub(BASE_MIB) / PER_MACHINE_MIB).max(1) as usize
}

/// Splits `n` configurations into chunks: enough to keep each under the memory budget
/// (`max` machines) and to give every core one, never below [`MIN_CHUNK`] machines a chunk
/// unless the budget asks for it. Returns the chunk length.
fn chunk_len(n: usize, max: usize, cores: usize) -> usize {
    let for_budget = n.div_ceil(max);
    let for_cores = cores.min(n.div_ceil(MIN_CHUNK));
    n.div_ceil(for_budget.max(for_cores).max(1))
}

/// How the last evaluation was split, for progress lines and `--plan`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct EvalStats {
    /// Configurations evaluated.
    pub machines: usize,
    /// `nix eval` processes that evaluated them.
    pub chunks: usize,
    /// Processes run at once.
    pub parallel: usize,
    /// The memory budget of one process, in MiB.
    pub budget_mib: u64,
}

/// One evaluated configuration: what it contributes to the [`Flake`].
struct Evaluated {
    id: nix_trace::ConfigId,
    machine: Option<NixMachine>,
    homes: Vec<NixHome>,
}

/// What a batched evaluation returns: the configurations in output and attribute order, and
/// each process's trace with its output.
struct Evaluation {
    configs: Vec<Evaluated>,
    traces: Vec<(String, Option<nix_trace::Trace>)>,
}

/// Runs the batched evaluation of the outputs (of `only`'s configurations when given): each
/// output's configurations are split into chunks that fit the memory budget (see
/// [`chunk_len`]), evaluated by at most one `nix eval` per core at once, never one per machine.
/// Says on stderr how many chunks ran. `rel`: the workspace's directory under the source's top.
fn evaluate(
    root: &Path,
    source: &Source,
    rel: &Path,
    only: Option<&[nix_trace::ConfigId]>,
) -> Result<Evaluation, Error> {
    let flake = source.flake_ref(root);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let names: Vec<Result<Vec<String>, Error>> = match only {
        Some(ids) => OUTPUTS
            .iter()
            .map(|&(output, _)| {
                Ok(ids
                    .iter()
                    .filter(|c| c.output == output)
                    .map(|c| c.attr.clone())
                    .collect())
            })
            .collect(),
        None => with_attr_names(root, &flake, || ()).0,
    };
    let budget_mib = EVAL_MEMORY_MIB.load(std::sync::atomic::Ordering::Relaxed);
    let max = budget_chunk(budget_mib);
    let mut jobs: Vec<(&str, bool, Vec<String>)> = Vec::new();
    for (&(output, darwin), names) in OUTPUTS.iter().zip(names) {
        let names = names?;
        if names.is_empty() {
            continue;
        }
        for chunk in names.chunks(chunk_len(names.len(), max, cores)) {
            jobs.push((output, darwin, chunk.to_vec()));
        }
    }
    let parallel = cores.min(jobs.len()).max(1);
    let results = run_pool(root, &jobs, parallel, |(output, darwin, chunk)| {
        eval_output(root, &flake, rel, output, *darwin, chunk)
    });
    let mut all = Evaluation {
        configs: Vec::new(),
        traces: Vec::new(),
    };
    for (r, (output, _, _)) in results.into_iter().zip(&jobs) {
        let (configs, trace) = r?;
        all.configs.extend(configs);
        all.traces.push((output.to_string(), trace));
    }
    let stats = EvalStats {
        machines: jobs.iter().map(|j| j.2.len()).sum(),
        chunks: jobs.len(),
        parallel,
        budget_mib,
    };
    if stats.machines > MIN_CHUNK {
        eprintln!(
            "varsmith: evaluated {} flake configurations in {} chunk(s), {} at once (eval memory budget {} MiB per process)",
            stats.machines, stats.chunks, stats.parallel, stats.budget_mib
        );
    }
    Ok(all)
}

/// Runs `f` on every job with `parallel` threads (each takes the next job); results in job
/// order.
fn run_pool<J: Sync, T: Send>(
    root: &Path,
    jobs: &[J],
    parallel: usize,
    f: impl Fn(&J) -> Result<T, Error> + Sync,
) -> Vec<Result<T, Error>> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<Result<T, Error>>>> =
        jobs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..parallel)
            .map(|_| {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { break };
                        let r = f(job);
                        *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            let _ = join(root, h);
        }
    });
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_else(|| Err(flake_err(root, "nix evaluation thread panicked")))
        })
        .collect()
}

fn join<T>(
    root: &Path,
    h: std::thread::ScopedJoinHandle<'_, Result<T, Error>>,
) -> Result<T, Error> {
    h.join()
        .unwrap_or_else(|_| Err(flake_err(root, "nix evaluation thread panicked")))
}

/// The configuration names of one output (empty when the flake has no such output); forces
/// nothing of the configurations.
/// The configurations' names of every output in [`OUTPUTS`] (one `nix eval` each, in
/// parallel), while `f` runs on this thread.
fn with_attr_names<T>(
    root: &Path,
    flake: &str,
    f: impl FnOnce() -> T,
) -> (Vec<Result<Vec<String>, Error>>, T) {
    std::thread::scope(|s| {
        let handles: Vec<_> = OUTPUTS
            .iter()
            .map(|&(output, _)| s.spawn(move || attr_names(root, flake, output)))
            .collect();
        let t = f();
        (handles.into_iter().map(|h| join(root, h)).collect(), t)
    })
}

fn attr_names(root: &Path, flake: &str, output: &str) -> Result<Vec<String>, Error> {
    match nix_json(root, &format!("{flake}#{output}"), "builtins.attrNames") {
        Ok(o) => serde_json::from_slice(&o).map_err(|e| {
            flake_err(
                root,
                format!("{output}: unexpected output of nix eval: {e}"),
            )
        }),
        Err(err)
            if err.contains("does not provide attribute")
                && err.contains(&format!("'{output}'")) =>
        {
            Ok(Vec::new())
        }
        Err(err) => Err(flake_err(
            root,
            format!(
                "evaluating {output} failed:\n{}",
                crate::term::escape_controls_keep_lines(err.trim())
            ),
        )),
    }
}

/// A Nix string literal of `s`.
fn nix_string(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace("${", "\\${");
    format!("\"{escaped}\"")
}

/// One `nix eval -vv --json FLAKE#OUTPUT --apply F` over the configurations `names`: each
/// configuration's contribution (in attribute order) and the process's trace.
fn eval_output(
    root: &Path,
    flake: &str,
    rel: &Path,
    output: &str,
    darwin: bool,
    names: &[String],
) -> Result<(Vec<Evaluated>, Option<nix_trace::Trace>), Error> {
    let only: Vec<String> = names
        .iter()
        .map(|n| format!("{} = null;", nix_string(n)))
        .collect();
    let inner = format!(
        "cfgs: ({}) (builtins.intersectAttrs {{ {} }} cfgs)",
        apply_of(output),
        only.join(" ")
    );
    let nonce = nix_trace::nonce();
    let apply = nix_trace::with_markers(&inner, &nonce);
    let (stdout, stderr) = match nix_run(root, &format!("{flake}#{output}"), &apply, true) {
        Ok(o) => o,
        Err(err) => {
            // A flake without this output has no such machines.
            if err.contains("does not provide attribute") && err.contains(&format!("'{output}'")) {
                return Ok((Vec::new(), None));
            }
            return Err(locate_failure(root, flake, output, &err));
        }
    };
    let (trace, _) = nix_trace::parse(&stderr, &nonce, names, rel);
    let map: IndexMap<String, Option<Entry>> = serde_json::from_slice(&stdout).map_err(|e| {
        flake_err(
            root,
            format!("{output}: unexpected output of nix eval: {e}"),
        )
    })?;
    let mut out = Vec::new();
    for (attr, e) in map {
        let mut c = Evaluated {
            id: nix_trace::ConfigId {
                output: output.to_string(),
                attr: attr.clone(),
            },
            machine: None,
            homes: Vec::new(),
        };
        if let Some(e) = e {
            if let Some(mut m) = e.machine {
                m.attr = format!("{output}.{attr}");
                m.darwin = darwin;
                c.machine = Some(m);
            }
            for (user, h) in e.homes {
                let Some(mut h) = h else { continue };
                h.attr = if output == HOMES_OUTPUT {
                    format!("{output}.{attr}")
                } else {
                    format!("{output}.{attr}.config.home-manager.users.{user}")
                };
                c.homes.push(h);
            }
        }
        out.push(c);
    }
    Ok((out, trace))
}

/// The batched call failed: finds the configuration that fails (one call per machine, only on
/// this error path) so the error names it, with Nix's own message.
fn locate_failure(root: &Path, flake: &str, output: &str, batch_err: &str) -> Error {
    let shown = |e: &str| crate::term::escape_controls_keep_lines(e.trim());
    let names = nix_json(root, &format!("{flake}#{output}"), "builtins.attrNames")
        .ok()
        .and_then(|v| serde_json::from_slice::<Vec<String>>(&v).ok())
        .unwrap_or_default();
    let one = format!("c: (({}) {{ m = c; }}).m", apply_of(output));
    for attr in names {
        if let Err(e) = nix_json(root, &format!("{flake}#{output}.\"{attr}\""), &one) {
            return flake_err(
                root,
                format!(
                    "evaluating {output}.{attr} ({} {attr}) failed:\n{}",
                    if output == HOMES_OUTPUT {
                        "home"
                    } else {
                        "machine"
                    },
                    shown(&e)
                ),
            );
        }
    }
    flake_err(
        root,
        format!("evaluating {output} failed:\n{}", shown(batch_err)),
    )
}

/// `nix eval --json INSTALLABLE --apply F`: stdout, or stderr as the error.
fn nix_json(root: &Path, installable: &str, apply: &str) -> Result<Vec<u8>, String> {
    nix_run(root, installable, apply, false).map(|(o, _)| o)
}

/// `nix eval [-vv] --json INSTALLABLE --apply F`: stdout and stderr, or stderr as the error
/// (without `-vv`'s file log, which only [`nix_trace::parse`] reads).
fn nix_run(
    root: &Path,
    installable: &str,
    apply: &str,
    verbose: bool,
) -> Result<(Vec<u8>, String), String> {
    let out = crate::child::command("nix")
        .args([
            "--extra-experimental-features",
            "nix-command flakes",
            "eval",
            "--json",
            // varsmith caches the result itself; Nix's own evaluation cache only makes the
            // parallel calls wait on its SQLite lock.
            "--option",
            "eval-cache",
            "false",
            "--option",
            "allow-import-from-derivation",
            if ifd_allowed() { "true" } else { "false" },
        ])
        .args(if verbose { &["-vv"][..] } else { &[] })
        .args(extra_flags()?)
        .arg(installable)
        .args(["--apply", apply])
        .current_dir(root)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run nix: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        Ok((out.stdout, stderr))
    } else if verbose {
        let kept: Vec<&str> = stderr
            .lines()
            .filter(|l| {
                !l.starts_with("evaluating file '") && !l.starts_with("trace: varsmith-window ")
            })
            .collect();
        Err(explain_ifd(kept.join("\n")))
    } else {
        Err(explain_ifd(stderr))
    }
}

/// `nix eval --json <flake>#<output> --apply <apply>` on the workspace flake (as the machines'
/// evaluation sees it: git-tracked files, `VARSMITH_NIX_FLAGS`, IFD refused unless allowed);
/// `Ok(None)` when the flake has no such output. For evaluations other than the machines'
/// (home-manager users: [`super::users`]).
pub(crate) fn eval_output_json(
    root: &Path,
    output: &str,
    apply: &str,
) -> Result<Option<Vec<u8>>, Error> {
    let flake = Source::of(root)?.flake_ref(root);
    match nix_json(root, &format!("{flake}#{output}"), apply) {
        Ok(o) => Ok(Some(o)),
        Err(err)
            if err.contains("does not provide attribute")
                && err.contains(&format!("'{output}'")) =>
        {
            Ok(None)
        }
        Err(err) => Err(flake_err(
            root,
            format!(
                "evaluating {output} failed:\n{}",
                crate::term::escape_controls_keep_lines(err.trim())
            ),
        )),
    }
}

impl NixMachine {
    /// `flake:<output>.<attr>`, for messages and `--plan`.
    pub fn source(&self) -> String {
        format!("flake:{}", self.attr)
    }

    /// The machine's generators as validated definitions (same checks and defaults as YAML).
    pub fn definitions(
        &self,
    ) -> Result<IndexMap<String, std::sync::Arc<super::Generator>>, String> {
        let mut out = IndexMap::new();
        for (name, g) in &self.generators {
            let src = PathBuf::from(format!(
                "{}.config.varsmith.generators.{name}",
                self.source()
            ));
            let def = to_generator(name, &src, g, self.coreutils.as_ref())
                .map_err(|e| format!("machine {}, generator {name}: {e}", self.machine_name))?;
            out.insert(name.clone(), std::sync::Arc::new(def));
        }
        Ok(out)
    }
}

/// One exported generator as a [`super::Generator`]; `coreutils` goes on its PATH after the
/// runtime inputs (unless one of them is that same package).
fn to_generator(
    name: &str,
    src: &Path,
    g: &NixGenerator,
    coreutils: Option<&StoreInput>,
) -> Result<super::Generator, String> {
    use super::generator::{RawFile, RawPrompt, parse_files, parse_prompts};
    super::names::check_component(name).map_err(|e| format!("generator name: {e}"))?;
    let mut files_raw = IndexMap::new();
    for (f, v) in &g.files {
        let get = |k: &str| v.get(k).filter(|x| !x.is_null());
        let needed_for = match get("neededFor") {
            Some(x) => Some(
                serde_json::from_value(x.clone())
                    .map_err(|e| format!("file {f}: neededFor: {e}"))?,
            ),
            None => None,
        };
        let raw = RawFile {
            secret: get("secret").and_then(|x| x.as_bool()),
            owner: get("owner").and_then(|x| x.as_str()).map(str::to_string),
            group: get("group").and_then(|x| x.as_str()).map(str::to_string),
            mode: get("mode").cloned(),
            deploy: get("deploy").and_then(|x| x.as_bool()),
            needed_for,
        };
        files_raw.insert(f.clone(), Some(raw));
    }
    let mut files = parse_files(name, files_raw)?;
    let mut prompts_raw = IndexMap::new();
    for (p, v) in &g.prompts {
        let kind = match v.get("type").filter(|x| !x.is_null()) {
            Some(t) => Some(
                serde_json::from_value(t.clone()).map_err(|e| format!("prompt {p}: type: {e}"))?,
            ),
            None => None,
        };
        let raw = RawPrompt {
            kind,
            description: v
                .get("description")
                .and_then(|x| x.as_str())
                .map(str::to_string),
            persist: v.get("persist").and_then(|x| x.as_bool()).unwrap_or(false),
            display: match v.get("display").filter(|x| !x.is_null()) {
                Some(d) => Some(
                    serde_json::from_value(d.clone())
                        .map_err(|e| format!("prompt {p}: display: {e}"))?,
                ),
                None => None,
            },
        };
        prompts_raw.insert(p.clone(), Some(raw));
    }
    let prompts = parse_prompts(name, prompts_raw, &files)?;
    super::generator::add_prompt_files(&prompts, &mut files);
    for dep in &g.dependencies {
        super::names::check_component(dep).map_err(|e| format!("dependency {e}"))?;
    }
    if files.is_empty() {
        return Err("declares no files".into());
    }
    Ok(super::Generator {
        name: name.to_string(),
        source: src.to_path_buf(),
        description: String::new(),
        share: g.share,
        dependencies: g.dependencies.clone(),
        runtime_inputs: g.runtime_inputs.iter().map(|i| i.name.clone()).collect(),
        prompts,
        files,
        validation: g.validation.clone(),
        script: g.script.clone(),
        pinned: Some({
            let mut inputs = g.runtime_inputs.clone();
            inputs.extend(coreutils.filter(|c| !inputs.contains(c)).cloned());
            inputs
        }),
        script_refs: g.script_inputs.clone(),
    })
}

/// Realises the runtime inputs whose outputs are missing, in one `nix-store --realise` with the
/// `--option` settings of [`NIX_FLAGS_ENV`] (and, like every child, no key material in its
/// environment: a runtime input's builder is code from the flake).
pub(crate) fn realise(inputs: &[&StoreInput]) -> Result<(), String> {
    let mut drvs: Vec<&str> = inputs
        .iter()
        .filter(|i| !Path::new(&i.out).exists())
        .map(|i| i.drv.as_str())
        .collect();
    drvs.sort_unstable();
    drvs.dedup();
    if drvs.is_empty() {
        return Ok(());
    }
    if let Some(bad) = drvs.iter().find(|d| d.is_empty() || !d.starts_with('/')) {
        return Err(format!(
            "a runtime input has no derivation to build it from ({bad:?})"
        ));
    }
    let out = crate::child::command("nix-store")
        .arg("--realise")
        .args(extra_options()?)
        .args(&drvs)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run nix-store --realise: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "realising the runtime inputs failed:\n{}",
            crate::term::escape_controls_keep_lines(String::from_utf8_lossy(&out.stderr).trim())
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache of configurations `(attr, shared generators (name, dependencies))`, the last
    /// one's generators on a home instead of a machine.
    /// A shared generator: its name and dependencies.
    type Shared<'a> = (&'a str, &'a [&'a str]);

    fn cache_of(configs: &[(&str, &[Shared<'_>])]) -> CacheFile {
        let gens = |gs: &[Shared<'_>]| -> serde_json::Value {
            gs.iter()
                .map(|(g, deps)| {
                    let d = serde_json::json!({ "share": true, "dependencies": deps,
                        "validation": null, "script": "", "runtimeInputs": [], "files": {},
                        "prompts": {} });
                    (g.to_string(), d)
                })
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        let n = configs.len();
        let configs = configs
            .iter()
            .enumerate()
            .map(|(i, (attr, gs))| {
                let (machine, homes) = if i + 1 < n {
                    let m = serde_json::json!({ "machineName": attr, "system": null,
                        "generators": gens(gs) });
                    (Some(serde_json::from_value(m).unwrap()), Vec::new())
                } else {
                    let h = serde_json::json!({ "userName": attr, "generators": gens(gs) });
                    (None, vec![serde_json::from_value(h).unwrap()])
                };
                CachedConfig {
                    output: "nixosConfigurations".into(),
                    attr: attr.to_string(),
                    private: Vec::new(),
                    key: String::new(),
                    machine,
                    homes,
                }
            })
            .collect();
        CacheFile {
            version: CACHE_VERSION,
            root: PathBuf::from("/w"),
            global: String::new(),
            configs,
        }
    }

    #[test]
    fn a_focus_takes_the_machines_sharing_its_generators_and_their_dependencies() {
        let c = cache_of(&[
            ("a", &[("wifi", &["ca"])]),
            ("b", &[("wifi", &[])]),
            ("c", &[("ca", &[])]),
            ("d", &[("other", &[])]),
            ("e", &[]),
            ("alice", &[("ca", &[])]),
        ]);
        // a uses wifi (b too), which depends on ca (c and alice's home declare it).
        assert_eq!(c.focus(&["a".into()]), Some(vec![0, 1, 2, 5]));
        assert_eq!(c.focus(&["e".into()]), Some(vec![4]));
        assert_eq!(c.focus(&["d".into(), "e".into()]), Some(vec![3, 4]));
        // Unknown to the cache, no focus, or everything: no partial evaluation.
        assert_eq!(c.focus(&["zeta".into()]), None);
        assert_eq!(c.focus(&[]), None);
        assert_eq!(
            c.focus(&["a".into(), "d".into(), "e".into()]),
            None,
            "every configuration"
        );
    }

    #[test]
    fn only_option_settings_reach_nix_store() {
        let flags: Vec<String> = [
            "--option",
            "substituters",
            "",
            "--no-write-lock-file",
            "--override-input",
            "nixpkgs",
            "file:///k/n.tar.gz",
            "--option",
            "sandbox",
            "false",
            "--option",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            options_of(&flags),
            [
                "--option",
                "substituters",
                "",
                "--option",
                "sandbox",
                "false"
            ]
        );
    }

    #[test]
    fn ifd_refusal_names_the_opt_in() {
        let nix = "error: cannot build '/nix/store/x-leak.drv' during evaluation because the option 'allow-import-from-derivation' is disabled".to_string();
        if ifd_allowed() {
            return;
        }
        let e = explain_ifd(nix.clone());
        assert!(
            e.contains("import-from-derivation") && e.contains("--allow-ifd"),
            "{e}"
        );
        assert!(e.ends_with(&nix), "{e}");
        assert_eq!(explain_ifd("other".into()), "other");
    }
}

#[cfg(test)]
mod chunks {
    use super::*;

    #[test]
    fn chunks_fit_the_budget_and_give_every_core_one() {
        // 2 GiB: (2048 - 256) / 32 = 56 machines a process.
        assert_eq!(budget_chunk(2048), 56);
        assert_eq!(budget_chunk(100), 1);
        // 1000 machines, 2 cores: 18 chunks of at most 56.
        let l = chunk_len(1000, 56, 2);
        assert!(l <= 56 && 1000usize.div_ceil(l) == 18, "{l}");
        // 100 machines fit one process, split per core.
        assert_eq!(chunk_len(100, 112, 2), 50);
        // Small fleets are not split below MIN_CHUNK machines.
        assert_eq!(chunk_len(3, 112, 2), 3);
        assert_eq!(chunk_len(12, 112, 4), 6);
        // A tiny budget wins over MIN_CHUNK.
        assert_eq!(chunk_len(5, 1, 2), 1);
    }
}
