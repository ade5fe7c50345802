//! The sandbox with real bubblewrap: every bundled generator runs with plain Debian tools (the
//! ZeroTier ones' outputs checked against each other), and hostile generators (reading a canary
//! planted under /root or in a fake ~/.ssh outside every bind, reaching a TCP port on
//! 127.0.0.1, writing into the workspace, leaving a symlink or an undeclared file in $out) fail,
//! while the same scripts run unsandboxed (`--no-sandbox`) do read the canaries.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use varsmith::run::sandbox::{self, Files, RunSpec};
use varsmith::workspace::Generator;
use varsmith::workspace::definitions::BUNDLED;
use varsmith::workspace::generator::parse_generator;

fn require_bwrap() -> bool {
    if sandbox::probe_bwrap().is_ok() {
        return true;
    }
    if crate::util::ci::in_ci() {
        panic!("bubblewrap is required in CI but is not usable");
    }
    crate::util::ci::skipped("bubblewrap not usable here");
    false
}

fn bundled(name: &str) -> Generator {
    let (_, text) = BUNDLED
        .iter()
        .find(|(n, _)| *n == name)
        .expect("bundled generator");
    parse_generator(name, Path::new(name), text).expect("valid bundled generator")
}

fn run(g: &Generator, inputs: &IndexMap<String, Files>) -> Result<Files, sandbox::Error> {
    run_as(g, inputs, true)
}

/// Runs `g` in the sandbox, or (`sandbox: false`) directly as `--no-sandbox` does. The
/// scripts' `varsmith` is the crate's binary (this test binary is not varsmith).
fn run_as(
    g: &Generator,
    inputs: &IndexMap<String, Files>,
    sandbox: bool,
) -> Result<Files, sandbox::Error> {
    varsmith::run::helper::use_binary(env!("CARGO_BIN_EXE_varsmith"));
    let prompts = Files::new();
    sandbox::run(&RunSpec {
        generator: g,
        machine: Some("testhost"),
        inputs,
        prompts: &prompts,
        sandbox,
        limits: Default::default(),
    })
}

fn hostile_generator(script: &str) -> Generator {
    let text = format!(
        "files:\n  out:\n    secret: false\nscript: |\n  {}\n",
        script.replace('\n', "\n  ")
    );
    parse_generator("hostile", Path::new("hostile.yaml"), &text).expect("parses")
}

fn hostile(script: &str) -> sandbox::Error {
    run(&hostile_generator(script), &IndexMap::new()).expect_err("hostile generator must fail")
}

/// A world-readable file with unique content, in world-searchable directories, outside every
/// bind of the sandbox: only the sandbox keeps a script from reading it. Removed on drop.
struct Canary {
    path: PathBuf,
    text: String,
    /// The directory created for it (removed on drop).
    made: PathBuf,
}

impl Canary {
    /// Plants `<base>/<unique>/<rel>`.
    fn plant(base: &Path, rel: &str) -> Canary {
        let unique = format!(
            "varsmith-canary-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        );
        let made = base.join(&unique);
        let path = made.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).expect("mkdir canary");
        let mut d = path.parent().unwrap();
        while d.starts_with(&made) {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
            d = d.parent().unwrap();
        }
        let text = format!("canary {unique}");
        std::fs::write(&path, &text).expect("write canary");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        Canary { path, text, made }
    }

