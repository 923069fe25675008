//! `etcd-discovery status` against a real cluster: the table and JSON name every instance,
//! a member whose instance is gone is flagged stale, and a cluster nobody can reach is exit 75.

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

#[test]
fn status_healthy_then_stale_then_etcd_down() {
    let mut lab = Lab::new(90);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    let ids: Vec<String> = [2, 3, 4]
        .iter()
        .map(|k| lab.nodes[k].instance_id.clone())
        .collect();
    let env_before = std::fs::read(lab.env_file(2)).unwrap();

    // Healthy: exit 0, every instance named as a started, healthy member; one leader.
    let out = status(&lab, 2, &[]);
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
    for (row, id) in rows.iter().zip(&ids) {
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

    // Instance 4 terminated without a replacement: its member is stale, exit 1.
    lab.terminate(4);
    let out = status(&lab, 2, &[]);
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

    // etcd down everywhere: status could not look, exit 75.
    for k in [2, 3] {
        lab.nodes.get_mut(&k).unwrap().etcd = None;
    }
    let out = status(&lab, 2, &[]);
    assert_eq!(out.status.code(), Some(75), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("no member of the cluster answered"),
        "{}",
        text(&out.stdout)
    );
}
