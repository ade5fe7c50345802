//! `varsmith sops …`: a stand-in for the sops binary's everyday verbs (encrypt, decrypt,
//! edit, set, unset, updatekeys, rotate, filestatus), so a sops-nix user needs no sops.
//!
//! Exit codes follow sops 3.11 (see [`sops::Error::sops_exit_code`]): 0 ok, 1 generic / no
//! metadata / path not found, 2 unreadable or unparseable input (including the parser
//! limits and the input size cap), 25 a value that does not decrypt, 51 MAC, 91 bad tree
//! path, 128 no identity, 200 edit changed nothing, 201 no editor, 203 already encrypted.
//! Messages name the file and never contain a secret.

// Doc comments on arguments are clap's `--help` text: `["db"]["password"]` there is a sops
// tree path, not an intra-doc link.
#![allow(rustdoc::broken_intra_doc_links)]

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::sops::store::StoreOptions;
use crate::sops::{self, EncryptOptions, Format, edit, editor, io, path, verbs};
use anyhow::Context as _;
use clap::Subcommand;
use zeroize::Zeroizing;

use super::core_cmd::Context;
use crate::cli::args::{CmdResult, InputType};

/// `varsmith sops …`
#[derive(Subcommand, Debug)]
pub enum SopsCmd {
    /// Encrypt FILE to stdout.
    Encrypt {
        /// age recipients (comma-separated or repeated); default from .sops.yaml.
        #[arg(long = "age", value_delimiter = ',', env = "SOPS_AGE_RECIPIENTS")]
        age: Vec<String>,
        /// Input format (yaml, json, dotenv, binary); default from the extension.
        #[arg(long)]
        input_type: Option<InputType>,
        /// Write the result in place instead of stdout. (Long form only: `-i` is the global
        /// `--identity`.)
        #[arg(long, conflicts_with = "output")]
        in_place: bool,
        /// Write the result to this file instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
        /// File to encrypt.
        file: PathBuf,
    },
    /// Decrypt FILE(s) (or stdin) to stdout (MAC verified).
    Decrypt {
        /// Input format (yaml, json, dotenv, binary); default from the extension; required
        /// for stdin.
        #[arg(long)]
        input_type: Option<InputType>,
        /// Print only the value at this tree path, e.g. '["db"]["password"]'.
        #[arg(long)]
        extract: Option<String>,
        /// Write the plaintext to this file (mode 0600) instead of stdout.
        #[arg(long, conflicts_with = "in_place")]
        output: Option<PathBuf>,
        /// Replace the (single) file with its plaintext.
        #[arg(long)]
        in_place: bool,
        /// File(s) to decrypt, in order; none (or `-`) reads stdin.
        files: Vec<PathBuf>,
    },
    /// Decrypt FILE into $EDITOR and encrypt it again when saved (unchanged values keep
    /// their ciphertext). Refuses to save text that no longer parses.
    Edit {
        /// Input format; default from the extension.
        #[arg(long)]
        input_type: Option<InputType>,
        /// The sops file, as the user or the workspace layout named it.
        file: PathBuf,
    },
    /// Set the value at a tree path, e.g. `set f.yaml '["a"]["b"]' '"v"'` (VALUE is JSON).
    Set {
        /// Input format; default from the extension.
        #[arg(long)]
        input_type: Option<InputType>,
        /// Read VALUE (JSON) from stdin instead of the command line (keeps it out of argv).
        #[arg(long)]
        value_stdin: bool,
        /// The sops file, as the user or the workspace layout named it.
        file: PathBuf,
        /// Tree path.
        path: String,
        /// JSON value (omit with --value-stdin).
        #[arg(required_unless_present = "value_stdin")]
        value: Option<String>,
    },
    /// Remove the item at a tree path.
    Unset {
        /// Input format; default from the extension.
        #[arg(long)]
        input_type: Option<InputType>,
        /// The sops file, as the user or the workspace layout named it.
        file: PathBuf,
        /// Tree path.
        path: String,
    },
    /// Re-wrap the data key for the recipients .sops.yaml names for FILE.
    Updatekeys {
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Input format; default from the extension.
        #[arg(long)]
        input_type: Option<InputType>,
        /// The sops file, as the user or the workspace layout named it.
        file: PathBuf,
    },
    /// Generate a new data key and re-encrypt every value (to stdout unless --in-place).
    Rotate {
        /// Write the result back to FILE.
        #[arg(long)]
        in_place: bool,
        /// Add these age recipients.
        #[arg(long, value_delimiter = ',')]
        add_age: Vec<String>,
        /// Remove these age recipients.
        #[arg(long, value_delimiter = ',')]
        rm_age: Vec<String>,
        /// Input format; default from the extension.
        #[arg(long)]
        input_type: Option<InputType>,
        /// The sops file, as the user or the workspace layout named it.
        file: PathBuf,
    },
    /// Print `{"encrypted":true}` or `{"encrypted":false}` for FILE.
    Filestatus {
        /// Input format; default from the extension.
        #[arg(long)]
        input_type: Option<InputType>,
        /// The file.
        file: PathBuf,
    },
}

