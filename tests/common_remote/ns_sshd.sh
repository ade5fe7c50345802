#!/bin/sh
# Runs a command (sshd) chrooted into a private copy of the host's root, inside the private
# mount namespace `unshare --mount` gives us: every top-level entry of / is bind-mounted into
# a tmpfs, /etc/ssh and /persist are replaced by the test's directories, /run is a fresh tmpfs.
# Nothing is created or mounted on the host: the namespace and its mounts die with sshd.
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
mkdir -m 0755 "$newroot/run/sshd"
mount --bind "$persist" "$newroot/persist"
mkdir -p "$newroot/etc/ssh"
mount --bind "$etc_ssh" "$newroot/etc/ssh"
exec chroot "$newroot" "$@"
