//! The command line's arguments (clap derive).

// These doc comments are clap's `--help` text: `<workspace>` and `<root>` are placeholders there,
// not HTML.
#![allow(rustdoc::invalid_html_tags)]

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

pub(crate) use super::sops_cmd::SopsCmd;
pub(crate) use super::zerotier_cmd::ZerotierCmd;

/// Secrets and vars generator toolkit for NixOS and nix-darwin fleets.
#[derive(Parser, Debug)]
#[command(name = "varsmith", version, about, propagate_version = true)]
pub struct Cli {
    /// Workspace directory (default: the current directory or the nearest parent with varsmith.yaml).
    #[arg(short = 'C', long = "dir", global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// age identity file used for decryption (else SOPS_AGE_KEY, SOPS_AGE_KEY_FILE,
    /// ~/.config/sops/age/keys.txt). May be repeated.
    #[arg(long = "identity", short = 'i', global = true, value_name = "FILE")]
    pub identity: Vec<PathBuf>,
    /// Allow import-from-derivation while reading the flake (default: refused, since a builder
    /// run during evaluation is the flake's code). Also VARSMITH_ALLOW_IFD=1.
    #[arg(long = "allow-ifd", global = true)]
    pub allow_ifd: bool,
    /// Seconds to wait for the workspace lock held by another varsmith before giving up
    /// (default 60; else VARSMITH_LOCK_TIMEOUT).
    #[arg(long = "lock-timeout", global = true, value_name = "SECONDS", value_parser = crate::store::lock::seconds_arg)]
    pub lock_timeout: Option<std::time::Duration>,
    /// Memory budget of one flake-evaluation process (`nix eval`), e.g. `2G`, `512M` or MiB:
    /// machines are evaluated in chunks that fit it, one process per core at once.
    #[arg(long = "eval-memory", global = true, value_name = "SIZE", env = "VARSMITH_EVAL_MEMORY",
          default_value = "2G", value_parser = parse_mib)]
    pub eval_memory: u64,
    #[allow(missing_docs)] // each verb's doc is on its variant of `Command` (clap's help text)
    #[command(subcommand)]
    pub command: Command,
}

/// All subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new workspace (varsmith.yaml) and register an admin key.
    Init(InitArgs),
    /// Manage admins.
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Manage machines.
    #[command(subcommand)]
    Machine(MachineCmd),
    /// Manage home-manager users (their recipients; sops/users/<user>/key.json).
    #[command(subcommand)]
    User(UserCmd),
    /// Run generators that are missing or out of date, in dependency order.
    Generate(GenerateArgs),
    /// Report missing, stale, torn or wrongly-encrypted vars (exit 1 if any).
    Check(CheckArgs),
    /// List a machine's vars.
    List(ListArgs),
    /// Print one var's raw bytes to stdout.
    Get(GetArgs),
    /// Set one var: asked on the terminal (hidden), else read from stdin.
    Set(SetArgs),
    /// Re-wrap data keys after recipients changed (values and MAC unchanged).
    Rekey(RekeyArgs),
    /// Bring existing secrets over: a clan vars workspace, or hand-kept sops files.
    #[command(subcommand)]
    Import(super::import_cmd::ImportCmd),
    /// sops-compatible encrypt, decrypt, edit, set, unset, updatekeys, rotate, filestatus.
    #[command(subcommand)]
    Sops(SopsCmd),
    /// Install a machine's SSH host key (and the global identity) on a target over ssh.
    PushKeys(PushKeysArgs),
    /// Install a machine with nixos-anywhere, its host keys as --extra-files.
    Bootstrap(BootstrapArgs),
    /// Rotate a machine's host key safely: generate, deploy, push-keys, confirm, deploy
    /// (rerun to continue after a failure).
    RotateHostKey(RotateHostKeyArgs),
    /// Deploy machines with nixos-rebuild / nh / darwin-rebuild / clan, in role order.
    Deploy(DeployArgs),
    /// Rebuild this machine (nh os, else nixos-rebuild; darwin-rebuild on darwin).
    Sync(SyncArgs),
    /// Install a machine from the installer: keys under --root, then nixos-install.
    Install(InstallArgs),
    /// Switch a machine back to its previous generation, on the target.
    Rollback(TargetArgs),
    /// Open a shell on a machine's target, with its pinned host key.
    Ssh(TargetArgs),
    /// Search the nix store, closures and the repo for leaked secret values.
    Audit(AuditArgs),
    /// ZeroTier identities, network ids and member addresses (no workspace needed; generator
    /// scripts call it in the sandbox).
    #[command(subcommand)]
    Zerotier(ZerotierCmd),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions(super::docs_cmd::CompletionsArgs),
    /// Print the man page (roff) to stdout, or write every page with --dir.
    Man(super::docs_cmd::ManArgs),
}

