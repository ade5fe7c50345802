//! `deploy --verify`: after activation, one ssh connection (pinned like every other) checks
//! that every deployable secret of the machine exists at its `.path` with the declared owner,
//! group and mode, and, on NixOS, that `systemctl --failed` lists nothing.
//!
//! The probe script holds only paths (never a secret) and prints one line per file
//! (`file OWNER GROUP MODE PATH` or `missing PATH`), then the failed units
//! (`failed-unit …`) and `systemd-done`, or `no-systemctl`/`systemctl-error` when the units
//! could not be listed. The comparison happens here; a probe that could not do its work is a
//! failed verification, never an "ok".

use std::collections::HashMap;

use super::Error;
use super::deploy::Cmd;
use super::ssh::Ssh;
use crate::workspace::Generator;
use crate::workspace::generator::NeededFor;

/// One file the machine must hold after activation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expected {
    /// Absolute path on the target (`.path`).
    pub path: String,
    /// Owner name.
    pub owner: String,
    /// Group name.
    pub group: String,
    /// Permission bits.
    pub mode: u32,
}

/// The verification of one machine: its ssh command and what it must find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Probe {
    /// `ssh … sh -c SCRIPT`.
    pub cmd: Cmd,
    /// The files.
    pub expect: Vec<Expected>,
    /// Check `systemctl --failed` too (NixOS).
    pub systemd: bool,
}

/// Where a deployed secret lands on the host (see DESIGN.md "Nix side"); `None` for
/// `partitioning` secrets, which only exist during an install.
pub(crate) fn secret_path(generator: &str, file: &str, needed_for: NeededFor) -> Option<String> {
    match needed_for {
        NeededFor::Services => Some(format!("/run/secrets/varsmith/{generator}/{file}")),
        NeededFor::Users => Some(format!(
            "/run/secrets-for-users/varsmith/{generator}/{file}"
        )),
        NeededFor::Activation => Some(format!("/var/lib/varsmith/activation/{generator}/{file}")),
        NeededFor::Partitioning => None,
    }
}

/// The deployable secrets (`secret && deploy`, not `partitioning`) of a machine's
/// generators, in definition order. On darwin the `root` group is `wheel` (gid 0).
pub(crate) fn expected<'a>(
    generators: impl IntoIterator<Item = &'a Generator>,
    darwin: bool,
) -> Vec<Expected> {
    let mut out = Vec::new();
    for g in generators {
        for (f, spec) in &g.files {
            if !spec.secret || !spec.deploy {
                continue;
            }
            let Some(path) = secret_path(&g.name, f, spec.needed_for) else {
                continue;
            };
            let group = if darwin && spec.group == "root" {
                "wheel".to_string()
            } else {
                spec.group.clone()
            };
            out.push(Expected {
                path,
                owner: spec.owner.clone(),
                group,
                mode: spec.mode & 0o7777,
            });
        }
    }
    out
}

/// The probe script (paths only).
pub(crate) fn script(expect: &[Expected], systemd: bool) -> String {
    let mut s = String::from(concat!(
        "if stat -c %a / >/dev/null 2>&1; then st() { stat -L -c '%U %G %a' -- \"$1\"; }; ",
        "else st() { stat -L -f '%Su %Sg %Lp' -- \"$1\"; }; fi\n",
        "check() { if [ -e \"$1\" ]; then printf 'file %s %s\\n' \"$(st \"$1\")\" \"$1\"; ",
        "else printf 'missing %s\\n' \"$1\"; fi; }\n",
    ));
    for e in expect {
        s.push_str("check ");
        s.push_str(&super::deploy::quote(&e.path));
        s.push('\n');
    }
    if systemd {
        s.push_str(concat!(
            "if command -v systemctl >/dev/null 2>&1; then\n",
            "  if out=$(systemctl --failed --no-legend --plain --no-pager); then\n",
            "    printf '%s\\n' \"$out\" | sed -n 's/^\\(..*\\)$/failed-unit \\1/p'; echo systemd-done\n",
            "  else echo systemctl-error; fi\n",
            "else echo no-systemctl; fi\n",
        ));
    }
    s
}

