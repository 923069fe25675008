//! Issue 5's rules against real etcd: every boot is safe when the happy path breaks.
//! (The replacement while one member is down, with its instance gone, is the lab's
//! `bootstrap_reboot_replace_on_the_v3_gateway`: the dead member is removed before the add.)

use std::fs;
use std::process::Command;
use std::time::Duration;

use super::client::request;
use super::lab::{self, EtcdFlags, Lab, Trickle};
use super::{bootstrap, NO_TLS};

#[test]
fn concurrent_bootstrap_forms_one_cluster() {
    // Rule 1: AutoScaling launches three instances at once (desired 3); their tools start
    // together, a moment apart. Every node must compute the same initial cluster.
    let mut lab = Lab::new(41);
    let hosts = lab.create_group_launching("etcd", 3);
    assert_eq!(hosts.len(), 3);
    let running: Vec<_> = hosts
        .iter()
        .map(|k| {
            std::thread::sleep(std::time::Duration::from_millis(300));
            (*k, lab.discover_spawn(*k, &[]))
        })
        .collect();
    lab.finish_and_start(running, &EtcdFlags::default());
    let clusters: Vec<String> = hosts
        .iter()
        .map(|k| lab.env_value(*k, "ETCD_INITIAL_CLUSTER"))
        .collect();
    assert!(clusters.iter().all(|c| c == &clusters[0]), "{clusters:#?}");
    for k in &hosts {
        lab.wait_healthy(*k, NO_TLS);
    }
    lab.assert_cluster_is_the_nodes(hosts[0], NO_TLS);
}

#[test]
fn two_concurrent_replacements_both_join() {
    // Rule 2: two of five instances are replaced at the same moment. Both remove the dead
    // (the second finds them gone), etcd refuses the second add until the first new member
    // starts, and neither adds a duplicate.
    let mut lab = Lab::new(42);
    bootstrap(&mut lab, &[2, 3, 4, 5, 6], &EtcdFlags::default());
    lab.terminate(5);
    lab.terminate(6);
    lab.launch("etcd", 7);
    lab.launch("etcd", 8);
    let running = vec![
        (7, lab.discover_spawn(7, &[])),
        (8, lab.discover_spawn(8, &[])),
    ];
    lab.finish_and_start(running, &EtcdFlags::default());
    for k in [7, 8] {
        lab.wait_healthy(k, NO_TLS);
    }
    lab.assert_cluster_is_the_nodes(2, NO_TLS);
}

#[test]
fn scale_up_three_to_six_at_once() {
    // Three new nodes boot together; each one's initial cluster must match etcd's own list,
    // or its etcd refuses to start ("member count is unequal").
    let mut lab = Lab::new(43);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    for k in [5, 6, 7] {
        lab.launch("etcd", k);
    }
    let running = [5, 6, 7]
        .iter()
        .map(|k| (*k, lab.discover_spawn(*k, &[])))
        .collect();
    lab.finish_and_start(running, &EtcdFlags::default());
    for k in [5, 6, 7] {
        lab.wait_healthy(k, NO_TLS);
    }
    lab.assert_cluster_is_the_nodes(2, NO_TLS);
    assert_eq!(lab.members(2, NO_TLS).len(), 6);
}

#[test]
fn a_join_whose_etcd_never_started_is_reused() {
    // Rule 4: the first boot added this node, then etcd failed to start. The next boot must
    // reuse that entry, not add a second one.
    let mut lab = Lab::new(44);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    lab.launch("etcd", 5);
    lab.discover_ok(5, &[]);
    let log = lab.discover_ok(5, &[]);
    assert!(
        log.contains("reusing the entry an earlier run added"),
        "{log}"
    );
    let unstarted: Vec<_> = lab
        .members(2, NO_TLS)
        .into_iter()
        .filter(|m| !m.2)
        .collect();
    assert_eq!(unstarted.len(), 1, "one entry for node 5: {unstarted:?}");
    lab.start_and_check_cluster(5);
}

