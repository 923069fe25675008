#!/usr/bin/env bash
# Builds (once) the Debian 12 root the boot test's instances start from, and the local
# package repository they install etcd-server from. Cached in $1 (default .lab/boot):
#   root.tar      systemd, cloud-init, curl, en_US.UTF-8 (cloud-init's default locale): what
#                 a Debian 12 cloud image brings, no etcd
#   repo/         etcd-server, etcd-client and their dependencies as .debs, with a
#                 Packages index (apt-ftparchive): the instances' only package source
# A rerun with both present, made by this same script, does nothing; a change to this script
# rebuilds them.
set -euo pipefail
cache=${1:-$PWD/.lab/boot}
suite=bookworm
stamp=$(sha256sum <"$0" | cut -d' ' -f1)
mkdir -p "$cache"
if [ -s "$cache/root.tar" ] && [ -s "$cache/repo/Packages" ] && [ "$(cat "$cache/stamp" 2>/dev/null)" = "$stamp" ]; then
    exit 0
fi
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "root.sh: mmdebstrap $suite (once; cached in $cache)" >&2
# In a private mount namespace: whatever mmdebstrap mounts in the chroot stays there. The
# hooks' "$1" is the chroot, expanded by mmdebstrap.
# shellcheck disable=SC2016
unshare --mount --propagation private -- mmdebstrap --quiet --variant=apt \
    --include=systemd,systemd-sysv,dbus,cloud-init,locales,curl,ca-certificates,iproute2,procps,gzip \
    --customize-hook='echo "en_US.UTF-8 UTF-8" >"$1/etc/locale.gen" && chroot "$1" locale-gen' \
    --customize-hook='chroot "$1" apt-get install --download-only -y -qq etcd-server etcd-client' \
    --customize-hook="sync-out /var/cache/apt/archives $work/debs" \
    --customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb' \
    "$suite" "$work/root.tar"
mkdir -p "$work/repo"
cp "$work"/debs/*.deb "$work/repo/"
(cd "$work/repo" && apt-ftparchive packages . > Packages && apt-ftparchive release . > Release)
rm -rf "$cache/repo"
mv "$work/repo" "$cache/repo"
mv "$work/root.tar" "$cache/root.tar"
echo "$stamp" >"$cache/stamp"
debs=("$cache"/repo/*.deb)
echo "root.sh: $(du -sh "$cache/root.tar" | cut -f1) root, ${#debs[@]} packages in the repo" >&2