/// The probe of one machine over `ssh`.
pub(crate) fn probe(ssh: &Ssh, expect: Vec<Expected>, systemd: bool) -> Result<Probe, Error> {
    let cmd = Cmd::new(ssh.script_argv(&script(&expect, systemd))?);
    Ok(Probe {
        cmd,
        expect,
        systemd,
    })
}

/// What the probe found: `Ok` with a one-line summary, or `Err` with every problem.
pub(crate) fn evaluate(p: &Probe, stdout: &str) -> Result<String, Vec<String>> {
    let mut found: HashMap<&str, Option<(&str, &str, &str)>> = HashMap::new();
    let mut units = Vec::new();
    let mut systemd = None;
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("file ") {
            let f: Vec<&str> = rest.splitn(4, ' ').collect();
            if let [o, g, m, path] = f[..] {
                found.insert(path, Some((o, g, m)));
            }
        } else if let Some(path) = line.strip_prefix("missing ") {
            found.insert(path, None);
        } else if let Some(u) = line.strip_prefix("failed-unit ") {
            units.push(u.split_whitespace().next().unwrap_or(u).to_string());
        } else if matches!(line, "systemd-done" | "no-systemctl" | "systemctl-error") {
            systemd = Some(line);
        }
    }
    let mut problems = Vec::new();
    for e in &p.expect {
        match found.get(e.path.as_str()) {
            None => problems.push(format!(
                "{}: not checked (no answer from the target)",
                e.path
            )),
            Some(None) => problems.push(format!("{}: missing", e.path)),
            Some(Some((o, g, m))) => problems.extend(compare(e, o, g, m)),
        }
    }
    if p.systemd {
        match systemd {
            Some("systemd-done") if units.is_empty() => {}
            Some("systemd-done") => problems.push(format!("failed units: {}", units.join(", "))),
            Some("no-systemctl") => {
                problems.push("cannot check units: no systemctl on the target".into())
            }
            _ => problems.push("cannot check units: `systemctl --failed` did not work".into()),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let units = if p.systemd { ", no failed units" } else { "" };
    Ok(format!("verified {} secret(s){units}", p.expect.len()))
}

fn compare(e: &Expected, owner: &str, group: &str, mode: &str) -> Vec<String> {
    let mut v = Vec::new();
    if owner != e.owner || group != e.group {
        v.push(format!(
            "{}: owner {owner}:{group}, expected {}:{}",
            e.path, e.owner, e.group
        ));
    }
    match u32::from_str_radix(mode, 8) {
        Ok(m) if m & 0o7777 == e.mode => {}
        Ok(m) => v.push(format!(
            "{}: mode {:04o}, expected {:04o}",
            e.path, m, e.mode
        )),
        Err(_) => v.push(format!("{}: unreadable mode {mode:?}", e.path)),
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(systemd: bool) -> Probe {
        Probe {
            cmd: Cmd::new(vec!["ssh".into()]),
            expect: vec![
                Expected {
                    path: "/run/secrets/varsmith/a/k".into(),
                    owner: "root".into(),
                    group: "root".into(),
                    mode: 0o400,
                },
                Expected {
                    path: "/run/secrets/varsmith/b/k".into(),
                    owner: "api".into(),
                    group: "api".into(),
                    mode: 0o440,
                },
            ],
            systemd,
        }
    }

    #[test]
    fn every_problem_is_reported() {
        let ok = "file root root 400 /run/secrets/varsmith/a/k\nfile api api 440 /run/secrets/varsmith/b/k\nsystemd-done\n";
        assert_eq!(
            evaluate(&p(true), ok).unwrap(),
            "verified 2 secret(s), no failed units"
        );
        let bad = "file root root 644 /run/secrets/varsmith/a/k\nmissing /run/secrets/varsmith/b/k\nfailed-unit x.service loaded failed failed X\nsystemd-done\n";
        let e = evaluate(&p(true), bad).unwrap_err();
        assert_eq!(
            e,
            vec![
                "/run/secrets/varsmith/a/k: mode 0644, expected 0400",
                "/run/secrets/varsmith/b/k: missing",
                "failed units: x.service",
            ]
        );
        let e = evaluate(&p(true), "no-systemctl\n").unwrap_err();
        assert_eq!(e.len(), 3, "unanswered files and units are problems: {e:?}");
        assert!(evaluate(&p(false), ok).is_ok());
    }
}
