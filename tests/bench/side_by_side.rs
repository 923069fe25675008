//! monsanto's etcd-aws-cluster (vendored in tests/bench/monsanto, one change: where it writes
//! its file) beside etcd-discovery, on the same lab cluster, as the same instance.
//!
//! The script asks IMDS at 169.254.169.254:80, a fixed address: `./build.sh bench` runs the
//! bench inside a network namespace of its own with that address on its loopback, and a
//! metadata stub listens there for both tools. It answers IMDSv1 as well as v2 (the script
//! sends no token), and the two paths the script reads that the lab's stub does not serve
//! (`instance-id`, `local-ipv4`). The cluster runs with `--enable-v2`: the script reads
//! `/v2/members`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use super::fake::{FakeServer, Request};
use super::lab::{EtcdFlags, Lab};
use super::throttle::ThrottlingProxy;
use super::{peak_rss, time_runs};

const IMDS_IP: &str = "169.254.169.254";
const TOKEN: &str = "bench-imds-token";

/// The instance's metadata on 169.254.169.254:80, IMDSv1 and v2 (a token, when sent, must
/// be the one handed out).
fn start_imds(instance_id: &str, ip: &str) -> std::io::Result<FakeServer> {
    // FakeServer panics when it cannot bind: probe first, so that a bench run outside its
    // namespace says so instead.
    drop(std::net::TcpListener::bind((IMDS_IP, 80))?);
    let (id, ip) = (instance_id.to_string(), ip.to_string());
    Ok(FakeServer::start_on(IMDS_IP, 80, move |r: &Request| {
        if r.method == "PUT" && r.path == "/latest/api/token" {
            return (200, TOKEN.into());
        }
        if r.header("x-aws-ec2-metadata-token")
            .is_some_and(|t| t != TOKEN)
        {
            return (401, String::new());
        }
        match r.path.as_str() {
            "/latest/dynamic/instance-identity/document" => (
                200,
                format!(
                    r#"{{"accountId":"123456789012","architecture":"x86_64","availabilityZone":"us-east-1a","imageId":"ami-03cf127a","instanceId":"{id}","instanceType":"t3.micro","privateIp":"{ip}","region":"us-east-1","version":"2017-09-30"}}"#
                ),
            ),
            "/latest/meta-data/instance-id" => (200, id.clone()),
            "/latest/meta-data/local-ipv4" => (200, ip.clone()),
            "/latest/meta-data/local-hostname" => {
                (200, format!("ip-{}.ec2.internal", ip.replace('.', "-")))
            }
            "/latest/meta-data/autoscaling/target-lifecycle-state" => (200, "InService".into()),
            _ => (404, String::new()),
        }
    }))
}

