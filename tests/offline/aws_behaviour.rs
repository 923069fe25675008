//! AWS as it behaves beyond the happy path (issue 13): server errors whatever their code,
//! names from a custom DHCP domain, root volume replacement, capacity in vCPUs and weights,
//! a lifecycle hook that is no longer waiting, regions in no known partition, IPv6 metadata
//! and IPv6-only instances. The fakes of `world.rs` answer; each test puts its own AWS or
//! IMDS in front of them to depart from the model. Each test uses its own 127.0.2NN.0/24.

use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::fake::{FakeServer, Request};
use super::world::{self, instance_id, EtcdApi, Imds, World};
use super::{
    assert_failure, assert_names_the_hook_of_i_2, assert_success, env_value, group, stderr,
};

/// An AWS in front of the world's model: `edit` sees each request and the model's answer.
pub fn aws_with(
    w: &World,
    edit: impl Fn(&Request, (u16, String)) -> (u16, String) + Send + Sync + 'static,
) -> FakeServer {
    let model = world::aws_handler(
        w.net,
        w.groups.clone(),
        w.aws_override.clone(),
        w.aws_faults.clone(),
    );
    FakeServer::start("127.0.0.1", move |r| edit(r, model(r)))
}

/// AutoScaling's answer to a lifecycle call when no lifecycle action is waiting for i-2.
const NO_ACTIVE_LIFECYCLE_ACTION: &str = "<ErrorResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><Error><Type>Sender</Type><Code>ValidationError</Code><Message>No active Lifecycle Action found with instance ID i-0000000000000002</Message></Error><RequestId>x</RequestId></ErrorResponse>";

fn action(r: &Request) -> String {
    r.param("Action").unwrap_or_default()
}

/// `/etc/hosts` for the world's EC2 names of `hosts`, and the mount line that puts it in place.
fn hosts_file(w: &World, hosts: &[u8]) -> String {
    let mut text = String::from("127.0.0.1 localhost\n");
    for k in hosts {
        let ip = World::ip(w.net, *k);
        text.push_str(&format!("{ip} ip-{}.ec2.internal\n", ip.replace('.', "-")));
    }
    let path = w.dir.join("hosts");
    fs::write(&path, text).unwrap();
    format!("/bin/mount --bind {} /etc/hosts", path.display())
}

#[test]
fn resource_contention_500_is_retried() {
    // Regression: AutoScaling's ResourceContention comes as HTTP 500 and was exit 1, which
    // the unit never retries: the node stayed down until a person stepped in.
    let w = World::new(
        200,
        2,
        vec![group("etcd", &[2, 3, 4])],
        None,
        vec![],
        Imds::v2(),
    );
    let contended = Arc::new(AtomicUsize::new(0));
    let count = contended.clone();
    let aws = aws_with(&w, move |r, answer| {
        if action(r) == "DescribeAutoScalingGroups" && count.fetch_add(1, Ordering::SeqCst) < 2 {
            return (500, "<ErrorResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><Error><Type>Receiver</Type><Code>ResourceContention</Code><Message>You already have a pending update to an Auto Scaling resource (for example, a group, instance, or load balancer).</Message></Error><RequestId>x</RequestId></ErrorResponse>".into());
        }
        answer
    });
    let out = w.run_with_env(&[], &[("AWS_ENDPOINT_URL", &aws.url())]);
    assert_success(&out);
    assert_eq!(
        contended.load(Ordering::SeqCst),
        5,
        "two refusals, the answer, then the seed's reads before and after its record (rule 14)"
    );
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(env_value(&text, "ETCD_INITIAL_CLUSTER_STATE"), "new");
}

