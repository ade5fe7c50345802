//! The OpenSSH client command line: `ssh -T -o BatchMode=yes … -- TARGET 'sh -c …'`, with
//! host-key pinning from [`KnownHosts`] and a classification of
//! ssh's failures into clear errors.

use std::io::Write;
use std::process::Stdio;

use super::Error;
use super::known_hosts::KnownHosts;

/// How one target is reached: the destination, the machine it is pinned as, and every `-o`.
#[derive(Debug, Clone)]
pub struct Ssh {
    program: std::path::PathBuf,
    target: String,
    alias: String,
    pinned: bool,
    known_hosts: std::path::PathBuf,
    options: Vec<String>,
}

/// What a remote command printed, when it succeeded.
#[derive(Debug)]
pub struct RemoteOutput {
    /// Its stdout.
    pub stdout: Vec<u8>,
    /// Its stderr (warnings).
    pub stderr: Vec<u8>,
}

impl Ssh {
    /// Builds the connection to `target` for machine `alias`. When `known_hosts` pins the
    /// machine, ssh verifies against that pin alone (`StrictHostKeyChecking=yes`, no global
    /// file); otherwise the user's own OpenSSH trust applies, non-interactively. `user_options`
    /// are `K=V` strings passed as `-o K=V`; they cannot override the pin.
    pub fn new(
        target: &str,
        alias: &str,
        known_hosts: &KnownHosts,
        user_options: &[String],
    ) -> Result<Ssh, Error> {
        super::no_leading_dash("ssh target", target)?;
        let mut options = Vec::new();
        let pin = known_hosts.ssh_options(alias)?;
        let pinned = pin.is_some();
        // ssh keeps the first value it sees for an option: the pin goes first.
        options.extend(pin.unwrap_or_default());
        options.push("BatchMode=yes".to_string());
        options.extend(check_options(user_options)?);
        options.push("ConnectTimeout=20".to_string());
        Ok(Ssh {
            program: "ssh".into(),
            target: target.to_string(),
            alias: alias.to_string(),
            pinned,
            known_hosts: known_hosts.path().to_path_buf(),
            options,
        })
    }

    /// Uses `program` instead of `ssh` from `PATH` (a wrapper, or a specific OpenSSH build).
    pub fn with_program(mut self, program: impl Into<std::path::PathBuf>) -> Ssh {
        self.program = program.into();
        self
    }

    /// The target.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// True when the connection is verified against a pinned key.
    pub fn is_pinned(&self) -> bool {
        self.pinned
    }

    /// The full argv (without the program name) running `remote_command` on the target.
    pub fn argv(&self, remote_command: &str) -> Vec<String> {
        let mut v = vec!["-T".to_string()];
        for o in &self.options {
            v.push("-o".to_string());
            v.push(o.clone());
        }
        v.push("--".to_string());
        v.push(self.target.clone());
        v.push(remote_command.to_string());
        v
    }

    /// The argv (program first) of `ssh … -- TARGET sh -c SCRIPT`, as [`Ssh::run_script`]
    /// runs it.
    pub(crate) fn script_argv(&self, script: &str) -> Result<Vec<String>, Error> {
        let remote = shlex::try_join(["sh", "-c", script])
            .map_err(|_| Error::Usage("remote script holds a NUL byte".into()))?;
        let mut v = vec![self.program.to_string_lossy().into_owned()];
        v.extend(self.argv(&remote));
        Ok(v)
    }

    /// The argv (program first) of an interactive shell on the target: the pinned options,
    /// without `-T` and `BatchMode` (a password or a hardware key may ask).
    pub(crate) fn shell_argv(&self) -> Vec<String> {
        let mut v = vec![self.program.to_string_lossy().into_owned()];
        for o in self.options.iter().filter(|o| *o != "BatchMode=yes") {
            v.push("-o".to_string());
            v.push(o.clone());
        }
        v.push("--".to_string());
        v.push(self.target.clone());
        v
    }

