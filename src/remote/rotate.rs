//! `rotate-host-key MACHINE [TARGET]`: the safe host key rotation as one resumable sequence.
//!
//! 1. `generate`: a new host key; the machine's files open with the old and the new key
//!    (the pending record of `store::rotation`).
//! 2. `deploy`: the host gets those files, so its current generation opens with either key.
//! 3. `push-keys`: the new key is installed on the host, verified and pinned beside the old
//!    pin (the running sshd serves its old key until it restarts). A reboot from here on
//!    decrypts the current generation with the new key.
//! 4. `confirm`: the old key is dropped from the machine's files.
//! 5. `deploy`: the host gets the files for the new key only.
//!
//! Progress is kept in `sops/machines/<host>/rotate-host-key.json` (`{"next": STEP}`),
//! written after each step succeeds and removed when the last one did; a rerun after any
//! failure continues at the step that failed (each step is safe to repeat). Without a
//! progress file, a pending rotation record means step 1 is done.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Error;

/// File name of the progress record inside `sops/machines/<host>/`.
pub(crate) const PROGRESS: &str = "rotate-host-key.json";

/// One step of the rotation, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Step {
    /// New key, both recipients.
    Generate,
    /// Deploy the dual-recipient files.
    DeployBoth,
    /// Install, verify and pin the new key.
    PushKeys,
    /// Drop the old recipient.
    Confirm,
    /// Deploy the new-key-only files.
    DeployNew,
}

impl Step {
    /// Every step, in order.
    pub(crate) const ALL: [Step; 5] = [
        Step::Generate,
        Step::DeployBoth,
        Step::PushKeys,
        Step::Confirm,
        Step::DeployNew,
    ];

    /// The step's name (as in the progress file and `--dry-run`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Step::Generate => "generate",
            Step::DeployBoth => "deploy-both",
            Step::PushKeys => "push-keys",
            Step::Confirm => "confirm",
            Step::DeployNew => "deploy-new",
        }
    }

    /// What the step achieves, one line.
    pub(crate) fn purpose(self) -> &'static str {
        match self {
            Step::Generate => {
                "a new host key; the machine's files open with the old and the new key"
            }
            Step::DeployBoth => "the host gets files that both keys open",
            Step::PushKeys => {
                "the new key installed on the host, verified, pinned beside the old pin"
            }
            Step::Confirm => "the old key dropped from the machine's files",
            Step::DeployNew => "the host gets the files for the new key only",
        }
    }

    /// The step after this one, `None` after the last.
    pub(crate) fn next(self) -> Option<Step> {
        Step::ALL.iter().copied().find(|s| *s > self)
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Progress {
    next: Step,
}

/// `sops/machines/<host>/rotate-host-key.json`.
pub(crate) fn progress_path(root: &Path, host: &str) -> PathBuf {
    crate::store::Owner::Machine(host.to_string())
        .base(root)
        .join(PROGRESS)
}

/// The step a run starts at: the recorded one, else `deploy-both` when a rotation is already
/// pending (its key was generated), else `generate`.
pub(crate) fn resume_at(root: &Path, host: &str) -> Result<Step, Error> {
    let path = progress_path(root, host);
    match crate::store::read_file(root, &path)? {
        Some(b) => {
            let p: Progress = serde_json::from_slice(&b).map_err(|e| Error::BadKey {
                path: path.clone(),
                msg: format!("expected {{\"next\": \"<step>\"}}: {e}"),
            })?;
            Ok(p.next)
        }
        None if crate::store::rotation::pending(root, host)?.is_some() => Ok(Step::DeployBoth),
        None => Ok(Step::Generate),
    }
}

/// Records that `done` succeeded: the next step, or no record after the last one.
pub(crate) fn advance(root: &Path, host: &str, done: Step) -> Result<(), Error> {
    let path = progress_path(root, host);
    match done.next() {
        Some(next) => {
            let mut json = serde_json::to_vec(&Progress { next }).unwrap_or_default();
            json.push(b'\n');
            crate::store::write_atomic(root, &path, &json)?;
        }
        None => {
            let mut b = crate::store::Batch::new(root);
            b.remove(&path)?;
            b.commit()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_advance_and_resume() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("sops/machines/web")).unwrap();
        assert_eq!(resume_at(r, "web").unwrap(), Step::Generate);
        for s in Step::ALL {
            assert_eq!(resume_at(r, "web").unwrap(), s);
            advance(r, "web", s).unwrap();
        }
        assert!(!progress_path(r, "web").exists());
        assert_eq!(Step::Confirm.next(), Some(Step::DeployNew));
    }
}
