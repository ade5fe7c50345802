//! Terminal input on a real pty (`script`): `set` asks the value like a hidden prompt (on the
//! terminal, not stdout; echo off; stored without the newline), and a hidden prompt whose two
//! answers differ is asked again, three tries, then fails naming machine, generator, prompt.

use crate::util::tty;

use crate::util::common::*;
use tty::Tty;

fn tools() -> bool {
    require("bwrap") && require("script") && require("age-keygen")
}

/// A workspace whose machine m1 has a hand-written host recipient and generators `tok`
/// (a plain secret) and `p` (a hidden prompt).
fn workspace() -> Ws {
    let ws = Ws::new("admins:\n  alice: ADMIN\nmachines:\n  m1:\n    generators: [tok, p]\n");
    ws.generator(
        "tok",
        "files:\n  tok: {}\nscript: |\n  printf generated > $out/tok\n",
    );
    ws.generator(
        "p",
        "prompts:\n  pw: { type: hidden, description: root password }\nfiles:\n  out: {}\nscript: |\n  cp $prompts/pw $out/out\n",
    );
    let host = tempfile::NamedTempFile::new().unwrap();
    let r = varsmith::keys::keygen::append_admin_key(host.path()).unwrap();
    let d = ws.root().join("sops/machines/m1");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("key.json"),
        format!("[{{\"publickey\": \"{r}\", \"type\": \"age\"}}]\n"),
    )
    .unwrap();
    ws
}

/// `varsmith -C ROOT ARGS` on a pty, with the workspace's admin identity.
fn on_tty(ws: &Ws, args: &str) -> Tty {
    let cmdline = format!(
        "{} -C {} {args}",
        env!("CARGO_BIN_EXE_varsmith"),
        ws.root().display()
    );
    Tty::spawn(
        &cmdline,
        &[
            ("SOPS_AGE_KEY_FILE", ws.key.as_os_str()),
            ("XDG_RUNTIME_DIR", ws.runtime.path().as_os_str()),
            ("HOME", ws.root().join("home").as_os_str()),
        ],
        &["SOPS_AGE_KEY"],
    )
}

fn get(ws: &Ws, var: &str) -> Vec<u8> {
    let o = ws.run(&["get", "m1", var]);
    assert!(o.status.success(), "{}", stderr(&o));
    o.stdout
}

