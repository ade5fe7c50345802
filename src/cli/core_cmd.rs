//! Core commands: init, admin, machine, generate, check, list, get, set, rekey.

use std::io::Write;
use std::path::PathBuf;

use crate::UsageError;
use crate::keys::Identities;
use crate::secret::SecretBytes;
use crate::store::lock::{Mode, WorkspaceLock};
use crate::store::{self, Owner};
use crate::workspace::{INVENTORY_FILE, Workspace};
use anyhow::Context as _;

use crate::cli::args::{AdminCmd, CmdResult};

/// What every command needs: the workspace directory option and the identity files.
pub(crate) struct Context {
    /// `-C DIR`.
    pub dir: Option<PathBuf>,
    /// `--identity FILE…`.
    pub identity: Vec<PathBuf>,
}

impl Context {
    /// Builds the context from the global options.
    pub(crate) fn new(dir: Option<PathBuf>, identity: Vec<PathBuf>) -> Self {
        // A pending host key rotation verifies with these too (store::rotation).
        crate::store::rotation::identity_files(&identity);
        Context { dir, identity }
    }

    /// Loads the identities (explicit files first, then sops' sources).
    pub(crate) fn identities(&self) -> anyhow::Result<Identities> {
        Ok(Identities::discover(&self.identity)?)
    }

    /// Finds and loads the workspace.
    pub(crate) fn workspace(&self) -> anyhow::Result<Workspace> {
        Ok(Workspace::discover(self.dir.as_deref())?.with_flake()?)
    }

    /// [`Context::workspace`] for a command on the machines `focus` only (empty: all): a flake
    /// whose shared files changed has only those (and the machines sharing generators with
    /// them) evaluated.
    pub(crate) fn workspace_for(&self, focus: &[String]) -> anyhow::Result<Workspace> {
        Ok(Workspace::discover(self.dir.as_deref())?.with_flake_for(focus)?)
    }

    /// Finds and loads the workspace; a flake that does not evaluate gives the machines of the
    /// stored layout instead (`sops/machines/<m>/`: key.json and manifests), with one warning
    /// naming Nix's error. For `get`, `list` and `rekey`, which need no generator script.
    pub(crate) fn stored_workspace(&self) -> anyhow::Result<Workspace> {
        let ws = Workspace::discover(self.dir.as_deref())?.with_flake_or_stored()?;
        if let Some(s) = &ws.stored {
            eprintln!(
                "warning: the flake does not evaluate ({}); working from the stored layout (sops/machines/<m>/: key.json and manifests): owners, modes and staleness of its machines' vars are unknown",
                crate::term::escape_controls_keep_lines(&s.error)
            );
        }
        Ok(ws)
    }

    /// Finds and loads the workspace's `varsmith.yaml` only, never evaluating a flake: for
    /// commands that edit what lives there (admins).
    pub(crate) fn yaml_workspace(&self) -> anyhow::Result<Workspace> {
        Ok(Workspace::discover(self.dir.as_deref())?)
    }
}

/// The workspace lock for a command that writes (`Exclusive`) or must not see a half-written
/// run (`Shared`).
fn lock(root: &std::path::Path, mode: Mode, what: &str) -> anyhow::Result<Option<WorkspaceLock>> {
    Ok(WorkspaceLock::acquire(root, mode, what)?)
}

pub(super) fn init(
    ctx: &Context,
    admin: Option<String>,
    recipient: Option<String>,
    new_key: bool,
) -> CmdResult {
    let root = ctx.dir.clone().unwrap_or(std::env::current_dir()?);
    let name = admin
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "admin".into());
    let recipient = crate::ops::admin::init(&root, &name, || match recipient {
        Some(r) => {
            crate::keys::validate_recipient(&r)?;
            Ok(r)
        }
        None => {
            let file = std::env::var_os("SOPS_AGE_KEY_FILE")
                .map(PathBuf::from)
                .or_else(crate::keys::default_key_file)
                .ok_or_else(|| {
                    UsageError::new("no key file location: set HOME or SOPS_AGE_KEY_FILE")
                })?;
            super::init_key::admin_recipient(&file, new_key)
        }
    })?;
    println!(
        "created {} with admin {name} ({recipient})",
        root.join(INVENTORY_FILE).display()
    );
    Ok(0)
}

