//! Rule 14: the seed records its bootstrap in its group's tags before its etcd can start, and
//! every bootstrap reads the record, so that the seed's loss in the group's first minutes
//! cannot make the others bootstrap a second cluster.
//! Networks 127.0.190-199.0/24.

use std::fs;
use std::sync::{Arc, Mutex};

use super::bucket::{self, Objects};
use super::fake::FakeServer;
use super::world::{instance_id, EtcdApi, Imds, World};
use super::{
    assert_failure, assert_success, aws_actions, cluster, env_value, group, run_and_read, stderr,
};

/// The record tag as the seed writes it: the initial cluster with spaces for commas.
fn record_of(net: u8, hosts: &[u8]) -> (String, String) {
    (
        "etcd-discovery:initial-cluster".into(),
        cluster(net, hosts).replace(',', " "),
    )
}

#[test]
fn an_initial_member_takes_part_in_the_recorded_bootstrap_when_the_seed_is_gone() {
    // Regression (the simulation's K2): the seed i-2 recorded {2, 3, 4} and its etcd ran;
    // then its instance was terminated and i-5 launched. Nobody answers. i-3 used to become
    // the seed of {3, 4, 5}: a second cluster beside whatever i-2's etcd started with i-4.
    let mut g = group("etcd", &[3, 4, 5]);
    g.tags.push(record_of(190, &[2, 3, 4]));
    let w = World::new(190, 3, vec![g], None, vec![], Imds::v2());
    let out = w.run(&[]);
    assert_success(&out);
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(env_value(&text, "ETCD_INITIAL_CLUSTER_STATE"), "new");
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER"),
        cluster(190, &[2, 3, 4])
    );
    assert!(
        stderr(&out).contains("taking part in the bootstrap of 3 members recorded"),
        "{}",
        stderr(&out)
    );
    // Taking part records nothing: the record stays the seed's.
    assert!(!aws_actions(&w).contains(&"CreateOrUpdateTags".to_string()));
}

#[test]
fn an_instance_outside_the_recorded_bootstrap_waits_for_it() {
    // i-5 replaced the seed: it is not in the record, so it joins once the recorded cluster
    // has a leader, and never bootstraps.
    let mut g = group("etcd", &[3, 4, 5]);
    g.tags.push(record_of(191, &[2, 3, 4]));
    let w = World::new(191, 5, vec![g], None, vec![], Imds::v2());
    fs::write(w.env_file(), "OLD=1\n").unwrap();
    let out = w.run(&["--wait-timeout=2s"]);
    assert_failure(
        &out,
        75,
        "a bootstrap of 3 members recorded for the group is under way without this instance",
    );
    assert_eq!(fs::read_to_string(w.env_file()).unwrap(), "OLD=1\n");
}

#[test]
fn a_record_most_of_whose_instances_are_gone_is_replaced() {
    // Only i-3 of the recorded {1, 2, 3} is left: that cluster can never have a quorum again.
    // The seed of today's group bootstraps anew and records its own cluster.
    let mut g = group("etcd", &[3, 4, 5]);
    g.tags.push(record_of(192, &[1, 2, 3]));
    let w = World::new(192, 3, vec![g], None, vec![], Imds::v2());
    let out = w.run(&[]);
    assert_success(&out);
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER"),
        cluster(192, &[3, 4, 5])
    );
    let tags = w.groups.lock().unwrap()[0].tags.clone();
    assert!(tags.contains(&record_of(192, &[3, 4, 5])), "{tags:?}");
}

