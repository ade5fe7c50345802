//! The Nix side: the NixOS / nix-darwin module (nix/module.nix) against real Nix, the real
//! sops-nix module, real NixOS (2020 nixpkgs + sops-nix 2021-12) and real nix-darwin
//! (aarch64-darwin: lib 26.11 + nix-darwin + sops-nix HEAD), after a real `varsmith generate`
//! of the example fleet (examples/fleet as a flake, plus two test generators).
//!
//! The kit of tarballs in `../shared/nix/` makes it offline; in CI (`CI=true`) a missing nix or
//! kit fails the test, elsewhere it is skipped with the reason. Evaluations are batched into a
//! few `nix eval` calls, each with `--apply` selecting everything one step asserts.

use std::collections::BTreeSet;
use std::path::Path;

use crate::util::nix::{Fleet, Kit, run};
use serde_json::Value;
use varsmith::workspace::{NeededFor, Workspace};

/// The bundled generators as the module reads them (nix/generators.json): produced from
/// generators/*.yaml, which stays the only source of truth.
#[test]
fn bundled_generators_json() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let want = crate::util::nix::bundled_json(&root.join("generators"));
    let path = root.join("nix/generators.json");
    if std::env::var_os("VARSMITH_UPDATE_NIX_GENERATORS").is_some() {
        std::fs::write(&path, &want).expect("write nix/generators.json");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "nix/generators.json is out of sync with generators/*.yaml; regenerate it with\n  \
         VARSMITH_UPDATE_NIX_GENERATORS=1 cargo test --test nix_module bundled_generators_json"
    );
}

/// Everything that needs real Nix, in one test so the generated workspace and the unpacked
/// inputs are shared: definitions before generate, a real `varsmith generate --all`, NixOS and
/// nix-darwin evaluations, the toplevel and its audit, then a missing and a stale generator.
#[test]
fn nixos_and_darwin_configurations() {
    let Some(kit) = Kit::find() else { return };
    let fleet = Fleet::new(kit);
    before_generate(&fleet);
    fleet.generate(&["--all"]);
    let defs = yaml_definitions(&fleet);
    nixos(&fleet, &defs);
    module_errors(&fleet);
    darwin(&fleet, &defs);
    toplevel_and_audit(&fleet);
    missing_and_stale(&fleet);
}

/// Per machine, the YAML definitions (what the CLI generated from).
type Defs = varsmith::workspace::Definitions;

fn yaml_definitions(f: &Fleet) -> Defs {
    Workspace::load(&f.ws)
        .expect("workspace")
        .definitions()
        .expect("definitions")
}

/// sops.secrets names the YAML definitions make deployable for a machine.
fn expected_secrets(defs: &Defs, machine: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (g, def) in &defs.machines[machine] {
        for (f, spec) in &def.files {
            if spec.secret
                && spec.deploy
                && matches!(spec.needed_for, NeededFor::Services | NeededFor::Users)
            {
                out.insert(format!("varsmith/{g}/{f}"));
            }
        }
    }
    out
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn s(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
}

/// Definitions evaluate before the first generate (the CLI reads them); nothing is deployed
/// yet and every generator is reported missing.
fn before_generate(f: &Fleet) {
    let v = f.eval_json(
        "nixosConfigurations",
        r#"cs: builtins.mapAttrs (_: m: {
             defs = builtins.mapAttrs (_: g: builtins.removeAttrs g [ "runtimeInputs" ]) m.config.varsmith.definitions.generators;
             secrets = builtins.attrNames m.config.sops.secrets;
             status = m.config.varsmith.status;
           }) cs"#,
    );
    for (m, mv) in v.as_object().unwrap() {
        assert!(mv["defs"].as_object().unwrap().len() >= 8, "{m}: {mv}");
        assert_eq!(mv["secrets"], serde_json::json!([]), "{m}");
        for (g, st) in mv["status"].as_object().unwrap() {
            assert_eq!(s(st), "missing: never generated", "{m}/{g}");
        }
    }
}

