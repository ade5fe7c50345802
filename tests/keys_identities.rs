//! Identities and recipients beyond X25519, through the binary and against real age and sops:
//! an age plugin (a stand-in `age-plugin-test` speaking the plugin protocol, found on PATH),
//! an ssh-ed25519 admin, a passphrase-protected identity file (asked on a pty; an error with
//! no terminal), and clear errors for a public key or a missing file given as identity.

use crate::util::tty;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::util::common::*;

const PLUGIN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/age-plugin");

fn tools() -> bool {
    require("bwrap") && require("age") && require("sops") && require("python3")
}

/// bech32 of 32 arbitrary bytes under `hrp` (the stand-in plugin ignores the data).
fn bech32(hrp: &str) -> String {
    let hrp = bech32::Hrp::parse(hrp).unwrap();
    bech32::encode::<bech32::Bech32>(hrp, &[7u8; 32]).unwrap()
}

fn plugin_recipient() -> String {
    bech32("age1test")
}

fn plugin_identity() -> String {
    bech32("age-plugin-test-").to_uppercase()
}

/// PATH with the stand-in plugin first.
fn plugin_path() -> std::ffi::OsString {
    let mut p = std::ffi::OsString::from(PLUGIN_DIR);
    p.push(":");
    p.push(std::env::var_os("PATH").unwrap_or_default());
    p
}

/// A workspace whose machine m1 has a hand-written host recipient and one secret `tok/tok`.
fn workspace() -> Ws {
    let ws = Ws::new("admins:\n  alice: ADMIN\nmachines:\n  m1:\n    generators: [tok]\n");
    ws.generator(
        "tok",
        "files:\n  tok: {}\nscript: |\n  printf s3cret-token > $out/tok\n",
    );
    let host = ws.root().join("home/host.agekey");
    let r = varsmith::keys::keygen::append_admin_key(&host).unwrap();
    let d = ws.root().join("sops/machines/m1");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("key.json"),
        format!("[{{\"publickey\": \"{r}\", \"type\": \"age\"}}]\n"),
    )
    .unwrap();
    ws
}

/// varsmith with only `identity` (no SOPS_AGE_KEY_FILE, no default key file).
fn run_as(ws: &Ws, identity: &Path, args: &[&str], path: &std::ffi::OsStr) -> Output {
    let mut c = ws.command(&[]);
    c.env_remove("SOPS_AGE_KEY_FILE")
        .env("PATH", path)
        .env("AGE_PLUGIN_TEST_LOG", ws.root().join("home/plugin.log"));
    let mut full: Vec<&std::ffi::OsStr> = vec!["-i".as_ref(), identity.as_os_str()];
    full.extend(args.iter().map(std::ffi::OsStr::new));
    c.args(full).stdin(Stdio::null()).output().unwrap()
}

