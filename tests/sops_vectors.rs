//! The interop vectors in `sops/` (made by real sops and by varsmith) decrypt with either key,
//! with varsmith and with real sops, to the plaintexts in `sops/plain/`.

use crate::util::sops::*;
use varsmith::sops::{self, Format, store};

const FILES: [(&str, Format); 4] = [
    ("secrets.yaml", Format::Yaml),
    ("secrets.json", Format::Json),
    ("secrets.env", Format::Dotenv),
    ("secrets.bin", Format::Binary),
];

#[test]
fn vectors_decrypt_to_plaintext_with_varsmith() {
    for key in ["keys/alice.agekey", "keys/host.agekey"] {
        let ids = ids(&vector(key));
        for maker in ["by-sops", "by-varsmith"] {
            for (name, format) in FILES {
                let enc = std::fs::read(vector(&format!("{maker}/{name}"))).unwrap();
                let plain = std::fs::read(vector(&format!("plain/{name}"))).unwrap();
                let d = sops::decrypt(&enc, format, &ids, name).unwrap();
                if format == Format::Binary {
                    assert_eq!(store::emit_plain(&d.tree, format, name).unwrap(), plain);
                } else {
                    let want = store::parse(&plain, format, name).unwrap().tree;
                    assert_eq!(d.tree, want, "{maker}/{name} with {key}");
                }
            }
        }
    }
}

#[test]
fn vectors_decrypt_identically_with_real_sops() {
    if !require("sops") {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    for key in ["keys/alice.agekey", "keys/host.agekey"] {
        for maker in ["by-sops", "by-varsmith"] {
            for (name, format) in FILES {
                let f = vector(&format!("{maker}/{name}"));
                let args: &[&str] = if format == Format::Binary {
                    &["--input-type", "binary", "--output-type", "binary"]
                } else {
                    &[]
                };
                let theirs = ok(
                    sops_decrypt(home.path(), &vector(key), args, &f),
                    "sops decrypt",
                );
                let ours = ok(
                    vs_decrypt(home.path(), &vector(key), &f),
                    "varsmith decrypt",
                );
                assert_eq!(ours, theirs, "{maker}/{name} with {key}");
            }
        }
    }
}
