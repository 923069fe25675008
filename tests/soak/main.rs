//! `./build.sh soak [--events N] [--seed S] [--etcd 3.4|3.5] [--size 3|5]`: a seeded,
//! randomized soak in the lab (issue 14). It boots a cluster of `size` instances, then draws
//! N events at random (the same seed draws the same events) and checks the invariants after
//! each one: converged within 90 s, one cluster ID, the counter written before the event
//! reads back, the tool exits only 0 or 75, never panics, never removes a member whose etcd
//! was running or that answered a probe. While an event converges, a sampler watches for
//! two unstarted members at once. A rare event loses the quorum; the soak then checks that
//! the tool holds back, and takes the operator's way out. Not a test of timing: the times
//! it prints are measured, not asserted.
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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lab::{etcd_tool, EtcdFlags, Lab};
use throttle::ThrottlingProxy;

/// How long the cluster has to converge after an event's actions.
const BOUND: Duration = Duration::from_secs(90);
/// The soak's `RestartSec`.
const RESTART: Duration = Duration::from_secs(1);
/// One event in this many is a quorum loss (drawn apart from the others).
const QUORUM_LOST_ONE_IN: usize = 40;
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
    QuorumLost,
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
            Kind::QuorumLost => "quorum-lost",
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
    /// Watches the cluster while events converge (see `Sampler`).
    sampler: Arc<Mutex<Sampler>>,
    /// Each member's probe once the event's kills were done, before any tool ran: what a
    /// removal the tool then logs is judged by.
    serving: BTreeMap<u64, bool>,
    /// Draws the rare quorum loss, apart from `rng`: a seed's other events stay what they
    /// were before the quorum loss was added (the short soak's seed among them).
    rare: Rng,
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

    /// Tells the sampler where the live instances are and has it look now: called after an
    /// event's kills and before any tool runs, so that the last look before a removal
    /// always follows them.
    fn watch(&mut self) {
        let peers: Vec<String> = self
            .live()
            .iter()
            .map(|k| format!("http://{}:2380", self.lab.ip(*k)))
            .collect();
        let mut sampler = self.sampler.lock().expect("the sampler");
        sampler.peers = peers;
        sampler.sample();
        self.serving = sampler.healthy.clone();
    }

    /// What the sampler found since the last call, as violations; called once the event
    /// has converged. Members no longer in the cluster are forgotten.
    fn sampled(&mut self, when: &str) {
        let ids: Vec<u64> = self
            .etcdctl(&["member", "list"])
            .unwrap_or_default()
            .lines()
            .filter_map(|l| u64::from_str_radix(l.split(", ").next()?, 16).ok())
            .collect();
        let mut sampler = self.sampler.lock().expect("the sampler");
        let found: Vec<String> = std::mem::take(&mut sampler.breaches);
        if !ids.is_empty() {
            sampler.known.retain(|id, _| ids.contains(id));
        }
        drop(sampler);
        for breach in found {
            self.violation(format!("{when}: {breach}"));
        }
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
            // "removing member <hex id> (<name>): why"
            let id = line
                .split("removing member ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .and_then(|hex| u64::from_str_radix(hex, 16).ok());
            if let Some(id) = id.filter(|id| self.serving.get(id) == Some(&true)) {
                self.violation(format!(
                    "node {k}: removed member {id:x}, which answered its status with a leader after the event's kills, before the tool ran: {line}"
                ));
            }
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
        self.watch();
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
        if self.rare.below(QUORUM_LOST_ONE_IN) == 0 {
            return Kind::QuorumLost;
        }
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
            Kind::QuorumLost => self.quorum_lost(),
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

    /// etcdctl against one member only, reading its own copy (`--consistency=s`).
    fn local_counter(&self, k: u8) -> Option<String> {
        let out = etcd_tool("etcdctl")
            .env("ETCDCTL_API", "3")
            .args([
                "--endpoints",
                &format!("http://{}:2379", self.lab.ip(k)),
                "--dial-timeout=1s",
                "--command-timeout=3s",
                "get",
                "soak/counter",
                "--consistency=s",
                "--print-value-only",
            ])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// A majority of the members' instances terminated at once, with their data; the group
    /// launches as many. Every tool run on the new instances must exit 75, write no file and
    /// bootstrap nothing (rule 6). Then the soak plays the operator, as the README says:
    /// etcd restarted once with `--force-new-cluster` on one survivor (its data holds the
    /// counter), every other survivor's data deleted, and every instance but that one
    /// booted, as the units would go on doing.
    fn quorum_lost(&mut self) -> String {
        let live = self.live();
        let lost = live.len() / 2 + 1;
        let mut victims = live.clone();
        let mut survivors = Vec::new();
        while victims.len() > lost {
            survivors.push(victims.remove(self.rare.below(victims.len())));
        }
        survivors.sort();
        // The counter was acknowledged by a quorum, not by every member: wait (bounded)
        // until the survivors hold it, so that what the operator keeps has it.
        let counter = self.counter.to_string();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline
            && !survivors
                .iter()
                .all(|k| self.local_counter(*k).as_deref() == Some(counter.as_str()))
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        for k in &victims {
            self.lab.terminate(*k);
        }
        let new: Vec<u8> = victims.iter().map(|_| self.new_host()).collect();
        for k in &new {
            self.lab.launch("etcd", *k);
        }

        // While the quorum is lost: each new instance's unit tries twice.
        self.watch();
        let mut runs = 0;
        let mut wrong = Vec::new();
        for _ in 0..2 {
            let children: Vec<(u8, Child)> = new
                .iter()
                .map(|k| (*k, self.lab.discover_spawn(*k, TOOL_FLAGS)))
                .collect();
            for (k, mut child) in children {
                let deadline = Instant::now() + BOUND;
                let status = loop {
                    if let Ok(Some(status)) = child.try_wait() {
                        break Some(status);
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        break None;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                };
                runs += 1;
                let Some(status) = status else {
                    wrong.push(format!("node {k}: the tool still ran after {BOUND:?}"));
                    continue;
                };
                self.judge(k, status);
                let log = fs::read_to_string(self.lab.node_dir(k).join("discovery.log"))
                    .unwrap_or_default();
                if status.code() != Some(75) {
                    wrong.push(format!("node {k}: exit {status} without a quorum:\n{log}"));
                }
                if self.lab.env_file(k).exists() {
                    wrong.push(format!(
                        "node {k}: a file was written without a quorum:\n{log}"
                    ));
                }
                if !log.contains("quorum lost") {
                    wrong.push(format!(
                        "node {k}: the run did not say the quorum is lost:\n{log}"
                    ));
                }
            }
            std::thread::sleep(RESTART);
        }
        // Nothing bootstrapped: the survivors still list the old members, all of them.
        let url = format!("http://{}:2380/members", self.lab.ip(survivors[0]));
        let mut peers = None;
        for _ in 0..20 {
            peers = call("GET", &url, "").map(|(_, body)| body.matches("peerURLs").count());
            if peers.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        if peers != Some(live.len()) {
            wrong.push(format!(
                "the survivors' member list changed without a quorum (or {url} did not answer): {peers:?} members, {} before",
                live.len()
            ));
        }
        let verdict = if wrong.is_empty() {
            format!("all {runs} tool runs exited 75, wrote no file, bootstrapped nothing")
        } else {
            for w in wrong {
                self.violation(format!("quorum lost: {w}"));
            }
            "the tool did not hold back (see the violations)".to_string()
        };

        // The operator's way out. The sampler looks away: these removals are the operator's.
        self.sampler.lock().expect("the sampler").reset(false);
        let kept = survivors[0];
        self.stop_etcd(kept, false);
        let forced = EtcdFlags {
            args: vec!["--force-new-cluster".into()],
            ..EtcdFlags::default()
        };
        self.lab.start_etcd(kept, &forced);
        let health = format!("http://{}:2379/health", self.lab.ip(kept));
        let deadline = Instant::now() + BOUND;
        while Instant::now() < deadline
            && !call("GET", &health, "").is_some_and(|(s, b)| s == 200 && b.contains("true"))
        {
            std::thread::sleep(Duration::from_millis(200));
        }
        self.stop_etcd(kept, false);
        self.lab.start_etcd(kept, &EtcdFlags::default());
        for k in &survivors[1..] {
            self.stop_etcd(*k, false);
            let _ = fs::remove_dir_all(self.lab.data_dir(*k));
        }
        self.sampler.lock().expect("the sampler").reset(true);
        let mut rest: Vec<u8> = survivors[1..].to_vec();
        rest.extend(&new);
        self.boot(&rest, &[], true);
        format!(
            "quorum lost: nodes {victims:?} terminated with their data ({lost} of {}), nodes {new:?} launched; {verdict}; node {kept} forced into a new cluster (--force-new-cluster), nodes {rest:?} booted",
            live.len()
        )
    }

    /// Starts the tool on `k` and kills it (SIGKILL) as soon as its member shows in the
    /// member list, unstarted. True when it was killed after the add (not when it had
    /// already exited, or never added within the bound).
    fn kill_after_add(&mut self, k: u8) -> bool {
        self.watch();
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

/// One HTTP request with short timeouts (a member that hangs must not stall the sampler):
/// the status and body, or None when it does not answer.
fn call(method: &str, url: &str, body: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest.split_once('/')?;
    let addr = std::net::ToSocketAddrs::to_socket_addrs(authority)
        .ok()?
        .next()?;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .ok()?;
    write!(
        stream,
        "{method} /{path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    // Read up to the length the head gives, not to the end: etcd's peer port keeps the
    // connection open after its answer despite `Connection: close`, and reading to the end
    // cost every sample the read timeout (and lost its answer).
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(at) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..at]).to_string();
            let length = head.lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            });
            if length.is_some_and(|n| answer.len() >= at + 4 + n) {
                let n = length.unwrap_or_default();
                let body = String::from_utf8_lossy(&answer[at + 4..at + 4 + n]).to_string();
                let status = head.split(' ').nth(1)?.parse().ok()?;
                return Some((status, body));
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(_) => return None,
        }
    }
    // Closed without a length: the body is what came.
    let text = String::from_utf8_lossy(&answer).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// A member as the peer port lists it.
#[derive(Clone, Debug)]
struct Seen {
    id: u64,
    /// Empty while it has not started (published its name).
    name: String,
    peer: String,
    client: Option<String>,
}

/// Watches the cluster from beside it while events converge (a thread, every 200 ms, and
/// on demand): the member list from a peer port, and each known member's status, asked of
/// that member itself. Two unstarted members in a list is a breach, found as it happens
/// rather than after; the probes are what the tool's removals are judged by.
struct Sampler {
    /// Off during the bootstrap (its initial members are all unstarted until they publish)
    /// and while the soak itself plays the operator.
    on: bool,
    /// Peer URLs to ask for the member list: the live instances'.
    peers: Vec<String>,
    /// Every member seen in a list since the last convergence. A list is not trusted to
    /// say who left: a member just restarted lists the membership of its last snapshot
    /// until it has read its log (3.4 after a power cycle, any etcd after a
    /// `--force-new-cluster`); removals are read from the tool's log instead.
    known: BTreeMap<u64, Seen>,
    /// Each known member's last probe: true when it answered its status as itself, with a
    /// leader.
    healthy: BTreeMap<u64, bool>,
    samples: usize,
    breaches: Vec<String>,
}

impl Sampler {
    fn new() -> Sampler {
        Sampler {
            on: false,
            peers: Vec::new(),
            known: BTreeMap::new(),
            healthy: BTreeMap::new(),
            samples: 0,
            breaches: Vec::new(),
        }
    }

    /// Starts afresh: nothing seen yet.
    fn reset(&mut self, on: bool) {
        self.on = on;
        self.known.clear();
        self.healthy.clear();
    }

    fn list(&self) -> Option<Vec<Seen>> {
        self.peers.iter().find_map(|peer| {
            let (status, body) = call("GET", &format!("{peer}/members"), "")?;
            if status != 200 {
                return None;
            }
            let value: serde_json::Value = serde_json::from_str(&body).ok()?;
            let list: Vec<Seen> = value
                .as_array()?
                .iter()
                .filter_map(|m| {
                    Some(Seen {
                        id: m["id"].as_u64()?,
                        name: m["name"].as_str().unwrap_or_default().to_string(),
                        peer: m["peerURLs"][0].as_str()?.to_string(),
                        client: m["clientURLs"][0].as_str().map(str::to_string),
                    })
                })
                .collect();
            (!list.is_empty()).then_some(list)
        })
    }

    /// True when the member at `client` answers its status as member `id` with a leader:
    /// the member is the one asked about (not a new member at the same address) and serves.
    fn probe(client: &str, id: u64) -> bool {
        let Some((200, body)) = call("POST", &format!("{client}/v3/maintenance/status"), "{}")
        else {
            return false;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) else {
            return false;
        };
        // The JSON gateway writes uint64 as decimal strings.
        let number = |v: &serde_json::Value| {
            v.as_str()
                .and_then(|s| s.parse::<u64>().ok())
                .or_else(|| v.as_u64())
                .unwrap_or(0)
        };
        number(&v["header"]["member_id"]) == id && number(&v["leader"]) != 0
    }

    fn sample(&mut self) {
        if !self.on {
            return;
        }
        if let Some(now) = self.list() {
            self.samples += 1;
            let unstarted: Vec<&str> = now
                .iter()
                .filter(|m| m.name.is_empty())
                .map(|m| m.peer.as_str())
                .collect();
            if unstarted.len() > 1 {
                self.breaches.push(format!(
                    "{} unstarted members at once: {unstarted:?}",
                    unstarted.len()
                ));
            }
            for m in now {
                self.known.insert(m.id, m);
            }
        }
        // Every known member is asked itself, listed or not this time.
        self.healthy = self
            .known
            .values()
            .map(|m| {
                let up = m.client.as_ref().is_some_and(|c| Self::probe(c, m.id));
                (m.id, up)
            })
            .collect();
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
        sampler: Arc::new(Mutex::new(Sampler::new())),
        serving: BTreeMap::new(),
        rare: Rng(args.seed.wrapping_mul(0xD6E8_FEB8_6659_FD93) | 1),
    };
    let url = soak.counting.url();
    soak.set_aws(url);
    let sampler = soak.sampler.clone();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(200));
        sampler.lock().expect("the sampler").sample();
    });

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
        Ok(took) => {
            println!("   0 bootstrap: nodes {first:?}, converged in {took:.1} s");
            soak.sampler.lock().expect("the sampler").reset(true);
        }
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
        let converged = soak.converge(started);
        soak.sampled(&format!("event {i} ({})", kind.name()));
        match converged {
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
        "| member-list samples while events converged | {} |",
        soak.sampler.lock().expect("the sampler").samples
    );
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
    let throttled = soak.throttling.throttled.load(Ordering::SeqCst);
    let throttled_ec2 = soak.throttling.throttled_ec2.load(Ordering::SeqCst);
    println!(
        "| AWS calls throttled: EC2 (RequestLimitExceeded) / AutoScaling (Throttling) | {} / {} |",
        throttled_ec2,
        throttled - throttled_ec2
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
