//! Crypt rules and MAC variants against the real sops: encrypted_regex, mac_only_encrypted,
//! and decryption that tries every identity.

use crate::util::sops::*;
use varsmith::error::HasKind;
use varsmith::sops::{self, Format};

const PLAIN: &str = "# c\ndata:\n    password: pw1\n    other: x\nstringData:\n    token: t\nmeta:\n    name: nm\n    port: 1\n";

fn write_config(dir: &std::path::Path, extra: &str) {
    let r = recipient_of(&fixture("admin.agekey"));
    std::fs::write(
        dir.join(".sops.yaml"),
        format!("creation_rules:\n  - age: {r}\n{extra}"),
    )
    .unwrap();
}

#[test]
fn encrypted_regex_and_mac_only_encrypted_both_ways() {
    if !require("sops") || !require("age-keygen") {
        return;
    }
    let a = fixture("admin.agekey");
    let enc_re = regex::Regex::new(r"ENC\[[^\]]*\]").unwrap();
    for extra in [
        "    encrypted_regex: ^(data|stringData)$\n    mac_only_encrypted: true\n",
        "    unencrypted_regex: ^meta$\n",
        "    encrypted_suffix: Data\n",
        "    mac_only_encrypted: true\n",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        write_config(dir.path(), extra);
        std::fs::write(dir.path().join("theirs.yaml"), PLAIN).unwrap();
        std::fs::write(dir.path().join("ours.yaml"), PLAIN).unwrap();
        let out = clean("sops", home.path())
            .current_dir(dir.path())
            .args(["encrypt", "-i", "theirs.yaml"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = varsmith(home.path())
            .current_dir(dir.path())
            .args(["sops", "encrypt", "--in-place", "ours.yaml"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs = std::fs::read(dir.path().join("theirs.yaml")).unwrap();
        let ours = std::fs::read(dir.path().join("ours.yaml")).unwrap();
        // Same plaintext/ciphertext layout and metadata keys.
        let shape = |b: &[u8]| -> Vec<String> {
            String::from_utf8_lossy(b)
                .lines()
                .filter(|l| !l.starts_with("            ") && !l.contains("lastmodified"))
                .map(|l| enc_re.replace_all(l, "ENC").to_string())
                .collect()
        };
        assert_eq!(shape(&ours), shape(&theirs), "{extra}");
        // varsmith decrypts sops' file; sops decrypts ours; both give the plaintext.
        let d = sops::decrypt_to_plaintext(&theirs, Format::Yaml, &ids(&a), "theirs").unwrap();
        assert_eq!(&d[..], PLAIN.as_bytes(), "{extra}");
        let out = ok(
            sops_decrypt(home.path(), &a, &[], &dir.path().join("ours.yaml")),
            "sops decrypt",
        );
        assert_eq!(out, PLAIN.as_bytes(), "{extra}");
    }
}

#[test]
fn decryption_tries_every_identity() {
    let a = fixture("admin.agekey");
    let h = fixture("host.agekey");
    let file =
        sops::encrypt_flat_yaml(&[("k".into(), b"v".as_slice())], &[recipient_of(&a)]).unwrap();
    let mut ids = varsmith::keys::Identities::new();
    for k in [&h, &a] {
        ids.add_text(
            &std::fs::read(k).unwrap(),
            varsmith::keys::IdentitySource::File(k.clone()),
        )
        .unwrap();
    }
    let got = sops::decrypt_flat(&file, Format::Yaml, &ids, "t").unwrap();
    assert_eq!(&got["k"][..], b"v");
    let only_host = crate::util::sops::ids(&h);
    let e = sops::decrypt_flat(&file, Format::Yaml, &only_host, "t.yaml").unwrap_err();
    assert_eq!(e.kind().exit_code(), 1);
    assert!(e.to_string().starts_with("t.yaml: "));
}

#[test]
fn nested_values_are_refused_by_decrypt_flat() {
    let a = fixture("admin.agekey");
    let opts = sops::EncryptOptions {
        recipients: vec![recipient_of(&a)],
        ..Default::default()
    };
    let file = sops::encrypt(
        b"top: x\nnested:\n    inner: secretvalue\n",
        Format::Yaml,
        &opts,
        "n.yaml",
    )
    .unwrap();
    let e = sops::decrypt_flat(&file, Format::Yaml, &ids(&a), "n.yaml").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("n.yaml") && msg.contains("nested") && !msg.contains("secretvalue"),
        "{msg}"
    );
}
