#!/usr/bin/env bash
# The boot test: Debian 12 instances boot under a real systemd (PID 1 of a systemd-nspawn
# container) with cloud-init's NoCloud datasource seeded with the README's master user data,
# and must come up as one etcd cluster. Run by `./build.sh boot` and `./build.sh test`.
#
#   tests/boot/run.sh BINARY     the static release binary to install on the instances
#
# The network: a "switch" network namespace holds a bridge (10.231.0.1/24) with moto (the
# AWS APIs), and an HTTP server with the release file and the package repository. Each
# instance gets a network namespace of its own, a veth on that bridge (10.231.0.1K/24) and an
# IMDS stub on 169.254.169.254:80 (tests/boot/imds.py). Nothing reaches or is routed to the
# host's interfaces. What differs from the README's user data, and why: see the README,
# "What the boot test changes".
#
# Scenarios, in order: three instances bootstrap one cluster; a reboot comes back; a reboot
# whose IMDS refuses connections for its first 20 s still ends with etcd running; an
# instance replaced by a new one joins as "existing" (as a learner, then promoted); the
# reconcile unit runs; a member removed while its instance was off boots cut off from its
# peers, restarts from its data, and once the partition heals hears it was removed, exits,
# and is restarted to join again as a new member; keys written, the snapshot units set up as the README says and run (the
# leader uploads one snapshot), every instance stopped and terminated, and three new ones with
# the same bucket restore it into one cluster holding the keys; then the static checks (systemd-analyze verify and security,
# cloud-init schema, shellcheck). Every wait is bounded; a failure prints the instance's
# journal, cloud-init's status and the env file. Everything started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=$(realpath "${1:?usage: tests/boot/run.sh BINARY}")
CACHE=${BOOT_CACHE:-$PWD/.lab/boot}
MOTO=${LAB_MOTO_SERVER:-$PWD/.lab/venv/bin/moto_server}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | sed -n 1p)
NET=10.231.0
SWITCH_IP=$NET.1
REGION=us-east-1
GROUP=etcd-masters
BUCKET=etcd-boot-test
SNAPSHOT_URL=s3://$BUCKET/etcd
START=$SECONDS

say() { printf '[boot %3ds] %s\n' "$((SECONDS - START))" "$*" >&2; }

# Everything this run starts, to stop on exit: PIDs (ours only) and the scratch folder.
PIDS=()
declare -A NSPAWN NETNS IMDS IDS
RUN=""

cleanup() {
    local code=$? k pid
    trap - EXIT INT TERM
    for k in "${!NSPAWN[@]}"; do stop_node "$k" || true; done
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ -n "$RUN" ]; then
        rm -rf "$RUN"
    fi
    if [ "$code" -eq 0 ]; then say "all scenarios passed"; else say "FAILED (exit $code)"; fi
    exit "$code"
}
trap cleanup EXIT
# A signal ends the run as a failure: cleanup called by the signal's own trap saw the last
# command's status (0 after a `sleep`) and said "all scenarios passed".
trap 'exit 130' INT
trap 'exit 143' TERM

in_net() { nsenter --net="/proc/$1/ns/net" -- "${@:2}"; }

# A background process, remembered for cleanup; its PID in SPAWNED. (Not called as $(...):
# the process must be this shell's child.)
spawn() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    SPAWNED=$!
    PIDS+=("$SPAWNED")
}

# A network namespace held by a sleeping process; the holder's PID in NS_PID.
new_netns() {
    local pid
    unshare --net -- sleep infinity &
    pid=$!
    PIDS+=("$pid")
    # unshare execs sleep once the namespace is made: wait (bounded) until it has.
    for _ in $(seq 100); do
        [ "$(readlink "/proc/$pid/ns/net")" != "$(readlink /proc/self/ns/net)" ] && break
        sleep 0.05
    done
    [ "$(readlink "/proc/$pid/ns/net")" != "$(readlink /proc/self/ns/net)" ] || { echo "no network namespace" >&2; exit 1; }
    NS_PID=$pid
}

wait_tcp() {
    local ns=$1 host=$2 port=$3 what=$4
    for _ in $(seq 200); do
        in_net "$ns" bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$what did not listen on $host:$port within 20 s" >&2
    exit 1
}