/// `varsmith sync`
#[derive(Args, Debug)]
pub struct SyncArgs {
    /// switch, boot (the default on NixOS) or build.
    #[arg(value_enum)]
    pub action: Option<crate::remote::sync::Action>,
    /// The configuration to build (default: this machine's host name).
    #[arg(long)]
    pub host: Option<String>,
    /// Verbose output from the backend.
    #[arg(long)]
    pub debug: bool,
    /// Do not pass --show-trace (on by default).
    #[arg(long)]
    pub no_show_trace: bool,
    /// Print the exact command; run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `varsmith install`
#[derive(Args, Debug)]
pub struct InstallArgs {
    /// Machine.
    #[arg(long)]
    pub host: String,
    /// Where the target's file systems are mounted.
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    /// Keys under <root>/persist/etc/ssh.
    #[arg(long)]
    pub persist: bool,
    /// Do not install the fleet's global identity.
    #[arg(long)]
    pub no_global: bool,
    /// Do not pass --show-trace (on by default).
    #[arg(long)]
    pub no_show_trace: bool,
    /// Print what would be placed and the exact command; write and run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `varsmith rollback` / `varsmith ssh`
#[derive(Args, Debug)]
pub struct TargetArgs {
    /// Machine.
    pub host: String,
    /// SSH target (default: the inventory's target, else root@HOST).
    pub target: Option<String>,
    /// Print the exact command; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Extra ssh option (passed as -o K=V).
    #[arg(long = "ssh-option", value_name = "K=V")]
    pub ssh_options: Vec<String>,
    /// Pinned host keys (default: <workspace>/known_hosts).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
}

/// `varsmith init`
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Admin name to register (default: $USER).
    #[arg(long)]
    pub admin: Option<String>,
    /// Admin age recipient; default: the key file's existing age key (asked on a terminal),
    /// else a new key appended to it (never overwriting).
    #[arg(long)]
    pub recipient: Option<String>,
    /// Append a new key to the key file even when it already holds one.
    #[arg(long, conflicts_with = "recipient")]
    pub new_key: bool,
}

/// `varsmith admin …`
#[derive(Subcommand, Debug)]
pub enum AdminCmd {
    /// Register an admin recipient in varsmith.yaml.
    Add {
        /// Admin name.
        name: String,
        /// age recipient (age1… or ssh-ed25519 …).
        recipient: String,
        /// Replace the key of an existing admin of that name (otherwise refused).
        #[arg(long)]
        replace: bool,
    },
    /// Remove an admin from varsmith.yaml.
    Remove {
        /// Admin name.
        name: String,
    },
    /// Append a new age key to the key file (mode 0600, never overwriting); print its recipient.
    Keygen {
        /// Key file (default: SOPS_AGE_KEY_FILE, else ~/.config/sops/age/keys.txt).
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
}

/// `varsmith user …`
#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Register a home-manager user's recipient (sops/users/<user>/key.json), from an SSH
    /// ed25519 public key (ssh-to-age; the home decrypts with `sops.age.sshKeyPaths`) or an age
    /// recipient (`sops.age.keyFile`).
    Add {
        /// User name (its home-manager `home.username`).
        name: String,
        /// The user's SSH ed25519 public key: the `ssh-ed25519 …` line or a .pub file.
        #[arg(long, conflicts_with = "age", required_unless_present = "age")]
        ssh_key: Option<String>,
        /// The user's age recipient (age1…).
        #[arg(long)]
        age: Option<String>,
        /// Replace the key of a user already registered with another one (otherwise refused).
        #[arg(long)]
        replace: bool,
    },
    /// List the flake's home-manager users (standalone homeConfigurations and integrated
    /// home-manager.users importing the module, in one evaluation per output), their homes,
    /// generators and registration.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

/// `varsmith machine …`
#[derive(Subcommand, Debug)]
pub enum MachineCmd {
    /// Add a machine to varsmith.yaml.
    Add {
        /// Machine name.
        name: String,
        /// SSH target (default root@NAME).
        #[arg(long)]
        target: Option<String>,
        /// Nix system.
        #[arg(long, default_value = "x86_64-linux")]
        system: String,
        /// Tags (repeat, or comma-separated).
        #[arg(long = "tag", visible_alias = "tags", value_delimiter = ',')]
        tags: Vec<String>,
        /// Generators (repeat, or comma-separated).
        #[arg(
            long = "generator",
            short = 'g',
            visible_alias = "generators",
            value_delimiter = ','
        )]
        generators: Vec<String>,
    },
    /// Remove a machine from varsmith.yaml (its files stay).
    Remove {
        /// Machine name.
        name: String,
    },
    /// Change a machine's tags, target or system in varsmith.yaml (comments stay).
    Edit(MachineEditArgs),
    /// Add or remove generators of a machine in varsmith.yaml (comments stay).
    #[command(subcommand)]
    Generators(MachineGeneratorsCmd),
}