fn nixos(f: &Fleet, defs: &Defs) {
    let v = f.eval_json(
        "nixosConfigurations",
        r#"cs: let
             c = cs.cinnabar.config;
             gens = c.varsmith.generators;
           in {
             secrets = builtins.mapAttrs (_: x: {
               inherit (x) sopsFile key format owner group mode neededForUsers path restartUnits;
             }) c.sops.secrets;
             status = builtins.mapAttrs (_: m: m.config.varsmith.status) cs;
             files = builtins.mapAttrs (_: g: builtins.mapAttrs (_: x: {
               inherit (x) secret deploy neededFor exists;
               path = if x.secret && !x.deploy then null else x.path;
               value = if x.secret then null else x.value;
             }) g.files) gens;
             secretValueThrows = !(builtins.tryEval gens.wireguard.files."private.key".value).success;
             sshKeyPaths = c.sops.age.sshKeyPaths;
             hostKeys = map (k: { inherit (k) path type; }) c.services.openssh.hostKeys;
             peers = map (p: p.publicKey) c.networking.wireguard.interfaces.wg0.peers;
             rootPasswordFile = c.users.users.root.passwordFile;
             joinNetworks = c.services.zerotierone.joinNetworks;
             defs = builtins.mapAttrs (_: g: builtins.removeAttrs g [ "runtimeInputs" ]) c.varsmith.definitions.generators;
             platform = c.varsmith.definitions.platform;
             runtimeInputs = c.varsmith.definitions.generators.openssh.runtimeInputs;
             activation = c.system.activationScripts.script;
             otherActivation = cs.electrum.config.system.activationScripts.script;
           }"#,
    );
    // The activation file (marker/early) gets its declared owner, group and mode once users
    // exist (bootstrap and install place it as root), in the system's activation script after
    // the users' and groups' snippets; machines without one get nothing.
    let script = s(&v["activation"]);
    let ours = "if [ -e '/var/lib/varsmith/activation/marker/early' ]; then\n  chown 'nobody:nogroup' '/var/lib/varsmith/activation/marker/early'\n  chmod '0440' '/var/lib/varsmith/activation/marker/early'\nfi\n";
    let at = script
        .find(ours)
        .unwrap_or_else(|| panic!("no owner fix in:\n{script}"));
    let users = script
        .find("#### Activation script snippet users:")
        .expect("users snippet");
    let groups = script
        .find("#### Activation script snippet groups:")
        .expect("groups snippet");
    assert!(
        users < at && groups < at,
        "the owner fix runs after users and groups"
    );
    assert!(
        !script.contains(&f.marker),
        "no value in the activation script"
    );
    assert!(!s(&v["otherActivation"]).contains("/var/lib/varsmith/activation"));
    // Every NixOS machine is up to date, as `varsmith check` says.
    let check = f.varsmith(&["check"]);
    assert!(check.ok, "varsmith check: {}{}", check.stdout, check.stderr);
    for (m, st) in v["status"].as_object().unwrap() {
        for (g, x) in st.as_object().unwrap() {
            assert!(x.is_null(), "{m}/{g}: {x}");
        }
    }

    // sops.secrets: exactly the deployable secrets, each from its own small store file whose
    // bytes are the workspace's, with the declared owner, group, mode and the sops-nix path.
    let secrets = &v["secrets"];
    assert_eq!(keys(secrets), expected_secrets(defs, "cinnabar"));
    let nix_files = &v["files"];
    for (name, x) in secrets.as_object().unwrap() {
        let mut parts = name.splitn(3, '/');
        let (_, g, file) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        let def = &defs.machines["cinnabar"][g];
        let rel = if def.share {
            format!("sops/shared/secrets/{g}.yaml")
        } else {
            format!("sops/machines/cinnabar/secrets/{g}.yaml")
        };
        let sops_file = s(&x["sopsFile"]);
        assert!(
            sops_file.starts_with("/nix/store/")
                && sops_file.ends_with(&format!("-varsmith-{g}.yaml")),
            "{name}: {sops_file}"
        );
        assert_eq!(
            std::fs::read(sops_file).unwrap(),
            f.read(&rel),
            "{name}: sopsFile bytes"
        );
        assert_eq!(s(&x["key"]), file);
        assert_eq!(s(&x["format"]), "yaml");
        let declared = &v["defs"][g]["files"][file];
        for k in ["owner", "group", "mode"] {
            assert_eq!(x[k], declared[k], "{name}: {k}");
        }
        let users = def.files[file].needed_for == NeededFor::Users;
        assert_eq!(x["neededForUsers"], users, "{name}");
        let want_path = if users {
            format!("/run/secrets-for-users/{name}")
        } else {
            format!("/run/secrets/{name}")
        };
        assert_eq!(s(&x["path"]), want_path);
        assert_eq!(nix_files[g][file]["path"], x["path"], "{name}: .path");
    }
    // The declared values reach sops-nix (YAML's for bundled files, Nix overrides on top).
    let sec = |n: &str| &secrets[n];
    assert_eq!(sec("varsmith/openssh/ssh_host_ed25519_key")["mode"], "0600");
    assert_eq!(sec("varsmith/wireguard/private.key")["owner"], "root");
    assert_eq!(
        sec("varsmith/wireguard/private.key")["restartUnits"],
        serde_json::json!(["wireguard-wg0.service"])
    );
    let gi = sec("varsmith/global-identity/global_ed25519");
    assert_eq!((s(&gi["mode"]), s(&gi["group"])), ("0440", "wheel"));
    let tk = sec("varsmith/tricky/key");
    assert_eq!(
        (s(&tk["owner"]), s(&tk["group"]), s(&tk["mode"])),
        ("nobody", "nogroup", "0640")
    );
    assert_eq!(sec("varsmith/marker/token")["owner"], "nobody");
    assert_eq!(
        s(&v["rootPasswordFile"]),
        "/run/secrets-for-users/varsmith/password/password-hash"
    );
    assert_eq!(
        s(&nix_files["tricky"]["s@1"]["path"]),
        "/var/lib/varsmith/activation/tricky/s@1"
    );

    // Facts: `.value` is the file's bytes, `.path` a store path of the same bytes.
    let mut facts = 0;
    for (g, gv) in nix_files.as_object().unwrap() {
        let def = &defs.machines["cinnabar"][g.as_str()];
        for (file, x) in gv.as_object().unwrap() {
            assert_eq!(x["exists"], true, "{g}/{file}");
            if x["secret"] == true {
                continue;
            }
            let rel = if def.share {
                format!("sops/shared/facts/{g}/{file}")
            } else {
                format!("sops/machines/cinnabar/facts/{g}/{file}")
            };
            let bytes = f.read(&rel);
            assert_eq!(s(&x["value"]).as_bytes(), &bytes[..], "{g}/{file}: .value");
            let p = s(&x["path"]);
            assert!(p.starts_with("/nix/store/"), "{g}/{file}: {p}");
            assert_eq!(std::fs::read(p).unwrap(), bytes, "{g}/{file}: .path");
            facts += 1;
        }
    }
    assert!(facts >= 9, "facts checked: {facts}");
    assert!(
        s(&nix_files["tricky"]["out.pub"]["value"]).contains("é ✓ \\ \" \t"),
        "unicode fact"
    );

    // `.value` of a secret throws, with a clear message.
    assert_eq!(v["secretValueThrows"], true);
    let r = f.eval(
        "nixosConfigurations.cinnabar.config.varsmith.generators.wireguard.files.\"private.key\".value",
        "",
        true,
    );
    assert!(!r.ok);
    assert!(
        r.stderr
            .contains("cinnabar/wireguard/private.key is a secret")
            && r.stderr.contains("use `.path`"),
        "{}",
        r.stderr
    );

    // The openssh generator's key is sshd's host key and sops-nix's age key.
    assert_eq!(
        v["sshKeyPaths"],
        serde_json::json!(["/etc/ssh/ssh_host_ed25519_key"])
    );
    assert_eq!(
        v["hostKeys"],
        serde_json::json!([{ "path": "/etc/ssh/ssh_host_ed25519_key", "type": "ed25519" }])
    );
    // Facts used across machines and in services.
    let mut peers: Vec<String> = v["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| s(p).to_string())
        .collect();
    peers.sort();
    let mut want: Vec<String> = ["electrum", "galena", "scheelite"]
        .iter()
        .map(|m| {
            let b = f.read(&format!("sops/machines/{m}/facts/wireguard/public.key"));
            String::from_utf8(b).unwrap().trim_end().to_string()
        })
        .collect();
    want.sort();
    assert_eq!(peers, want, "WireGuard peers' public keys");
    assert_eq!(
        v["joinNetworks"][0].as_str().unwrap().as_bytes(),
        &f.read("sops/shared/facts/zerotier-network/network-id")[..]
    );

    // Fingerprints: Nix's equal the CLI's (stored and computed from the YAML), for bundled
    // generators and the test ones (escapes, validation attrsets, dependencies, a persisted
    // prompt, a script given as a path).
    assert_eq!(s(&v["platform"]), "nixos");
    check_fingerprints(f, defs, "cinnabar", &v["defs"]);
    assert_eq!(v["defs"].as_object().unwrap().len(), 10);
    // Runtime inputs are store paths (here the test's offline derivation).
    let ri = v["runtimeInputs"].as_array().unwrap();
    assert!(
        ri.len() == 1 && s(&ri[0]).ends_with("-varsmith-test-tools"),
        "{ri:?}"
    );
}

/// Without sops-nix's module, or with a dependency left undeclared, a machine fails with an
/// assertion that says what to add (a NixOS configuration built from the fleet's own nixpkgs
/// and module, without sops-nix).
fn module_errors(f: &Fleet) {
    let v = f.eval_json(
        "nixosConfigurations.cinnabar",
        r#"c: let
             module = builtins.head c.options.varsmith.directory.declarations;
             e = import "${c.pkgs.path}/nixos/lib/eval-config.nix" {
               system = "x86_64-linux";
               modules = [ module {
                 networking.hostName = "cinnabar";
                 varsmith.directory = c.config.varsmith.directory;
                 varsmith.generators.openssh = { };
                 varsmith.generators.tls-cert = { };
                 boot.loader.grub.enable = false;
                 fileSystems."/".device = "/dev/sda1";
               } ];
             };
           in map (a: a.message) (builtins.filter (a: !a.assertion) e.config.assertions)"#,
    );
    let msgs: Vec<&str> = v.as_array().unwrap().iter().map(s).collect();
    assert!(
        msgs.iter().any(|m| m.contains(
            "machine cinnabar has deployable secrets but the sops-nix module is not imported: add sops-nix's nixosModules.sops"
        )),
        "{msgs:?}"
    );
    // As in clan, a dependency this machine does not declare is a shared generator that
    // other machines declare (the CLI rejects one that no machine declares).
    assert!(!msgs.iter().any(|m| m.contains("tls-ca")), "{msgs:?}");
}

/// Nix's own and node fingerprints of every generator of `machine` equal the CLI's.
fn check_fingerprints(f: &Fleet, defs: &Defs, machine: &str, nix_defs: &Value) {
    let gens = &defs.machines[machine];
    assert_eq!(keys(nix_defs), gens.keys().cloned().collect());
    for (g, def) in gens {
        let nd = &nix_defs[g.as_str()];
        assert_eq!(
            s(&nd["ownFingerprint"]),
            def.own_fingerprint(),
            "{machine}/{g}: own fingerprint (Nix vs YAML)"
        );
        assert_eq!(
            s(&nd["fingerprint"]),
            f.stored_fingerprint(machine, g, def.share),
            "{machine}/{g}: node fingerprint (Nix vs stored)"
        );
    }
}

fn darwin(f: &Fleet, defs: &Defs) {
    let v = f.eval_json(
        "darwinConfigurations",
        r#"ds: builtins.mapAttrs (_: d: let c = d.config; in {
             secrets = builtins.mapAttrs (_: x: {
               inherit (x) sopsFile key owner group mode path;
               hasRestartUnits = x ? restartUnits;
             }) c.sops.secrets;
             status = c.varsmith.status;
             sshKeyPaths = c.sops.age.sshKeyPaths;
             hostKeys = map (k: k.path) c.services.openssh.hostKeys;
             platform = c.varsmith.definitions.platform;
             backend = c.varsmith.definitions.deploy.backend;
             defs = builtins.mapAttrs (_: g: builtins.removeAttrs g [ "runtimeInputs" ]) c.varsmith.definitions.generators;
             restartUnitsOption = c.varsmith.generators.openssh.files.ssh_host_ed25519_key.restartUnits;
             # An activation secret owned by a user (sops-nix's own postActivation, which needs
             # packages, left out): its owner fix, as the module writes it.
             early = if c.varsmith.machineName != "stibnite" then null else
               (d.extendModules { modules = [ ({ lib, ... }: {
                 varsmith.generators.early = {
                   files.k = { owner = "_www"; mode = "0440"; neededFor = "activation"; };
                   script = "true";
                 };
                 sops.secrets = lib.mkForce { };
               }) ]; }).config.system.activationScripts.postActivation.text;
           }) ds"#,
    );
    let machines = keys(&v);
    assert_eq!(
        machines,
        ["argentum", "blackphos", "rosegold", "stibnite"]
            .map(String::from)
            .into()
    );
    // nix-darwin: activation secrets get their owner, group and mode in postActivation (after
    // its users and groups); a failure warns and lets the rest of the activation run.
    // The current lib's escapeShellArg quotes only what needs it: compare without quotes.
    let early = s(&v["stibnite"]["early"]).replace('\'', "");
    let p = "/var/lib/varsmith/activation/early/k";
    assert!(
        early.contains(&format!(
            "# varsmith: activation secrets owner, group and mode\nif [ -e {p} ]; then\n  chown _www:wheel {p} && chmod 0440 {p} \\\n    || echo \"varsmith: cannot give \"{p}\" owner \"_www:wheel\" and mode 0440\" >&2\nfi\n"
        )),
        "{early}"
    );
    for m in &machines {
        let d = &v[m.as_str()];
        assert_eq!(s(&d["platform"]), "darwin");
        assert_eq!(s(&d["backend"]), "darwin-rebuild");
        for (g, st) in d["status"].as_object().unwrap() {
            assert!(st.is_null(), "{m}/{g}: {st}");
        }
        let secrets = &d["secrets"];
        assert_eq!(keys(secrets), expected_secrets(defs, m), "{m}");
        for (name, x) in secrets.as_object().unwrap() {
            // Group defaults to wheel on darwin (sops-nix's own default would be staff), and
            // sops-nix's darwin module gets no restartUnits.
            assert_eq!(s(&x["group"]), "wheel", "{m}: {name}");
            assert_eq!(x["hasRestartUnits"], false, "{m}: {name}");
            assert_eq!(s(&x["path"]), format!("/run/secrets/{name}"));
            let g = name.split('/').nth(1).unwrap();
            let rel = if defs.machines[m.as_str()][g].share {
                format!("sops/shared/secrets/{g}.yaml")
            } else {
                format!("sops/machines/{m}/secrets/{g}.yaml")
            };
            assert_eq!(std::fs::read(s(&x["sopsFile"])).unwrap(), f.read(&rel));
        }
        assert_eq!(
            d["sshKeyPaths"],
            serde_json::json!(["/etc/ssh/ssh_host_ed25519_key"])
        );
        assert_eq!(
            d["hostKeys"],
            serde_json::json!(["/etc/ssh/ssh_host_ed25519_key"])
        );
        check_fingerprints(f, defs, m, &d["defs"]);
    }
}

