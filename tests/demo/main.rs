//! `./build.sh demo`: the lab's first two scenarios told in plain words. Three instances boot
//! and bootstrap a cluster; one is terminated and its replacement joins. Not part of the test
//! suite (the lab tests assert the same); this one is for people.

#[path = "../support/client.rs"]
mod client;
#[path = "../support/fake.rs"]
mod fake;
#[path = "../lab/lab.rs"]
mod lab;

use std::time::Instant;

use lab::{EtcdFlags, Lab};

/// What the tool said it decided, without the log prefix.
fn decisions(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.strip_prefix("etcd-discovery: info: "))
        .filter(|l| !l.starts_with("this is ") && !l.starts_with("wrote "))
        .map(str::to_string)
        .collect()
}

fn show_file(lab: &Lab, k: u8) {
    println!("\n  {}:", lab.env_file(k).display());
    for line in std::fs::read_to_string(lab.env_file(k)).unwrap().lines() {
        println!("    {line}");
    }
}

fn show_members(lab: &Lab, k: u8) {
    let endpoint = lab.env_value(k, "ETCD_ADVERTISE_CLIENT_URLS");
    let out = lab::etcd_tool("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &endpoint, "member", "list", "-w", "table"])
        .output()
        .unwrap();
    println!("\n  etcdctl member list:");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        println!("    {line}");
    }
}

fn boot(lab: &mut Lab, k: u8) {
    let log = lab.discover_ok(k, &[]);
    println!("  instance {} at {}:", lab.nodes[&k].instance_id, lab.ip(k));
    for d in decisions(&log) {
        println!("    - {d}");
    }
}

fn main() {
    let started = Instant::now();
    println!("== Starting the lab: moto as AutoScaling/EC2, an IMDS stub per instance, real etcd");
    let mut lab = Lab::new(40);
    lab.create_group("etcd", "etcd-masters");
    for k in [2, 3, 4] {
        lab.launch("etcd", k);
    }
    println!(
        "   group \"etcd\" has 3 instances at {}, {}, {}",
        lab.ip(2),
        lab.ip(3),
        lab.ip(4)
    );

    println!("\n== 1. First boot: each instance runs etcd-discovery, then etcd, all at once");
    let running = [2, 3, 4].map(|k| (k, lab.discover_spawn(k, &[]))).into();
    lab.finish_and_start(running, &EtcdFlags::default());
    for k in [2, 3, 4] {
        let log =
            std::fs::read_to_string(lab.node_dir(k).join("discovery.log")).unwrap_or_default();
        println!("  instance {} at {}:", lab.nodes[&k].instance_id, lab.ip(k));
        for d in decisions(&log) {
            println!("    - {d}");
        }
    }
    for k in [2, 3, 4] {
        lab.wait_healthy(k, &[]);
    }
    println!("  all three etcds started from their files and formed one cluster:");
    show_members(&lab, 2);
    show_file(&lab, 2);

    println!(
        "\n== 2. Instance {} is terminated; AutoScaling launches a replacement at {}",
        lab.nodes[&4].instance_id,
        lab.ip(5)
    );
    lab.terminate(4);
    lab.launch("etcd", 5);
    boot(&mut lab, 5);
    lab.start_etcd(5, &EtcdFlags::default());
    lab.wait_healthy(5, &[]);
    println!("  the replacement's etcd started and joined:");
    show_members(&lab, 2);
    show_file(&lab, 5);

    drop(lab);
    println!(
        "\n== Done in {:.1} s; every process the lab started is stopped.",
        started.elapsed().as_secs_f64()
    );
}