    /// The sandbox refuses `script` (which reads the canary into `$out/out`), and the same
    /// script run unsandboxed reads it: the refusal is the sandbox's doing.
    fn assert_only_unsandboxed_reads(&self, script: &str) {
        let g = hostile_generator(script);
        let e =
            run_as(&g, &IndexMap::new(), true).expect_err("the sandboxed script read the canary");
        assert!(matches!(e, sandbox::Error::Script { .. }), "{e}");
        assert!(!e.to_string().contains(&self.text), "{e}");
        let out = run_as(&g, &IndexMap::new(), false).expect("unsandboxed run");
        assert_eq!(
            String::from_utf8_lossy(&out["out"]),
            self.text,
            "the unsandboxed control did not read {}",
            self.path.display()
        );
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.made);
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn bundled_generators_run_in_bwrap() {
    if !require_bwrap() {
        return;
    }
    let none = IndexMap::new();
    let ssh = run(&bundled("openssh"), &none).expect("openssh");
    assert!(String::from_utf8_lossy(&ssh["ssh_host_ed25519_key"]).contains("OPENSSH PRIVATE KEY"));
    assert!(String::from_utf8_lossy(&ssh["ssh_host_ed25519_key.pub"]).starts_with("ssh-ed25519 "));
    let pw = run(&bundled("password"), &none).expect("password");
    assert_eq!(pw["password"].len(), 24);
    assert!(pw["password-hash"].starts_with(b"$6$"));
    let wg = run(&bundled("wireguard"), &none).expect("wireguard");
    assert_eq!(wg["private.key"].len(), 45);
    let ca = run(&bundled("tls-ca"), &none).expect("tls-ca");
    let mut inputs = IndexMap::new();
    inputs.insert("tls-ca".to_string(), ca);
    let cert = run(&bundled("tls-cert"), &inputs).expect("tls-cert");
    assert!(String::from_utf8_lossy(&cert["cert.crt"]).contains("BEGIN CERTIFICATE"));
    run(&bundled("global-identity"), &none).expect("global-identity");
}

fn text(files: &Files, name: &str) -> String {
    String::from_utf8(files[name].to_vec()).unwrap_or_else(|_| panic!("{name} is not UTF-8"))
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks a ZeroTier identity pair's form (`node:0:public` and `node:0:public:secret`, node
/// 10 hex digits, keys 128) and returns the node address; [`independent_check`] validates it.
fn zerotier_identity(public: &str, secret: &str) -> String {
    let p: Vec<&str> = public.split(':').collect();
    assert_eq!(p.len(), 3, "identity.public {public:?}");
    assert!(is_hex(p[0], 10), "node address {:?}", p[0]);
    assert_eq!(p[1], "0", "identity type");
    assert!(is_hex(p[2], 128), "public key {:?}", p[2]);
    let rest = secret
        .strip_prefix(&format!("{public}:"))
        .unwrap_or_else(|| panic!("the secret identity does not extend the public one"));
    assert!(is_hex(rest, 128), "secret key of {} hex digits", rest.len());
    p[0].to_string()
}

/// Validates secret identities and members' (network id, node, ip) with ZeroTier's check as
/// implemented independently in tests/zerotier_check.py (Python and openssl), in one process.
fn independent_check(identities: &[String], members: &[(String, String, String)]) {
    for tool in ["python3", "openssl"] {
        if which(tool).is_none() {
            assert!(!crate::util::ci::in_ci(), "{tool} is required in CI");
            crate::util::ci::skipped(&format!("the independent ZeroTier check: no {tool}"));
            return;
        }
    }
    let members: Vec<_> = members
        .iter()
        .map(|(nwid, node, ip)| serde_json::json!({"nwid": nwid, "node": node, "ip": ip}))
        .collect();
    let req = serde_json::json!({"identities": identities, "members": members});
    let mut child = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zerotier_check.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(req.to_string().as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the checker failed");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for r in report["identities"].as_array().unwrap() {
        assert_eq!(r["ok"], true, "not a valid ZeroTier identity: {r}");
    }
    for r in report["members"].as_array().unwrap() {
        assert_eq!(r["ok"], true, "not the member's RFC 4193 address: {r}");
    }
}

fn which(tool: &str) -> Option<PathBuf> {
    sandbox::which(tool)
}

#[test]
fn zerotier_outputs_are_real_consistent_and_distinct() {
    if !require_bwrap() {
        return;
    }
    let none = IndexMap::new();
    let network = || {
        let net = run(&bundled("zerotier-network"), &none).expect("zerotier-network");
        let node = zerotier_identity(
            &text(&net, "controller-identity.public"),
            &text(&net, "controller-identity.secret"),
        );
        let nw = text(&net, "network-id");
        assert!(is_hex(&nw, 16), "network id {nw:?}");
        assert!(
            nw.starts_with(&node),
            "network id {nw} is not the controller {node} + 6 hex digits"
        );
        (net, nw)
    };
    let (net, nw) = network();
    let (net2, nw2) = network();
    assert_ne!(nw, nw2, "two networks got the same id");
    assert_ne!(
        net["controller-identity.secret"], net2["controller-identity.secret"],
        "two networks got the same controller identity"
    );
    let mut identities = vec![text(&net, "controller-identity.secret")];
    let mut members = Vec::new();
    let mut inputs = IndexMap::new();
    inputs.insert("zerotier-network".to_string(), net.clone());
    let mut member = || {
        let m = run(&bundled("zerotier-member"), &inputs).expect("zerotier-member");
        let node = zerotier_identity(&text(&m, "identity.public"), &text(&m, "identity.secret"));
        identities.push(text(&m, "identity.secret"));
        members.push((nw.clone(), node.clone(), text(&m, "ip")));
        (node, text(&m, "ip"))
    };
    let (node1, ip1) = member();
    let (node2, ip2) = member();
    assert_ne!(node1, node2, "two members got the same node address");
    assert_ne!(ip1, ip2);
    let c = run(&bundled("zerotier-controller"), &inputs).expect("zerotier-controller");
    for (mine, theirs) in [
        ("identity.public", "controller-identity.public"),
        ("identity.secret", "controller-identity.secret"),
        ("network-id", "network-id"),
    ] {
        assert_eq!(c[mine], net[theirs], "the controller's {mine}");
    }
    let controller = zerotier_identity(&text(&c, "identity.public"), &text(&c, "identity.secret"));
    members.push((nw.clone(), controller, text(&c, "ip")));
    independent_check(&identities, &members);
}

/// A generator that records where `varsmith` is and uses it.
fn helper_generator(pinned: bool) -> Generator {
    let script = "command -v varsmith > $out/out\n\
                  varsmith zerotier rfc4193 8056c2e21c000001 8e4df28b72 >> $out/out\n\
                  for f in /proc/$$/fd/*; do readlink \"$f\" || true; done > $out/fds";
    let text = format!(
        "files:\n  out: {{ secret: false }}\n  fds: {{ secret: false }}\nscript: |\n  {}\n",
        script.replace('\n', "\n  ")
    );
    let mut g = parse_generator("helper", Path::new("helper.yaml"), &text).expect("parses");
    if pinned {
        // A Nix generator with no runtime inputs: its PATH holds nothing but varsmith.
        g.pinned = Some(Vec::new());
    }
    g
}

#[test]
fn varsmith_is_on_the_path_of_every_script() {
    if !require_bwrap() {
        return;
    }
    let want_ip = "fd80:56c2:e21c:0:199:938e:4df2:8b72\n";
    for pinned in [false, true] {
        let out = run(&helper_generator(pinned), &IndexMap::new()).expect("sandboxed");
        assert_eq!(
            text(&out, "out"),
            format!("/run/varsmith/bin/varsmith\n{want_ip}"),
            "pinned PATH: {pinned}"
        );
        let fds = text(&out, "fds");
        assert!(
            !fds.contains("varsmith"),
            "a descriptor of the host binary reached the script: {fds}"
        );
    }
    let out = run_as(&helper_generator(false), &IndexMap::new(), false).expect("unsandboxed");
    let got = text(&out, "out");
    let (path, ip) = got.split_once('\n').unwrap();
    assert!(path.ends_with("/bin/varsmith"), "{path}");
    assert_eq!(
        std::fs::canonicalize(path).ok(),
        None,
        "the run directory (and its link) is gone after the run"
    );
    assert_eq!(ip, want_ip);
}

#[test]
fn reading_root_fails() {
    if !require_bwrap() {
        return;
    }
    if !is_root() {
        // Only root can plant a file under /root (and only root could read it anyway).
        assert!(
            !crate::util::ci::in_ci(),
            "the /root canary needs root in CI"
        );
        crate::util::ci::skipped("not root");
        return;
    }
    let canary = Canary::plant(Path::new("/root"), "secret.txt");
    let path = canary.path.display();
    canary.assert_only_unsandboxed_reads(&format!("cat {path} > $out/out"));
    canary.assert_only_unsandboxed_reads(&format!(
        "ls {} >/dev/null; cat {path} > $out/out",
        canary.made.display()
    ));
}

#[test]
fn reading_home_ssh_fails() {
    if !require_bwrap() {
        return;
    }
    // A fake home outside every bind (the build tree's temporary directory, not /tmp, so it
    // is not hidden by the sandbox's private /tmp alone).
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let canary = Canary::plant(base, "home/.ssh/id_ed25519");
    let path = canary.path.display();
    canary.assert_only_unsandboxed_reads(&format!("cat {path} > $out/out"));
    canary.assert_only_unsandboxed_reads(&format!("cat \"$(dirname {path})\"/* > $out/out"));
}

#[test]
fn network_is_unreachable() {
    if !require_bwrap() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let e = hostile(&format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port}; echo hi >&3; echo ok > $out/out"
    ));
    assert!(matches!(e, sandbox::Error::Script { .. }), "{e}");
    listener.set_nonblocking(true).expect("nonblocking");
    assert!(
        listener.accept().is_err(),
        "the sandbox reached the host's port"
    );
}

