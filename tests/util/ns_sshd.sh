#!/bin/sh
# Runs a command (sshd) chrooted into a private copy of the host's root, inside the private
# mount namespace `unshare --mount` gives us: every top-level entry of / is bind-mounted into
# a tmpfs, /etc/ssh and /persist are replaced by the test's directories, /run and /var/lib are
# fresh tmpfs.
# Nothing is created or mounted on the host: the namespace and its mounts die with sshd.
# With $VARSMITH_TEST_BIN set, that directory is mounted over /usr/local/bin (first on sshd's
# default PATH): the "host"'s own tools (darwin-rebuild, systemctl stand-ins).
# usage: ns_sshd.sh NEWROOT ETC_SSH PERSIST CMD...
set -eu
newroot=$1 etc_ssh=$2 persist=$3
shift 3
mount -t tmpfs -o mode=0755 varsmith-test-root "$newroot"
for p in /* /.[!.]*; do
    [ -e "$p" ] || [ -L "$p" ] || continue
    n=${p#/}
    case "$n" in persist | run) continue ;; esac
    if [ -L "$p" ]; then
        ln -s "$(readlink "$p")" "$newroot/$n"
    elif [ -d "$p" ]; then
        mkdir "$newroot/$n"
        mount --rbind "$p" "$newroot/$n"
    else
        touch "$newroot/$n"
        mount --bind "$p" "$newroot/$n"
    fi
done
mkdir -p "$newroot/run" "$newroot/persist"
mount -t tmpfs -o mode=0755 varsmith-test-run "$newroot/run"
# /var/lib too is private (deploy uploads activation secrets to /var/lib/varsmith).
mount -t tmpfs -o mode=0755 varsmith-test-var-lib "$newroot/var/lib"
mkdir -m 0755 "$newroot/run/sshd"
mount --bind "$persist" "$newroot/persist"
mkdir -p "$newroot/etc/ssh"
mount --bind "$etc_ssh" "$newroot/etc/ssh"
if [ -n "${VARSMITH_TEST_BIN:-}" ]; then
    mount --bind "$VARSMITH_TEST_BIN" "$newroot/usr/local/bin"
fi
exec chroot "$newroot" "$@"
