//! Error kinds and exit codes. Every layer has its own error type (`workspace::Error`,
//! `store::Error`, `sops::Error`, …); each maps onto one [`Kind`], and the CLI turns the kind of
//! the first error in a chain that has one into the exit code. So the same bad file exits with
//! the same code whichever command read it.

/// Exit code for success.
pub const EXIT_OK: i32 = 0;
/// Exit code when the work failed or found a problem (check, audit).
pub const EXIT_PROBLEM: i32 = 1;
/// Exit code for a bad invocation or bad definitions / input files.
pub const EXIT_USAGE: i32 = 2;
/// Exit code after SIGINT / SIGTERM (128 + SIGINT), whatever the children did.
pub const EXIT_INTERRUPTED: i32 = 130;

/// What kind of failure an error is; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad invocation, bad definitions or a malformed input file: exit 2, nothing written.
    Usage,
    /// The work failed (a script, an I/O error, a tool): exit 1.
    Failed,
    /// Ctrl-C or SIGTERM: exit 130.
    Interrupted,
}

impl Kind {
    /// The process exit code of this kind.
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Usage => EXIT_USAGE,
            Kind::Failed => EXIT_PROBLEM,
            Kind::Interrupted => EXIT_INTERRUPTED,
        }
    }
}

/// What every error type of the library says about itself: its [`Kind`]. The CLI turns the kind
/// of the first error in a chain that has one into the exit code, in one place
/// (`cli::exit_code`); no command remaps kinds by hand.
pub trait HasKind: std::error::Error {
    /// The kind of this error (decides the exit code).
    fn kind(&self) -> Kind;
}

/// A bad invocation: unknown machine, malformed argument, missing prompt value. Exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl UsageError {
    /// Builds a usage error from anything displayable.
    pub fn new(msg: impl Into<String>) -> Self {
        UsageError(msg.into())
    }
}

/// One failed step of a command that goes on after failures (a generator run, a file to
/// re-wrap): what, why, and its kind. A report's exit code is that of its worst failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The message (names machine, generator and file; never a secret).
    pub msg: String,
    /// Its kind.
    pub kind: Kind,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: Kind, msg: impl Into<String>) -> Self {
        Failure {
            msg: msg.into(),
            kind,
        }
    }
}

impl From<String> for Failure {
    fn from(msg: String) -> Self {
        Failure::new(Kind::Failed, msg)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

/// The exit code of a list of failures: 0 when empty; 130 if interrupted; 2 if any is bad
/// input; else 1.
pub(crate) fn exit_code_of<'a>(kinds: impl IntoIterator<Item = &'a Kind>) -> i32 {
    let mut code = EXIT_OK;
    for k in kinds {
        code = match (code, k) {
            (_, Kind::Interrupted) => return EXIT_INTERRUPTED,
            (_, Kind::Usage) => EXIT_USAGE,
            (EXIT_OK, Kind::Failed) => EXIT_PROBLEM,
            (c, Kind::Failed) => c,
        };
    }
    code
}

/// The run was interrupted by SIGINT / SIGTERM. Exit code 130.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

impl HasKind for UsageError {
    fn kind(&self) -> Kind {
        Kind::Usage
    }
}

impl HasKind for Interrupted {
    fn kind(&self) -> Kind {
        Kind::Interrupted
    }
}
