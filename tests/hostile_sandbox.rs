//! Issue 19, the sandbox's side: a hostile definition cannot read the caller's kernel
//! keyrings, cannot draw on the terminal through a prompt description, cannot make the
//! plaintext run directory permanent with a read-only directory in `$out`, and cannot fill
//! host RAM through `$HOME` or `/dev/shm`. As root and as an ordinary uid (`setpriv --reuid
//! 1000`), as tests/hardening_sandbox.rs does; in CI a missing tool or uid fails the test.

use crate::util::tty;

use crate::util::common::*;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_varsmith");
const USER: u32 = 1000;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Skips (false) outside CI, fails in CI, when `what` is not available.
fn needs(ok: bool, what: &str) -> bool {
    if !ok {
        assert!(!in_ci(), "{what} is required in CI but is not available");
        crate::util::ci::skipped(&format!("{what} not available"));
    }
    ok
}

use crate::hardening_sandbox::{As, user_available};

fn tools() -> bool {
    require("bwrap") && require("ssh-keygen")
}

/// A workspace with machine m1 (`openssh` plus `generators`), owned by `who`.
struct Fleet {
    ws: Ws,
    who: As,
    exe: PathBuf,
}

impl Fleet {
    fn new(who: As, generators: &[(&str, &str)]) -> Fleet {
        let names: Vec<&str> = generators.iter().map(|(n, _)| *n).collect();
        let ws = Ws::new(&format!(
            "admins:\n  alice: ADMIN\nmachines:\n  m1:\n    generators: [openssh, {}]\n",
            names.join(", ")
        ));
        for (name, text) in generators {
            ws.generator(name, text);
        }
        std::fs::create_dir_all(ws.root().join("home")).unwrap();
        let mut exe = PathBuf::from(BIN);
        if who == As::User {
            let copy = ws.root().join("varsmith-bin");
            std::fs::copy(&exe, &copy).expect("copy the binary");
            exe = copy;
            for dir in [ws.root(), ws.runtime.path()] {
                let st = Command::new("chown")
                    .args(["-R", &format!("{USER}:{USER}")])
                    .arg(dir)
                    .status()
                    .expect("chown");
                assert!(st.success());
            }
            // The workspace's temporary parent must be reachable by uid 1000.
            for d in [ws.root(), ws.runtime.path()] {
                for a in d.ancestors().skip(1) {
                    let m = std::fs::metadata(a).unwrap().permissions().mode();
                    assert!(
                        m & 0o001 != 0,
                        "{} is not searchable by uid 1000",
                        a.display()
                    );
                }
            }
        }
        Fleet { ws, who, exe }
    }

    /// `[setpriv …] [prefix…] varsmith -C ROOT args…` with the fleet's environment.
    fn command(&self, prefix: &[&str], args: &[&str]) -> Command {
        let mut all: Vec<String> = Vec::new();
        if self.who == As::User {
            all.extend(
                [
                    "setpriv",
                    "--reuid",
                    "1000",
                    "--regid",
                    "1000",
                    "--clear-groups",
                    "--",
                ]
                .map(String::from),
            );
        }
        all.extend(prefix.iter().map(|s| s.to_string()));
        all.push(self.exe.display().to_string());
        all.extend(["-C".to_string(), self.ws.root().display().to_string()]);
        all.extend(args.iter().map(|s| s.to_string()));
        let mut c = Command::new(&all[0]);
        c.args(&all[1..])
            .env("SOPS_AGE_KEY_FILE", &self.ws.key)
            .env_remove("SOPS_AGE_KEY")
            .env_remove("VARSMITH_SANDBOX_UID")
            .env("XDG_RUNTIME_DIR", self.ws.runtime.path())
            .env("HOME", self.ws.root().join("home"))
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(&[], args).output().expect("run varsmith")
    }

    fn fact(&self, generator: &str, file: &str) -> Vec<u8> {
        let p = self
            .ws
            .root()
            .join("sops/machines/m1/facts")
            .join(generator)
            .join(file);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }
}