/// `varsmith machine edit NAME …`
#[derive(Args, Debug)]
pub struct MachineEditArgs {
    /// Machine name.
    pub name: String,
    /// Tags to add (repeat, or comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub add_tag: Vec<String>,
    /// Tags to remove (repeat, or comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub remove_tag: Vec<String>,
    /// New SSH target.
    #[arg(long)]
    pub target: Option<String>,
    /// New Nix system.
    #[arg(long)]
    pub system: Option<String>,
}

/// `varsmith machine generators add|remove NAME GEN…`
#[derive(Subcommand, Debug)]
pub enum MachineGeneratorsCmd {
    /// Add generators to a machine (known generator names only).
    Add {
        /// Machine name.
        name: String,
        /// Generators to add.
        #[arg(required = true)]
        generators: Vec<String>,
    },
    /// Remove generators from a machine (their files stay).
    Remove {
        /// Machine name.
        name: String,
        /// Generators to remove.
        #[arg(required = true)]
        generators: Vec<String>,
    },
}

/// `varsmith generate`
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Machines to generate for (default with --all or neither machines nor --user given:
    /// every machine and every home-manager user).
    pub hosts: Vec<String>,
    /// A home-manager user (`alice`) or one of its homes (`alice@stibnite`): its generators
    /// and the shared ones it uses (outputs in sops/users/<user>/).
    #[arg(long = "user", value_name = "USER[@HOST]")]
    pub users: Vec<String>,
    /// Every machine and every home-manager user.
    #[arg(long, conflicts_with_all = ["hosts", "users"])]
    pub all: bool,
    /// Only these generators (and what depends on them).
    #[arg(short = 'g', long = "generator")]
    pub generators: Vec<String>,
    /// Rerun the selected generators even when up to date, and everything depending on them.
    #[arg(long)]
    pub regenerate: bool,
    /// Allow replacing an existing host key (the `openssh` generator): the old key stays a
    /// recipient of the machine's secrets until `push-keys`/`bootstrap` installs the new one.
    #[arg(long)]
    pub rotate_host_key: bool,
    /// Print what would run and why; write nothing.
    #[arg(long)]
    pub plan: bool,
    /// Parallel generator runs (default: number of cores).
    #[arg(short = 'j', long)]
    pub jobs: Option<usize>,
    /// Run scripts without bubblewrap (explicit opt-out).
    #[arg(long)]
    pub no_sandbox: bool,
    /// Prompt value: GEN.NAME=VALUE or GEN.NAME=@FILE.
    #[arg(long = "prompt", value_name = "GEN.NAME=@FILE")]
    pub prompts: Vec<String>,
    /// YAML file of prompt values: {GEN: {NAME: value}}.
    #[arg(long)]
    pub prompts_file: Option<PathBuf>,
    /// Commit the written paths (one commit per run).
    #[arg(long)]
    pub commit: bool,
    /// Kill a generator's script after this many seconds (default 600).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Largest output file a generator may write, in bytes (default 16 MiB).
    #[arg(long, value_name = "BYTES")]
    pub max_output: Option<u64>,
    /// Machine-readable output on stdout: the plan, or what ran and why (README, "JSON").
    #[arg(long)]
    pub json: bool,
}