#[test]
fn a_long_record_is_written_in_parts_and_read_back_whole() {
    // Nine members do not fit one 256-character tag value.
    let hosts = [2, 3, 4, 5, 6, 7, 8, 9, 10];
    let w = World::new(
        193,
        2,
        vec![group("etcd", &hosts)],
        None,
        vec![],
        Imds::v2(),
    );
    assert_success(&w.run(&[]));
    let tags = w.groups.lock().unwrap()[0].tags.clone();
    let parts: Vec<&(String, String)> = tags
        .iter()
        .filter(|(k, _)| k.starts_with("etcd-discovery:initial-cluster"))
        .collect();
    assert!(parts.len() >= 2, "{parts:?}");
    assert!(parts
        .iter()
        .all(|(_, v)| v.len() <= 256 && !v.contains(',')));
    // Another initial member, with the seed gone, reads the parts back as one cluster (the
    // same record, moved to this test's network).
    let mut g = group("etcd", &[3, 4, 5, 6, 7, 8, 9, 10, 11]);
    g.tags = tags
        .iter()
        .map(|(k, v)| (k.clone(), v.replace("127.0.193.", "127.0.194.")))
        .collect();
    let w = World::new(194, 3, vec![g], None, vec![], Imds::v2());
    assert_success(&w.run(&[]));
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER"),
        cluster(194, &hosts)
    );
}

#[test]
fn a_record_naming_this_instance_at_another_url_is_refused() {
    // The group bootstrapped with other settings (another peer port): following the record
    // would start an etcd whose own URL is not in its initial cluster.
    let mut g = group("etcd", &[3, 4, 5]);
    let (key, value) = record_of(196, &[2, 3, 4]);
    g.tags.push((key, value.replace(":2380", ":2390")));
    let w = World::new(196, 3, vec![g], None, vec![], Imds::v2());
    fs::write(w.env_file(), "OLD=1\n").unwrap();
    let out = w.run(&[]);
    assert_failure(&out, 2, "names this instance at http://127.0.196.3:2390");
    assert_eq!(fs::read_to_string(w.env_file()).unwrap(), "OLD=1\n");
}

#[test]
fn without_the_tagging_permission_the_seed_warns_and_bootstraps() {
    // A policy written for an older version lacks autoscaling:CreateOrUpdateTags: the
    // bootstrap goes on as before, and the log says what the record is for.
    let w = World::new(
        195,
        2,
        vec![group("etcd", &[2, 3, 4])],
        None,
        vec![],
        Imds::v2(),
    );
    w.aws_faults
        .denied_actions
        .lock()
        .unwrap()
        .push("CreateOrUpdateTags".into());
    let out = w.run(&[]);
    assert_success(&out);
    let log = stderr(&out);
    assert!(
        log.contains("allow autoscaling:CreateOrUpdateTags"),
        "{log}"
    );
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(env_value(&text, "ETCD_NAME"), instance_id(2));
    assert_eq!(env_value(&text, "ETCD_INITIAL_CLUSTER_STATE"), "new");
}

#[test]
fn a_seed_records_nothing_when_an_instance_entered_since_its_look() {
    // Regression (the simulation's K10): i-2 looked at {2, 3, 4} and is their seed; then i-1,
    // launched before it (a warm instance put in service), entered the group. i-1 is the seed
    // of the group as it now is and decides too: with both records in one tag, each could read
    // its own back. The seed reads the group again just before recording: it writes nothing
    // and no file, and its next run leaves the bootstrap to i-1.
    let w = World::new(
        225,
        2,
        vec![group("etcd", &[2, 3, 4])],
        None,
        vec![],
        Imds::v2(),
    );
    *w.aws_faults.enters_after_a_look.lock().unwrap() = Some(1);
    fs::write(w.env_file(), "OLD=1\n").unwrap();
    let out = w.run(&[]);
    let entered = format!(
        "the group counts instance {} since this run looked",
        instance_id(1)
    );
    assert_failure(&out, 75, &entered);
    assert!(!aws_actions(&w).contains(&"CreateOrUpdateTags".to_string()));
    assert_eq!(fs::read_to_string(w.env_file()).unwrap(), "OLD=1\n");
    let out = w.run(&["--wait-timeout=1s"]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(!aws_actions(&w).contains(&"CreateOrUpdateTags".to_string()));
    assert_eq!(fs::read_to_string(w.env_file()).unwrap(), "OLD=1\n");
}

#[test]
fn a_seed_records_nothing_when_another_recorded_since_its_look() {
    // Another seed, with another view of the group, recorded {2, 3, 5} between this seed's
    // look and its write. Writing over it would leave that seed's bootstrap unrecorded while
    // it may go on: this seed writes nothing, and its next run takes part in the recorded one.
    let w = World::new(
        226,
        2,
        vec![group("etcd", &[2, 3, 4])],
        None,
        vec![],
        Imds::v2(),
    );
    *w.aws_faults.tagged_after_a_look.lock().unwrap() = Some(record_of(226, &[2, 3, 5]));
    fs::write(w.env_file(), "OLD=1\n").unwrap();
    let out = w.run(&[]);
    assert_failure(
        &out,
        75,
        "another instance recorded a bootstrap for the group since this run looked",
    );
    assert!(!aws_actions(&w).contains(&"CreateOrUpdateTags".to_string()));
    assert_eq!(fs::read_to_string(w.env_file()).unwrap(), "OLD=1\n");
    let text = run_and_read(&w, &[]);
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER"),
        cluster(226, &[2, 3, 5])
    );
}