#[test]
fn ec2_throttled_503_is_worth_a_retry() {
    // Regression: EC2ThrottledException (HTTP 503) was exit 1, not 75.
    let w = World::new(
        201,
        2,
        vec![group("etcd", &[2, 3, 4])],
        None,
        vec![],
        Imds::v2(),
    );
    let aws = aws_with(&w, |r, answer| {
        if action(r) == "DescribeInstances" {
            return (503, "<Response><Errors><Error><Code>EC2ThrottledException</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>x</RequestID></Response>".into());
        }
        answer
    });
    // --boot-wait=0: past boot, a throttled call gets its bounded retries, then 75; at boot
    // it is tried again until --boot-wait ends (60 s by default), which shows nothing more.
    let out = w.run_with_env(&["--boot-wait=0"], &[("AWS_ENDPOINT_URL", &aws.url())]);
    assert_failure(&out, 75, "EC2ThrottledException");
    let tries = aws
        .requests()
        .iter()
        .filter(|r| action(r) == "DescribeInstances")
        .count();
    assert!(tries > 1, "retried within the run: {tries}");
}

#[test]
fn a_skewed_clock_is_worth_a_retry_and_names_the_clock() {
    let w = World::new(
        202,
        2,
        vec![group("etcd", &[2, 3])],
        None,
        vec![],
        Imds::v2(),
    );
    *w.aws_faults.clock_skew.lock().unwrap() = Some((
        "SignatureDoesNotMatch".into(),
        "Signature expired: 20261128T010000Z is now earlier than 20261128T011000Z (20261128T011500Z - 5 min.)".into(),
    ));
    let out = w.run(&[]);
    assert_failure(&out, 75, "clock");
}

#[test]
fn this_node_is_named_as_ec2_names_its_peers() {
    // Regression: with a custom DHCP domain (two of them here), IMDS local-hostname is not
    // EC2's privateDnsName: this node was named from IMDS and its peers from EC2, and one
    // file mixed the two (with a space inside a URL).
    let net = 203;
    let imds = Imds {
        hostname: Some(format!(
            "ip-127-0-{net}-2.corp.example.com ip-127-0-{net}-2.lab.example.com"
        )),
        ..Imds::v2()
    };
    let w = World::new(net, 2, vec![group("etcd", &[2, 3, 4])], None, vec![], imds);
    let command = w.command_by_hostname(&[]);
    let out = World::in_private_mounts(&command, &hosts_file(&w, &[2, 3, 4]))
        .output()
        .unwrap();
    assert_success(&out);
    let text = fs::read_to_string(w.env_file()).unwrap();
    println!("{}{text}", stderr(&out));
    let name = |k: u8| format!("ip-127-0-{net}-{k}.ec2.internal");
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_ADVERTISE_PEER_URLS"),
        format!("http://{}:2380", name(2))
    );
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER"),
        [2, 3, 4]
            .iter()
            .map(|k| format!("{}=http://{}:2380", instance_id(*k), name(*k)))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert!(!text.contains("example.com"), "{text}");
}