# --- the switch: bridge, moto, the HTTP server ------------------------------------------------
setup_switch() {
    new_netns
    SW=$NS_PID
    in_net "$SW" ip link set lo up
    in_net "$SW" ip link add br0 type bridge
    in_net "$SW" ip addr add "$SWITCH_IP/24" dev br0
    in_net "$SW" ip link set br0 up
    mkdir -p "$RUN/www/debian"
    gzip -9 -n -c "$BIN" >"$RUN/www/etcd-discovery-$VERSION-x86_64-linux-musl.gz"
    DIGEST=$(sha256sum <"$RUN/www/etcd-discovery-$VERSION-x86_64-linux-musl.gz" | cut -d' ' -f1)
    cp "$CACHE"/repo/* "$RUN/www/debian/"
    spawn "$RUN/http.log" nsenter --net="/proc/$SW/ns/net" -- \
        /usr/bin/python3 -m http.server --bind "$SWITCH_IP" --directory "$RUN/www" 8000
    spawn "$RUN/moto.log" nsenter --net="/proc/$SW/ns/net" -- "$MOTO" -H "$SWITCH_IP" -p 5000
    wait_tcp "$SW" "$SWITCH_IP" 8000 "the HTTP server"
    wait_tcp "$SW" "$SWITCH_IP" 5000 moto
}

# One AWS call to moto (setup only; moto routes by the credential scope, signatures unchecked).
aws() {
    local service=$1 action=$2 version
    shift 2
    case $service in ec2) version=2016-11-15 ;; autoscaling) version=2011-01-01 ;; esac
    local args=(-sS --fail-with-body -X POST
        -H "Authorization: AWS4-HMAC-SHA256 Credential=AKIDBOOTTEST/20261128/$REGION/$service/aws4_request, SignedHeaders=host, Signature=0"
        --data "Action=$action&Version=$version")
    local p
    for p in "$@"; do args+=(--data-urlencode "$p"); done
    in_net "$SW" curl "${args[@]}" "http://$SWITCH_IP:5000/" || { echo "moto $action failed" >&2; exit 1; }
}
# One S3 call to moto (setup and checks only), path-style.
s3() {
    in_net "$SW" curl -sS --fail-with-body -X "$1" \
        -H "Authorization: AWS4-HMAC-SHA256 Credential=AKIDBOOTTEST/20261128/$REGION/s3/aws4_request, SignedHeaders=host, Signature=0" \
        "http://$SWITCH_IP:5000/$2" || { echo "moto S3 $1 /$2 failed" >&2; exit 1; }
}
xml() { sed -n "s:.*<$1>\([^<]*\)</$1>.*:\1:p" | sed -n 1p; }

setup_aws() {
    local vpc
    vpc=$(aws ec2 CreateVpc "CidrBlock=$NET.0/16" | xml vpcId)
    SUBNET=$(aws ec2 CreateSubnet "VpcId=$vpc" "CidrBlock=$NET.0/24" | xml subnetId)
    aws autoscaling CreateLaunchConfiguration LaunchConfigurationName=etcd ImageId=ami-12c6146b InstanceType=t3.micro >/dev/null
    aws autoscaling CreateAutoScalingGroup "AutoScalingGroupName=$GROUP" LaunchConfigurationName=etcd \
        MinSize=0 MaxSize=10 DesiredCapacity=0 "VPCZoneIdentifier=$SUBNET" >/dev/null
}

# RunInstances at 10.231.0.1K, attached to the group (AttachInstances raises the desired
# capacity by one, as a launch by the group would).
launch() {
    local k=$1 id
    id=$(aws ec2 RunInstances ImageId=ami-12c6146b MinCount=1 MaxCount=1 "SubnetId=$SUBNET" "PrivateIpAddress=$NET.1$k" | xml instanceId)
    [ -n "$id" ] || { echo "RunInstances gave no instance id" >&2; exit 1; }
    aws autoscaling AttachInstances "AutoScalingGroupName=$GROUP" "InstanceIds.member.1=$id" >/dev/null
    IDS[$k]=$id
}

# --- instances ----------------------------------------------------------------------------------
root_of() { echo "$RUN/node-$1/root"; }

# The instance's disk: the cached root, the seed, and the test's own settings (see the README).
make_root() {
    local k=$1 root
    root=$(root_of "$k")
    mkdir -p "$root"
    tar -xf "$CACHE/root.tar" -C "$root" --numeric-owner
    tr -d - </proc/sys/kernel/random/uuid >"$root/etc/machine-id"
    # The only package source: the switch's repository (etcd-server and its dependencies).
    echo "deb [trusted=yes] http://$SWITCH_IP:8000/debian ./" >"$root/etc/apt/sources.list"
    rm -f "$root"/etc/apt/sources.list.d/*
    cat >"$root/etc/cloud/cloud.cfg.d/90-boot-test.cfg" <<EOF
# The boot test: NoCloud only, the address is set from outside, the sources list stays.
datasource_list: [NoCloud, None]
network: {config: disabled}
apt: {preserve_sources_list: true}
EOF
    local seed=$root/var/lib/cloud/seed/nocloud
    mkdir -p "$seed"
    printf 'instance-id: %s\nlocal-hostname: ip-%s\n' "${IDS[$k]}" "${NET//./-}-1$k" >"$seed/meta-data"
    # The README's user data; only the release's URL and the x86_64 digest differ.
    sed -e "s|https://github.com/OWNER/etcd-discovery/releases/download/v$VERSION|http://$SWITCH_IP:8000|" \
        -e "s|SHA256_X86_64=paste-sha256-of-etcd-discovery-$VERSION-x86_64-linux-musl.gz|SHA256_X86_64=$DIGEST|" \
        tests/cloud-init/master.yaml >"$seed/user-data"
    grep -q "SHA256_X86_64=$DIGEST" "$seed/user-data" || { echo "the digest placeholder is not in master.yaml" >&2; exit 1; }
    grep -q "RELEASE_URL=http://$SWITCH_IP:8000" "$seed/user-data" || { echo "the release URL is not in master.yaml" >&2; exit 1; }
    # The AWS APIs are moto's: one drop-in per unit that runs the tool.
    local unit
    for unit in etcd-discovery etcd-discovery-promote etcd-discovery-reconcile etcd-discovery-snapshot; do
        mkdir -p "$root/etc/systemd/system/$unit.service.d"
        printf '[Service]\nEnvironment=AWS_ENDPOINT_URL=http://%s:5000\n' "$SWITCH_IP" \
            >"$root/etc/systemd/system/$unit.service.d/90-boot-test.conf"
    done
}

# The disks of instances "$@", made at once (each a 285 MB tar extraction).
make_roots() {
    local k pids=()
    for k in "$@"; do
        make_root "$k" &
        pids+=("$!")
    done
    for k in "${pids[@]}"; do wait "$k" || fail "making the instances' disks failed"; done
}

# The instance's network namespace, its veth on the switch, its IMDS stub.
make_net() {
    local k=$1 ns
    new_netns
    ns=$NS_PID
    NETNS[$k]=$ns
    in_net "$SW" ip link add "v$k" type veth peer name eth0 netns "$ns"
    in_net "$SW" ip link set "v$k" master br0 up
    in_net "$ns" ip link set lo up
    in_net "$ns" ip addr add 169.254.169.254/32 dev lo
    in_net "$ns" ip addr add "$NET.1$k/24" dev eth0
    in_net "$ns" ip link set eth0 up
}

start_imds() {
    local k=$1 down=${2:-0}
    spawn "$RUN/node-$k/imds.log" nsenter --net="/proc/${NETNS[$k]}/ns/net" -- \
        /usr/bin/python3 tests/boot/imds.py --instance-id "${IDS[$k]}" --ip "$NET.1$k" --region "$REGION" --down-for "$down"
    IMDS[$k]=$SPAWNED
}

stop_imds() {
    local k=$1
    kill "${IMDS[$k]}" 2>/dev/null || true
    wait "${IMDS[$k]}" 2>/dev/null || true
}

boot() {
    local k=$1
    # A private mount namespace: nothing systemd-nspawn mounts reaches the host.
    unshare --mount --propagation private -- systemd-nspawn --quiet --boot --register=no --keep-unit \
        --machine="node-$k" --network-namespace-path="/proc/${NETNS[$k]}/ns/net" \
        -D "$(root_of "$k")" >>"$RUN/node-$k/console.log" 2>&1 &
    NSPAWN[$k]=$!
    PIDS+=("$!")
}

# The container's PID 1 (as the host sees it): in the instance's network namespace, PID 1 in
# its own PID namespace.
leader() {
    local k=$1 net p
    net=$(readlink "/proc/${NETNS[$k]}/ns/net")
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$net" ] || continue
        if grep -Eq '^NSpid:[[:space:]]+[0-9]+[[:space:]]+1$' "$p/status" 2>/dev/null; then
            echo "${p#/proc/}"
            return 0
        fi
    done
    return 1
}

# A command inside instance k (its mounts, PID namespace, network).
on() {
    local k=$1 l
    shift
    l=$(leader "$k") || { echo "node $k: no container running" >&2; return 1; }
    nsenter -t "$l" -m -u -i -n -p -- "$@"
}

# Powers instance k off (SIGTERM to systemd-nspawn: the container shuts down cleanly).
stop_node() {
    local k=$1 pid=${NSPAWN[$1]:-}
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "node $k: no clean shutdown within 30 s: killing"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    unset "NSPAWN[$k]"
}

dump() {
    local k=$1 root
    root=$(root_of "$k")
    {
        echo "===== node $k (${IDS[$k]:-?}, $NET.1$k): cloud-init status"
        on "$k" cloud-init status --long 2>&1 || true
        echo "===== node $k: /etc/sysconfig/etcd-peers"
        cat "$root/etc/sysconfig/etcd-peers" 2>&1 || true
        echo "===== node $k: units"
        on "$k" systemctl --no-pager list-units 'etcd*' 2>&1 || true
        echo "===== node $k: journal (cloud-init, etcd, etcd-discovery*), last 150 lines"
        journalctl -D "$root/var/log/journal" --no-pager -o short-monotonic \
            -u cloud-init.service -u cloud-final.service -u etcd.service -u 'etcd-discovery*' 2>&1 | tail -n 150
        echo "===== node $k: imds"
        tail -n 20 "$RUN/node-$k/imds.log" 2>&1 || true
    } >&2
}

fail() {
    local k
    echo "boot test: $*" >&2
    for k in $(printf '%s\n' "${!NSPAWN[@]}" | sort); do dump "$k"; done
    exit 1
}

# Polls `check` every 2 s for at most `limit` seconds.
wait_for() {
    local what=$1 limit=$2 deadline
    shift 2
    deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "$what: not within $limit s"
        sleep 2
    done
}

# The final stage has written its result (cloud-init status says "error" as soon as one
# stage had one, while later stages still run).
cloud_init_done() { on "$1" test -e /run/cloud-init/result.json; }

# cloud-init finished, without errors or warnings about modules that failed.
check_cloud_init() {
    local k=$1 out
    wait_for "node $k: cloud-init to finish" 480 cloud_init_done "$k"
    out=$(on "$k" cloud-init status --long 2>&1) || true
    grep -q '^status: done' <<<"$out" || fail "node $k: cloud-init did not end cleanly: $out"
    on "$k" python3 -c 'import json,sys; r=json.load(open("/run/cloud-init/result.json"))["v1"]; sys.exit(1 if r["errors"] else 0)' \
        || fail "node $k: cloud-init's result.json lists errors: $(on "$k" cat /run/cloud-init/result.json)"
}

etcd_active() { [ "$(on "$1" systemctl is-active etcd.service)" = active ]; }

etcdctl_on() {
    local k=$1
    shift
    ETCDCTL_API=3 in_net "${NETNS[$k]}" etcdctl --dial-timeout=3s --command-timeout=5s --endpoints="http://$NET.1$k:2379" "$@"
}

# The member list through node k is exactly the instances `want` (ids), all voters, healthy.
cluster_is() {
    local k=$1 want=$2 got learners
    got=$(etcdctl_on "$k" member list -w simple | awk -F', ' '{print $3}' | sort | tr '\n' ' ')
    learners=$(etcdctl_on "$k" member list -w simple | awk -F', ' '$6 == "true"' | wc -l)
    [ "$got" = "$want" ] && [ "$learners" -eq 0 ] && etcdctl_on "$k" endpoint health --cluster
}

expect_cluster() {
    local k=$1 want=$2 limit=$3
    wait_for "node $k: the cluster to be exactly $want, voters, healthy" "$limit" cluster_is "$k" "$want"
    say "node $k sees a healthy cluster of $(wc -w <<<"$want"): $want"
}

env_value() { sed -n "s/^$2=//p" "$(root_of "$1")/etc/sysconfig/etcd-peers"; }

ids_of() {
    local k out=""
    for k in "$@"; do out+="${IDS[$k]} "; done
    tr ' ' '\n' <<<"$out" | grep . | sort | tr '\n' ' '
}

# No etcd ever ran under another name than the instance's: the package's own one-node
# cluster (named after the host) never formed.
no_default_cluster() {
    local k=$1 names
    names=$(journalctl -D "$(root_of "$k")/var/log/journal" --no-pager -o cat -u etcd.service \
        | sed -n 's/^name = \(.*\)$/\1/p' | sort -u)
    [ "$names" = "${IDS[$k]}" ] || fail "node $k: etcd ran as '${names//$'\n'/, }', not only as ${IDS[$k]}"
    [ ! -e "$(root_of "$k")/usr/sbin/policy-rc.d" ] || fail "node $k: policy-rc.d was left behind"
}

# What the README tells the operator to do for snapshots, done on instance k's disk: the
# snapshot units from tests/cloud-init, the bucket in the file both units read, the timer
# enabled. (On a running instance, a daemon-reload follows.)
setup_snapshots() {
    local k=$1 root
    root=$(root_of "$k")
    cp tests/cloud-init/etcd-discovery-snapshot.service tests/cloud-init/etcd-discovery-snapshot.timer "$root/etc/systemd/system/"
    mkdir -p "$root/etc/sysconfig" "$root/etc/systemd/system/timers.target.wants"
    printf 'ETCD_DISCOVERY_SNAPSHOT_URL=%s\n' "$SNAPSHOT_URL" >"$root/etc/sysconfig/etcd-discovery-snapshot"
    ln -sfn /etc/systemd/system/etcd-discovery-snapshot.timer "$root/etc/systemd/system/timers.target.wants/etcd-discovery-snapshot.timer"
}

journal_of() { on "$1" journalctl --no-pager -o cat -u "$2"; }

# --- scenarios -----------------------------------------------------------------------------------
main() {
    [ -x "$MOTO" ] || { echo "no moto_server at $MOTO" >&2; exit 1; }
    [ -s "$CACHE/root.tar" ] || { echo "no cached root in $CACHE: run tests/boot/root.sh" >&2; exit 1; }
    mkdir -p "$CACHE"
    RUN=$(mktemp -d "$CACHE/run.XXXXXX")
    setup_switch
    setup_aws
    say "switch up: moto, the release ($DIGEST), the package repository"

    local k
    for k in 1 2 3; do launch "$k"; done
    make_roots 1 2 3
    for k in 1 2 3; do
        make_net "$k"
        start_imds "$k"
        boot "$k"
    done
    say "booting instances 1-3: ${IDS[1]} ${IDS[2]} ${IDS[3]}"
    for k in 1 2 3; do
        check_cloud_init "$k"
        say "node $k: cloud-init done, no errors"
    done
    for k in 1 2 3; do wait_for "node $k: etcd running" 300 etcd_active "$k"; done
    # One cluster: every node sees the same three members. A node whose discovery ran after
    # two others had formed the quorum finds itself listed by name and writes "existing";
    # at least one bootstrapped it as "new".
    local states=""
    for k in 1 2 3; do
        expect_cluster "$k" "$(ids_of 1 2 3)" 120
        states+="$(env_value "$k" ETCD_INITIAL_CLUSTER_STATE) "
        no_default_cluster "$k"
    done
    grep -q new <<<"$states" || fail "no node bootstrapped the cluster as new: $states"
    # Clients on the node (etcdctl, an API server) look at 127.0.0.1:2379 by default.
    for k in 1 2 3; do
        ETCDCTL_API=3 in_net "${NETNS[$k]}" etcdctl --dial-timeout=3s --command-timeout=5s \
            --endpoints=http://127.0.0.1:2379 endpoint health >/dev/null 2>&1 \
            || fail "node $k: etcd does not answer on 127.0.0.1:2379"
    done
    say "scenario 1 passed: three instances bootstrapped one cluster (states: $states); no default cluster formed"

    local before=$SECONDS old_leader
    old_leader=$(leader 1)
    stop_node 1
    boot 1
    wait_for "node 1: etcd running after a reboot" 180 etcd_active 1
    [ "$(leader 1)" != "$old_leader" ] || fail "node 1: the same container still runs: no reboot happened"
    expect_cluster 1 "$(ids_of 1 2 3)" 120
    say "scenario 2 passed: node 1 rebooted and came back in $((SECONDS - before)) s"

    before=$SECONDS
    stop_node 2
    stop_imds 2
    start_imds 2 20
    boot 2
    wait_for "node 2: etcd running after a reboot with IMDS down for 20 s" 240 etcd_active 2
    expect_cluster 2 "$(ids_of 1 2 3)" 120
    # The IMDS outage must have been met: the tool waited it out (--boot-wait) or a run
    # failed and etcd's restart tried again.
    local journal failed waited
    journal=$(journalctl -D "$(root_of 2)/var/log/journal" --no-pager -o cat -b 0 -u etcd.service -u etcd-discovery.service)
    failed=$(sed -n 's/.*etcd-discovery.service: Main process exited, code=exited, status=\([0-9]*\).*/\1/p' <<<"$journal" | tr '\n' ' ')
    waited=$(grep -c "does not answer yet: waiting (--boot-wait)" <<<"$journal" || true)
    [ -n "$failed" ] || [ "$waited" -gt 0 ] || fail "node 2: discovery never met the IMDS outage: the scenario tested nothing"
    say "scenario 3 passed: IMDS down for 20 s at boot (waited within --boot-wait: $waited; failed runs: ${failed:-none}), etcd running after $((SECONDS - before)) s"

    before=$SECONDS
    stop_node 3
    stop_imds 3
    aws autoscaling TerminateInstanceInAutoScalingGroup "InstanceId=${IDS[3]}" ShouldDecrementDesiredCapacity=true >/dev/null
    launch 4
    make_root 4
    make_net 4
    start_imds 4
    boot 4
    check_cloud_init 4
    wait_for "node 4: etcd running" 300 etcd_active 4
    [ "$(env_value 4 ETCD_INITIAL_CLUSTER_STATE)" = existing ] || fail "node 4: did not join as existing"
    expect_cluster 4 "$(ids_of 1 2 4)" 180
    [ "$(on 4 systemctl is-active etcd-discovery-promote.service)" = active ] || fail "node 4: promotion did not succeed"
    no_default_cluster 4
    say "scenario 4 passed: ${IDS[3]} replaced by ${IDS[4]}, joined as existing, promoted in $((SECONDS - before)) s"

    on 1 systemctl is-active --quiet etcd-discovery-reconcile.timer || fail "node 1: the reconcile timer is not active"
    on 1 systemctl start etcd-discovery-reconcile.service || fail "node 1: reconcile failed"
    say "scenario 5 passed: the reconcile timer is active, a run succeeds"

    removed_while_away
    total_loss
    static_checks 5
}

