//! Peers that are there but answer badly. Only "connection refused" (or no TCP session at all)
//! is evidence that no etcd runs at an address; a peer that stalls, resets, garbles or cannot
//! be resolved is somebody we could not use, and bootstrapping beside it makes two clusters.
//! Each case here made the tool write `ETCD_INITIAL_CLUSTER_STATE=new` before issue 10.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::world::{EtcdApi, EtcdFault, Imds, World};
use super::{assert_failure, group, stderr};

const OLD: &str = "OLD=1\n";

/// How a peer that accepted the connection misbehaves.
#[derive(Clone, Copy, Debug)]
enum Peer {
    /// Reads the request and never answers (overload, a disk stall).
    Stalls,
    /// Closes with the request unread: the kernel answers with a reset.
    Resets,
    /// Answers with bytes that are not HTTP.
    SpeaksSsh,
    /// A chunked body that never ends.
    EndlessBody,
    /// A body shorter than its Content-Length.
    ShortBody,
    /// A header larger than any client reads.
    HugeHeader,
}

/// A raw TCP peer at one address, misbehaving the same way on every connection until dropped.
struct RawPeer {
    stop: Arc<AtomicBool>,
}

impl RawPeer {
    fn start(ip: &str, port: u16, how: Peer) -> RawPeer {
        let listener = TcpListener::bind((ip, port)).expect("bind the raw peer");
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            while !stopped.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(120) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let stopped = stopped.clone();
                        std::thread::spawn(move || misbehave(stream, how, &stopped));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        RawPeer { stop }
    }
}

impl Drop for RawPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn misbehave(mut stream: TcpStream, how: Peer, stop: &AtomicBool) {
    stream.set_nonblocking(false).unwrap();
    let hold = |stop: &AtomicBool| {
        let started = Instant::now();
        while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let read_request = |stream: &mut TcpStream| {
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf);
    };
    match how {
        Peer::Stalls => {
            read_request(&mut stream);
            hold(stop);
        }
        Peer::Resets => std::thread::sleep(Duration::from_millis(100)),
        Peer::SpeaksSsh => {
            read_request(&mut stream);
            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n");
        }
        Peer::EndlessBody => {
            read_request(&mut stream);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n1\r\n{\r\n",
            );
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
                if stream.write_all(b"1\r\n \r\n").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Peer::ShortBody => {
            read_request(&mut stream);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"members\":[",
            );
        }
        Peer::HugeHeader => {
            read_request(&mut stream);
            let mut answer = b"HTTP/1.1 200 OK\r\nx-padding: ".to_vec();
            answer.extend(std::iter::repeat_n(b'a', 256 * 1024));
            answer.extend_from_slice(b"\r\ncontent-length: 2\r\n\r\n{}");
            let _ = stream.write_all(&answer);
        }
    }
}

/// A group of three whose first instance's etcd misbehaves and whose second has none; this
/// node (the third) boots. Returns the world with an old env file in place.
fn replacement_beside(net: u8, how: Peer) -> (World, RawPeer) {
    let w = World::new(
        net,
        4,
        vec![group("etcd", &[2, 3, 4])],
        None,
        vec![],
        Imds::v2(),
    );
    fs::write(w.env_file(), OLD).unwrap();
    let peer = RawPeer::start(&World::ip(net, 2), w.client_port, how);
    (w, peer)
}

fn assert_no_second_cluster(w: &World, out: &std::process::Output) {
    let err = stderr(out);
    assert!(
        !err.contains("bootstrapping a new cluster"),
        "a peer that answers badly is never 'nobody':\n{err}"
    );
    assert_eq!(
        fs::read_to_string(w.env_file()).unwrap(),
        OLD,
        "the previous env file must stay:\n{err}"
    );
}

#[test]
fn a_peer_that_answers_badly_is_not_an_absent_peer() {
    // (case, net, how the peer misbehaves, extra flags)
    let cases: &[(&str, u8, Peer, &[&str])] = &[
        ("stalls past the call timeout", 100, Peer::Stalls, &[]),
        ("resets after the connect", 101, Peer::Resets, &[]),
        (
            "answers with bytes that are not HTTP",
            102,
            Peer::SpeaksSsh,
            &[],
        ),
        (
            "sends a chunked body that never ends",
            103,
            Peer::EndlessBody,
            &[],
        ),
        (
            "sends less than its Content-Length",
            104,
            Peer::ShortBody,
            &[],
        ),
        ("sends a header over the limit", 105, Peer::HugeHeader, &[]),
        // The run's own deadline cuts the etcd call short: the deadline is not evidence.
        (
            "stalls until the run's --timeout is up",
            106,
            Peer::Stalls,
            &["--timeout=3s"],
        ),
    ];
    std::thread::scope(|scope| {
        for (case, net, how, extra) in cases {
            scope.spawn(move || {
                let (w, _peer) = replacement_beside(*net, *how);
                let mut args = vec!["--wait-timeout=1s"];
                args.extend_from_slice(extra);
                let out = w.run(&args);
                assert_no_second_cluster(&w, &out);
                assert_eq!(
                    out.status.code(),
                    Some(75),
                    "failed testcase {case}: {}",
                    stderr(&out)
                );
                assert!(
                    stderr(&out).contains("not bootstrapping beside it"),
                    "failed testcase {case}: {}",
                    stderr(&out)
                );
            });
        }
    });
}