/// `varsmith check`
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Machines to check (default, with no --user: all machines and users).
    pub hosts: Vec<String>,
    /// A home-manager user (`alice`) or one of its homes (`alice@stibnite`): its generators
    /// and the shared ones it uses (outputs in sops/users/<user>/).
    #[arg(long = "user", value_name = "USER[@HOST]")]
    pub users: Vec<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// One line per finding (default: identical findings of many files are one line).
    #[arg(long, short)]
    pub verbose: bool,
}

/// `varsmith list`
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Machine.
    #[arg(required_unless_present = "user", conflicts_with = "user")]
    pub host: Option<String>,
    /// A home-manager user (`alice`) or one of its homes (`alice@stibnite`): its generators
    /// and the shared ones it uses (outputs in sops/users/<user>/).
    #[arg(long, value_name = "USER[@HOST]")]
    pub user: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// `varsmith get`
#[derive(Args, Debug)]
pub struct GetArgs {
    /// Machine (omitted with --user: then the only argument is GEN/FILE).
    pub host: String,
    /// GEN/FILE.
    pub var: Option<String>,
    /// A home-manager user (`alice`) or one of its homes (`alice@stibnite`): its generators
    /// and the shared ones it uses (outputs in sops/users/<user>/).
    #[arg(long, value_name = "USER[@HOST]")]
    pub user: Option<String>,
}

/// `varsmith set`
#[derive(Args, Debug)]
pub struct SetArgs {
    /// Machine (omitted with --user: then the only argument is GEN/FILE).
    pub host: String,
    /// GEN/FILE.
    pub var: Option<String>,
    /// A home-manager user (`alice`) or one of its homes (`alice@stibnite`): its generators
    /// and the shared ones it uses (outputs in sops/users/<user>/).
    #[arg(long, value_name = "USER[@HOST]")]
    pub user: Option<String>,
    /// Store the input exactly: keep a trailing newline (by default one is removed).
    #[arg(long)]
    pub raw: bool,
}

/// `varsmith rekey`
#[derive(Args, Debug)]
pub struct RekeyArgs {
    /// Machines (default, with no --user: all machines, users and shared files).
    pub hosts: Vec<String>,
    /// A home-manager user (`alice`) or one of its homes (`alice@stibnite`): its generators
    /// and the shared ones it uses (outputs in sops/users/<user>/).
    #[arg(long = "user", value_name = "USER[@HOST]")]
    pub users: Vec<String>,
}

