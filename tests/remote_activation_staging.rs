//! The first deploy of an activation secret owned by a user that the same deploy creates
//! (issue 23, item 2): the upload stages it owned by root, with its mode, and the deploy goes
//! on to activation (where the module's snippet gives it its owner); an owner that exists
//! gets the file at once. Against the real sshd harness.

use std::process::Command;

use crate::util::remote::{Sshd, StandIns, deploy_dir, require_as_root, write_inventory};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn an_activation_secret_of_a_user_not_yet_created_is_staged_as_root() {
    if !require_as_root(&["sops", "age-keygen"]) {
        return;
    }
    let Some(sshd) = Sshd::start() else { return };
    let ws = deploy_dir();
    write_inventory(
        ws.path(),
        &format!(
            "machines:\n  web:\n    target: {}\n    generators: [app, existing]\n",
            sshd.target()
        ),
    );
    let g = ws.path().join("generators");
    std::fs::create_dir(&g).unwrap();
    std::fs::write(
        g.join("app.yaml"),
        "files:\n  token: { needed_for: activation, owner: myapp, group: myapp, mode: \"0440\" }\nscript: 'true'\n",
    )
    .unwrap();
    std::fs::write(
        g.join("existing.yaml"),
        "files:\n  seed: { needed_for: activation, owner: nobody, group: nogroup, mode: \"0400\" }\nscript: 'true'\n",
    )
    .unwrap();
    std::fs::write(
        ws.path().join("known_hosts"),
        format!("web {}\n", sshd.host_pub),
    )
    .unwrap();
    let (age, recipient) = crate::util::remote::age_keygen(ws.path());
    let sec = ws.path().join("sops/machines/web/secrets");
    crate::util::remote::sops_encrypt(
        &recipient,
        "token",
        b"app-token-5e1\n",
        &sec.join("app.yaml"),
    );
    crate::util::remote::sops_encrypt(
        &recipient,
        "seed",
        b"seed-93b\n",
        &sec.join("existing.yaml"),
    );
    let s = StandIns::new();
    let mut c = Command::new(env!("CARGO_BIN_EXE_varsmith"));
    c.arg("-C")
        .arg(ws.path())
        .args(["deploy", "web", "--no-check"]);
    for o in sshd.ssh_options() {
        c.arg("--ssh-option").arg(o);
    }
    let out = c
        .env("PATH", s.path_env())
        .env("SOPS_AGE_KEY_FILE", &age)
        .env_remove("SOPS_AGE_KEY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("invalid user"));
    let got = sshd.exec(
        "cd /var/lib/varsmith/activation && stat -c '%n %U %G %a' app/token existing/seed && cat app/token",
    );
    assert_eq!(
        text(&got),
        "app/token root root 440\nexisting/seed nobody nogroup 400\napp-token-5e1\n"
    );
    let recs = s.records();
    assert_eq!(recs.len(), 1, "activation ran after the upload: {recs:?}");
    assert_eq!(recs[0][1], "nixos-rebuild");
}