/// `nix flake check` passes; the NixOS toplevel instantiates (no build); its closure holds the small sops files but no
/// `-source` copy of the workspace, and `varsmith audit --closure` finds no secret in it,
/// while it does find the planted marker in a derivation that leaks it.
fn toplevel_and_audit(f: &Fleet) {
    let r = f.flake_check();
    assert!(r.ok, "nix flake check: {}", r.stderr);
    let r = f.eval(
        "nixosConfigurations.cinnabar.config.system.build.toplevel.drvPath",
        "",
        false,
    );
    assert!(r.ok, "toplevel: {}", r.stderr);
    let drv = r.stdout.trim().to_string();
    assert!(
        drv.starts_with("/nix/store/") && drv.ends_with("-nixos-system-cinnabar-20.09pre-git.drv"),
        "{drv}"
    );
    let mut q = std::process::Command::new("nix-store");
    q.args(["--query", "--requisites", &drv]);
    let closure = run(q);
    assert!(closure.ok, "{}", closure.stderr);
    let paths: Vec<&str> = closure.stdout.lines().collect();
    for p in &paths {
        if p.ends_with("-source") {
            let dir = Path::new(p);
            assert!(
                !dir.join("varsmith.yaml").exists() && !dir.join("examples/fleet").exists(),
                "the workspace's source is in the closure: {p}"
            );
        }
    }
    for g in ["openssh", "password", "wireguard", "marker"] {
        assert!(
            paths
                .iter()
                .any(|p| p.ends_with(&format!("-varsmith-{g}.yaml"))),
            "{g}'s sops file is not in the closure"
        );
    }
    let audit = f.varsmith(&["audit", "--closure", &drv]);
    assert!(
        audit.ok && audit.stdout.contains("clean"),
        "audit --closure toplevel: {}{}",
        audit.stdout,
        audit.stderr
    );
    assert!(audit.stdout.contains("secrets as"), "{}", audit.stdout);

    // Control: the same audit finds the marker when a derivation does leak it.
    let leak_file = f.tmp.path().join("leak");
    std::fs::write(&leak_file, &f.marker).unwrap();
    let mut inst = std::process::Command::new("nix-instantiate");
    inst.args(["--option", "substituters", ""]).arg("--expr").arg(format!(
        "derivation {{ name = \"varsmith-leak\"; system = \"x86_64-linux\"; builder = \"/bin/sh\"; leaked = builtins.readFile {}; }}",
        leak_file.display()
    ));
    let leak = run(inst);
    assert!(leak.ok, "{}", leak.stderr);
    let leak_drv = leak.stdout.trim().to_string();
    let audit = f.varsmith(&["audit", "--closure", &leak_drv]);
    assert!(
        !audit.ok && audit.stdout.contains("cinnabar/marker/token"),
        "the planted marker was not found: {}{}",
        audit.stdout,
        audit.stderr
    );
}