/// Runs a `sops` subcommand; a sops error exits with sops' code for its kind.
pub(crate) fn run(ctx: &Context, cmd: SopsCmd) -> CmdResult {
    match dispatch(ctx, cmd) {
        Ok(code) => Ok(code),
        Err(err) => match err.chain().find_map(|c| c.downcast_ref::<sops::Error>()) {
            Some(e) => {
                let code = e.sops_exit_code();
                let mut last = err.to_string();
                eprintln!("error: {last}");
                for cause in err.chain().skip(1).map(|c| c.to_string()) {
                    // A cause already quoted by the message above it is not repeated.
                    if !last.ends_with(&cause) {
                        eprintln!("  caused by: {cause}");
                    }
                    last = cause;
                }
                Ok(code)
            }
            None => Err(err),
        },
    }
}

fn dispatch(ctx: &Context, cmd: SopsCmd) -> CmdResult {
    match cmd {
        SopsCmd::Encrypt {
            age,
            input_type,
            in_place,
            output,
            file,
        } => {
            let dest = Dest::pick(in_place.then_some(&file), output.as_deref());
            encrypt(ctx, age, input_type, dest, &file)
        }
        SopsCmd::Decrypt {
            input_type,
            extract,
            output,
            in_place,
            files,
        } => decrypt(ctx, input_type, extract, output, in_place, &files),
        SopsCmd::Edit { input_type, file } => edit_file(ctx, input_type, &file),
        SopsCmd::Set {
            input_type,
            value_stdin,
            file,
            path,
            value,
        } => set(ctx, input_type, &file, &path, value, value_stdin),
        SopsCmd::Unset {
            input_type,
            file,
            path,
        } => unset(ctx, input_type, &file, &path),
        SopsCmd::Updatekeys {
            yes,
            input_type,
            file,
        } => updatekeys(ctx, input_type, &file, yes),
        SopsCmd::Rotate {
            in_place,
            add_age,
            rm_age,
            input_type,
            file,
        } => rotate(ctx, input_type, &file, in_place, &add_age, &rm_age),
        SopsCmd::Filestatus { input_type, file } => filestatus(input_type, &file),
    }
}

/// `--input-type` when given, else the format sops picks from `file`'s extension.
fn format_of(input_type: Option<InputType>, file: &Path) -> anyhow::Result<Format> {
    Ok(input_type.map_or_else(|| Format::from_path(file), Format::from))
}

fn read(file: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    Ok(io::read_limited(file, io::max_input())?)
}

fn origin(file: &Path) -> String {
    file.display().to_string()
}

/// Where `.sops.yaml` is searched from: `-C DIR`, else the current directory.
fn config_start(ctx: &Context) -> anyhow::Result<PathBuf> {
    match &ctx.dir {
        Some(d) => Ok(d.clone()),
        None => std::env::current_dir().context("cannot read the current directory"),
    }
}

/// The `stores:` settings of the nearest `.sops.yaml` (defaults without one).
fn stores(ctx: &Context) -> anyhow::Result<StoreOptions> {
    match sops::config::find_config(&config_start(ctx)?) {
        Some(c) => Ok(sops::config::stores_for(&c)?),
        None => Ok(StoreOptions::default()),
    }
}

