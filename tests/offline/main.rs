//! Offline integration tests: the built binary against in-process fakes of IMDS, AutoScaling,
//! EC2 and etcd's member API on loopback. Each test reads as a scenario; `world.rs` hides the
//! setup. Each test uses its own 127.0.N.0/24 (N is the first argument of `World::new`).

#[path = "../support/fake.rs"]
mod fake;
mod world;

use std::fs;

use world::{instance_id, EtcdApi, Group, Imds, World};

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

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_success(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstderr:\n{}",
        output.status.code(),
        stderr(output)
    );
}

/// The one error line the tool prints, and its exit code.
fn assert_failure(output: &std::process::Output, code: i32, needle: &str) {
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

#[test]
fn bootstrap_when_nobody_answers() {
    let w = World::new(
        11,
        2,
        vec![group("etcd", &[4, 2, 3])],
        None,
        vec![],
        Imds { v2: true },
    );
    let out = w.run(&[]);
    assert_success(&out);
    let text = fs::read_to_string(w.env_file()).unwrap();
    println!("{}{text}", stderr(&out));
    assert_eq!(env_value(&text, "ETCD_NAME"), instance_id(2));
    assert_eq!(env_value(&text, "ETCD_INITIAL_CLUSTER_STATE"), "new");
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER"),
        format!(
            "{}=http://127.0.11.2:2380,{}=http://127.0.11.3:2380,{}=http://127.0.11.4:2380",
            instance_id(2),
            instance_id(3),
            instance_id(4)
        )
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
    let actions: Vec<String> = aws.iter().map(|r| r.param("Action").unwrap()).collect();
    assert_eq!(
        actions,
        [
            "DescribeAutoScalingInstances",
            "DescribeAutoScalingGroups",
            "DescribeInstances"
        ]
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
fn join_removes_the_dead_member_and_adds_this_one() {
    // Members 2 and 3 were the cluster; 3's instance is gone and 4 replaces it.
    let mut w = World::new(
        12,
        4,
        vec![group("etcd", &[2, 4])],
        Some((2, EtcdApi::V3)),
        vec![],
        Imds { v2: true },
    );
    let members = vec![w.member(2, true), w.member(3, true)];
    *w.members.lock().unwrap() = members;
    let out = w.run(&[]);
    assert_success(&out);
    let text = fs::read_to_string(w.env_file()).unwrap();
    println!("{}{text}", stderr(&out));
    assert_eq!(env_value(&text, "ETCD_INITIAL_CLUSTER_STATE"), "existing");
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER"),
        format!(
            "{}=http://127.0.12.2:2380,{}=http://127.0.12.4:2380",
            instance_id(2),
            instance_id(4)
        )
    );
    assert!(!text.contains("ETCD_INITIAL_CLUSTER_TOKEN"));

    let etcd: Vec<(String, String)> = w
        .etcd_requests()
        .into_iter()
        .map(|r| (r.path, r.body))
        .collect();
    let changes: Vec<&(String, String)> =
        etcd.iter().filter(|(p, _)| !p.ends_with("/list")).collect();
    assert_eq!(changes.len(), 2, "{etcd:?}");
    assert_eq!(
        changes[0],
        &(
            "/v3/cluster/member/remove".to_string(),
            r#"{"ID":"1003"}"#.to_string()
        )
    );
    assert_eq!(
        changes[1],
        &(
            "/v3/cluster/member/add".to_string(),
            r#"{"peerURLs":["http://127.0.12.4:2380"]}"#.to_string()
        )
    );
    w.etcd.take();
}

#[test]
fn reboot_changes_nothing() {
    let w = World::new(
        13,
        2,
        vec![group("etcd", &[2, 3, 4])],
        Some((3, EtcdApi::V3)),
        vec![],
        Imds { v2: true },
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
    assert!(
        w.etcd_requests().iter().all(|r| r.path.ends_with("/list")),
        "no membership change"
    );
}

#[test]
fn v2_api_when_the_v3_gateway_is_missing() {
    let w = World::new(
        14,
        3,
        vec![group("etcd", &[2, 3])],
        Some((2, EtcdApi::V2Only)),
        vec![],
        Imds { v2: true },
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(9, true)];
    assert_success(&w.run(&["--etcd-api=auto"]));
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER"),
        format!(
            "{}=http://127.0.14.2:2380,{}=http://127.0.14.3:2380",
            instance_id(2),
            instance_id(3)
        )
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
        Some((2, EtcdApi::V3)),
        vec![],
        Imds { v2: true },
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true)];
    let out = w.run(&["-proxy-mode", "-scaling-group-name=etcd-masters"]);
    assert_success(&out);
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(env_value(&text, "ETCD_PROXY"), "on");
    assert_eq!(
        env_value(&text, "ETCD_ENDPOINTS"),
        format!("http://127.0.15.2:{0},http://127.0.15.3:{0}", w.client_port)
    );
    let actions: Vec<String> = w
        .aws_requests()
        .iter()
        .map(|r| r.param("Action").unwrap())
        .collect();
    assert_eq!(
        actions,
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
    let w = World::new(16, 3, vec![a, b, other], None, vec![], Imds { v2: true });
    assert_success(&w.run(&["--scaling-group-tag", "role=etcd"]));
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(
        env_value(&text, "ETCD_INITIAL_CLUSTER"),
        format!(
            "{}=http://127.0.16.2:2380,{}=http://127.0.16.3:2380",
            instance_id(2),
            instance_id(3)
        )
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
        Imds { v2: false },
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
        vec![group("etcd", &[2, 4])],
        Some((2, EtcdApi::V3)),
        vec![],
        Imds { v2: true },
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true)];
    let out = w.run(&["--dry-run"]);
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("# would Remove"), "{stdout}");
    assert!(
        stdout.contains("ETCD_INITIAL_CLUSTER_STATE=existing"),
        "{stdout}"
    );
    assert!(!w.env_file().exists());
    assert!(w.etcd_requests().iter().all(|r| r.path.ends_with("/list")));
}