pub(super) fn admin(ctx: &Context, cmd: AdminCmd) -> CmdResult {
    use crate::ops::admin::{self, AdminAdd};
    match cmd {
        AdminCmd::Keygen { output } => {
            let file = output
                .or_else(|| std::env::var_os("SOPS_AGE_KEY_FILE").map(PathBuf::from))
                .or_else(crate::keys::default_key_file)
                .ok_or_else(|| UsageError::new("no key file location: pass -o FILE"))?;
            let r = crate::keys::keygen::append_admin_key(&file)?;
            eprintln!("appended a new age key to {}", file.display());
            println!("{r}");
            Ok(0)
        }
        AdminCmd::Add {
            name,
            recipient,
            replace,
        } => {
            let mut ws = ctx.yaml_workspace()?;
            let (added, same_key) = admin::add(&mut ws, &name, &recipient, replace)?;
            let done = match added {
                AdminAdd::Unchanged => {
                    eprintln!("admin {name} already has this key; nothing changed");
                    return Ok(0);
                }
                AdminAdd::New => "added",
                AdminAdd::Replaced => "replaced",
            };
            for other in same_key {
                eprintln!(
                    "warning: admin {other} already has this key; {name} is a second name for it"
                );
            }
            eprintln!("admin {name} {done}; run `varsmith rekey` to re-encrypt existing secrets");
            Ok(0)
        }
        AdminCmd::Remove { name } => {
            let mut ws = ctx.yaml_workspace()?;
            admin::remove(&mut ws, &name)?;
            eprintln!(
                "admin {name} removed; run `varsmith rekey`, and rotate the secrets they could read (`generate --regenerate`)"
            );
            Ok(0)
        }
    }
}

pub(super) fn generate(ctx: &Context, a: crate::cli::args::GenerateArgs) -> CmdResult {
    // Machines only: a home's user may be any machine's, so `--user` evaluates everything.
    let focus: &[String] = if a.all || !a.users.is_empty() {
        &[]
    } else {
        &a.hosts
    };
    let ws = ctx.workspace_for(focus)?;
    let mut limits = crate::run::limits::Limits::default();
    if let Some(t) = a.timeout {
        limits.timeout = std::time::Duration::from_secs(t);
    }
    if let Some(m) = a.max_output {
        limits.max_output = m;
    }
    let opts = crate::ops::generate::Options {
        select: crate::plan::Selection {
            hosts: if a.all { Vec::new() } else { a.hosts },
            users: if a.all { Vec::new() } else { a.users },
            generators: a.generators,
            regenerate: a.regenerate,
        },
        rotate_host_key: a.rotate_host_key,
        limits,
        plan_only: a.plan,
        jobs: a.jobs.unwrap_or(0),
        no_sandbox: a.no_sandbox,
        prompt_args: a.prompts,
        prompts_file: a.prompts_file,
        commit: a.commit,
    };
    // Loaded by `generate` after the runtime inputs are realised (never for a plan).
    let report = crate::ops::generate::run(&ws, &opts, || ctx.identities())?;
    if a.plan {
        let broken: Vec<_> = crate::ops::check::run(
            &ws,
            &opts.select.hosts,
            &opts.select.users,
            &Identities::new(),
        )?
        .findings
        .into_iter()
        .filter(|f| super::generate_out::BROKEN_KINDS.contains(&f.kind.as_str()))
        .filter(|f| {
            opts.select.generators.is_empty() || opts.select.generators.contains(&f.generator)
        })
        .collect();
        super::generate_out::plan(&report, &broken, a.json)?;
        return Ok(0);
    }
    if crate::process::signals::interrupted() {
        eprintln!("interrupted; temporary directories removed");
        return Ok(crate::error::EXIT_INTERRUPTED);
    }
    super::generate_out::summary(&report);
    super::generate_out::deploy_needed(&ws, &report)?;
    let code = crate::error::exit_code_of(report.failed.iter().map(|(_, f)| &f.kind));
    let code = if code == 0 && !report.skipped.is_empty() {
        crate::EXIT_PROBLEM
    } else {
        code
    };
    if a.json {
        super::generate_out::json(&report, code)?;
    }
    Ok(code)
}

