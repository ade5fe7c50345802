//! `varsmith check` as a CI gate that cannot be fooled: every sops file's structure without
//! keys, every MAC with an identity, empty inventories, orphan trees, hand-made files (which
//! `rekey` covers too), host key rotation refused without `--rotate-host-key`, and the admin
//! and prompt guards. Through the binary, with real sops, age and bubblewrap.

use crate::util::common::*;

use std::path::Path;
use std::process::Output;

const FLEET: &str = "admins:
  alice: ADMIN
machines:
  m1:
    generators: [openssh, token]
";

const TOKEN: &str = "prompts:\n  label: { type: line, persist: false }\nfiles:\n  t: {}\nscript: |\n  od -An -N16 -tx1 /dev/urandom | tr -d ' \\n' > $out/t\n";

fn tools() -> bool {
    require("sops") && require("bwrap") && require("age") && require("ssh-keygen")
}

/// A generated one-machine workspace.
fn generated() -> Ws {
    let ws = Ws::new(FLEET);
    ws.generator("token", TOKEN);
    let o = ws.run(&["generate", "--prompt", "token.label=x"]);
    assert!(o.status.success(), "{}", stderr(&o));
    ws
}

fn check(ws: &Ws, with_identity: bool) -> Output {
    let mut c = ws.command(&["check"]);
    if !with_identity {
        c.env_remove("SOPS_AGE_KEY_FILE");
    }
    c.output().expect("run check")
}

fn token_file(ws: &Ws) -> std::path::PathBuf {
    ws.root().join("sops/machines/m1/secrets/token.yaml")
}

/// Replaces the first occurrence of `from` on the line of key `key` in `path`.
fn edit_line(path: &Path, key: &str, edit: impl Fn(&str) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with(&format!("{key}:")) {
                edit(l)
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(path, out.join("\n") + "\n").unwrap();
}

#[test]
fn a_clean_workspace_passes_with_and_without_an_identity() {
    if !tools() {
        return;
    }
    let ws = generated();
    let o = check(&ws, true);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("2 MACs verified"), "{}", stderr(&o));
    let o = check(&ws, false);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("structure only: no identity"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn truncated_ciphertext_fails_without_keys() {
    if !tools() {
        return;
    }
    let ws = generated();
    // Drop one base64 character of the value's data: no longer valid base64.
    edit_line(&token_file(&ws), "t", |l| l.replacen("data:", "data:=", 1));
    let o = check(&ws, false);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("corrupt: sops/machines/m1/secrets/token.yaml: key \"t\": malformed encrypted value (bad base64)"),
        "{out}"
    );
}

#[test]
fn bad_iv_type_and_metadata_are_each_named() {
    if !tools() {
        return;
    }
    let ws = generated();
    let f = token_file(&ws);
    edit_line(&f, "t", |l| l.replace(",type:str]", ",type:blob]"));
    edit_line(&f, "lastmodified", |_| "    lastmodified: yesterday".into());
    // A 12-byte IV where sops writes 32.
    edit_line(&f, "mac", |l| {
        let (a, b) = l.split_once(",iv:").unwrap();
        let (_, rest) = b.split_once(",tag:").unwrap();
        format!("{a},iv:AAAAAAAAAAAAAAAA,tag:{rest}")
    });
    let o = check(&ws, false);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("key \"t\": malformed encrypted value (unknown type \"blob\")"),
        "{out}"
    );
    assert!(
        out.contains("sops.lastmodified is not an RFC 3339 time"),
        "{out}"
    );
    assert!(
        out.contains("sops.mac is malformed (IV is 12 bytes, not 32)"),
        "{out}"
    );
}

#[test]
fn an_edited_value_fails_the_mac_with_an_identity() {
    if !tools() {
        return;
    }
    let ws = generated();
    // Swap two characters of the ciphertext: still well-formed, no longer authentic.
    edit_line(&token_file(&ws), "t", |l| {
        let i = l.find("data:").unwrap() + 5;
        let mut b: Vec<char> = l.chars().collect();
        let j = b[i..].iter().position(|c| *c != b[i]).unwrap() + i;
        b.swap(i, j);
        b.into_iter().collect()
    });
    let o = check(&ws, true);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("m1/token: mac: sops/machines/m1/secrets/token.yaml"),
        "{out}"
    );
    // Real sops agrees that the file is broken.
    assert!(!sops_decrypt(&token_file(&ws), &ws.key).status.success());
}

