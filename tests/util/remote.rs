//! Shared helpers of the remote tests: a real OpenSSH server in a private mount namespace,
//! recording stand-ins for the deploy tools, and workspace fixtures built with the real
//! `ssh-keygen`, `age-keygen` and `sops`.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ci;
/// True in CI: a missing real component is then a failure, never a skip.
pub use ci::in_ci;

/// All of `tools` are on PATH and we are root (the sshd harness needs a mount namespace):
/// panics in CI when not, else reports the skip and returns false.
pub fn require_as_root(tools: &[&str]) -> bool {
    ci::require_all(tools) && (rustix::process::geteuid().is_root() || ci::unavailable("not root"))
}

pub use ci::which;

/// Runs a command and returns its stdout, panicking with its stderr on failure.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Generates an OpenSSH ed25519 key pair; returns (private bytes, public line).
pub fn ssh_keygen(dir: &Path, name: &str) -> (Vec<u8>, String) {
    let p = dir.join(name);
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "", "-f"])
        .arg(&p));
    let sk = std::fs::read(&p).unwrap();
    let pk = std::fs::read_to_string(p.with_extension("pub")).unwrap();
    (sk, pk.trim().to_string())
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes an executable script.
pub fn script(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A real `sshd` on 127.0.0.1 inside `unshare --mount`, chrooted into a private view of the
/// host where `/etc/ssh` is [`Sshd::etc_ssh`] and `/persist` is [`Sshd::persist`]. Its host key
/// and the client key are throwaway keys of the test. Killed (whole process group) on drop.
pub struct Sshd {
    child: Child,
    /// The port.
    pub port: u16,
    /// The directory seen as `/etc/ssh` by the server side.
    pub etc_ssh: PathBuf,
    /// The directory seen as `/persist` by the server side.
    pub persist: PathBuf,
    /// The server's host public key line.
    pub host_pub: String,
    /// The client's private key file.
    pub client_key: PathBuf,
    /// Scratch space of the test (also holds the server's config and log).
    pub dir: tempfile::TempDir,
}

impl Sshd {
    /// Starts the server, or returns `None` (skip) when sshd/unshare/root are unavailable
    /// outside CI.
    pub fn start() -> Option<Sshd> {
        Sshd::start_with_bin(None)
    }

    /// [`Sshd::start`], with `bin` mounted over the host's `/usr/local/bin` (first on the
    /// server's PATH), for stand-ins of the target's own tools.
    pub fn start_with_bin(bin: Option<&Path>) -> Option<Sshd> {
        if !require_as_root(&[
            "/usr/sbin/sshd",
            "unshare",
            "ssh",
            "ssh-keygen",
            "chroot",
            "tar",
        ]) {
            return None;
        }
        let ns_ok = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "true"])
            .status()
            .is_ok_and(|s| s.success());
        if !ns_ok {
            assert!(
                !in_ci(),
                "CI=true and `unshare --mount` is not permitted here"
            );
            super::ci::skipped("`unshare --mount` is not permitted here");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("varsmith-sshd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        for sub in ["newroot", "etc_ssh", "persist"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (_, host_pub) = ssh_keygen(d, "sshd_host_key");
        let (_, client_pub) = ssh_keygen(d, "client_key");
        std::fs::write(d.join("authorized_keys"), format!("{client_pub}\n")).unwrap();
        let port = free_port();
        let cfg = d.join("sshd_config");
        std::fs::write(
            &cfg,
            format!(
                "ListenAddress 127.0.0.1\nHostKey {d}/sshd_host_key\nPidFile none\n\
                 AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 StrictModes no\nLogLevel ERROR\n",
                d = d.display()
            ),
        )
        .unwrap();
        let ns = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/util/ns_sshd.sh");
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh"])
            .arg(&ns)
            .arg(d.join("newroot"))
            .arg(d.join("etc_ssh"))
            .arg(d.join("persist"))
            .args(["/usr/sbin/sshd", "-D", "-e", "-f"])
            .arg(&cfg)
            .args(["-p", &port.to_string()])
            .env_remove("VARSMITH_TEST_BIN")
            .envs(bin.map(|b| ("VARSMITH_TEST_BIN", b)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("spawn unshare");
        let mut s = Sshd {
            child,
            port,
            etc_ssh: d.join("etc_ssh"),
            persist: d.join("persist"),
            host_pub,
            client_key: d.join("client_key"),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("sshd exited early ({st}): {}", s.log());
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                panic!("sshd did not listen on {port}: {}", s.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(s)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// The ssh target.
    pub fn target(&self) -> String {
        "root@127.0.0.1".into()
    }

    /// Runs `sh -c SCRIPT` on the server as root (test set-up on the "host").
    pub fn exec(&self, script: &str) -> Vec<u8> {
        let mut c = Command::new("ssh");
        c.arg("-T");
        for o in self.ssh_options() {
            c.arg("-o").arg(o);
        }
        c.args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ]);
        c.arg("--").arg(self.target()).arg(script);
        run(&mut c)
    }

    /// `K=V` options reaching this server with the test's client key.
    pub fn ssh_options(&self) -> Vec<String> {
        vec![
            format!("Port={}", self.port),
            format!("IdentityFile={}", self.client_key.display()),
            "IdentitiesOnly=yes".into(),
            "LogLevel=ERROR".into(),
        ]
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        unsafe {
            libc::kill(-pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// A directory of recording stand-ins. Every stand-in appends one record per run to
/// `log`: `NIX_SSHOPTS` then its argv (program name first), fields separated by 0x1f.
/// A run exits 1 when an argument equals `$FAIL_ARG` (default `fail@nowhere`);
/// `$STANDIN_SLEEP` delays the record (so ordering bugs show up).
pub struct StandIns {
    /// The directory to put first on `PATH`.
    pub bin: PathBuf,
    /// The argv log.
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

const RECORDER: &str = r#"#!/bin/sh
[ -n "${STANDIN_SLEEP:-}" ] && sleep "$STANDIN_SLEEP"
rec=$(printf '%s\037' "${NIX_SSHOPTS:-}" "$(basename "$0")" "$@")
printf '%s\n' "$rec" >> "$STANDIN_LOG"
for a in "$@"; do
    if [ "$a" = "${FAIL_ARG:-fail@nowhere}" ]; then echo "stand-in failing on $a" >&2; exit 1; fi
done
"#;

/// The nixos-anywhere stand-in: also records the extra-files tree (`%P %m %u`), the content
/// hashes, the private parent's mode and the tree's path, and for each
/// `--disk-encryption-keys REMOTE LOCAL` the line `REMOTE sha256 mode LOCAL`, while it runs.
const NIXOS_ANYWHERE: &str = r#"
dir=
prev=
for a in "$@"; do
    [ "$prev" = "--extra-files" ] && dir=$a
    prev=$a
done
[ -n "$dir" ] || { echo "no --extra-files" >&2; exit 3; }
printf '%s\n' "$dir" > "$STANDIN_LOG.tree-path"
(cd "$dir" && find . -mindepth 1 -printf '%P %m %u\n' | sort) > "$STANDIN_LOG.tree"
stat -c '%a' "$(dirname "$dir")" > "$STANDIN_LOG.parent-mode"
(cd "$dir" && find . -type f -exec sha256sum {} + | sort -k2) > "$STANDIN_LOG.sums"
p2=
p1=
for a in "$@"; do
    if [ "$p2" = "--disk-encryption-keys" ]; then
        printf '%s %s %s %s\n' "$p1" "$(sha256sum < "$a" | cut -d' ' -f1)" "$(stat -c %a "$a")" "$a" >> "$STANDIN_LOG.disk"
    fi
    p2=$p1
    p1=$a
done
"#;

impl StandIns {
    /// Creates the stand-ins for nixos-anywhere, nixos-rebuild, nh, darwin-rebuild and clan.
    pub fn new() -> StandIns {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let log = dir.path().join("argv.log");
        // The log path is baked in, so in-process callers need no environment change.
        let head = format!("#!/bin/sh\nSTANDIN_LOG='{}'\n", log.display());
        let body = RECORDER.trim_start_matches("#!/bin/sh\n");
        let recorder = format!("{head}{body}");
        for prog in ["nixos-rebuild", "nh", "darwin-rebuild", "clan"] {
            script(&bin.join(prog), &recorder);
        }
        // nixos-anywhere: record the tree first, then the argv (and maybe fail).
        let na = format!("{head}{NIXOS_ANYWHERE}\n{body}");
        script(&bin.join("nixos-anywhere"), &na);
        StandIns {
            bin,
            log,
            _dir: dir,
        }
    }

    /// `PATH` with the stand-ins first.
    pub fn path_env(&self) -> std::ffi::OsString {
        let mut paths = vec![self.bin.clone()];
        if let Some(p) = std::env::var_os("PATH") {
            paths.extend(std::env::split_paths(&p));
        }
        std::env::join_paths(paths).unwrap()
    }

    /// The recorded runs: each is `[NIX_SSHOPTS, program, args…]`.
    pub fn records(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let mut v: Vec<String> = l.split('\x1f').map(String::from).collect();
                v.pop(); // trailing separator
                v
            })
            .collect()
    }

    /// A file the nixos-anywhere stand-in wrote (`tree`, `tree-path`, `parent-mode`, `sums`).
    pub fn extra(&self, what: &str) -> String {
        std::fs::read_to_string(format!("{}.{what}", self.log.display())).unwrap_or_default()
    }
}

/// An `ssh` wrapper that logs its argv (one 0x1f-separated record per run) and execs the real
/// client: proves that no key bytes travel in argv.
pub fn ssh_wrapper(dir: &Path) -> (PathBuf, PathBuf) {
    let real = which("ssh").expect("ssh");
    let log = dir.join("ssh-argv.log");
    let w = dir.join("ssh-wrapper");
    script(
        &w,
        &format!(
            "#!/bin/sh\nrec=$(printf '%s\\037' \"$@\")\nprintf '%s\\n' \"$rec\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            real.display()
        ),
    );
    (w, log)
}

/// A workspace for deploy tests: `<tmp>/ws`, inside a flake (`<tmp>/flake.nix`, no outputs),
/// as deploy requires one. varsmith evaluates only a `flake.nix` beside `varsmith.yaml`, and
/// the deploy tools are stand-ins, so nothing evaluates it.
pub struct DeployDir {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl DeployDir {
    /// The workspace root (`<tmp>/ws`).
    pub fn path(&self) -> &Path {
        &self.root
    }
}

/// A fresh [`DeployDir`].
pub fn deploy_dir() -> DeployDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flake.nix"), "{ outputs = _: { }; }\n").unwrap();
    let root = dir.path().join("ws");
    std::fs::create_dir(&root).unwrap();
    DeployDir { _dir: dir, root }
}

/// Writes `varsmith.yaml`.
pub fn write_inventory(root: &Path, yaml: &str) {
    std::fs::write(root.join("varsmith.yaml"), yaml).unwrap();
}

/// Creates an age key file with `age-keygen`; returns (file, recipient).
pub fn age_keygen(dir: &Path) -> (PathBuf, String) {
    let p = dir.join("age.key");
    run(Command::new("age-keygen").arg("-o").arg(&p));
    let text = std::fs::read_to_string(&p).unwrap();
    let r = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string();
    (p, r)
}

/// Encrypts the YAML document `{key: value}` (a block scalar) with the real sops binary.
pub fn sops_encrypt(recipient: &str, key: &str, value: &[u8], dest: &Path) {
    let text = std::str::from_utf8(value).unwrap();
    let mut doc = format!("{key}: |\n");
    for line in text.lines() {
        doc.push_str("    ");
        doc.push_str(line);
        doc.push('\n');
    }
    let mut child = Command::new("sops")
        .args([
            "encrypt",
            "--age",
            recipient,
            "--input-type",
            "yaml",
            "--output-type",
            "yaml",
            "/dev/stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sops");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "sops: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::write(dest, out.stdout).unwrap();
}

/// A workspace with machine `host` whose host key and the global identity are real sops files
/// encrypted to a fresh age key. Returns (host private key, host public line, global private
/// key, age key file).
pub fn keyed_workspace(
    root: &Path,
    host: &str,
    inventory: &str,
) -> (Vec<u8>, String, Vec<u8>, PathBuf) {
    write_inventory(root, inventory);
    let scratch = tempfile::tempdir().unwrap();
    let (age_file, recipient) = age_keygen(root);
    let (sk, pk) = ssh_keygen(scratch.path(), "host");
    let (gsk, gpk) = ssh_keygen(scratch.path(), "global");
    let m = root.join("sops/machines").join(host);
    sops_encrypt(
        &recipient,
        "ssh_host_ed25519_key",
        &sk,
        &m.join("secrets/openssh.yaml"),
    );
    std::fs::create_dir_all(m.join("facts/openssh")).unwrap();
    std::fs::write(
        m.join("facts/openssh/ssh_host_ed25519_key.pub"),
        format!("{pk}\n"),
    )
    .unwrap();
    let s = root.join("sops/shared");
    sops_encrypt(
        &recipient,
        "global_ed25519",
        &gsk,
        &s.join("secrets/global-identity.yaml"),
    );
    std::fs::create_dir_all(s.join("facts/global-identity")).unwrap();
    std::fs::write(
        s.join("facts/global-identity/global_ed25519.pub"),
        format!("{gpk}\n"),
    )
    .unwrap();
    (sk, pk, gsk, age_file)
}