pub(super) fn check(
    ctx: &Context,
    (hosts, users): (Vec<String>, Vec<String>),
    json: bool,
    verbose: bool,
) -> CmdResult {
    let ws = ctx.workspace()?;
    let ids = ctx.identities()?;
    let _lock = lock(&ws.root, Mode::Shared, "varsmith check")?;
    let report = crate::ops::check::run(&ws, &hosts, &users, &ids)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(if report.is_clean() { 0 } else { 1 });
    }
    if verbose {
        for f in &report.findings {
            println!("{}/{}: {}: {}", f.owner, f.generator, f.kind, f.detail);
        }
    } else {
        for l in crate::ops::check_group::group(&report.findings) {
            println!("{}", l.text);
        }
    }
    // Notices (a script edited since generation) never fail the check.
    for f in &report.notices {
        println!("{}/{}: {}: {}", f.owner, f.generator, f.kind, f.detail);
    }
    let macs = macs_summary(&report, &ids);
    if report.is_clean() {
        eprintln!(
            "ok: {} generators and {} sops files checked ({macs})",
            report.checked, report.files
        );
    } else {
        eprintln!(
            "{} problems in {} generators and {} sops files checked ({macs})",
            report.findings.len(),
            report.checked,
            report.files
        );
    }
    Ok(if report.is_clean() { 0 } else { 1 })
}

/// What the MAC half of a check did. Files that failed verification (`mac`, `corrupt`) are
/// counted as such, never blamed on the identities not opening them.
fn macs_summary(report: &crate::ops::check::Report, ids: &Identities) -> String {
    if ids.is_empty() {
        return "structure only: no identity to verify MACs".to_string();
    }
    let failed: std::collections::BTreeSet<&str> = report
        .findings
        .iter()
        .filter(|f| matches!(f.kind.as_str(), "mac" | "corrupt" | "unverified"))
        .map(|f| f.source.as_str())
        .collect();
    let unopened = report
        .files
        .saturating_sub(report.mac_verified)
        .saturating_sub(failed.len());
    let mut parts = vec![format!("{} MACs verified", report.mac_verified)];
    let bad = report
        .findings
        .iter()
        .filter(|f| matches!(f.kind.as_str(), "mac" | "corrupt"))
        .map(|f| f.source.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if bad > 0 {
        parts.push(format!("{bad} files failed verification (above)"));
    }
    if unopened > 0 && !ids.deliberate() {
        parts.push(format!(
            "{unopened} files structure only: {} does not open them",
            ids.source_names()
        ));
    }
    parts.join(", ")
}

/// A resolved target: its owner, its own generators, how it is shown, the command that
/// generates for it.
type Resolved<'d> = (
    Owner,
    &'d indexmap::IndexMap<String, std::sync::Arc<crate::workspace::Generator>>,
    String,
    String,
);

/// Whose vars `list`, `get` and `set` address: a machine, or a home-manager user (`--user`).
pub(crate) enum Target {
    /// A machine of the inventory or the flake.
    Machine(String),
    /// `alice` or `alice@stibnite` (see [`crate::plan::select_users`]).
    User(String),
}

