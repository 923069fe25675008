#!/bin/sh
# /usr/local/sbin/install-etcd-discovery: download the binary for this machine's
# architecture, check it against the digest pinned in the user data, install it. The digest
# comes from here, not from the server the binary comes from: a file swapped there is refused.
#   RELEASE_URL     where the release's files are (required)
#   VERSION         the release's version (required)
#   SHA256_X86_64   sha256 of etcd-discovery-$VERSION-x86_64-linux-musl.gz (SHA256SUMS)
#   SHA256_AARCH64  sha256 of etcd-discovery-$VERSION-aarch64-linux-musl.gz
#   PREFIX          where the binary goes (default /usr/local/bin)
set -eu
: "${RELEASE_URL:?set RELEASE_URL to where the release files are}"
: "${VERSION:?set VERSION to the release to install}"
PREFIX=${PREFIX:-/usr/local/bin}
case "$(uname -m)" in
    x86_64 | amd64) arch=x86_64 digest=${SHA256_X86_64:-} ;;
    aarch64 | arm64) arch=aarch64 digest=${SHA256_AARCH64:-} ;;
    *) echo "install-etcd-discovery: no build for $(uname -m)" >&2; exit 1 ;;
esac
case "$digest" in
    *[!0-9a-f]* | "")
        echo "install-etcd-discovery: no pinned digest for $arch: set the user data's SHA256 for it from the release's SHA256SUMS" >&2
        exit 1 ;;
esac
if [ "${#digest}" -ne 64 ]; then
    echo "install-etcd-discovery: the pinned digest for $arch is not a sha256 (64 hex digits)" >&2
    exit 1
fi
name="etcd-discovery-$VERSION-$arch-linux-musl"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
curl -fsSL --retry 5 --retry-connrefused -o "$name.gz" "$RELEASE_URL/$name.gz"
if ! echo "$digest  $name.gz" | sha256sum -c - >/dev/null 2>&1; then
    echo "install-etcd-discovery: checksum mismatch for $name.gz: not installing" >&2
    exit 1
fi
gunzip "$name.gz"
install -D -m 0755 "$name" "$PREFIX/etcd-discovery"
"$PREFIX/etcd-discovery" --version
