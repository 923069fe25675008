//! A herd: many proxy instances of a consumer group boot at once against a running cluster,
//! with AWS (moto) behind a proxy that throttles a share of the calls; then they all reboot.
//! Shared by the lab test (a small herd, correctness asserted) and the bench (200, measured).

// Shared by several test binaries; each uses a different part.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::client::xml_text;
use super::lab::{start_imds_targeted, Lab, Node, Target};
use super::throttle::ThrottlingProxy;

/// What one wave of the herd (every instance at once) took.
#[derive(Debug)]
pub struct Wave {
    pub instances: usize,
    /// From the first start to the last exit.
    pub wall: Duration,
    /// AWS calls that reached the proxy, throttled ones included.
    pub aws_calls: usize,
    pub max_calls_per_instance: usize,
    /// Calls answered `Throttling` (each one a retry).
    pub throttled: u64,
}

impl Wave {
    pub fn mean_calls(&self) -> f64 {
        self.aws_calls as f64 / self.instances as f64
    }
}

/// A herd's two waves: the first boot (no file yet) and a reboot of every instance.
#[derive(Debug)]
pub struct Herd {
    pub boot: Wave,
    pub reboot: Wave,
}

/// Boots `size` proxy instances (hosts first..first+size) at once against the masters 2, 3, 4 of
/// `lab` (group "etcd", already running), with `percent` of AWS calls throttled; then
/// reboots them all. Asserts that every instance ends with the masters' endpoints in its
/// file, and that the reboot made no AWS call.
pub fn herd(lab: &mut Lab, first: u8, size: u8, percent: u64, seed: u64) -> Herd {
    assert!(
        u16::from(first) + u16::from(size) <= 250,
        "hosts up to .249 (the proxy is .251)"
    );
    let hosts: Vec<u8> = (first..first + size).collect();
    for k in &hosts {
        launch_ungrouped(lab, *k);
    }
    let proxy = ThrottlingProxy::start(&lab.ip(251), &lab.moto.url, percent, seed);
    let expected: String = [2, 3, 4]
        .iter()
        .map(|k| format!("http://{}:2379", lab.ip(*k)))
        .collect::<Vec<_>>()
        .join(",");
    let boot = wave(lab, &hosts, &proxy, &expected);
    let reboot = wave(lab, &hosts, &proxy, &expected);
    assert_eq!(reboot.aws_calls, 0, "a proxy's reboot asks etcd, not AWS");
    Herd { boot, reboot }
}

/// An instance outside any group (a consumer needs none: it reads the masters' group).
fn launch_ungrouped(lab: &mut Lab, k: u8) {
    let ip = lab.ip(k);
    let answer = lab.moto.call(
        "ec2",
        "RunInstances",
        &[
            ("ImageId", "ami-03cf127a"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("SubnetId", &lab.subnet),
            ("PrivateIpAddress", &ip),
        ],
    );
    let id = xml_text(&answer, "instanceId").unwrap();
    let target: Target = std::sync::Arc::new(std::sync::Mutex::new("InService".into()));
    let imds = start_imds_targeted(&id, &ip, None, target.clone());
    fs::create_dir_all(lab.node_dir(k).join("var")).unwrap();
    lab.nodes.insert(
        k,
        Node {
            k,
            instance_id: id,
            imds,
            target,
            etcd: None,
        },
    );
}

/// Starts the tool on every host at once (each with its own access key id, so the proxy
/// can tell them apart), waits for all (bounded), and checks every file.
fn wave(lab: &Lab, hosts: &[u8], proxy: &ThrottlingProxy, expected: &str) -> Wave {
    let calls_before = proxy.requests().len();
    let throttled_before = proxy.throttled.load(std::sync::atomic::Ordering::SeqCst);
    let started = Instant::now();
    let mut running: Vec<(u8, std::process::Child)> = hosts
        .iter()
        .map(|k| {
            let mut command =
                lab.discover_command(*k, &["-proxy-mode", "-scaling-group-name=etcd"]);
            command
                .env("AWS_ENDPOINT_URL", proxy.url())
                .env("AWS_ACCESS_KEY_ID", format!("AKIDHERD{k}"))
                .stdout(Stdio::null())
                .stderr(fs::File::create(lab.node_dir(*k).join("herd.log")).unwrap());
            (*k, command.spawn().expect("start etcd-discovery"))
        })
        .collect();
    let deadline = started + Duration::from_secs(180);
    while !running.is_empty() {
        assert!(Instant::now() < deadline, "the herd still runs after 180 s");
        let mut still = Vec::new();
        for (k, mut child) in running {
            match child.try_wait().unwrap() {
                Some(status) => assert!(
                    status.success(),
                    "instance {k} failed ({status}):\n{}",
                    fs::read_to_string(lab.node_dir(k).join("herd.log")).unwrap_or_default()
                ),
                None => still.push((k, child)),
            }
        }
        running = still;
        std::thread::sleep(Duration::from_millis(20));
    }
    let wall = started.elapsed();
    for k in hosts {
        assert_eq!(lab.env_value(*k, "ETCD_PROXY"), "on", "instance {k}");
        assert_eq!(
            lab.env_value(*k, "ETCD_ENDPOINTS"),
            expected,
            "instance {k}"
        );
    }
    let calls: Vec<_> = proxy.requests().split_off(calls_before);
    let mut per_instance: BTreeMap<String, usize> = BTreeMap::new();
    for call in &calls {
        let key = call
            .header("authorization")
            .and_then(|a| a.split("Credential=").nth(1))
            .and_then(|c| c.split('/').next())
            .unwrap_or("unsigned")
            .to_string();
        *per_instance.entry(key).or_default() += 1;
    }
    Wave {
        instances: hosts.len(),
        wall,
        aws_calls: calls.len(),
        max_calls_per_instance: per_instance.values().copied().max().unwrap_or(0),
        throttled: proxy.throttled.load(std::sync::atomic::Ordering::SeqCst) - throttled_before,
    }
}