    /// Runs `sh -c SCRIPT` on the target with `stdin` as its input and returns its output.
    /// `script` must hold no secret (it is part of ssh's argv); secrets go in `stdin`.
    pub(crate) fn run_script(&self, script: &str, stdin: &[u8]) -> Result<RemoteOutput, Error> {
        let remote = shlex::try_join(["sh", "-c", script])
            .map_err(|_| Error::Usage("remote script holds a NUL byte".into()))?;
        let mut child = crate::child::command(&self.program)
            .args(self.argv(&remote))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| Error::Spawn {
                program: "ssh".into(),
                cause: source,
            })?;
        if let Some(mut input) = child.stdin.take() {
            // A failed connection closes the pipe early: its error is ssh's to report.
            let _ = input.write_all(stdin);
        }
        let out = child.wait_with_output().map_err(|source| Error::Spawn {
            program: "ssh".into(),
            cause: source,
        })?;
        if out.status.success() {
            return Ok(RemoteOutput {
                stdout: out.stdout,
                stderr: out.stderr,
            });
        }
        Err(self.classify(out.status.code(), &out.stderr))
    }

    /// Turns a failed ssh run into an error: ssh's own failures exit 255.
    fn classify(&self, code: Option<i32>, stderr: &[u8]) -> Error {
        let text = String::from_utf8_lossy(stderr);
        let detail = last_lines(&text, 3);
        match code {
            Some(255) | None => {
                let hk = text.contains("Host key verification failed")
                    || text.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
                    || text.contains("host key is known for");
                if hk && self.pinned {
                    Error::HostKeyMismatch {
                        target: self.target.clone(),
                        alias: self.alias.clone(),
                        known_hosts: self.known_hosts.clone(),
                    }
                } else if hk {
                    Error::HostKeyUnknown {
                        target: self.target.clone(),
                        alias: self.alias.clone(),
                        known_hosts: self.known_hosts.clone(),
                    }
                } else {
                    Error::Unreachable {
                        target: self.target.clone(),
                        detail: if detail.is_empty() {
                            "ssh failed without a message".into()
                        } else {
                            detail
                        },
                    }
                }
            }
            Some(code) => Error::Remote {
                target: self.target.clone(),
                code,
                detail,
            },
        }
    }
}

/// The user's `--ssh-option K=V` values, checked: each must hold `=` and not start with `-`
/// (ssh would read it as a flag).
pub(crate) fn check_options(user: &[String]) -> Result<Vec<String>, Error> {
    user.iter()
        .map(|o| {
            if !o.contains('=') || o.starts_with('-') {
                return Err(Error::Usage(format!(
                    "invalid --ssh-option {o:?}: expected KEY=VALUE"
                )));
            }
            Ok(o.clone())
        })
        .collect()
}

/// The last `n` non-empty lines of `text`, joined with "; ".
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_comes_first_and_user_options_are_checked() {
        let d = tempfile::tempdir().unwrap();
        let kh = KnownHosts::for_workspace(d.path());
        kh.pin("web", "ssh-ed25519 AAAAkey").unwrap();
        let ssh = Ssh::new("root@web", "web", &kh, &["Port=2222".into()]).unwrap();
        let argv = ssh.argv("true");
        assert_eq!(argv[0], "-T");
        assert!(argv[2].starts_with("UserKnownHostsFile="));
        let strict = argv.iter().position(|a| a == "StrictHostKeyChecking=yes");
        let port = argv.iter().position(|a| a == "Port=2222");
        assert!(strict < port);
        assert_eq!(&argv[argv.len() - 3..], ["--", "root@web", "true"]);
        assert!(Ssh::new("root@web", "web", &kh, &["-oProxyCommand=x".into()]).is_err());
        assert!(Ssh::new("-oProxyCommand=x", "web", &kh, &[]).is_err());
        assert!(!Ssh::new("x", "other", &kh, &[]).unwrap().is_pinned());
    }
}
