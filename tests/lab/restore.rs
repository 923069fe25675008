//! Issue 15, restore on total loss: keys written, `snapshot` run on every member (one object,
//! by the leader), every instance terminated; three new instances boot with
//! `--snapshot-url`: each that bootstraps `new` restores the same snapshot (one that finds
//! the seed's etcd answering joins it), and they form one healthy cluster that has the keys. Runs on the etcd under test (`LAB_ETCD_DIR`): `etcdutl` restores on 3.5,
//! Debian's `etcdctl` on 3.4 (it has no etcdutl). Network 127.0.150.0/24; the late initial
//! member of such a bootstrap, 127.0.87.0/24.

use std::time::Duration;

use super::bootstrap;
use super::client::request;
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

/// Nodes 2, 3 and 4 form a cluster holding key-0 to key-19, and the bucket is made: the
/// `--snapshot-url` flag.
fn a_cluster_with_keys_and_a_bucket(lab: &mut Lab) -> &'static str {
    bootstrap(lab, &[2, 3, 4], &EtcdFlags::default());
    for i in 0..20 {
        lab::etcdctl(lab, 2, &["put", &format!("key-{i}"), &format!("value-{i}")]);
    }
    make_bucket(lab, "restore-bucket");
    "--snapshot-url=s3://restore-bucket/etcd/prod"
}

/// Every instance of the group (2, 3 and 4) is lost, with its disk. The old group had recorded
/// its bootstrap in the bucket too: that record, returned, can never form again.
fn lose_the_group_whole(lab: &mut Lab) -> String {
    let dead = lab.env_value(2, "ETCD_INITIAL_CLUSTER");
    let octets = "Content-Type: application/octet-stream";
    s3(
        lab,
        &["-X", "PUT", "-H", octets, "--data-binary", &dead],
        RECORD,
    );
    for k in [2, 3, 4] {
        lab.terminate(k);
    }
    dead
}

#[test]
fn a_group_lost_whole_comes_back_from_its_snapshot() {
    let mut lab = Lab::new(150);
    let url = a_cluster_with_keys_and_a_bucket(&mut lab);
    let logs: Vec<String> = [2, 3, 4]
        .iter()
        .map(|k| lab.discover_ok(*k, &["snapshot", url]))
        .collect();
    let uploaded: Vec<&String> = logs
        .iter()
        .filter(|l| l.contains("uploaded the snapshot"))
        .collect();
    assert_eq!(uploaded.len(), 1, "{logs:#?}");

    // AutoScaling launches three new instances for the group lost whole.
    let dead = lose_the_group_whole(&mut lab);
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

/// The object a tool's log says it restored (`restored s3://BUCKET/KEY into DIR`), as
/// `BUCKET/KEY`.
fn restored_object(log: &str) -> Option<String> {
    let rest = log.lines().find_map(|l| l.split("restored s3://").nth(1))?;
    rest.split(' ').next().map(str::to_string)
}

/// The snapshots in the bucket under `etcd/prod/`, as `BUCKET/KEY`, oldest first.
fn snapshots(lab: &Lab) -> Vec<String> {
    let listing = s3(lab, &[], "restore-bucket?list-type=2&prefix=etcd/prod/");
    let listing = String::from_utf8(listing).unwrap();
    let mut keys: Vec<String> = listing
        .split("<Key>")
        .skip(1)
        .filter_map(|s| s.split("</Key>").next())
        .filter(|k| k.ends_with(".db"))
        .map(|k| format!("restore-bucket/{k}"))
        .collect();
    keys.sort();
    keys
}

/// The record's `x-amz-meta-restores` (a HEAD of it), as `BUCKET/KEY`.
fn record_restores(lab: &Lab) -> Option<String> {
    let head = String::from_utf8(s3(lab, &["-I"], RECORD)).unwrap();
    head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("x-amz-meta-restores")
            .then(|| format!("restore-bucket/{}", value.trim()))
    })
}

