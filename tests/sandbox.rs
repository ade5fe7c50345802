//! The sandbox with real bubblewrap: every bundled generator runs with plain Debian tools, and
//! hostile generators (reading /root or ~/.ssh, reaching a TCP port on 127.0.0.1, writing into
//! the workspace, leaving a symlink or an undeclared file in $out) fail.

use std::net::TcpListener;
use std::path::Path;

use indexmap::IndexMap;
use varsmith::run::sandbox::{self, Files, RunSpec};
use varsmith::workspace::Generator;
use varsmith::workspace::definitions::BUNDLED;
use varsmith::workspace::generator::parse_generator;

fn require_bwrap() -> bool {
    if sandbox::probe_bwrap().is_ok() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("bubblewrap is required in CI but is not usable");
    }
    eprintln!("skipping: bubblewrap not usable here");
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
    let prompts = Files::new();
    sandbox::run(&RunSpec {
        generator: g,
        machine: Some("testhost"),
        inputs,
        prompts: &prompts,
        sandbox: true,
        limits: Default::default(),
    })
}

fn hostile(script: &str) -> sandbox::Error {
    let text = format!(
        "files:\n  out:\n    secret: false\nscript: |\n  {}\n",
        script.replace('\n', "\n  ")
    );
    let g = parse_generator("hostile", Path::new("hostile.yaml"), &text).expect("parses");
    run(&g, &IndexMap::new()).expect_err("hostile generator must fail")
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
    let net = run(&bundled("zerotier-network"), &none).expect("zerotier-network");
    assert_eq!(net["network-id"].len(), 16);
    let mut inputs = IndexMap::new();
    inputs.insert("zerotier-network".to_string(), net);
    let member = run(&bundled("zerotier-member"), &inputs).expect("zerotier-member");
    assert!(String::from_utf8_lossy(&member["ip"]).starts_with("fd"));
    run(&bundled("zerotier-controller"), &inputs).expect("zerotier-controller");
    run(&bundled("global-identity"), &none).expect("global-identity");
}

#[test]
fn reading_root_fails() {
    if !require_bwrap() {
        return;
    }
    let e = hostile("ls /root > $out/out; cat /root/.bashrc >> $out/out");
    assert!(matches!(e, sandbox::Error::Script { .. }), "{e}");
}

#[test]
fn reading_home_ssh_fails() {
    if !require_bwrap() {
        return;
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let e = hostile(&format!("cat {home}/.ssh/* > $out/out"));
    assert!(matches!(e, sandbox::Error::Script { .. }), "{e}");
    let e = hostile("cat $HOME/.ssh/id_ed25519 > $out/out");
    assert!(matches!(e, sandbox::Error::Script { .. }), "{e}");
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
fn undeclared_and_missing_outputs_are_rejected() {
    if !require_bwrap() {
        return;
    }
    let e = hostile("echo ok > $out/out; echo x > $out/extra");
    assert!(e.to_string().contains("extra"), "{e}");
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
