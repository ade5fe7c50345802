//! Leak encodings against a real nix store (Debian `nix-bin`, single-user as root, sandbox off):
//! one derivation plants every form a leak takes (gzip, xz, zstd, bzip2, CRLF PEM, base64
//! wrapped at 64 and 76 columns, UTF-16LE/BE, one line of a multi-line secret) and private
//! keys of no known secret (age, OpenSSH in UTF-16, WireGuard in gzip, PEM in base64); a store
//! path is named after a secret; and the leak is referenced from a "system" with a GC root,
//! so its referrer chain is known.
//!
//! Secrets and keys are random per run and never appear in a derivation (the builder reads
//! them from temporary files), so only this run's paths can hold them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use rand::Rng;
use rand::distributions::Alphanumeric;
use varsmith::audit::{self, AuditOptions, Location, Report, Secret};
use zeroize::Zeroizing;

fn random(n: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// True when the tools are here. In CI (`CI=true`) a missing tool is a failure, else a skip.
fn tools_available() -> bool {
    for tool in [
        "nix-build",
        "nix-store",
        "gzip",
        "xz",
        "zstd",
        "bzip2",
        "iconv",
        "base64",
    ] {
        let ok = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{tool} is missing (CI=true: the test script installs it)"
            );
            crate::util::ci::skipped(&format!("{tool} not found"));
            return false;
        }
    }
    true
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn nix_build(expr: &Path, attr: &str, out_link: Option<&Path>) -> PathBuf {
    let mut cmd = Command::new("nix-build");
    cmd.args(["--option", "sandbox", "false"])
        .args(["--option", "substituters", ""]);
    match out_link {
        Some(link) => cmd.arg("-o").arg(link),
        None => cmd.arg("--no-out-link"),
    };
    PathBuf::from(run(cmd.arg(expr).args(["-A", attr])))
}

/// The builder of the leaky output: every form of `$s1` (single line) and `$s2` (multi-line),
/// and the key files.
const LEAKY_SH: &str = r#"set -e
PATH=/usr/bin:/bin
mkdir -p $out/keys
S=$(cat "$s1")
text() { i=0; while [ $i -lt 40 ]; do echo "filler line $i of a config file"; i=$((i+1)); done; echo "password=$S"; }
text | gzip -9 > $out/gz
text | xz > $out/xz
text | zstd -q > $out/zst
text | bzip2 > $out/bz2
{ printf 'xy'; printf '%s' "$S"; printf 'tail'; } | base64 -w64 > $out/b64w64
{ printf 'x'; printf '%s' "$S"; } | base64 -w76 > $out/b64w76
printf 'password=%s\n' "$S" | iconv -f UTF-8 -t UTF-16LE > $out/utf16le
printf 'password=%s\n' "$S" | iconv -f UTF-8 -t UTF-16BE > $out/utf16be
sed 's/$/\r/' "$s2" > $out/crlf.pem
printf 'part: %s\n' "$(sed -n 3p "$s2")" > $out/line
{ echo '# created: now'; cat "$k_age"; } > $out/keys/age.txt
iconv -f UTF-8 -t UTF-16LE "$k_pem" > $out/keys/pem.utf16
printf '[Interface]\nPrivateKey = %s\n' "$(cat "$k_wg")" | gzip > $out/keys/wg.conf.gz
printf 'data: %s\n' "$(base64 -w0 "$k_pem")" > $out/keys/pem.b64
"#;

struct Planted {
    dir: tempfile::TempDir,
    single: String,
    multi: String,
    keys: Vec<String>,
    leaky: PathBuf,
    middle: PathBuf,
    system: PathBuf,
    named: PathBuf,
}

fn write(dir: &Path, name: &str, data: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    path.display().to_string()
}