/// A missing generator (electrum's tls-cert outputs deleted) and a stale one (cinnabar's
/// tricky definition changed, in YAML and Nix alike) fail evaluation with the assertion text;
/// the Nix verdicts equal `varsmith check`'s; a generate repairs both.
fn missing_and_stale(f: &Fleet) {
    for rel in [
        "sops/machines/electrum/state/tls-cert.json",
        "sops/machines/electrum/facts/tls-cert/cert.crt",
        "sops/machines/electrum/secrets/tls-cert.yaml",
    ] {
        std::fs::remove_file(f.ws.join(rel)).unwrap();
    }
    let tricky = f.ws.join("generators/tricky.yaml");
    let text = std::fs::read_to_string(&tricky).unwrap();
    assert!(text.contains("  n: -7\n"));
    std::fs::write(&tricky, text.replace("  n: -7\n", "  n: -8\n")).unwrap();
    std::fs::write(
        f.ws.join("test-generators.json"),
        crate::util::nix::bundled_json(&f.ws.join("generators")),
    )
    .unwrap();

    let check = f.varsmith(&["check", "--json"]);
    assert!(!check.ok);
    let report: Value = serde_json::from_str(&check.stdout).expect("check --json");
    let findings: BTreeSet<(String, String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                s(&x["owner"]).to_string(),
                s(&x["generator"]).to_string(),
                // check's detail omits its kind for missing and torn; Nix's verdict has both.
                match s(&x["kind"]) {
                    k @ ("missing" | "torn") => format!("{k}: {}", s(&x["detail"])),
                    _ => s(&x["detail"]).to_string(),
                },
            )
        })
        .collect();
    let status = f.eval_json(
        "nixosConfigurations",
        "cs: builtins.mapAttrs (_: m: m.config.varsmith.status) cs",
    );
    let mut nix_findings = BTreeSet::new();
    for (m, st) in status.as_object().unwrap() {
        for (g, x) in st.as_object().unwrap() {
            if !x.is_null() {
                nix_findings.insert((m.clone(), g.clone(), s(x).to_string()));
            }
        }
    }
    assert_eq!(nix_findings, findings, "Nix verdicts vs varsmith check");
    assert_eq!(
        findings,
        [
            ("cinnabar", "tricky", "definition changed"),
            ("electrum", "tls-cert", "missing: never generated"),
        ]
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .into()
    );

    let messages = [
        (
            "cinnabar",
            "varsmith: machine cinnabar: generator tricky is out of date (definition changed): run `varsmith generate cinnabar`",
        ),
        (
            "electrum",
            "varsmith: machine electrum: generator tls-cert is missing (missing: never generated): run `varsmith generate electrum`",
        ),
    ];
    for (m, msg) in messages {
        let r = f.eval(
            &format!("nixosConfigurations.{m}.config.system.build.toplevel.drvPath"),
            "",
            false,
        );
        assert!(!r.ok, "{m}: the toplevel evaluated with missing/stale vars");
        assert!(r.stderr.contains(msg), "{m}: {}", r.stderr);
    }
    // `nix flake check` fails too, with the assertion of the first failing machine it meets.
    let r = f.flake_check();
    assert!(
        !r.ok
            && r.stderr.contains("Failed assertions")
            && messages.iter().any(|(_, msg)| r.stderr.contains(msg)),
        "nix flake check: {}",
        r.stderr
    );
    let r = f.eval(
        "nixosConfigurations.electrum.config.varsmith.generators.tls-cert.files.\"cert.crt\".value",
        "",
        true,
    );
    assert!(
        !r.ok
            && r.stderr.contains(
                "electrum/tls-cert/cert.crt does not exist yet (sops/machines/electrum/facts/tls-cert/cert.crt in the workspace): run `varsmith generate electrum`"
            ),
        "{}",
        r.stderr
    );

    f.generate(&["--all"]);
    let status = f.eval_json(
        "nixosConfigurations",
        "cs: builtins.mapAttrs (_: m: m.config.varsmith.status) cs",
    );
    for (m, st) in status.as_object().unwrap() {
        for (g, x) in st.as_object().unwrap() {
            assert!(x.is_null(), "after generate: {m}/{g}: {x}");
        }
    }
}
