//! Issue 15, restore on total loss: `discover` with `--snapshot-url` and a named data
//! directory restores the newest complete snapshot when the whole group bootstraps from
//! nothing, and never otherwise. The restore tool here is a stand-in `etcdutl` that records
//! its arguments and makes `member/` from the file it is given; the lab runs the real ones.
//! Networks 127.0.250-252.0/24, shared with `snapshot` (`snapshot::net`).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::bucket;
use super::fake::FakeServer;
use super::snapshot::net;
use super::world::{instance_id, EtcdApi, Imds, World};
use super::{assert_failure, assert_success, group, stderr};

const PREFIX: &str = "etcd/prod/";
const OLDER: &str = "etcd/prod/etcd-snapshot-20260101T000000Z-r40.db";
const NEWER: &str = "etcd/prod/etcd-snapshot-20260102T000000Z-r50.db";

fn sha256(text: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `key`'s checksum object, as `snapshot` writes it.
fn checksum(key: &str, content: &str) -> (String, String) {
    let file = key.rsplit('/').next().unwrap();
    (
        format!("{key}.sha256"),
        format!("{}  {file}\n", sha256(content)),
    )
}

/// The fake bucket holding `objects` (key, text).
fn start_bucket(ip: &str, objects: Vec<(String, String)>) -> FakeServer {
    let objects = objects
        .into_iter()
        .map(|(key, text)| (key, "\"e\"".to_string(), text, None))
        .collect();
    bucket::start(ip, Arc::new(Mutex::new(objects)), None)
}

/// A stand-in `etcdutl` in `dir`: it writes its arguments to `dir/args` and makes
/// `member/snap/db` in its `--data-dir` from the snapshot file, as the real one makes
/// `member/` there.
fn fake_etcdutl(dir: &Path) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let tool = dir.join("etcdutl");
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > {log}\nfor a in \"$@\"; do case \"$a\" in \
         --data-dir=*) d=\"${{a#--data-dir=}}\";; esac; done\n\
         mkdir -p \"$d/member/snap\" && cp \"$3\" \"$d/member/snap/db\"\n",
        log = dir.join("args").display()
    );
    fs::write(&tool, script).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(&tool, fs::Permissions::from_mode(0o755)).unwrap();
    dir.to_path_buf()
}

/// `discover` with the bucket, the data directory and the stand-in tool first on PATH.
fn discover(
    w: &World,
    s3: &FakeServer,
    data: &Path,
    tools: &Path,
    extra: &[&str],
) -> std::process::Output {
    let data_flag = format!("--etcd-data-dir={}", data.display());
    let mut args = vec![
        "--snapshot-url",
        "s3://bucket/etcd/prod",
        data_flag.as_str(),
        "--wait-timeout=1s",
    ];
    args.extend(extra);
    let path = format!(
        "{}:{}",
        tools.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    w.run_with_env(
        &args,
        &[("AWS_ENDPOINT_URL_S3", &s3.url()), ("PATH", &path)],
    )
}

/// The GetObject calls of snapshots (not checksums), in order.
fn snapshot_gets(s3: &FakeServer) -> Vec<String> {
    let mut requests = s3.requests();
    requests.sort_by_key(|r| r.received);
    requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with(".db"))
        .map(|r| r.path.clone())
        .collect()
}

/// The run restored OLDER, and only fetched that: its bytes are the member's data.
fn assert_restored_older(out: &std::process::Output, s3: &FakeServer, data: &Path) {
    let err = stderr(out);
    assert!(
        err.contains(&format!("restored s3://bucket/{OLDER} into")),
        "{err}"
    );
    assert_eq!(snapshot_gets(s3), [format!("/bucket/{OLDER}")]);
    assert_eq!(
        fs::read_to_string(data.join("member/snap/db")).unwrap(),
        "older database"
    );
}