# Scenario 6 (rule 15 under systemd): node 2's member is removed while the instance is off
# (a warm pool that reuses instances does this: `leave` at its scale-in, the instance back in
# service later with its disks). It boots cut off from its peers (their addresses
# unreachable; AWS and IMDS answer), so the tool restarts etcd from the data it holds, as
# after any power cut. Once the partition heals, etcd hears that its member was removed and
# exits 0; etcd's drop-in (Restart=always) runs the tool again, which moves the data aside
# and joins as a new member (a learner, then promoted).
removed_while_away() {
    local before=$SECONDS old_id new_id peer journal
    stop_node 2
    old_id=$(etcdctl_on 1 member list -w simple | awk -F', ' -v n="${IDS[2]}" '$3 == n {print $1}')
    [ -n "$old_id" ] || fail "node 2's member is not in node 1's list"
    etcdctl_on 1 member remove "$old_id" >/dev/null || fail "removing node 2's member $old_id failed"
    expect_cluster 1 "$(ids_of 1 4)" 60
    for peer in 1 4; do in_net "${NETNS[2]}" ip route add unreachable "$NET.1$peer/32"; done
    boot 2
    wait_for "node 2: etcd restarting the removed member from its data, cut off from its peers" 180 \
        restarted_removed_member 2
    say "node 2: etcd restarted member $old_id from its data behind the partition; healing it"
    for peer in 1 4; do in_net "${NETNS[2]}" ip route del unreachable "$NET.1$peer/32"; done
    wait_for "node 2: etcd running again" 240 etcd_active 2
    expect_cluster 2 "$(ids_of 1 2 4)" 240
    new_id=$(etcdctl_on 1 member list -w simple | awk -F', ' -v n="${IDS[2]}" '$3 == n {print $1}')
    if [ -z "$new_id" ] || [ "$new_id" = "$old_id" ]; then
        fail "node 2: member $old_id came back as '$new_id', not as a new member"
    fi
    journal=$(on 2 journalctl --no-pager -o cat -b 0 -u etcd.service -u etcd-discovery.service)
    grep -q "permanently removed" <<<"$journal" || fail "node 2: etcd never said it was removed: the scenario tested nothing"
    grep -q "moving it aside" <<<"$journal" || fail "node 2: the tool did not move the removed member's data aside"
    say "scenario 6 passed: ${IDS[2]} removed while off, booted behind a partition, rejoined as $new_id once it healed in $((SECONDS - before)) s"
}

