//! Rule 20: a node whose etcd ran in a bootstrap that can never form (most of its instances
//! terminated, and no leader ever reached this member, as its write-ahead log shows) leaves
//! it. Networks 127.0.227-229.0/24.

use std::fs;
use std::path::Path;

use super::world::{instance_id, EtcdApi, EtcdFault, FakeMember, Imds, World};
use super::{assert_failure, assert_success, cluster, env_value, group, stderr};

fn varint(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn number(field: u64, value: u64, out: &mut Vec<u8>) {
    varint(field << 3, out);
    varint(value, out);
}

fn bytes(field: u64, value: &[u8], out: &mut Vec<u8>) {
    varint((field << 3) | 2, out);
    varint(value.len() as u64, out);
    out.extend_from_slice(value);
}

/// The write-ahead log etcd writes when it bootstraps the members `hosts` and no leader ever
/// reaches it: one configuration entry per member at term 1 (`raftpb.ConfChange` with the
/// member as JSON in its context, in a `raftpb.Entry`, in a `walpb.Record`), each record in a
/// frame padded to 8 bytes, and the preallocated zeros after (the shape of
/// fixtures/etcd/wal-3.4-bootstrap-only.wal).
fn bootstrap_log(net: u8, hosts: &[u8]) -> Vec<u8> {
    let mut log = Vec::new();
    for (index, k) in hosts.iter().enumerate() {
        let id = 0x1000 + u64::from(*k);
        let context = format!(
            r#"{{"id":{id},"peerURLs":["http://{}:2380"],"name":"{}"}}"#,
            World::ip(net, *k),
            instance_id(*k)
        );
        let mut change = Vec::new();
        number(1, index as u64, &mut change);
        number(3, id, &mut change);
        bytes(4, context.as_bytes(), &mut change);
        let mut entry = Vec::new();
        number(1, 1, &mut entry); // EntryConfChange
        number(2, 1, &mut entry); // term 1
        number(3, index as u64 + 1, &mut entry);
        bytes(4, &change, &mut entry);
        let mut record = Vec::new();
        number(1, 2, &mut record); // entryType
        bytes(3, &entry, &mut record);
        let padding = (8 - record.len() % 8) % 8;
        let mut frame = record.len() as u64;
        if padding > 0 {
            frame |= (0x80 | padding as u64) << 56;
        }
        log.extend_from_slice(&frame.to_le_bytes());
        log.extend_from_slice(&record);
        log.resize(log.len() + padding, 0);
    }
    log.resize(log.len() + 4096, 0);
    log
}

fn with_log(data: &Path, log: &[u8]) {
    let wal = data.join("member/wal");
    fs::create_dir_all(&wal).unwrap();
    fs::write(wal.join("0000000000000000-0000000000000000.wal"), log).unwrap();
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// i-3 of the group {3, 4, 5}, whose etcd ran in the bootstrap of {1, 2, 3} (its file and its
/// member's log say so, no leader ever reached it); etcd answers on `etcd_on`. Returns the
/// world and the data directory.
fn ran_in_the_bootstrap_of_1_2_3(
    net: u8,
    etcd_on: Option<(&[u8], EtcdApi)>,
) -> (World, std::path::PathBuf) {
    let w = World::new(
        net,
        3,
        vec![group("etcd", &[3, 4, 5])],
        etcd_on,
        vec![],
        Imds::v2(),
    );
    let data = w.dir.join("data");
    with_log(&data, &bootstrap_log(net, &[1, 2, 3]));
    fs::write(
        w.env_file(),
        format!(
            "ETCD_NAME={}\nETCD_INITIAL_CLUSTER_STATE=new\nETCD_INITIAL_CLUSTER={}\n",
            instance_id(3),
            cluster(net, &[1, 2, 3])
        ),
    )
    .unwrap();
    (w, data)
}

#[test]
fn a_node_that_leaves_a_dead_bootstrap_never_waits_for_it_after_a_failed_join() {
    // i-3's etcd ran in the bootstrap of {1, 2, 3}; EC2 terminated 1 and 2 before it formed,
    // and the group bootstrapped {4, 5}, which runs. i-3 leaves the dead bootstrap and joins,
    // but its member add never answers. Its data is aside by then: the file must no longer
    // name it a member of {1, 2, 3}, or the next run would find a member whose data is gone
    // and wait for a person (rule 11).
    let net = 227;
    let (w, data) = ran_in_the_bootstrap_of_1_2_3(net, Some((&[4, 5], EtcdApi::V3)));
    *w.members.lock().unwrap() = vec![w.member(4, true), w.member(5, true)];
    *w.aws_faults.terminated.lock().unwrap() = vec![1, 2];
    let data_dir = format!("--etcd-data-dir={}", data.display());
    *w.etcd_fault.lock().unwrap() = Some(EtcdFault::AddHangs);
    let out = w.run(&[&data_dir, "--timeout=2s"]);
    assert_failure(&out, 75, "member add");
    assert!(
        stderr(&out).contains("EC2 still has 1 of the 3 instances"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("can never form"), "{}", stderr(&out));
    let aside = entries(&data);
    assert!(
        aside.len() == 1 && aside[0].starts_with("member.unformed-"),
        "{aside:?}"
    );
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert!(
        text.contains("left a bootstrap that can never form") && !text.contains("ETCD_NAME"),
        "{text}"
    );

    *w.etcd_fault.lock().unwrap() = None;
    let out = w.run(&[&data_dir]);
    assert_success(&out);
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(env_value(&text, "ETCD_INITIAL_CLUSTER_STATE"), "existing");
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER"),
        cluster(net, &[3, 4, 5])
    );
}

#[test]
fn a_node_stays_in_a_bootstrap_whose_instances_are_only_stopped() {
    // i-3's etcd ran in the bootstrap of {1, 2, 3}, and i-1 and i-2 left the group before it
    // formed; nobody answers. EC2 still has them (stopped, as in a warm pool that reuses
    // instances: they may hold that bootstrap formed, and return with it): nothing moves,
    // etcd restarts from its data.
    let (w, data) = ran_in_the_bootstrap_of_1_2_3(228, None);
    let out = w.run(&[&format!("--etcd-data-dir={}", data.display())]);
    assert!(
        stderr(&out).contains("EC2 still has 3 of the 3 instances"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("etcd restarts from it"),
        "{}",
        stderr(&out)
    );
    assert_eq!(entries(&data), ["member"]);
}

#[test]
fn a_node_that_leaves_a_dead_bootstrap_asks_the_version_as_a_node_without_data() {
    // Rule 20 decides as a node without member data, so its run asks what such a node asks:
    // the cluster's version (rule 18). The group's cluster {4, 5} formed moments ago, lists
    // i-3 as a member by its name that never started (the fake's IDs are not etcd's, so they
    // do not prove it a late initial member: `existing`), and has not decided its version: etcd would refuse an `existing` start without data
    // ("incompatible with current running cluster"), so it waits (simulation, seed 1,
    // schedule 1215: the run asked nothing, its data being there when it looked, and wrote
    // `existing`).
    let net = 229;
    let (w, data) = ran_in_the_bootstrap_of_1_2_3(net, Some((&[4, 5], EtcdApi::V3)));
    let initial_never_started = FakeMember {
        name: instance_id(3),
        ..w.member(3, false)
    };
    *w.members.lock().unwrap() = vec![initial_never_started, w.member(4, true), w.member(5, true)];
    *w.aws_faults.terminated.lock().unwrap() = vec![1, 2];
    *w.etcd_fault.lock().unwrap() = Some(EtcdFault::VersionNotDecided(1000));
    let data_dir = format!("--etcd-data-dir={}", data.display());
    let out = w.run(&[&data_dir, "--wait-timeout=2s"]);
    assert_failure(&out, 75, "version");
    assert!(
        w.etcd_requests().iter().any(|r| r.path == "/version"),
        "the version was asked"
    );
    assert!(w.etcd_changes().is_empty(), "{:?}", w.etcd_changes());
    assert_eq!(entries(&data), ["member"], "nothing moved while it waits");

    // Decided a moment later: it leaves the dead bootstrap and starts as that member.
    *w.etcd_fault.lock().unwrap() = None;
    let out = w.run(&[&data_dir]);
    assert_success(&out);
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(env_value(&text, "ETCD_INITIAL_CLUSTER_STATE"), "existing");
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER"),
        cluster(net, &[3, 4, 5])
    );
}
