//! Issue 15: `snapshot` streams etcd's snapshot into S3 as a multipart upload, on the leader
//! only; a failed upload or a cut stream is aborted and never becomes an object.
//! Networks 127.0.249-254.0/24; 250-252 are shared with `restore`, one test at a time
//! (`net`).

use std::sync::{Arc, Mutex};

use super::fake::{FakeServer, Request};
use super::world::{Imds, World};
use super::{assert_failure, assert_success, group, stderr};

/// One test at a time on each of the networks 250-252, which `restore` uses too: a world's
/// fakes and its folder are per network.
pub fn net(n: u8) -> std::sync::MutexGuard<'static, ()> {
    static NETS: [Mutex<()>; 3] = [Mutex::new(()), Mutex::new(()), Mutex::new(())];
    let lock = &NETS[usize::from(n - 250)];
    lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

const STREAM: &str = include_str!("../../fixtures/etcd/v3.5-snapshot-stream.json");

/// How the fake S3 misbehaves.
#[derive(Clone, Copy, PartialEq)]
enum S3Fault {
    None,
    /// UploadPart is refused (403 AccessDenied).
    PartRefused,
}

/// A fake S3 that answers the calls `snapshot` makes, keeping the keys it lists. Its bucket
/// is in `region`: HeadBucket says so, and a request signed for another is refused.
fn start_s3(ip: &str, fault: S3Fault, listed: Vec<String>, region: &'static str) -> FakeServer {
    let listed = Arc::new(Mutex::new(listed));
    FakeServer::start_with_headers(ip, 0, move |r: &Request| {
        let (path, query) = r.path.split_once('?').unwrap_or((&r.path, ""));
        let none = Vec::new();
        let here = vec![("x-amz-bucket-region".to_string(), region.to_string())];
        let scope = format!("/{region}/s3/aws4_request");
        if r.method == "HEAD" {
            let signed_here = r
                .header("authorization")
                .is_some_and(|a| a.contains(&scope));
            return (if signed_here { 200 } else { 301 }, here, String::new());
        }
        if !r
            .header("authorization")
            .is_some_and(|a| a.contains(&scope))
        {
            return (
                400,
                none,
                format!("<Error><Code>AuthorizationHeaderMalformed</Code><Message>expecting '{region}'</Message></Error>"),
            );
        }
        match (r.method.as_str(), query) {
            ("POST", "uploads") => (
                200,
                none,
                format!("<InitiateMultipartUploadResult><Bucket>bucket</Bucket><Key>{path}</Key><UploadId>UP+1/x</UploadId></InitiateMultipartUploadResult>"),
            ),
            ("PUT", q) if q.starts_with("partNumber=") => match fault {
                S3Fault::PartRefused => (
                    403,
                    none,
                    "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>".into(),
                ),
                S3Fault::None => (
                    200,
                    vec![("ETag".into(), format!("\"etag-{}\"", r.bytes.len()))],
                    String::new(),
                ),
            },
            ("POST", q) if q.starts_with("uploadId=") => (
                200,
                none,
                "<CompleteMultipartUploadResult><Key>k</Key></CompleteMultipartUploadResult>".into(),
            ),
            ("DELETE", q) if q.starts_with("uploadId=") => (204, none, String::new()),
            ("PUT", "") => (200, vec![("ETag".into(), "\"x\"".into())], String::new()),
            ("GET", q) if q.starts_with("list-type=2") => {
                let keys: String = listed
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|k| format!("<Contents><Key>{k}</Key><Size>1</Size></Contents>"))
                    .collect();
                (
                    200,
                    none,
                    format!("<ListBucketResult><Name>bucket</Name><IsTruncated>false</IsTruncated>{keys}</ListBucketResult>"),
                )
            }
            ("DELETE", "") => (204, none, String::new()),
            _ => (400, none, "<Error><Code>BadFake</Code><Message>unexpected</Message></Error>".into()),
        }
    })
}

/// etcd on host 2 of `w`: one member, leader or not, whose snapshot stream is `stream`.
fn start_etcd(w: &World, leader: bool, stream: String) -> FakeServer {
    start_etcd_answering(w, leader, 200, stream)
}

/// The same, its snapshot answered with `status`.
fn start_etcd_answering(w: &World, leader: bool, status_code: u16, stream: String) -> FakeServer {
    start_etcd_with_version(w, leader, status_code, stream, "3.4.0")
}