impl Target {
    /// From `get`/`set`'s arguments: `HOST GEN/FILE`, or `--user U GEN/FILE`.
    pub(crate) fn of(
        host: String,
        var: Option<String>,
        user: Option<String>,
    ) -> Result<(Target, String), UsageError> {
        match (user, var) {
            (None, Some(var)) => Ok((Target::Machine(host), var)),
            (Some(u), None) => Ok((Target::User(u), host)),
            (None, None) => Err(UsageError::new(
                "expected HOST GEN/FILE (or --user USER GEN/FILE)",
            )),
            (Some(_), Some(_)) => Err(UsageError::new(
                "--user names whose var it is: pass GEN/FILE only, not a machine too",
            )),
        }
    }

    /// The owner of the target's own (non-shared) generators, its generators, and how it is
    /// shown (`machine m1`, `user alice`), plus the command that generates for it.
    pub(crate) fn resolve<'d>(
        &self,
        ws: &Workspace,
        defs: &'d crate::workspace::Definitions,
    ) -> Result<Resolved<'d>, UsageError> {
        match self {
            Target::Machine(host) => {
                let gens = defs
                    .machines
                    .get(host)
                    .ok_or_else(|| UsageError::new(ws.inventory.unknown_machine(host)))?;
                Ok((
                    Owner::Machine(host.clone()),
                    gens,
                    format!("machine {host}"),
                    format!("varsmith generate {host}"),
                ))
            }
            Target::User(u) => {
                let keys = crate::plan::select_users(ws, defs, std::slice::from_ref(u))?;
                let [key] = keys.as_slice() else {
                    return Err(UsageError::new(format!(
                        "user {u} has several stores ({}): name one with --user {}",
                        keys.join(", "),
                        keys.join(" or --user ")
                    )));
                };
                let gens = defs
                    .users
                    .get(key)
                    .ok_or_else(|| UsageError::new(format!("unknown user {key:?}")))?;
                Ok((
                    Owner::User(key.clone()),
                    gens,
                    format!("user {key}"),
                    format!("varsmith generate --user {key}"),
                ))
            }
        }
    }
}