#[test]
fn a_member_whose_root_volume_is_being_replaced_is_not_removed() {
    // Regression: ReplacingRootVolume did not count as in service, so a node joining meanwhile
    // removed the member of an instance that keeps its data and comes back.
    let w = World::new(
        204,
        5,
        vec![super::world::Group {
            name: "etcd".into(),
            desired: 4,
            tags: vec![],
            instances: vec![
                (2, "InService".into()),
                (3, "ReplacingRootVolume".into()),
                (4, "InService".into()),
                (5, "Pending:Wait".into()),
            ],
        }],
        Some((&[2, 4], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true), w.member(4, true)];
    // Member 3 is kept: with it down for the swap, a fourth voter would leave the cluster
    // below its quorum, so the new node waits for it instead of removing it.
    let out = w.run(&[]);
    assert_failure(&out, 75, "start the members that are down");
    let changes = w.etcd_changes();
    assert!(changes.is_empty(), "no member removed: {changes:?}");
}

/// An AWS whose groups are sized in vCPUs: `desired` vCPUs, each instance weighing `weight`.
fn vcpu_aws(w: &World, desired: u32, weight: u32) -> FakeServer {
    aws_with(w, move |r, (status, body)| {
        if action(r) != "DescribeAutoScalingGroups" {
            return (status, body);
        }
        let body = body
            .split("<DesiredCapacity>")
            .enumerate()
            .map(|(i, part)| match (i, part.split_once("</DesiredCapacity>")) {
                (0, _) | (_, None) => part.to_string(),
                (_, Some((_, rest))) => format!(
                    "{desired}</DesiredCapacity><DesiredCapacityType>vcpu</DesiredCapacityType>{rest}"
                ),
            })
            .collect::<Vec<_>>()
            .join("<DesiredCapacity>")
            .replace(
                "<HealthStatus>Healthy</HealthStatus>",
                &format!("<HealthStatus>Healthy</HealthStatus><WeightedCapacity>{weight}</WeightedCapacity>"),
            );
        (status, body)
    })
}

#[test]
fn a_group_sized_in_vcpus_bootstraps_once_its_weight_is_here() {
    // Regression: desired capacity 12 (vCPUs) was compared with 3 instances: never reached,
    // so the cluster was never bootstrapped.
    let w = World::new(
        205,
        2,
        vec![group("etcd", &[2, 3, 4])],
        None,
        vec![],
        Imds::v2(),
    );
    let aws = vcpu_aws(&w, 12, 4);
    let out = w.run_with_env(&["--wait-timeout=2s"], &[("AWS_ENDPOINT_URL", &aws.url())]);
    assert_success(&out);
    assert!(
        stderr(&out).contains("capacity in vcpu"),
        "the decision is logged:\n{}",
        stderr(&out)
    );
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(env_value(&text, "ETCD_INITIAL_CLUSTER_STATE"), "new");
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER"),
        super::cluster(205, &[2, 3, 4])
    );
}

#[test]
fn a_group_sized_in_vcpus_waits_while_weight_is_missing() {
    let w = World::new(
        206,
        2,
        vec![group("etcd", &[2, 3])],
        None,
        vec![],
        Imds::v2(),
    );
    let aws = vcpu_aws(&w, 12, 4);
    let out = w.run_with_env(&["--wait-timeout=1s"], &[("AWS_ENDPOINT_URL", &aws.url())]);
    assert_failure(&out, 75, "not ready");
    assert!(
        stderr(&out).contains("more are to come"),
        "{}",
        stderr(&out)
    );
    assert!(!w.env_file().exists());
}

