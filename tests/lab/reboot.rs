//! The reboot fast path (issue 16): a member whose previous file names it, and whose peers
//! list it, reboots without a single AWS call; anything else takes the full path. "No AWS
//! call" is proved by pointing every AWS endpoint at an address where nothing listens: one
//! call would fail the run.

use std::fs;
use std::path::PathBuf;
use std::process::Output;

use super::lab::{self, EtcdFlags, Lab};
use super::{bootstrap, NO_TLS};

/// An AWS endpoint that refuses every connection (nothing listens on the lab's .250).
fn no_aws(lab: &Lab) -> String {
    format!("http://{}:9", lab.ip(250))
}

/// Runs the tool for k with AWS out of reach; asserts it succeeded without asking AWS.
fn reboot_without_aws(lab: &Lab, k: u8, extra: &[&str]) -> String {
    let out: Output = lab.discover_with_env(k, extra, &[("AWS_ENDPOINT_URL", &no_aws(lab))]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "node {k}: the reboot needed AWS ({:?}):\n{log}",
        out.status.code()
    );
    assert!(log.contains("no AWS call"), "{log}");
    assert!(!log.contains("asking AWS"), "{log}");
    log
}

fn stop_etcd(lab: &mut Lab, k: u8) {
    lab.nodes.get_mut(&k).unwrap().etcd = None;
}

/// A healthy member reboots, then two of three members reboot while the third has no
/// leader: each decides from its peers, with AWS unreachable, and the cluster comes back.
fn reboots_without_aws(net: u8, flags: &EtcdFlags) {
    let mut lab = Lab::new(net);
    bootstrap(&mut lab, &[2, 3, 4], flags);
    let before = lab.members(2, NO_TLS);

    // A plain reboot of a member whose peers have a leader.
    stop_etcd(&mut lab, 3);
    let file = fs::read_to_string(lab.env_file(3)).unwrap();
    let log = reboot_without_aws(&lab, 3, &[]);
    assert!(log.contains("nothing to change (reboot"), "{log}");
    assert_eq!(lab.env_value(3, "ETCD_INITIAL_CLUSTER_STATE"), "existing");
    if file.contains("ETCD_INITIAL_CLUSTER_STATE=existing") {
        assert!(
            log.contains("up to date"),
            "an unchanged reboot leaves the file: {log}"
        );
    }
    lab.start_etcd(3, flags);
    lab.wait_healthy(3, NO_TLS);
    assert_eq!(lab.members(2, NO_TLS), before);

    // A power cut: 2 and 3 are down, 4 alone has no leader and serves no client; its peer
    // port still lists them, so each restarts (rule 13), and the quorum comes back.
    stop_etcd(&mut lab, 2);
    stop_etcd(&mut lab, 3);
    for k in [2, 3] {
        let log = reboot_without_aws(&lab, k, &[]);
        assert!(log.contains("nothing to change (reboot"), "{log}");
    }
    for k in [2, 3] {
        lab.start_etcd(k, flags);
    }
    for k in [2, 3, 4] {
        lab.wait_healthy(k, NO_TLS);
    }
    assert_eq!(lab.members(4, NO_TLS), before);
}

#[test]
fn a_reboot_makes_no_aws_call() {
    reboots_without_aws(70, &EtcdFlags::default());
}

#[test]
fn a_reboot_makes_no_aws_call_on_the_next_etcd() {
    let dir = std::env::var_os("LAB_ETCD_NEXT_DIR")
        .map(PathBuf::from)
        .expect("LAB_ETCD_NEXT_DIR must name etcd 3.5's directory (./build.sh test sets it)");
    reboots_without_aws(
        71,
        &EtcdFlags {
            bin_dir: Some(dir),
            ..Default::default()
        },
    );
}

