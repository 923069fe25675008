//! `./build.sh bench`: how big, how fast and how lean the release binary is, measured the
//! same way every time. Prints a markdown table (and writes it to target/bench.md) for the
//! README. Not a test: nothing here asserts a time.
//!
//! Wall times are the median (with min and max) of RUNS runs of the whole process, spawn
//! included; peak RSS is GNU time's maximum resident set of one run. "Fakes" are the offline
//! suite's in-process IMDS/AWS/etcd; "lab" is real etcd 3.4 and moto on loopback.

#[path = "../support/client.rs"]
mod client;
#[path = "../support/fake.rs"]
mod fake;
#[path = "../lab/herd.rs"]
mod herd;
#[path = "../lab/lab.rs"]
mod lab;
mod replay;
mod side_by_side;
#[path = "../support/throttle.rs"]
mod throttle;
#[path = "../offline/world.rs"]
mod world;

use std::fmt::Write as _;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use lab::{EtcdFlags, Lab};
use world::{EtcdApi, FakeMember, Group, Imds, World};

const RUNS: usize = 20;

fn binary() -> String {
    std::env::var("ETCD_DISCOVERY_BIN")
        .expect("ETCD_DISCOVERY_BIN names the release binary (./build.sh bench sets it)")
}

/// (median, min, max) in milliseconds of `RUNS` runs; `reset` restores the state before each.
fn time_runs(mut reset: impl FnMut(), mut run: impl FnMut() -> Output) -> (f64, f64, f64) {
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            reset();
            let started = Instant::now();
            let out = run();
            let took = started.elapsed().as_secs_f64() * 1000.0;
            assert!(
                out.status.success(),
                "a measured run failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            took
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    (times[RUNS / 2], times[0], times[RUNS - 1])
}

/// GNU time's report (`format`) of one run of `command`.
fn gnu_time(command: Command, format: &str) -> String {
    let report = std::env::temp_dir().join(format!("etcd-discovery-rss-{}", std::process::id()));
    let mut timed = Command::new("/usr/bin/time");
    timed
        .args(["-f", format, "-o"])
        .arg(&report)
        .arg(command.get_program())
        .args(command.get_args());
    // The commands measured start from an empty environment; so does their timed copy.
    timed.env_clear();
    for (k, v) in command.get_envs() {
        if let Some(v) = v {
            timed.env(k, v);
        }
    }
    let out = timed
        .output()
        .expect("/usr/bin/time (Debian's time package)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&report).unwrap().trim().to_string()
}

/// Peak RSS in KiB of one run of `command`, through GNU time.
fn peak_rss(command: Command) -> u64 {
    gnu_time(command, "%M").parse().unwrap()
}

/// User and system CPU time in milliseconds of one run of `command`, through GNU time.
fn cpu_ms(command: Command) -> (f64, f64) {
    let report = gnu_time(command, "%U %S");
    let mut t = report
        .split_whitespace()
        .map(|x| x.parse::<f64>().unwrap() * 1000.0);
    (t.next().unwrap(), t.next().unwrap())
}

struct Row {
    path: &'static str,
    against: &'static str,
    timing: (f64, f64, f64),
    rss_kib: u64,
    requests: String,
    trips: String,
    aws_calls: String,
}

fn group(name: &str, hosts: &[u8]) -> Group {
    Group {
        name: name.into(),
        desired: hosts.len() as u32,
        tags: vec![],
        instances: hosts.iter().map(|k| (*k, "InService".into())).collect(),
    }
}

/// Requests, sequential round trips and AWS calls of one run against the fakes, with 20 ms
/// held on every answer so that parallel requests overlap as they would on a network.
/// A row against the fakes: the round trips counted once (with latency), then the timed
/// runs and the peak RSS, with `reset` before each (what a run needs: the members, no file).
fn fakes_row(w: &World, path: &'static str, args: &[&str], reset: &dyn Fn()) -> Row {
    let (requests, trips, aws_calls) = count_trips(w, args, reset);
    let timing = time_runs(reset, || w.run(args));
    reset();
    Row {
        path,
        against: "fakes",
        timing,
        rss_kib: peak_rss(w.command(args)),
        requests,
        trips,
        aws_calls,
    }
}

fn count_trips(w: &World, args: &[&str], reset: &dyn Fn()) -> (String, String, String) {
    reset();
    w.set_latency(Duration::from_millis(20));
    for s in [&w.imds, &w.aws].into_iter().chain(&w.etcd) {
        s.requests.lock().unwrap().clear();
    }
    let out = w.run(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: Vec<fake::Request> = [w.imds.requests(), w.aws_requests(), w.etcd_requests()].concat();
    w.set_latency(Duration::ZERO);
    (
        all.len().to_string(),
        fake::sequential_round_trips(&all).to_string(),
        w.aws_requests().len().to_string(),
    )
}

fn fakes(rows: &mut Vec<Row>) {
    // Reboot: this node is a member with its file; instance metadata tags and static keys.
    // The fast path: the file's peers (their peer ports) list it; no AWS call.
    let imds = Imds {
        group_tag: Some("etcd".into()),
        ..Imds::v2()
    };
    let mut w = World::new(
        101,
        2,
        vec![group("etcd", &[2, 3, 4])],
        Some((&[3, 4], EtcdApi::V3)),
        vec![],
        imds,
    );
    w.serve_peer_ports(&[3, 4]);
    let members = vec![w.member(2, true), w.member(3, true), w.member(4, true)];
    *w.members.lock().unwrap() = members;
    // The first boot writes the file every measured run finds.
    assert!(w.run(&[]).status.success());
    rows.push(fakes_row(&w, "reboot", &[], &|| {}));

    // The same reboot when the file's peers do not answer (their peer ports are closed):
    // the full path, after the look at the peers.
    let imds = Imds {
        group_tag: Some("etcd".into()),
        ..Imds::v2()
    };
    let w = World::new(
        106,
        2,
        vec![group("etcd", &[2, 3, 4])],
        Some((&[3, 4], EtcdApi::V3)),
        vec![],
        imds,
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true), w.member(4, true)];
    assert!(w.run(&[]).status.success());
    rows.push(fakes_row(&w, "reboot, full path", &[], &|| {}));

    // Join: one stale member removed, this node added; the members are reset before each run.
    let w = World::new(
        102,
        4,
        vec![group("etcd", &[2, 4, 5])],
        Some((&[2, 5], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    let start: Vec<FakeMember> = vec![w.member(2, true), w.member(3, true), w.member(5, true)];
    let reset = || {
        *w.members.lock().unwrap() = start.clone();
        let _ = std::fs::remove_file(w.env_file());
    };
    rows.push(fakes_row(&w, "join", &[], &reset));

    // Proxy: a consumer node writes the masters' endpoints; its first boot (no file), then
    // its reboot (the file's endpoints answer: no AWS call).
    let w = World::new(
        103,
        7,
        vec![group("etcd-masters", &[2, 3]), group("consumers", &[7])],
        Some((&[2, 3], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true)];
    let args = ["-proxy-mode", "-scaling-group-name=etcd-masters"];
    let no_file = || {
        let _ = std::fs::remove_file(w.env_file());
    };
    rows.push(fakes_row(&w, "proxy, first boot", &args, &no_file));
    rows.push(fakes_row(&w, "proxy, reboot", &args, &|| {}));
}

fn etcdctl(endpoint: &str, args: &[&str]) -> Output {
    lab::etcd_tool("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", endpoint, "--dial-timeout=2s"])
        .args(args)
        .output()
        .unwrap()
}

/// AWS calls of one run of the tool for k, counted by a proxy in front of moto.
fn lab_aws_calls(lab: &Lab, k: u8, args: &[&str]) -> String {
    let counter = throttle::ThrottlingProxy::start(&lab.ip(252), &lab.moto.url, 0, 1);
    let out = lab.discover_with_env(k, args, &[("AWS_ENDPOINT_URL", &counter.url())]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    counter.requests().len().to_string()
}

/// The rows against the lab; returns the herd's lines for after the table.
fn lab(rows: &mut Vec<Row>) -> String {
    let mut lab = Lab::new(104);
    lab.create_group("etcd", "etcd-masters");
    for k in [2, 3, 4] {
        lab.launch("etcd", k);
    }
    let running = [2, 3, 4].map(|k| (k, lab.discover_spawn(k, &[]))).into();
    lab.finish_and_start(running, &EtcdFlags::default());
    for k in [2, 3, 4] {
        lab.wait_healthy(k, &[]);
    }
    let endpoint = lab.env_value(2, "ETCD_ADVERTISE_CLIENT_URLS");

    let reboot = || lab.discover(2, &[]);
    rows.push(Row {
        path: "reboot",
        against: "lab",
        timing: time_runs(|| {}, reboot),
        rss_kib: lab_rss(&lab, 2, &[]),
        requests: "-".into(),
        trips: "-".into(),
        aws_calls: lab_aws_calls(&lab, 2, &[]),
    });

    // Join: a stale (never started) member at .9 is removed and node 6 added; then both are
    // undone for the next run.
    lab.launch("etcd", 6);
    let stale_url = format!("http://{}:2380", lab.ip(9));
    let me_url = format!("http://{}:2380", lab.ip(6));
    let member_id = |url: &str| -> Option<String> {
        let out = etcdctl(&endpoint, &["member", "list"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.contains(url))
            .map(|l| l.split(", ").next().unwrap().to_string())
    };
    let reset = || {
        if let Some(id) = member_id(&me_url) {
            assert!(etcdctl(&endpoint, &["member", "remove", &id])
                .status
                .success());
        }
        if member_id(&stale_url).is_none() {
            lab::wait_until("the stale member re-added", Duration::from_secs(30), || {
                etcdctl(
                    &endpoint,
                    &[
                        "member",
                        "add",
                        "stale",
                        &format!("--peer-urls={stale_url}"),
                    ],
                )
                .status
                .success()
            });
        }
        let _ = std::fs::remove_file(lab.env_file(6));
    };
    let timing = time_runs(reset, || lab.discover(6, &[]));
    reset();
    let aws_calls = lab_aws_calls(&lab, 6, &[]);
    reset();
    rows.push(Row {
        path: "join",
        against: "lab",
        timing,
        rss_kib: lab_rss(&lab, 6, &[]),
        requests: "-".into(),
        trips: "-".into(),
        aws_calls,
    });
    if let Some(id) = member_id(&me_url) {
        etcdctl(&endpoint, &["member", "remove", &id]);
    }

    lab.create_group("consumers", "consumers");
    lab.launch("consumers", 20);
    let args = ["-proxy-mode", "-scaling-group-name=etcd"];
    let no_file = || {
        let _ = std::fs::remove_file(lab.env_file(20));
    };
    let timing = time_runs(no_file, || lab.discover(20, &args));
    no_file();
    let aws_calls = lab_aws_calls(&lab, 20, &args);
    no_file();
    rows.push(Row {
        path: "proxy, first boot",
        against: "lab",
        timing,
        rss_kib: lab_rss(&lab, 20, &args),
        requests: "-".into(),
        trips: "-".into(),
        aws_calls,
    });
    // lab_rss's run left the file: every run below is a reboot.
    rows.push(Row {
        path: "proxy, reboot",
        against: "lab",
        timing: time_runs(|| {}, || lab.discover(20, &args)),
        rss_kib: lab_rss(&lab, 20, &args),
        requests: "-".into(),
        trips: "-".into(),
        aws_calls: lab_aws_calls(&lab, 20, &args),
    });
    herd_lines(&mut lab)
}

/// 200 proxy instances booting at once against the lab's cluster, a fifth of AWS calls
/// throttled; then all of them rebooting.
fn herd_lines(lab: &mut Lab) -> String {
    let herd = herd::herd(lab, 30, 200, 20, 16);
    let mut out = String::new();
    for (what, wave) in [("first boot", &herd.boot), ("reboot", &herd.reboot)] {
        let _ = writeln!(
            out,
            "\nHerd, {what}: {} proxy instances at once, 20% of AWS calls answered Throttling (seeded): every file right; {:.0} ms for the whole herd; AWS calls per instance {:.2} on average, {} at most ({} in all, {} of them throttled and retried).",
            wave.instances,
            wave.wall.as_secs_f64() * 1000.0,
            wave.mean_calls(),
            wave.max_calls_per_instance,
            wave.aws_calls,
            wave.throttled
        );
    }
    out
}

fn lab_rss(lab: &Lab, k: u8, args: &[&str]) -> u64 {
    peak_rss(lab.discover_command(k, args))
}

/// A masters' group of 1,000 instances (moto launches them), read by a proxy node.
fn thousand(out: &mut String) {
    let mut lab = Lab::new(105);
    let subnet = client::xml_text(
        &lab.moto.call(
            "ec2",
            "CreateSubnet",
            &[("VpcId", &lab.vpc), ("CidrBlock", "127.0.64.0/22")],
        ),
        "subnetId",
    )
    .unwrap();
    lab.moto.call(
        "autoscaling",
        "CreateAutoScalingGroup",
        &[
            ("AutoScalingGroupName", "big"),
            ("LaunchConfigurationName", "etcd"),
            ("MinSize", "0"),
            ("MaxSize", "1000"),
            ("DesiredCapacity", "1000"),
            ("VPCZoneIdentifier", &subnet),
        ],
    );
    lab.create_group("consumers", "consumers");
    lab.launch("consumers", 9);
    let args = ["-proxy-mode", "-scaling-group-name=big"];
    let first = lab.discover(9, &args);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let entries = lab.env_value(9, "ETCD_INITIAL_CLUSTER").split(',').count();
    // Every run a first boot: with the file, a reboot would ask the 1,000 endpoints first.
    let no_file = || {
        let _ = std::fs::remove_file(lab.env_file(9));
    };
    let timing = time_runs(no_file, || lab.discover(9, &args));
    no_file();
    let rss = lab_rss(&lab, 9, &args);
    no_file();
    let (user, sys) = cpu_ms(lab.discover_command(9, &args));

    // One run through the recorder: moto's answers and how long each took.
    no_file();
    let (recorder, record) = replay::recorder(&lab.ip(251), &lab.moto.url);
    let out_rec = lab.discover_with_env(9, &args, &[("AWS_ENDPOINT_URL", &recorder.url())]);
    assert!(
        out_rec.status.success(),
        "{}",
        String::from_utf8_lossy(&out_rec.stderr)
    );
    drop(recorder);
    let calls: Vec<replay::Recorded> = record.lock().unwrap().values().cloned().collect();
    let mut actions: Vec<String> = calls.iter().map(|c| c.action.clone()).collect();
    actions.sort();
    actions.dedup();
    let per_action: Vec<String> = actions
        .iter()
        .map(|a| {
            let of: Vec<&replay::Recorded> = calls.iter().filter(|c| &c.action == a).collect();
            let total: f64 = of.iter().map(|c| c.moto_ms).sum();
            format!("{} {a} ({total:.0} ms at moto in all)", of.len())
        })
        .collect();

    // The same calls answered from the record, each held REPLAY_MS.
    const REPLAY_MS: u64 = 30;
    let replayer = replay::replay(&lab.ip(252), &record, REPLAY_MS);
    let env = [("AWS_ENDPOINT_URL", replayer.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let replayed = time_runs(no_file, || lab.discover_with_env(9, &args, &env));
    no_file();
    let mut replay_command = lab.discover_command(9, &args);
    replay_command.envs(env.iter().copied());
    let (replay_user, replay_sys) = cpu_ms(replay_command);
    drop(replayer);
    // With no latency at all: what is left is the tool's own time (and the local stubs').
    let instant = replay::replay(&lab.ip(252), &record, 0);
    let env = [("AWS_ENDPOINT_URL", instant.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let floor = time_runs(no_file, || lab.discover_with_env(9, &args, &env));
    no_file();
    let _ = writeln!(
        out,
        "\n1,000-instance masters' group in moto, proxy mode, first boot: {entries} peers written; wall median {:.0} ms (min {:.0}, max {:.0}); peak RSS {:.1} MiB; the tool's own CPU time {user:.0} ms user + {sys:.0} ms system. Its AWS calls: {} (moto answers one call at a time).",
        timing.0,
        timing.1,
        timing.2,
        rss as f64 / 1024.0,
        per_action.join(", "),
    );
    let _ = writeln!(
        out,
        "\nThe same calls replayed from moto's recorded answers, each answer held {REPLAY_MS} ms as a remote AWS endpoint would: wall median {:.0} ms (min {:.0}, max {:.0}); CPU {replay_user:.0} ms user + {replay_sys:.0} ms system. The 0.3 s target {}. Answered at once instead: wall median {:.0} ms (min {:.0}, max {:.0}).",
        replayed.0,
        replayed.1,
        replayed.2,
        if replayed.0 <= 300.0 {
            "holds"
        } else {
            "is missed"
        },
        floor.0,
        floor.1,
        floor.2,
    );
}

/// Issue 15: a database of about 200 MB snapshotted to moto's S3 by `snapshot` (streamed,
/// one 5 MiB part in memory), beside `etcdctl snapshot save` to disk then `aws s3 cp`.
fn snapshots(out: &mut String) {
    use std::io::Write as _;
    let mut lab = Lab::new(101);
    lab.create_group("etcd", "etcd-masters");
    lab.launch("etcd", 2);
    let running = vec![(2, lab.discover_spawn(2, &[]))];
    lab.finish_and_start(running, &EtcdFlags::default());
    lab.wait_healthy(2, &[]);
    let endpoint = lab.env_value(2, "ETCD_ADVERTISE_CLIENT_URLS");
    // 200 values of 1 MiB, through stdin (one argument may not exceed 128 KiB).
    let value: Vec<u8> = (0..1024 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    for i in 0..200 {
        let mut put = lab::etcd_tool("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &endpoint, "put", &format!("key-{i:03}")])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        put.stdin.take().unwrap().write_all(&value).unwrap();
        assert!(put.wait().unwrap().success(), "put {i}");
    }
    let scope = "AWS4-HMAC-SHA256 Credential=AKIDLAB/20261124/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";
    let (status, answer) = client::request(
        "PUT",
        &format!("{}/bench-bucket", lab.moto.url),
        &[("Authorization", scope)],
        "",
    )
    .unwrap();
    assert!(status < 300, "CreateBucket: {status} {answer}");

    let ours = lab.discover_command(2, &["snapshot", "--snapshot-url=s3://bench-bucket/etcd"]);
    let started = Instant::now();
    let ours_rss = peak_rss(ours);
    let ours_s = started.elapsed().as_secs_f64();

    let file = lab.node_dir(2).join("bench-snapshot.db");
    let mut save = lab::etcd_tool("etcdctl");
    save.env("ETCDCTL_API", "3")
        .args(["--endpoints", &endpoint, "snapshot", "save"])
        .arg(&file);
    let started = Instant::now();
    let save_rss = peak_rss(save);
    let save_s = started.elapsed().as_secs_f64();
    let size = std::fs::metadata(&file).unwrap().len();
    let mut upload = Command::new("aws");
    upload
        .args([
            "s3",
            "cp",
            "--only-show-errors",
            "--endpoint-url",
            &lab.moto.url,
        ])
        .arg(&file)
        .arg("s3://bench-bucket/cli/bench-snapshot.db")
        .envs([
            ("AWS_ACCESS_KEY_ID", "AKIDLAB"),
            ("AWS_SECRET_ACCESS_KEY", "lab-secret"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("PATH", &std::env::var("PATH").unwrap_or_default()),
            ("HOME", &std::env::var("HOME").unwrap_or_default()),
        ]);
    let started = Instant::now();
    let upload_rss = peak_rss(upload);
    let upload_s = started.elapsed().as_secs_f64();
    let mb = size as f64 / 1e6;
    let _ = writeln!(
        out,
        "\nSnapshot of a {mb:.0} MB database (etcd {}) to moto's S3: `snapshot` {ours_s:.1} s ({:.0} MB/s), peak RSS {:.1} MiB; `etcdctl snapshot save` then `aws s3 cp`: {save_s:.1} s + {upload_s:.1} s ({:.0} MB/s), peak RSS {:.1} MiB and {:.1} MiB, and {mb:.0} MB written to disk.",
        if lab::etcd_dir().is_some() { "under LAB_ETCD_DIR" } else { "3.4" },
        mb / ours_s,
        ours_rss as f64 / 1024.0,
        mb / (save_s + upload_s),
        save_rss as f64 / 1024.0,
        upload_rss as f64 / 1024.0,
    );
    let _ = std::fs::remove_file(&file);
}

fn sizes(out: &mut String) {
    let bin = binary();
    let size = std::fs::metadata(&bin).unwrap().len();
    let gz = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -9 -n -c '{bin}' | wc -c"))
        .output()
        .unwrap();
    let gz: u64 = String::from_utf8_lossy(&gz.stdout).trim().parse().unwrap();
    let tree = Command::new("cargo")
        .args([
            "tree",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--target",
            "x86_64-unknown-linux-musl",
        ])
        .output()
        .unwrap();
    let mut crates: Vec<String> = String::from_utf8_lossy(&tree.stdout)
        .lines()
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    crates.sort();
    crates.dedup();
    let _ = writeln!(out, "Binary (static x86_64 musl, release): {size} bytes ({:.2} MB), {gz} bytes gzipped; it links {} crates (cargo tree, normal edges).", size as f64 / 1e6, crates.len().saturating_sub(1));
}

fn main() {
    let mut out = String::new();
    // `cargo test --test bench -- snapshot`: that section alone.
    if std::env::args().any(|a| a == "snapshot") {
        snapshots(&mut out);
        print!("{out}");
        return;
    }
    // `-- monsanto`: the side by side alone; `-- thousand`: the 1,000-instance group alone.
    if std::env::args().any(|a| a == "monsanto") {
        side_by_side::side_by_side(&mut out);
        print!("{out}");
        return;
    }
    if std::env::args().any(|a| a == "thousand") {
        thousand(&mut out);
        print!("{out}");
        return;
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let _ = writeln!(
        out,
        "Measured on {cores} cores ({cpu}), {RUNS} runs each.\n"
    );
    sizes(&mut out);
    let mut rows = Vec::new();
    fakes(&mut rows);
    let herd = lab(&mut rows);
    let _ = writeln!(out, "\n| path | against | wall median | min | max | peak RSS | requests | sequential round trips | AWS calls |");
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} MiB | {} | {} | {} |",
            r.path,
            r.against,
            r.timing.0,
            r.timing.1,
            r.timing.2,
            r.rss_kib as f64 / 1024.0,
            r.requests,
            r.trips,
            r.aws_calls
        );
    }
    out.push_str(&herd);
    side_by_side::side_by_side(&mut out);
    thousand(&mut out);
    snapshots(&mut out);
    print!("{out}");
    let _ = std::fs::write("target/bench.md", &out);
}