#[test]
fn leave_when_no_lifecycle_action_is_waiting_succeeds() {
    // Regression: the hook had timed out (or was completed already) and `leave` ended in
    // exit 1 although the member was gone.
    let w = World::new(
        207,
        2,
        vec![group("etcd", &[2, 3, 4])],
        Some((&[2, 3, 4], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true), w.member(4, true)];
    let aws = aws_with(&w, |r, answer| {
        if action(r) == "CompleteLifecycleAction" {
            return (400, NO_ACTIVE_LIFECYCLE_ACTION.into());
        }
        answer
    });
    let out = w.run_with_env(
        &["leave", "--lifecycle-hook", "etcd-leave"],
        &[("AWS_ENDPOINT_URL", &aws.url())],
    );
    assert_success(&out);
    assert!(
        stderr(&out).contains("no lifecycle action is waiting"),
        "{}",
        stderr(&out)
    );
    assert_eq!(w.etcd_changes().len(), 1, "the member left");
}

/// The AutoScaling actions a run sent, in order.
fn actions_sent(aws: &FakeServer) -> Vec<String> {
    aws.requests().iter().map(action).collect()
}

#[test]
fn leave_holds_the_termination_while_the_removal_would_cost_the_quorum() {
    // Rule 8: i-2 is scaled in while i-4's member is listed but its etcd is down: removing
    // i-2 would leave 1 healthy of 2 voters. Its etcd runs, so `leave` holds the lifecycle
    // action (a heartbeat) and tries again; meanwhile the leader's reconcile removes i-4's
    // member (the fake does it at the heartbeat), and the removal goes through.
    let w = World::new(
        140,
        2,
        vec![group("etcd", &[2, 3, 4])],
        Some((&[2, 3], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true), w.member(4, true)];
    let members = w.members.clone();
    let reconciled = vec![w.member(2, true), w.member(3, true)];
    let aws = aws_with(&w, move |r, answer| {
        if action(r) == "RecordLifecycleActionHeartbeat" {
            *members.lock().unwrap() = reconciled.clone();
        }
        answer
    });
    let out = w.run_with_env(
        &["leave", "--lifecycle-hook", "etcd-leave"],
        &[("AWS_ENDPOINT_URL", &aws.url())],
    );
    assert_success(&out);
    assert!(
        stderr(&out)
            .contains("holding this instance in Terminating:Wait (lifecycle hook etcd-leave)"),
        "{}",
        stderr(&out)
    );
    let sent = actions_sent(&aws);
    let heartbeat = sent
        .iter()
        .position(|a| a == "RecordLifecycleActionHeartbeat");
    let completed = sent.iter().position(|a| a == "CompleteLifecycleAction");
    assert!(
        heartbeat.is_some() && heartbeat < completed && completed == Some(sent.len() - 1),
        "{sent:?}"
    );
    let heartbeat = aws
        .requests()
        .into_iter()
        .find(|r| action(r) == "RecordLifecycleActionHeartbeat")
        .expect("a heartbeat");
    assert_names_the_hook_of_i_2(&heartbeat);
    assert_eq!(
        w.etcd_changes(),
        vec![(
            "/v3/cluster/member/remove".to_string(),
            r#"{"ID":"1002"}"#.to_string()
        )]
    );
}

/// i-2 of {2, 3, 4, 5}, every member listed as started, etcd answering on `etcd_on` only:
/// removing i-2 would cost the quorum. Runs `leave --lifecycle-hook etcd-leave` against an
/// AWS that `edit` may change, with `limits` (--wait-timeout, --timeout); it must end in 75
/// for the quorum, having removed nothing and completed the hook. The actions sent.
fn leave_below_the_quorum(
    net: u8,
    etcd_on: &[u8],
    limits: &[&str],
    edit: impl Fn(&Request, (u16, String)) -> (u16, String) + Send + Sync + 'static,
) -> Vec<String> {
    let w = World::new(
        net,
        2,
        vec![group("etcd", &[2, 3, 4, 5])],
        Some((etcd_on, EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = (2..=5).map(|k| w.member(k, true)).collect();
    let aws = aws_with(&w, edit);
    let args = [&["leave", "--lifecycle-hook", "etcd-leave"], limits].concat();
    let out = w.run_with_env(&args, &[("AWS_ENDPOINT_URL", &aws.url())]);
    assert_failure(&out, 75, "below the quorum");
    assert!(w.etcd_changes().is_empty(), "{:?}", w.etcd_changes());
    let sent = actions_sent(&aws);
    assert_eq!(
        sent.last().map(String::as_str),
        Some("CompleteLifecycleAction")
    );
    sent
}

fn heartbeats(sent: &[String]) -> usize {
    sent.iter()
        .filter(|a| *a == "RecordLifecycleActionHeartbeat")
        .count()
}

#[test]
fn leave_holds_no_termination_when_its_own_etcd_is_gone_or_for_longer_than_the_wait() {
    // i-2's removal would cost the quorum (1 healthy of 4 voters). With its own etcd gone
    // (nothing listens on its client port) its vote is gone too: holding the instance helps
    // nobody, and the hook completes at once. With its etcd there, the hold ends at
    // --wait-timeout, and the hook completes then.
    let gone = leave_below_the_quorum(141, &[3], &["--wait-timeout=3s"], |_, answer| answer);
    assert_eq!(heartbeats(&gone), 0, "{gone:?}");
    let there = leave_below_the_quorum(142, &[2, 3], &["--wait-timeout=3s"], |_, answer| answer);
    assert!(heartbeats(&there) > 0, "{there:?}");
    // The hold ends 30 s before --timeout too: past it every call fails, the completion too.
    let short = leave_below_the_quorum(
        144,
        &[2, 3],
        &["--wait-timeout=10m", "--timeout=33s"],
        |_, answer| answer,
    );
    assert!(heartbeats(&short) > 0, "{short:?}");
}

#[test]
fn a_held_leave_stops_holding_once_no_lifecycle_action_is_waiting() {
    // The hook timed out, or somebody completed it: the heartbeat is refused, the instance is
    // going on anyway, so `leave` holds no longer (one heartbeat, not one every few seconds
    // until --wait-timeout).
    let sent = leave_below_the_quorum(143, &[2, 3], &["--wait-timeout=60s"], |r, answer| {
        if action(r) == "RecordLifecycleActionHeartbeat" {
            return (400, NO_ACTIVE_LIFECYCLE_ACTION.into());
        }
        answer
    });
    assert_eq!(heartbeats(&sent), 1, "{sent:?}");
}

#[test]
fn a_region_in_no_partition_that_does_not_resolve_is_named() {
    // Regression: a mistyped region's guessed endpoint did not resolve and was "not up
    // yet": exit 75, and the unit retried for ever.
    let w = World::new(
        208,
        2,
        vec![group("etcd", &[2, 3])],
        None,
        vec![],
        Imds::v2(),
    );
    let mut command = w.command(&["--boot-wait=5s"]);
    command
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_REGION", "xx-moon-1");
    let out = command.output().unwrap();
    assert_failure(&out, 1, "region \"xx-moon-1\" is in no partition");
}

#[test]
fn metadata_at_an_ipv6_address() {
    // The metadata service reached over IPv6, as AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6
    // makes it (`[fd00:ec2::254]`, here the loopback's `[::1]`).
    let w = World::new(
        209,
        2,
        vec![group("etcd", &[2, 3])],
        None,
        vec![],
        Imds::v2(),
    );
    let imds = FakeServer::start("::1", world::imds_handler(209, 2, Imds::v2()));
    let out = w.run_with_env(&[], &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url())]);
    assert_success(&out);
    assert!(imds.url().starts_with("http://[::1]:"));
    assert!(imds.requests().len() >= 3, "{:?}", imds.requests());
}

/// The metadata service of an instance in an IPv6-only subnet: no `privateIp` in its
/// identity document, its address in `meta-data/ipv6`.
fn ipv6_only_imds(net: u8, me: u8) -> FakeServer {
    let id = instance_id(me);
    let document = format!(
        r#"{{"instanceId":"{id}","region":"us-east-1","availabilityZone":"us-east-1a","accountId":"123456789012","privateIp":null}}"#
    );
    let model = world::imds_handler(
        net,
        me,
        Imds {
            document: Some(document),
            ..Imds::v2()
        },
    );
    FakeServer::start("127.0.0.1", move |r| {
        if r.path == "/latest/meta-data/ipv6" {
            return (200, format!("fd00:ec2:{net}::{me}"));
        }
        model(r)
    })
}

#[test]
fn an_ipv6_only_instance_addressed_by_ip_listens_and_advertises_its_ipv6_address() {
    // Issue 22: an IPv6-only instance used to be refused with -private-addresses (EC2 was
    // read for IPv4 addresses only); its peers' addresses now come from EC2's IPv6 fields
    // (src/aws/ec2.rs, fixtures/ec2/describe-instances-ipv6.xml), its own from
    // meta-data/ipv6, bracketed in its URLs.
    let w = World::new(
        210,
        2,
        vec![group("etcd", &[2, 3])],
        None,
        vec![],
        Imds::v2(),
    );
    w.aws_faults.ipv6_only.store(true, Ordering::SeqCst);
    let imds = ipv6_only_imds(210, 2);
    let out = w.run_with_env(&[], &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url())]);
    assert_success(&out);
    let text = fs::read_to_string(w.env_file()).unwrap();
    for key in ["ETCD_LISTEN_PEER_URLS", "ETCD_INITIAL_ADVERTISE_PEER_URLS"] {
        assert_eq!(
            env_value(&text, key),
            "http://[fd00:ec2:210::2]:2380",
            "{key}"
        );
    }
    // The initial cluster names it (and its peer) as it advertises itself: etcd refuses a
    // file whose advertised peer URLs its own entry does not hold.
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER"),
        format!(
            "{}=http://[fd00:ec2:210::2]:2380,{}=http://[fd00:ec2:210::3]:2380",
            instance_id(2),
            instance_id(3)
        )
    );
}

