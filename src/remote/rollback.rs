//! `rollback HOST`: the previous system generation, switched to *on the target* over one
//! pinned ssh connection: `nixos-rebuild switch --rollback` (NixOS) or
//! `darwin-rebuild --rollback` (nix-darwin), with `sudo` unless the ssh user is root.

use super::Error;
use super::ssh::Ssh;

/// The remote command line (no secret).
pub(crate) fn remote_command(darwin: bool, target: &str) -> String {
    // darwin-rebuild's `--rollback` is an action of its own (profile back one generation, then
    // activate); nixos-rebuild takes it as a flag of `switch`.
    let tool = if darwin {
        "darwin-rebuild"
    } else {
        "nixos-rebuild switch"
    };
    let sudo = if target.starts_with("root@") {
        ""
    } else {
        "sudo "
    };
    format!("exec {sudo}{tool} --rollback\n")
}

/// The full argv (program first).
pub(crate) fn argv(ssh: &Ssh, darwin: bool) -> Result<Vec<String>, Error> {
    ssh.script_argv(&remote_command(darwin, ssh.target()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sudo_unless_root() {
        assert_eq!(
            super::remote_command(false, "root@h"),
            "exec nixos-rebuild switch --rollback\n"
        );
        assert_eq!(
            super::remote_command(true, "admin@mac"),
            "exec sudo darwin-rebuild --rollback\n"
        );
    }
}