#[test]
fn set_on_a_terminal_asks_hidden_on_the_tty_and_drops_the_newline() {
    if !tools() {
        return;
    }
    let ws = workspace();
    let o = ws.run(&["generate", "--prompt", "p.pw=x"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // stdout and stderr go to files: the question can only reach the screen through /dev/tty.
    let out = ws.root().join("set.out");
    let err = ws.root().join("set.err");
    let mut t = on_tty(
        &ws,
        &format!("set m1 tok/tok >{} 2>{}", out.display(), err.display()),
    );
    t.wait_for("m1/tok: tok: ", 1);
    t.type_text(b"typed-s3cret\n");
    t.wait_for("(again): ", 1);
    t.type_text(b"typed-s3cret\n");
    let (status, screen) = t.finish();
    assert!(status.success(), "{screen}");
    assert!(!screen.contains("typed-s3cret"), "echoed: {screen}");
    let out = std::fs::read_to_string(out).unwrap();
    let err = std::fs::read_to_string(err).unwrap();
    assert!(
        !out.contains("tok: ") && !err.contains("(again)"),
        "{out}{err}"
    );
    assert!(err.contains("m1/tok/tok set"), "{err}");
    assert_eq!(get(&ws, "tok/tok"), b"typed-s3cret");
}

#[test]
fn set_from_a_pipe_drops_one_newline_unless_raw() {
    if !tools() {
        return;
    }
    let ws = workspace();
    assert!(ws.run(&["generate", "--prompt", "p.pw=x"]).status.success());
    let o = ws.run_stdin(&["set", "m1", "tok/tok"], b"piped\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(get(&ws, "tok/tok"), b"piped");
    let o = ws.run_stdin(&["set", "--raw", "m1", "tok/tok"], b"piped\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(get(&ws, "tok/tok"), b"piped\n");
}

#[test]
fn hidden_prompt_answers_that_differ_are_asked_again() {
    if !tools() {
        return;
    }
    let ws = workspace();
    let mut t = on_tty(&ws, "generate");
    t.wait_for("root password: ", 1);
    t.type_text(b"first\n");
    t.wait_for("(again): ", 1);
    t.type_text(b"typo\n");
    t.wait_for("answers differ, try again (2 left)", 1);
    t.wait_for("root password: ", 2);
    t.type_text(b"right-one\n");
    t.wait_for("(again): ", 2);
    t.type_text(b"right-one\n");
    let (status, screen) = t.finish();
    assert!(status.success(), "{screen}");
    assert!(
        !screen.contains("right-one") && !screen.contains("typo"),
        "{screen}"
    );
    assert_eq!(get(&ws, "p/out"), b"right-one");
}

#[test]
fn three_differing_answers_fail_naming_machine_generator_and_prompt() {
    if !tools() {
        return;
    }
    let ws = workspace();
    let mut t = on_tty(&ws, "generate");
    for n in 1..=3 {
        t.wait_for("root password: ", n);
        t.type_text(format!("a{n}\n").as_bytes());
        t.wait_for("(again): ", n);
        t.type_text(format!("b{n}\n").as_bytes());
    }
    let (status, screen) = t.finish();
    assert_eq!(status.code(), Some(2), "{screen}");
    assert!(screen.contains("(1 left)"), "{screen}");
    assert!(
        screen.contains("m1/p: prompt pw: the two answers differed 3 times"),
        "{screen}"
    );
    // Nothing ran, nothing was written.
    assert!(!ws.root().join("sops/machines/m1/secrets").exists());
}

/// `display.required` (clan's default once `display` is given): an empty answer is asked
/// again on a terminal, and is an error from `--prompt`, the prompts file or the environment;
/// `required: false` accepts it.
#[test]
fn a_required_prompt_refuses_an_empty_answer() {
    if !tools() {
        return;
    }
    let ws = workspace();
    ws.generator(
        "p",
        "prompts:\n  pw: { type: line, description: wifi name, display: { label: SSID } }\nfiles:\n  out: {}\nscript: |\n  cp $prompts/pw $out/out\n",
    );
    let mut t = on_tty(&ws, "generate");
    t.wait_for("wifi name: ", 1);
    t.type_text(b"\n");
    t.wait_for("an answer is required (2 tries left)", 1);
    t.wait_for("wifi name: ", 2);
    t.type_text(b"home\n");
    let (status, screen) = t.finish();
    assert!(status.success(), "{screen}");
    assert_eq!(get(&ws, "p/out"), b"home");

    let o = ws.run(&["generate", "--regenerate", "-g", "p", "--prompt", "p.pw="]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "m1/p: prompt pw is required (display.required) but the value given (--prompt p.pw) is empty"
        ),
        "{}",
        stderr(&o)
    );
    let o = ws
        .command(&["generate", "--regenerate", "-g", "p"])
        .env("VARSMITH_PROMPT_P_PW", "")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the value given (VARSMITH_PROMPT_P_PW) is empty"),
        "{}",
        stderr(&o)
    );
    assert_eq!(get(&ws, "p/out"), b"home", "nothing written");
    ws.generator(
        "p",
        "prompts:\n  pw: { type: line, description: wifi name, display: { required: false } }\nfiles:\n  out: {}\nscript: |\n  cp $prompts/pw $out/out\n",
    );
    let o = ws.run(&["generate", "--regenerate", "-g", "p", "--prompt", "p.pw="]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(get(&ws, "p/out"), b"");
}