/// Splits `GEN/FILE` and finds its owner (machine, user or shared) and definition, and the
/// command that generates it.
fn resolve_var(
    ws: &Workspace,
    target: &Target,
    var: &str,
) -> anyhow::Result<(
    Owner,
    std::sync::Arc<crate::workspace::Generator>,
    String,
    String,
)> {
    let (gname, file) = var
        .split_once('/')
        .ok_or_else(|| UsageError::new(format!("{var:?}: expected GENERATOR/FILE")))?;
    let defs = ws.definitions()?;
    let (own, gens, shown, cmd) = target.resolve(ws, &defs)?;
    let g = gens.get(gname).ok_or_else(|| {
        UsageError::new(match target {
            Target::Machine(host) => {
                defs.generator_not_used(gname, Some(host), &ws.declare_hint(Some(host), gname))
            }
            Target::User(_) => format!(
                "{shown} does not use a generator {gname:?} (its generators: {})",
                gens.keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    })?;
    if !g.files.contains_key(file) {
        let known = g.files.keys().map(String::as_str);
        return Err(UsageError::new(format!(
            "{shown}, generator {gname}: {}",
            crate::suggest::unknown("file", file, known)
        ))
        .into());
    }
    let owner = if g.share { Owner::Shared } else { own };
    Ok((owner, g.clone(), file.to_string(), cmd))
}

pub(super) fn get(ctx: &Context, target: &Target, var: &str) -> CmdResult {
    let ws = ctx.stored_workspace()?;
    let (owner, g, file, _) = resolve_var(&ws, target, var)?;
    let spec = &g.files[&file];
    let bytes: SecretBytes = if spec.secret {
        let ids = ctx.identities()?;
        let path = if spec.deploy {
            owner.secrets_file(&ws.root, &g.name)
        } else {
            owner.admin_secrets_file(&ws.root, &g.name)
        };
        let data = store::read_file(&ws.root, &path)?
            .with_context(|| format!("{}: not generated yet", path.display()))?;
        let origin = path
            .strip_prefix(&ws.root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let mut vals = crate::sops::decrypt_flat(&data, crate::sops::Format::Yaml, &ids, &origin)?;
        vals.shift_remove(&file)
            .ok_or_else(|| anyhow::anyhow!("{origin}: has no key {file}"))?
            .into()
    } else {
        let p = owner.facts_dir(&ws.root, &g.name).join(&file);
        SecretBytes::new(
            store::read_file(&ws.root, &p)?
                .with_context(|| format!("{}: not generated yet", p.display()))?,
        )
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes)?;
    out.flush()?;
    Ok(0)
}

pub(super) fn set(ctx: &Context, target: &Target, var: &str, raw: bool) -> CmdResult {
    let ws = ctx.workspace()?;
    let (owner, g, file, cmd) = resolve_var(&ws, target, var)?;
    let max = crate::run::limits::Limits::default().max_output;
    let value = super::set_input::read_value(&format!("{owner}/{}", g.name), &file, raw, max)?;
    let _lock = lock(&ws.root, Mode::Exclusive, "varsmith set")?;
    let ids = ctx.identities()?;
    let defs = ws.definitions()?;
    let graph = crate::plan::Graph::build(&defs);
    let i = graph
        .find(&owner, &g.name)
        .ok_or_else(|| anyhow::anyhow!("{owner}/{}: not in the graph", g.name))?;
    let n = &graph.nodes[i];
    // Start from the stored outputs (all of them must be readable), replace one, commit all.
    let mut outputs = store::read_outputs(&ws.root, &owner, &g, &ids).with_context(|| {
        format!(
            "{owner}/{}: `set` needs the generator's other outputs; run `{cmd}` first",
            g.name
        )
    })?;
    outputs.insert(file.clone(), value);
    let man = store::Manifest::read(&ws.root, &owner.manifest_file(&ws.root, &g.name))?;
    let recipients = store::expected_recipients(&ws, &defs, &owner, &g.name, false)?;
    let admin_recipients = store::expected_recipients(&ws, &defs, &owner, &g.name, true)?;
    let c = store::Commit {
        owner: &owner,
        generator: &g,
        outputs: &outputs,
        recipients: &recipients,
        admin_recipients: &admin_recipients,
        fingerprint: &n.fingerprint,
        deps: man.map(|m| m.deps).unwrap_or_default(),
    };
    let (_, written) = store::commit(&ws.root, &c)?;
    crate::store::git::stage(&ws, &written, false)?;
    eprintln!(
        "{owner}/{}/{file} set; generators depending on it are now stale",
        g.name
    );
    Ok(0)
}

pub(super) fn rekey(ctx: &Context, hosts: Vec<String>, users: Vec<String>) -> CmdResult {
    let ws = ctx.stored_workspace()?;
    let ids = ctx.identities()?;
    let _lock = lock(&ws.root, Mode::Exclusive, "varsmith rekey")?;
    let (done, failed) = crate::ops::rekey::run(&ws, &hosts, &users, &ids)?;
    for p in &done {
        eprintln!(
            "re-encrypted {}",
            p.strip_prefix(&ws.root).unwrap_or(p).display()
        );
    }
    for (label, e) in &failed {
        eprintln!("FAILED {label}: {e}");
    }
    if done.is_empty() && failed.is_empty() {
        eprintln!("every file already has the inventory's recipients");
    }
    for h in store::sopsfiles::machine_dirs(&ws.root)? {
        if !ws.inventory.machines.contains_key(&h) {
            eprintln!(
                "note: sops/machines/{h}/ belongs to no machine of {} and was left as it is (delete it if the machine is gone)",
                if ws.flake.is_empty() && !crate::workspace::nix::is_flake(&ws.root) {
                    INVENTORY_FILE
                } else {
                    "varsmith.yaml nor the flake"
                }
            );
        }
    }
    Ok(crate::error::exit_code_of(
        failed.iter().map(|(_, f)| &f.kind),
    ))
}
