//! `--metrics-file`: every run writes it, whatever its outcome, and a secret never goes in.
//! Networks 127.0.240-241.0/24.

use std::collections::BTreeMap;
use std::fs;

use super::world::{EtcdApi, Imds, World};
use super::{assert_success, group};

/// `name{labels}` -> value, every sample a number with its TYPE line.
fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        let bare = name.split('{').next().unwrap();
        assert!(text.contains(&format!("# TYPE {bare} gauge\n")), "{text}");
        samples.insert(name.to_string(), value.parse().unwrap());
    }
    samples
}

#[test]
fn a_join_writes_its_metrics() {
    let net = 240;
    let w = World::new(
        net,
        4,
        vec![group("etcd", &[2, 3, 4])],
        Some((&[2, 3], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true)];
    let prom = w.dir.join("discover.prom");
    let out = w.run(&[&format!("--metrics-file={}", prom.display())]);
    assert_success(&out);
    let text = fs::read_to_string(&prom).unwrap();
    let m = samples(&text);
    let get = |name: &str| m[&format!("etcd_discovery_{name}")];
    assert_eq!(get("last_run_exit_code{command=\"discover\"}"), 0.0);
    assert_eq!(
        get("last_run_plan{command=\"discover\",kind=\"existing\"}"),
        1.0
    );
    assert_eq!(get("members{command=\"discover\"}"), 2.0);
    assert_eq!(get("members_healthy{command=\"discover\"}"), 2.0);
    assert_eq!(get("members_stale{command=\"discover\"}"), 0.0);
    assert!(get("last_run_requests{command=\"discover\",service=\"aws\"}") >= 2.0);
    // The list, the health of each member, the add.
    assert!(get("last_run_requests{command=\"discover\",service=\"etcd\"}") >= 3.0);
    assert!(!text.contains("offline-secret-key") && !text.contains("AKIDOFFLINE"));
    // Nothing but the file itself is left in its directory (the write is atomic).
    let names: Vec<String> = fs::read_dir(&w.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("prom"))
        .collect();
    assert_eq!(names, ["discover.prom"]);
}

#[test]
fn a_run_that_fails_early_writes_its_metrics_too() {
    let net = 241;
    let w = World::new(
        net,
        2,
        vec![group("etcd", &[2, 3, 4])],
        None,
        vec![],
        Imds::v2(),
    );
    let prom = w.dir.join("promote.prom");
    // No metadata service: exit 75 before any AWS call.
    let out = w.run_with_env(
        &[
            "promote",
            "--boot-wait=0",
            &format!("--metrics-file={}", prom.display()),
        ],
        &[(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            "http://127.0.241.250:1",
        )],
    );
    assert_eq!(out.status.code(), Some(75));
    let m = samples(&fs::read_to_string(&prom).unwrap());
    assert_eq!(
        m["etcd_discovery_last_run_exit_code{command=\"promote\"}"],
        75.0
    );
    assert_eq!(
        m["etcd_discovery_last_run_plan{command=\"promote\",kind=\"none\"}"],
        1.0
    );
    assert_eq!(
        m["etcd_discovery_last_run_requests{command=\"promote\",service=\"aws\"}"],
        0.0
    );
    assert!(!m.keys().any(|k| k.starts_with("etcd_discovery_members")));
}