#[test]
fn a_group_bootstrapping_from_nothing_restores_the_newest_complete_snapshot() {
    let _net = net(250);
    let w = World::new(250, 2, vec![group("etcd", &[2])], None, vec![], Imds::v2());
    // The newest has no checksum: its upload finished, the checksum's put did not. Skipped.
    let mut objects = vec![(OLDER.to_string(), "older database".to_string())];
    objects.push(checksum(OLDER, "older database"));
    objects.push((NEWER.to_string(), "newer, never finished".to_string()));
    let s3 = start_bucket("127.0.250.9", objects);
    let tools = fake_etcdutl(&w.dir.join("bin"));
    let data = w.dir.join("data");

    // --dry-run says so, and restores nothing.
    let out = discover(&w, &s3, &data, &tools, &["--dry-run"]);
    assert_success(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "# would restore the newest complete snapshot under s3://bucket/{PREFIX} into {}",
            data.display()
        )),
        "{out:?}"
    );
    // It reads the bucket's bootstrap record only: no snapshot fetched, nothing written.
    let asked: Vec<_> = s3
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    assert!(
        asked
            .iter()
            .all(|(method, path)| method != "PUT" && !path.contains("etcd-snapshot-")),
        "{asked:?}"
    );
    assert!(!data.exists());

    let out = discover(&w, &s3, &data, &tools, &[]);
    assert_success(&out);
    // The bytes downloaded, checked and restored; the work folder gone.
    assert_restored_older(&out, &s3, &data);
    let left: Vec<_> = fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["member"]);
    // As the member the file names, in the cluster the file names.
    let text = fs::read_to_string(w.env_file()).unwrap();
    let value = |name: &str| super::env_value(&text, name).to_string();
    let args = fs::read_to_string(tools.join("args")).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(&args[..2], ["snapshot", "restore"]);
    for expected in [
        format!("--name={}", instance_id(2)),
        format!("--initial-cluster={}", value("ETCD_INITIAL_CLUSTER")),
        format!(
            "--initial-cluster-token={}",
            value("ETCD_INITIAL_CLUSTER_TOKEN")
        ),
        format!(
            "--initial-advertise-peer-urls={}",
            value("ETCD_INITIAL_ADVERTISE_PEER_URLS")
        ),
    ] {
        assert!(
            args.contains(&expected.as_str()),
            "{expected} not in {args:?}"
        );
    }
    assert_eq!(value("ETCD_INITIAL_CLUSTER_STATE"), "new");

    // The next boot finds member data: never restored over it.
    let out = discover(&w, &s3, &data, &tools, &[]);
    assert_success(&out);
    assert_eq!(snapshot_gets(&s3).len(), 1, "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(data.join("member/snap/db")).unwrap(),
        "older database"
    );
}

#[test]
fn a_snapshot_that_fails_its_checksum_is_refused_and_no_older_one_is_used() {
    let _net = net(251);
    let w = World::new(251, 2, vec![group("etcd", &[2])], None, vec![], Imds::v2());
    let mut objects = vec![(OLDER.to_string(), "older database".to_string())];
    objects.push(checksum(OLDER, "older database"));
    objects.push((NEWER.to_string(), "damaged in the bucket".to_string()));
    objects.push(checksum(NEWER, "what was uploaded"));
    let s3 = start_bucket("127.0.251.9", objects);
    let tools = fake_etcdutl(&w.dir.join("bin"));
    let data = w.dir.join("data");
    let out = discover(&w, &s3, &data, &tools, &[]);
    assert_failure(
        &out,
        1,
        &format!("s3://bucket/{NEWER} does not match its checksum"),
    );
    assert!(stderr(&out).contains("not falling back to an older one"));
    assert_eq!(snapshot_gets(&s3), [format!("/bucket/{NEWER}")]);
    assert!(!w.env_file().exists(), "no file: etcd does not start");
    assert!(!tools.join("args").exists(), "the tool never ran");
    assert!(!data.join("member").exists());
    drop((s3, w));

    // No snapshot at all under the prefix (a group that set --snapshot-url from day one):
    // the bootstrap goes on empty, and says so.
    let w = World::new(251, 2, vec![group("etcd", &[2])], None, vec![], Imds::v2());
    let s3 = start_bucket(
        "127.0.251.9",
        vec![("etcd/prod/notes.txt".into(), "x".into())],
    );
    let tools = fake_etcdutl(&w.dir.join("bin"));
    let data = w.dir.join("data");
    let out = discover(&w, &s3, &data, &tools, &[]);
    assert_success(&out);
    assert!(
        stderr(&out).contains(&format!(
            "no complete snapshot under s3://bucket/{PREFIX} when the bootstrap was recorded: \
             bootstrapping an empty cluster"
        )),
        "{}",
        stderr(&out)
    );
    assert!(w.env_file().exists());
    assert!(!tools.join("args").exists() && !data.join("member").exists());
}