#[test]
fn a_member_on_an_instance_on_its_way_out_is_asked_too() {
    // Regression (the simulation's operations): two of three members were scaled in during
    // the first boot; their instances sit in Terminating:Wait and still run etcd. i-2, the one
    // the group counts, asked only the counted instances, heard nobody and bootstrapped a
    // second cluster. The leaving i-3 answers: i-2 starts as the member the cluster lists for
    // it, and bootstraps nothing.
    let mut g = group("etcd", &[2]);
    g.instances.push((3, "Terminating:Wait".into()));
    let w = World::new(
        197,
        2,
        vec![g],
        Some((&[3], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(3, true), w.member(2, false)];
    let out = w.run(&["--wait-timeout=2s"]);
    let log = stderr(&out);
    assert!(!log.contains("bootstrapping a new cluster"), "{log}");
    assert_success(&out);
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(env_value(&text, "ETCD_INITIAL_CLUSTER_STATE"), "existing");
}

#[test]
fn nothing_is_bootstrapped_beside_an_instance_on_its_way_out() {
    // Regression (the simulation's K9): a group of one; its member's instance i-1 was scaled
    // in (Terminating:Wait) and does not answer this node (no TCP session: absence, by the
    // rules). i-4, the only counted instance, bootstrapped beside the cluster still running
    // there. It waits until i-1 is gone.
    let mut g = group("etcd", &[4]);
    g.desired = 1;
    g.instances.push((1, "Terminating:Wait".into()));
    let w = World::new(199, 4, vec![g], None, vec![], Imds::v2());
    fs::write(w.env_file(), "OLD=1\n").unwrap();
    let out = w.run(&["--wait-timeout=1s"]);
    assert_failure(&out, 75, "still listed on the way out of the group");
    assert_eq!(fs::read_to_string(w.env_file()).unwrap(), "OLD=1\n");
    assert!(!aws_actions(&w).contains(&"CreateOrUpdateTags".to_string()));
    // Once it is gone, the group's seed bootstraps.
    w.groups.lock().unwrap()[0]
        .instances
        .retain(|(k, _)| *k != 1);
    let out = w.run(&[]);
    assert_success(&out);
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(env_value(&text, "ETCD_INITIAL_CLUSTER"), cluster(199, &[4]));
}

#[test]
fn a_join_records_the_members_it_leaves() {
    // Rule 17: i-4 joins {2, 3}; the group's tag then names the three of them, in etcd's
    // order, as i-4's file does.
    let w = World::new(
        198,
        4,
        vec![group("etcd", &[2, 3, 4])],
        Some((&[2, 3], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true)];
    let out = w.run(&[]);
    assert_success(&out);
    let text = fs::read_to_string(w.env_file()).unwrap();
    let joined = env_value(&text, "ETCD_INITIAL_CLUSTER");
    assert_eq!(joined, cluster(198, &[2, 3, 4]));
    let groups = w.groups.lock().unwrap();
    assert!(
        groups[0]
            .tags
            .contains(&("etcd-discovery:members".into(), joined.replace(',', " "))),
        "{:?}",
        groups[0].tags
    );
}

#[test]
fn a_removal_records_the_members_it_leaves() {
    // Rule 17, for removals too: i-2 leaves {2, 3, 4}; the group's tag then names the two
    // left. Regression (the simulation, seed 8): a reconcile and a leave took most of the
    // members a join had recorded; a node that never started, cut off from the last running
    // member, read the old record as a cluster lost and bootstrapped beside it.
    let mut g = group("etcd", &[2, 3, 4]);
    g.tags.push((
        "etcd-discovery:members".into(),
        cluster(217, &[1, 2, 3, 4]).replace(',', " "),
    ));
    let w = World::new(
        217,
        2,
        vec![g],
        Some((&[2, 3, 4], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true), w.member(4, true)];
    let out = w.run(&["leave"]);
    assert_success(&out);
    assert!(
        stderr(&out).contains("recorded the members the removal leaves"),
        "{}",
        stderr(&out)
    );
    let groups = w.groups.lock().unwrap();
    assert!(
        groups[0].tags.contains(&(
            "etcd-discovery:members".into(),
            cluster(217, &[3, 4]).replace(',', " ")
        )),
        "{:?}",
        groups[0].tags
    );
}

/// A group of i-2, i-3 and i-4, all members, and what its tags say of the members.
fn three_members(net: u8) -> World {
    let w = World::new(
        net,
        2,
        vec![group("etcd", &[2, 3, 4])],
        Some((&[2, 3, 4], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true), w.member(4, true)];
    w
}

fn members_tag(w: &World) -> Option<String> {
    let groups = w.groups.lock().unwrap();
    groups[0]
        .tags
        .iter()
        .find(|(k, _)| k == "etcd-discovery:members")
        .map(|(_, v)| v.clone())
}

#[test]
fn a_removal_whose_record_cannot_be_written_removes_nobody() {
    // Rule 17: the record goes before the removal. Written after it, a leave killed in
    // between (or a write AWS refused) left a cluster shrunk without a record, and rule 20
    // took a cut-off member's log for a dead bootstrap's: it bootstrapped a second cluster
    // (the simulation, thirteenth session, once a run could be interrupted there). AWS
    // throttles the write: i-2 stays a member, and the run asks to be retried.
    let w = three_members(231);
    w.aws_faults
        .throttled_actions
        .lock()
        .unwrap()
        .push("CreateOrUpdateTags".into());
    let out = w.run(&["leave", "--boot-wait=1s"]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("removing nothing until it is recorded"),
        "{}",
        stderr(&out)
    );
    assert_eq!(w.members.lock().unwrap().len(), 3);
    assert_eq!(members_tag(&w), None);
    // The throttling over, the next run records, then removes.
    w.aws_faults.throttled_actions.lock().unwrap().clear();
    assert_success(&w.run(&["leave"]));
    assert_eq!(w.members.lock().unwrap().len(), 2);
    assert_eq!(
        members_tag(&w),
        Some(cluster(231, &[3, 4]).replace(',', " "))
    );
}

#[test]
fn without_the_tagging_permission_a_removal_warns_and_removes() {
    // A policy written for an older version lacks autoscaling:CreateOrUpdateTags: such a
    // group never has records (its seed bootstrapped without one), so removals go on as
    // before, and the log says what to allow.
    let w = three_members(232);
    w.aws_faults
        .denied_actions
        .lock()
        .unwrap()
        .push("CreateOrUpdateTags".into());
    let out = w.run(&["leave"]);
    assert_success(&out);
    assert!(
        stderr(&out).contains("allow autoscaling:CreateOrUpdateTags"),
        "{}",
        stderr(&out)
    );
    assert_eq!(w.members.lock().unwrap().len(), 2);
}

#[test]
fn a_member_whose_data_directory_is_not_named_starts_as_its_file_said() {
    // Rule 19: no --etcd-data-dir (as with either seed), every member down at once, nobody
    // answers. i-1, launched first, was a member (its file says so): it used to decide a new
    // bootstrap as the group's seed and record it, and i-4, which replaced i-3, took part in
    // it beside the old cluster. It writes the file it had instead, and records nothing.
    let written = cluster(218, &[1, 2, 3]);
    for state in ["existing", "new"] {
        let w = World::new(
            218,
            1,
            vec![group("etcd", &[1, 2, 4])],
            None,
            vec![],
            Imds::v2(),
        );
        let previous = format!(
            "ETCD_NAME={}\nETCD_INITIAL_CLUSTER_STATE={state}\nETCD_INITIAL_CLUSTER={written}\n",
            instance_id(1)
        );
        fs::write(w.env_file(), &previous).unwrap();
        let out = w.run(&[]);
        assert_success(&out);
        assert!(
            stderr(&out).contains("etcd starts as that file said"),
            "{}",
            stderr(&out)
        );
        let text = fs::read_to_string(w.env_file()).unwrap();
        assert_eq!(env_value(&text, "ETCD_INITIAL_CLUSTER_STATE"), state);
        assert_eq!(env_value(&text, "ETCD_INITIAL_CLUSTER"), written);
        assert!(!aws_actions(&w).contains(&"CreateOrUpdateTags".to_string()));
    }
}

#[test]
fn a_fresh_node_never_bootstraps_beside_the_members_a_join_recorded() {
    // Regression (the simulation's K9): the instances of the initial cluster are all gone;
    // i-2 and i-3 joined since, and their etcd does not answer this node (rebooting, or no
    // TCP session). i-1, launched first and never a member, used to bootstrap beside them.
    let mut g = group("etcd", &[1, 2, 3]);
    g.tags.push((
        "etcd-discovery:members".into(),
        cluster(189, &[2, 3, 7]).replace(',', " "),
    ));
    let w = World::new(189, 1, vec![g], None, vec![], Imds::v2());
    let out = w.run(&["--wait-timeout=1s"]);
    assert_failure(
        &out,
        75,
        &format!(
            "the group's tag etcd-discovery:members names {}, {} of a cluster that ran",
            instance_id(2),
            instance_id(3)
        ),
    );
    assert!(!w.env_file().exists());
    assert!(!aws_actions(&w).contains(&"CreateOrUpdateTags".to_string()));
}

// Rule 14 with a bucket (`--snapshot-url`): the record is an object beside the snapshots, and a seed
// writes it only if it is still as the seed's look read it (S3's conditional writes): of two
// seeds deciding at once (the simulation's K7 and K10), one records and the other decides
// again. Networks 127.0.214-216.0/24.

const RECORD_KEY: &str = "etcd/prod/etcd-discovery-bootstrap";

/// `discover` with the bucket (and a named data directory: no snapshot is in it, so a
/// bootstrap goes on empty).
fn discover_with_bucket(w: &World, s3: &FakeServer, extra: &[&str]) -> std::process::Output {
    let data = format!("--etcd-data-dir={}", w.dir.join("data").display());
    let mut args = vec!["--snapshot-url", "s3://bucket/etcd/prod", data.as_str()];
    args.extend(extra);
    w.run_with_env(&args, &[("AWS_ENDPOINT_URL_S3", &s3.url())])
}

/// The conditions the bucket's PutObject calls carried.
fn put_conditions(s3: &FakeServer) -> Vec<(Option<String>, Option<String>)> {
    s3.requests()
        .iter()
        .filter(|r| r.method == "PUT")
        .map(|r| {
            let h = |name: &str| r.header(name).map(str::to_string);
            (h("If-None-Match"), h("If-Match"))
        })
        .collect()
}

fn record_in(objects: &Objects) -> Option<String> {
    let objects = objects.lock().unwrap();
    let found = objects.iter().find(|(k, ..)| k == RECORD_KEY);
    found.map(|(_, _, text, _)| text.clone())
}

#[test]
fn with_a_bucket_the_seed_records_only_where_nobody_recorded() {
    let w = World::new(
        214,
        2,
        vec![group("etcd", &[2, 3, 4])],
        None,
        vec![],
        Imds::v2(),
    );
    let objects: Objects = Arc::default();
    let s3 = bucket::start(&World::ip(214, 9), objects.clone(), None);
    let out = discover_with_bucket(&w, &s3, &[]);
    assert_success(&out);
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(env_value(&text, "ETCD_INITIAL_CLUSTER_STATE"), "new");
    assert_eq!(
        record_in(&objects).as_deref(),
        Some(cluster(214, &[2, 3, 4]).as_str())
    );
    assert_eq!(put_conditions(&s3), [(Some("*".into()), None)]);
    // It says what the bootstrap restores (the bucket holds no snapshot: nothing), as user
    // metadata, which S3 takes only signed.
    let objects_now = objects.lock().unwrap().clone();
    let restores = objects_now.iter().find(|(k, ..)| k == RECORD_KEY);
    assert_eq!(restores.and_then(|o| o.3.as_deref()), Some("none"));
    let put = s3
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .unwrap();
    let authorization = put.header("authorization").unwrap_or_default().to_string();
    assert!(
        authorization.contains("x-amz-meta-restores"),
        "{authorization}"
    );
    // The bucket's record is the one: the tags are not written.
    assert!(!aws_actions(&w).contains(&"CreateOrUpdateTags".to_string()));
    assert!(
        stderr(&out).contains(&format!(
            "recorded the bootstrap at s3://bucket/{RECORD_KEY}"
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_seed_that_loses_the_race_to_record_starts_nothing_and_follows_the_winner() {
    // i-2 saw no record and decided to bootstrap {2, 3, 4}; before its write, another seed
    // (one that saw i-2 leave and i-5 arrive) recorded {3, 4, 5}. Tags would have let both
    // go on, each reading its own record back.
    let w = World::new(
        215,
        2,
        vec![group("etcd", &[2, 3, 4])],
        None,
        vec![],
        Imds::v2(),
    );
    fs::write(w.env_file(), "OLD=1\n").unwrap();
    let objects: Objects = Arc::default();
    let racer = (RECORD_KEY.to_string(), cluster(215, &[3, 4, 5]));
    let s3 = bucket::start(&World::ip(215, 9), objects.clone(), Some(racer));
    let out = discover_with_bucket(&w, &s3, &["--wait-timeout=1s"]);
    assert_failure(
        &out,
        75,
        &format!(
            "another instance recorded a bootstrap at s3://bucket/{RECORD_KEY} since this run read it"
        ),
    );
    assert_eq!(fs::read_to_string(w.env_file()).unwrap(), "OLD=1\n");
    assert_eq!(
        record_in(&objects).as_deref(),
        Some(cluster(215, &[3, 4, 5]).as_str())
    );
    // The next run reads the winner's record, which can still form without i-2: it waits to
    // join that cluster.
    let out = discover_with_bucket(&w, &s3, &["--wait-timeout=1s"]);
    assert_failure(
        &out,
        75,
        "a bootstrap of 3 members recorded for the group is under way without this instance",
    );
    assert_eq!(fs::read_to_string(w.env_file()).unwrap(), "OLD=1\n");
}

#[test]
fn a_dead_record_in_the_bucket_is_replaced_only_as_it_was_read() {
    // The recorded {1, 6, 7} lost its instances: it can never form. The seed replaces it,
    // on condition that it is still the object it read (If-Match with its ETag).
    let w = World::new(
        216,
        2,
        vec![group("etcd", &[2, 3, 4])],
        None,
        vec![],
        Imds::v2(),
    );
    let dead = (
        RECORD_KEY.to_string(),
        "\"old\"".to_string(),
        cluster(216, &[1, 6, 7]),
        None,
    );
    let objects: Objects = Arc::new(Mutex::new(vec![dead]));
    let s3 = bucket::start(&World::ip(216, 9), objects.clone(), None);
    let out = discover_with_bucket(&w, &s3, &[]);
    assert_success(&out);
    assert_eq!(put_conditions(&s3), [(None, Some("\"old\"".into()))]);
    assert_eq!(
        record_in(&objects).as_deref(),
        Some(cluster(216, &[2, 3, 4]).as_str())
    );
}