/// The same, `/version` naming this cluster version (`not_decided` moments after it formed).
fn start_etcd_with_version(
    w: &World,
    leader: bool,
    status_code: u16,
    stream: String,
    cluster_version: &'static str,
) -> FakeServer {
    let me = w.member(2, true);
    let list = format!(
        r#"{{"header":{{"member_id":"{id}"}},"members":[{{"ID":"{id}","name":"{}","peerURLs":["{}"],"clientURLs":["{}"]}}]}}"#,
        me.name,
        me.peer_url,
        me.client_url,
        id = me.id
    );
    let status = format!(
        r#"{{"header":{{"member_id":"{}","revision":"42"}},"leader":"{}"}}"#,
        me.id,
        if leader { me.id } else { 7 }
    );
    FakeServer::start_on(&World::ip(w.net, 2), w.client_port, move |r| {
        match r.path.as_str() {
            "/v3/cluster/member/list" => (200, list.clone()),
            "/v3/maintenance/status" => (200, status.clone()),
            "/v3/maintenance/snapshot" => (status_code, stream.clone()),
            "/health" => (200, r#"{"health":"true"}"#.into()),
            "/version" => (
                200,
                format!(r#"{{"etcdserver":"3.4.23","etcdcluster":"{cluster_version}"}}"#),
            ),
            _ => (404, "404 page not found\n".into()),
        }
    })
}

/// (method, path with query) of each S3 request, in order.
fn calls(s3: &FakeServer) -> Vec<String> {
    let mut requests = s3.requests();
    requests.sort_by_key(|r| r.received);
    requests
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// The bytes of a stream's blobs, in order: the database and etcd's trailing sha256, what the
/// object must hold.
fn streamed_bytes(stream: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in stream.lines() {
        let blob = line
            .split("\"blob\":\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        out.extend(base64_simd::STANDARD.decode_to_vec(blob).unwrap());
    }
    out
}

/// A stream the way etcd writes it (32 KiB messages, `remaining_bytes`, then the sha256 of
/// the database) for a database of `size` bytes.
fn synthetic_stream(size: usize) -> String {
    let database: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let mut out = String::new();
    let mut sent = 0;
    for chunk in database.chunks(32 * 1024) {
        sent += chunk.len();
        let remaining = size - sent;
        let blob = base64_simd::STANDARD.encode_to_string(chunk);
        match remaining {
            0 => out.push_str(&format!("{{\"result\":{{\"blob\":\"{blob}\"}}}}\n")),
            n => out.push_str(&format!(
                "{{\"result\":{{\"remaining_bytes\":\"{n}\",\"blob\":\"{blob}\"}}}}\n"
            )),
        }
    }
    let hash = ring::digest::digest(&ring::digest::SHA256, &database);
    let blob = base64_simd::STANDARD.encode_to_string(hash.as_ref());
    out.push_str(&format!("{{\"result\":{{\"blob\":\"{blob}\"}}}}\n"));
    out
}

fn run(w: &World, s3: &FakeServer, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["snapshot", "--snapshot-url", "s3://bucket/etcd/prod"];
    args.extend(extra);
    w.run_with_env(&args, &[("AWS_ENDPOINT_URL_S3", &s3.url())])
}

#[test]
fn the_leader_streams_its_snapshot_into_one_multipart_upload_and_its_checksum() {
    let _net = net(250);
    let w = World::new(250, 2, vec![group("etcd", &[2])], None, vec![], Imds::v2());
    let etcd = start_etcd(&w, true, STREAM.to_string());
    let s3 = start_s3("127.0.250.9", S3Fault::None, Vec::new(), "us-east-1");
    let out = run(&w, &s3, &[]);
    assert_success(&out);
    let calls = calls(&s3);
    let key = calls[1]
        .strip_prefix("POST /bucket/")
        .and_then(|k| k.strip_suffix("?uploads"))
        .unwrap_or_else(|| panic!("{calls:?}"))
        .to_string();
    // Path-style, under the prefix, sorted by time, with the revision etcd's status gave.
    assert!(
        key.starts_with("etcd/prod/etcd-snapshot-") && key.ends_with("-r42.db"),
        "{key}"
    );
    assert_eq!(
        calls,
        vec![
            "HEAD /bucket/".to_string(),
            format!("POST /bucket/{key}?uploads"),
            format!("PUT /bucket/{key}?partNumber=1&uploadId=UP%2B1%2Fx"),
            format!("POST /bucket/{key}?uploadId=UP%2B1%2Fx"),
            format!("PUT /bucket/{key}.sha256"),
            "GET /bucket/?list-type=2&prefix=etcd%2Fprod%2F".to_string(),
        ]
    );
    let requests = {
        let mut r = s3.requests();
        r.sort_by_key(|r| r.received);
        r
    };
    // The one part is the database and etcd's trailing hash, byte for byte.
    let expected = streamed_bytes(STREAM);
    assert_eq!(requests[2].bytes, expected);
    // Signed for S3, with the part's sha256.
    let auth = requests[2].header("authorization").unwrap();
    assert!(auth.contains("/us-east-1/s3/aws4_request"), "{auth}");
    assert!(requests[2].header("x-amz-content-sha256").is_some());
    // The completion names the part by the ETag it came back with.
    assert!(
        requests[3].body.contains(&format!(
            "<Part><ETag>&quot;etag-{}&quot;</ETag><PartNumber>1</PartNumber></Part>",
            expected.len()
        )),
        "{}",
        requests[3].body
    );
    // `sha256sum -c` reads the checksum object.
    let file = key.rsplit('/').next().unwrap();
    let sum = requests[4].body.clone();
    assert!(sum.ends_with(&format!("  {file}\n")), "{sum}");
    let dir = w.dir.join("check");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(file), &expected).unwrap();
    std::fs::write(dir.join("sum"), &sum).unwrap();
    let check = std::process::Command::new("sha256sum")
        .args(["-c", "sum"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    drop((s3, etcd, w));
    a_database_larger_than_a_part_goes_up_in_parts_of_5_mib_and_a_last_smaller_one();
}

/// Run by the first test after its own world is gone: the networks are few.
fn a_database_larger_than_a_part_goes_up_in_parts_of_5_mib_and_a_last_smaller_one() {
    let w = World::new(250, 2, vec![group("etcd", &[2])], None, vec![], Imds::v2());
    let stream = synthetic_stream(12 * 1024 * 1024 + 100);
    let expected = streamed_bytes(&stream);
    let _etcd = start_etcd(&w, true, stream);
    let s3 = start_s3("127.0.250.10", S3Fault::None, Vec::new(), "us-east-1");
    let out = run(&w, &s3, &[]);
    assert_success(&out);
    let mut requests = s3.requests();
    requests.sort_by_key(|r| r.received);
    let parts: Vec<&Request> = requests
        .iter()
        .filter(|r| r.path.contains("?partNumber="))
        .collect();
    assert_eq!(parts.len(), 3);
    for (i, part) in parts.iter().enumerate() {
        assert!(
            part.path.contains(&format!("?partNumber={}&", i + 1)),
            "{}",
            part.path
        );
    }
    assert!(parts[..2].iter().all(|p| p.bytes.len() >= 5 * 1024 * 1024));
    assert!(parts[2].bytes.len() < 5 * 1024 * 1024);
    let joined: Vec<u8> = parts.iter().flat_map(|p| p.bytes.clone()).collect();
    assert_eq!(joined, expected);
    let complete = requests
        .iter()
        .find(|r| r.method == "POST" && r.path.contains("?uploadId="))
        .unwrap();
    assert_eq!(complete.body.matches("<Part>").count(), 3);
}

#[test]
fn no_snapshot_is_taken_before_the_cluster_decides_its_version() {
    // Rule 18: until the version is decided a late initial member may still take part in the
    // bootstrap, restoring the newest snapshot as the others did; one of this cluster would
    // give it other data under the same raft index. The leader waits, then gives up (75).
    let w = World::new(249, 2, vec![group("etcd", &[2])], None, vec![], Imds::v2());
    let _etcd = start_etcd_with_version(&w, true, 200, STREAM.to_string(), "not_decided");
    let s3 = start_s3("127.0.249.9", S3Fault::None, Vec::new(), "us-east-1");
    let out = run(&w, &s3, &["--wait-timeout=1s"]);
    assert_failure(&out, 75, "has not decided its version yet");
    assert!(calls(&s3).is_empty(), "{:?}", calls(&s3));
}

#[test]
fn other_members_exit_0_and_upload_nothing() {
    let _net = net(251);
    let w = World::new(251, 2, vec![group("etcd", &[2])], None, vec![], Imds::v2());
    let _etcd = start_etcd(&w, false, STREAM.to_string());
    let s3 = start_s3("127.0.251.9", S3Fault::None, Vec::new(), "us-east-1");
    let out = run(&w, &s3, &[]);
    assert_success(&out);
    assert!(stderr(&out).contains("not the leader"), "{}", stderr(&out));
    assert!(s3.requests().is_empty());
}

#[test]
fn a_refused_part_aborts_the_upload() {
    let _net = net(252);
    let w = World::new(252, 2, vec![group("etcd", &[2])], None, vec![], Imds::v2());
    let _etcd = start_etcd(&w, true, STREAM.to_string());
    let s3 = start_s3("127.0.252.9", S3Fault::PartRefused, Vec::new(), "us-east-1");
    let out = run(&w, &s3, &[]);
    assert_failure(&out, 1, "AccessDenied");
    let calls = calls(&s3);
    let methods: Vec<&str> = calls.iter().map(|c| c.split(' ').next().unwrap()).collect();
    assert_eq!(methods, ["HEAD", "POST", "PUT", "DELETE"], "{calls:?}");
    assert!(calls[3].ends_with("?uploadId=UP%2B1%2Fx"), "{calls:?}");
    // --dry-run says what it would upload and calls S3 not at all.
    let out = run(&w, &s3, &["--dry-run"]);
    assert_success(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("# would upload the snapshot"),
        "{out:?}"
    );
    assert_eq!(s3.requests().len(), 4);
}

#[test]
fn a_cut_stream_is_aborted_and_never_completed() {
    let w = World::new(253, 2, vec![group("etcd", &[2])], None, vec![], Imds::v2());
    // The stream stops after its first message: etcd died, or the connection dropped.
    let first = STREAM.lines().next().unwrap().to_string() + "\n";
    let etcd = start_etcd(&w, true, first);
    let s3 = start_s3("127.0.253.9", S3Fault::None, Vec::new(), "us-east-1");
    let out = run(&w, &s3, &[]);
    assert_failure(&out, 75, "snapshot");
    let calls = calls(&s3);
    let methods: Vec<&str> = calls.iter().map(|c| c.split(' ').next().unwrap()).collect();
    assert_eq!(methods, ["HEAD", "POST", "DELETE"], "{calls:?}");
    assert!(calls[1].ends_with("?uploads") && calls[2].contains("?uploadId="));
    drop((s3, etcd, w));

    // etcd refuses the snapshot (authentication on, no user given): its reason is the error,
    // and no upload is started.
    let w = World::new(253, 2, vec![group("etcd", &[2])], None, vec![], Imds::v2());
    let refusal = include_str!("../../fixtures/etcd/v3.4-snapshot-auth-error.json");
    let _etcd = start_etcd_answering(&w, true, 500, refusal.to_string());
    let s3 = start_s3("127.0.253.9", S3Fault::None, Vec::new(), "us-east-1");
    let out = run(&w, &s3, &[]);
    assert_failure(&out, 1, "HTTP 500: ");
    assert!(
        stderr(&out).contains("auth: user name is empty"),
        "{}",
        stderr(&out)
    );
    assert_eq!(self::calls(&s3), ["HEAD /bucket/"], "no upload started");
}

#[test]
fn the_oldest_snapshots_beyond_keep_are_deleted() {
    let w = World::new(254, 2, vec![group("etcd", &[2])], None, vec![], Imds::v2());
    let _etcd = start_etcd(&w, true, STREAM.to_string());
    let old: Vec<String> = ["20240101T000000Z-r1", "20250101T000000Z-r9"]
        .iter()
        .flat_map(|t| {
            let key = format!("etcd/prod/etcd-snapshot-{t}.db");
            [key.clone(), format!("{key}.sha256")]
        })
        .chain(["etcd/prod/notes.txt".to_string()])
        .collect();
    // What S3 lists after the upload: the two old ones and the new one.
    let mut listed = old.clone();
    listed.push("etcd/prod/etcd-snapshot-29990101T000000Z-r42.db".into());
    // The bucket is in another region than the instance: HeadBucket finds it.
    let s3 = start_s3("127.0.254.9", S3Fault::None, listed, "eu-west-1");
    let out = run(&w, &s3, &["--snapshot-keep=2"]);
    assert_success(&out);
    let deletes: Vec<String> = calls(&s3)
        .into_iter()
        .filter(|c| c.starts_with("DELETE "))
        .collect();
    assert_eq!(
        deletes,
        vec![
            "DELETE /bucket/etcd/prod/etcd-snapshot-20240101T000000Z-r1.db",
            "DELETE /bucket/etcd/prod/etcd-snapshot-20240101T000000Z-r1.db.sha256",
        ]
    );
    // Every call after HeadBucket was signed for the bucket's region.
    assert!(
        stderr(&out).contains("bucket bucket is in eu-west-1"),
        "{}",
        stderr(&out)
    );
    let mut requests = s3.requests();
    requests.sort_by_key(|r| r.received);
    assert!(requests[1..].iter().all(|r| r
        .header("authorization")
        .is_some_and(|a| a.contains("/eu-west-1/s3/aws4_request"))));
}
