#!/bin/sh
# /usr/local/sbin/install-etcd-discovery: download the binary for this machine's
# architecture, check it against SHA256SUMS, install it. Refuses on any mismatch.
#   RELEASE_URL  where the release's files are (required)
#   VERSION      the release's version (required)
#   PREFIX       where the binary goes (default /usr/local/bin)
set -eu
: "${RELEASE_URL:?set RELEASE_URL to where the release files are}"
: "${VERSION:?set VERSION to the release to install}"
PREFIX=${PREFIX:-/usr/local/bin}
case "$(uname -m)" in
    x86_64 | amd64) arch=x86_64 ;;
    aarch64 | arm64) arch=aarch64 ;;
    *) echo "install-etcd-discovery: no build for $(uname -m)" >&2; exit 1 ;;
esac
name="etcd-discovery-$VERSION-$arch-linux-musl"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
curl -fsSL --retry 5 -o SHA256SUMS "$RELEASE_URL/SHA256SUMS"
curl -fsSL --retry 5 -o "$name.gz" "$RELEASE_URL/$name.gz"
grep -q "  $name.gz\$" SHA256SUMS || { echo "install-etcd-discovery: $name.gz is not in SHA256SUMS" >&2; exit 1; }
if ! grep "  $name.gz\$" SHA256SUMS | sha256sum -c - >/dev/null 2>&1; then
    echo "install-etcd-discovery: checksum mismatch for $name.gz: not installing" >&2
    exit 1
fi
gunzip "$name.gz"
grep -q "  $name\$" SHA256SUMS && grep "  $name\$" SHA256SUMS | sha256sum -c - >/dev/null 2>&1 \
    || { echo "install-etcd-discovery: checksum mismatch for $name: not installing" >&2; exit 1; }
install -D -m 0755 "$name" "$PREFIX/etcd-discovery"
"$PREFIX/etcd-discovery" --version
