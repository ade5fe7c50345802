//! `varsmith audit --user`: the store side of a home-manager user's templates.
//!
//! A template (`varsmith.templates.<n>`, rendered by sops-nix's `sops.templates`) reaches the
//! store as its `file` derivation (`pkgs.writeText`): what must hold placeholders only. One
//! `nix eval` per flake output (never one per home) reads each home's owner key and the
//! `drvPath` of every template varsmith declares; evaluating a `drvPath` writes the `.drv`,
//! which the audit then scans with its closure.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use std::collections::BTreeMap;

/// One template of one home, by its store-side derivation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateFile {
    /// The home: `homeConfigurations.<attr>` or `<output>.<machine>.config.home-manager.users.<user>`.
    pub home: String,
    /// The owner key of the home's outputs (`alice`, or `alice@host` for a per-home home).
    pub owner: String,
    /// The template's name.
    pub name: String,
    /// Its `file`'s `.drv` in the store.
    pub drv: PathBuf,
    /// Its `file`'s output, when it has been built (it is in the store).
    pub out: Option<PathBuf>,
}

impl TemplateFile {
    /// The store paths to scan: the `.drv`, and the output when built.
    pub(crate) fn paths(&self) -> Vec<PathBuf> {
        std::iter::once(self.drv.clone())
            .chain(self.out.clone())
            .collect()
    }
}

/// Reads one home (`h`: its `config`): null without varsmith's module.
const HOME: &str = r#"h: if !(h ? varsmith && h.varsmith ? userName && h.varsmith ? perHome) then null else let
    v = h.varsmith;
    r = builtins.tryEval (builtins.mapAttrs (_: t: {
        drv = builtins.unsafeDiscardStringContext t.file.drvPath;
        out = builtins.unsafeDiscardStringContext t.file.outPath;
      })
      (builtins.intersectAttrs (v.templates or { }) (h.sops.templates or { })));
  in {
    owner = if v.perHome && v.homeName != null then v.homeName else v.userName;
    templates = if r.success then r.value else null;
  }"#;

#[derive(Deserialize)]
struct Raw {
    owner: String,
    templates: Option<BTreeMap<String, RawTemplate>>,
}

#[derive(Deserialize)]
struct RawTemplate {
    drv: String,
    out: String,
}

/// The template files of every home whose owner key is in `owners`, sorted by home and name.
/// A home whose templates do not evaluate is an error naming it (an audit must not pass over
/// what it was asked to check).
pub(crate) fn template_files(
    root: &Path,
    owners: &[String],
) -> Result<Vec<TemplateFile>, crate::workspace::Error> {
    let mut out = Vec::new();
    let bad = |output: &str, msg: String| crate::workspace::Error::Invalid {
        path: root.join("flake.nix"),
        msg: format!("{output}: {msg}"),
    };
    for output in [
        "homeConfigurations",
        "nixosConfigurations",
        "darwinConfigurations",
    ] {
        let standalone = output == "homeConfigurations";
        let apply = if standalone {
            format!(
                "hs: builtins.mapAttrs (_: c: let r = builtins.tryEval c.config; in if r.success then ({HOME}) r.value else null) hs"
            )
        } else {
            format!(
                "cs: builtins.mapAttrs (_: c: if c.options ? home-manager then builtins.mapAttrs (_: ({HOME})) c.config.home-manager.users else {{ }}) cs"
            )
        };
        let Some(json) = crate::workspace::nix::eval_output_json(root, output, &apply)? else {
            continue;
        };
        let mut homes: Vec<(String, Raw)> = Vec::new();
        if standalone {
            let m: BTreeMap<String, Option<Raw>> = serde_json::from_slice(&json)
                .map_err(|e| bad(output, format!("unexpected output of nix eval: {e}")))?;
            homes.extend(
                m.into_iter()
                    .filter_map(|(a, r)| Some((format!("{output}.{a}"), r?))),
            );
        } else {
            let m: BTreeMap<String, BTreeMap<String, Option<Raw>>> = serde_json::from_slice(&json)
                .map_err(|e| bad(output, format!("unexpected output of nix eval: {e}")))?;
            for (machine, users) in m {
                for (user, r) in users {
                    if let Some(r) = r {
                        homes.push((
                            format!("{output}.{machine}.config.home-manager.users.{user}"),
                            r,
                        ));
                    }
                }
            }
        }
        for (home, r) in homes {
            if !owners.contains(&r.owner) {
                continue;
            }
            let templates = r.templates.ok_or_else(|| {
                bad(
                    output,
                    format!("{home}: its sops.templates do not evaluate (run nix eval on it for the message)"),
                )
            })?;
            for (name, t) in templates {
                let built = PathBuf::from(t.out);
                out.push(TemplateFile {
                    home: home.clone(),
                    owner: r.owner.clone(),
                    name,
                    drv: PathBuf::from(t.drv),
                    out: built.exists().then_some(built),
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.home, &a.name).cmp(&(&b.home, &b.name)));
    Ok(out)
}

/// Whether a scanned location lies in one of the template's store paths.
pub(crate) fn in_template(location: &super::Location, t: &TemplateFile) -> bool {
    t.paths().iter().any(|p| match location {
        super::Location::Store { store_path, .. } | super::Location::StoreName { store_path } => {
            store_path == p
        }
        super::Location::File { path } => path.starts_with(p),
        super::Location::GitBlob { .. } => false,
    })
}