fn fact_generator(script: &str) -> String {
    format!(
        "files:\n  out: {{ secret: false }}\nscript: |\n  {}\n",
        script.trim().replace('\n', "\n  ")
    )
}

// ---------------------------------------------------------------------------------------------
// Kernel keyrings

const SESSION_SECRET: &str = "session-secret-5f8e2a";
const USER_SECRET: &str = "user-secret-9c41d7";

/// Tries every way to the caller's keys and writes what it saw to a public fact.
const KEYRING_PROBE: &str = r#"
{
  keyctl print %user:varsmith-test 2>&1 || true
  keyctl show @s 2>&1 || true
  keyctl show @u 2>&1 || true
  keyctl print %user:varsmith-test-u 2>&1 || true
  keyctl pipe %user:varsmith-test 2>&1 || true
  for id in $(keyctl rlist @s 2>/dev/null) $(keyctl rlist @u 2>/dev/null); do keyctl print "$id" 2>&1 || true; done
  cat /proc/keys 2>&1 || true
  echo probe-done
} > "$out/out"
"#;

fn keyrings_are_out_of_reach(who: As) {
    let fleet = Fleet::new(who, &[("probe", &fact_generator(KEYRING_PROBE))]);
    // A session keyring of its own holding a test key, and a key in the user keyring, for the
    // varsmith process; the user key is unlinked again afterwards.
    let script = format!(
        "keyctl add user varsmith-test {SESSION_SECRET} @s >/dev/null && \
         keyctl add user varsmith-test-u {USER_SECRET} @u >/dev/null && \
         keyctl print %user:varsmith-test >/dev/null && \
         {{ \"$@\"; rc=$?; keyctl unlink %user:varsmith-test-u @u >/dev/null; exit $rc; }}"
    );
    let o = fleet
        .command(
            &["keyctl", "session", "-", "sh", "-c", &script, "sh"],
            &["generate"],
        )
        .output()
        .expect("run varsmith in a keyring session");
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let report = String::from_utf8_lossy(&fleet.fact("probe", "out")).into_owned();
    assert!(report.contains("probe-done"), "{report}");
    for secret in [SESSION_SECRET, USER_SECRET] {
        assert!(
            !report.contains(secret),
            "as {who:?}, the sandbox read {secret}:\n{report}"
        );
    }
}

#[test]
fn keyrings_are_out_of_reach_as_root() {
    if !(tools() && require("keyctl") && needs(is_root(), "root")) {
        return;
    }
    keyrings_are_out_of_reach(As::Me);
}

#[test]
fn keyrings_are_out_of_reach_as_an_ordinary_user() {
    if !(tools() && require("keyctl") && user_available()) {
        return;
    }
    keyrings_are_out_of_reach(As::User);
}

// ---------------------------------------------------------------------------------------------
// Prompt descriptions on a terminal

#[test]
fn prompt_descriptions_are_escaped_on_the_terminal() {
    if !(tools() && require("script")) {
        return;
    }
    // Title, clipboard (OSC 52), erase line, carriage return and a fake sudo prompt.
    let hostile = r#"\e]0;pwned-title\a\e]52;c;cHduZWQ=\a\e[2K\r[sudo] password for root"#;
    let fleet = Fleet::new(
        As::Me,
        &[(
            "p",
            &format!(
                "prompts:\n  pw: {{ type: line, description: \"{hostile}\" }}\nfiles:\n  out: {{ secret: false }}\nscript: |\n  cp $prompts/pw $out/out\n"
            ),
        )],
    );
    let cmdline = format!(
        "{} -C {} generate 2>/dev/null",
        BIN,
        fleet.ws.root().display()
    );
    let mut t = tty::Tty::spawn(
        &cmdline,
        &[
            ("SOPS_AGE_KEY_FILE", fleet.ws.key.as_os_str()),
            ("XDG_RUNTIME_DIR", fleet.ws.runtime.path().as_os_str()),
            ("HOME", fleet.ws.root().join("home").as_os_str()),
        ],
        &["SOPS_AGE_KEY"],
    );
    t.wait_for("password for root: ", 1);
    t.type_text(b"answer\n");
    let (status, screen) = t.finish();
    assert!(status.success(), "{screen}");
    assert!(
        screen.contains(
            "m1/p: \\x1b]0;pwned-title\\x07\\x1b]52;c;cHduZWQ=\\x07\\x1b[2K\\x0d[sudo] password for root: "
        ),
        "the description was not shown escaped after its prefix:\n{screen:?}"
    );
    for raw in ["\x1b]", "\x1b[2K", "\r[sudo]", "\x07"] {
        assert!(
            !screen.contains(raw),
            "{raw:?} reached the terminal:\n{screen:?}"
        );
    }
    assert_eq!(fleet.fact("p", "out"), b"answer");
}