#[test]
fn an_ip_reused_by_a_new_instance() {
    // Rule 4: a member once ran at 127.0.45.9 under an instance that is long gone; a new
    // instance gets that address. The old member, under its old name, is removed before the
    // new one is added. (moto never frees a terminated instance's address, so the old member
    // is made through etcd directly, as the earlier instance's boot would have.)
    let mut lab = Lab::new(45);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    let old_name = "i-0000000000000old9";
    let endpoint = lab.env_value(2, "ETCD_ADVERTISE_CLIENT_URLS");
    // etcd refuses a member add for a few seconds after members connect: retry, bounded.
    let mut added = None;
    lab::wait_until(
        "etcdctl member add to be accepted",
        Duration::from_secs(30),
        || {
            let out = lab::etcd_tool("etcdctl")
                .env("ETCDCTL_API", "3")
                .args([
                    "--endpoints",
                    &endpoint,
                    "member",
                    "add",
                    old_name,
                    "--peer-urls=http://127.0.45.9:2380",
                ])
                .output()
                .unwrap();
            let ok = out.status.success();
            added = Some(out);
            ok
        },
    );
    let added = added.unwrap();
    let mut env: Vec<(String, String)> = String::from_utf8_lossy(&added.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .filter(|(k, _)| k.starts_with("ETCD_"))
        .collect();
    env.push((
        "ETCD_LISTEN_PEER_URLS".into(),
        "http://127.0.45.9:2380".into(),
    ));
    env.push((
        "ETCD_LISTEN_CLIENT_URLS".into(),
        "http://127.0.45.9:2379".into(),
    ));
    env.push((
        "ETCD_ADVERTISE_CLIENT_URLS".into(),
        "http://127.0.45.9:2379".into(),
    ));
    let old_etcd = lab.spawn_etcd(9, env, &EtcdFlags::default());
    lab::wait_until("the old member to start", Duration::from_secs(30), || {
        lab.members(2, NO_TLS).iter().all(|m| m.2)
    });
    drop(old_etcd);
    fs::remove_dir_all(lab.node_dir(9)).unwrap();

    lab.launch("etcd", 9);
    let log = lab.discover_ok(9, &["-v=2"]);
    println!("{log}");
    assert!(
        log.contains(&format!(
            "holds this instance's address but is named {old_name}"
        )),
        "{log}"
    );
    lab.start_and_check_cluster(9);
}

#[test]
fn reboot_with_a_wiped_data_directory_rejoins() {
    // Rule 5: node 3 reboots with an empty data directory (instance store lost). It cannot
    // come back under its old ID: its member is removed and added again.
    let mut lab = Lab::new(46);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    let log = lab.discover_ok(3, &[]);
    assert!(
        log.contains("nothing to change"),
        "a plain reboot first: {log}"
    );
    lab.nodes.get_mut(&3).unwrap().etcd.take();
    let data = lab.data_dir(3);
    fs::remove_dir_all(&data).unwrap();
    fs::create_dir_all(&data).unwrap();
    let log = lab.discover_ok(3, &[]);
    assert!(log.contains("data directory has no member data"), "{log}");
    lab.start_and_check_cluster(3);
}

#[test]
fn reboot_with_a_deleted_data_directory_rejoins() {
    // Regression: a named data directory that did not exist at all (a new volume) was read
    // as intact; node 3 rejoined as its old member with no data and its etcd could not start.
    let mut lab = Lab::new(53);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    lab.nodes.get_mut(&3).unwrap().etcd.take();
    fs::remove_dir_all(lab.data_dir(3)).unwrap();
    let log = lab.discover_ok(3, &[]);
    assert!(log.contains("data directory has no member data"), "{log}");
    lab.start_and_check_cluster(3);
}

#[test]
fn a_bootstrap_member_wiped_while_its_peers_are_down_waits_then_rejoins() {
    // Simulation K1/K3 (issue 21): until its first reboot the seed's file still says `new`.
    // Its data is lost while its peers' etcds are down: nobody answers, and it bootstrapped a
    // second cluster under the first one's name. Now it waits, its file untouched, and
    // rejoins (rule 5) once its peers are back.
    let mut lab = Lab::new(57);
    let nodes = [2, 3, 4];
    bootstrap(&mut lab, &nodes, &EtcdFlags::default());
    // The seed's file says `new`, and so may a node that took part in its bootstrap.
    let wiped = *nodes
        .iter()
        .find(|k| lab.env_value(**k, "ETCD_INITIAL_CLUSTER_STATE") == "new")
        .expect("the seed wrote `new`");
    let peers: Vec<u8> = nodes.into_iter().filter(|k| *k != wiped).collect();
    for k in nodes {
        lab.nodes.get_mut(&k).unwrap().etcd.take();
    }
    fs::remove_dir_all(lab.data_dir(wiped)).unwrap();
    let before = fs::read(lab.env_file(wiped)).unwrap();
    let out = lab.discover(wiped, &["--wait-timeout=3s"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(err.contains("delete the env file"), "{err}");
    assert_eq!(
        fs::read(lab.env_file(wiped)).unwrap(),
        before,
        "the file is left as it was"
    );
    for k in &peers {
        lab.start_etcd(*k, &EtcdFlags::default());
    }
    for k in &peers {
        lab.wait_healthy(*k, NO_TLS);
    }
    let log = lab.discover_ok(wiped, &[]);
    assert!(log.contains("data directory has no member data"), "{log}");
    lab.start_and_check_cluster(wiped);
}

#[test]
fn a_seed_rebooted_before_its_etcd_started_resumes_its_bootstrap() {
    // The other side of the same rule: the seed wrote its `new` file and the instance went
    // down before etcd started. The data directory is as the file's fingerprint line says, so
    // etcd never ran from the file and nothing was lost: the next boot resumes the bootstrap,
    // and the cluster forms.
    let mut lab = Lab::new(58);
    let nodes = [2, 3, 4];
    lab.create_group("etcd", "etcd-masters");
    for k in nodes {
        lab.launch("etcd", k);
    }
    // Nobody runs etcd: only the seed (launched first) decides; the others wait, or, once
    // its record is in the group's tags, take part in it (rule 14).
    let seeds: Vec<u8> = nodes
        .into_iter()
        .filter(|k| {
            let out = lab.discover(*k, &["--wait-timeout=1s"]);
            String::from_utf8_lossy(&out.stderr).contains("bootstrapping a new cluster")
        })
        .collect();
    let [seed] = seeds[..] else {
        panic!("exactly one seed bootstrapped: {seeds:?}");
    };
    let first = fs::read(lab.env_file(seed)).unwrap();
    let log = lab.discover_ok(seed, &[]);
    assert!(log.contains("resuming that bootstrap"), "{log}");
    assert_eq!(
        fs::read(lab.env_file(seed)).unwrap(),
        first,
        "the same bootstrap"
    );
    let running = nodes
        .into_iter()
        .filter(|k| *k != seed)
        .map(|k| (k, lab.discover_spawn(k, &[])))
        .collect();
    lab.start_etcd(seed, &EtcdFlags::default());
    lab.finish_and_start(running, &EtcdFlags::default());
    for k in [2, 3, 4] {
        lab.wait_healthy(k, NO_TLS);
    }
    lab.assert_cluster_is_the_nodes(2, NO_TLS);
}

#[test]
fn quorum_lost_is_reported_and_nothing_is_bootstrapped() {
    // Rule 6: two of three instances are terminated. The replacement finds the survivor
    // without a leader: exit 75, the counts and the way out, no file, no new cluster.
    let mut lab = Lab::new(47);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    lab.terminate(3);
    lab.terminate(4);
    lab.launch("etcd", 5);
    let out = lab.discover(5, &["--wait-timeout=5s"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(
        err.contains("quorum lost: 0 of 3 voting members are healthy")
            || err.contains("quorum lost: 1 of 3"),
        "{err}"
    );
    assert!(!lab.env_file(5).exists(), "no file written");
    // Through the peer port: etcd 3.5 serves no client member list without a leader.
    let peers = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "5",
            &format!("http://{}:2380/members", lab.ip(2)),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&peers.stdout)
            .matches("peerURLs")
            .count(),
        3,
        "the old cluster is left as it was"
    );
}

#[test]
fn learner_joins_then_is_promoted() {
    // Rule 7: a new node joins as a learner (no vote, no quorum risk while it catches up);
    // `etcd-discovery promote` (ExecStartPost=) makes it a voter once it is in sync.
    let mut lab = Lab::new(48);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    lab.launch("etcd", 5);
    let log = lab.discover_ok(5, &["--learner"]);
    assert!(log.contains("as a learner"), "{log}");
    assert_eq!(lab.learners(2), vec![format!("http://{}:2380", lab.ip(5))]);
    lab.start_etcd(5, &EtcdFlags::default());
    let log = lab.discover_ok(5, &["promote"]);
    assert!(log.contains("promoting learner"), "{log}");
    assert!(lab.learners(2).is_empty(), "promoted");
    lab.wait_healthy(5, NO_TLS);
    lab.assert_cluster_is_the_nodes(2, NO_TLS);
    let log = lab.discover_ok(5, &["promote"]);
    assert!(
        log.contains("already votes"),
        "promote twice is harmless: {log}"
    );
}

#[test]
fn leave_then_a_replacement_joins() {
    // Rule 8: node 4 leaves (ExecStop= on termination) while its etcd still runs; its
    // replacement then joins a cluster with nothing stale left to remove.
    let mut lab = Lab::new(49);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    let log = lab.discover_ok(4, &["leave"]);
    assert!(log.contains("leaving the cluster of 3 members"), "{log}");
    assert_eq!(lab.members(2, NO_TLS).len(), 2);
    lab.terminate(4);
    lab.launch("etcd", 5);
    let log = lab.discover_ok(5, &[]);
    assert!(log.contains("0 to remove, adding this instance"), "{log}");
    lab.start_and_check_cluster(5);
}

#[test]
fn scale_down_then_reconcile_on_the_leader_only() {
    // Rule 9: the group shrinks from three to two; the dead member stays until `reconcile`
    // (a timer on every member) runs. Only the leader acts, so exactly one run removes it.
    let mut lab = Lab::new(50);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    lab.terminate(4);
    // The election after a leader's death takes a moment; reconcile acts only with a leader,
    // and /health is true only once there is one.
    lab.wait_healthy(2, NO_TLS);
    let logs: Vec<String> = [2, 3]
        .iter()
        .map(|k| lab.discover_ok(*k, &["reconcile"]))
        .collect();
    let acted = logs
        .iter()
        .filter(|l| l.contains("removing member"))
        .count();
    let stood_by = logs.iter().filter(|l| l.contains("not the leader")).count();
    assert_eq!((acted, stood_by), (1, 1), "{logs:#?}");
    lab.assert_cluster_is_the_nodes(2, NO_TLS);
    let log = lab.discover_ok(2, &["reconcile"]);
    assert!(log.contains("nothing to reconcile"), "{log}");
}

#[test]
fn an_alarm_is_not_a_lost_quorum() {
    // Issue 10: with a NOSPACE alarm raised, etcd's /health (3.4 and 3.5) is false on every member
    // although there is a leader. The tool used to call that a lost quorum and advise
    // restoring a snapshot into a new cluster; it must tell the alarm apart and say what to do.
    let mut lab = Lab::new(51);
    let small = EtcdFlags {
        args: vec!["--quota-backend-bytes=1048576".into()],
        ..Default::default()
    };
    bootstrap(&mut lab, &[2, 3, 4], &small);
    let endpoint = lab.env_value(2, "ETCD_ADVERTISE_CLIENT_URLS");
    let value = "x".repeat(100 * 1024);
    let mut raised = false;
    for i in 0..60 {
        let out = lab::etcd_tool("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &endpoint, "--command-timeout=5s", "put"])
            .arg(format!("fill-{i}"))
            .arg(&value)
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stderr).contains("database space exceeded") {
            raised = true;
            break;
        }
    }
    assert!(raised, "the 1 MiB quota never filled");
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "-i"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let health = curl(&[&format!("{endpoint}/health")]);
    let status = curl(&["-d", "{}", &format!("{endpoint}/v3/maintenance/status")]);
    // The shapes the offline fake (EtcdFault::NoSpaceAlarm) copies.
    println!("etcd /health with NOSPACE:\n{health}\nstatus:\n{status}");
    assert!(health.starts_with("HTTP/1.1 503"), "{health}");
    // 3.4: {"health":"false"}; 3.5: {"health":"false","reason":"ALARM NOSPACE"}.
    assert!(health.contains(r#"{"health":"false""#), "{health}");
    assert!(status.contains("alarm:NOSPACE"), "{status}");

    lab.terminate(4);
    lab.launch("etcd", 5);
    let out = lab.discover(5, &["--wait-timeout=5s"]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    println!("{log}");
    assert!(!log.contains("quorum lost"), "{log}");
    assert!(!log.contains("restore"), "{log}");
    assert!(log.contains("alarm NOSPACE"), "{log}");
    assert!(log.contains("etcdctl alarm disarm"), "{log}");
}

#[test]
fn an_instance_the_group_does_not_count_never_joins() {
    // Rule 10: an instance detached from the group (as one leaving or parked would be) boots
    // with the masters' group named: it must not add a voter that will never serve.
    let mut lab = Lab::new(52);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    lab.launch("etcd", 5);
    lab.detach("etcd", 5);
    let out = lab.discover(5, &["-scaling-group-name=etcd", "--wait-timeout=2s"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{log}");
    assert!(log.contains("not counted by the group"), "{log}");
    assert!(!lab.env_file(5).exists(), "no file written");
    assert_eq!(lab.members(2, NO_TLS).len(), 3, "no member added");
}

#[test]
fn the_seed_lost_after_its_etcd_ran_never_leads_to_a_second_cluster() {
    // Rule 14 (the simulation's K2, issue 21): in the group's first minutes the seed (2)
    // bootstraps with 4, and data is written. Then 4's etcd goes down and the seed's instance
    // is terminated. 3, an initial member that never started, saw nobody and became the seed
    // of {3, 4, 5}: a second cluster beside the first one's data on 4. The seed's record in
    // the group's tags now makes 3 take part in the first bootstrap.
    let mut lab = Lab::new(62);
    lab.create_group("etcd", "etcd-masters");
    // moto gives launch times to the second: a second apart, they order the seeds 2, 3, 4.
    for k in [2, 3, 4] {
        lab.launch("etcd", k);
        std::thread::sleep(Duration::from_millis(1100));
    }
    let log = lab.discover_ok(2, &["--wait-timeout=20s"]);
    assert!(
        log.contains("recorded the bootstrap in group etcd's tag"),
        "{log}"
    );
    let groups = lab.moto.call(
        "autoscaling",
        "DescribeAutoScalingGroups",
        &[("AutoScalingGroupNames.member.1", "etcd")],
    );
    assert!(
        groups.contains("etcd-discovery:initial-cluster"),
        "{groups}"
    );
    lab.start_etcd(2, &EtcdFlags::default());
    let log = lab.discover_ok(4, &[]);
    assert!(log.contains("taking part in the bootstrap"), "{log}");
    lab.start_etcd(4, &EtcdFlags::default());
    lab.wait_healthy(4, NO_TLS);
    lab::etcdctl(&lab, 4, &["put", "written-early", "kept"]);

    lab.nodes.get_mut(&4).unwrap().etcd.take();
    lab.terminate(2);
    lab.launch("etcd", 5);
    let log = lab.discover_ok(3, &[]);
    assert!(
        log.contains("taking part in the bootstrap of 3 members recorded for the group"),
        "{log}"
    );
    assert_eq!(
        lab.env_value(3, "ETCD_INITIAL_CLUSTER"),
        lab.env_value(4, "ETCD_INITIAL_CLUSTER"),
        "the first bootstrap's initial cluster, the seed's URL included"
    );
    // 4 reboots (its etcd restarts from its data), 3 starts: the first cluster has its
    // quorum again. 5, not in the record, joins it, and the seed's member is removed.
    lab.discover_ok(4, &[]);
    lab.start_etcd(4, &EtcdFlags::default());
    lab.start_etcd(3, &EtcdFlags::default());
    lab.wait_healthy(3, NO_TLS);
    let running = vec![(5, lab.discover_spawn(5, &[]))];
    lab.finish_and_start(running, &EtcdFlags::default());
    lab.wait_healthy(5, NO_TLS);
    lab.assert_cluster_is_the_nodes(3, NO_TLS);
    let value = lab::etcdctl(&lab, 5, &["get", "written-early", "--print-value-only"]);
    assert_eq!(value.trim(), "kept");
}

#[test]
fn a_bootstrap_that_can_never_form_is_left() {
    // Rule 20 (the simulation's K6): the seed (2) records {2, 3, 4} and its etcd runs, alone;
    // 3 and 4 leave the group before they take part, and 5 and 6 replace them. While 3 and 4
    // are only stopped (as in a warm pool that reuses instances: they could return with their
    // data), 2 stays in that bootstrap. Once EC2 has terminated them it can never form, and
    // 2's etcd would wait in it, never ready (systemd stops it at TimeoutStartSec; the restart
    // runs the tool). 2's log shows no leader ever reached it: its data goes aside, and 2, the
    // group's seed still, bootstraps {2, 5, 6}.
    let mut lab = Lab::new(83);
    lab.create_group("etcd", "etcd-masters");
    for k in [2, 3, 4] {
        lab.launch("etcd", k);
        std::thread::sleep(Duration::from_millis(1100));
    }
    lab.discover_ok(2, &["--wait-timeout=20s"]);
    lab.start_etcd(2, &EtcdFlags::default());
    // Long enough for a few elections nobody wins, each written to its log.
    std::thread::sleep(Duration::from_secs(4));
    lab.nodes.get_mut(&2).unwrap().etcd.take();
    let parked: Vec<String> = [3, 4]
        .iter()
        .map(|k| lab.nodes[k].instance_id.clone())
        .collect();
    for k in [3, 4] {
        lab.detach("etcd", k);
    }
    let ids = [
        ("InstanceId.1", parked[0].as_str()),
        ("InstanceId.2", parked[1].as_str()),
    ];
    lab.moto.call("ec2", "StopInstances", &ids);
    for k in [5, 6] {
        lab.launch("etcd", k);
        std::thread::sleep(Duration::from_millis(1100));
    }
    let member_dirs = |lab: &Lab| -> Vec<String> {
        fs::read_dir(lab.data_dir(2))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let log = lab.discover_ok(2, &["--wait-timeout=20s"]);
    assert!(log.contains("EC2 still has 3 of the 3 instances"), "{log}");
    assert!(!log.contains("can never form"), "{log}");
    assert_eq!(member_dirs(&lab), ["member"], "{log}");

    lab.moto.call("ec2", "TerminateInstances", &ids);
    for k in [3, 4] {
        lab.nodes.remove(&k);
    }
    let log = lab.discover_ok(2, &["--wait-timeout=20s"]);
    assert!(log.contains("EC2 still has 1 of the 3 instances"), "{log}");
    assert!(log.contains("can never form"), "{log}");
    assert!(log.contains("bootstrapping a new cluster"), "{log}");
    let kept = member_dirs(&lab);
    assert!(
        kept.iter().any(|n| n.starts_with("member.unformed-")) && !kept.contains(&"member".into()),
        "{kept:?}"
    );
    lab.start_etcd(2, &EtcdFlags::default());
    for k in [5, 6] {
        let log = lab.discover_ok(k, &[]);
        assert!(log.contains("taking part in the bootstrap"), "{log}");
        lab.start_etcd(k, &EtcdFlags::default());
    }
    lab.wait_healthy(2, NO_TLS);
    lab.assert_cluster_is_the_nodes(2, NO_TLS);
}

#[test]
fn a_late_initial_member_after_a_removal_starts_from_the_bootstrap_record() {
    // Rule 18: 6 is an initial member that never started, and the cluster removed 5 before
    // 6 looked, so the list is no longer the initial cluster and `new` from it would make
    // another cluster ID. The group's record of the bootstrap (rule 14) is, as etcd's IDs
    // prove: 6 starts `new` from it (etcd replays the removal from the leader's log), not
    // `existing`, which may wait for ever on another start without data.
    let mut lab = Lab::new(86);
    decided_without_the_late(&mut lab, &[2, 3, 4, 5], &[6]);
    start_all(&mut lab, &[2, 3, 4, 5]);
    let recorded = lab.env_value(2, "ETCD_INITIAL_CLUSTER");
    lab::etcdctl(&lab, 2, &["put", "before", "1"]);
    let five = lab.nodes[&5].instance_id.clone();
    let list = lab::etcdctl(&lab, 2, &["member", "list"]);
    let id = list
        .lines()
        .find(|l| l.contains(&five))
        .and_then(|l| l.split(", ").next())
        .unwrap_or_else(|| panic!("no member {five} in {list}"))
        .to_string();
    lab.terminate(5);
    // Right after a member dies (the leader, maybe) a removal can time out and still commit:
    // asked again, bounded, until the list has it no more.
    lab::wait_until("5's member removed", Duration::from_secs(30), || {
        let _ = lab::etcdctl_output(&lab, 2, &["member", "remove", &id]);
        let list = lab::etcdctl_output(&lab, 2, &["member", "list"]);
        list.status.success() && !String::from_utf8_lossy(&list.stdout).contains(&five)
    });
    lab::etcdctl(&lab, 2, &["put", "after", "2"]);

    let log = lab.discover_ok(6, &["--wait-timeout=20s"]);
    assert!(log.contains("taking part in its bootstrap"), "{log}");
    assert_eq!(lab.env_value(6, "ETCD_INITIAL_CLUSTER_STATE"), "new");
    assert_eq!(lab.env_value(6, "ETCD_INITIAL_CLUSTER"), recorded);
    lab.start_etcd(6, &EtcdFlags::default());
    lab.wait_healthy(6, NO_TLS);
    lab.assert_cluster_is_the_nodes(2, NO_TLS);
    for (key, value) in [("before", "1"), ("after", "2")] {
        let got = lab::etcdctl(&lab, 6, &["get", "--consistency=s", key]);
        assert!(got.contains(value), "{key} on 6: {got}");
    }
}

#[test]
fn a_node_left_in_a_dead_bootstrap_takes_part_in_the_groups_new_one() {
    // Rule 20 (the simulation's seed 1, schedules 1611 and 7693): the seed (2) records
    // {2, 3, 4, 5, 6}, and only 6's etcd runs in it, alone, before 2, 3 and 4 are terminated.
    // The group's new seed (5) bootstraps {5, 6, 7} and forms it with 7: its list names 6
    // again at the same peer URL, so with the same member ID. 6's reboot restarted etcd from
    // the dead bootstrap's data, which the new cluster refuses (another cluster ID), for
    // ever. The answer names the new cluster's ID, not the one 6's log gives: 6 sets its data
    // aside and takes part in the new bootstrap as its late initial member.
    let mut lab = Lab::new(85);
    lab.create_group("etcd", "etcd-masters");
    for k in [2, 3, 4, 5, 6] {
        lab.launch("etcd", k);
        std::thread::sleep(Duration::from_millis(1100));
    }
    lab.discover_ok(2, &["--wait-timeout=20s"]);
    let log = lab.discover_ok(6, &["--wait-timeout=20s"]);
    assert!(log.contains("taking part in the bootstrap"), "{log}");
    lab.start_etcd(6, &EtcdFlags::default());
    // Long enough for a few elections nobody wins, each written to its log.
    std::thread::sleep(Duration::from_secs(4));
    lab.nodes.get_mut(&6).unwrap().etcd.take();
    for k in [2, 3, 4] {
        lab.terminate(k);
    }
    lab.launch("etcd", 7);
    let log = lab.discover_ok(5, &["--wait-timeout=20s"]);
    assert!(log.contains("bootstrapping a new cluster"), "{log}");
    lab.start_etcd(5, &EtcdFlags::default());
    lab.finish_and_start(vec![(7, lab.discover_spawn(7, &[]))], &EtcdFlags::default());
    for k in [5, 7] {
        lab.wait_healthy(k, NO_TLS);
    }

    let log = lab.discover_ok(6, &["--wait-timeout=20s"]);
    assert!(
        log.contains("not deciding from the previous file alone"),
        "{log}"
    );
    assert!(log.contains("can never form"), "{log}");
    assert!(log.contains("taking part in its bootstrap"), "{log}");
    assert_eq!(lab.env_value(6, "ETCD_INITIAL_CLUSTER_STATE"), "new");
    let kept: Vec<String> = fs::read_dir(lab.data_dir(6))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        kept.iter().any(|n| n.starts_with("member.unformed-")),
        "{kept:?}"
    );
    lab.start_etcd(6, &EtcdFlags::default());
    lab.wait_healthy(6, NO_TLS);
    lab.assert_cluster_is_the_nodes(5, NO_TLS);
}

/// A group's bootstrap whose initial members `started` run while the `late` ones have not
/// started, and the cluster has not decided its version: the last late one's peer port
/// trickles (the returned `Trickle`), so the leader's version check waits on it for as long
/// as the test keeps it. The first of `started` is the seed.
fn formed_with_the_version_held(lab: &mut Lab, started: &[u8], late: &[u8]) -> Trickle {
    decided_without_the_late(lab, started, late);
    let slow = Trickle::start(&lab.ip(*late.last().unwrap()), 2380);
    start_all(lab, started);
    slow
}

/// The group of `started` and `late` launched, the tool run on `started` only (the first is
/// the seed; the others take part through its record), and no etcd started yet.
fn decided_without_the_late(lab: &mut Lab, started: &[u8], late: &[u8]) {
    lab.create_group("etcd", "etcd-masters");
    lab.launch("etcd", started[0]);
    // The seed is the instance launched first, alone in its second of launch time.
    std::thread::sleep(Duration::from_millis(1100));
    for k in started[1..].iter().chain(late) {
        lab.launch("etcd", *k);
    }
    // They decide (the seed, then the others taking part through its record) before any
    // etcd runs: a trickling peer port during their look would be somebody there.
    let running: Vec<_> = started
        .iter()
        .map(|k| (*k, lab.discover_spawn(*k, &[])))
        .collect();
    lab.finish_each(running, |_, _| {});
}

fn start_all(lab: &mut Lab, nodes: &[u8]) {
    for k in nodes {
        lab.start_etcd(*k, &EtcdFlags::default());
    }
    for k in nodes {
        lab.wait_healthy(*k, NO_TLS);
    }
}

#[test]
fn two_late_initial_members_start_at_once() {
    // Rule 18, the five-member bootstrap's other failure: two initial members looked after
    // the other three had formed and decided the cluster's version, wrote `existing`, and
    // their etcd started at the same moment. etcd started `existing` without data asks every
    // peer for its version, with no time limit; each one's peer port was open while its etcd
    // asked the other: both waited for ever. They start `new` now, which asks nobody.
    let mut lab = Lab::new(84);
    decided_without_the_late(&mut lab, &[2, 3, 4], &[5, 6]);
    start_all(&mut lab, &[2, 3, 4]);
    let url = format!("{}/version", lab.env_value(2, "ETCD_ADVERTISE_CLIENT_URLS"));
    lab::wait_until(
        "the cluster to decide its version",
        Duration::from_secs(30),
        || request("GET", &url, &[], "").is_ok_and(|(_, body)| !body.contains("not_decided")),
    );
    let running = [5, 6]
        .iter()
        .map(|k| (*k, lab.discover_spawn(*k, &[])))
        .collect();
    lab.finish_each(running, |_, _| {});
    for k in [5, 6] {
        let log = lab.discovery_log(k);
        assert!(log.contains("taking part in its bootstrap"), "{log}");
        assert_eq!(lab.env_value(k, "ETCD_INITIAL_CLUSTER_STATE"), "new");
    }
    // Both at once, as two instances booting together start them.
    for k in [5, 6] {
        lab.start_etcd(k, &EtcdFlags::default());
    }
    for k in [5, 6] {
        lab.wait_healthy(k, NO_TLS);
    }
    lab.assert_cluster_is_the_nodes(2, NO_TLS);
}

#[test]
fn before_the_cluster_decides_its_version_a_late_initial_member_takes_part_and_a_join_waits() {
    // Rule 18, the lab's five-member bootstraps' failure: a late initial member that looked
    // right after the others formed wrote `existing`, and its etcd exited "incompatible with
    // current running cluster". Here instance 6's peer port trickles, so the leader's version
    // check waits on it and the cluster's version stays undecided as long as the test wants.
    let mut lab = Lab::new(66);
    let slow = formed_with_the_version_held(&mut lab, &[2, 3, 4], &[5, 6]);
    let url = format!("{}/version", lab.env_value(2, "ETCD_ADVERTISE_CLIENT_URLS"));
    let version = || request("GET", &url, &[], "").map(|(_, body)| body);
    let undecided = || version().is_ok_and(|b| b.contains("not_decided"));
    assert!(
        undecided(),
        "the leader waits on the trickling peer: {:?}",
        version()
    );

    // Instance 5, an initial member that never started, takes part in the bootstrap at once:
    // etcd's IDs prove the list is still the initial cluster, and `new` from it is the
    // bootstrap the others made.
    let log = lab.discover_ok(5, &["--wait-timeout=20s"]);
    assert!(log.contains("taking part in its bootstrap"), "{log}");
    assert_eq!(lab.env_value(5, "ETCD_INITIAL_CLUSTER_STATE"), "new");
    lab.start_etcd(5, &EtcdFlags::default());
    lab.wait_healthy(5, NO_TLS);
    assert!(undecided(), "still held by the trickle: {:?}", version());

    // 6's instance is lost and 7 replaces it: a join waits, with nothing changed and no file
    // written (6's member is not removed either).
    lab.terminate(6);
    lab.launch("etcd", 7);
    let mut seven = lab.discover_spawn(7, &[]);
    lab::wait_until(
        "node 7 to wait for the version",
        Duration::from_secs(30),
        || lab.discovery_log(7).contains("has not decided its version"),
    );
    assert!(
        seven.try_wait().unwrap().is_none(),
        "{}",
        lab.discovery_log(7)
    );
    assert!(!lab.env_file(7).exists());
    assert_eq!(lab.members(2, NO_TLS).len(), 5, "nothing removed or added");

    // The trickle ends: the leader decides, and 7 replaces 6's member.
    drop(slow);
    lab.finish_and_start(vec![(7, seven)], &EtcdFlags::default());
    assert_eq!(lab.env_value(7, "ETCD_INITIAL_CLUSTER_STATE"), "existing");
    lab.wait_healthy(7, NO_TLS);
    assert!(!undecided(), "{:?}", version());
    lab.assert_cluster_is_the_nodes(2, NO_TLS);
}

#[test]
fn a_cluster_that_lost_its_leader_before_deciding_its_version_takes_its_late_initial_member() {
    // The simulation's K11: a formed cluster loses its leader before it decided its version
    // (here 2's etcd dies while 4's trickling peer port holds the version check). 3 alone has
    // no leader, so no version will be decided until 4 starts, and etcd refuses 4 started
    // `existing` until one is: 4 waited for a version only its own start could bring. It now
    // starts `new`, from the initial cluster its peers' IDs prove unchanged.
    let mut lab = Lab::new(77);
    let slow = formed_with_the_version_held(&mut lab, &[2, 3], &[4]);
    let url = format!("{}/version", lab.env_value(3, "ETCD_ADVERTISE_CLIENT_URLS"));
    let version = || request("GET", &url, &[], "").map(|(_, body)| body);
    assert!(
        version().is_ok_and(|b| b.contains("not_decided")),
        "{:?}",
        version()
    );
    lab::etcdctl(&lab, 3, &["put", "written-early", "kept"]);

    // A removal waits for the version too: it would leave a list that is no longer the
    // initial cluster, which 4's start needs.
    let out = lab.discover(3, &["leave"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{log}");
    assert!(log.contains("has not decided its version"), "{log}");
    assert_eq!(lab.members(3, NO_TLS).len(), 3, "nothing removed");

    lab.nodes.get_mut(&2).unwrap().etcd.take();
    drop(slow);
    let log = lab.discover_ok(4, &["--wait-timeout=20s"]);
    assert!(log.contains("taking part in its bootstrap"), "{log}");
    assert_eq!(lab.env_value(4, "ETCD_INITIAL_CLUSTER_STATE"), "new");
    assert_eq!(
        lab.env_value(4, "ETCD_INITIAL_CLUSTER"),
        lab.env_value(3, "ETCD_INITIAL_CLUSTER"),
        "the initial cluster its peers bootstrapped"
    );
    lab.start_etcd(4, &EtcdFlags::default());
    for k in [3, 4] {
        lab.wait_healthy(k, NO_TLS);
    }
    let value = lab::etcdctl(&lab, 4, &["get", "written-early", "--print-value-only"]);
    assert_eq!(value.trim(), "kept");
    lab::wait_until(
        "the cluster to decide its version",
        Duration::from_secs(30),
        || version().is_ok_and(|b| !b.contains("not_decided")),
    );
    // 2 comes back from its data: the whole initial cluster runs.
    lab.discover_ok(2, &[]);
    lab.start_etcd(2, &EtcdFlags::default());
    lab.wait_healthy(2, NO_TLS);
    lab.assert_cluster_is_the_nodes(3, NO_TLS);
}