/// The armored age file sops stored for `recipient` in a sops YAML file.
fn enc_blob(file: &Path, recipient: &str) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let at = text
        .find(&format!("recipient: {recipient}"))
        .expect("recipient");
    let rest = &text[at..];
    let start = rest.find("-----BEGIN AGE ENCRYPTED FILE-----").unwrap();
    let end = rest.find("-----END AGE ENCRYPTED FILE-----").unwrap() + 32;
    rest[start..end]
        .lines()
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn plugin_recipient_and_identity_work_with_varsmith_age_and_sops() {
    if !tools() {
        return;
    }
    let ws = workspace();
    let log = ws.root().join("home/plugin.log");
    let id = write(
        ws.root(),
        "home/plugin.id",
        &format!("# test plugin\n{}\n", plugin_identity()),
    );
    let rcpt = plugin_recipient();
    let o = ws
        .command(&["admin", "add", "carol", &rcpt])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ws
        .command(&["generate"])
        .env("PATH", plugin_path())
        .env("AGE_PLUGIN_TEST_LOG", &log)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("recipient-v1")
    );
    let o = ws.run(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let file = ws.root().join("sops/machines/m1/secrets/tok.yaml");
    // varsmith decrypts with the plugin identity alone.
    let o = run_as(&ws, &id, &["get", "m1", "tok/tok"], &plugin_path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(o.stdout, b"s3cret-token");
    // Real sops (age's Go library, the same plugin protocol) reads varsmith's file.
    let o = Command::new("sops")
        .args(["decrypt"])
        .arg(&file)
        .env("SOPS_AGE_KEY_FILE", &id)
        .env("PATH", plugin_path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("tok: s3cret-token"), "{}", stdout(&o));
    // Real age unwraps carol's data key from varsmith's stanza.
    let blob = write(ws.root(), "home/carol.age", &enc_blob(&file, &rcpt));
    let o = Command::new("age")
        .args(["-d", "-i"])
        .arg(&id)
        .arg(&blob)
        .env("PATH", plugin_path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(o.stdout.len(), 32, "a sops data key");
    // The other way: real sops encrypts to the plugin recipient, varsmith decrypts.
    let plain = write(ws.root(), "home/p.yaml", "answer: 42\n");
    let o = Command::new("sops")
        .args(["encrypt", "--age", &rcpt])
        .arg(&plain)
        .env("PATH", plugin_path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let enc = ws.root().join("home/p.enc.yaml");
    std::fs::write(&enc, &o.stdout).unwrap();
    let o = run_as(
        &ws,
        &id,
        &["sops", "decrypt", enc.to_str().unwrap()],
        &plugin_path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "answer: 42\n");
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("identity-v1")
    );
}

#[test]
fn a_missing_plugin_is_a_clear_error() {
    if !tools() {
        return;
    }
    let ws = workspace();
    let id = write(
        ws.root(),
        "home/plugin.id",
        &format!("{}\n", plugin_identity()),
    );
    let o = run_as(
        &ws,
        &id,
        &["get", "m1", "tok/tok"],
        "/usr/bin:/bin".as_ref(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("plugin.id") && e.contains("age-plugin-test") && e.contains("PATH"),
        "{e}"
    );
    // A YubiKey recipient is accepted as an admin without its plugin; encrypting to it
    // without the plugin fails naming the recipient, and writes nothing.
    let yk = bech32("age1yubikey");
    let o = ws.command(&["admin", "add", "yk", &yk]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ws
        .command(&["generate"])
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("age-plugin-yubikey"), "{}", stderr(&o));
    assert!(!ws.root().join("sops/machines/m1/secrets/tok.yaml").exists());
}

#[test]
fn ssh_ed25519_admin_decrypts_with_varsmith_and_sops() {
    if !(tools() && require("ssh-keygen")) {
        return;
    }
    let ws = workspace();
    let key = ws.root().join("home/bob");
    std::fs::create_dir_all(ws.root().join("home")).unwrap();
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    // With an empty comment the line ends in a space: it must not matter.
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let public = public.trim_end_matches('\n');
    let o = ws
        .command(&["admin", "add", "bob", public])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ws.run(&["generate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ws.run(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let file = ws.root().join("sops/machines/m1/secrets/tok.yaml");
    let path = std::env::var_os("PATH").unwrap_or_default();
    // bob's data key is wrapped in an ssh-ed25519 stanza, as age and sops write for ssh keys.
    let armored = enc_blob(&file, public.trim());
    let b64: String = armored
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let header = String::from_utf8_lossy(&base64_decode(&b64)).into_owned();
    assert!(header.contains("\n-> ssh-ed25519 "), "{header}");
    let o = run_as(&ws, &key, &["get", "m1", "tok/tok"], &path);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(o.stdout, b"s3cret-token");
    let o = Command::new("sops")
        .args(["decrypt"])
        .arg(&file)
        .env_remove("SOPS_AGE_KEY_FILE")
        .env("SOPS_AGE_SSH_PRIVATE_KEY_FILE", &key)
        .env("HOME", ws.root().join("home/nowhere"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("tok: s3cret-token"));
    // Real sops encrypting to the ssh recipient, varsmith decrypting with the ssh key.
    let plain = write(ws.root(), "home/p.yaml", "answer: 42\n");
    let o = Command::new("sops")
        .args(["encrypt", "--age", public.trim()])
        .arg(&plain)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let enc = write(ws.root(), "home/p.enc.yaml", &stdout(&o));
    let o = run_as(
        &ws,
        &key,
        &["sops", "decrypt", enc.to_str().unwrap()],
        &path,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "answer: 42\n");
}

/// An identity file encrypted with a passphrase (cheap scrypt work factor), as `age -p` makes.
fn passphrase_identity(dir: &Path, identity_text: &str, pass: &str) -> PathBuf {
    use std::io::Write;
    let mut r = age::scrypt::Recipient::new(age::secrecy::SecretString::from(pass.to_string()));
    r.set_work_factor(10);
    let enc = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient)).unwrap();
    let armor =
        age::armor::ArmoredWriter::wrap_output(Vec::new(), age::armor::Format::AsciiArmor).unwrap();
    let mut w = enc.wrap_output(armor).unwrap();
    w.write_all(identity_text.as_bytes()).unwrap();
    let out = w.finish().unwrap().finish().unwrap();
    let p = dir.join("identity.age");
    std::fs::write(&p, out).unwrap();
    p
}

#[test]
fn passphrase_identity_is_asked_on_the_terminal_and_fails_without_one() {
    if !(tools() && require("script") && require("setsid")) {
        return;
    }
    let ws = workspace();
    let home = ws.root().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let plain_key = home.join("plain.agekey");
    let rcpt = varsmith::keys::keygen::append_admin_key(&plain_key).unwrap();
    let text = std::fs::read_to_string(&plain_key).unwrap();
    let enc_id = passphrase_identity(&home, &text, "correct horse");
    let plain = write(&home, "p.yaml", "answer: 42\n");
    let o = Command::new("sops")
        .args(["encrypt", "--age", &rcpt])
        .arg(&plain)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let enc = write(&home, "p.enc.yaml", &stdout(&o));
    let cmdline = format!(
        "{} -i {} sops decrypt {}",
        env!("CARGO_BIN_EXE_varsmith"),
        enc_id.display(),
        enc.display()
    );
    let mut t = tty::Tty::spawn(
        &cmdline,
        &[("HOME", home.as_os_str())],
        &["SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY"],
    );
    t.wait_for("Enter passphrase for identity file", 1);
    t.type_text(b"correct horse\n");
    let (status, screen) = t.finish();
    assert!(status.success(), "{screen}");
    assert!(screen.contains("answer: 42"), "{screen}");
    assert!(!screen.contains("correct horse"), "echoed: {screen}");
    // A wrong passphrase: exit 2, naming the file, and no value.
    let mut t = tty::Tty::spawn(
        &cmdline,
        &[("HOME", home.as_os_str())],
        &["SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY"],
    );
    t.wait_for("Enter passphrase for identity file", 1);
    t.type_text(b"battery staple\n");
    let (status, screen) = t.finish();
    assert_eq!(status.code(), Some(2), "{screen}");
    assert!(
        screen.contains("identity.age: wrong passphrase"),
        "{screen}"
    );
    assert!(
        !screen.contains("answer: 42") && !screen.contains("battery"),
        "{screen}"
    );
    // No terminal (a new session, as in CI): a clear error at once, exit 2, never a wait.
    let o = Command::new("setsid")
        .arg("-w")
        .arg(env!("CARGO_BIN_EXE_varsmith"))
        .arg("-i")
        .arg(&enc_id)
        .args(["sops", "decrypt"])
        .arg(&enc)
        .env("HOME", &home)
        .env_remove("SOPS_AGE_KEY_FILE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("identity.age") && e.contains("no terminal"),
        "{e}"
    );
}

#[test]
fn public_key_or_missing_file_as_identity_are_clear_errors() {
    if !tools() {
        return;
    }
    let ws = workspace();
    let home = ws.root().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let pubfile = write(
        &home,
        "bob.pub",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOQcXSnjv6sQAjGdHpJ5nx4iVsyYR9g5Nj8GsxrgZxtV bob\n",
    );
    let o = run_as(&ws, &pubfile, &["get", "m1", "tok/tok"], &path);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("bob.pub: line 1: this is a public key"),
        "{}",
        stderr(&o)
    );
    let agepub = write(&home, "alice.txt", &format!("{}\n", ws.recipient));
    let o = run_as(&ws, &agepub, &["get", "m1", "tok/tok"], &path);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("this is a public key"),
        "{}",
        stderr(&o)
    );
    let missing = home.join("missing.key");
    let o = run_as(&ws, &missing, &["get", "m1", "tok/tok"], &path);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert_eq!(e.matches("missing.key").count(), 1, "{e}");
    assert!(e.contains("no such identity file"), "{e}");
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}
