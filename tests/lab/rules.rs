//! The simulator's etcd rules (`tests/sim/world.rs`, its header comment, `change` and
//! `start_etcd`) checked against the real etcd the lab runs (3.4 from Debian, 3.5.1 from
//! `LAB_ETCD_DIR`): each assertion names the rule it checks and asks real etcd the same
//! question, so the model is checked against the real thing, not against itself (issue 21).
//! Two clusters serve every rule; each step leaves its cluster in a known state.

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::fake::FakeServer;
use super::lab::{self, etcdctl, etcdctl_output, EtcdFlags, Lab};
use super::{bootstrap, NO_TLS};

/// `member add` through k; Ok(stdout) or Err(stderr).
fn member_add(lab: &Lab, k: u8, args: &[&str]) -> Result<String, String> {
    let mut all = vec!["member", "add"];
    all.extend_from_slice(args);
    let out = etcdctl_output(lab, k, &all);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A `member add` that must be accepted: etcd answers "unhealthy cluster" for 5 s after any
/// member (re)connects (`isConnectedFullySince`), so that answer alone is retried, bounded.
fn member_add_ok(lab: &Lab, k: u8, args: &[&str]) -> String {
    let mut answer = Err(String::new());
    lab::wait_until(
        &format!("member add {args:?} to be accepted"),
        Duration::from_secs(20),
        || {
            answer = member_add(lab, k, args);
            match &answer {
                Ok(_) => true,
                Err(e) if e.contains("unhealthy cluster") => false,
                Err(e) => panic!("member add {args:?} refused: {e}"),
            }
        },
    );
    answer.unwrap()
}

/// The hex ID of the member with this peer URL, through k.
fn member_id(lab: &Lab, k: u8, peer_url: &str) -> String {
    etcdctl(lab, k, &["member", "list"])
        .lines()
        .map(|l| l.split(", ").collect::<Vec<_>>())
        .find(|f| f.get(3) == Some(&peer_url))
        .map(|f| f[0].to_string())
        .unwrap_or_else(|| panic!("no member with peer URL {peer_url}"))
}

fn peer_url(lab: &Lab, k: u8) -> String {
    format!("http://{}:2380", lab.ip(k))
}

/// The environment the tool writes for a node joining as `existing`, with this initial
/// cluster.
fn join_env(lab: &Lab, k: u8, name: &str, initial: &str) -> Vec<(String, String)> {
    let ip = lab.ip(k);
    [
        ("ETCD_NAME", name.to_string()),
        ("ETCD_INITIAL_CLUSTER", initial.to_string()),
        ("ETCD_INITIAL_CLUSTER_STATE", "existing".to_string()),
        (
            "ETCD_INITIAL_ADVERTISE_PEER_URLS",
            format!("http://{ip}:2380"),
        ),
        ("ETCD_LISTEN_PEER_URLS", format!("http://{ip}:2380")),
        ("ETCD_LISTEN_CLIENT_URLS", format!("http://{ip}:2379")),
        ("ETCD_ADVERTISE_CLIENT_URLS", format!("http://{ip}:2379")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Asserts `text` (etcdctl's answer or etcd's log) holds `needle`; prints the line it is on,
/// so a run with `--nocapture` shows the exact words of the etcd under test.
fn assert_says(what: &str, text: &str, needle: &str) {
    let line = text
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{what}: no {needle:?} in:\n{text}"));
    println!("{what}: {}", line.trim());
}

fn etcd_log(lab: &Lab, k: u8) -> String {
    fs::read_to_string(lab.node_dir(k).join("etcd.log")).unwrap_or_default()
}

/// Waits (bounded) until the etcd in `guard` has exited; returns its exit code and log.
fn wait_exit(lab: &Lab, k: u8, guard: &mut lab::Guard, why: &str) -> (Option<i32>, String) {
    let mut status = None;
    lab::wait_until(
        &format!("etcd {k} to exit ({why})"),
        Duration::from_secs(30),
        || {
            status = guard.child.try_wait().unwrap();
            status.is_some()
        },
    );
    let code = status.and_then(|s| s.code());
    println!("etcd {k} ({why}) exited: {code:?}");
    (code, etcd_log(lab, k))
}

/// Waits until k's etcd no longer counts `remote` (a hex member ID) as an active peer: its
/// `etcd_network_active_peers` gauge for it is 0 (rafthttp's peer status, what
/// `mayRemoveMember` reads through `ActiveSince`).
fn wait_peer_inactive(lab: &Lab, k: u8, remote: &str) {
    let url = format!("{}/metrics", lab.env_value(k, "ETCD_ADVERTISE_CLIENT_URLS"));
    let label = format!("Remote=\"{remote}\"");
    lab::wait_until(
        &format!("etcd {k} to see peer {remote} inactive"),
        Duration::from_secs(20),
        || {
            super::client::request("GET", &url, &[], "").is_ok_and(|(_, body)| {
                body.lines().any(|l| {
                    l.starts_with("etcd_network_active_peers{")
                        && l.contains(&label)
                        && l.ends_with(" 0")
                })
            })
        },
    );
}

/// Waits until k's etcd serves a linearizable read: the cluster has a leader.
fn wait_leader(lab: &Lab, k: u8) {
    lab::wait_until(
        &format!("a leader seen from etcd {k}"),
        Duration::from_secs(20),
        || {
            etcdctl_output(
                lab,
                k,
                &["get", "rules-leader-probe", "--command-timeout=2s"],
            )
            .status
            .success()
        },
    );
}

#[test]
fn strict_reconfiguration_and_the_learner_limit_on_one_member() {
    // A cluster of one, bootstrapped by the tool.
    let mut lab = Lab::new(60);
    bootstrap(&mut lab, &[2], &EtcdFlags::default());

    // world.rs: "an `AddLearner` ... is refused while the cluster has a learner
    // (`maxLearners`, 1: "too many learner members")"; in `change`: `if learner &&
    // cluster.members.iter().any(|m| m.learner) { return Ok(Err(75)); }` (the tool retries
    // that answer, then exits 75). membership/cluster.go `ValidateConfigurationChange`.
    let url3 = peer_url(&lab, 3);
    member_add_ok(
        &lab,
        2,
        &["learner-3", "--learner", &format!("--peer-urls={url3}")],
    );
    let url4 = peer_url(&lab, 4);
    let err = member_add(
        &lab,
        2,
        &["learner-4", "--learner", &format!("--peer-urls={url4}")],
    )
    .expect_err("a second learner is refused");
    assert_says(
        "second learner",
        &err,
        "etcdserver: too many learner members in cluster",
    );
    // Known state: voter 2 started, learner 3 unstarted (a learner is no voter: the voter
    // rules below do not count it).

    // world.rs: "strict reconfiguration refuses a voter when the started voters would not
    // make a quorum of the larger cluster (1 -> 2 allowed, `IsReadyToAddVotingMember`)";
    // in `change`: `let grows_single = started == 1 && voters == 1;
    // if !grows_single && started < quorum(voters + 1) { ... // not enough started members`.
    let url5 = peer_url(&lab, 5);
    member_add_ok(&lab, 2, &["voter-5", &format!("--peer-urls={url5}")]);
    // Two voters, one started: a third would need two started.
    let url6 = peer_url(&lab, 6);
    let err = member_add(&lab, 2, &["voter-6", &format!("--peer-urls={url6}")])
        .expect_err("a third voter is refused");
    assert_says(
        "third voter",
        &err,
        "etcdserver: re-configuration failed due to not enough started members",
    );
}

#[test]
fn a_learner_is_promoted_only_once_it_runs_caught_up() {
    // world.rs: "the promote unit's `promote` is accepted once the learner runs connected to
    // the leader (caught up, `isLearnerReady`)"; in `change`: `if !self.connected(id,
    // *member) { return Ok(Err(75)); }`, then `m.learner = false`.
    let mut lab = Lab::new(78);
    bootstrap(&mut lab, &[2], &EtcdFlags::default());
    let url3 = peer_url(&lab, 3);
    member_add_ok(
        &lab,
        2,
        &["learner-3", "--learner", &format!("--peer-urls={url3}")],
    );
    let id3 = member_id(&lab, 2, &url3);
    let out = etcdctl_output(&lab, 2, &["member", "promote", &id3]);
    assert!(!out.status.success(), "an unstarted learner was promoted");
    assert_says(
        "promote an unstarted learner",
        &String::from_utf8_lossy(&out.stderr),
        "can only promote a learner member which is in sync with leader",
    );
    assert_eq!(lab.learners(2), vec![url3.clone()], "still a learner");
    // It starts (`existing`, as the tool's file for a learner says) and catches up: the
    // same promote is accepted, and it votes.
    let initial = format!(
        "{},learner-3={url3}",
        lab.env_value(2, "ETCD_INITIAL_CLUSTER")
    );
    let _etcd3 = lab.spawn_etcd(
        3,
        join_env(&lab, 3, "learner-3", &initial),
        &EtcdFlags::default(),
    );
    lab::wait_until(
        "the running learner's promote to be accepted",
        Duration::from_secs(30),
        || {
            etcdctl_output(&lab, 2, &["member", "promote", &id3])
                .status
                .success()
        },
    );
    assert!(lab.learners(2).is_empty(), "it votes now");
    assert_eq!(lab.members(2, NO_TLS).len(), 2);
}

#[test]
fn unhealthy_cluster_member_count_removal_quorum_removed_member_and_rebootstrap() {
    let mut lab = Lab::new(61);
    let nodes = [2, 3, 4];
    bootstrap(&mut lab, &nodes, &EtcdFlags::default());
    let initial = lab.env_value(2, "ETCD_INITIAL_CLUSTER");

    // world.rs: "3.4 refuses any add while a voter is not connected ("unhealthy cluster",
    // `isConnectedFullySince`), so a second unstarted member is refused"; in `change`:
    // `Version::V34 => connected(self, &cluster) == voters`. (3.5.1 answers as 3.4 here.)
    let url5 = peer_url(&lab, 5);
    member_add_ok(&lab, 2, &["node-5", &format!("--peer-urls={url5}")]);
    let url6 = peer_url(&lab, 6);
    let err = member_add(&lab, 2, &["node-6", &format!("--peer-urls={url6}")])
        .expect_err("a second unstarted member is refused");
    assert_says(
        "second unstarted member",
        &err,
        "etcdserver: unhealthy cluster",
    );
    assert_eq!(
        lab.members(2, NO_TLS).len(),
        4,
        "the refused add left no entry"
    );

    // world.rs: "a node started `existing` fetches the member list from a peer of its initial
    // cluster and refuses to start when the counts differ ("member count is unequal")"; in
    // `start_etcd`: `if cluster.members.len() != file.initial.len() { return refuse(...`.
    // Node 5's file names itself and two of the three others (node 4 left out).
    let missing = format!("{}={}", lab.nodes[&4].instance_id, peer_url(&lab, 4));
    let mut short: Vec<&str> = initial.split(',').filter(|e| *e != missing).collect();
    assert_eq!(short.len(), 2, "node 4 left out of {initial}");
    let own = format!("node-5={url5}");
    short.push(&own);
    let short = short.join(",");
    let mut etcd5 = lab.spawn_etcd(
        5,
        join_env(&lab, 5, "node-5", &short),
        &EtcdFlags::default(),
    );
    let (code, log) = wait_exit(&lab, 5, &mut etcd5, "member count is unequal");
    assert_says("member count", &log, "member count is unequal");
    assert_eq!(code, Some(1), "{log}");
    // Back to three started members: the unstarted entry is removed.
    let id5 = member_id(&lab, 2, &url5);
    etcdctl(&lab, 2, &["member", "remove", &id5]);
    lab.assert_cluster_is_the_nodes(2, NO_TLS);

    // world.rs: "a removal needs a leader and must leave a connected quorum
    // (`mayRemoveMember`)"; in `change`: `after.members.retain(|m| m.id != *member);
    // if connected(self, &after) < quorum(after.members.len()) { ... // unhealthy cluster`.
    // A node whose file says `new` is kept for the last rule; of the other two, `gone`'s etcd
    // stops: removing the running `other` would leave 2 of 2 with one connected.
    let fresh = *nodes
        .iter()
        .find(|k| lab.env_value(**k, "ETCD_INITIAL_CLUSTER_STATE") == "new")
        .expect("the seed wrote `new`");
    let others: Vec<u8> = nodes.into_iter().filter(|k| *k != fresh).collect();
    let (gone, other) = (others[0], others[1]);
    let id_gone = member_id(&lab, fresh, &peer_url(&lab, gone));
    let id_other = member_id(&lab, fresh, &peer_url(&lab, other));
    lab.nodes.get_mut(&gone).unwrap().etcd.take();
    wait_peer_inactive(&lab, fresh, &id_gone);
    // `gone` may have led: a change proposed before the two left elect a leader is dropped
    // and times out ("a removal needs a leader"), so both questions are asked with one.
    wait_leader(&lab, fresh);
    let out = etcdctl_output(&lab, fresh, &["member", "remove", &id_other]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "removing running node {other} was accepted"
    );
    assert_says(
        "remove running member",
        &err,
        "etcdserver: unhealthy cluster",
    );
    // Removing the stopped one leaves 2 of 2 connected: accepted.
    etcdctl(&lab, fresh, &["member", "remove", &id_gone]);
    assert_eq!(lab.members(fresh, NO_TLS).len(), 2);

    // world.rs: "a node with data restarts as its member; a removed member does not run:
    // real etcd starts, hears it was removed (once a member answers it) and exits with
    // status 0, and etcd's unit (`Restart=always`) runs discovery again". `gone` starts from
    // its old data and file: exit 0, which is why etcd's drop-in restarts always (the boot
    // test's scenario 6 shows the restart under systemd).
    let env = lab.env_of(gone);
    let mut etcd = lab.spawn_etcd(gone, env, &EtcdFlags::default());
    let (code, log) = wait_exit(&lab, gone, &mut etcd, "a removed member");
    assert_says(
        "removed member",
        &log,
        "the member has been permanently removed from the cluster",
    );
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(lab.members(fresh, NO_TLS).len(), 2, "it did not come back");

    // world.rs: "a node started `new` joins the cluster its token and initial cluster name;
    // one that was already started ("member has already been bootstrapped") refuses"; in
    // `start_etcd`: `if published && peer_knows { return refuse("member has already been
    // bootstrapped"...`. `fresh` loses its data and starts from its `new` file; `other`
    // answers on its peer port.
    lab.nodes.get_mut(&fresh).unwrap().etcd.take();
    fs::remove_dir_all(lab.data_dir(fresh)).unwrap();
    let env = lab.env_of(fresh);
    let mut etcd = lab.spawn_etcd(fresh, env, &EtcdFlags::default());
    let (code, log) = wait_exit(&lab, fresh, &mut etcd, "already bootstrapped");
    assert_says(
        "new member without data",
        &log,
        "has already been bootstrapped",
    );
    assert_eq!(code, Some(1), "{log}");
}

#[test]
fn an_initial_member_removed_before_it_ran_exits_0_at_its_new_start() {
    // world.rs, `start_etcd`'s `new` arm: "An initial member the cluster removed before it
    // ever ran (its instance sat in a warm pool): etcd writes its data, hears it was removed,
    // exits 0, and the unit's restart runs discovery again". Nodes 2, 3 and 4 write one
    // bootstrap's `new` files; 2 and 3 form the cluster; node 4's member is removed; then its
    // etcd starts from its file.
    let mut lab = Lab::new(79);
    lab.create_group("etcd", "etcd-masters");
    lab.launch("etcd", 2);
    // The seed is the instance launched first, alone in its second of launch time.
    std::thread::sleep(Duration::from_millis(1100));
    for k in [3, 4] {
        lab.launch("etcd", k);
    }
    let running: Vec<_> = [2, 3, 4]
        .iter()
        .map(|k| (*k, lab.discover_spawn(*k, &[])))
        .collect();
    lab.finish_each(running, |_, _| {});
    for k in [2, 3, 4] {
        assert_eq!(lab.env_value(k, "ETCD_INITIAL_CLUSTER_STATE"), "new");
    }
    for k in [2, 3] {
        lab.start_etcd(k, &EtcdFlags::default());
    }
    lab.wait_healthy(2, NO_TLS);
    let id4 = member_id(&lab, 2, &peer_url(&lab, 4));
    etcdctl(&lab, 2, &["member", "remove", &id4]);
    let env = lab.env_of(4);
    let mut etcd4 = lab.spawn_etcd(4, env, &EtcdFlags::default());
    let (code, log) = wait_exit(&lab, 4, &mut etcd4, "a removed initial member");
    assert_says(
        "removed initial member",
        &log,
        "the member has been permanently removed from the cluster",
    );
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(lab.members(2, NO_TLS).len(), 2, "it did not come back");
}

#[test]
fn an_existing_start_without_data_needs_a_decided_cluster_version() {
    // Rule 18 (the model's `start_etcd`, "incompatible with current running cluster"): etcd
    // started `existing` from an empty data directory asks its peers' `/version` and exits
    // while none names the cluster's version. The peer is a fake that lists the two members
    // and answers `/version` with what a real member says in the moments after its cluster
    // formed (fixtures/etcd/version-not-decided.json), then with a decided version.
    let lab = Lab::new(65);
    let decided = Arc::new(AtomicBool::new(false));
    let (peer, joiner) = (peer_url(&lab, 9), peer_url(&lab, 8));
    let members = format!(
        r#"[{{"id":4369,"peerURLs":["{peer}"],"name":"seen","clientURLs":["http://{}:2379"]}},{{"id":8738,"peerURLs":["{joiner}"],"name":"joiner","clientURLs":[]}}]"#,
        lab.ip(9)
    );
    let answer = decided.clone();
    let _peer = FakeServer::start_with_headers(&lab.ip(9), 2380, move |r| {
        let cluster = vec![("X-Etcd-Cluster-ID".to_string(), "5555".to_string())];
        match r.path.as_str() {
            "/members" => (200, cluster, members.clone()),
            // 3.0.0: what a leader decides first while a member's version is unknown
            // (etcd's MinClusterVersion); both 3.4 and 3.5 accept it, and 3.4 refuses the
            // 3.5.0 of fixtures/etcd/version-decided.json as too high.
            "/version" if answer.load(Ordering::SeqCst) => (
                200,
                cluster,
                r#"{"etcdserver":"3.4.23","etcdcluster":"3.0.0"}"#.into(),
            ),
            "/version" => (
                200,
                cluster,
                include_str!("../../fixtures/etcd/version-not-decided.json").into(),
            ),
            _ => (404, cluster, String::new()),
        }
    });
    let initial = format!("seen={peer},joiner={joiner}");
    let env = join_env(&lab, 8, "joiner", &initial);
    let mut etcd = lab.spawn_etcd(8, env.clone(), &EtcdFlags::default());
    let (_, log) = wait_exit(&lab, 8, &mut etcd, "no peer has decided the version");
    assert_says(
        "undecided",
        &log,
        "incompatible with current running cluster",
    );

    // Decided: the same start gets past the check (it then waits for the fake's raft).
    decided.store(true, Ordering::SeqCst);
    fs::remove_dir_all(lab.data_dir(8)).ok();
    let mut etcd = lab.spawn_etcd(8, env, &EtcdFlags::default());
    std::thread::sleep(Duration::from_secs(3));
    let log = etcd_log(&lab, 8);
    assert!(
        etcd.child.try_wait().unwrap().is_none() && !log.contains("incompatible"),
        "a decided version lets the join start:\n{log}"
    );
}