/// `--input-type` of the sops verbs: the input's format (default: from the file's extension).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InputType {
    /// YAML.
    #[value(alias = "yml")]
    Yaml,
    /// JSON.
    Json,
    /// dotenv.
    #[value(alias = "env")]
    Dotenv,
    /// Raw bytes in a JSON envelope.
    Binary,
    /// INI: accepted so that it is refused with a clear error (varsmith has no INI store).
    Ini,
}

impl From<InputType> for crate::sops::Format {
    fn from(t: InputType) -> Self {
        use crate::sops::Format;
        match t {
            InputType::Yaml => Format::Yaml,
            InputType::Json => Format::Json,
            InputType::Dotenv => Format::Dotenv,
            InputType::Binary => Format::Binary,
            InputType::Ini => Format::Ini,
        }
    }
}

/// The options push-keys, bootstrap and deploy share (last in their help, in this order).
#[derive(Args, Debug)]
pub struct RemoteArgs {
    /// Extra ssh option (passed as -o K=V; deploy also puts it in NIX_SSHOPTS).
    #[arg(long = "ssh-option", value_name = "K=V")]
    pub ssh_options: Vec<String>,
    /// Print the exact commands; run nothing (not even ssh).
    #[arg(long)]
    pub dry_run: bool,
    /// JSON on stdout: with --dry-run the commands; deploy also reports its summary (per
    /// machine: stage, result, seconds; and the total).
    #[arg(long)]
    pub json: bool,
    /// Pinned host keys (default: <workspace>/known_hosts).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
}

