//! Issue 15: `snapshot` on every member of a real cluster uploads one snapshot to moto's S3,
//! by the leader, with its checksum; the object restores (`etcdctl snapshot restore` on 3.4,
//! `etcdutl` on 3.5) into an etcd that has the keys. Runs on the etcd under test
//! (`LAB_ETCD_DIR`). Network 127.0.100.0/24.

use std::fs;
use std::process::Command;
use std::time::Duration;

use super::bootstrap;
use super::lab::{self, wait_until, EtcdFlags, Guard, Lab};

/// curl against moto's S3, path-style, with an S3 credential scope (moto routes by it and
/// checks no signature in this lab; without it, moto 5.2.5 answered the GET of `KEY.sha256`
/// with 403).
pub fn s3(lab: &Lab, args: &[&str], path: &str) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "20"])
        .args(["-H", "Authorization: AWS4-HMAC-SHA256 Credential=AKIDLAB/20261124/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0"])
        .args(args)
        .arg(format!("{}/{path}", lab.moto.url))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn keys(lab: &Lab) -> Vec<String> {
    let listing = String::from_utf8(s3(lab, &[], "snap-bucket?list-type=2&prefix=etcd/")).unwrap();
    listing
        .split("<Key>")
        .skip(1)
        .filter_map(|s| s.split("</Key>").next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_leader_uploads_one_snapshot_that_restores_with_the_keys() {
    let mut lab = Lab::new(100);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    for i in 0..20 {
        lab::etcdctl(
            &lab,
            2,
            &["put", &format!("key-{i}"), &format!("value-{i}")],
        );
    }
    s3(&lab, &["-X", "PUT"], "snap-bucket");
    let url = "--snapshot-url=s3://snap-bucket/etcd";
    let logs: Vec<String> = [2, 3, 4]
        .iter()
        .map(|k| lab.discover_ok(*k, &["snapshot", url]))
        .collect();
    let uploaded = logs
        .iter()
        .filter(|l| l.contains("uploaded the snapshot"))
        .count();
    let stood_by = logs.iter().filter(|l| l.contains("not the leader")).count();
    assert_eq!((uploaded, stood_by), (1, 2), "{logs:#?}");

    // Exactly one object and its checksum; no upload left open.
    let keys = keys(&lab);
    assert_eq!(keys.len(), 2, "{keys:?}");
    let object = keys.iter().find(|k| k.ends_with(".db")).unwrap();
    assert_eq!(
        keys.iter().find(|k| k.ends_with(".sha256")).unwrap(),
        &format!("{object}.sha256")
    );
    let uploads = String::from_utf8(s3(&lab, &[], "snap-bucket?uploads")).unwrap();
    assert!(!uploads.contains("<Upload>"), "{uploads}");

    // The object is what `sha256sum -c` accepts with the checksum beside it.
    let dir = lab.node_dir(9);
    fs::create_dir_all(&dir).unwrap();
    let file = object.rsplit('/').next().unwrap();
    fs::write(
        dir.join(file),
        s3(&lab, &[], &format!("snap-bucket/{object}")),
    )
    .unwrap();
    fs::write(
        dir.join("sum"),
        s3(&lab, &[], &format!("snap-bucket/{object}.sha256")),
    )
    .unwrap();
    let check = Command::new("sha256sum")
        .args(["-c", "sum"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");

    // It restores into a new one-member cluster that has the keys.
    let ip = lab.ip(9);
    let peer = format!("http://{ip}:2380");
    let client = format!("http://{ip}:2379");
    let data = dir.join("restored");
    let restorer = match lab::etcd_dir() {
        Some(d) if d.join("etcdutl").exists() => Command::new(d.join("etcdutl")),
        _ => {
            let mut c = lab::etcd_tool("etcdctl");
            c.env("ETCDCTL_API", "3");
            c
        }
    }
    .args(["snapshot", "restore"])
    .arg(dir.join(file))
    .arg(format!("--data-dir={}", data.display()))
    .args([
        "--name=restored",
        &format!("--initial-cluster=restored={peer}"),
        &format!("--initial-advertise-peer-urls={peer}"),
    ])
    .output()
    .unwrap();
    assert!(restorer.status.success(), "{restorer:?}");
    let log = fs::File::create(dir.join("etcd.log")).unwrap();
    let _etcd = Guard {
        child: lab::etcd_tool("etcd")
            .args([
                "--name=restored",
                &format!("--data-dir={}", data.display()),
                &format!("--listen-peer-urls={peer}"),
                &format!("--initial-advertise-peer-urls={peer}"),
                &format!("--initial-cluster=restored={peer}"),
                &format!("--listen-client-urls={client}"),
                &format!("--advertise-client-urls={client}"),
                "--log-level=warn",
                "--logger=zap",
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
        what: "restored etcd".into(),
    };
    let get = || {
        lab::etcd_tool("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &client, "--dial-timeout=2s"])
            .args(["get", "key-19", "--print-value-only"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    wait_until(
        "the restored etcd to answer",
        Duration::from_secs(60),
        || get().is_some_and(|v| !v.is_empty()),
    );
    assert_eq!(get().as_deref(), Some("value-19"));
}
