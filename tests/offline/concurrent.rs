//! Two nodes joining at once, whichever way etcd answers the second add. The fake etcd
//! accepts a second unstarted member, as etcd 3.5.30, 3.6.11 and 3.7 do (server.go
//! mayAddMember at those tags); the lab's 3.4 and 3.5.1 refuse it as "unhealthy cluster"
//! (safety::two_concurrent_replacements_both_join, scale_up_three_to_six_at_once).
//! Networks 127.0.150-151.0/24.

use std::process::Stdio;
use std::time::{Duration, Instant};

use super::world::{EtcdApi, EtcdFault, Imds, World};
use super::{assert_success, cluster, env_value, group, stderr, wait_bounded};

/// Marks host k's member started, as its etcd would, `after` the tool's `nth` request to
/// `path` reached the fake etcds: by its progress, not the clock (under qemu on a loaded
/// machine the tool can take seconds to get anywhere). Waits at most 60 s for that request.
fn start_member_later(
    w: &World,
    k: u8,
    (path, nth): (&'static str, usize),
    after: Duration,
) -> std::thread::JoinHandle<Instant> {
    let (members, started) = (w.members.clone(), w.member(k, true));
    let logs: Vec<_> = w.etcd.iter().map(|e| e.requests.clone()).collect();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let seen = || -> usize {
            logs.iter()
                .map(|log| {
                    log.lock()
                        .unwrap()
                        .iter()
                        .filter(|r| r.path == path)
                        .count()
                })
                .sum()
        };
        while Instant::now() < deadline && seen() < nth {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(after);
        let mut list = members.lock().unwrap();
        for m in list.iter_mut().filter(|m| m.peer_url == started.peer_url) {
            m.name = started.name.clone();
            m.client_url = started.client_url.clone();
        }
        Instant::now()
    })
}

fn adds(w: &World) -> Vec<Instant> {
    w.etcd_requests()
        .into_iter()
        .filter(|r| r.path == "/v3/cluster/member/add")
        .map(|r| r.received)
        .collect()
}

#[test]
fn a_join_waits_while_another_added_member_has_not_started() {
    // Regression: with an etcd that accepts a second unstarted member, node 5 joined while
    // node 6's member had not started; 6's list missed 5 and 6's etcd refused to start.
    let w = World::new(
        150,
        5,
        vec![group("etcd", &[2, 3, 4, 5, 6])],
        Some((&[2, 3, 4, 6], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![
        w.member(2, true),
        w.member(3, true),
        w.member(4, true),
        w.member(6, false),
    ];
    let mut child = w.command(&[]).stderr(Stdio::piped()).spawn().unwrap();
    // The look asks the four members that serve for their list; the fifth list is the add's,
    // which finds 6 unstarted.
    let started = start_member_later(
        &w,
        6,
        ("/v3/cluster/member/list", 5),
        Duration::from_millis(200),
    );
    let out = wait_bounded(&mut child, Duration::from_secs(90));
    assert_success(&out);
    let started = started.join().unwrap();
    let adds = adds(&w);
    assert_eq!(adds.len(), 1, "{}", stderr(&out));
    assert!(
        adds[0] >= started,
        "added before 6 started:\n{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("has not started yet"),
        "{}",
        stderr(&out)
    );
    let text = std::fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER"),
        cluster(150, &[2, 3, 4, 5, 6])
    );
}

#[test]
fn the_later_of_two_overlapping_adds_takes_itself_back() {
    // Node 6's add lands between node 5's look and its add, and etcd accepts both: 5's
    // member is removed again and added after 6 started, so the two files agree with etcd.
    let w = World::new(
        151,
        5,
        vec![group("etcd", &[2, 3, 4, 5, 6])],
        Some((&[2, 3, 4, 6], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true), w.member(4, true)];
    *w.etcd_fault.lock().unwrap() = Some(EtcdFault::AnotherAddFirst(w.member(6, false)));
    let mut child = w.command(&[]).stderr(Stdio::piped()).spawn().unwrap();
    // 6's member goes in with 5's first add (the fault); it starts a moment later.
    let started = start_member_later(
        &w,
        6,
        ("/v3/cluster/member/add", 1),
        Duration::from_millis(200),
    );
    let out = wait_bounded(&mut child, Duration::from_secs(90));
    assert_success(&out);
    let started = started.join().unwrap();
    let log = stderr(&out);
    let changes: Vec<String> = w.etcd_changes().into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        changes,
        [
            "/v3/cluster/member/add",
            "/v3/cluster/member/remove",
            "/v3/cluster/member/add"
        ],
        "{log}"
    );
    assert!(adds(&w)[1] >= started, "{log}");
    assert!(log.contains("taking member"), "{log}");
    let text = std::fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER"),
        cluster(151, &[2, 3, 4, 5, 6])
    );
    let peers: Vec<String> = w
        .members
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.peer_url.clone())
        .collect();
    assert_eq!(peers.len(), 5, "{peers:?}");
}
