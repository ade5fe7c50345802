//! Generator definitions read from the workspace's flake, with real `nix` (offline): machines of
//! `nixosConfigurations` and `darwinConfigurations`, one batched evaluation per output, the
//! cache (a rerun starts no `nix`), pinned runtime inputs (an undeclared command is not found),
//! evaluation errors naming the machine, and a workspace mixing YAML and Nix machines.
//!
//! The configurations here are plain attribute sets shaped like an evaluated module system
//! (`options.varsmith`, `config.varsmith`), so they need no nixpkgs; `tests/nix_module.rs`
//! evaluates the real module.

use crate::util::common::*;

use std::path::{Path, PathBuf};

fn tools() -> bool {
    require("nix") && require("sops") && require("bwrap") && require("age") && require("git")
}

/// A flake of three machines (alpha and beta NixOS, gamma darwin), each with the `openssh`
/// host key, a shared token and a per-machine `derived` depending on it; runtime inputs are
/// derivations that need no download (links to the host's tools).
fn flake(script_extra: &str) -> String {
    format!(
        r#"{{
  outputs = {{ self }}: let
    sys = "{system}";
    link = name: tools: derivation {{
      inherit name; system = sys; builder = "/bin/sh"; PATH = "/usr/bin:/bin";
      args = [ "-c" "mkdir -p $out/bin; for t in ${{tools}}; do ln -s $(command -v $t) $out/bin/; done" ];
    }};
    keygen = link "keygen" "ssh-keygen";
    coreutils = link "some-coreutils" "head od tr cat";
    file = secret: {{ inherit secret; deploy = true; owner = "root"; group = "root"; mode = "0400"; neededFor = "services"; }};
    mk = name: {{
      options.varsmith = {{ }};
      config.nixpkgs.system = sys;
      config.varsmith = {{
        machineName = name;
        deploy = {{ targetHost = "root@${{name}}.example.org"; tags = [ "t" ]; backend = null; }};
        generators = {{
          openssh = {{ share = false; dependencies = [ ]; validation = null; runtimeInputs = [ keygen ]; prompts = {{ }};
            files."ssh_host_ed25519_key" = file true; files."ssh_host_ed25519_key.pub" = file false;
            script = "ssh-keygen -q -t ed25519 -N '' -C '' -f $out/ssh_host_ed25519_key"; }};
          token = {{ share = true; dependencies = [ ]; validation = null; runtimeInputs = [ coreutils ]; prompts = {{ }};
            files.token = file true;
            script = "head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n' > $out/token"; }};
          derived = {{ share = false; dependencies = [ "token" ]; validation = {{ v = {v}; }}; runtimeInputs = [ coreutils ]; prompts = {{ }};
            files.d = file true; files.pub = file false;
            script = "cat $in/token/token > $out/d; echo ${{name}} > $out/pub{extra}"; }};
        }};
      }};
    }};
  in {{
    nixosConfigurations.alpha = mk "alpha";
    nixosConfigurations.beta-attr = mk "beta";
    darwinConfigurations.gamma = mk "gamma";
    nixosConfigurations.unrelated = {{ options = {{ }}; config = {{ }}; }};
  }};
}}
"#,
        system = "x86_64-linux",
        extra = script_extra,
        // As clan: a script edit alone regenerates nothing; `validation` does.
        v = if script_extra.is_empty() { 1 } else { 2 }
    )
}

struct FlakeWs {
    ws: Ws,
    cache: tempfile::TempDir,
    bin: tempfile::TempDir,
}

impl FlakeWs {
    fn new(yaml_machines: &str) -> FlakeWs {
        let ws = Ws::new(&format!(
            "admins:\n  alice: ADMIN\nmachines:{yaml_machines}\n"
        ));
        std::fs::write(ws.root().join("flake.nix"), flake("")).unwrap();
        let f = FlakeWs {
            ws,
            cache: tempfile::tempdir().unwrap(),
            bin: tempfile::tempdir().unwrap(),
        };
        // A nix wrapper that counts its calls.
        let real = which_nix();
        let wrapper = f.bin.path().join("nix");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\necho \"$*\" >> {}\nexec {} \"$@\"\n",
                f.calls_file().display(),
                real.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        f.git(&["init", "-q"]);
        f.git(&["add", "flake.nix", "varsmith.yaml"]);
        f
    }

    fn calls_file(&self) -> PathBuf {
        self.bin.path().join("calls")
    }