// ---------------------------------------------------------------------------------------------
// Read-only directories in $out

/// A script that leaves a read-only directory (with a file) in `$out`: the undeclared entry
/// is discarded and the plaintext directory is still removed.
const READ_ONLY_OUT: &str = "mkdir -p $out/ro/deeper\necho x > $out/ro/deeper/f\nchmod 500 $out/ro/deeper $out/ro\nprintf ok > $out/out";

#[test]
fn a_read_only_directory_in_out_does_not_keep_the_run_directory() {
    if !(tools() && user_available()) {
        return;
    }
    let fleet = Fleet::new(As::User, &[("ro", &fact_generator(READ_ONLY_OUT))]);
    let o = fleet.run(&["generate"]);
    // As in clan, an undeclared entry is discarded with one warning line.
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("discarded undeclared $out entries: ro"),
        "{}",
        stderr(&o)
    );
    assert!(
        fleet.ws.leftover_run_dirs().is_empty(),
        "left behind: {:?}\n{}",
        fleet.ws.leftover_run_dirs(),
        stderr(&o)
    );
}

/// A run directory of a dead varsmith process, with a read-only subdirectory, is swept by the
/// next run of an ordinary user.
#[test]
fn a_stale_run_directory_with_a_read_only_subdirectory_is_swept() {
    if !(tools() && user_available()) {
        return;
    }
    let fleet = Fleet::new(As::User, &[]);
    let dead = (400_000..4_000_000)
        .find(|p| !Path::new(&format!("/proc/{p}")).exists())
        .unwrap();
    let stale = fleet
        .ws
        .runtime
        .path()
        .join(format!("varsmith-run-{dead}-abcdef"));
    std::fs::create_dir_all(stale.join("out/ro")).unwrap();
    std::fs::write(stale.join("out/ro/secret"), "x").unwrap();
    Command::new("chown")
        .args(["-R", &format!("{USER}:{USER}")])
        .arg(&stale)
        .status()
        .unwrap();
    std::fs::set_permissions(stale.join("out/ro"), std::fs::Permissions::from_mode(0o500)).unwrap();
    let o = fleet.run(&["check"]);
    assert!(
        !stale.exists(),
        "the sweep left {}:\n{}",
        stale.display(),
        stderr(&o)
    );
}

// ---------------------------------------------------------------------------------------------
// Bounded $HOME and /dev/shm

/// Writes more than the 256 MiB limit to `DIR` (in files under the 16 MiB output limit): the
/// run fails with ENOSPC.
fn filler(dir: &str) -> String {
    fact_generator(&format!(
        "for i in $(seq 20); do head -c 15M /dev/zero > {dir}/big$i; done\nprintf ok > $out/out"
    ))
}

fn writes_are_bounded(dir: &str) {
    let fleet = Fleet::new(As::Me, &[("fill", &filler(dir))]);
    let o = fleet.run(&["generate"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("m1") && err.contains("fill") && err.contains("No space left on device"),
        "{err}"
    );
    assert!(fleet.ws.leftover_run_dirs().is_empty());
}

#[test]
fn home_is_bounded() {
    if tools() {
        writes_are_bounded("$HOME");
    }
}

#[test]
fn dev_shm_is_bounded() {
    if tools() {
        writes_are_bounded("/dev/shm");
    }
}