#[test]
fn peers_whose_names_do_not_resolve_are_not_absent() {
    // Addressed by private DNS name, which resolves nowhere here: the resolver not up yet at
    // boot looks exactly like this.
    let w = World::new(
        107,
        4,
        vec![group("etcd", &[2, 3, 4])],
        None,
        vec![],
        Imds::v2(),
    );
    fs::write(w.env_file(), OLD).unwrap();
    let out = w
        .command_by_hostname(&["--wait-timeout=1s"])
        .output()
        .unwrap();
    assert_no_second_cluster(&w, &out);
    assert_failure(&out, 75, "does not resolve");
}

#[test]
fn an_empty_member_list_is_a_bad_answer() {
    let w = World::new(
        108,
        4,
        vec![group("etcd", &[2, 4])],
        Some((&[2], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    fs::write(w.env_file(), OLD).unwrap();
    *w.etcd_fault.lock().unwrap() = Some(EtcdFault::List(200, r#"{"members":[]}"#.into()));
    let out = w.run(&["--wait-timeout=1s"]);
    assert_no_second_cluster(&w, &out);
    assert_failure(&out, 1, "the member list is empty");
}

#[test]
fn a_member_that_answers_health_slowly_is_not_removed() {
    // Members on 2, 3 and 5; instance 3 is gone from the group but its etcd still holds the
    // connection open and answers nothing in time. Before issue 10 it was removed as stale.
    let w = World::new(
        109,
        4,
        vec![group("etcd", &[2, 4, 5])],
        Some((&[2, 5], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true), w.member(5, true)];
    let _slow = RawPeer::start(&World::ip(109, 3), w.client_port, Peer::Stalls);
    fs::write(w.env_file(), OLD).unwrap();
    let out = w.run(&["--wait-timeout=1s"]);
    assert_failure(&out, 75, "4 voters of which 2 are healthy");
    assert_eq!(w.etcd_changes(), vec![], "no member removed or added");
    assert_eq!(fs::read_to_string(w.env_file()).unwrap(), OLD);
}

#[test]
fn no_membership_change_on_a_read_only_or_full_filesystem() {
    // Before issue 10 the stale member was removed and this node added, and only then did
    // the write fail: the cluster kept a voter that never starts.
    let w = World::new(
        110,
        4,
        vec![group("etcd", &[2, 4, 5])],
        Some((&[2, 5], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true), w.member(5, true)];
    let dir = w.dir.join("mnt");
    fs::create_dir(&dir).unwrap();
    let command = w.command(&[&format!("-environment-file={}/etcd-peers", dir.display())]);
    // A private mount namespace with a small tmpfs over the file's directory: read-only, or
    // one page large and filled.
    let d = dir.display();
    for setup in [
        format!("/bin/mount -t tmpfs -o ro,size=64k tmpfs {d}"),
        format!("/bin/mount -t tmpfs -o size=4k tmpfs {d} && /bin/dd if=/dev/zero of={d}/fill bs=4096 count=1 2>/dev/null"),
    ] {
        let out = World::in_private_mounts(&command, &setup).output().unwrap();
        assert_failure(&out, 1, "not writable");
        assert_eq!(w.etcd_changes(), vec![], "{setup}: no member removed or added");
    }
}

#[test]
fn arguments_and_variables_that_are_not_utf8_are_usage_errors() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let w = World::new(111, 2, vec![group("etcd", &[2])], None, vec![], Imds::v2());
    fs::write(w.env_file(), OLD).unwrap();
    let mut command = w.command(&[]);
    command.arg(OsStr::from_bytes(b"--scaling-group-name=\xff"));
    assert_failure(&command.output().unwrap(), 2, "not valid UTF-8");
    // Not silently the default path.
    let mut command = std::process::Command::new(super::world::binary());
    command.env_clear().env(
        "ETCD_DISCOVERY_ENVIRONMENT_FILE",
        OsStr::from_bytes(b"/tmp/\xff"),
    );
    assert_failure(
        &command.output().unwrap(),
        2,
        "ETCD_DISCOVERY_ENVIRONMENT_FILE is not valid UTF-8",
    );
    assert_eq!(fs::read_to_string(w.env_file()).unwrap(), OLD);
}

#[test]
fn an_alarm_is_not_a_lost_quorum() {
    // With NOSPACE raised, etcd 3.4's /health is false on every member although a leader
    // exists: the tool said "quorum lost ... restore the latest snapshot" (destructive advice).
    let w = World::new(
        112,
        4,
        vec![group("etcd", &[2, 4, 5])],
        Some((&[2, 5], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true), w.member(5, true)];
    *w.etcd_fault.lock().unwrap() = Some(EtcdFault::NoSpaceAlarm);
    let out = w.run(&["--wait-timeout=1s"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("alarm NOSPACE"), "{err}");
    assert!(err.contains("etcdctl alarm disarm"), "{err}");
    assert!(!err.contains("restore"), "{err}");
    let changes = w.etcd_changes();
    assert!(
        changes
            .iter()
            .any(|(path, _)| path == "/v3/cluster/member/add"),
        "{changes:?}"
    );
}

#[test]
fn a_member_whose_data_is_gone_waits_for_its_peers() {
    // Rule 11 (found by the simulation): this instance joined a running cluster (its file
    // says `existing`), its data directory is now empty and nobody answers (a partition, an
    // outage). Bootstrapping anew would start an empty log under the old cluster's name.
    let w = World::new(
        113,
        2,
        vec![group("etcd", &[2, 3, 4])],
        None,
        vec![],
        Imds::v2(),
    );
    let previous = format!(
        "ETCD_NAME={}\nETCD_INITIAL_CLUSTER_STATE=existing\n",
        super::world::instance_id(2)
    );
    fs::write(w.env_file(), &previous).unwrap();
    let data = w.dir.join("data");
    fs::create_dir(&data).unwrap();
    let out = w.run(&[
        &format!("--etcd-data-dir={}", data.display()),
        "--wait-timeout=1s",
    ]);
    assert_failure(&out, 75, "delete the env file");
    assert!(!stderr(&out).contains("bootstrapping a new cluster"));
    assert_eq!(fs::read_to_string(w.env_file()).unwrap(), previous);
}

/// A bootstrapping member's peer port (captured from etcd 3.4.23: `GET /members` lists the
/// initial cluster by name, IDs as JSON numbers, no `clientURLs` before it publishes).
fn bootstrapping_peer(net: u8, hosts: &[u8]) -> super::fake::FakeServer {
    let members: Vec<String> = hosts
        .iter()
        .map(|k| {
            format!(
                r#"{{"id":{},"peerURLs":["http://{}:2380"],"name":"{}"}}"#,
                6598929098562179454u64 + u64::from(*k),
                World::ip(net, *k),
                super::world::instance_id(*k)
            )
        })
        .collect();
    let body = format!("[{}]", members.join(","));
    super::fake::FakeServer::start_on(&World::ip(net, hosts[0]), 2380, move |r| {
        if r.path == "/members" {
            (200, body.clone())
        } else {
            (404, String::new())
        }
    })
}

#[test]
fn only_the_instance_launched_first_bootstraps_and_the_others_take_part() {
    // Issue 21 (the simulation): two looks at a group that changed in between computed two
    // initial clusters. Now i-2 (the seed: launched first, here the smallest id) decides
    // the initial cluster; i-3 waits for it...
    let w = World::new(
        114,
        3,
        vec![group("etcd", &[2, 3])],
        None,
        vec![],
        Imds::v2(),
    );
    let out = w.run(&["--wait-timeout=1s"]);
    assert_failure(
        &out,
        75,
        "i-00000000000000002 (launched first) bootstraps the cluster",
    );
    assert!(!w.env_file().exists());
    // ...then takes part in the bootstrap the seed's peer port lists, with the same initial
    // cluster (the same URLs and token make the same cluster ID). Its client port accepts
    // connections and stays silent: a bootstrapping etcd serves no client before its leader.
    let _peer = bootstrapping_peer(114, &[2, 3]);
    let _silent = RawPeer::start(&World::ip(114, 2), w.client_port, Peer::Stalls);
    let out = w.run(&["--wait-timeout=1s"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("taking part in the bootstrap"), "{err}");
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert!(text.contains("ETCD_INITIAL_CLUSTER_STATE=new"), "{text}");
    assert!(
        text.contains(&format!(
            "ETCD_INITIAL_CLUSTER={}",
            super::cluster(114, &[2, 3])
        )),
        "{text}"
    );
}

#[test]
fn a_replacement_not_in_the_bootstrap_waits_for_its_leader() {
    let w = World::new(
        115,
        4,
        vec![group("etcd", &[2, 4])],
        None,
        vec![],
        Imds::v2(),
    );
    let _peer = bootstrapping_peer(115, &[2, 3]);
    let out = w.run(&["--wait-timeout=1s"]);
    assert_failure(&out, 75, "being bootstrapped without this instance");
    assert!(!w.env_file().exists());
}

#[test]
fn a_member_with_data_restarts_while_the_others_serve_no_client() {
    // Found by the simulation: after a power cut the first etcd back (from its data) serves
    // no client until a quorum is up; every other node saw "somebody there, no list",
    // waited, and never started its etcd: the cluster never came back.
    let w = World::new(
        116,
        3,
        vec![group("etcd", &[2, 3])],
        None,
        vec![],
        Imds::v2(),
    );
    let _silent = RawPeer::start(&World::ip(116, 2), w.client_port, Peer::Stalls);
    let data = w.dir.join("data");
    fs::create_dir_all(data.join("member/wal")).unwrap();
    let out = w.run(&[
        &format!("--etcd-data-dir={}", data.display()),
        "--wait-timeout=1s",
    ]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("restarting etcd from it"), "{err}");
}