/// Where a result goes.
enum Dest<'a> {
    Stdout,
    File(&'a Path),
}

impl<'a> Dest<'a> {
    fn pick(in_place: Option<&'a PathBuf>, output: Option<&'a Path>) -> Dest<'a> {
        match (in_place, output) {
            (Some(f), _) => Dest::File(f),
            (None, Some(o)) => Dest::File(o),
            (None, None) => Dest::Stdout,
        }
    }

    fn write(&self, bytes: &[u8], private: bool) -> anyhow::Result<()> {
        match self {
            Dest::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes)
                    .and_then(|_| out.flush())
                    .context("writing to stdout")
            }
            Dest::File(f) => write_atomic(f, bytes, private),
        }
    }
}

/// Replaces `file` atomically ([`crate::replace`]). Plaintext (`private`) is always 0600;
/// otherwise the old file's permissions are kept and a new file gets 0644.
fn write_atomic(file: &Path, bytes: &[u8], private: bool) -> anyhow::Result<()> {
    use crate::replace::{Mode, replace_file};
    let mode = if private {
        Mode::Fixed(0o600)
    } else {
        Mode::KeepOr(0o644)
    };
    replace_file(file, bytes, mode, ".tmp").map_err(|source| sops::Error::Io {
        origin: origin(file),
        cause: source,
    })?;
    Ok(())
}

/// Encrypts FILE. Recipients: `--age` / `SOPS_AGE_RECIPIENTS`, else the creation rules of
/// the nearest `.sops.yaml`, searched from `-C DIR` when given, else from the current
/// directory upward.
fn encrypt(
    ctx: &Context,
    age: Vec<String>,
    input_type: Option<InputType>,
    dest: Dest,
    file: &Path,
) -> CmdResult {
    let format = format_of(input_type, file)?;
    let (opts, stores) = encrypt_options(ctx, age, file)?;
    let plain = read(file)?;
    let out = sops::encrypt_with(&plain, format, &opts, &stores, &origin(file))?;
    dest.write(&out, false)?;
    Ok(crate::EXIT_OK)
}

/// After a verb rewrote `file` in place: when it is a generator's sops file in a varsmith
/// workspace (found upward from the file), records its new SHA-256 and recipients in the
/// generator's state, so a keyless `check` trusts it. `old`: the previous bytes, for a verb
/// that did not verify the MAC (`updatekeys`): recorded only when they were the recorded
/// ones. A failure to record is a warning (the file itself was written).
fn record_in_workspace(file: &Path, old: Option<&[u8]>) {
    let parent = file.parent().filter(|p| !p.as_os_str().is_empty());
    let Ok(dir) = parent.unwrap_or(Path::new(".")).canonicalize() else {
        return;
    };
    let Some(name) = file.file_name() else {
        return;
    };
    let path = dir.join(name);
    let Some(root) = dir
        .ancestors()
        .find(|a| a.join(crate::workspace::INVENTORY_FILE).is_file())
    else {
        return;
    };
    let r = match old {
        Some(o) => crate::store::rerecord(root, &path, o),
        None => crate::store::record(root, &path),
    };
    if let Err(e) = r {
        eprintln!(
            "warning: {}: not recorded in its generator's state ({e}); `varsmith check` will report it as modified until `varsmith rekey` records it",
            file.display()
        );
    }
}

/// Recipients and crypt rule for a new sops file (`--age`, else `.sops.yaml`), and the
/// `stores:` settings.
fn encrypt_options(
    ctx: &Context,
    age: Vec<String>,
    file: &Path,
) -> anyhow::Result<(EncryptOptions, StoreOptions)> {
    let mut opts = EncryptOptions::default();
    let age: Vec<String> = age
        .into_iter()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    let start = config_start(ctx)?;
    let config = sops::config::find_config(&start);
    if age.is_empty() {
        let config = config.as_ref().ok_or_else(|| {
            crate::UsageError::new(format!(
                "no --age recipients given and no .sops.yaml found from {} upward",
                start.display()
            ))
        })?;
        let rule = sops::config::rule_for(config, file)?;
        opts.recipients = rule.age;
        opts.rule = rule.rule;
        opts.mac_only_encrypted = rule.mac_only_encrypted;
    } else {
        opts.recipients = age;
    }
    let stores = match &config {
        Some(c) => sops::config::stores_for(c)?,
        None => StoreOptions::default(),
    };
    Ok((opts, stores))
}