#[test]
fn an_identity_that_opens_nothing_is_not_an_ok() {
    if !tools() {
        return;
    }
    let ws = generated();
    let other = ws.root().join("other.agekey");
    varsmith::keys::keygen::append_admin_key(&other).unwrap();
    // --verbose: one line per file (identical findings are grouped otherwise).
    let o = ws
        .command(&["check", "--verbose"])
        .env("SOPS_AGE_KEY_FILE", &other)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o)
            .contains("unverified: sops/machines/m1/secrets/token.yaml: none of the identities"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn empty_inventories_are_bad_input_naming_the_file() {
    for text in [
        "",
        "# nothing yet\n",
        "admins:\n  alice: ADMIN\nmachines: {}\n",
    ] {
        let ws = Ws::new(text);
        for cmd in [&["check"][..], &["generate"][..]] {
            let o = ws.run(cmd);
            assert_eq!(o.status.code(), Some(2), "{cmd:?} on {text:?}");
            let err = stderr(&o);
            assert!(err.contains("varsmith.yaml: no machines"), "{err}");
        }
        assert!(!ws.root().join("sops").exists());
    }
}

#[test]
fn orphan_trees_and_hand_made_files_are_findings_and_rekey_covers_them() {
    if !tools() {
        return;
    }
    let ws = generated();
    // A removed machine's tree stays behind.
    let gone = ws.root().join("sops/machines/gone/secrets");
    std::fs::create_dir_all(&gone).unwrap();
    std::fs::copy(token_file(&ws), gone.join("token.yaml")).unwrap();
    // A hand-made file, encrypted by real sops to the admin and a second admin bob.
    let bob_key = ws.root().join("bob.agekey");
    let bob = varsmith::keys::keygen::append_admin_key(&bob_key).unwrap();
    let hand = ws.root().join("sops/machines/m1/secrets/db.yaml");
    std::fs::write(&hand, "password: hunter2\n").unwrap();
    let o = std::process::Command::new("sops")
        .args(["encrypt", "--in-place", "--age"])
        .arg(format!("{},{bob}", ws.recipient))
        .arg(&hand)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = check(&ws, true);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("gone/-: orphan: sops/machines/gone/: machine gone is not in varsmith.yaml"),
        "{out}"
    );
    assert!(out.contains("m1/db: hand-made: sops/machines/m1/secrets/db.yaml: not produced by any generator of m1"), "{out}");
    // Not to the host, and to bob who is no admin: the path's rule says host + alice.
    assert!(
        out.contains("m1/db: recipients: sops/machines/m1/secrets/db.yaml: encrypted to"),
        "{out}"
    );
    // rekey re-wraps the hand-made file to the host and the admins: bob is out.
    let o = ws.run(&["rekey"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("re-encrypted sops/machines/m1/secrets/db.yaml"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("note: sops/machines/gone/ belongs to no machine"),
        "{}",
        stderr(&o)
    );
    let plain = sops_decrypt(&hand, &ws.key);
    assert_eq!(stdout(&plain), "password: hunter2\n");
    assert!(!sops_decrypt(&hand, &bob_key).status.success());
    let out = stdout(&check(&ws, true));
    assert!(!out.contains("m1/db: recipients"), "{out}");
    // The orphan tree was left alone (check keeps reporting it).
    assert!(out.contains("orphan"), "{out}");
}

#[test]
fn regenerating_the_host_key_needs_rotate_host_key() {
    if !tools() {
        return;
    }
    let ws = generated();
    let before = ws.snapshot();
    for args in [
        &["generate", "--regenerate", "-g", "openssh", "m1"][..],
        &["generate", "--regenerate", "--prompt", "token.label=x"][..],
    ] {
        let o = ws.run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert!(
            err.contains("machine m1: this would replace the existing host key"),
            "{err}"
        );
        assert!(err.contains("--rotate-host-key"), "{err}");
    }
    let after: Vec<_> = ws
        .snapshot()
        .into_iter()
        .filter(|(p, ..)| !p.starts_with(ws.root().join("sops/.tmp")))
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .filter(|(p, ..)| !p.starts_with(ws.root().join("sops/.tmp")))
        .collect();
    assert_eq!(before, after, "a refused rotation wrote something");
}

#[test]
fn admin_names_are_not_silently_replaced_and_the_last_one_stays() {
    let ws = Ws::new(FLEET);
    let key2 = ws.root().join("k2");
    let r2 = varsmith::keys::keygen::append_admin_key(&key2).unwrap();
    let o = ws.run(&["admin", "add", "alice", &r2]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("admin alice already exists"),
        "{}",
        stderr(&o)
    );
    let inv = std::fs::read_to_string(ws.root().join("varsmith.yaml")).unwrap();
    assert!(inv.contains(&ws.recipient) && !inv.contains(&r2));
    let o = ws.run(&["admin", "add", "alice", &r2, "--replace"]);
    assert!(o.status.success());
    assert!(
        stderr(&o).contains("admin alice replaced"),
        "{}",
        stderr(&o)
    );
    let o = ws.run(&["admin", "add", "bob", &r2]);
    assert!(o.status.success());
    assert!(
        stderr(&o).contains("warning: admin alice already has this key"),
        "{}",
        stderr(&o)
    );
    assert!(ws.run(&["admin", "remove", "bob"]).status.success());
    let o = ws.run(&["admin", "remove", "alice"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("alice is the last admin"),
        "{}",
        stderr(&o)
    );
    let inv = std::fs::read_to_string(ws.root().join("varsmith.yaml")).unwrap();
    assert!(inv.contains(&r2));
}

#[test]
fn prompt_entries_naming_no_prompt_are_errors() {
    if !tools() {
        return;
    }
    let ws = Ws::new(FLEET);
    ws.generator("token", TOKEN);
    let o = ws.run(&[
        "generate",
        "--prompt",
        "token.label=x",
        "--prompt",
        "token.lable=y",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("--prompt token.lable: generator token (machine m1) has no prompt \"lable\" (its prompts: label)"), "{err}");
    let pf = ws.root().join("prompts.yaml");
    std::fs::write(&pf, "tokn:\n  label: x\n").unwrap();
    let o = ws.run(&["generate", "--prompts-file", pf.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(": tokn.label: no selected machine or user uses a generator \"tokn\""),
        "{}",
        stderr(&o)
    );
    assert!(!ws.root().join("sops/machines").exists());
}

#[test]
fn a_broken_age_block_or_recipient_is_named() {
    if !tools() {
        return;
    }
    let ws = generated();
    let f = token_file(&ws);
    let text = std::fs::read_to_string(&f).unwrap();
    let mut out = Vec::new();
    let mut after_begin = false;
    for l in text.lines() {
        if after_begin {
            // The first armored line (the age header's start) replaced by other base64.
            let indent = &l[..l.len() - l.trim_start().len()];
            out.push(format!("{indent}bm90IGFuIGFnZSBoZWFkZXIK"));
            after_begin = false;
            continue;
        }
        after_begin = l.contains("-----BEGIN AGE ENCRYPTED FILE-----");
        out.push(l.replacen("- recipient: age1", "- recipient: age1x", 1));
    }
    std::fs::write(&f, out.join("\n") + "\n").unwrap();
    let o = check(&ws, false);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("token.yaml: sops.age[0].recipient:"), "{out}");
    assert!(out.contains("is not an armored age file"), "{out}");
}

#[test]
fn a_personal_ssh_key_alone_does_not_fail_the_gate_but_is_not_called_verified() {
    if !tools() {
        return;
    }
    let ws = generated();
    let ssh = ws.root().join("home/.ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    let o = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(ssh.join("id_ed25519"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let o = check(&ws, false);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stderr(&o).contains(
            "0 MACs verified, 2 files structure only: ~/.ssh/id_ed25519 does not open them"
        ),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_unrelated_key_in_the_default_key_file_does_not_fail_the_gate() {
    if !tools() {
        return;
    }
    let ws = generated();
    // Another project's key in ~/.config/sops/age/keys.txt (HOME is the workspace's home).
    let default = ws.root().join("home/.config/sops/age/keys.txt");
    std::fs::create_dir_all(default.parent().unwrap()).unwrap();
    varsmith::keys::keygen::append_admin_key(&default).unwrap();
    let o = check(&ws, false);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stderr(&o).contains(
            "0 MACs verified, 2 files structure only: ~/.config/sops/age/keys.txt does not open them"
        ),
        "{}",
        stderr(&o)
    );
    // The same key given on purpose is a finding (an_identity_that_opens_nothing_is_not_an_ok).
    let o = ws
        .command(&["check", "-i", default.to_str().unwrap()])
        .env_remove("SOPS_AGE_KEY_FILE")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
}