#[test]
fn aws_errors_fail_cleanly_and_keep_the_old_file() {
    let w = World::new(
        19,
        2,
        vec![group("etcd", &[2])],
        None,
        vec![],
        Imds { v2: true },
    );
    fs::write(w.env_file(), "OLD=1\n").unwrap();
    let denied = fs::read_to_string("fixtures/autoscaling/error-access-denied.xml").unwrap();
    *w.aws_override.lock().unwrap() = Some((403, denied));
    assert_failure(&w.run(&[]), 1, "autoscaling:DescribeAutoScalingInstances");
    assert_eq!(fs::read_to_string(w.env_file()).unwrap(), "OLD=1\n");

    let throttled = fs::read_to_string("fixtures/autoscaling/error-throttling.xml").unwrap();
    *w.aws_override.lock().unwrap() = Some((400, throttled));
    let before = w.aws_requests().len();
    assert_failure(&w.run(&[]), 75, "Throttling");
    assert_eq!(w.aws_requests().len() - before, 5, "bounded retries");
    assert_eq!(fs::read_to_string(w.env_file()).unwrap(), "OLD=1\n");

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
    let w = World::new(
        20,
        2,
        vec![group("etcd", &[2])],
        None,
        vec![],
        Imds { v2: true },
    );
    let out = w.run_with_env(
        &[],
        &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.20.250:9")],
    );
    assert_failure(&out, 1, "instance metadata");
    assert!(w.aws_requests().is_empty());
}

#[test]
fn missing_directory_fails_before_anything_happens() {
    let w = World::new(
        21,
        2,
        vec![group("etcd", &[2])],
        None,
        vec![],
        Imds { v2: true },
    );
    let out = w.run(&[&format!(
        "-environment-file={}/no/such/dir/peers",
        w.dir.display()
    )]);
    assert_failure(&out, 1, "no/such/dir");
    assert!(w.imds.requests().is_empty());
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

#[test]
fn secrets_never_reach_the_log() {
    let w = World::new(
        22,
        4,
        vec![group("etcd", &[2, 4])],
        Some((2, EtcdApi::V3)),
        vec![],
        Imds { v2: true },
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true)];
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
    let signature = w.aws_requests()[0]
        .header("authorization")
        .unwrap()
        .rsplit("Signature=")
        .next()
        .unwrap()
        .to_string();
    for needle in [secret, token, signature.as_str()] {
        assert!(!log.contains(needle), "{needle} leaked into:\n{log}");
    }
}
