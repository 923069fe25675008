//! Warm pools (issue 22): an instance that boots in the pool changes nothing and writes no
//! file; once in service it joins; one reused on scale-in, whose data holds a member the
//! cluster removed, rejoins with that data moved aside. moto keeps no warm instances (its
//! warm pool only stores settings): the lab's AWS side is the group's list, which leaves a
//! warm instance out as AutoScaling does, and the IMDS stub's `target-lifecycle-state`.

use std::fs;
use std::time::Duration;

use super::lab::{self, EtcdFlags, Lab};
use super::{bootstrap, NO_TLS};

#[test]
fn warm_pool_instance_changes_nothing_then_joins_in_service() {
    let mut lab = Lab::new(80);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    let before = lab.members(2, NO_TLS);

    // Warmed:Stopped: its boot waits (AutoScaling stops it meanwhile); past --wait-timeout
    // it ends with 75, with no file and the cluster as it was.
    lab.launch_targeted(5, "Warmed:Stopped");
    let out = lab.discover(5, &["--wait-timeout=3s"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{log}");
    assert_eq!(
        log.matches("headed for the warm pool (Warmed:Stopped)")
            .count(),
        1,
        "said once: {log}"
    );
    assert!(log.contains("still in the warm pool"), "{log}");
    assert!(!lab.env_file(5).exists(), "no file that would start etcd");
    assert_eq!(lab.members(2, NO_TLS), before);

    // Warmed:Running: the run waits for service; taken out of the pool (attached to the
    // group, target InService), the same run joins.
    lab.set_target(5, "Warmed:Running");
    let mut running = lab.discover_spawn(5, &["--wait-timeout=60s"]);
    let log_path = lab.node_dir(5).join("discovery.log");
    lab::wait_until("the warm pool's line", Duration::from_secs(20), || {
        fs::read_to_string(&log_path)
            .unwrap_or_default()
            .contains("headed for the warm pool (Warmed:Running)")
    });
    assert!(running.try_wait().unwrap().is_none(), "still waiting");
    assert!(!lab.env_file(5).exists());
    assert_eq!(lab.members(2, NO_TLS), before);
    lab.attach("etcd", 5);
    lab.set_target(5, "InService");
    lab.finish_and_start(vec![(5, running)], &EtcdFlags::default());
    let log = fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("left the warm pool (InService)"), "{log}");
    assert!(log.contains("adding this instance"), "{log}");
    assert_eq!(lab.env_value(5, "ETCD_INITIAL_CLUSTER_STATE"), "existing");
    lab.wait_healthy(5, NO_TLS);
    lab.assert_cluster_is_the_nodes(2, NO_TLS);
}

#[test]
fn an_instance_reused_on_scale_in_rejoins_with_its_old_data_moved_aside() {
    // ReuseOnScaleIn: instance 4 is scaled in back to the pool, stopped with its disk; the
    // leader's reconcile removes its member. When it returns, its data directory holds that
    // removed member: etcd alone refuses to start from it. The tool moves it aside (kept,
    // never deleted) and joins as a new member.
    let mut lab = Lab::new(81);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    drop(lab.nodes.get_mut(&4).unwrap().etcd.take());
    lab.detach("etcd", 4);
    lab.set_target(4, "Warmed:Stopped");
    lab.wait_healthy(2, NO_TLS);
    let removed = [2, 3]
        .iter()
        .map(|k| lab.discover_ok(*k, &["reconcile"]))
        .filter(|log| log.contains("removing member"))
        .count();
    assert_eq!(removed, 1, "the leader removed the scaled-in member");
    assert_eq!(lab.members(2, NO_TLS).len(), 2);

    // Back in service, with the old data. etcd on its own refuses it.
    let env = lab.env_of(4);
    let mut refused = lab.spawn_etcd(4, env, &EtcdFlags::default());
    lab::wait_until(
        "etcd to refuse the removed member's data",
        Duration::from_secs(60),
        || refused.child.try_wait().unwrap().is_some(),
    );
    let etcd_log = fs::read_to_string(lab.node_dir(4).join("etcd.log")).unwrap();
    assert!(etcd_log.contains("removed"), "{etcd_log}");
    drop(refused);
    lab.attach("etcd", 4);
    lab.set_target(4, "InService");
    let data = lab.data_dir(4);
    assert!(data.join("member").is_dir());
    let log = lab.discover_ok(4, &[]);
    assert!(log.contains("a removed member's: moving it aside"), "{log}");
    assert!(log.contains("adding this instance"), "{log}");
    let aside: Vec<_> = fs::read_dir(&data)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("member.removed-"))
        .collect();
    assert_eq!(aside.len(), 1, "moved aside once: {aside:?}");
    assert!(
        data.join(&aside[0]).join("wal").is_dir(),
        "the old member's log is kept"
    );
    assert!(!data.join("member").exists());
    lab.start_and_check_cluster(4);
    assert!(data.join(&aside[0]).join("wal").is_dir());
}