/// One decrypt input: a file, or stdin when `None`.
fn read_input(file: Option<&Path>) -> anyhow::Result<(Zeroizing<Vec<u8>>, String)> {
    match file {
        Some(f) => Ok((read(f)?, origin(f))),
        None => {
            let b = io::read_all_limited(std::io::stdin().lock(), io::max_input(), "<stdin>")?;
            Ok((b, "<stdin>".to_string()))
        }
    }
}

/// Decrypts each file (MAC verified) in order, stopping at the first failure; with no file
/// (or `-`), stdin. `--extract` prints one value; `--output`/`--in-place` write a file.
fn decrypt(
    ctx: &Context,
    input_type: Option<InputType>,
    extract: Option<String>,
    output: Option<PathBuf>,
    in_place: bool,
    files: &[PathBuf],
) -> CmdResult {
    let inputs: Vec<Option<&Path>> = if files.is_empty() {
        vec![None]
    } else {
        files
            .iter()
            .map(|f| (f.as_os_str() != "-").then_some(f.as_path()))
            .collect()
    };
    if (in_place || output.is_some()) && inputs.len() != 1 {
        return Err(crate::UsageError::new("--in-place and --output take exactly one file").into());
    }
    if in_place && inputs[0].is_none() {
        return Err(crate::UsageError::new("--in-place needs a file, not stdin").into());
    }
    let path = extract.as_deref().map(path::parse).transpose()?;
    let ids = ctx.identities()?;
    let stores = stores(ctx)?;
    let mut plain_all = Zeroizing::new(Vec::new());
    for input in &inputs {
        let format = match (input, input_type) {
            (None, None) => {
                return Err(crate::UsageError::new("reading stdin needs --input-type").into());
            }
            (_, Some(t)) => format_of(Some(t), Path::new(""))?,
            (Some(f), None) => Format::from_path(f),
        };
        let (bytes, origin) = read_input(*input)?;
        let d = sops::decrypt(&bytes, format, &ids, &origin)?;
        let plain = match &path {
            Some(p) => edit::emit_extracted(edit::extract(&d.tree, p, &origin)?, format, &origin)?,
            None => sops::store::emit_plain_with(&d.tree, format, &stores, &origin)?,
        };
        plain_all.extend_from_slice(&plain);
    }
    let dest = match (&output, in_place) {
        (Some(o), _) => Dest::File(o),
        (None, true) => Dest::File(inputs[0].unwrap_or(Path::new("-"))),
        (None, false) => Dest::Stdout,
    };
    dest.write(&plain_all, true)?;
    Ok(crate::EXIT_OK)
}

/// Opens a sops file for a change: format, bytes, verified tree, stores settings.
fn open(
    ctx: &Context,
    input_type: Option<InputType>,
    file: &Path,
) -> anyhow::Result<(Format, verbs::Opened, StoreOptions)> {
    let format = format_of(input_type, file)?;
    let bytes = read(file)?;
    let ids = ctx.identities()?;
    let opened = verbs::open(&bytes, format, &ids, &origin(file))?;
    Ok((format, opened, stores(ctx)?))
}

/// `edit`: plaintext into $EDITOR; saved only if it parses, has no `sops` key and changed.
/// A file that does not exist yet starts from sops' example and is encrypted for the
/// `.sops.yaml` creation rule (or `SOPS_AGE_RECIPIENTS`), as `sops edit` does.
fn edit_file(ctx: &Context, input_type: Option<InputType>, file: &Path) -> CmdResult {
    if !file.exists() {
        return edit_new(ctx, input_type, file);
    }
    let (format, opened, stores) = open(ctx, input_type, file)?;
    let o = origin(file);
    let plain = Zeroizing::new(sops::store::emit_plain_with(
        &opened.tree,
        format,
        &stores,
        &o,
    )?);
    let tree = edited_tree(&plain, format, file)?;
    let out = opened.seal(tree, format, &stores, &o)?;
    write_atomic(file, &out, false)?;
    record_in_workspace(file, None);
    Ok(crate::EXIT_OK)
}

