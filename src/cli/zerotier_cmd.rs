//! `varsmith zerotier …`: ZeroTier identities, network ids and member addresses without
//! `zerotier-idtool` (see [`crate::zerotier`]). Needs no workspace; generator scripts call it
//! inside the sandbox, where varsmith is on the PATH.
//!
//! Exit codes: 0 ok; 1 a well-formed identity that is not valid, or a failed write; 2 a
//! malformed identity, id or argument. Messages name the file and never show a private key.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use clap::Subcommand;

use crate::UsageError;
use crate::cli::args::CmdResult;
use crate::zerotier::{self, Address, Identity, NetworkId};

/// Identity files are a few hundred bytes; anything much larger is not one.
const MAX_IDENTITY_FILE: u64 = 64 * 1024;

/// `varsmith zerotier …`
#[derive(Subcommand, Debug)]
pub enum ZerotierCmd {
    /// Generate a new identity (as `zerotier-idtool generate`): SECRET_FILE gets
    /// `address:0:public:private` (mode 0600), PUBLIC_FILE `address:0:public` (mode 0644),
    /// both without a final newline. Neither file may exist yet.
    Generate {
        /// Where the secret identity goes (e.g. "$out/identity.secret").
        secret_file: PathBuf,
        /// Where the public identity goes (e.g. "$out/identity.public").
        public_file: PathBuf,
    },
    /// Check an identity file (public or secret) as ZeroTier's `locallyValidate` does, and the
    /// private keys against the public ones: exit 1 with the reason when it is not valid.
    Validate {
        /// The identity file.
        file: PathBuf,
    },
    /// Print a network id of the controller in CONTROLLER_FILE (its address, then a 24-bit
    /// network number as 6 hex digits). The identity is validated first.
    NetworkId {
        /// The controller's identity file (public or secret).
        controller_file: PathBuf,
        /// The network number: decimal or 0x-prefixed hex, at most 0xffffff.
        #[arg(long, value_parser = parse_number, conflicts_with = "random")]
        number: Option<u32>,
        /// A random network number (the default).
        #[arg(long)]
        random: bool,
    },
    /// Print a member's RFC 4193 address: fd + network id + 9993 + node address.
    Rfc4193 {
        /// The network id (16 hex digits).
        network_id: String,
        /// The member's node address (10 hex digits).
        node: String,
        /// Append the network's prefix length (/88).
        #[arg(long)]
        cidr: bool,
    },
    /// Print a member's 6PLANE address: fc + (network id's halves XORed) + node address + ::1.
    #[command(name = "6plane")]
    SixPlane {
        /// The network id (16 hex digits).
        network_id: String,
        /// The member's node address (10 hex digits).
        node: String,
        /// Append the network's prefix length (/40).
        #[arg(long)]
        cidr: bool,
    },
}

/// Runs one `varsmith zerotier` command.
pub(super) fn run(cmd: ZerotierCmd) -> CmdResult {
    match cmd {
        ZerotierCmd::Generate {
            secret_file,
            public_file,
        } => generate(&secret_file, &public_file),
        ZerotierCmd::Validate { file } => validate(&file),
        ZerotierCmd::NetworkId {
            controller_file,
            number,
            random: _,
        } => network_id(&controller_file, number),
        ZerotierCmd::Rfc4193 {
            network_id,
            node,
            cidr,
        } => {
            let (nwid, node) = ids(&network_id, &node)?;
            print_ip(nwid.rfc4193(node), cidr.then_some(zerotier::RFC4193_PREFIX))
        }
        ZerotierCmd::SixPlane {
            network_id,
            node,
            cidr,
        } => {
            let (nwid, node) = ids(&network_id, &node)?;
            print_ip(
                nwid.sixplane(node),
                cidr.then_some(zerotier::SIXPLANE_PREFIX),
            )
        }
    }
}

/// A zerotier error as the CLI reports it: malformed text is a usage error (exit 2).
fn report(what: &str, e: zerotier::Error) -> anyhow::Error {
    match e {
        zerotier::Error::Parse(m) => UsageError::new(format!("{what}: {m}")).into(),
        zerotier::Error::Invalid(_) => anyhow!("{what}: {e}"),
    }
}

fn generate(secret_file: &Path, public_file: &Path) -> CmdResult {
    let id = Identity::generate();
    let secret = id
        .secret_text()
        .context("a generated identity has its private key")?;
    write_new(secret_file, &secret, 0o600)?;
    if let Err(e) = write_new(public_file, id.public_text().as_bytes(), 0o644) {
        // Nothing half-written: the secret alone is of no use.
        let _ = std::fs::remove_file(secret_file);
        return Err(e);
    }
    Ok(crate::EXIT_OK)
}

/// Creates `path` (never through a symlink, never over an existing file) with `mode`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads and parses an identity file.
fn read_identity(path: &Path) -> anyhow::Result<Identity> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).with_context(|| format!("reading {shown}"))?;
    if meta.len() > MAX_IDENTITY_FILE {
        return Err(UsageError::new(format!(
            "{shown}: {} bytes is too large for a ZeroTier identity",
            meta.len()
        ))
        .into());
    }
    let bytes =
        zeroize::Zeroizing::new(std::fs::read(path).with_context(|| format!("reading {shown}"))?);
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| UsageError::new(format!("{shown}: not a ZeroTier identity (not text)")))?;
    Identity::parse(text).map_err(|e| report(&shown, e))
}

fn validate(path: &Path) -> CmdResult {
    let id = read_identity(path)?;
    id.validate()
        .map_err(|e| report(&path.display().to_string(), e))?;
    let kind = if id.has_private() {
        "with its private key"
    } else {
        "public"
    };
    println!(
        "{}: valid ZeroTier identity {} ({kind})",
        path.display(),
        id.address()
    );
    Ok(crate::EXIT_OK)
}

fn network_id(controller_file: &Path, number: Option<u32>) -> CmdResult {
    let id = read_identity(controller_file)?;
    id.validate()
        .map_err(|e| report(&controller_file.display().to_string(), e))?;
    let number = number.unwrap_or_else(|| rand::random::<u32>() & NetworkId::MAX_NUMBER);
    let nwid = NetworkId::new(id.address(), number)
        .ok_or_else(|| UsageError::new("the network number is at most 0xffffff"))?;
    println!("{nwid}");
    Ok(crate::EXIT_OK)
}

fn ids(network_id: &str, node: &str) -> anyhow::Result<(NetworkId, Address)> {
    let nwid = NetworkId::parse(network_id).map_err(|e| report("network id", e))?;
    let node = Address::parse(node).map_err(|e| report("node address", e))?;
    Ok((nwid, node))
}

fn print_ip(ip: std::net::Ipv6Addr, prefix: Option<u8>) -> CmdResult {
    match prefix {
        Some(p) => println!("{ip}/{p}"),
        None => println!("{ip}"),
    }
    Ok(crate::EXIT_OK)
}

/// `--number`: decimal or 0x-prefixed hex, 24 bits.
fn parse_number(s: &str) -> Result<u32, String> {
    let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse::<u32>(),
    }
    .map_err(|_| format!("{s:?} is not a number (decimal, or hex with 0x)"))?;
    if v > NetworkId::MAX_NUMBER {
        return Err(format!("{s} is over the 24-bit maximum 0xffffff"));
    }
    Ok(v)
}
