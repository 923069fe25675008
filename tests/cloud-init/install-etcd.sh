#!/bin/sh
# /usr/local/sbin/install-etcd on Amazon Linux 2023 (no etcd package there): download the
# etcd project's release for this machine's architecture, check it against the digest pinned
# in the user data, install etcd, etcdctl and etcdutl into /usr/local/bin.
#   ETCD_VERSION          e.g. v3.5.17 (required)
#   ETCD_SHA256_AMD64     sha256 of etcd-$ETCD_VERSION-linux-amd64.tar.gz (the release's SHA256SUMS)
#   ETCD_SHA256_ARM64     sha256 of etcd-$ETCD_VERSION-linux-arm64.tar.gz
set -eu
: "${ETCD_VERSION:?set ETCD_VERSION to the etcd release to install}"
case "$(uname -m)" in
    x86_64 | amd64) arch=amd64 digest=${ETCD_SHA256_AMD64:-} ;;
    aarch64 | arm64) arch=arm64 digest=${ETCD_SHA256_ARM64:-} ;;
    *) echo "install-etcd: no etcd build for $(uname -m)" >&2; exit 1 ;;
esac
case "$digest" in
    *[!0-9a-f]* | "")
        echo "install-etcd: no pinned digest for $arch: set the user data's ETCD_SHA256 for it from etcd's SHA256SUMS" >&2
        exit 1 ;;
esac
name="etcd-$ETCD_VERSION-linux-$arch"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
curl -fsSL --retry 5 --retry-connrefused -o "$name.tar.gz" "https://github.com/etcd-io/etcd/releases/download/$ETCD_VERSION/$name.tar.gz"
if ! echo "$digest  $name.tar.gz" | sha256sum -c - >/dev/null 2>&1; then
    echo "install-etcd: checksum mismatch for $name.tar.gz: not installing" >&2
    exit 1
fi
tar -xzf "$name.tar.gz"
install -m 0755 "$name/etcd" "$name/etcdctl" "$name/etcdutl" /usr/local/bin/
getent passwd etcd >/dev/null || useradd --system --home-dir /var/lib/etcd --shell /sbin/nologin etcd
install -d -m 0700 -o etcd -g etcd /var/lib/etcd
# The data directory too: etcd-discovery's unit may write only there, if it exists.
install -d -m 0700 -o etcd -g etcd /var/lib/etcd/default
/usr/local/bin/etcd --version
