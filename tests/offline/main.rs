//! Offline integration tests: the built binary against in-process fakes of IMDS, AutoScaling,
//! EC2 and etcd's member API on loopback. Each test reads as a scenario; `world.rs` hides the
//! setup. Each test uses its own 127.0.N.0/24 (N is the first argument of `World::new`).

mod aws_behaviour;
mod bad_input;
mod bucket;
mod cloud_init;
mod concurrent;
#[path = "../support/fake.rs"]
mod fake;
mod hostile;
mod metrics;
mod module_graph;
mod not_yet;
mod record;
mod restore;
mod snapshot;
mod unformed;
mod world;

use std::fs;
use std::process::{Output, Stdio};
use std::time::Duration;

use world::{instance_id, EtcdApi, Group, Imds, World, IMDS_TOKEN, PROFILE_SECRET, PROFILE_TOKEN};

fn group(name: &str, instances: &[u8]) -> Group {
    Group {
        name: name.into(),
        desired: instances.len() as u32,
        tags: vec![("role".into(), "etcd".into())],
        instances: instances
            .iter()
            .map(|k| (*k, "InService".to_string()))
            .collect(),
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstderr:\n{}",
        output.status.code(),
        stderr(output)
    );
}

/// The one error line the tool prints, and its exit code.
fn assert_failure(output: &Output, code: i32, needle: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "stderr:\n{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("etcd-discovery: error: "))
        .unwrap_or_else(|| panic!("no error line in:\n{err}"));
    assert!(
        line.contains(needle),
        "error line {line:?} does not say {needle:?}"
    );
    assert_eq!(
        err.lines().filter(|l| l.contains("error:")).count(),
        1,
        "one error line:\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

fn env_value(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} missing from:\n{text}"))
        .to_string()
}

/// Runs the tool with `args`, which must succeed; the file it wrote. The log and the file
/// are printed (seen with `--nocapture`).
fn run_and_read(w: &World, args: &[&str]) -> String {
    let out = w.run(args);
    assert_success(&out);
    let text = fs::read_to_string(w.env_file()).unwrap();
    println!("{}{text}", stderr(&out));
    text
}

/// The AWS actions the world was asked, in order.
fn aws_actions(w: &World) -> Vec<String> {
    w.aws_requests()
        .iter()
        .map(|r| r.param("Action").unwrap())
        .collect()
}

/// `i-..2=http://127.0.N.2:2380,...` for these hosts.
fn cluster(net: u8, hosts: &[u8]) -> String {
    hosts
        .iter()
        .map(|k| format!("{}=http://127.0.{net}.{k}:2380", instance_id(*k)))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn bootstrap_when_nobody_answers() {
    let w = World::new(
        11,
        2,
        vec![group("etcd", &[4, 2, 3])],
        None,
        vec![],
        Imds::v2(),
    );
    let text = run_and_read(&w, &[]);
    assert_eq!(env_value(&text, "ETCD_NAME"), instance_id(2));
    assert_eq!(env_value(&text, "ETCD_INITIAL_CLUSTER_STATE"), "new");
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER"),
        cluster(11, &[2, 3, 4])
    );
    assert!(env_value(&text, "ETCD_INITIAL_CLUSTER_TOKEN").starts_with("etcd-etcd-"));
    assert_eq!(
        env_value(&text, "ETCD_LISTEN_PEER_URLS"),
        "http://127.0.11.2:2380"
    );
    assert_eq!(
        env_value(&text, "ETCD_ADVERTISE_CLIENT_URLS"),
        format!("http://127.0.11.2:{}", w.client_port)
    );

    // The metadata service was used with an IMDSv2 token on every GET.
    let imds = w.imds.requests();
    assert_eq!(imds[0].method, "PUT");
    assert!(imds[1..]
        .iter()
        .all(|r| r.header("x-aws-ec2-metadata-token").is_some()));

    // Every AWS call was signed for the right service and region.
    let aws = w.aws_requests();
    assert_eq!(
        aws_actions(&w),
        [
            "DescribeAutoScalingInstances",
            "DescribeAutoScalingGroups",
            "DescribeInstances",
            "DescribeAutoScalingGroups",
            "CreateOrUpdateTags",
            "DescribeAutoScalingGroups"
        ]
    );
    // Rule 14: the seed read the group again, recorded its initial cluster in its group's
    // tags, spaces for commas, and read it back.
    let record = &aws[4];
    assert_eq!(
        record.param("Tags.member.1.ResourceId").as_deref(),
        Some("etcd")
    );
    assert_eq!(
        record.param("Tags.member.1.Key").as_deref(),
        Some("etcd-discovery:initial-cluster")
    );
    assert_eq!(
        record.param("Tags.member.1.Value"),
        Some(cluster(11, &[2, 3, 4]).replace(',', " "))
    );
    assert_eq!(
        record.param("Tags.member.1.PropagateAtLaunch").as_deref(),
        Some("false")
    );
    for r in &aws {
        let auth = r.header("authorization").expect("signed");
        let service = if r.param("Action").unwrap() == "DescribeInstances" {
            "ec2"
        } else {
            "autoscaling"
        };
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDOFFLINE/"),
            "{auth}"
        );
        assert!(
            auth.contains(&format!("/us-east-1/{service}/aws4_request")),
            "{auth}"
        );
        assert!(r.header("x-amz-date").is_some());
    }
}