    fn nix_calls(&self) -> usize {
        std::fs::read_to_string(self.calls_file())
            .map(|s| s.lines().filter(|l| l.contains(" eval ")).count())
            .unwrap_or(0)
    }

    fn git(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new("git")
            .args(args)
            .current_dir(self.ws.root())
            .output()
            .unwrap()
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let path = format!(
            "{}:{}",
            self.bin.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        self.ws
            .command(args)
            .env("PATH", path)
            .env("XDG_CACHE_HOME", self.cache.path())
            .env(
                "NIX_CONFIG",
                "experimental-features = nix-command flakes\nsubstituters =\nsandbox = false",
            )
            .output()
            .unwrap()
    }
}

fn which_nix() -> PathBuf {
    let out = std::process::Command::new("sh")
        .args(["-c", "command -v nix"])
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn decrypt_with(file: &Path, key: &Path) -> std::process::Output {
    sops_decrypt(file, key)
}

#[test]
fn machines_and_generators_come_from_the_flake() {
    if !tools() {
        return;
    }
    let f = FlakeWs::new("\n  yamlbox:\n    generators: [openssh, password]");
    let root = f.ws.root().to_path_buf();
    let o = f.run(&["generate", "--plan"]);
    let plan = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    for label in [
        "alpha/openssh",
        "beta/derived",
        "gamma/derived",
        "shared/token",
        "yamlbox/password",
    ] {
        assert!(
            plan.contains(label),
            "{label} missing from the plan:\n{plan}"
        );
    }
    assert!(!plan.contains("unrelated"), "{plan}");
    // The plan names each definition's source.
    assert!(
        plan.contains("(flake:nixosConfigurations.beta-attr.config.varsmith.generators.derived)"),
        "{plan}"
    );
    assert!(
        plan.contains("yamlbox/password: missing: never generated  (bundled:password)"),
        "{plan}"
    );
    // Batched: per output (nixos, darwin, home-manager homes), one call listing the
    // configurations and, when it has any, one evaluating them all (split per core only above
    // 8 machines): 5 calls here (no homeConfigurations), never one per machine.
    assert_eq!(
        f.nix_calls(),
        5,
        "{:?}",
        std::fs::read_to_string(f.calls_file())
    );
    let o = f.run(&["generate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(f.nix_calls(), 5, "the plan's evaluation was cached");
    // Real sops decrypts with the admin key and with the host's own (ssh-to-age) key.
    let secret = root.join("sops/machines/beta/secrets/derived.yaml");
    let admin = decrypt_with(&secret, &f.ws.key);
    assert!(admin.status.success(), "{}", stderr(&admin));
    let host_key = std::fs::read_to_string(
        root.join("sops/machines/beta/secrets/../facts/openssh/ssh_host_ed25519_key.pub"),
    );
    assert!(host_key.is_ok());
    let o = f.run(&["get", "beta", "openssh/ssh_host_ed25519_key"]);
    let age = varsmith::keys::ssh_to_age::private_to_age(std::str::from_utf8(&o.stdout).unwrap())
        .unwrap();
    let kf = root.join("host.agekey");
    std::fs::write(&kf, format!("{}\n", age.as_str())).unwrap();
    let host = decrypt_with(&secret, &kf);
    assert!(host.status.success(), "{}", stderr(&host));
    let token = f.run(&["get", "alpha", "token/token"]).stdout;
    assert_eq!(token.len(), 32);
    assert!(String::from_utf8_lossy(&host.stdout).contains(std::str::from_utf8(&token).unwrap()));
    // The darwin machine and the attribute whose name differs from machineName.
    assert_eq!(
        std::fs::read(root.join("sops/machines/gamma/facts/derived/pub")).unwrap(),
        b"gamma\n"
    );
    assert!(root.join("sops/machines/beta/state/derived.json").is_file());
    // Nothing changed: no evaluation, nothing runs, check is clean.
    let calls = f.nix_calls();
    let o = f.run(&["generate"]);
    assert!(stderr(&o).contains("nothing to do"), "{}", stderr(&o));
    let o = f.run(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(f.nix_calls(), calls, "a no-op run started nix");
}

#[test]
fn editing_a_script_in_nix_regenerates_it_and_its_dependents_only() {
    if !tools() {
        return;
    }
    let f = FlakeWs::new(" {}");
    assert!(f.run(&["generate"]).status.success());
    let run_of = |rel: &str| {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(f.ws.root().join(rel)).unwrap()).unwrap();
        v["run"].as_str().unwrap().to_string()
    };
    let token = run_of("sops/shared/state/token.json");
    let derived = run_of("sops/machines/alpha/state/derived.json");
    let ssh = run_of("sops/machines/alpha/state/openssh.json");
    std::fs::write(
        f.ws.root().join("flake.nix"),
        flake("; echo changed >> $out/pub"),
    )
    .unwrap();
    let o = f.run(&["generate", "--plan"]);
    let plan = stdout(&o);
    assert!(plan.contains("alpha/derived: definition changed"), "{plan}");
    assert!(
        !plan.contains("openssh") && !plan.contains("shared/token"),
        "{plan}"
    );
    assert!(f.run(&["generate"]).status.success());
    assert_eq!(token, run_of("sops/shared/state/token.json"));
    assert_eq!(ssh, run_of("sops/machines/alpha/state/openssh.json"));
    assert_ne!(derived, run_of("sops/machines/alpha/state/derived.json"));
}

#[test]
fn an_undeclared_command_is_not_found_in_the_sandbox() {
    if !tools() {
        return;
    }
    let f = FlakeWs::new(" {}");
    // `sort` is on the host but in no runtime input of `derived`.
    std::fs::write(
        f.ws.root().join("flake.nix"),
        flake("; echo x | sort > /dev/null"),
    )
    .unwrap();
    let o = f.run(&["generate"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("sort: command not found"), "{err}");
}

#[test]
fn an_evaluation_error_names_the_machine_and_writes_nothing() {
    if !tools() {
        return;
    }
    let f = FlakeWs::new(" {}");
    let broken = flake("").replace(
        "nixosConfigurations.alpha = mk \"alpha\";",
        "nixosConfigurations.alpha = (mk \"alpha\") // { config.varsmith = (mk \"alpha\").config.varsmith // { generators.x = throw \"broken on purpose\"; }; };",
    );
    std::fs::write(f.ws.root().join("flake.nix"), broken).unwrap();
    let before = f.ws.snapshot();
    let o = f.run(&["generate"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("machine alpha"), "{err}");
    assert!(err.contains("broken on purpose"), "{err}");
    assert_eq!(before, f.ws.snapshot(), "something was written");
}

#[test]
fn a_machine_described_differently_in_yaml_and_nix_is_an_error_naming_both() {
    if !tools() {
        return;
    }
    let f = FlakeWs::new("\n  alpha:\n    generators: [password]");
    let o = f.run(&["check"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("machine alpha") && err.contains("nixosConfigurations.alpha"),
        "{err}"
    );
    assert!(err.contains("varsmith.yaml"), "{err}");
}

#[test]
fn remote_verbs_build_the_configuration_attribute_of_a_renamed_machine() {
    if !tools() {
        return;
    }
    // `nixosConfigurations.beta-attr` has machineName "beta": every verb builds `.#beta-attr`.
    let f = FlakeWs::new(" {}");
    assert!(f.run(&["generate"]).status.success());
    let o = f.run(&["deploy", "beta", "--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("--flake '.#beta-attr' "),
        "{}",
        stdout(&o)
    );
    let o = f.run(&["bootstrap", "beta", "root@192.0.2.1", "--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("--flake '.#beta-attr' "),
        "{}",
        stdout(&o)
    );
    let o = f.run(&["install", "--host", "beta", "--root", "/mnt", "--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("nixos-install --flake '.#beta-attr' --root /mnt"),
        "{}",
        stdout(&o)
    );
    let o = f.run(&["deploy", "alpha", "--dry-run"]);
    assert!(stdout(&o).contains("--flake '.#alpha' "), "{}", stdout(&o));
}

#[test]
fn the_module_deploy_order_stages_flake_machines_and_must_agree() {
    if !tools() {
        return;
    }
    // alpha carries tag `first`; every configuration states the same order (as a module all
    // machines import would), with an OS entry: alpha, then the darwin gamma, then beta.
    let f = FlakeWs::new(" {}");
    let ordered = flake("")
        .replace(
            r#"tags = [ "t" ]; backend = null; };"#,
            r#"tags = if name == "alpha" then [ "first" ] else [ "t" ]; backend = null; order = [ "tag:first" "os:darwin" ]; };"#,
        )
        .replace(
            "config.nixpkgs.system = sys;",
            r#"config.nixpkgs.system = if name == "gamma" then "aarch64-darwin" else sys;"#,
        );
    assert_ne!(ordered, flake(""), "flake layout");
    std::fs::write(f.ws.root().join("flake.nix"), &ordered).unwrap();
    // Deploy needs the flake to be a directory with flake.nix: it is.
    let o = f.run(&["deploy", "--all", "--dry-run", "--no-check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let heads: Vec<String> = stdout(&o)
        .lines()
        .filter(|l| l.starts_with("# ") && l.ends_with(" machines)"))
        .map(String::from)
        .collect();
    assert_eq!(
        heads,
        [
            "# tag first (1 machines)",
            "# os darwin (1 machines)",
            "# rest (1 machines)"
        ]
    );
    // The same order in varsmith.yaml agrees; a different one is an error naming both places.
    let inv = std::fs::read_to_string(f.ws.root().join("varsmith.yaml")).unwrap();
    std::fs::write(
        f.ws.root().join("varsmith.yaml"),
        format!("{inv}deploy:\n  order: [\"tag:first\", \"os:darwin\"]\n"),
    )
    .unwrap();
    let o = f.run(&["deploy", "--all", "--dry-run", "--no-check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(
        f.ws.root().join("varsmith.yaml"),
        format!("{inv}deploy:\n  order: [\"os:nixos\"]\n"),
    )
    .unwrap();
    let o = f.run(&["deploy", "--all", "--dry-run", "--no-check"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("the deploy order differs: varsmith.yaml (deploy.order) is [\"os:nixos\"]")
            && err.contains("nixosConfigurations.alpha's varsmith.deploy.order"),
        "{err}"
    );
}

#[test]
fn coreutils_is_on_every_generators_path_after_its_runtime_inputs() {
    if !tools() {
        return;
    }
    // `varsmith.coreutils` (the module's default is pkgs.coreutils on NixOS; here an offline
    // derivation) is realised with the runtime inputs and serves `token`, which declares none.
    let f = FlakeWs::new(" {}");
    let plain = flake("");
    let with = plain
        .replace(
            "machineName = name;",
            "machineName = name;\n        coreutils = coreutils;",
        )
        .replace(
            "token = { share = true; dependencies = [ ]; validation = null; runtimeInputs = [ coreutils ];",
            "token = { share = true; dependencies = [ ]; validation = null; runtimeInputs = [ ];",
        );
    assert_eq!(
        with.matches("runtimeInputs = [ ];").count(),
        1,
        "flake layout"
    );
    std::fs::write(f.ws.root().join("flake.nix"), &with).unwrap();
    let o = f.run(&["generate", "alpha"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let token = f.ws.root().join("sops/shared/secrets/token.yaml");
    let v = decrypt_with(&token, &f.ws.key);
    assert!(v.status.success(), "{}", stderr(&v));
    assert!(
        String::from_utf8_lossy(&v.stdout).contains("token: "),
        "{}",
        stdout(&v)
    );
    // Without it, the same script finds no `head`.
    std::fs::write(
        f.ws.root().join("flake.nix"),
        with.replace("coreutils = coreutils;", "coreutils = null;"),
    )
    .unwrap();
    let o = f.run(&["generate", "alpha", "--regenerate", "-g", "token"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("head: command not found"),
        "{}",
        stderr(&o)
    );
}

/// Issue 22 item 9: a flake that stops evaluating after `generate` does not block `get`,
/// `list`, `admin` and `rekey`: they work from the stored layout with one warning naming Nix's
/// error; `generate` and `check`, which need the definitions, still fail (exit 2) naming it.
#[test]
fn a_flake_broken_after_generate_still_serves_get_list_admin_rekey() {
    if !tools() {
        return;
    }
    let f = FlakeWs::new(" {}");
    let o = f.run(&["generate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let token = f.run(&["get", "alpha", "token/token"]).stdout;
    assert_eq!(token.len(), 32);
    let broken = flake("").replace(
        "nixosConfigurations.alpha = mk \"alpha\";",
        "nixosConfigurations.alpha = throw \"broken on purpose\";",
    );
    std::fs::write(f.ws.root().join("flake.nix"), broken).unwrap();
    let one_warning = |o: &std::process::Output| {
        let err = stderr(o);
        assert_eq!(
            err.matches("warning: the flake does not evaluate").count(),
            1,
            "{err}"
        );
        assert!(err.contains("broken on purpose"), "{err}");
    };
    // get: a shared secret, a machine's secret and a public fact, all from the stored layout.
    let o = f.run(&["get", "alpha", "token/token"]);
    assert!(o.status.success(), "{}", stderr(&o));
    one_warning(&o);
    assert_eq!(o.stdout, token);
    let o = f.run(&["get", "beta", "derived/pub"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(o.stdout, b"beta\n");
    let o = f.run(&["get", "gamma", "openssh/ssh_host_ed25519_key"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("OPENSSH PRIVATE KEY"));
    // list: every generator of the machine, what is not stored is unknown.
    let o = f.run(&["list", "alpha"]);
    assert!(o.status.success(), "{}", stderr(&o));
    one_warning(&o);
    let out = stdout(&o);
    for v in [
        "openssh/ssh_host_ed25519_key",
        "token/token",
        "derived/d",
        "derived/pub",
    ] {
        assert!(out.contains(v), "{v} missing:\n{out}");
    }
    // admin add (YAML only), then rekey gives bob every file.
    let dir = tempfile::tempdir().unwrap();
    let (bob_key, bob) = crate::util::remote::age_keygen(dir.path());
    let o = f.run(&["admin", "add", "bob", &bob]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    let o = f.run(&["rekey"]);
    assert!(o.status.success(), "{}", stderr(&o));
    one_warning(&o);
    for file in [
        "sops/shared/secrets/token.yaml",
        "sops/machines/alpha/secrets/derived.yaml",
        "sops/machines/gamma/secrets/openssh.yaml",
    ] {
        let d = decrypt_with(&f.ws.root().join(file), &bob_key);
        assert!(d.status.success(), "{file}: {}", stderr(&d));
    }
    // The host keys still open their files after the rekey.
    let o = f.run(&["get", "beta", "openssh/ssh_host_ed25519_key"]);
    let age = varsmith::keys::ssh_to_age::private_to_age(std::str::from_utf8(&o.stdout).unwrap())
        .unwrap();
    let kf = f.ws.root().join("host.agekey");
    std::fs::write(&kf, format!("{}\n", age.as_str())).unwrap();
    for file in [
        "sops/shared/secrets/token.yaml",
        "sops/machines/beta/secrets/derived.yaml",
    ] {
        let d = decrypt_with(&f.ws.root().join(file), &kf);
        assert!(d.status.success(), "{file}: {}", stderr(&d));
    }
    // generate and check need the definitions: bad input, nothing written.
    let before = f.ws.snapshot();
    for cmd in [&["generate"][..], &["check"][..]] {
        let o = f.run(cmd);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{cmd:?}: {err}");
        assert!(err.contains("broken on purpose"), "{cmd:?}: {err}");
    }
    assert_eq!(before, f.ws.snapshot(), "something was written");
}

/// Issue 22 item 8: a flake machine's hints talk about its configuration, never about
/// `varsmith.yaml` (`machine add`, `generators: [..]`).
#[test]
fn hints_for_flake_machines_name_their_configuration() {
    if !tools() {
        return;
    }
    let f = FlakeWs::new(" {}");
    let o = f.run(&["generate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let yaml_talk = |what: &str, text: &str| {
        assert!(
            !text.contains("machine add")
                && !text.contains("generators add")
                && !text.contains("generators: ["),
            "{what}: {text}"
        );
    };
    // `machine add` of a flake machine names its configuration.
    let o = f.run(&["machine", "add", "beta"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("nixosConfigurations.beta-attr"), "{err}");
    // A stray shared file and a stray machine file: declare it in a configuration.
    let root = f.ws.root();
    std::fs::copy(
        root.join("sops/shared/secrets/token.yaml"),
        root.join("sops/shared/secrets/stray.yaml"),
    )
    .unwrap();
    std::fs::copy(
        root.join("sops/machines/beta/secrets/derived.yaml"),
        root.join("sops/machines/beta/secrets/loose.yaml"),
    )
    .unwrap();
    let o = f.run(&["check", "--verbose"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{}", stderr(&o));
    assert!(
        out.contains("declare `varsmith.generators.stray = { };` in a machine's configuration"),
        "{out}"
    );
    assert!(
        out.contains("declare `varsmith.generators.loose = { };` in nixosConfigurations.beta-attr"),
        "{out}"
    );
    yaml_talk("check", &out);
    // rekey's note on a tree no machine has does not send a flake user to varsmith.yaml alone.
    std::fs::create_dir_all(root.join("sops/machines/gone/secrets")).unwrap();
    let o = f.run(&["rekey"]);
    let err = stderr(&o);
    assert!(
        err.contains("sops/machines/gone/ belongs to no machine of varsmith.yaml nor the flake"),
        "{err}"
    );
}