/// A folder holding `aws`, `curl` and `jq` for the script's PATH (the AWS CLI found
/// directly, not through a version manager's shim, which would add its own start-up).
fn tool_dir(scratch: &Path) -> PathBuf {
    let dir = scratch.join("monsanto-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let aws = std::env::var("BENCH_AWS_CLI").unwrap_or_else(|_| "aws".into());
    for (name, target) in [("aws", aws.as_str()), ("curl", "curl"), ("jq", "jq")] {
        let found = Command::new("sh")
            .args(["-c", "command -v \"$1\"", "-", target])
            .output()
            .unwrap();
        let path = String::from_utf8_lossy(&found.stdout).trim().to_string();
        assert!(
            !path.is_empty(),
            "{target} not found: the side by side needs curl, jq and the AWS CLI"
        );
        let link = dir.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(path, link).unwrap();
    }
    dir
}

/// The script for instance k of `lab`, writing `file`, asking AWS at `aws`.
fn script(lab: &Lab, bin: &Path, file: &Path, aws: &str) -> Command {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/bench/monsanto/etcd-aws-cluster"
    );
    let home = lab.dir.join("monsanto-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut c = Command::new("bash");
    c.arg(path)
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        // An empty HOME: the CLI reads no configuration or credentials of this machine.
        .env("HOME", &home)
        .env("AWS_CONFIG_FILE", home.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"))
        .env("AWS_ENDPOINT_URL", aws)
        .env("AWS_ACCESS_KEY_ID", "AKIDLAB")
        .env("AWS_SECRET_ACCESS_KEY", "lab-secret")
        .env("ETCD_PEERS_FILE_PATH", file);
    c
}

/// Requests that reached the stub and the proxy during `run`.
fn count(imds: &FakeServer, aws: &ThrottlingProxy, run: impl FnOnce()) -> (usize, usize) {
    imds.requests.lock().unwrap().clear();
    aws.server.requests.lock().unwrap().clear();
    run();
    (imds.requests().len(), aws.requests().len())
}

fn ms(t: (f64, f64, f64)) -> String {
    format!("{:.1} ms (min {:.1}, max {:.1})", t.0, t.1, t.2)
}

/// The side by side's lines for the README.
pub fn side_by_side(out: &mut String) {
    let mut lab = Lab::new(170);
    lab.create_group("etcd", "etcd-masters");
    for k in [2, 3, 4] {
        lab.launch("etcd", k);
    }
    let running = [2, 3, 4].map(|k| (k, lab.discover_spawn(k, &[]))).into();
    let v2 = EtcdFlags {
        args: vec!["--enable-v2=true".into()],
        ..EtcdFlags::default()
    };
    lab.finish_and_start(running, &v2);
    for k in [2, 3, 4] {
        lab.wait_healthy(k, &[]);
    }
    let imds = match start_imds(&lab.nodes[&2].instance_id, &lab.ip(2)) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(
                out,
                "\nSide by side with monsanto's script: skipped, 169.254.169.254:80 cannot be bound here ({e}); `./build.sh bench` runs the bench in a network namespace that has it."
            );
            return;
        }
    };
    let counter = Arc::new(ThrottlingProxy::start(&lab.ip(252), &lab.moto.url, 0, 1));
    let bin = tool_dir(&lab.dir);
    let theirs = lab.node_dir(2).join("monsanto-etcd-peers");
    let ours = lab.env_file(2);
    let tool = |aws: &str| {
        let mut c = lab.discover_command(2, &[]);
        c.env(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            format!("http://{IMDS_IP}"),
        )
        .env("AWS_ENDPOINT_URL", aws);
        c
    };
    let script = |aws: &str| script(&lab, &bin, &theirs, aws);
    let ok = |mut c: Command| {
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o
    };
    let no_files = || {
        let _ = std::fs::remove_file(&theirs);
        let _ = std::fs::remove_file(&ours);
    };

    // (b) no file: the script's whole path, ours the full path; requests counted first.
    no_files();
    let (s_imds, s_aws) = count(&imds, &counter, || {
        ok(script(&counter.url()));
    });
    let written = std::fs::read_to_string(&theirs).unwrap_or_default();
    let (t_imds, t_aws) = count(&imds, &counter, || {
        ok(tool(&counter.url()));
    });
    let script_full = time_runs(no_files, || ok(script(&lab.moto.url)));
    let tool_full = time_runs(no_files, || ok(tool(&lab.moto.url)));
    no_files();
    let script_full_rss = peak_rss(script(&lab.moto.url));
    let tool_full_rss = peak_rss(tool(&lab.moto.url));

    // (a) each tool's file present (the runs above left them): a reboot.
    let (sr_imds, sr_aws) = count(&imds, &counter, || {
        ok(script(&counter.url()));
    });
    let (tr_imds, tr_aws) = count(&imds, &counter, || {
        ok(tool(&counter.url()));
    });
    let script_reboot = time_runs(|| {}, || ok(script(&lab.moto.url)));
    let tool_reboot = time_runs(|| {}, || ok(tool(&lab.moto.url)));

    let state = written
        .lines()
        .find(|l| l.starts_with("ETCD_INITIAL_CLUSTER_STATE="))
        .unwrap_or("no ETCD_INITIAL_CLUSTER_STATE")
        .to_string();
    let mib = |k: u64| k as f64 / 1024.0;
    let _ = writeln!(
        out,
        "\nSide by side with monsanto's etcd-aws-cluster (tests/bench/monsanto), the same instance of the same lab cluster (3 members of etcd {}, v2 on), medians of {} runs:",
        if super::lab::etcd_dir().is_some() { "under LAB_ETCD_DIR" } else { "3.4" },
        super::RUNS,
    );
    let _ = writeln!(
        out,
        "- No file (the script's whole run, as on its first boot; ours takes its full path): script {}, {s_imds} IMDS and {s_aws} AWS requests, peak RSS {:.1} MiB, wrote `{state}`; etcd-discovery {}, {t_imds} IMDS and {t_aws} AWS requests, peak RSS {:.1} MiB. etcd-discovery is {:.0}x faster.",
        ms(script_full),
        mib(script_full_rss),
        ms(tool_full),
        mib(tool_full_rss),
        script_full.0 / tool_full.0,
    );
    let _ = writeln!(
        out,
        "- The file present (a reboot): script {}, {sr_imds} IMDS and {sr_aws} AWS requests: it reads the region, sees its file and exits, checking nothing; etcd-discovery {} (the fast path), {tr_imds} IMDS and {tr_aws} AWS requests, the peers asked whether this instance is a member. etcd-discovery is {:.1}x faster.",
        ms(script_reboot),
        ms(tool_reboot),
        script_reboot.0 / tool_reboot.0,
    );
    let _ = writeln!(
        out,
        "- The script's whole run against etcd-discovery's reboot fast path: {:.0}x.",
        script_full.0 / tool_reboot.0,
    );
}