/// `varsmith push-keys`
#[derive(Args, Debug)]
pub struct PushKeysArgs {
    /// Machine.
    pub host: String,
    /// SSH target (default: the inventory's target).
    pub target: Option<String>,
    /// Install under /persist/etc/ssh (impermanence).
    #[arg(long)]
    pub persist: bool,
    /// Do not install the fleet's global identity.
    #[arg(long)]
    pub no_global: bool,
    /// Run the openssh generator first when the key does not exist.
    #[arg(long)]
    pub generate: bool,
    /// ssh options, --dry-run, --json and the pinned host keys.
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// `varsmith rotate-host-key`
#[derive(Args, Debug)]
pub struct RotateHostKeyArgs {
    /// Machine.
    pub host: String,
    /// SSH target (default: the inventory's target).
    pub target: Option<String>,
    /// Print the steps (the done ones marked) and their commands; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Install the new key under /persist/etc/ssh (impermanence).
    #[arg(long)]
    pub persist: bool,
    /// Do not install the fleet's global identity with the new key.
    #[arg(long)]
    pub no_global: bool,
    /// Extra ssh option (passed as -o K=V, and in NIX_SSHOPTS).
    #[arg(long = "ssh-option", value_name = "K=V")]
    pub ssh_options: Vec<String>,
    /// Pinned host keys (default: <workspace>/known_hosts).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
}

/// `varsmith bootstrap`
#[derive(Args, Debug)]
pub struct BootstrapArgs {
    /// Machine.
    pub host: String,
    /// SSH target of the installer.
    pub target: String,
    /// Do not reboot after installation.
    #[arg(long)]
    pub no_reboot: bool,
    /// Skip disko dependencies.
    #[arg(long)]
    pub no_disko_deps: bool,
    /// Debug output from nixos-anywhere.
    #[arg(long)]
    pub debug: bool,
    /// Install under /persist/etc/ssh.
    #[arg(long)]
    pub persist: bool,
    /// The installer's host public key (`TYPE BASE64`, or @FILE), verified out of band:
    /// nixos-anywhere's ssh accepts that key only.
    #[arg(long, value_name = "KEY|@FILE", conflicts_with = "trust_on_first_use")]
    pub installer_host_key: Option<String>,
    /// Accept whatever key the installer presents (nixos-anywhere's own default); one of this
    /// and --installer-host-key is required.
    #[arg(long)]
    pub trust_on_first_use: bool,
    /// Do not include the fleet's global identity.
    #[arg(long)]
    pub no_global: bool,
    /// ssh options, --dry-run, --json and the pinned host keys.
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// `varsmith deploy`
#[derive(Args, Debug)]
pub struct DeployArgs {
    /// Machines to deploy; `HOST TARGET` (a last argument that is not a machine) deploys one
    /// machine to that target.
    pub hosts: Vec<String>,
    /// Switch the standalone home-manager configuration `homeConfigurations."USER@HOST"` on
    /// machine HOST as USER (`home-manager switch`, over ssh with HOST's pin) instead of
    /// deploying machines.
    #[arg(long, value_name = "USER@HOST", conflicts_with_all = ["hosts", "all", "boot", "build_host", "verify"])]
    pub home: Option<String>,
    /// Every machine.
    #[arg(long)]
    pub all: bool,
    /// Activate at next boot instead of switching.
    #[arg(long)]
    pub boot: bool,
    /// Skip extra checks in the wrapped tool where supported.
    #[arg(long)]
    pub fast: bool,
    /// Preview the activation (nixos-rebuild dry-activate, darwin-rebuild --dry-run).
    #[arg(long)]
    pub dry_activate: bool,
    /// nixos-rebuild's and nh's --build-host (default localhost): an ssh destination or a
    /// machine's name, verified against its own pin, never the target's.
    #[arg(long, value_name = "HOST")]
    pub build_host: Option<String>,
    /// The build host's public host key (`TYPE BASE64`, or @FILE), verified out of band:
    /// needed when the build host is not a machine of the workspace.
    #[arg(long, value_name = "KEY|@FILE", requires = "build_host")]
    pub build_host_key: Option<String>,
    /// Verbose output from the backend.
    #[arg(long)]
    pub debug: bool,
    /// Do not pass --show-trace (on by default).
    #[arg(long)]
    pub no_show_trace: bool,
    /// Do not require `check` to pass first.
    #[arg(long)]
    pub no_check: bool,
    /// Start later stages even when a machine of an earlier one failed.
    #[arg(long)]
    pub keep_going: bool,
    /// After activation, check every deployed secret's path, owner, group and mode, and
    /// `systemctl --failed`, over ssh.
    #[arg(long)]
    pub verify: bool,
    /// Parallel deployments within a stage (default 4).
    #[arg(short = 'j', long)]
    pub jobs: Option<usize>,
    /// ssh options, --dry-run, --json and the pinned host keys.
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// `varsmith audit`
#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Store directory to scan (default /nix/store).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Scan only the closure of these store paths.
    #[arg(long, num_args = 1..)]
    pub closure: Vec<PathBuf>,
    /// Scan the workspace's files outside sops/ and its git history.
    #[arg(long)]
    pub repo: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Accept a partial audit: unreadable files and undecryptable sops files are still
    /// listed, but do not make the verdict "not clean".
    #[arg(long)]
    pub allow_partial: bool,
    /// A home-manager user (`alice`) or one of its homes (`alice@stibnite`): search for its
    /// secrets and the shared ones it uses only, and scan the store side of its homes'
    /// templates too (each must hold placeholders only).
    #[arg(long = "user", value_name = "USER[@HOST]")]
    pub users: Vec<String>,
}

/// Result of a command: the process exit code.
pub(crate) type CmdResult = Result<i32>;

/// A size in MiB from `N`, `NM` or `NG` (binary units).
fn parse_mib(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('G' | 'g') => (&t[..t.len() - 1], 1024),
        Some('M' | 'm') => (&t[..t.len() - 1], 1),
        _ => (t, 1),
    };
    match num.trim().parse::<u64>() {
        Ok(n) if n > 0 => n
            .checked_mul(mult)
            .ok_or_else(|| format!("{s:?} is too large")),
        _ => Err(format!("{s:?} is not a size (e.g. 2G, 512M)")),
    }
}
