//! Issue 15, restore on total loss: keys written, `snapshot` run on every member (one object,
//! by the leader), every instance terminated; three new instances boot with
//! `--snapshot-url`: each that bootstraps `new` restores the same snapshot (one that finds
//! the seed's etcd answering joins it), and they form one healthy cluster that has the keys. Runs on the etcd under test (`LAB_ETCD_DIR`): `etcdutl` restores on 3.5,
//! Debian's `etcdctl` on 3.4 (it has no etcdutl). Network 127.0.150.0/24.

use super::bootstrap;
use super::lab::{self, EtcdFlags, Lab};
use super::snapshot::s3;

/// PATH as an instance has it: the etcd under test's tools first, then Debian's.
fn tools_path() -> String {
    match lab::etcd_dir() {
        Some(dir) => format!("{}:/usr/bin:/bin", dir.display()),
        None => "/usr/bin:/bin".into(),
    }
}

/// CreateBucket.
fn make_bucket(lab: &Lab, bucket: &str) {
    s3(lab, &["-X", "PUT"], bucket);
}

const RECORD: &str = "restore-bucket/etcd/prod/etcd-discovery-bootstrap";

#[test]
fn a_group_lost_whole_comes_back_from_its_snapshot() {
    let mut lab = Lab::new(150);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    for i in 0..20 {
        lab::etcdctl(
            &lab,
            2,
            &["put", &format!("key-{i}"), &format!("value-{i}")],
        );
    }
    let url = "--snapshot-url=s3://restore-bucket/etcd/prod";
    make_bucket(&lab, "restore-bucket");
    let logs: Vec<String> = [2, 3, 4]
        .iter()
        .map(|k| lab.discover_ok(*k, &["snapshot", url]))
        .collect();
    let uploaded: Vec<&String> = logs
        .iter()
        .filter(|l| l.contains("uploaded the snapshot"))
        .collect();
    assert_eq!(uploaded.len(), 1, "{logs:#?}");

    // Every instance is lost, with its disk; AutoScaling launches three new ones. The old
    // group had recorded its bootstrap in the bucket too: that record can never form again.
    let dead = lab.env_value(2, "ETCD_INITIAL_CLUSTER");
    let octets = "Content-Type: application/octet-stream";
    s3(
        &lab,
        &["-X", "PUT", "-H", octets, "--data-binary", &dead],
        RECORD,
    );
    for k in [2, 3, 4] {
        lab.terminate(k);
    }
    for k in [5, 6, 7] {
        lab.launch("etcd", k);
    }
    lab.tool_env.push(("PATH".into(), tools_path()));
    let running = [5, 6, 7]
        .iter()
        .map(|k| (*k, lab.discover_spawn(*k, &[url])))
        .collect();
    lab.finish_and_start(running, &EtcdFlags::default());
    // Each node that bootstrapped `new` restored, all the same object; a node that looked
    // after the seed's etcd answered joined it `existing` (never restoring: a member
    // answered) and gets the data from the cluster.
    let mut restored: Vec<String> = Vec::new();
    for k in [5, 6, 7] {
        let log = lab.discovery_log(k);
        let line = log
            .lines()
            .find(|l| l.contains("restored s3://restore-bucket/etcd/prod/etcd-snapshot-"));
        match lab.env_value(k, "ETCD_INITIAL_CLUSTER_STATE").as_str() {
            "new" => {
                let line = line.unwrap_or_else(|| panic!("node {k} did not restore:\n{log}"));
                let object = line.split("restored ").nth(1).unwrap().split(' ').next();
                restored.push(object.unwrap().to_string());
            }
            _ => assert!(line.is_none(), "node {k} joined, yet restored:\n{log}"),
        }
    }
    assert!(!restored.is_empty(), "the seed restores");
    // The seed replaced the dead record in moto's bucket, on condition of the ETag it read
    // (a wrong condition is refused, and the seed would never get past it).
    let seeded = [5, 6, 7]
        .iter()
        .map(|k| lab.discovery_log(*k))
        .filter(|log| {
            log.contains(
                "recorded the bootstrap at s3://restore-bucket/etcd/prod/etcd-discovery-bootstrap",
            )
        })
        .count();
    assert_eq!(seeded, 1);
    let new = [5, 6, 7]
        .iter()
        .find(|k| lab.env_value(**k, "ETCD_INITIAL_CLUSTER_STATE") == "new")
        .map(|k| lab.env_value(*k, "ETCD_INITIAL_CLUSTER"));
    let record = String::from_utf8(s3(&lab, &[], RECORD)).unwrap();
    assert_eq!(Some(record), new);
    assert_ne!(new, Some(dead));
    assert!(restored.iter().all(|r| *r == restored[0]), "{restored:?}");
    for k in [5, 6, 7] {
        lab.wait_healthy(k, &[]);
    }
    // One cluster of the three new instances, with the old keys, read through each.
    lab.assert_cluster_is_the_nodes(5, &[]);
    for k in [5, 6, 7] {
        let value = lab::etcdctl(&lab, k, &["get", "key-19", "--print-value-only"]);
        assert_eq!(value.trim(), "value-19", "through node {k}");
    }
    let keys = lab::etcdctl(&lab, 6, &["get", "key-", "--prefix", "--keys-only"]);
    assert_eq!(keys.lines().filter(|l| !l.is_empty()).count(), 20, "{keys}");
}