/// Rule 18 with a bucket: 8 is an initial member of a bootstrap from snapshot S1 that never
/// started, and looks only once the cluster has decided its version and a newer snapshot S2
/// is in the bucket. It used to write `existing`: etcd started so, without data, asks every
/// peer's version with no time limit, and beside another such start (a second late member,
/// a join) each holds its port open while waiting on the other, for ever (3.4 and 3.5). It
/// starts `new`, which asks nobody, and so needs the data its bootstrap began with: the
/// leader sends it the log since then, which is right only on S1. S2 already holds part of
/// that log; applied to it again, 8 would hold other data than its peers under the same
/// revisions. The bucket's record says which snapshot the bootstrap restored.
#[test]
fn a_late_initial_member_restores_the_snapshot_its_bootstrap_restored() {
    let mut lab = Lab::new(87);
    let url = a_cluster_with_keys_and_a_bucket(&mut lab);
    for k in [2, 3, 4] {
        lab.discover_ok(k, &["snapshot", url]);
    }
    let first = snapshots(&lab);
    let [s1] = &first[..] else {
        panic!("one snapshot: {first:?}");
    };

    // 8 is in the group when the seed (5, launched first, alone in its second) decides: the
    // initial cluster names it.
    lose_the_group_whole(&mut lab);
    lab.launch("etcd", 5);
    std::thread::sleep(Duration::from_millis(1100));
    for k in [6, 7, 8] {
        lab.launch("etcd", k);
    }
    lab.tool_env.push(("PATH".into(), tools_path()));
    // 5, 6 and 7 decide before any etcd runs: the seed, and two taking part through its
    // record. Each restores what the record says.
    let running = [5, 6, 7]
        .iter()
        .map(|k| (*k, lab.discover_spawn(*k, &[url])))
        .collect();
    lab.finish_each(running, |_, _| {});
    let seeds: Vec<String> = [5, 6, 7]
        .iter()
        .map(|k| lab.discovery_log(*k))
        .filter(|log| log.contains("recorded the bootstrap at s3://restore-bucket/etcd/prod/"))
        .collect();
    let [seed] = &seeds[..] else {
        panic!("one seed recorded: {seeds:#?}");
    };
    for k in [5, 6, 7] {
        let log = lab.discovery_log(k);
        let state = lab.env_value(k, "ETCD_INITIAL_CLUSTER_STATE");
        assert_eq!(state, "new", "node {k}:\n{log}");
        assert_eq!(restored_object(&log).as_ref(), Some(s1), "node {k}:\n{log}");
    }
    for k in [5, 6, 7] {
        lab.start_etcd(k, &EtcdFlags::default());
    }
    for k in [5, 6, 7] {
        lab.wait_healthy(k, &[]);
    }

    // The cluster moves on past S1: a write, its version decided, and a newer snapshot.
    lab::etcdctl(&lab, 5, &["put", "after", "2"]);
    let version = format!("{}/version", lab.env_value(5, "ETCD_ADVERTISE_CLIENT_URLS"));
    lab::wait_until(
        "the cluster to decide its version",
        Duration::from_secs(30),
        || request("GET", &version, &[], "").is_ok_and(|(_, body)| !body.contains("not_decided")),
    );
    let logs: Vec<String> = [5, 6, 7]
        .iter()
        .map(|k| lab.discover_ok(*k, &["snapshot", url, "--wait-timeout=20s"]))
        .collect();
    let uploaded = logs
        .iter()
        .filter(|l| l.contains("uploaded the snapshot"))
        .count();
    assert_eq!(uploaded, 1, "{logs:#?}");
    let both = snapshots(&lab);
    assert_eq!(both.len(), 2, "{both:?}");
    let s2 = both.iter().find(|k| *k != s1).unwrap();

    let log = lab.discover_ok(8, &[url, "--wait-timeout=20s"]);
    assert_eq!(
        lab.env_value(8, "ETCD_INITIAL_CLUSTER_STATE"),
        "new",
        "{log}"
    );
    assert!(log.contains("taking part in its bootstrap"), "{log}");
    // S1 is what the seed chose and recorded beside the snapshots, and what 8 restored.
    let chose = format!("(it restores: {})", &s1["restore-bucket/".len()..]);
    assert!(seed.contains(&chose), "{seed}");
    assert_eq!(record_restores(&lab).as_ref(), Some(s1));
    assert_eq!(
        restored_object(&log).as_ref(),
        Some(s1),
        "the bootstrap's snapshot, not the newest ({s2}):\n{log}"
    );
    assert_eq!(
        lab.env_value(8, "ETCD_INITIAL_CLUSTER"),
        lab.env_value(5, "ETCD_INITIAL_CLUSTER")
    );
    lab.start_etcd(8, &EtcdFlags::default());
    lab.wait_healthy(8, &[]);
    lab.assert_cluster_is_the_nodes(5, &[]);
    // Read from 8's own data: the bootstrap's keys and the write since.
    for (key, value) in [("key-19", "value-19"), ("after", "2")] {
        let got = lab::etcdctl(
            &lab,
            8,
            &["get", "--consistency=s", "--print-value-only", key],
        );
        assert_eq!(got.trim(), value, "{key} on 8");
    }
}