# etcd on node k runs (its start may not be done: it waits for its peers) and says it
# restarts a member from the data it holds.
restarted_removed_member() {
    on "$1" journalctl --no-pager -o cat -b 0 -u etcd.service | grep -q "restarting.*member"
}

# Scenario 7: keys written; a bucket; the snapshot units set up on the members and run (the
# leader uploads one snapshot); every instance stopped and terminated; three new instances
# with the same bucket restore it and form one healthy cluster holding the keys.
total_loss() {
    local before=$SECONDS members=(1 2 4) k n objects uploaded=0 restored=0 states=""
    for n in 1 2 3; do
        etcdctl_on 1 put "/boot-test/key-$n" "value-$n" >/dev/null || fail "writing /boot-test/key-$n failed"
    done
    s3 PUT "$BUCKET" >/dev/null
    for k in "${members[@]}"; do
        setup_snapshots "$k"
        on "$k" systemctl daemon-reload
        on "$k" systemctl is-active --quiet etcd-discovery-snapshot.timer || on "$k" systemctl start etcd-discovery-snapshot.timer
    done
    for k in "${members[@]}"; do
        on "$k" systemctl start etcd-discovery-snapshot.service || fail "node $k: the snapshot unit failed"
        if journal_of "$k" etcd-discovery-snapshot.service | grep -q "uploaded the snapshot"; then
            uploaded=$((uploaded + 1))
        fi
    done
    [ "$uploaded" -eq 1 ] || fail "$uploaded members uploaded a snapshot, not exactly one (the leader)"
    objects=$(s3 GET "$BUCKET?list-type=2" | grep -o '<Key>[^<]*</Key>' | sed 's:</*Key>::g' || true)
    if [ "$(grep -c . <<<"$objects")" -ne 2 ] || [ "$(grep -c '\.sha256$' <<<"$objects")" -ne 1 ]; then
        fail "the bucket does not hold one snapshot and its .sha256: ${objects//$'\n'/ }"
    fi
    say "the leader uploaded one snapshot: ${objects//$'\n'/ }"

    for k in "${members[@]}"; do
        stop_node "$k"
        stop_imds "$k"
        aws autoscaling TerminateInstanceInAutoScalingGroup "InstanceId=${IDS[$k]}" ShouldDecrementDesiredCapacity=true >/dev/null
    done
    for k in "${members[@]}"; do
        n=$(aws ec2 DescribeInstances "InstanceId.1=${IDS[$k]}")
        grep -q '<name>terminated</name>' <<<"$n" || fail "moto does not hold ${IDS[$k]} as terminated: $n"
    done
    say "every instance stopped and terminated"

    for k in 5 6 7; do launch "$k"; done
    make_roots 5 6 7
    for k in 5 6 7; do
        setup_snapshots "$k"
        make_net "$k"
        start_imds "$k"
        boot "$k"
    done
    say "booting instances 5-7 with the bucket set: ${IDS[5]} ${IDS[6]} ${IDS[7]}"
    for k in 5 6 7; do check_cloud_init "$k"; done
    for k in 5 6 7; do wait_for "node $k: etcd running" 300 etcd_active "$k"; done
    for k in 5 6 7; do
        expect_cluster "$k" "$(ids_of 5 6 7)" 120
        no_default_cluster "$k"
        states+="$(env_value "$k" ETCD_INITIAL_CLUSTER_STATE) "
        # A local (serializable) read: this member's own data holds the keys.
        for n in 1 2 3; do
            [ "$(etcdctl_on "$k" get --consistency=s --print-value-only "/boot-test/key-$n")" = "value-$n" ] \
                || fail "node $k: /boot-test/key-$n is not value-$n"
        done
        if journal_of "$k" etcd-discovery.service | grep -q "restored s3://$BUCKET/"; then
            restored=$((restored + 1))
        fi
    done
    [ "$restored" -ge 1 ] || fail "no new instance says it restored the snapshot"
    say "scenario 7 passed: after a total loss, three new instances restored (restored on $restored; states: $states) one cluster holding the keys in $((SECONDS - before)) s"
}