/// Runs the editor on `plain` until it parses as `format`; `Unchanged` is sops' exit 200.
fn edited_tree(plain: &[u8], format: Format, file: &Path) -> anyhow::Result<sops::tree::Tree> {
    let o = origin(file);
    let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
    let outcome = editor::edit(plain, ext, io::max_input(), |b| {
        let p = sops::store::parse(b, format, &o)?;
        sops::store::check_plain(&p, format, &o)?;
        Ok(p.tree)
    })?;
    match outcome {
        editor::Outcome::Changed(t) => Ok(t),
        editor::Outcome::Unchanged => Err(sops::Error::Unchanged { origin: o }.into()),
    }
}

/// sops' example content for a new file of `format`.
fn example(format: Format) -> &'static str {
    match format {
        Format::Json => {
            "{\n\t\"hello\": \"Welcome to SOPS! Edit this file as you please!\",\n\t\"example_key\": \"example_value\",\n\t\"example_array\": [\n\t\t\"example_value1\",\n\t\t\"example_value2\"\n\t],\n\t\"example_number\": 1234.56789,\n\t\"example_booleans\": [\n\t\ttrue,\n\t\tfalse\n\t]\n}\n"
        }
        Format::Dotenv => {
            "# This is an example file.\nhello=Welcome to SOPS! Edit this file as you please!\nexample_key=example_value\nexample_multiline=foo\\nbar\\nbaz\n"
        }
        Format::Yaml => {
            "hello: Welcome to SOPS! Edit this file as you please!\nexample_key: example_value\n# Example comment\nexample_array:\n    - example_value1\n    - example_value2\nexample_number: 1234.56789\nexample_booleans:\n    - true\n    - false\n"
        }
        Format::Binary | Format::Ini => "Welcome to SOPS! Edit this file as you please!",
    }
}

/// `edit` of a file that does not exist: the example, edited, encrypted for the rule.
fn edit_new(ctx: &Context, input_type: Option<InputType>, file: &Path) -> CmdResult {
    let format = format_of(input_type, file)?;
    let age = std::env::var("SOPS_AGE_RECIPIENTS")
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let (opts, stores) = encrypt_options(ctx, age, file)?;
    let tree = edited_tree(example(format).as_bytes(), format, file)?;
    let out = sops::encrypt_tree_with(tree, format, &opts, &stores, &origin(file))?;
    write_atomic(file, &out, false)?;
    Ok(crate::EXIT_OK)
}

/// A `set`/`unset` path: a bad one is sops' "invalid set format" (exit 7).
fn set_path(tree_path: &str) -> anyhow::Result<Vec<path::Step>> {
    path::parse(tree_path).map_err(|e| sops::Error::InvalidSet { msg: e.to_string() }.into())
}

/// `set FILE PATH VALUE`: VALUE is JSON (from argv, or stdin with `--value-stdin`).
fn set(
    ctx: &Context,
    input_type: Option<InputType>,
    file: &Path,
    tree_path: &str,
    value: Option<String>,
    value_stdin: bool,
) -> CmdResult {
    let steps = set_path(tree_path)?;
    let raw = match (value, value_stdin) {
        (_, true) => io::read_all_limited(std::io::stdin().lock(), io::max_input(), "<stdin>")?,
        (Some(v), false) => Zeroizing::new(v.into_bytes()),
        (None, false) => return Err(crate::UsageError::new("no VALUE given").into()),
    };
    let v = sops::json::parse_value(&raw, "the value").map_err(|_| sops::Error::InvalidSet {
        msg: "VALUE is not valid JSON (strings need quotes: '\"text\"')".into(),
    })?;
    let (format, mut opened, stores) = open(ctx, input_type, file)?;
    let mut tree = std::mem::take(&mut opened.tree);
    edit::set(&mut tree, &steps, v)?;
    let out = opened.seal(tree, format, &stores, &origin(file))?;
    write_atomic(file, &out, false)?;
    record_in_workspace(file, None);
    Ok(crate::EXIT_OK)
}

