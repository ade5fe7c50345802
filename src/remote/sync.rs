//! `sync [switch|boot|build] [--host H]`: rebuild *this* machine from the workspace's flake.
//! For a nix-darwin machine `darwin-rebuild ACTION --flake .#H` (under `sudo` unless root or
//! `build`); elsewhere
//! `nh os ACTION . --hostname H` when `nh` is on `PATH`, else `nixos-rebuild ACTION --flake
//! .#H` under `sudo` (left out when varsmith already runs as root, and for `build`).
//! The action defaults to `boot` (NixOS) and `switch` (darwin, which has no boot action);
//! `--show-trace` is on unless turned off.

use super::Error;

/// The rebuild action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Action {
    /// Build and activate now.
    Switch,
    /// Build and make it the boot default.
    Boot,
    /// Only build.
    Build,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Switch => "switch",
            Action::Boot => "boot",
            Action::Build => "build",
        }
    }
}

/// What the command line is built from.
#[derive(Debug, Clone)]
pub(crate) struct SyncOptions {
    /// The action (`None`: the platform's default).
    pub action: Option<Action>,
    /// The flake configuration (`.#HOST`).
    pub host: String,
    /// Verbose backend.
    pub debug: bool,
    /// Leave out `--show-trace`.
    pub no_show_trace: bool,
    /// Build for nix-darwin.
    pub darwin: bool,
    /// `nh` is on `PATH`.
    pub have_nh: bool,
    /// varsmith runs as root (no `sudo`).
    pub root: bool,
}

/// The argv (program first).
pub(crate) fn argv(o: &SyncOptions) -> Result<Vec<String>, Error> {
    super::no_leading_dash("host", &o.host)?;
    let s = |x: &str| x.to_string();
    let trace = (!o.no_show_trace).then(|| s("--show-trace"));
    let verbose = o.debug.then(|| s("--verbose"));
    let flake = format!(".#{}", o.host);
    if o.darwin {
        let action = o.action.unwrap_or(Action::Switch);
        if action == Action::Boot {
            return Err(Error::Usage(
                "darwin-rebuild has no boot action; use switch or build".into(),
            ));
        }
        // Current nix-darwin activates as root only ("system activation must now be run as
        // root"); `build` needs no root.
        let mut v = Vec::new();
        if !o.root && action != Action::Build {
            v.push(s("sudo"));
        }
        v.extend([s("darwin-rebuild"), s(action.as_str()), s("--flake"), flake]);
        v.extend(trace);
        v.extend(verbose);
        return Ok(v);
    }
    let action = o.action.unwrap_or(Action::Boot);
    if o.have_nh {
        let mut v = vec![s("nh")];
        v.extend(verbose);
        v.extend([
            s("os"),
            s(action.as_str()),
            s("."),
            s("--hostname"),
            o.host.clone(),
        ]);
        if let Some(t) = trace {
            v.extend([s("--"), t]);
        }
        return Ok(v);
    }
    let mut v = Vec::new();
    if !o.root && action != Action::Build {
        v.push(s("sudo"));
    }
    v.extend([s("nixos-rebuild"), s(action.as_str()), s("--flake"), flake]);
    v.extend(trace);
    v.extend(verbose);
    Ok(v)
}

/// True when an executable `prog` is on `PATH`.
pub(crate) fn on_path(prog: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            std::fs::metadata(d.join(prog))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o() -> SyncOptions {
        SyncOptions {
            action: None,
            host: "web".into(),
            debug: false,
            no_show_trace: false,
            darwin: false,
            have_nh: false,
            root: false,
        }
    }

    #[test]
    fn defaults_per_platform() {
        assert_eq!(
            argv(&o()).unwrap(),
            [
                "sudo",
                "nixos-rebuild",
                "boot",
                "--flake",
                ".#web",
                "--show-trace"
            ]
        );
        let nh = SyncOptions {
            have_nh: true,
            debug: true,
            ..o()
        };
        assert_eq!(
            argv(&nh).unwrap(),
            [
                "nh",
                "--verbose",
                "os",
                "boot",
                ".",
                "--hostname",
                "web",
                "--",
                "--show-trace"
            ]
        );
        let mac = SyncOptions {
            darwin: true,
            ..o()
        };
        assert_eq!(
            argv(&mac).unwrap()[..3],
            ["sudo", "darwin-rebuild", "switch"]
        );
        let boot = SyncOptions {
            action: Some(Action::Boot),
            ..mac
        };
        assert!(argv(&boot).is_err());
    }
}