fn plant() -> Planted {
    let dir = tempfile::Builder::new()
        .prefix("varsmith-enc-")
        .tempdir()
        .unwrap();
    let d = dir.path();
    let single = random(60);
    let multi = format!(
        "-----BEGIN TEST SECRET-----\n{}\n{}\n-----END TEST SECRET-----\n",
        random(40),
        random(40)
    );
    let bech32: Vec<char> = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L".chars().collect();
    let mut rng = rand::thread_rng();
    let age_body: String = (0..58).map(|_| bech32[rng.gen_range(0..32)]).collect();
    let age = format!("AGE-SECRET-KEY-1{age_body}\n");
    let pem_body = base64::engine::general_purpose::STANDARD.encode(random(96));
    let pem = format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{pem_body}\n-----END OPENSSH PRIVATE KEY-----\n"
    );
    let wg_bytes: [u8; 32] = rng.r#gen();
    let wg = base64::engine::general_purpose::STANDARD.encode(wg_bytes);
    let attrs = format!(
        r#"s1 = "{}"; s2 = "{}"; k_age = "{}"; k_pem = "{}"; k_wg = "{}";"#,
        write(d, "s1", &single),
        write(d, "s2", &multi),
        write(d, "k_age", &age),
        write(d, "k_pem", &pem),
        write(d, "k_wg", &wg),
    );
    let script = write(d, "leaky.sh", LEAKY_SH);
    let nonce = random(20);
    let expr = format!(
        r#"let
  mk = name: args: extra: builtins.derivation ({{
    inherit name args;
    nonce = "{nonce}";
    system = builtins.currentSystem;
    builder = "/bin/sh";
  }} // extra);
in rec {{
  leaky = mk "vs-enc-leaky" [ "{script}" ] {{ {attrs} }};
  middle = mk "vs-enc-middle" [ "-c" "echo ${{leaky}} > $out" ] {{}};
  system = mk "vs-enc-system" [ "-c" "echo ${{middle}} > $out" ] {{}};
}}
"#
    );
    let expr_file = d.join("enc.nix");
    std::fs::write(&expr_file, expr).unwrap();
    let system = nix_build(&expr_file, "system", Some(&d.join("result")));
    let middle = nix_build(&expr_file, "middle", None);
    let leaky = nix_build(&expr_file, "leaky", None);
    // A store path named after the secret (a file added under that name).
    let name_dir = d.join("named");
    std::fs::create_dir(&name_dir).unwrap();
    write(&name_dir, &single, "harmless content\n");
    let named = PathBuf::from(run(Command::new("nix-store")
        .arg("--add")
        .arg(name_dir.join(&single))));
    Planted {
        dir,
        single,
        multi,
        keys: vec![age_body, pem_body, wg],
        leaky,
        middle,
        system,
        named,
    }
}

fn assert_nothing_printed(text: &str, p: &Planted) {
    let lines: Vec<&str> = p.multi.lines().collect();
    let mut forbidden = vec![p.single.as_str(), &p.single[10..30], lines[1], lines[2]];
    forbidden.extend(p.keys.iter().map(|k| &k[..24]));
    for s in forbidden {
        assert!(!text.contains(s), "a secret or key was printed");
    }
}

fn assert_report_prints_nothing(report: &Report, p: &Planted) {
    let mut human = Vec::new();
    report.write_human(&mut human).unwrap();
    assert_nothing_printed(&String::from_utf8(human).unwrap(), p);
    assert_nothing_printed(&report.to_json().to_string(), p);
}

/// (file under the store path, or "name", encoding, compression).
type Seen = BTreeSet<(String, String, Option<String>)>;

fn relative(location: &Location) -> (PathBuf, String) {
    match location {
        Location::Store { store_path, file } => (
            store_path.clone(),
            file.strip_prefix(store_path).unwrap().display().to_string(),
        ),
        Location::StoreName { store_path } => (store_path.clone(), "name".to_string()),
        other => panic!("unexpected location {other:?}"),
    }
}

fn seen(report: &Report, p: &Planted) -> (Seen, Seen) {
    let named = audit::redacted(&p.named);
    let ours = [&p.leaky, &named];
    let mut leaks = Seen::new();
    for f in &report.findings {
        let (sp, file) = relative(&f.location);
        assert!(
            ours.contains(&&sp),
            "finding outside the planted paths: {sp:?}"
        );
        leaks.insert((
            file,
            f.encoding.to_string(),
            (!f.layers.is_empty()).then(|| f.layers.to_string()),
        ));
    }
    let mut keys = Seen::new();
    for k in &report.keys {
        let (sp, file) = relative(&k.location);
        assert!(ours.contains(&&sp), "key outside the planted paths: {sp:?}");
        let what = format!("{} {}", k.kind.name(), k.encoding);
        let layers = (!k.layers.is_empty()).then(|| k.layers.to_string());
        keys.insert((file, what, layers));
    }
    (leaks, keys)
}

