//! `varsmith user add`: registers a home-manager user's age recipient in
//! `sops/users/<user>/key.json`, the file the home-manager module reads to pick its key source.
//!
//! Users and admins share `sops/users/<name>/key.json` (DESIGN.md's admin layout): the file
//! holds one recipient, `[{"publickey": "age1…", "type": "age", "source": "ssh"|"age"}]`
//! (`source` only for users: `ssh` makes the module set `sops.age.sshKeyPaths`, `age`
//! `sops.age.keyFile`). An admin listed in varsmith.yaml may also have homes: `user add` with
//! the admin's own recipient keeps the one file (adding `source`); another key for an admin's
//! name is refused, since one name is one person with one key. A user's generator outputs live
//! beside the file, in `sops/users/<user>/{secrets,facts,state}/`.

use std::path::Path;

use crate::UsageError;
use crate::cli::args::{CmdResult, UserCmd};
use crate::store;
use crate::store::lock::{Mode, WorkspaceLock};

use super::core_cmd::Context;

/// Runs a `user` subcommand.
pub(crate) fn run(ctx: &Context, cmd: UserCmd) -> CmdResult {
    match cmd {
        UserCmd::Add {
            name,
            ssh_key,
            age,
            replace,
        } => add(ctx, &name, ssh_key.as_deref(), age.as_deref(), replace),
        UserCmd::List { json } => list(ctx, json),
    }
}

/// `user list`: one line per user (`alice  age key  standalone alice@stibnite, nixos m1  api,
/// seed (shared)`), or JSON (`[{user, registered, source, homes: [{kind, attr, error}],
/// generators: {name: shared}}]`).
fn list(ctx: &Context, json: bool) -> CmdResult {
    let ws = ctx.workspace()?;
    let homes = crate::workspace::users::discover(&ws.root)?;
    let mut users: std::collections::BTreeMap<&str, Vec<&crate::workspace::users::Home>> =
        Default::default();
    for h in &homes {
        users.entry(h.user.as_str()).or_default().push(h);
    }
    let mut out = Vec::new();
    for (user, hs) in &users {
        let path = store::admin_key_json(&ws.root, user);
        let source = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .map(|v| v[0]["source"].as_str().unwrap_or("age").to_string());
        let mut gens = std::collections::BTreeMap::new();
        for h in hs {
            gens.extend(h.generators.iter().map(|(g, s)| (g.clone(), *s)));
        }
        out.push(serde_json::json!({
            "user": user,
            "registered": source.is_some(),
            "source": source,
            "homes": hs.iter().map(|h| serde_json::json!({"kind": h.kind, "attr": h.attr, "error": h.error})).collect::<Vec<_>>(),
            "generators": gens,
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    for u in &out {
        let key = match u["source"].as_str() {
            Some("ssh") => "ssh key",
            Some(_) => "age key",
            None => "not registered",
        };
        let homes: Vec<String> = u["homes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| {
                let kind = h["kind"].as_str().unwrap_or("");
                let attr = h["attr"].as_str().unwrap_or("");
                match h["error"].as_str() {
                    Some(e) => format!("{kind} {attr} ({e})"),
                    None => format!("{kind} {attr}"),
                }
            })
            .collect();
        let gens: Vec<String> = u["generators"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(g, s)| {
                if s == true {
                    format!("{g} (shared)")
                } else {
                    g.clone()
                }
            })
            .collect();
        println!(
            "{}  {key}  homes: {}  generators: {}",
            u["user"].as_str().unwrap_or(""),
            homes.join(", "),
            gens.join(", ")
        );
    }
    Ok(0)
}

/// The recipient and its source: an age recipient as given, or the age recipient of an
/// OpenSSH ed25519 public key (the line itself, or a `.pub` file holding it).
fn recipient_of(
    ssh_key: Option<&str>,
    age: Option<&str>,
) -> Result<(String, &'static str), UsageError> {
    match (ssh_key, age) {
        (Some(k), None) => {
            let line = if k.trim_start().starts_with("ssh-") {
                k.to_string()
            } else {
                std::fs::read_to_string(Path::new(k))
                    .map_err(|e| UsageError::new(format!("--ssh-key {k}: {e}")))?
            };
            let r = crate::keys::ssh_to_age::public_to_age(&line)
                .map_err(|e| UsageError::new(format!("--ssh-key: {e}")))?;
            Ok((r, "ssh"))
        }
        (None, Some(a)) => {
            let a = a.trim();
            if !a.starts_with("age1") {
                return Err(UsageError::new(
                    "--age takes an age recipient (age1…); pass an SSH public key with --ssh-key",
                ));
            }
            crate::keys::validate_recipient(a)
                .map_err(|e| UsageError::new(format!("--age: {e}")))?;
            Ok((a.to_string(), "age"))
        }
        _ => Err(UsageError::new("pass exactly one of --ssh-key and --age")),
    }
}

fn add(
    ctx: &Context,
    name: &str,
    ssh_key: Option<&str>,
    age: Option<&str>,
    replace: bool,
) -> CmdResult {
    let ws = ctx.workspace()?;
    let _lock = WorkspaceLock::acquire(&ws.root, Mode::Exclusive, "varsmith user add")?;
    crate::workspace::names::check_component(name)
        .map_err(|e| UsageError::new(format!("user name: {e}")))?;
    let (recipient, source) = recipient_of(ssh_key, age)?;
    let path = store::admin_key_json(&ws.root, name);
    if let Some(admin) = ws.inventory.admins.get(name)
        && admin.trim() != recipient
    {
        return Err(UsageError::new(format!(
            "{}: {name} is an admin with another key; a user of that name must use the admin's recipient",
            path.display()
        ))
        .into());
    }
    let old = store::read_key_json(&ws.root, &path)?;
    if let Some(old) = &old
        && !old.iter().any(|r| r == &recipient)
        && !replace
    {
        return Err(UsageError::new(format!(
            "{}: user {name} is registered with another key; pass --replace to replace it",
            path.display()
        ))
        .into());
    }
    let mut json = serde_json::to_vec_pretty(&serde_json::json!([
        { "publickey": recipient, "type": "age", "source": source }
    ]))?;
    json.push(b'\n');
    store::write_atomic(&ws.root, &path, &json)?;
    let done = if old.is_some() { "updated" } else { "added" };
    eprintln!("user {name} {done} ({recipient}, from an {source} key)");
    Ok(0)
}
