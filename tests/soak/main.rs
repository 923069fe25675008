//! `./build.sh soak [--events N] [--seed S] [--etcd 3.4|3.5] [--size 3|5]`: a seeded,
//! randomized soak in the lab (issue 14). It boots a cluster of `size` instances, then draws
//! N events at random (the same seed draws the same events) and checks the invariants after
//! each one: converged within 90 s, one cluster ID, the counter written before the event
//! reads back, the tool exits only 0 or 75, never panics, never removes a member whose etcd
//! was running. Not a test of timing: the times it prints are measured, not asserted.
//!
//! Every boot runs as the shipped unit runs it: the tool, run again 1 s (the unit's
//! `RestartSec` is 15 s; 1 s keeps the soak short) after each exit 75, and etcd started as
//! soon as the tool exits 0. The tool gets `--timeout=60s` so that no run outlives the
//! convergence bound. The last line is `soak: N events, V violations`; the exit status is V,
//! capped at 100.

#[path = "../support/client.rs"]
mod client;
#[path = "../support/fake.rs"]
mod fake;
#[path = "../lab/lab.rs"]
mod lab;
#[path = "../support/throttle.rs"]
mod throttle;

use std::collections::BTreeMap;
use std::fs;
use std::process::{Child, Command};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use lab::{etcd_tool, EtcdFlags, Lab};
use throttle::ThrottlingProxy;

/// How long the cluster has to converge after an event's actions.
const BOUND: Duration = Duration::from_secs(90);
/// The soak's `RestartSec`.
const RESTART: Duration = Duration::from_secs(1);
/// What every tool run gets on top of the lab's flags.
const TOOL_FLAGS: &[&str] = &["--timeout=60s"];

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Replace,
    Reboot,
    RebootDataLost,
    PowerCycle,
    ScaleUp,
    ScaleDown,
    ToolKilledAfterAdd,
    EtcdKilled,
    Throttled,
    SlowImds,
}

const KINDS: [Kind; 10] = [
    Kind::Replace,
    Kind::Reboot,
    Kind::RebootDataLost,
    Kind::PowerCycle,
    Kind::ScaleUp,
    Kind::ScaleDown,
    Kind::ToolKilledAfterAdd,
    Kind::EtcdKilled,
    Kind::Throttled,
    Kind::SlowImds,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Replace => "replace",
            Kind::Reboot => "reboot",
            Kind::RebootDataLost => "reboot-data-lost",
            Kind::PowerCycle => "power-cycle",
            Kind::ScaleUp => "scale-up",
            Kind::ScaleDown => "scale-down",
            Kind::ToolKilledAfterAdd => "tool-killed-after-add",
            Kind::EtcdKilled => "etcd-killed",
            Kind::Throttled => "throttled-replace",
            Kind::SlowImds => "slow-imds-reboot",
        }
    }
}

/// xorshift64: the same seed draws the same events.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Args {
    events: usize,
    seed: u64,
    size: u8,
}

