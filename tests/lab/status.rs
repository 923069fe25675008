//! `etcd-discovery status` against a real cluster: the table and JSON name every instance,
//! a member whose instance is gone is flagged stale, and a cluster nobody can reach is exit 75.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use super::lab::{EtcdFlags, Lab};
use super::{bootstrap, NO_TLS};

fn status(lab: &Lab, k: u8, extra: &[&str]) -> Output {
    let mut args = vec!["status"];
    args.extend_from_slice(extra);
    lab.discover_command(k, &args).output().expect("run status")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The samples of a textfile-collector file, parsed back: `name{labels}` -> value. Every
/// line is a comment or a sample with a number; every sample's name has HELP and TYPE lines.
fn metrics(path: &Path) -> BTreeMap<String, f64> {
    let body = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut samples = BTreeMap::new();
    for line in body.lines() {
        if line.starts_with('#') {
            continue;
        }
        let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        let bare = name.split('{').next().unwrap();
        assert!(body.contains(&format!("# TYPE {bare} gauge\n")), "{body}");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line:?}"));
        samples.insert(name.to_string(), value);
    }
    samples
}

/// The value of `etcd_discovery_NAME` (labels included in `name`).
fn sample(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    let name = format!("etcd_discovery_{name}");
    *samples
        .get(&name)
        .unwrap_or_else(|| panic!("no {name} in {samples:?}"))
}

/// The value of `etcd_discovery_NAME{command="status"}` in the file `status` wrote.
fn status_sample(path: &Path, name: &str) -> f64 {
    sample(&metrics(path), &format!("{name}{{command=\"status\"}}"))
}