/// `unset FILE PATH`.
fn unset(ctx: &Context, input_type: Option<InputType>, file: &Path, tree_path: &str) -> CmdResult {
    let steps = set_path(tree_path)?;
    let (format, mut opened, stores) = open(ctx, input_type, file)?;
    let mut tree = std::mem::take(&mut opened.tree);
    edit::unset(&mut tree, &steps, &origin(file))?;
    let out = opened.seal(tree, format, &stores, &origin(file))?;
    write_atomic(file, &out, false)?;
    record_in_workspace(file, None);
    Ok(crate::EXIT_OK)
}

/// `updatekeys`: the recipients of FILE's creation rule; asks unless `--yes`.
fn updatekeys(ctx: &Context, input_type: Option<InputType>, file: &Path, yes: bool) -> CmdResult {
    let format = format_of(input_type, file)?;
    let start = config_start(ctx)?;
    let config = sops::config::find_config(&start).ok_or_else(|| {
        crate::UsageError::new(format!(
            "no .sops.yaml found from {} upward",
            start.display()
        ))
    })?;
    let want = sops::config::rule_for(&config, file)?.age;
    let bytes = read(file)?;
    let have = sops::recipients(&bytes, format, &origin(file))?;
    if have == want {
        eprintln!("File {} already up to date", file.display());
        return Ok(crate::EXIT_OK);
    }
    eprintln!("The following changes will be made to the file's groups:\nGroup 1");
    for r in &want {
        let mark = if have.contains(r) { "   " } else { "+++" };
        eprintln!("    {mark} {r}");
    }
    for r in have.iter().filter(|r| !want.contains(r)) {
        eprintln!("    --- {r}");
    }
    if !yes && !confirm()? {
        eprintln!("Changes have not been saved");
        return Ok(crate::EXIT_OK);
    }
    let ids = ctx.identities()?;
    let out = sops::update_keys(&bytes, format, &ids, &want, &origin(file))?;
    write_atomic(file, &out, false)?;
    record_in_workspace(file, Some(&bytes));
    eprintln!("File {} synced with new keys", file.display());
    Ok(crate::EXIT_OK)
}

fn confirm() -> anyhow::Result<bool> {
    eprint!("Is this okay? (y/n):");
    if !std::io::stdin().is_terminal() {
        eprintln!();
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the answer")?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// `rotate`: a new data key, every value re-encrypted; recipients adjusted by
/// `--add-age`/`--rm-age`.
fn rotate(
    ctx: &Context,
    input_type: Option<InputType>,
    file: &Path,
    in_place: bool,
    add: &[String],
    rm: &[String],
) -> CmdResult {
    let (format, opened, stores) = open(ctx, input_type, file)?;
    let mut rs = opened.recipients();
    let trim = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let rm = trim(rm);
    rs.retain(|r| !rm.contains(r));
    for a in trim(add) {
        if !rs.contains(&a) {
            rs.push(a);
        }
    }
    if rs.is_empty() {
        return Err(
            crate::UsageError::new("rotate would leave the file with no recipients").into(),
        );
    }
    let out = opened.rotate(&rs, format, &stores, &origin(file))?;
    let dest = if in_place {
        Dest::File(file)
    } else {
        Dest::Stdout
    };
    dest.write(&out, false)?;
    if in_place {
        record_in_workspace(file, None);
    }
    Ok(crate::EXIT_OK)
}

/// `filestatus`: `{"encrypted":true|false}` on stdout.
fn filestatus(input_type: Option<InputType>, file: &Path) -> CmdResult {
    let format = format_of(input_type, file)?;
    let bytes = read(file)?;
    let enc = verbs::is_encrypted(&bytes, format, &origin(file))?;
    println!("{{\"encrypted\":{enc}}}");
    Ok(crate::EXIT_OK)
}
