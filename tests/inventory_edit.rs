//! Inventory edits through the binary: `machine add|remove|edit|generators` keep every byte
//! of `varsmith.yaml` outside the lines they change (comments, blank lines, quoting, order),
//! print what they changed, refuse unknown generators (exit 2, nothing written), and the
//! result is what the rest of varsmith reads.

use crate::util::common::*;

const INVENTORY: &str = "# Fleet inventory: hand-written, with comments.
admins:
  alice: ADMIN   # the admin key

machines:
  # The zerotier controller.
  cinnabar:
    target: root@cinnabar.example.org  # public IP
    tags: [vps, zerotier-controller]   # roles
    generators:
      - openssh        # host key first
      - password

  # A member.
  electrum:
    generators: [openssh]

deploy:
  backend: nixos-rebuild
  order: [zerotier-controller]   # controller first
";

fn ws() -> Ws {
    Ws::new(INVENTORY)
}

fn text(ws: &Ws) -> String {
    std::fs::read_to_string(ws.root().join("varsmith.yaml")).unwrap()
}

/// The file as written by the test, with the admin recipient filled in.
fn original(ws: &Ws) -> String {
    INVENTORY.replace("ADMIN", &ws.recipient)
}

/// Runs varsmith, asserts success, and returns stdout.
fn ok(ws: &Ws, args: &[&str]) -> String {
    let o = ws.run(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn generators_add_and_remove_touch_only_their_lines() {
    let ws = ws();
    let out = ok(
        &ws,
        &["machine", "generators", "add", "cinnabar", "wireguard"],
    );
    assert_eq!(out, "cinnabar: generators += wireguard\n");
    let want = original(&ws).replace(
        "      - password\n",
        "      - password\n      - wireguard\n",
    );
    assert_eq!(text(&ws), want);
    let out = ok(
        &ws,
        &["machine", "generators", "remove", "cinnabar", "password"],
    );
    assert_eq!(out, "cinnabar: generators -= password\n");
    let want = want.replace("      - password\n", "");
    assert_eq!(text(&ws), want);
    // A flow list is rewritten on its line.
    let out = ok(
        &ws,
        &[
            "machine",
            "generators",
            "add",
            "electrum",
            "wireguard",
            "password",
        ],
    );
    assert_eq!(out, "electrum: generators += wireguard, password\n");
    let want = want.replace(
        "    generators: [openssh]\n",
        "    generators: [openssh, wireguard, password]\n",
    );
    assert_eq!(text(&ws), want);
    // The rest of varsmith reads the edited file.
    let o = ws.run(&["list", "electrum"]);
    assert!(stdout(&o).contains("wireguard/"), "{}", stdout(&o));
}

#[test]
fn machine_edit_changes_tags_and_target_keeping_comments() {
    let ws = ws();
    let out = ok(
        &ws,
        &[
            "machine",
            "edit",
            "cinnabar",
            "--add-tag",
            "eu",
            "--remove-tag",
            "vps",
            "--target",
            "root@10.0.0.1",
        ],
    );
    assert_eq!(
        out,
        "cinnabar: tags += eu\ncinnabar: tags -= vps\ncinnabar: target = root@10.0.0.1\n"
    );
    let want = original(&ws)
        .replace(
            "    tags: [vps, zerotier-controller]   # roles\n",
            "    tags: [zerotier-controller, eu]   # roles\n",
        )
        .replace(
            "    target: root@cinnabar.example.org  # public IP\n",
            "    target: root@10.0.0.1  # public IP\n",
        );
    assert_eq!(text(&ws), want);
}

#[test]
fn machine_add_appends_in_the_file_style_and_remove_takes_it_out() {
    let ws = ws();
    let out = ok(
        &ws,
        &[
            "machine",
            "add",
            "malachite",
            "--tags",
            "vps,eu",
            "--generators",
            "openssh,password",
        ],
    );
    assert_eq!(
        out,
        "malachite: added (generators: openssh, password; tags: vps, eu)\n"
    );
    let want = original(&ws).replace(
        "    generators: [openssh]\n\ndeploy:",
        "    generators: [openssh]\n  malachite:\n    tags: [vps, eu]\n    generators: [openssh, password]\n\ndeploy:",
    );
    assert_eq!(text(&ws), want);
    let o = ws.run(&["machine", "add", "malachite", "-g", "wireguard"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("machine generators add malachite"),
        "{}",
        stderr(&o)
    );
    let out = ok(&ws, &["machine", "remove", "malachite"]);
    assert!(out.starts_with("malachite: removed"), "{out}");
    assert_eq!(text(&ws), original(&ws));
}

#[test]
fn unknown_generators_machines_and_no_ops_write_nothing() {
    let ws = ws();
    let before = text(&ws);
    let o = ws.run(&["machine", "generators", "add", "cinnabar", "no-such-gen"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("varsmith.yaml") && e.contains("cinnabar") && e.contains("no-such-gen"),
        "{e}"
    );
    let o = ws.run(&["machine", "add", "new", "-g", "no-such-gen"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = ws.run(&["machine", "generators", "remove", "electrum", "password"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("machine electrum has no generator \"password\""),
        "{}",
        stderr(&o)
    );
    let o = ws.run(&["machine", "edit", "nobody", "--add-tag", "x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown machine \"nobody\""),
        "{}",
        stderr(&o)
    );
    let o = ws.run(&["machine", "generators", "add", "electrum", "openssh"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).contains("electrum: already has generator openssh"),
        "{}",
        stderr(&o)
    );
    assert_eq!(text(&ws), before);
}

#[test]
fn a_layout_the_editor_does_not_rewrite_is_refused_not_guessed() {
    let ws = Ws::new("admins:\n  alice: ADMIN\nmachines: {m1: {generators: [openssh]}}\n");
    let before = text(&ws);
    let o = ws.run(&["machine", "generators", "add", "m1", "password"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("flow mapping"), "{}", stderr(&o));
    assert_eq!(text(&ws), before);
}

#[test]
fn admin_add_and_remove_keep_the_file_layout() {
    let ws = ws();
    let bob =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOQcXSnjv6sQAjGdHpJ5nx4iVsyYR9g5Nj8GsxrgZxtV bob";
    let o = ws.run(&["admin", "add", "bob", bob]);
    assert!(o.status.success(), "{}", stderr(&o));
    let want = original(&ws).replace(
        "   # the admin key\n",
        &format!("   # the admin key\n  bob: '{bob}'\n"),
    );
    assert_eq!(text(&ws), want);
    let o = ws.run(&["admin", "remove", "bob"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(text(&ws), original(&ws));
}