fn args() -> Args {
    let mut parsed = Args {
        events: 20,
        seed: 1,
        size: 3,
    };
    let all: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < all.len() {
        let value = all.get(i + 1).cloned().unwrap_or_default();
        match all[i].as_str() {
            "--events" => parsed.events = value.parse().expect("--events takes a number"),
            "--seed" => parsed.seed = value.parse().expect("--seed takes a number"),
            "--size" => {
                parsed.size = value.parse().expect("--size takes 3 or 5");
                assert!(matches!(parsed.size, 3 | 5), "--size takes 3 or 5");
            }
            // cargo's own flags for a harness-less test (`--quiet`, `--nocapture`...).
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    parsed
}

/// What the soak saw, for the table.
#[derive(Default)]
struct Stats {
    by_kind: BTreeMap<&'static str, usize>,
    violations: Vec<String>,
    converge_secs: Vec<f64>,
    exits: BTreeMap<String, usize>,
    tries_per_boot: Vec<usize>,
    aws_calls_per_boot: Vec<f64>,
}

struct Soak {
    lab: Lab,
    rng: Rng,
    size: u8,
    next_host: u8,
    /// Every AWS call goes through one of these: `counting` throttles nothing, `throttling`
    /// answers `Throttling` on a share of calls and is used during a burst.
    counting: ThrottlingProxy,
    throttling: ThrottlingProxy,
    stats: Stats,
    /// The value written before the event under way.
    counter: u64,
}

impl Soak {
    fn live(&self) -> Vec<u8> {
        self.lab.nodes.keys().copied().collect()
    }

    fn pick_live(&mut self) -> u8 {
        let live = self.live();
        live[self.rng.below(live.len())]
    }

    /// A host number never used yet, or the lowest free one once .249 is reached.
    fn new_host(&mut self) -> u8 {
        if self.next_host < 249 {
            self.next_host += 1;
            return self.next_host;
        }
        (2..249)
            .find(|k| !self.lab.nodes.contains_key(k))
            .expect("a free host")
    }

    fn aws_calls(&self) -> usize {
        self.counting.requests().len() + self.throttling.requests().len()
    }

    fn set_aws(&mut self, url: String) {
        self.lab.tool_env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
        self.lab.tool_env.push(("AWS_ENDPOINT_URL".into(), url));
    }

    fn violation(&mut self, what: String) {
        println!("  VIOLATION: {what}");
        self.stats.violations.push(what);
    }

    /// Looks at a finished run: its exit, a panic, a member removed whose etcd was running.
    /// True when it exited 0.
    fn judge(&mut self, k: u8, status: std::process::ExitStatus) -> bool {
        let log =
            fs::read_to_string(self.lab.node_dir(k).join("discovery.log")).unwrap_or_default();
        // Every run's log, kept for a violation's reader.
        let all = self.lab.dir.join(format!("tool-{k}.log"));
        let mut kept = fs::read_to_string(&all).unwrap_or_default();
        kept.push_str(&log);
        let _ = fs::write(&all, kept);
        let code = status
            .code()
            .map_or_else(|| format!("signal {status}"), |c| c.to_string());
        *self.stats.exits.entry(code.clone()).or_default() += 1;
        if code != "0" && code != "75" {
            self.violation(format!("node {k}: the tool exited {code}:\n{log}"));
        }
        if log.contains("panicked") {
            self.violation(format!("node {k}: the tool panicked:\n{log}"));
        }
        for line in log.lines().filter(|l| l.contains("removing member")) {
            let running: Vec<(u8, String)> = self
                .lab
                .nodes
                .values()
                .filter(|n| n.etcd.is_some())
                .map(|n| (n.k, n.instance_id.clone()))
                .collect();
            if let Some((other, _)) = running
                .iter()
                .find(|(_, id)| line.contains(&format!("({id})")))
            {
                self.violation(format!(
                    "node {k}: removed the member of node {other}, whose etcd was running: {line}"
                ));
            }
        }
        code == "0"
    }

    /// Runs the tool on every host of `hosts` at once, as their units would: again after
    /// `RESTART` on exit 75; etcd started on exit 0 (unless `reconcile`: the timer's run,
    /// which starts nothing). Bounded by `BOUND`.
    fn boot(&mut self, hosts: &[u8], extra: &[&str], start_etcd: bool) {
        let calls_before = self.aws_calls();
        let mut flags: Vec<&str> = TOOL_FLAGS.to_vec();
        flags.extend_from_slice(extra);
        let deadline = Instant::now() + BOUND;
        // (host, running child, when to start it again, tries)
        let mut pending: Vec<(u8, Option<Child>, Instant, usize)> = hosts
            .iter()
            .map(|k| (*k, None, Instant::now(), 0))
            .collect();
        let mut tries = Vec::new();
        while !pending.is_empty() {
            if Instant::now() > deadline {
                for (k, child, _, n) in &mut pending {
                    if let Some(c) = child {
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                    tries.push(*n);
                    let k = *k;
                    self.violation(format!(
                        "node {k}: the tool still did not succeed after {BOUND:?} ({n} tries)"
                    ));
                }
                break;
            }
            let mut still = Vec::new();
            for (k, child, at, n) in pending {
                match child {
                    None if Instant::now() >= at => {
                        let child = self.lab.discover_spawn(k, &flags);
                        still.push((k, Some(child), at, n + 1));
                    }
                    None => still.push((k, None, at, n)),
                    Some(mut c) => match c.try_wait().expect("wait for the tool") {
                        None => still.push((k, Some(c), at, n)),
                        Some(status) => {
                            if self.judge(k, status) {
                                if start_etcd {
                                    self.lab.start_etcd(k, &EtcdFlags::default());
                                }
                                tries.push(n);
                            } else if status.code() == Some(75) {
                                still.push((k, None, Instant::now() + RESTART, n));
                            } else {
                                tries.push(n);
                            }
                        }
                    },
                }
            }
            pending = still;
            std::thread::sleep(Duration::from_millis(50));
        }
        if !start_etcd {
            return; // the reconcile timer's runs are not boots
        }
        let calls = (self.aws_calls() - calls_before) as f64 / hosts.len().max(1) as f64;
        for n in tries {
            self.stats.tries_per_boot.push(n);
            self.stats.aws_calls_per_boot.push(calls);
        }
    }

    /// Stops k's etcd as `systemctl stop` would (SIGTERM, bounded), or kills it.
    fn stop_etcd(&mut self, k: u8, kill: bool) {
        let Some(mut guard) = self.lab.nodes.get_mut(&k).and_then(|n| n.etcd.take()) else {
            return;
        };
        if !kill {
            let _ = Command::new("kill")
                .args(["-TERM", &guard.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = guard.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        drop(guard); // SIGKILL if it still runs, and reaped
    }

    fn endpoints(&self) -> String {
        self.live()
            .iter()
            .map(|k| format!("http://{}:2379", self.lab.ip(*k)))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn etcdctl(&self, args: &[&str]) -> Result<String, String> {
        let out = etcd_tool("etcdctl")
            .env("ETCDCTL_API", "3")
            .args([
                "--endpoints",
                &self.endpoints(),
                "--dial-timeout=1s",
                "--command-timeout=3s",
            ])
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "etcdctl {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Why the cluster is not (yet) what it should be, or None when it is.
    fn not_converged(&mut self) -> Option<String> {
        for node in self.lab.nodes.values_mut() {
            match node.etcd.as_mut().map(|g| g.child.try_wait()) {
                None => return Some(format!("node {}: no etcd", node.k)),
                Some(Ok(Some(status))) => {
                    return Some(format!("node {}: etcd exited ({status})", node.k))
                }
                _ => {}
            }
        }
        if let Err(e) = self.etcdctl(&["endpoint", "health"]) {
            return Some(e);
        }
        // Every member a live instance, started; every live instance a member.
        let list = match self.etcdctl(&["member", "list"]) {
            Ok(l) => l,
            Err(e) => return Some(e),
        };
        let mut members: Vec<(String, bool)> = list
            .lines()
            .map(|l| l.split(", ").collect::<Vec<_>>())
            .filter(|f| f.len() > 3)
            .map(|f| (f[2].to_string(), f[1] == "started"))
            .collect();
        members.sort();
        let mut expected: Vec<(String, bool)> = self
            .lab
            .nodes
            .values()
            .map(|n| (n.instance_id.clone(), true))
            .collect();
        expected.sort();
        if members != expected {
            return Some(format!("members {members:?}, instances {expected:?}"));
        }
        // One cluster: every running etcd reports the same cluster ID.
        let status = match self.etcdctl(&["endpoint", "status", "-w", "json"]) {
            Ok(s) => s,
            Err(e) => return Some(e),
        };
        let ids: Vec<u64> = serde_json::from_str::<serde_json::Value>(&status)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e["Status"]["header"]["cluster_id"].as_u64())
            .collect();
        if ids.len() != self.lab.nodes.len() || ids.iter().any(|id| *id != ids[0]) {
            return Some(format!("cluster IDs {ids:x?}"));
        }
        None
    }

    /// Waits (bounded) for the invariants; checks the counter. The time from `started`.
    fn converge(&mut self, started: Instant) -> Result<f64, String> {
        let deadline = Instant::now() + BOUND;
        let mut why = None;
        while Instant::now() < deadline {
            why = self.not_converged();
            if why.is_none() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        if let Some(why) = why {
            return Err(format!("not converged after {BOUND:?}: {why}"));
        }
        let took = started.elapsed().as_secs_f64();
        if self.counter == 0 {
            return Ok(took); // the bootstrap: nothing written yet
        }
        let value = self.etcdctl(&["get", "soak/counter", "--print-value-only"])?;
        if value.trim() != self.counter.to_string() {
            return Err(format!(
                "lost data: soak/counter reads {:?}, {} was written before the event",
                value.trim(),
                self.counter
            ));
        }
        Ok(took)
    }

    /// Draws an event the cluster's size allows.
    fn draw(&mut self) -> Kind {
        let live = self.lab.nodes.len();
        let most = usize::from(self.size) + 2;
        loop {
            let kind = KINDS[self.rng.below(KINDS.len())];
            match kind {
                Kind::ScaleUp if live + 2 > most => continue,
                Kind::ScaleDown if live <= 3 => continue,
                _ => return kind,
            }
        }
    }

    /// Terminates k; the group launches a new instance, which boots. Its host.
    fn replace(&mut self, k: u8) -> u8 {
        self.lab.terminate(k);
        let new = self.new_host();
        self.lab.launch("etcd", new);
        new
    }

    /// Runs one event; what happened, in words.
    fn run(&mut self, kind: Kind) -> String {
        match kind {
            Kind::Replace => {
                let k = self.pick_live();
                let new = self.replace(k);
                self.boot(&[new], &[], true);
                format!("node {k} terminated, node {new} replaces it")
            }
            Kind::Throttled => {
                let k = self.pick_live();
                let url = self.throttling.url();
                self.set_aws(url);
                let new = self.replace(k);
                self.boot(&[new], &[], true);
                let url = self.counting.url();
                self.set_aws(url);
                format!("node {k} terminated, node {new} replaces it, 30% of AWS calls throttled")
            }
            Kind::Reboot | Kind::SlowImds => {
                let k = self.pick_live();
                self.stop_etcd(k, false);
                let slow = kind == Kind::SlowImds;
                let latency = 1000 + 100 * self.rng.below(11) as u64;
                if slow {
                    self.lab.nodes[&k]
                        .imds
                        .latency_ms
                        .store(latency, Ordering::SeqCst);
                }
                self.boot(&[k], &[], true);
                self.lab.nodes[&k]
                    .imds
                    .latency_ms
                    .store(0, Ordering::SeqCst);
                if slow {
                    format!("node {k} rebooted, its IMDS answering in {latency} ms")
                } else {
                    format!("node {k} rebooted")
                }
            }
            Kind::RebootDataLost => {
                let k = self.pick_live();
                self.stop_etcd(k, false);
                let data = self.lab.data_dir(k);
                let emptied = self.rng.below(2) == 0;
                let _ = fs::remove_dir_all(&data);
                if emptied {
                    fs::create_dir_all(&data).expect("an empty data directory");
                }
                self.boot(&[k], &[], true);
                let how = if emptied { "emptied" } else { "deleted" };
                format!("node {k} rebooted with its data directory {how}")
            }
            Kind::EtcdKilled => {
                let k = self.pick_live();
                self.stop_etcd(k, true);
                self.boot(&[k], &[], true);
                format!("node {k}: etcd killed (SIGKILL), rebooted")
            }
            Kind::PowerCycle => {
                let all = self.live();
                for k in &all {
                    self.stop_etcd(*k, true);
                }
                self.boot(&all, &[], true);
                format!("power cycle: all {} instances boot at once", all.len())
            }
            Kind::ScaleUp => {
                let room = usize::from(self.size) + 2 - self.lab.nodes.len();
                let n = (2 + self.rng.below(2)).min(room);
                let new: Vec<u8> = (0..n).map(|_| self.new_host()).collect();
                for k in &new {
                    self.lab.launch("etcd", *k);
                }
                self.boot(&new, &[], true);
                format!("scale-up: nodes {new:?} boot at once")
            }
            Kind::ScaleDown => {
                let k = self.pick_live();
                self.lab.terminate(k);
                // The reconcile timer fires on every member; only the leader acts.
                let all = self.live();
                self.boot(&all, &["reconcile"], false);
                format!("scale-down: node {k} terminated, reconcile on every member")
            }
            Kind::ToolKilledAfterAdd => {
                let k = self.pick_live();
                let new = self.replace(k);
                let killed = self.kill_after_add(new);
                self.boot(&[new], &[], true);
                if killed {
                    format!(
                        "node {k} terminated, node {new}'s tool killed after its add, booted again"
                    )
                } else {
                    format!("node {k} terminated, node {new}'s tool finished before the kill, booted again")
                }
            }
        }
    }

    /// Starts the tool on `k` and kills it (SIGKILL) as soon as its member shows in the
    /// member list, unstarted. True when it was killed after the add (not when it had
    /// already exited, or never added within the bound).
    fn kill_after_add(&mut self, k: u8) -> bool {
        let mut flags: Vec<&str> = TOOL_FLAGS.to_vec();
        flags.push("--log-level=debug");
        let mut child = self.lab.discover_spawn(k, &flags);
        let peer = format!("http://{}:2380", self.lab.ip(k));
        let deadline = Instant::now() + BOUND;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.judge(k, status);
                return false;
            }
            let added = self
                .etcdctl(&["member", "list"])
                .is_ok_and(|l| l.lines().any(|l| l.contains(&peer)));
            if added {
                let _ = child.kill();
                let _ = child.wait();
                *self.stats.exits.entry("SIGKILL (soak)".into()).or_default() += 1;
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn etcd_version() -> String {
    etcd_tool("etcd")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("etcd Version: ").map(str::to_string))
        })
        .unwrap_or_else(|| "?".into())
}

fn main() {
    let args = args();
    let net = if args.size == 3 { 110 } else { 111 };
    let version = etcd_version();
    println!(
        "soak: seed {}, {} events, {} instances, etcd {version}",
        args.seed, args.events, args.size
    );
    let lab = Lab::new(net);
    let counting = ThrottlingProxy::start(&lab.ip(251), &lab.moto.url, 0, 1);
    let throttling = ThrottlingProxy::start(&lab.ip(252), &lab.moto.url, 30, args.seed);
    let mut soak = Soak {
        lab,
        rng: Rng(args.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        size: args.size,
        next_host: 1,
        counting,
        throttling,
        stats: Stats::default(),
        counter: 0,
    };
    let url = soak.counting.url();
    soak.set_aws(url);

    // The first boot: every instance at once.
    let started = Instant::now();
    soak.lab.create_group("etcd", "etcd-masters");
    let first: Vec<u8> = (0..args.size).map(|_| soak.new_host()).collect();
    for k in &first {
        soak.lab.launch("etcd", *k);
    }
    soak.boot(&first, &[], true);
    soak.counter = 0;
    let mut stopped = false;
    match soak.converge(started) {
        Ok(took) => println!("   0 bootstrap: nodes {first:?}, converged in {took:.1} s"),
        Err(e) => {
            soak.violation(format!("bootstrap: {e}"));
            stopped = true;
        }
    }

    let mut done = 0;
    for i in 1..=args.events {
        if stopped {
            break;
        }
        soak.counter = i as u64;
        if let Err(e) = soak.etcdctl(&["put", "soak/counter", &i.to_string()]) {
            soak.violation(format!("event {i}: the counter could not be written: {e}"));
            break;
        }
        let kind = soak.draw();
        *soak.stats.by_kind.entry(kind.name()).or_default() += 1;
        let started = Instant::now();
        let what = soak.run(kind);
        done = i;
        match soak.converge(started) {
            Ok(took) => {
                soak.stats.converge_secs.push(took);
                println!("{i:4} {}: {what}, converged in {took:.1} s", kind.name());
            }
            Err(e) => {
                println!("{i:4} {}: {what}", kind.name());
                soak.violation(format!("event {i} ({}): {e}", kind.name()));
                // What follows would count this failure's consequences: the soak stops.
                stopped = true;
            }
        }
    }

    let stats = &soak.stats;
    let mut times = stats.converge_secs.clone();
    times.sort_by(|a, b| a.total_cmp(b));
    let mut tries: Vec<f64> = stats.tries_per_boot.iter().map(|n| *n as f64).collect();
    tries.sort_by(|a, b| a.total_cmp(b));
    let mut calls = stats.aws_calls_per_boot.clone();
    calls.sort_by(|a, b| a.total_cmp(b));
    println!();
    println!(
        "| seed {} · etcd {version} · {} instances | |",
        args.seed, args.size
    );
    println!("|---|---|");
    for (kind, n) in &stats.by_kind {
        println!("| events: {kind} | {n} |");
    }
    println!("| violations | {} |", stats.violations.len());
    println!(
        "| converge p50 / p95 / max | {:.1} s / {:.1} s / {:.1} s |",
        percentile(&times, 0.5),
        percentile(&times, 0.95),
        times.last().copied().unwrap_or(0.0)
    );
    for (code, n) in &stats.exits {
        println!("| tool exits {code} | {n} |");
    }
    println!(
        "| tries per boot p50 / max | {:.0} / {:.0} |",
        percentile(&tries, 0.5),
        tries.last().copied().unwrap_or(0.0)
    );
    println!(
        "| AWS calls per boot p50 / max | {:.1} / {:.1} |",
        percentile(&calls, 0.5),
        calls.last().copied().unwrap_or(0.0)
    );
    println!(
        "| AWS calls throttled | {} |",
        soak.throttling.throttled.load(Ordering::SeqCst)
    );
    let v = stats.violations.len();
    if v > 0 {
        // The lab's files (every tool run's log, etcd's logs) for the reader.
        let kept =
            soak.lab
                .dir
                .with_file_name(format!("soak-{}-{}", args.seed, std::process::id()));
        let _ = Command::new("cp")
            .arg("-a")
            .arg(&soak.lab.dir)
            .arg(&kept)
            .status();
        println!("lab files kept in {}", kept.display());
    }
    println!("soak: {done} events, {v} violations");
    drop(soak);
    std::process::exit(v.min(100) as i32);
}