#[test]
fn an_ipv6_only_instance_addressed_by_name_listens_on_its_ipv6_address() {
    let w = World::new(
        211,
        2,
        vec![group("etcd", &[2, 3])],
        None,
        vec![],
        Imds::v2(),
    );
    let imds = ipv6_only_imds(211, 2);
    let mut command = w.command_by_hostname(&[]);
    command.env("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url());
    let out = World::in_private_mounts(&command, &hosts_file(&w, &[2, 3]))
        .output()
        .unwrap();
    assert_success(&out);
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(
        env_value(&text, "ETCD_LISTEN_PEER_URLS"),
        "http://[fd00:ec2:211::2]:2380"
    );
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_ADVERTISE_PEER_URLS"),
        "http://ip-127-0-211-2.ec2.internal:2380"
    );
}

#[test]
fn a_warm_pool_instance_asks_only_imds_and_writes_nothing() {
    // Issue 22: IMDS meta-data/autoscaling/target-lifecycle-state (EC2 User Guide, "Instance
    // metadata categories": the Auto Scaling lifecycle state the instance is moving to) says
    // Warmed:Stopped. The run waits on IMDS alone, then ends with 75: no AWS call, no file.
    let w = World::new(
        212,
        2,
        vec![group("etcd", &[2, 3])],
        None,
        vec![],
        Imds::v2(),
    );
    let model = world::imds_handler(212, 2, Imds::v2());
    let imds = FakeServer::start("127.0.0.1", move |r| {
        if r.path == "/latest/meta-data/autoscaling/target-lifecycle-state" {
            return (200, "Warmed:Stopped".into());
        }
        model(r)
    });
    let out = w.run_with_env(
        &["--wait-timeout=1s"],
        &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url())],
    );
    assert_failure(&out, 75, "still in the warm pool (Warmed:Stopped)");
    assert!(!w.env_file().exists(), "no file that would start etcd");
    let to_aws: Vec<String> = w
        .aws
        .requests()
        .iter()
        .filter_map(|r| r.param("Action"))
        .collect();
    assert_eq!(to_aws, Vec::<String>::new(), "no AWS call");
}