#[test]
fn never_restored_when_a_member_answers_or_without_a_named_data_directory() {
    let _net = net(252);
    // Members 2 and 3 answer; 4 replaces a lost instance and joins.
    let w = World::new(
        252,
        4,
        vec![group("etcd", &[2, 3, 4])],
        Some((&[2, 3], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true)];
    let mut objects = vec![(OLDER.to_string(), "older database".to_string())];
    objects.push(checksum(OLDER, "older database"));
    let s3 = start_bucket("127.0.252.9", objects);
    let tools = fake_etcdutl(&w.dir.join("bin"));
    let data = w.dir.join("data");
    let out = discover(&w, &s3, &data, &tools, &[]);
    assert_success(&out);
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(
        super::env_value(&text, "ETCD_INITIAL_CLUSTER_STATE"),
        "existing"
    );
    assert!(s3.requests().is_empty(), "S3 is not even asked");
    assert!(!tools.join("args").exists() && !data.join("member").exists());

    // Without a named data directory: a usage error, before anything is asked.
    let out = w.run(&["--snapshot-url", "s3://bucket/etcd/prod"]);
    assert_failure(&out, 2, "name it with --etcd-data-dir (or ETCD_DATA_DIR)");
}

/// The restore tool fails, over the leftovers of a run cut short: exit 1 with the tool named,
/// no file, no member data, the work folder gone.
#[test]
fn a_failing_restore_tool_leaves_no_file_and_no_member_data() {
    let _net = net(252);
    let w = World::new(252, 2, vec![group("etcd", &[2])], None, vec![], Imds::v2());
    let mut objects = vec![(OLDER.to_string(), "older database".to_string())];
    objects.push(checksum(OLDER, "older database"));
    let s3 = start_bucket("127.0.252.9", objects);
    let tools = w.dir.join("failing");
    fs::create_dir_all(&tools).unwrap();
    fs::write(
        tools.join("etcdutl"),
        "#!/bin/sh\necho 'snapshot file damaged' >&2\nexit 3\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(tools.join("etcdutl"), fs::Permissions::from_mode(0o755)).unwrap();
    let data = w.dir.join("data");
    fs::create_dir_all(data.join(".etcd-discovery-restore/data/member/snap")).unwrap();
    let out = discover(&w, &s3, &data, &tools, &[]);
    assert_failure(&out, 1, "etcdutl snapshot restore failed (exit code 3)");
    assert!(stderr(&out).contains("a restore before this one did not finish"));
    assert!(
        stderr(&out).contains("snapshot file damaged"),
        "its own words reach the log"
    );
    assert!(!w.env_file().exists() && !data.join("member").exists());
    assert!(!data.join(".etcd-discovery-restore").exists());
}

const RECORD: &str = "etcd/prod/etcd-discovery-bootstrap";

/// The fake bucket with both snapshots complete and the seed's record of the bootstrap of
/// `hosts`, which says it restores `restores`.
fn start_recorded_bucket(ip: &str, net: u8, hosts: &[u8], restores: &str) -> FakeServer {
    let mut objects = Vec::new();
    for (key, text) in [(OLDER, "older database"), (NEWER, "newer database")] {
        let (sum_key, sum) = checksum(key, text);
        objects.push((key.to_string(), "\"e\"".into(), text.to_string(), None));
        objects.push((sum_key, "\"e\"".into(), sum, None));
    }
    let record = super::cluster(net, hosts);
    objects.push((RECORD.into(), "\"r\"".into(), record, Some(restores.into())));
    bucket::start(ip, Arc::new(Mutex::new(objects)), None)
}

#[test]
fn a_member_of_a_recorded_bootstrap_restores_what_the_record_says_not_the_newest() {
    // Rules 14 and 18: the seed recorded {2, 3, 4} and that it restores OLDER; NEWER came
    // later (the timer of the cluster it formed). i-3, taking part in that bootstrap (late,
    // or after the seed), restores OLDER: every member of one bootstrap must hold the same
    // data, as etcd applies the leader's log to whatever it was given.
    let _net = net(250);
    let world = || {
        World::new(
            250,
            3,
            vec![group("etcd", &[2, 3, 4])],
            None,
            vec![],
            Imds::v2(),
        )
    };
    let w = world();
    let s3 = start_recorded_bucket("127.0.250.9", 250, &[2, 3, 4], OLDER);
    let tools = fake_etcdutl(&w.dir.join("bin"));
    let data = w.dir.join("data");

    let out = discover(&w, &s3, &data, &tools, &["--dry-run"]);
    assert_success(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "# would restore what the bootstrap record says its members restored ({OLDER})"
        )),
        "{out:?}"
    );
    let out = discover(&w, &s3, &data, &tools, &[]);
    assert_success(&out);
    assert!(stderr(&out).contains("taking part in the bootstrap"));
    assert_restored_older(&out, &s3, &data);
    let text = fs::read_to_string(w.env_file()).unwrap();
    assert_eq!(super::env_value(&text, "ETCD_INITIAL_CLUSTER_STATE"), "new");
    assert_eq!(
        super::env_value(&text, "ETCD_INITIAL_CLUSTER"),
        super::cluster(250, &[2, 3, 4])
    );
    drop((s3, w));

    // The record says the bootstrap started empty: so does this member, snapshots or not.
    let w = world();
    let s3 = start_recorded_bucket("127.0.250.9", 250, &[2, 3, 4], "none");
    let data = w.dir.join("data");
    let tools = fake_etcdutl(&w.dir.join("bin"));
    let out = discover(&w, &s3, &data, &tools, &[]);
    assert_success(&out);
    assert!(
        stderr(&out).contains("when the bootstrap was recorded: bootstrapping an empty cluster"),
        "{}",
        stderr(&out)
    );
    assert!(snapshot_gets(&s3).is_empty());
    assert!(w.env_file().exists() && !data.join("member").exists());
    drop((s3, w));

    // The snapshot it names is gone from the bucket (deleted by hand): no other is restored.
    let w = world();
    let gone = format!("{PREFIX}etcd-snapshot-20251231T000000Z-r30.db");
    let s3 = start_recorded_bucket("127.0.250.9", 250, &[2, 3, 4], &gone);
    let data = w.dir.join("data");
    let out = discover(&w, &s3, &data, &tools, &[]);
    assert_failure(
        &out,
        1,
        &format!("s3://bucket/{gone}, which the bootstrap record says every member of this bootstrap restores, is no longer complete in the bucket"),
    );
    assert!(snapshot_gets(&s3).is_empty());
    assert!(!w.env_file().exists() && !data.join("member").exists());
}
