//! The sandbox's seccomp filter and kernel keyring isolation.
//!
//! A generator must not reach the caller's kernel keyrings. Two layers:
//!
//! * [`join_fresh_session_keyring`], in the child before `bwrap` is executed, replaces the
//!   inherited session keyring with a new anonymous one (`@s` is then empty);
//! * [`program`], handed to bubblewrap (`--seccomp FD`), makes `keyctl`, `add_key` and
//!   `request_key` fail with `EPERM` inside the sandbox (the user keyring `@u` stays
//!   reachable by uid otherwise). It checks the architecture first: x86-64 and AArch64 are
//!   known, x32 system call numbers on x86-64 and any other architecture (i386 through
//!   `int 0x80`, say) kill the process.
//!
//! The filter is classic BPF written by hand (no libseccomp): 16 instructions.

/// `AUDIT_ARCH_X86_64`.
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_AARCH64`.
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
/// x32 system calls have this bit set on x86-64.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// `add_key`, `request_key`, `keyctl` numbers on x86-64 and AArch64.
const KEYRING_X86_64: [u32; 3] = [248, 249, 250];
const KEYRING_AARCH64: [u32; 3] = [217, 218, 219];

const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;

// Classic BPF opcodes.
/// `BPF_LD | BPF_W | BPF_ABS` (the first two are 0).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JMP_JSET_K: u16 = 0x05 | 0x40;
const BPF_RET_K: u16 = 0x06;

/// `struct seccomp_data` offsets.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;

/// The descriptor number bubblewrap reads the filter from (set up in the child only, with
/// [`install_memfd`]).
pub(crate) const SECCOMP_FD: i32 = 10;

/// A jump target of the tiny assembler below.
#[derive(Clone, Copy)]
enum To {
    Next,
    Kill,
    Deny,
    /// The block of the second architecture.
    Arm,
}

/// One instruction before jump resolution.
struct Ins {
    code: u16,
    k: u32,
    jt: To,
    jf: To,
}

fn op(code: u16, k: u32) -> Ins {
    Ins {
        code,
        k,
        jt: To::Next,
        jf: To::Next,
    }
}

fn jump(code: u16, k: u32, jt: To, jf: To) -> Ins {
    Ins { code, k, jt, jf }
}

/// The instructions of the filter, unresolved.
fn instructions() -> Vec<Ins> {
    let mut v = vec![
        op(BPF_LD_W_ABS, OFF_ARCH),
        jump(BPF_JMP_JEQ_K, AUDIT_ARCH_X86_64, To::Next, To::Arm),
        op(BPF_LD_W_ABS, OFF_NR),
        jump(BPF_JMP_JSET_K, X32_SYSCALL_BIT, To::Kill, To::Next),
    ];
    for nr in KEYRING_X86_64 {
        v.push(jump(BPF_JMP_JEQ_K, nr, To::Deny, To::Next));
    }
    v.push(op(BPF_RET_K, SECCOMP_RET_ALLOW));
    // Arm block (index recorded by resolve()).
    v.push(jump(BPF_JMP_JEQ_K, AUDIT_ARCH_AARCH64, To::Next, To::Kill));
    v.push(op(BPF_LD_W_ABS, OFF_NR));
    for nr in KEYRING_AARCH64 {
        v.push(jump(BPF_JMP_JEQ_K, nr, To::Deny, To::Next));
    }
    v.push(op(BPF_RET_K, SECCOMP_RET_ALLOW));
    v.push(op(BPF_RET_K, SECCOMP_RET_KILL_PROCESS));
    v.push(op(BPF_RET_K, SECCOMP_RET_ERRNO | libc::EPERM as u32));
    v
}

/// The compiled filter: `struct sock_filter` entries in native byte order, as
/// `bwrap --seccomp` reads them.
pub(crate) fn program() -> Vec<u8> {
    let ins = instructions();
    let n = ins.len();
    let (kill, deny) = (n - 2, n - 1);
    let arm = ins
        .iter()
        .position(|i| i.code == BPF_JMP_JEQ_K && i.k == AUDIT_ARCH_AARCH64)
        .unwrap_or(kill);
    let mut out = Vec::with_capacity(n * 8);
    for (at, i) in ins.iter().enumerate() {
        let rel = |t: To| -> u8 {
            let target = match t {
                To::Next => at + 1,
                To::Kill => kill,
                To::Deny => deny,
                To::Arm => arm,
            };
            // Every target lies ahead and within 16 instructions.
            u8::try_from(target - at - 1).unwrap_or(0)
        };
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.push(rel(i.jt));
        out.push(rel(i.jf));
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}

/// In the child before exec: joins a new anonymous session keyring. `EPERM`/`ENOSYS` (keyctl
/// refused by an outer seccomp policy, where no keyring is reachable anyway) are accepted.
/// Async-signal-safe (one system call).
pub(crate) fn join_fresh_session_keyring() -> std::io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: keyctl(JOIN_SESSION_KEYRING, NULL) takes no pointers but the null name.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOSYS)) {
            return Err(e);
        }
    }
    Ok(())
}

/// In the child before exec: puts `data` in a memory file at descriptor `at`, read from its
/// start (bwrap's `--seccomp FD`, `--file FD DEST`). Async-signal-safe: system calls only, no
/// allocation.
pub(crate) fn install_memfd(name: &std::ffi::CStr, data: &[u8], at: i32) -> std::io::Result<()> {
    let err = std::io::Error::last_os_error;
    // SAFETY: memfd_create with a C string; write/lseek/dup2/close on the fd it returned.
    unsafe {
        let fd = libc::memfd_create(name.as_ptr(), 0);
        if fd < 0 {
            return Err(err());
        }
        let mut done = 0;
        while done < data.len() {
            let n = libc::write(fd, data[done..].as_ptr().cast(), data.len() - done);
            if n <= 0 {
                return Err(err());
            }
            done += n as usize;
        }
        if libc::lseek(fd, 0, libc::SEEK_SET) != 0 {
            return Err(err());
        }
        if fd != at {
            if libc::dup2(fd, at) < 0 {
                return Err(err());
            }
            libc::close(fd);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every jump stays inside the program and lands on the intended instruction.
    #[test]
    fn jumps_resolve_inside_the_program() {
        let p = program();
        assert_eq!(p.len() % 8, 0);
        let n = p.len() / 8;
        for at in (0..n).filter(|&at| p[at * 8] & 0x07 == 0x05) {
            let (jt, jf) = (p[at * 8 + 2] as usize, p[at * 8 + 3] as usize);
            assert!(
                at + 1 + jt < n && at + 1 + jf < n,
                "instruction {at} jumps out"
            );
        }
        let code = |i: usize| u16::from_ne_bytes([p[i * 8], p[i * 8 + 1]]);
        let k = |i: usize| u32::from_ne_bytes(p[i * 8 + 4..i * 8 + 8].try_into().unwrap());
        assert_eq!((code(n - 1), k(n - 1)), (BPF_RET_K, SECCOMP_RET_ERRNO | 1));
        assert_eq!(
            (code(n - 2), k(n - 2)),
            (BPF_RET_K, SECCOMP_RET_KILL_PROCESS)
        );
        // The x86-64 mismatch jumps to the AArch64 check.
        let jf = p[8 + 3] as usize;
        assert_eq!(k(1 + 1 + jf), AUDIT_ARCH_AARCH64);
    }
}