static_checks() {
    local node=$1 root out score unit
    root=$(root_of "$node")
    mkdir -p "$root/root/cloud-init-files"
    cp tests/cloud-init/* "$root/root/cloud-init-files/"
    out=$(on "$node" systemd-analyze verify --man=no /etc/systemd/system/etcd-discovery.service \
        /etc/systemd/system/etcd-discovery-promote.service /etc/systemd/system/etcd-discovery-reconcile.service \
        /etc/systemd/system/etcd-discovery-reconcile.timer /etc/systemd/system/etcd-discovery-snapshot.service \
        /etc/systemd/system/etcd-discovery-snapshot.timer etcd.service 2>&1) || fail "systemd-analyze verify: $out"
    [ -z "$out" ] || fail "systemd-analyze verify warns: $out"
    # The proxy's units, verified under the names they have on a proxy node.
    local proxy=$root/root/proxy-units
    mkdir -p "$proxy"
    cp tests/cloud-init/etcd-gateway{.service,-restart.path,-restart.service} tests/cloud-init/etcd-discovery-refresh.timer "$proxy/"
    cp tests/cloud-init/etcd-discovery-proxy.service "$proxy/etcd-discovery.service"
    # Their own directory first on the unit path, so that they find each other (the master's
    # etcd-discovery.service is installed there).
    out=$(on "$node" env SYSTEMD_UNIT_PATH=/root/proxy-units: systemd-analyze verify --man=no \
        /root/proxy-units/etcd-discovery.service /root/proxy-units/etcd-gateway.service \
        /root/proxy-units/etcd-discovery-refresh.timer /root/proxy-units/etcd-gateway-restart.path \
        /root/proxy-units/etcd-gateway-restart.service 2>&1) || fail "systemd-analyze verify (proxy units): $out"
    [ -z "$out" ] || fail "systemd-analyze verify (proxy units) warns: $out"
    for unit in etcd-discovery.service etcd-discovery-promote.service etcd-discovery-reconcile.service etcd-discovery-snapshot.service; do
        score=$(on "$node" systemd-analyze security --no-pager "$unit" | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
        if [ -z "$score" ] || ! awk -v s="$score" 'BEGIN { exit !(s <= 3.0) }'; then
            fail "systemd-analyze security $unit: ${score:-no score}, over 3.0"
        fi
        say "systemd-analyze security $unit: $score"
    done
    for unit in master.yaml proxy.yaml master-al2023.yaml; do
        out=$(on "$node" cloud-init schema --config-file "/root/cloud-init-files/$unit" 2>&1) || fail "cloud-init schema $unit: $out"
        say "cloud-init schema $unit: ${out##*$'\n'}"
    done
    local scripts=(build.sh tests/boot/*.sh tests/cloud-init/*.sh tests/cloud-init/policy-rc.d)
    shellcheck "${scripts[@]}" || fail "shellcheck"
    say "shellcheck: ${scripts[*]}: clean"
}

main "$@"