#[test]
fn a_dual_stack_group_uses_ipv4_unless_told_ipv6() {
    // Issue 22: in a dual-stack group every instance has both addresses; IPv4 is the
    // default, `--address-family=ipv6` takes this node's from meta-data/ipv6 and its peers'
    // from EC2's ipv6Address, bracketed.
    for (args, peer_urls) in [
        (
            vec![],
            "i-2=http://127.0.213.2:2380,i-3=http://127.0.213.3:2380",
        ),
        (
            vec!["--address-family=ipv6"],
            "i-2=http://[fd00:ec2:213::2]:2380,i-3=http://[fd00:ec2:213::3]:2380",
        ),
    ] {
        let w = World::new(
            213,
            2,
            vec![group("etcd", &[2, 3])],
            None,
            vec![],
            Imds::v2(),
        );
        w.aws_faults.dual_stack.store(true, Ordering::SeqCst);
        let model = world::imds_handler(213, 2, Imds::v2());
        let imds = FakeServer::start("127.0.0.1", move |r| {
            if r.path == "/latest/meta-data/ipv6" {
                return (200, "fd00:ec2:213::2".into());
            }
            model(r)
        });
        let out = w.run_with_env(&args, &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url())]);
        assert_success(&out);
        let text = fs::read_to_string(w.env_file()).unwrap();
        let cluster = env_value(&text, "ETCD_INITIAL_CLUSTER").replace(&instance_id(2), "i-2");
        let cluster = cluster.replace(&instance_id(3), "i-3");
        assert_eq!(cluster, peer_urls, "{args:?}");
        let mine = peer_urls
            .split(',')
            .next()
            .unwrap()
            .trim_start_matches("i-2=");
        assert_eq!(env_value(&text, "ETCD_LISTEN_PEER_URLS"), mine, "{args:?}");
    }
}