#[test]
fn status_healthy_then_stale_then_etcd_down() {
    let mut lab = Lab::new(90);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    let ids: Vec<String> = [2, 3, 4]
        .iter()
        .map(|k| lab.nodes[k].instance_id.clone())
        .collect();
    let env_before = std::fs::read(lab.env_file(2)).unwrap();
    let prom = lab.dir.join("status.prom");
    let prom_flag = format!("--metrics-file={}", prom.display());

    // A reboot's discover writes its metrics: done, the plan of an existing member, decided
    // from the peers without AWS (the fast path), so no group to count members against.
    let discover_prom = lab.dir.join("discover.prom");
    lab.discover_ok(3, &[&format!("--metrics-file={}", discover_prom.display())]);
    let m = metrics(&discover_prom);
    let discover = |name: &str| sample(&m, name);
    assert_eq!(discover("last_run_exit_code{command=\"discover\"}"), 0.0);
    assert_eq!(
        discover("last_run_plan{command=\"discover\",kind=\"existing\"}"),
        1.0
    );
    assert!(!m.contains_key("etcd_discovery_members{command=\"discover\"}"));
    assert_eq!(
        discover("last_run_requests{command=\"discover\",service=\"aws\"}"),
        0.0
    );
    assert!(discover("last_run_requests{command=\"discover\",service=\"etcd\"}") >= 1.0);
    // The full path (a data directory it cannot vouch for: the env file names another
    // instance) counts the members against the group: three, none stale.
    let full_prom = lab.dir.join("discover-full.prom");
    let env_file = lab.env_file(4);
    let file = std::fs::read_to_string(&env_file).unwrap();
    std::fs::write(&env_file, file.replace("ETCD_NAME=", "ETCD_NAME=x")).unwrap();
    lab.discover_ok(4, &[&format!("--metrics-file={}", full_prom.display())]);
    let m = metrics(&full_prom);
    let full = |name: &str| sample(&m, name);
    assert_eq!(full("members{command=\"discover\"}"), 3.0);
    assert_eq!(full("members_stale{command=\"discover\"}"), 0.0);
    assert!(full("last_run_requests{command=\"discover\",service=\"aws\"}") >= 2.0);
    assert!(discover("last_run_timestamp_seconds{command=\"discover\"}") > 1.7e9);

    // Healthy: exit 0, every instance named as a started, healthy member; one leader.
    let out = status(&lab, 2, &[&prom_flag]);
    let table = text(&out.stdout);
    eprintln!("{table}");
    assert_eq!(out.status.code(), Some(0), "{table}\n{}", text(&out.stderr));
    for id in &ids {
        let line = table
            .lines()
            .find(|l| l.starts_with(id.as_str()))
            .unwrap_or_else(|| panic!("no row for {id}:\n{table}"));
        assert!(line.contains("InService"), "{line}");
        assert!(
            line.contains(&format!("{id}  yes      no       yes")),
            "{line}"
        );
    }
    assert!(
        table.contains(&format!("discover on {} now: already member", ids[0])),
        "{table}"
    );
    assert!(
        table.contains("all 3 instances are healthy members; no member is stale"),
        "{table}"
    );

    let out = status(&lab, 2, &["--output=json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(json["version"], 1);
    assert_eq!(json["attention"], 0);
    assert_eq!(json["etcd_answered"], true);
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{json}");
    // Rows come sorted by instance id.
    let mut sorted = ids.clone();
    sorted.sort();
    for (row, id) in rows.iter().zip(&sorted) {
        assert_eq!(row["instance"]["id"], id.as_str());
        assert_eq!(row["member"]["name"], id.as_str());
        assert_eq!(row["member"]["healthy"], true);
        assert!(row["member"]["raft_index"].as_u64().unwrap() > 0, "{row}");
        assert!(
            row["member"]["db_size_bytes"].as_u64().unwrap() > 0,
            "{row}"
        );
    }
    assert_eq!(
        rows.iter()
            .filter(|r| r["member"]["leader"] == true)
            .count(),
        1,
        "{json}"
    );
    // Read-only: the environment file is as it was.
    assert_eq!(std::fs::read(lab.env_file(2)).unwrap(), env_before);
    assert_eq!(status_sample(&prom, "last_run_exit_code"), 0.0);
    assert_eq!(status_sample(&prom, "members_healthy"), 3.0);

    // From outside the group (no instance metadata: a laptop with keys), with the group and
    // the region named: the same rows, no "this instance", and nothing said of discover.
    let out = lab
        .discover_command(2, &["status", "--scaling-group-name=etcd", "--output=json"])
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.90.250:1")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let outside: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert!(outside["this_instance"].is_null(), "{outside}");
    // The same rows (the raft index moves on between two looks).
    let rows_of = |v: &serde_json::Value| -> Vec<(serde_json::Value, serde_json::Value)> {
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["instance"].clone(), r["member"]["id"].clone()))
            .collect()
    };
    assert_eq!(rows_of(&outside), rows_of(&json), "{outside}");
    assert!(outside["discover"]
        .as_str()
        .unwrap()
        .contains("not run on an instance"));
    // Without the group named, it is no status of anything: exit 75 (no metadata).
    let out = lab
        .discover_command(2, &["status"])
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.90.250:1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75), "{}", text(&out.stderr));

    // Instance 4 terminated without a replacement: its member is stale, exit 1.
    lab.terminate(4);
    let out = status(&lab, 2, &[&prom_flag]);
    let table = text(&out.stdout);
    eprintln!("{table}");
    assert_eq!(out.status.code(), Some(1), "{table}\n{}", text(&out.stderr));
    let stale = table
        .lines()
        .find(|l| l.contains(&ids[2]))
        .unwrap_or_else(|| panic!("no row for the terminated {}:\n{table}", ids[2]));
    assert!(stale.starts_with("-  "), "{stale}");
    assert!(stale.contains("stale: no instance of the group"), "{stale}");
    assert!(
        text(&out.stderr).contains("1 row needs attention"),
        "{}",
        text(&out.stderr)
    );
    // Nothing was removed: status never changes the membership.
    assert_eq!(lab.members(2, NO_TLS).len(), 3);
    assert_eq!(status_sample(&prom, "last_run_exit_code"), 1.0);
    assert_eq!(status_sample(&prom, "members_stale"), 1.0);
    assert_eq!(status_sample(&prom, "members_healthy"), 2.0);

    // etcd down everywhere: status could not look, exit 75.
    for k in [2, 3] {
        lab.nodes.get_mut(&k).unwrap().etcd = None;
    }
    let out = status(&lab, 2, &[&prom_flag]);
    assert_eq!(out.status.code(), Some(75), "{}", text(&out.stderr));
    // A run that could not look still writes its metrics, without member counts.
    let m = metrics(&prom);
    assert_eq!(status_sample(&prom, "last_run_exit_code"), 75.0);
    assert!(
        !m.keys().any(|k| k.starts_with("etcd_discovery_members")),
        "{m:?}"
    );
    assert!(
        text(&out.stdout).contains("no member of the cluster answered"),
        "{}",
        text(&out.stdout)
    );
}