#[test]
fn writing_into_the_workspace_fails() {
    if !require_bwrap() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("pwned");
    let e = hostile(&format!(
        "echo x > {}; echo ok > $out/out",
        target.display()
    ));
    assert!(matches!(e, sandbox::Error::Script { .. }), "{e}");
    assert!(!target.exists());
}

#[test]
fn symlink_in_out_is_rejected() {
    if !require_bwrap() {
        return;
    }
    let e = hostile("ln -s /etc/shadow $out/out");
    assert!(e.to_string().contains("symlink"), "{e}");
}

#[test]
fn undeclared_outputs_are_discarded_and_missing_rejected() {
    if !require_bwrap() {
        return;
    }
    // As clan: anything undeclared in $out is dropped (one warning line), never stored.
    let out = run(
        &hostile_generator("echo ok > $out/out; echo x > $out/extra; mkdir $out/d"),
        &IndexMap::new(),
    )
    .expect("undeclared entries are discarded");
    assert_eq!(out.keys().collect::<Vec<_>>(), ["out"]);
    // $in is a private writable copy (`openssl -CAcreateserial` writes next to its input).
    let mut inputs = IndexMap::new();
    let mut dep = IndexMap::new();
    dep.insert(
        "ca.crt".to_string(),
        varsmith::secret::SecretBytes::copy_from(b"c"),
    );
    inputs.insert("dep".to_string(), dep);
    let mut g = hostile_generator("echo 01 > $in/dep/ca.srl; cat $in/dep/ca.srl > $out/out");
    g.dependencies = vec!["dep".into()];
    let out = run(&g, &inputs).expect("$in is writable");
    assert_eq!(&out["out"][..], b"01\n");
    let e = hostile("mkdir $out/out");
    assert!(e.to_string().contains("directory"), "{e}");
    let e = hostile("true");
    assert!(e.to_string().contains("not produced"), "{e}");
}

#[test]
fn environment_is_cleared() {
    if !require_bwrap() {
        return;
    }
    // SAFETY: tests in this file do not read this variable concurrently.
    unsafe { std::env::set_var("VARSMITH_TEST_LEAK", "leaked") };
    let text = "files:\n  out: { secret: false }\nscript: |\n  env > $out/out\n";
    let g = parse_generator("envdump", Path::new("envdump.yaml"), text).expect("parses");
    let out = run(&g, &IndexMap::new()).expect("runs");
    let env = String::from_utf8_lossy(&out["out"]).to_string();
    assert!(!env.contains("VARSMITH_TEST_LEAK"), "{env}");
    assert!(env.contains("machine=testhost"));
}
