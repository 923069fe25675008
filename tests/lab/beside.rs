//! Rules 16 and 17: nothing is bootstrapped beside a cluster the group still holds, on an
//! instance on its way out or on instances a join recorded, when nobody answers. Both were
//! found by the simulation (K9). Networks 127.0.63.0/24 and 127.0.64.0/24.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::fake::FakeServer;
use super::lab::{etcdctl, moto_proxy, EtcdFlags, Lab};
use super::{bootstrap, NO_TLS};

/// In front of moto: instances named in `leaving` are listed in `Terminating:Wait`, and no
/// longer desired.
fn aws_side(moto: &str, leaving: Arc<Mutex<Vec<String>>>) -> FakeServer {
    moto_proxy("127.0.0.1", moto, move |mut body| {
        for id in leaving.lock().unwrap().iter() {
            if body.contains(&format!("<InstanceId>{id}</InstanceId>")) {
                body = undesired(&terminating(&body, id));
            }
        }
        body
    })
}

/// Instance k's tool waits (exit 75) for `why` and writes no file, so etcd starts nothing.
fn waits_without_a_file(lab: &Lab, k: u8, why: &str) {
    let out = lab.discover(k, &["--wait-timeout=2s"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{log}");
    assert!(log.contains(why), "{log}");
    assert!(!lab.env_file(k).exists(), "no file, so etcd starts nothing");
}

/// Instance k joins the cluster that `through` serves, and reads the key written before.
fn joins_and_reads_kept(lab: &mut Lab, k: u8, through: u8, flags: &EtcdFlags) {
    lab.wait_healthy(through, NO_TLS);
    lab.discover_ok(k, &[]);
    assert_eq!(lab.env_value(k, "ETCD_INITIAL_CLUSTER_STATE"), "existing");
    lab.start_etcd(k, flags);
    lab.wait_healthy(k, NO_TLS);
    assert_eq!(
        etcdctl(lab, k, &["get", "kept", "--print-value-only"]).trim(),
        "yes"
    );
}

/// `body` with the lifecycle state that follows instance `id`'s entry made `Terminating:Wait`.
fn terminating(body: &str, id: &str) -> String {
    let marker = format!("<InstanceId>{id}</InstanceId>");
    let Some(at) = body.find(&marker) else {
        return body.to_string();
    };
    let (head, tail) = body.split_at(at);
    let entry_end = tail.find("</member>").unwrap_or(tail.len());
    let (entry, rest) = tail.split_at(entry_end);
    let entry = entry.replace(
        "<LifecycleState>InService</LifecycleState>",
        "<LifecycleState>Terminating:Wait</LifecycleState>",
    );
    format!("{head}{entry}{rest}")
}

/// `body` with the group's desired capacity one less (one group per answer in this lab).
fn undesired(body: &str) -> String {
    let (open, close) = ("<DesiredCapacity>", "</DesiredCapacity>");
    let Some(start) = body.find(open).map(|i| i + open.len()) else {
        return body.to_string();
    };
    let Some(len) = body[start..].find(close) else {
        return body.to_string();
    };
    let desired: u32 = body[start..start + len].parse().unwrap_or(1);
    format!(
        "{}{}{}",
        &body[..start],
        desired.saturating_sub(1),
        &body[start + len..]
    )
}

/// Rule 16: a group of one whose member's instance is scaled in while its replacement boots.
/// moto has no lifecycle hooks, so the lab's AWS side shows the member's instance in
/// `Terminating:Wait`, and the group's desired capacity without it, as AutoScaling does while
/// a termination hook runs.
#[test]
fn a_replacement_never_bootstraps_beside_a_member_on_its_way_out() {
    let mut lab = Lab::new(63);
    let leaving = Arc::new(Mutex::new(Vec::new()));
    lab.aws = Some(aws_side(&lab.moto.url, leaving.clone()));
    let flags = EtcdFlags::default();
    bootstrap(&mut lab, &[1], &flags);
    etcdctl(&lab, 1, &["put", "kept", "yes"]);

    // The group of one scales i-1 in while i-1 is rebooting (its etcd does not answer), and
    // launches i-2.
    leaving
        .lock()
        .unwrap()
        .push(lab.nodes[&1].instance_id.clone());
    lab.nodes.get_mut(&1).unwrap().etcd = None;
    lab.launch("etcd", 2);
    waits_without_a_file(&lab, 2, "still listed on the way out of the group");

    // Back from its reboot, i-1's etcd serves again: i-2 joins it, no second cluster.
    lab.start_etcd(1, &flags);
    joins_and_reads_kept(&mut lab, 2, 1, &flags);
}

/// Rule 17: the initial cluster's instance is gone, and the cluster runs on instances that
/// joined it since; an instance launched before them (a warm pool's, put in service) is the
/// group's seed. While their etcd does not answer it, it must not bootstrap beside them.
#[test]
fn an_older_instance_never_bootstraps_beside_members_that_joined() {
    let mut lab = Lab::new(64);
    let flags = EtcdFlags::default();
    lab.create_group("etcd", "etcd-masters");
    // i-3 first (moto's launch times have whole seconds): older than the members to come.
    lab.launch_targeted(3, "InService");
    std::thread::sleep(Duration::from_millis(1100));
    lab.launch("etcd", 1);
    lab.discover_ok(1, &[]);
    lab.start_etcd(1, &flags);
    lab.wait_healthy(1, NO_TLS);
    for k in [2, 4] {
        lab.launch("etcd", k);
        let log = lab.discover_ok(k, &[]);
        assert!(log.contains("recorded the cluster's members"), "{log}");
        lab.start_etcd(k, &flags);
        lab.wait_healthy(k, NO_TLS);
    }
    etcdctl(&lab, 2, &["put", "kept", "yes"]);
    let tags = lab.moto.call(
        "autoscaling",
        "DescribeAutoScalingGroups",
        &[("AutoScalingGroupNames.member.1", "etcd")],
    );
    let recorded = tags
        .split("<Key>etcd-discovery:members</Key><Value>")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_else(|| panic!("no members tag: {tags}"));
    let mut entries: Vec<&str> = recorded.split(' ').collect();
    entries.sort_unstable();
    let mut expected: Vec<String> = [1, 2, 4]
        .iter()
        .map(|k| format!("{}=http://{}:2380", lab.nodes[k].instance_id, lab.ip(*k)))
        .collect();
    expected.sort_unstable();
    assert_eq!(
        entries, expected,
        "etcd's member list, as the last join's file has it"
    );

    // The seed's instance goes (the rest keep the quorum); then both members reboot at once,
    // and i-3 enters service meanwhile, the group's oldest instance.
    lab.terminate(1);
    lab.nodes.get_mut(&2).unwrap().etcd = None;
    lab.nodes.get_mut(&4).unwrap().etcd = None;
    lab.attach("etcd", 3);
    waits_without_a_file(&lab, 3, "etcd-discovery:members names");

    // Back from their reboot, the members serve again: i-3 joins them in i-1's place.
    lab.start_etcd(2, &flags);
    lab.start_etcd(4, &flags);
    joins_and_reads_kept(&mut lab, 3, 2, &flags);
}