#[test]
fn a_join_removes_nothing_when_an_instance_entered_since_its_look() {
    // Regression (the simulation with a warm pool that reuses instances, seed 2): i-4 looked
    // while i-3 sat in the pool and planned to remove its member; i-3 was put back in service
    // before the removal. The group is read again before each removal: i-4 removes nothing,
    // writes nothing, and exits 75; its next run sees i-3 counted and keeps its member.
    let w = World::new(
        223,
        4,
        vec![group("etcd", &[2, 4, 5])],
        Some((&[2, 5], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true), w.member(5, true)];
    *w.aws_faults.enters_after_a_look.lock().unwrap() = Some(3);
    fs::write(w.env_file(), "OLD=1\n").unwrap();
    let out = w.run(&[]);
    let entered = format!(
        "the group counts instance {} since this run looked",
        instance_id(3)
    );
    assert_failure(&out, 75, &entered);
    assert_eq!(w.etcd_changes(), vec![]);
    assert_eq!(fs::read_to_string(w.env_file()).unwrap(), "OLD=1\n");
    let out = w.run(&["--wait-timeout=1s"]);
    assert!(
        !w.etcd_changes()
            .iter()
            .any(|(path, _)| path.ends_with("/remove")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_reconcile_removes_nothing_when_an_instance_entered_since_its_look() {
    // Rule 3's re-read, for `reconcile` on the leader: i-4's member looked gone (no counted
    // instance, nothing listening), then i-4 was put back in service before the removal.
    let w = World::new(
        224,
        2,
        vec![group("etcd", &[2, 3])],
        Some((&[2, 3], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true), w.member(4, true)];
    *w.aws_faults.enters_after_a_look.lock().unwrap() = Some(4);
    let out = w.run(&["reconcile"]);
    let entered = format!(
        "the group counts instance {} since this run looked",
        instance_id(4)
    );
    assert_failure(&out, 75, &entered);
    assert_eq!(w.etcd_changes(), vec![]);
}

#[test]
fn join_removes_the_dead_member_and_adds_this_one() {
    // Members 2, 3 and 5 were the cluster; 3's instance is gone and 4 replaces it.
    let w = World::new(
        12,
        4,
        vec![group("etcd", &[2, 4, 5])],
        Some((&[2, 5], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true), w.member(5, true)];
    let text = run_and_read(&w, &[]);
    assert_eq!(env_value(&text, "ETCD_INITIAL_CLUSTER_STATE"), "existing");
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER"),
        cluster(12, &[2, 4, 5])
    );
    assert!(!text.contains("ETCD_INITIAL_CLUSTER_TOKEN"));
    let changes = w.etcd_changes();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(
        changes[0],
        (
            "/v3/cluster/member/remove".to_string(),
            r#"{"ID":"1003"}"#.to_string()
        )
    );
    assert_eq!(
        changes[1],
        (
            "/v3/cluster/member/add".to_string(),
            r#"{"peerURLs":["http://127.0.12.4:2380"]}"#.to_string()
        )
    );
}

#[test]
fn reboot_changes_nothing() {
    let w = World::new(
        13,
        2,
        vec![group("etcd", &[2, 3, 4])],
        Some((&[3, 4], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true), w.member(4, true)];
    assert_success(&w.run(&[]));
    let first = fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(env_value(&first, "ETCD_INITIAL_CLUSTER_STATE"), "existing");
    let modified = fs::metadata(w.env_file()).unwrap().modified().unwrap();
    let out = w.run(&[]);
    assert_success(&out);
    assert!(stderr(&out).contains("up to date"), "{}", stderr(&out));
    assert_eq!(
        fs::metadata(w.env_file()).unwrap().modified().unwrap(),
        modified,
        "file not rewritten"
    );
    assert!(w.etcd_changes().is_empty(), "no membership change");
}

#[test]
fn v2_api_when_the_v3_gateway_is_missing() {
    let w = World::new(
        14,
        3,
        vec![group("etcd", &[2, 3, 5])],
        Some((&[2, 5], EtcdApi::V2Only)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(5, true), w.member(9, true)];
    let text = run_and_read(&w, &["--etcd-api=auto"]);
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER"),
        cluster(14, &[2, 3, 5])
    );
    let calls: Vec<String> = w
        .etcd_requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        calls.contains(&format!("DELETE /v2/members/{:x}", 1009)),
        "{calls:?}"
    );
    assert!(calls.contains(&"POST /v2/members".to_string()), "{calls:?}");
}

#[test]
fn proxy_mode_writes_endpoints_of_the_masters() {
    let masters = group("etcd-masters", &[2, 3]);
    let mut consumers = group("consumers", &[7]);
    consumers.tags.clear();
    let w = World::new(
        15,
        7,
        vec![masters, consumers],
        Some((&[2, 3], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true)];
    let text = run_and_read(&w, &["-proxy-mode", "-scaling-group-name=etcd-masters"]);
    assert_eq!(env_value(&text, "ETCD_PROXY"), "on");
    assert_eq!(
        env_value(&text, "ETCD_ENDPOINTS"),
        format!("http://127.0.15.2:{0},http://127.0.15.3:{0}", w.client_port)
    );
    assert_eq!(
        aws_actions(&w),
        ["DescribeAutoScalingGroups", "DescribeInstances"],
        "a named group skips the lookup"
    );

    // monsanto's variables do the same.
    fs::remove_file(w.env_file()).unwrap();
    let out = w.run_with_env(
        &[],
        &[
            ("AWS_ACCESS_KEY_ID", "A"),
            ("AWS_SECRET_ACCESS_KEY", "S"),
            ("PROXY_ASG", "etcd-masters"),
        ],
    );
    assert_success(&out);
    assert_eq!(
        env_value(&fs::read_to_string(w.env_file()).unwrap(), "ETCD_PROXY"),
        "on"
    );
}

#[test]
fn groups_selected_by_tag_form_one_cluster() {
    let a = group("etcd-a", &[2]);
    let b = group("etcd-b", &[3]);
    let mut other = group("web", &[5]);
    other.tags = vec![("role".into(), "web".into())];
    // i-2, launched first, is the one that bootstraps from nothing.
    let w = World::new(16, 2, vec![a, b, other], None, vec![], Imds::v2());
    let text = run_and_read(&w, &["--scaling-group-tag", "role=etcd"]);
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER"),
        cluster(16, &[2, 3])
    );
}

#[test]
fn imdsv1_fallback_when_the_token_is_refused() {
    let w = World::new(
        17,
        2,
        vec![group("etcd", &[2])],
        None,
        vec![],
        Imds::default(),
    );
    let out = w.run(&[]);
    assert_success(&out);
    assert!(stderr(&out).contains("IMDSv1"), "{}", stderr(&out));
    assert!(w
        .imds
        .requests()
        .iter()
        .skip(1)
        .all(|r| r.header("x-aws-ec2-metadata-token").is_none()));
}

#[test]
fn dry_run_prints_and_changes_nothing() {
    let w = World::new(
        18,
        4,
        vec![group("etcd", &[2, 4, 5])],
        Some((&[2, 5], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true), w.member(5, true)];
    let out = w.run(&["--dry-run"]);
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("# would Remove"), "{stdout}");
    assert!(
        stdout.contains("ETCD_INITIAL_CLUSTER_STATE=existing"),
        "{stdout}"
    );
    assert!(!w.env_file().exists());
    assert!(w.etcd_changes().is_empty());
}

#[test]
fn aws_errors_fail_cleanly_and_keep_the_old_file() {
    let w = World::new(19, 2, vec![group("etcd", &[2])], None, vec![], Imds::v2());
    fs::write(w.env_file(), "OLD=1\n").unwrap();
    let denied = fs::read_to_string("fixtures/autoscaling/error-access-denied.xml").unwrap();
    *w.aws_override.lock().unwrap() = Some((403, denied));
    assert_failure(&w.run(&[]), 1, "autoscaling:DescribeAutoScalingInstances");
    assert_eq!(fs::read_to_string(w.env_file()).unwrap(), "OLD=1\n");

    let throttled = fs::read_to_string("fixtures/autoscaling/error-throttling.xml").unwrap();
    *w.aws_override.lock().unwrap() = Some((400, throttled));
    let before = w.aws_requests().len();
    assert_failure(&w.run(&["--boot-wait=0"]), 75, "Throttling");
    assert_eq!(w.aws_requests().len() - before, 5, "bounded retries");
    assert_eq!(fs::read_to_string(w.env_file()).unwrap(), "OLD=1\n");
    // Issue 16: at boot a throttled call is tried again until --boot-wait ends (a fleet
    // booting at once shares the account's rate), then it fails the same way.
    let before = w.aws_requests().len();
    assert_failure(&w.run(&["--boot-wait=10s"]), 75, "Throttling");
    assert!(
        w.aws_requests().len() - before > 5,
        "patient while booting: {} tries",
        w.aws_requests().len() - before
    );

    *w.aws_override.lock().unwrap() = Some((502, "<html><body>Bad Gateway</body></html>".into()));
    assert_failure(&w.run(&[]), 75, "HTTP status 502");
    *w.aws_override.lock().unwrap() = Some((
        200,
        "<DescribeAutoScalingInstancesResponse><Describe".into(),
    ));
    assert_failure(&w.run(&[]), 1, "unreadable answer");
    assert_eq!(fs::read_to_string(w.env_file()).unwrap(), "OLD=1\n");
}

#[test]
fn imds_unreachable_is_an_error_not_a_fallback() {
    // No metadata service at all: waited for within --boot-wait, then the clear message and
    // 75 (at boot it may only be late).
    let w = World::new(20, 2, vec![group("etcd", &[2])], None, vec![], Imds::v2());
    let started = std::time::Instant::now();
    let out = w.run_with_env(
        &["--boot-wait=2s"],
        &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.20.250:9")],
    );
    assert_failure(
        &out,
        75,
        "is this an EC2 instance with the metadata service enabled",
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "bounded by --boot-wait: {:?}",
        started.elapsed()
    );
    assert!(w.aws_requests().is_empty());
}

#[test]
fn a_missing_directory_is_created() {
    // Debian and Ubuntu have no /etc/sysconfig: refusing a missing directory failed every
    // first boot with exit 1, which the unit does not retry.
    use std::os::unix::fs::PermissionsExt;
    let w = World::new(21, 2, vec![group("etcd", &[2])], None, vec![], Imds::v2());
    let dir = w.dir.join("sysconfig/etcd");
    let out = w.run(&[&format!("-environment-file={}/peers", dir.display())]);
    assert_success(&out);
    assert!(stderr(&out).contains(&format!("created the directory {}", dir.display())));
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert!(fs::read_to_string(dir.join("peers"))
        .unwrap()
        .contains("ETCD_NAME="));
}

#[test]
fn usage_help_and_version() {
    let bin = world::binary();
    let out = std::process::Command::new(&bin)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--environment-file",
        "--scaling-group-name",
        "PROXY_ASG",
        "ETCD_CLIENT_SCHEME",
        "[default: 2379]",
    ] {
        assert!(help.contains(needle), "{needle}");
    }
    let out = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("etcd-discovery "));
    let out = std::process::Command::new(&bin)
        .arg("-no-such-flag")
        .output()
        .unwrap();
    assert_failure(&out, 2, "unknown flag \"--no-such-flag\"");
}

/// Where a secret shows in a log, whole or in pieces: any 8-character window of it as text,
/// or hex-encoded (ureq's wire dump prints 16 bytes a line, in hex and as text, so a secret
/// is split across lines and only pieces of it are on any one line).
fn leaked_piece(log: &str, secret: &str) -> Option<String> {
    let hex_log: String = log
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase();
    let bytes = secret.as_bytes();
    bytes.windows(8.min(bytes.len())).find_map(|window| {
        let text = String::from_utf8_lossy(window).into_owned();
        let hex: String = window.iter().map(|b| format!("{b:02x}")).collect();
        if log.contains(&text) {
            Some(text)
        } else if hex_log.contains(&hex) {
            Some(format!("{text} as hex {hex}"))
        } else {
            None
        }
    })
}

fn assert_no_piece_of(log: &str, secrets: &[(&str, &str)]) {
    for (what, secret) in secrets {
        if let Some(piece) = leaked_piece(log, secret) {
            panic!("a piece of the {what} ({piece}) leaked into:\n{log}");
        }
    }
}

/// The signatures of the AWS requests the tool made, first to last.
fn signatures(w: &World) -> Vec<String> {
    w.aws_requests()
        .iter()
        .filter_map(|r| r.header("authorization"))
        .filter_map(|a| a.rsplit_once("Signature=").map(|(_, s)| s.to_string()))
        .collect()
}

#[test]
fn secrets_never_reach_the_log() {
    let w = World::new(
        22,
        4,
        vec![group("etcd", &[2, 4, 5])],
        Some((&[2, 5], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true), w.member(5, true)];
    let secret = "wJalrXUtnFEMIK7MDENGbPxRfiCYSECRETKEY";
    let token = "FQoGZXIvYXdzSESSIONTOKEN";
    let out = w.run_with_env(
        &["-v=10"],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDLOG"),
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("AWS_SESSION_TOKEN", token),
            ("RUST_LOG", "trace"),
        ],
    );
    assert_success(&out);
    let log = stderr(&out);
    assert!(log.lines().count() > 10, "trace logging is on:\n{log}");
    let signature = signatures(&w)[0].clone();
    for needle in [secret, token, signature.as_str()] {
        assert!(!log.contains(needle), "{needle} leaked into:\n{log}");
    }
    assert_no_piece_of(
        &log,
        &[
            ("secret key", secret),
            ("session token", token),
            ("signature", &signature),
            ("IMDS token", IMDS_TOKEN),
        ],
    );
}

#[test]
fn rust_log_trace_does_not_dump_the_wire() {
    // Regression: RUST_LOG=trace let ureq hex-dump every byte: the instance profile's secret
    // and token from IMDS, x-amz-security-token, the signature and the IMDS token.
    let w = World::new(
        29,
        4,
        vec![group("etcd", &[2, 4, 5])],
        Some((&[2, 5], EtcdApi::V3)),
        vec![],
        Imds {
            profile: true,
            ..Imds::v2()
        },
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true), w.member(5, true)];
    for rust_log in ["trace", "ureq=trace,ureq_proto=trace,rustls=trace,trace"] {
        let out = w.run_with_env(
            &["-v=10"],
            &[
                ("AWS_ACCESS_KEY_ID", ""),
                ("AWS_SECRET_ACCESS_KEY", ""),
                ("RUST_LOG", rust_log),
            ],
        );
        assert_success(&out);
        let log = stderr(&out);
        assert!(
            log.contains("etcd-discovery: trace:"),
            "our own modules still log at trace with RUST_LOG={rust_log}:\n{log}"
        );
        let requests = w.aws_requests();
        assert_eq!(
            requests[0].header("x-amz-security-token"),
            Some(PROFILE_TOKEN),
            "the instance profile's keys were used"
        );
        assert_no_piece_of(
            &log,
            &[
                ("profile secret key", PROFILE_SECRET),
                ("profile session token", PROFILE_TOKEN),
                ("IMDS token", IMDS_TOKEN),
            ],
        );
        for signature in signatures(&w) {
            assert_no_piece_of(&log, &[("signature", &signature)]);
        }
    }
}

#[test]
fn bootstrap_waits_until_the_whole_group_is_visible() {
    // Rule 1: desired 3, but only this instance is listed at first; the others appear while
    // the tool waits. It must bootstrap with all three, never with itself alone.
    let mut g = group("etcd", &[2]);
    g.desired = 3;
    let w = World::new(23, 2, vec![g], None, vec![], Imds::v2());
    let mut child = w
        .command(&["--wait-timeout=60s"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // One more instance after each look (its progress, not the clock: under qemu on a loaded
    // machine the first look can take seconds).
    for (looks, k) in [(1, 3), (2, 4)] {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline
            && aws_actions(&w)
                .iter()
                .filter(|a| *a == "DescribeAutoScalingGroups")
                .count()
                < looks
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        w.groups.lock().unwrap()[0]
            .instances
            .push((k, "Pending".into()));
    }
    let out = wait_bounded(&mut child, Duration::from_secs(60));
    assert_success(&out);
    let log = stderr(&out);
    assert!(
        log.contains("1 of the group's 3 desired instances are visible"),
        "{log}"
    );
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER"),
        cluster(23, &[2, 3, 4])
    );
}

#[test]
fn bootstrap_gives_up_after_the_wait_timeout() {
    let mut g = group("etcd", &[2]);
    g.desired = 3;
    let w = World::new(24, 2, vec![g], None, vec![], Imds::v2());
    fs::write(w.env_file(), "OLD=1\n").unwrap();
    let out = w.run(&["--wait-timeout=3s"]);
    assert_failure(
        &out,
        75,
        "1 of the group's 3 desired instances are visible after waiting",
    );
    assert_eq!(fs::read_to_string(w.env_file()).unwrap(), "OLD=1\n");
}

#[test]
fn lost_quorum_is_reported_not_papered_over() {
    // Rule 6: two of three instances are gone; the survivor answers the member list. Never
    // bootstrap anew over it: exit 75, say how many are healthy, keep the file.
    let w = World::new(
        25,
        5,
        vec![group("etcd", &[2, 5])],
        Some((&[2], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true), w.member(4, true)];
    fs::write(w.env_file(), "OLD=1\n").unwrap();
    let out = w.run(&["--wait-timeout=2s"]);
    assert_failure(
        &out,
        75,
        "quorum lost: 1 of 3 voting members are healthy, 2 are needed",
    );
    assert!(stderr(&out).contains("snapshot"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("waiting for a leader"),
        "looked again before giving up: {}",
        stderr(&out)
    );
    assert_eq!(fs::read_to_string(w.env_file()).unwrap(), "OLD=1\n");
    assert!(w.etcd_changes().is_empty());
}

#[test]
fn leave_removes_this_member_and_completes_the_lifecycle_hook() {
    // Rule 8: on termination (ExecStop= or the hook's handler) the member leaves while the
    // others keep a quorum, then AutoScaling is told to go on.
    let w = World::new(
        26,
        2,
        vec![group("etcd", &[2, 3, 4])],
        Some((&[2, 3, 4], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true), w.member(4, true)];
    // This node's own etcd answers the look first; the removal still goes to another member
    // (a member that removes itself stops before it answers).
    for other in &w.etcd[1..] {
        other
            .latency_ms
            .store(300, std::sync::atomic::Ordering::Relaxed);
    }
    let out = w.run(&["leave", "--lifecycle-hook", "etcd-leave"]);
    assert_success(&out);
    let removed_at: Vec<String> = w
        .etcd
        .iter()
        .filter(|e| e.requests().iter().any(|r| r.path.ends_with("/remove")))
        .map(|e| e.ip.clone())
        .collect();
    assert_eq!(removed_at.len(), 1);
    assert_ne!(
        removed_at[0],
        World::ip(26, 2),
        "not through the leaving member"
    );
    assert_eq!(
        w.etcd_changes(),
        vec![(
            "/v3/cluster/member/remove".to_string(),
            r#"{"ID":"1002"}"#.to_string()
        )]
    );
    let hook = w
        .aws_requests()
        .into_iter()
        .find(|r| r.param("Action").as_deref() == Some("CompleteLifecycleAction"))
        .expect("hook completed");
    assert_names_the_hook_of_i_2(&hook);
    assert_eq!(
        hook.param("LifecycleActionResult").as_deref(),
        Some("CONTINUE")
    );
    assert!(!w.env_file().exists(), "leave writes no file");
}

/// A lifecycle call of `leave --lifecycle-hook etcd-leave` on i-2 of the group `etcd`,
/// signed for AutoScaling.
fn assert_names_the_hook_of_i_2(call: &fake::Request) {
    assert_eq!(
        call.param("LifecycleHookName").as_deref(),
        Some("etcd-leave")
    );
    assert_eq!(call.param("AutoScalingGroupName").as_deref(), Some("etcd"));
    assert_eq!(call.param("InstanceId"), Some(instance_id(2)));
    assert!(call
        .header("authorization")
        .is_some_and(|a| a.contains("/autoscaling/aws4_request")));
}

/// The setting of the round-trip bounds (issue 16): instance metadata tags on (the group's
/// name from IMDS) and an instance profile, so that no key is given; a group `etcd` of 2, 3
/// and 4 (this instance is 2), whose members have all started and whose peers answer on
/// their peer ports.
fn tagged_group_with_a_profile(net: u8) -> World {
    let imds = Imds {
        group_tag: Some("etcd".into()),
        profile: true,
        ..Imds::v2()
    };
    let mut w = World::new(
        net,
        2,
        vec![group("etcd", &[2, 3, 4])],
        Some((&[3, 4], EtcdApi::V3)),
        vec![],
        imds,
    );
    w.serve_peer_ports(&[3, 4]);
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true), w.member(4, true)];
    w
}

/// A run with no static keys (the credentials come from the instance profile) that must
/// succeed; its log.
fn run_without_keys(w: &World) -> String {
    let out = w.run_with_env(
        &[],
        &[("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", "")],
    );
    assert_success(&out);
    stderr(&out)
}

/// Forgets what the fakes were asked so far and holds each of their answers 250 ms: the next
/// run's round trips are counted alone. 250 ms, so that requests sent together overlap even
/// when a loaded machine is slow to start one of their threads (at 20 ms, a busy 2-core
/// machine once counted 7); the count of trips depends on overlap, never on how long
/// anything took.
fn count_from_here(w: &World) {
    for s in [&w.imds, &w.aws].into_iter().chain(&w.etcd) {
        s.requests.lock().unwrap().clear();
    }
    w.set_latency(Duration::from_millis(250));
}

/// The sequential round trips of every request since `count_from_here`, printed with the
/// number of requests under `what` (shown with `--nocapture`).
fn round_trips(w: &World, what: &str) -> usize {
    let all: Vec<fake::Request> = [w.imds.requests(), w.aws_requests(), w.etcd_requests()].concat();
    let trips = fake::sequential_round_trips(&all);
    println!(
        "{what}: {} requests, {trips} sequential round trips",
        all.len()
    );
    trips
}

#[test]
fn the_reboot_path_takes_at_most_six_sequential_round_trips() {
    // The full path: token, then identity, hostname, tag and role at once, the role's keys,
    // the group, the addresses, the member list (client and peer ports at once). No health
    // check: a reboot changes nothing whatever it says.
    let w = tagged_group_with_a_profile(27);
    count_from_here(&w);
    let log = run_without_keys(&w);
    assert!(log.contains("nothing to change (reboot)"), "{log}");
    assert_eq!(
        aws_actions(&w),
        ["DescribeAutoScalingGroups", "DescribeInstances"],
        "the group's name came from IMDS"
    );
    assert!(w.aws_requests().iter().all(|r| r
        .header("authorization")
        .is_some_and(|a| a.contains("ASIAPROFILE/"))));
    assert!(
        w.etcd_requests().iter().all(|r| r.path != "/health"),
        "no health check on a reboot"
    );
    let trips = round_trips(&w, "reboot path");
    assert!(trips <= 6, "{trips} sequential round trips");
}

#[test]
fn a_reboot_makes_no_aws_call_and_at_most_three_sequential_round_trips() {
    // Issue 16: the full reboot path takes 6 sequential round trips and 2 AWS calls. The
    // fast path: the previous file's peers are asked while IMDS says who we are; no
    // credentials, no AWS.
    let w = tagged_group_with_a_profile(220);
    // The first boot has no file: the full path writes it.
    let log = run_without_keys(&w);
    assert!(!log.contains("no AWS call"), "{log}");
    let written = fs::read_to_string(w.env_file()).unwrap();
    count_from_here(&w);
    let log = run_without_keys(&w);
    assert!(log.contains("no AWS call"), "{log}");
    assert!(log.contains("up to date"), "{log}");
    assert_eq!(fs::read_to_string(w.env_file()).unwrap(), written);
    assert!(w.aws_requests().is_empty(), "{:?}", w.aws_requests());
    assert!(
        w.imds
            .requests()
            .iter()
            .all(|r| !r.path.contains("security-credentials") && !r.path.contains("/tags/")),
        "no credentials, no group tag: {:?}",
        w.imds.requests()
    );
    assert!(w.etcd_changes().is_empty(), "no membership change");
    let trips = round_trips(&w, "reboot fast path");
    assert!(trips <= 3, "{trips} sequential round trips");
}

#[test]
fn a_reboot_that_falls_back_costs_one_round_trip_more_than_a_first_boot() {
    // The file was baked into the image on another instance: the peers are asked (beside
    // IMDS), the shortcut says no, and only then come the group tag and the credentials.
    let w = tagged_group_with_a_profile(222);
    run_without_keys(&w);
    let me = env_value(&fs::read_to_string(w.env_file()).unwrap(), "ETCD_NAME");
    let baked = fs::read_to_string(w.env_file())
        .unwrap()
        .replace(&format!("ETCD_NAME={me}"), "ETCD_NAME=i-0bake0000000000001");
    fs::write(w.env_file(), baked).unwrap();
    count_from_here(&w);
    let log = run_without_keys(&w);
    assert!(
        log.contains("was written for i-0bake0000000000001"),
        "{log}"
    );
    assert_eq!(
        env_value(&fs::read_to_string(w.env_file()).unwrap(), "ETCD_NAME"),
        me
    );
    assert_eq!(w.aws_requests().len(), 2);
    let trips = round_trips(&w, "a reboot that falls back");
    assert!(trips <= 7, "{trips} sequential round trips");
}

#[test]
fn a_big_groups_addresses_are_asked_in_chunks_at_once() {
    // Issue 16: DescribeInstances takes 100 ids a call; a 240-instance group's three calls
    // went one after another. Now they overlap, and every instance is still in the file.
    let hosts: Vec<u8> = (2..=241).collect();
    let masters = group("etcd-masters", &hosts);
    let mut consumers = group("consumers", &[242]);
    consumers.tags.clear();
    let w = World::new(221, 242, vec![masters, consumers], None, vec![], Imds::v2());
    w.set_latency(Duration::from_millis(250));
    let text = run_and_read(&w, &["-proxy-mode", "-scaling-group-name=etcd-masters"]);
    let mut endpoints: Vec<String> = env_value(&text, "ETCD_ENDPOINTS")
        .split(',')
        .map(str::to_string)
        .collect();
    endpoints.sort();
    let mut expected: Vec<String> = hosts
        .iter()
        .map(|k| format!("http://127.0.221.{k}:{}", w.client_port))
        .collect();
    expected.sort();
    assert_eq!(endpoints, expected);
    let describes: Vec<fake::Request> = w
        .aws_requests()
        .into_iter()
        .filter(|r| r.param("Action").as_deref() == Some("DescribeInstances"))
        .collect();
    assert_eq!(describes.len(), 3, "100 ids a call");
    assert_eq!(
        fake::sequential_round_trips(&describes),
        1,
        "the chunks are asked at once"
    );
}

#[test]
fn container_credentials_are_used_when_there_are_no_keys() {
    // monsanto's tool ran in a container: the ECS credentials endpoint comes before the
    // instance profile, with its authorization token, and the token never reaches the log.
    let w = World::new(28, 2, vec![group("etcd", &[2])], None, vec![], Imds::v2());
    let url = format!("{}/v2/credentials/task", w.imds.url());
    let out = w.run_with_env(
        &["-v=10"],
        &[
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_SECRET_ACCESS_KEY", ""),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &url),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-auth-token"),
        ],
    );
    assert_success(&out);
    for r in w.aws_requests() {
        assert!(r
            .header("authorization")
            .is_some_and(|a| a.contains("Credential=ASIACONTAINER/")));
        assert_eq!(r.header("x-amz-security-token"), Some("container-session"));
    }
    let log = stderr(&out);
    for secret in [
        "container-auth-token",
        "container-secret",
        "container-session",
    ] {
        assert!(!log.contains(secret), "{secret} leaked into:\n{log}");
    }
}

fn wait_bounded(child: &mut std::process::Child, limit: Duration) -> Output {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            let status = child.wait().unwrap();
            return Output {
                status,
                stdout: Vec::new(),
                stderr: stderr.into_bytes(),
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("etcd-discovery did not finish within {limit:?}");
}