/// Rule 19 on real etcd: a cluster bootstrapped by one of the seeds (no record in the group's
/// tags) whose tool names no data directory. A power cut takes every member down at once, and
/// i-5 replaces i-4 meanwhile: nobody answers. The members used to go through the seed logic:
/// here the others waited for the group's seed, which decided a new bootstrap that a new
/// instance would take part in beside the old cluster (the simulation's two clusters). Now 2
/// and 3 write the file they had and restart from their data, i-5 waits for the cluster,
/// then joins it, and the key written before the cut is read through i-5. (With the old
/// code, i-2 waited out its --wait-timeout for the seed: checked.)
#[test]
fn a_power_cut_without_a_named_data_directory_restarts_the_cluster_it_had() {
    let mut lab = Lab::new(76);
    lab.data_dir_named = false;
    let flags = EtcdFlags::default();
    bootstrap(&mut lab, &[2, 3, 4], &flags);
    lab::etcdctl(&lab, 2, &["put", "before-the-cut", "kept"]);
    lab.moto.call(
        "autoscaling",
        "DeleteTags",
        &[
            ("Tags.member.1.ResourceId", "etcd"),
            ("Tags.member.1.ResourceType", "auto-scaling-group"),
            ("Tags.member.1.Key", "etcd-discovery:initial-cluster"),
        ],
    );
    for k in [2, 3] {
        stop_etcd(&mut lab, k);
    }
    lab.terminate(4);
    lab.launch("etcd", 5);
    let files: Vec<String> = [2, 3]
        .iter()
        .map(|k| fs::read_to_string(lab.env_file(*k)).unwrap())
        .collect();
    for (k, file) in [2, 3].into_iter().zip(&files) {
        let log = lab.discover_ok(k, &["--wait-timeout=5s"]);
        assert!(log.contains("etcd starts as that file said"), "{log}");
        assert_eq!(&fs::read_to_string(lab.env_file(k)).unwrap(), file);
    }
    let out = lab.discover(5, &["--wait-timeout=1s"]);
    assert_eq!(
        out.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        lab.read_env(5).is_none(),
        "i-5 wrote a file while nobody answered"
    );
    let groups = lab.moto.call(
        "autoscaling",
        "DescribeAutoScalingGroups",
        &[("AutoScalingGroupNames.member.1", "etcd")],
    );
    assert!(
        !groups.contains("etcd-discovery:initial-cluster"),
        "{groups}"
    );
    for k in [2, 3] {
        lab.start_etcd(k, &flags);
    }
    for k in [2, 3] {
        lab.wait_healthy(k, NO_TLS);
    }
    let log = lab.discover_ok(5, &[]);
    assert!(log.contains("joining the existing cluster"), "{log}");
    lab.start_and_check_cluster(5);
    assert_eq!(
        lab::etcdctl(&lab, 5, &["get", "--print-value-only", "before-the-cut"]).trim(),
        "kept"
    );
}

#[test]
fn another_instances_file_or_lost_data_take_the_full_path() {
    let mut lab = Lab::new(72);
    let flags = EtcdFlags::default();
    bootstrap(&mut lab, &[2, 3, 4], &flags);

    // An image baked from instance 2 carries its file: instance 5 is not member i-2.
    lab.launch("etcd", 5);
    fs::create_dir_all(lab.node_dir(5)).unwrap();
    fs::copy(lab.env_file(2), lab.env_file(5)).unwrap();
    let log = lab.discover_ok(5, &[]);
    assert!(log.contains("was written for"), "{log}");
    assert!(log.contains("asking AWS"), "{log}");
    assert!(log.contains("adding this instance"), "{log}");
    let me = lab.nodes[&5].instance_id.clone();
    assert_eq!(lab.env_value(5, "ETCD_NAME"), me);
    lab.start_etcd(5, &flags);
    lab.wait_healthy(5, NO_TLS);

    // Instance 3 reboots with its data directory gone: rule 5 needs the group.
    stop_etcd(&mut lab, 3);
    fs::remove_dir_all(lab.data_dir(3)).unwrap();
    let log = lab.discover_ok(3, &[]);
    assert!(log.contains("holds no member data; asking AWS"), "{log}");
    assert!(log.contains("re-adding"), "{log}");
    lab.start_etcd(3, &flags);
    lab.wait_healthy(3, NO_TLS);
    lab.assert_cluster_is_the_nodes(2, NO_TLS);
}

#[test]
fn a_proxy_reboot_reads_the_endpoints_from_etcd() {
    let mut lab = Lab::new(73);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    lab.create_group("consumers", "consumers");
    lab.launch("consumers", 9);
    let args = ["-proxy-mode", "-scaling-group-name=etcd"];
    let log = lab.discover_ok(9, &args);
    assert!(!log.contains("no AWS call"), "a first boot asks AWS: {log}");
    let first = fs::read_to_string(lab.env_file(9)).unwrap();

    // The masters answer: etcd's own member list, no AWS call, the same file.
    let log = reboot_without_aws(&lab, 9, &args);
    assert!(log.contains("proxy for the 3 members"), "{log}");
    assert_eq!(fs::read_to_string(lab.env_file(9)).unwrap(), first);

    // None answers: AWS names the masters (here unreachable, so the run fails for want of
    // AWS, not for want of a file).
    for k in [2, 3, 4] {
        stop_etcd(&mut lab, k);
    }
    let out = lab.discover_with_env(
        9,
        &[&args[..], &["--boot-wait=1s", "--timeout=5s"]].concat(),
        &[("AWS_ENDPOINT_URL", &no_aws(&lab))],
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("endpoints answered"), "{log}");
    assert!(log.contains("asking AWS"), "{log}");
}

#[test]
fn a_herd_of_proxies_boots_through_throttling_and_reboots_without_aws() {
    // 30 proxy instances at once, a fifth of AWS calls throttled: every one ends with the
    // masters' endpoints; then all reboot, and none asks AWS (the bench runs 200).
    let mut lab = Lab::new(74);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    let herd = super::herd::herd(&mut lab, 10, 30, 20, 16);
    assert!(herd.boot.aws_calls >= 60, "{herd:?}");
    assert_eq!(herd.reboot.aws_calls, 0, "{herd:?}");
}