fn expected(rows: &[(&str, &str, Option<&'static str>)]) -> Seen {
    rows.iter()
        .map(|(f, e, c)| (f.to_string(), e.to_string(), c.map(str::to_string)))
        .collect()
}

#[test]
fn every_encoding_is_found_and_named_with_its_referrer_chain() {
    if !tools_available() {
        return;
    }
    let p = plant();
    let secrets = vec![
        Secret::new(
            "cinnabar/db/password",
            Zeroizing::new(p.single.clone().into_bytes()),
        ),
        Secret::new(
            "cinnabar/tls/key",
            Zeroizing::new(p.multi.clone().into_bytes()),
        ),
    ];
    let report = audit::run(
        &secrets,
        &AuditOptions {
            closure: vec![p.system.clone(), p.named.clone()],
            ..AuditOptions::default()
        },
    )
    .unwrap();
    assert_report_prints_nothing(&report, &p);
    let (leaks, keys) = seen(&report, &p);
    let want = expected(&[
        ("gz", "raw", Some("gzip")),
        ("xz", "raw", Some("xz")),
        ("zst", "raw", Some("zstd")),
        ("bz2", "raw", Some("bzip2")),
        ("b64w64", "base64-wrapped, alignment 2", None),
        ("b64w76", "base64-wrapped, alignment 1", None),
        ("utf16le", "utf-16le", None),
        ("utf16be", "utf-16be", None),
        ("crlf.pem", "crlf", None),
        ("line", "line 3", None),
        ("name", "raw", None),
    ]);
    // zstd may store short literals as they are: a raw hit in the .zst itself is a leak too.
    let extra: Seen = leaks.difference(&want).cloned().collect();
    assert!(
        extra
            .iter()
            .all(|(f, e, c)| f == "zst" && e == "raw" && c.is_none()),
        "unexpected findings {extra:?}"
    );
    assert!(
        leaks.is_superset(&want),
        "missing {:?}",
        want.difference(&leaks)
    );
    let want_keys = expected(&[
        ("keys/age.txt", "age raw", None),
        ("keys/pem.utf16", "pem utf-16le", None),
        ("keys/wg.conf.gz", "wireguard raw", Some("gzip")),
        ("keys/pem.b64", "pem base64, alignment 0", None),
    ]);
    assert_eq!(keys, want_keys);
    let line = report
        .findings
        .iter()
        .find(|f| f.encoding.to_string() == "line 3")
        .unwrap();
    assert_eq!((line.offset, line.var.as_str()), (6, "cinnabar/tls/key"));
    assert!(!report.is_clean());
    assert!(report.is_complete(), "{:?}", report.errors);

    // The leak's chain: leaky <- middle <- system, from the `result` GC root.
    let r = report
        .referrers
        .iter()
        .find(|r| r.store_path == p.leaky)
        .expect("referrers of the leaky path");
    let link = p.dir.path().join("result").display().to_string();
    let from_root = r
        .chains
        .iter()
        .find(|c| c.root.as_deref() == Some(link.as_str()))
        .unwrap_or_else(|| panic!("no chain from {link}: {r:?}"));
    assert_eq!(
        from_root.paths,
        [p.leaky.clone(), p.middle.clone(), p.system.clone()]
    );

    // The binary prints the same, without any secret.
    let secrets_file = p.dir.path().join("secrets.txt");
    let lines: String = secrets
        .iter()
        .map(|s| format!("{}={}\n", s.label, hex::encode(s.value.as_slice())))
        .collect();
    std::fs::write(&secrets_file, lines).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_varsmith"))
        .env("VARSMITH_AUDIT_SECRETS_FILE", &secrets_file)
        .args(["audit", "--closure"])
        .arg(&p.system)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_nothing_printed(&all, &p);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let gz = format!("LEAK {}/gz offset ", p.leaky.display());
    assert!(
        stdout.contains(&gz) && stdout.contains("(raw in gzip)"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("(GC root {link})")), "{stdout}");
    assert!(stdout.contains("PRIVATE KEY "), "{stdout}");
}
