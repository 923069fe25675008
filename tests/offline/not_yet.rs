//! "Not yet" is not a failure: what AWS and the instance look like in the first seconds after
//! a launch (EC2 not knowing an instance AutoScaling lists), late in a long run (expired
//! temporary credentials), or on a host whose clock chrony has not set yet. Each ends in
//! success once the world catches up, or in exit 75 (retried by the unit), never in 1. At
//! boot, what comes up late (IMDS, the network, the group's listing) is waited for within
//! `--boot-wait`.
//! Networks 127.0.130-149.0/24 and 127.0.219.0/24.

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use super::fake::FakeServer;
use super::world::{aws_handler, imds_handler, EtcdApi, EtcdFault, Imds, World, PROFILE_TOKEN};
use super::{assert_failure, assert_success, cluster, env_value, group, stderr, wait_bounded};

#[test]
fn an_instance_ec2_does_not_know_yet_is_waited_for() {
    // Regression: DescribeInstances answering InvalidInstanceID.NotFound for an id
    // AutoScaling already listed failed the whole run with exit 1.
    let w = World::new(
        130,
        2,
        vec![group("etcd", &[2, 3, 4])],
        None,
        vec![],
        Imds::v2(),
    );
    *w.aws_faults.ec2_unknown.lock().unwrap() = vec![4];
    let mut child = w
        .command(&["--wait-timeout=60s"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    w.aws_faults.ec2_unknown.lock().unwrap().clear();
    let out = wait_bounded(&mut child, Duration::from_secs(60));
    assert_success(&out);
    let log = stderr(&out);
    assert!(
        log.contains(&format!("EC2 does not know {} yet", super::instance_id(4))),
        "{log}"
    );
    assert!(log.contains("has no private address yet"), "{log}");
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER"),
        cluster(130, &[2, 3, 4])
    );
}

#[test]
fn an_instance_ec2_never_knows_ends_in_75() {
    let w = World::new(
        131,
        2,
        vec![group("etcd", &[2, 3, 4])],
        None,
        vec![],
        Imds::v2(),
    );
    fs::write(w.env_file(), "OLD=1\n").unwrap();
    *w.aws_faults.ec2_unknown.lock().unwrap() = vec![3, 4];
    let out = w.run(&["--wait-timeout=3s"]);
    assert_failure(&out, 75, "has no private address yet");
    assert_eq!(fs::read_to_string(w.env_file()).unwrap(), "OLD=1\n");
    // The known instance was still asked about, alone, after the first answer named the
    // other two.
    let asked: Vec<Vec<String>> = w
        .aws_requests()
        .iter()
        .filter(|r| r.param("Action").as_deref() == Some("DescribeInstances"))
        .map(|r| {
            (1..9)
                .filter_map(|i| r.param(&format!("InstanceId.{i}")))
                .collect()
        })
        .collect();
    assert!(
        asked.contains(&vec![super::instance_id(2)]),
        "asked: {asked:?}"
    );
}

#[test]
fn expired_instance_profile_credentials_are_fetched_again() {
    // Regression: ExpiredToken from instance-profile credentials in a long run was an
    // exit 1; fresh credentials are in IMDS.
    let w = World::new(
        132,
        2,
        vec![group("etcd", &[2])],
        None,
        vec![],
        Imds {
            profile: true,
            ..Imds::v2()
        },
    );
    *w.aws_faults.expired_tokens.lock().unwrap() = vec![PROFILE_TOKEN.to_string()];
    let out = w.run_with_env(
        &[],
        &[("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", "")],
    );
    assert_success(&out);
    let tokens: Vec<String> = w
        .aws_requests()
        .iter()
        .filter_map(|r| r.header("x-amz-security-token").map(str::to_string))
        .collect();
    assert_eq!(tokens[0], PROFILE_TOKEN, "{tokens:?}");
    assert!(
        tokens[1..]
            .iter()
            .all(|t| *t == format!("{PROFILE_TOKEN}-2")),
        "every later request signed with the fresh token: {tokens:?}"
    );
}

#[test]
fn expired_keys_from_the_environment_say_so() {
    // Keys from the environment cannot be renewed here: exit 1, naming the token.
    let w = World::new(133, 2, vec![group("etcd", &[2])], None, vec![], Imds::v2());
    *w.aws_faults.expired_tokens.lock().unwrap() = vec!["STALE".into()];
    let out = w.run_with_env(&[], &[("AWS_SESSION_TOKEN", "STALE")]);
    assert_failure(&out, 1, "AWS_SESSION_TOKEN");
}

#[test]
fn a_skewed_clock_is_75_and_named() {
    // Regression: a clock chrony had not set yet ended in exit 1 with a hint about the keys.
    let w = World::new(134, 2, vec![group("etcd", &[2])], None, vec![], Imds::v2());
    for (code, message) in [
        (
            "SignatureDoesNotMatch",
            "Signature expired: 20261128T010000Z is now earlier than 20261128T011000Z (20261128T011500Z - 5 min.)",
        ),
        (
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        ),
        ("RequestExpired", "Request has expired."),
    ] {
        *w.aws_faults.clock_skew.lock().unwrap() = Some((code.into(), message.into()));
        let out = w.run(&["--timeout=20s"]);
        assert_failure(&out, 75, "clock is off");
        assert!(!stderr(&out).contains("access key"), "{}", stderr(&out));
    }
}

/// A port on `ip` that nothing listens on yet.
fn free_port(ip: &str) -> u16 {
    let probe = std::net::TcpListener::bind((ip, 0)).unwrap();
    probe.local_addr().unwrap().port()
}

#[test]
fn a_metadata_service_that_comes_up_late_is_waited_for() {
    // Regression: IMDS unreachable for the first seconds of a boot was exit 1 after 0.55 s.
    let w = World::new(135, 2, vec![group("etcd", &[2])], None, vec![], Imds::v2());
    let ip = World::ip(135, 251);
    let port = free_port(&ip);
    let mut child = w
        .command(&[])
        .env(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            format!("http://{ip}:{port}"),
        )
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    let _late = FakeServer::start_on(&ip, port, imds_handler(135, 2, Imds::v2()));
    let out = wait_bounded(&mut child, Duration::from_secs(30));
    assert_success(&out);
    assert!(
        stderr(&out).contains("does not answer yet"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_aws_endpoint_that_comes_up_late_is_waited_for() {
    // The network at boot: refused (or a name that does not resolve yet) for a few seconds.
    let w = World::new(136, 2, vec![group("etcd", &[2])], None, vec![], Imds::v2());
    let ip = World::ip(136, 251);
    let port = free_port(&ip);
    let mut child = w
        .command(&[])
        .env("AWS_ENDPOINT_URL", format!("http://{ip}:{port}"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Longer than the usual five tries take (at most 4.5 s of backoff).
    std::thread::sleep(Duration::from_millis(6000));
    let late = FakeServer::start_on(
        &ip,
        port,
        aws_handler(
            136,
            w.groups.clone(),
            w.aws_override.clone(),
            w.aws_faults.clone(),
        ),
    );
    let out = wait_bounded(&mut child, Duration::from_secs(30));
    assert_success(&out);
    assert!(!late.requests().is_empty());
}

#[test]
fn an_instance_autoscaling_lists_late_is_waited_for() {
    // Regression: DescribeAutoScalingInstances not listing a just-launched instance yet was
    // a failure; it is asked again within --boot-wait.
    let mut g = group("etcd", &[3]);
    g.desired = 2;
    let w = World::new(137, 2, vec![g], None, vec![], Imds::v2());
    let mut child = w
        .command(&["--wait-timeout=60s"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(3000));
    w.groups.lock().unwrap()[0]
        .instances
        .push((2, "Pending".into()));
    let out = wait_bounded(&mut child, Duration::from_secs(60));
    assert_success(&out);
    let log = stderr(&out);
    assert!(
        log.contains("is not listed in an Auto Scaling group yet"),
        "{log}"
    );
    let looks = w
        .aws_requests()
        .iter()
        .filter(|r| r.param("Action").as_deref() == Some("DescribeAutoScalingInstances"))
        .count();
    assert!(looks >= 2, "asked {looks} times");
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER"),
        cluster(137, &[2, 3])
    );
}

#[test]
fn an_instance_autoscaling_never_lists_ends_in_75() {
    let w = World::new(138, 2, vec![group("etcd", &[3])], None, vec![], Imds::v2());
    let started = std::time::Instant::now();
    let out = w.run(&["--boot-wait=3s"]);
    assert_failure(&out, 75, "is in no Auto Scaling group after");
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "bounded by --boot-wait: {:?}",
        started.elapsed()
    );
}

#[test]
fn a_join_waits_until_the_cluster_has_decided_its_version() {
    // Rule 18: etcd started `existing` without member data exits ("incompatible with current
    // running cluster") while no peer names the cluster's version, as in the first moments
    // after a cluster formed. Instance 5 replaces 4: it adds nothing until the version is
    // decided, then joins.
    let w = World::new(
        139,
        5,
        vec![group("etcd", &[2, 3, 5])],
        Some((&[2, 3], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true), w.member(4, true)];
    *w.etcd_fault.lock().unwrap() = Some(EtcdFault::VersionNotDecided(2));
    let out = w.run(&["--wait-timeout=60s"]);
    assert_success(&out);
    let log = stderr(&out);
    assert!(
        log.contains("waiting before deciding: the cluster has not decided its version yet"),
        "{log}"
    );
    let versions = w
        .etcd_requests()
        .iter()
        .filter(|r| r.path == "/version")
        .count();
    assert_eq!(versions, 3, "asked until it was decided: {log}");
    let changes: Vec<String> = w.etcd_changes().into_iter().map(|(path, _)| path).collect();
    assert_eq!(
        changes,
        ["/v3/cluster/member/remove", "/v3/cluster/member/add"],
        "the dead member out, this one in"
    );
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(env_value(&text, "ETCD_INITIAL_CLUSTER_STATE"), "existing");

    // A member with its data restarts from it: the version is not even asked.
    drop(w);
    let w = World::new(
        139,
        2,
        vec![group("etcd", &[2, 3, 5])],
        Some((&[3, 5], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true), w.member(5, true)];
    *w.etcd_fault.lock().unwrap() = Some(EtcdFault::VersionNotDecided(100));
    assert_success(&w.run(&[]));
    assert!(w.etcd_requests().iter().all(|r| r.path != "/version"));
}

/// The peer port of a formed cluster without a leader that has not decided its version: i-2
/// and i-3 published, i-4 (an initial member) never started. The IDs are etcd's for these
/// peer URLs and the token the tool derives from the group's name (`etcd-etcd-7a45e7eb`:
/// SHA-1, as `model::initial_member_id` and `model::cluster_id` compute them, checked against
/// etcd's own in `fixtures/etcd/peer-members-cluster-id.json`).
fn leaderless_peer(net: u8, cluster_id: &'static str) -> FakeServer {
    let ids = [
        (2, 16690537346585024033u64),
        (3, 16355283342120963296),
        (4, 16659675516521803085),
    ];
    let members: Vec<String> = ids
        .iter()
        .map(|(k, id)| {
            let ip = World::ip(net, *k);
            let clients = match k {
                4 => String::new(),
                _ => format!(r#","clientURLs":["http://{ip}:2379"]"#),
            };
            format!(
                r#"{{"id":{id},"peerURLs":["http://{ip}:2380"],"name":"{}"{clients}}}"#,
                super::world::instance_id(*k)
            )
        })
        .collect();
    let body = format!("[{}]", members.join(","));
    FakeServer::start_with_headers(&World::ip(net, 3), 2380, move |r| {
        let header = vec![("X-Etcd-Cluster-Id".to_string(), cluster_id.to_string())];
        match r.path.as_str() {
            "/members" => (200, header, body.clone()),
            "/version" => (
                200,
                header,
                r#"{"etcdserver":"3.4.23","etcdcluster":"not_decided"}"#.into(),
            ),
            _ => (404, header, String::new()),
        }
    })
}

#[test]
fn a_late_initial_member_heard_only_on_the_peer_ports_takes_part_in_its_bootstrap() {
    // Rule 18's late initial member (the simulation's K11), on the peer ports: no client
    // port answers, the peer port lists i-4 as an initial member that never started, and
    // names no cluster version. etcd refuses i-4 `existing` until one is decided, which
    // needs i-4's start: it takes part in the bootstrap (`new`), as etcd's IDs prove the
    // list is still the initial cluster (the version and the ID asked at the peer port).
    let world = || {
        World::new(
            219,
            4,
            vec![group("etcd", &[2, 3, 4])],
            None,
            vec![],
            Imds::v2(),
        )
    };
    let w = world();
    let peer = leaderless_peer(219, "fdb6ebfdc4064268");
    let out = w.run(&["--wait-timeout=2s"]);
    assert_success(&out);
    assert!(
        stderr(&out).contains("taking part in its bootstrap"),
        "{}",
        stderr(&out)
    );
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(env_value(&text, "ETCD_INITIAL_CLUSTER_STATE"), "new");
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER"),
        [2, 3, 4]
            .map(|k| format!(
                "{}=http://{}:2380",
                super::world::instance_id(k),
                World::ip(219, k)
            ))
            .join(",")
    );
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER_TOKEN"),
        "etcd-etcd-7a45e7eb"
    );
    let asked: Vec<String> = peer.requests().iter().map(|r| r.path.clone()).collect();
    assert!(asked.iter().any(|p| p == "/version"), "{asked:?}");
    drop(peer);

    // The same list under another cluster ID (a member was removed or added since): not
    // the initial cluster, so no `new`; it waits, with no file written.
    drop(w);
    let w = world();
    let _peer = leaderless_peer(219, "1c0ffee");
    let out = w.run(&["--wait-timeout=1s"]);
    assert_failure(&out, 75, "has not decided its version");
    assert!(!w.env_file().exists());
}
