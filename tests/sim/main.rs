//! A deterministic simulation of boots, crashes and AWS answers, checked against etcd's
//! membership rules (issue 21). The real `plan.rs` (with `model.rs` and `error.rs`, the
//! decision's whole closure) decides; `world.rs` models the group, etcd and the boot units.
//!
//! `cargo test --release --test sim -- [--schedules N] [--seed S] [--faults F]` (or
//! `./build.sh sim ...`): an exhaustive search of every schedule of a 3-node group with up to
//! `F` faults (default 2; states are deduplicated, so every transition from every reachable
//! state is checked), on etcd 3.4 and on 3.5.30+, then `N` random schedules of 5- and 7-node
//! groups. After every step: at most one cluster among running etcds, no quorum lost by the
//! tool's own change, no reachable member removed, every etcd that starts from a written file
//! starts. From every state: once faults stop, the group converges within a bound. The last
//! line is `sim: N schedules, V violations`; the exit code is 1 when V > 0.
//! `--operations` also searches the first boot with the operations. A warm pool that takes
//! scaled-in instances back with their disks (`ReuseOnScaleIn`) is one more search from a
//! formed cluster and half the random schedules with a named data directory.
//! A violation's report ends with its schedule as Rust to paste into `fixed_regressions`,
//! which every run reads back and replays; `--seed S --show N` runs random schedule N alone.

#[allow(dead_code, unused_imports)]
#[path = "../../src/error.rs"]
mod error;
#[allow(dead_code, unused_imports)]
#[path = "../../src/model.rs"]
mod model;
#[allow(dead_code, unused_imports)]
#[path = "../../src/plan.rs"]
mod plan;
mod world;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use world::{Event, Version, Violation, World};

/// Events a fault-free run may take to converge (a few runs of every node).
const CONVERGE_WITHIN: usize = 400;

/// xorshift64*: a seeded stream, the same on every machine.
struct Rng(u64);

impl Rng {
    /// The stream of `--seed S`.
    fn seeded(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Violations the simulation found in the shipped design that are not fixed yet (issue 21's
/// note has the design that closes them). Each is still counted and shown with its first
/// schedule on every run; only violations outside this list fail the run.
fn known(violation: &Violation) -> Option<&'static str> {
    let what = &violation.what;
    let changed_list =
        what.contains("member count is unequal") || what.contains("is no member of the cluster");
    if changed_list {
        // The file is a snapshot of the member list; another node's join or removal (a
        // replaced member, a wiped one re-added) changed the list before this etcd read it.
        // etcd refuses to start, the unit's restart runs the tool again, and the
        // new file agrees. Schedules with `follow_refused_starts` follow that restart instead.
        // Told by its cause: the world refuses a file whose list was neither the list its run
        // read nor the cluster's when written with another text
        // (`EnvFile::agreed_when_written`).
        return Some("K4: the member list changed between the file and etcd's start");
    }
    if what.contains("would both start `existing` without member data")
        && what.contains("a late initial member joined `existing`")
    {
        // Rule 18 starts a late initial member `new` only when etcd's IDs prove its list is
        // still the initial cluster (and, with a bucket, while no version is decided). After a
        // member was added or removed it joins `existing`, and its start may overlap another
        // `existing` start without data (a join, another late member): etcd 3.4 and 3.5 wait
        // for each other's version for ever, until systemd's start timeout.
        return Some("K13: a late initial member's `existing` start may overlap another");
    }
    if what.contains("a bootstrap member lost its data before the cluster formed") {
        // Rule 11: a node whose file names it and whose data is gone waits for its peers.
        // When a bootstrap member loses its data before the cluster formed and no peer runs,
        // nothing tells that from data lost after the cluster formed (the one that matters:
        // its peers hold the cluster): it waits for an operator rather than risk a second
        // cluster.
        return Some("K5: a bootstrap member's data lost before the cluster formed: it waits");
    }
    // A second (dead) cluster, or a group left waiting for the node stuck in it; anything
    // else after such a loss is still a bug.
    let split_or_stuck = what.contains("two clusters") || what.contains("no convergence");
    let lost_bootstrap =
        what.contains("a majority of the recorded bootstrap's instances was terminated");
    let stuck_for_good = what.contains("rule 20 cannot prove it");
    if lost_bootstrap && stuck_for_good && split_or_stuck {
        // Rule 14's record lets the initial members take part in the seed's bootstrap without
        // the seed. If most of its instances are then terminated before it formed, it never
        // can: the next seed bootstraps anew (no data is at stake), and a node whose etcd
        // runs in the dead bootstrap waits there (no second cluster: `can_never_form`) until
        // etcd's start times out and it leaves (rule 20). Where rule 20 cannot prove the
        // bootstrap dead (a warm pool that reuses instances keeps them, with their data, and
        // the bootstrap may still get a leader there: K12's shape; no named data directory,
        // no log to read), it stays until a person wipes it. Anywhere else a second cluster
        // or a group that does not converge after such a loss fails the run.
        return Some("K6: a majority of a recorded bootstrap lost before it formed");
    }
    if split_or_stuck && what.contains("a formed cluster's quorum was parked in the warm pool") {
        // A warm pool with `ReuseOnScaleIn` stops scaled-in instances with their disks. A
        // `leave` refused for now holds its instance while its etcd runs (rule 8); when faults
        // end the hold (its etcd killed or rebooted) or a member's data is lost meanwhile, the
        // members that could make the quorum sit on stopped instances: the cluster waits for
        // a scale-out to put them in service, which no tool on the running instances can do.
        // Scale in one member at a time.
        return Some("K12: a formed cluster's quorum parked in the warm pool");
    }
    if split_or_stuck && what.contains("a formed cluster's majority left the group") {
        // Terminations (no leave), or scale-ins whose hold ended (rule 8: their etcd went
        // down), took most of a formed cluster's members (a one-member group's only one, whose
        // leave is refused for good, two of three), their data goes with their instances, and the instances left bootstrap anew (from
        // the bucket's snapshot, with one) beside what still runs, without a quorum, on a
        // member they cannot reach. Scale in one member at a time.
        return Some("K8: a formed cluster's majority left the group at once");
    }
    None
}

/// A schedule that broke an invariant, with the state before its last event.
struct Found {
    /// Where the schedule starts: a first boot, or a cluster already formed.
    start: World,
    schedule: Vec<Event>,
    /// How many of the schedule's last events are the fault-free completion (`settle`),
    /// which a replay runs by itself: 0 when an event broke an invariant.
    completion: usize,
    violation: Violation,
}

impl Found {
    /// The same violation from a shorter schedule (`shrink`).
    fn shrunk(self) -> Found {
        let schedule = shrink(&self.start, self.schedule.clone());
        match replay_counted(&self.start, &schedule) {
            Some((violation, schedule, completion)) => Found {
                start: self.start,
                schedule,
                completion,
                violation,
            },
            None => self,
        }
    }

    /// Prints the violation, the state it broke in and its schedule, the last as Rust to
    /// paste as a replayed regression. False when that printed replay, read back, does not
    /// reproduce the violation, or its start cannot be built again: the report would
    /// mislead, which fails the run.
    #[must_use]
    fn report(&self) -> bool {
        println!(
            "VIOLATION ({:?}, {} nodes{}{}{}{}{}{}{}): {}",
            self.start.version,
            self.start.nodes.len(),
            if self.start.ec2_late {
                ", EC2 late"
            } else {
                ""
            },
            match (self.start.dns, self.start.dns_names) {
                (true, true) => ", by DNS name",
                (true, false) => ", DNS names asked, none given",
                _ => "",
            },
            if self.start.bucket {
                ", record in S3"
            } else {
                ""
            },
            if self.start.data_dir_named {
                ""
            } else {
                ", data directory not named"
            },
            if self.start.reuse_on_scale_in {
                ", scale-ins back to the warm pool"
            } else {
                ""
            },
            if self.start.learner {
                ", joins as learners"
            } else {
                ""
            },
            if self.start.follow_refused_starts {
                ", K4 followed"
            } else {
                ""
            },
            self.violation.what
        );
        println!("  start:\n{}", self.start.describe());
        println!("  schedule ({} events):", self.schedule.len());
        let mut w = self.start.clone();
        for (i, e) in self.schedule.iter().enumerate() {
            if i < 40 || i + 3 >= self.schedule.len() {
                println!("    {i:3}: {e:?}");
            } else if i == 40 {
                println!("    ... ({} more)", self.schedule.len() - 43);
            }
            if i + 1 == self.schedule.len() {
                println!("  state before the last event:\n{}", w.describe());
                println!("  what each node's discovery would decide then:");
                for x in w.nodes.iter().filter(|x| !x.terminated) {
                    println!("    i-{}: {}", x.n, w.decision(x.n));
                }
            }
            if w.apply(e).is_err() {
                break;
            }
            // SIM_TRACE=1: the whole state after each of the first 60 events, to read a run.
            if i < 60 && std::env::var_os("SIM_TRACE").is_some() {
                println!("{}", w.describe());
            }
        }
        self.print_replay()
    }

    /// The schedule as `fixed_regressions` writes its cases, up to the fault-free completion
    /// (`replay` runs that by itself); then read back from the printed names and replayed
    /// from the start as its printed lines build it, as a person pasting it would. False if that replay does not
    /// break the same invariant (the same kind, known or not as this one).
    fn print_replay(&self) -> bool {
        // Only a replayed regression's start is made by hand, and it is counted as a
        // violation anyway; a search's start that cannot be built again is a bug here.
        let Some((setup, version, size)) = Setup::of(&self.start) else {
            println!("  (its start is made by hand: see the regression it comes from)");
            return false;
        };
        let before_completion = &self.schedule[..self.schedule.len() - self.completion];
        let names: Vec<String> = before_completion.iter().map(|e| format!("{e:?}")).collect();
        println!("  to replay it (a case of `fixed_regressions` in tests/sim/main.rs):");
        for line in setup.as_rust(version, size) {
            println!("    {line}");
        }
        println!("    let schedule = vec![");
        for line in names.chunks(8) {
            println!("        {},", line.join(", "));
        }
        println!("    ];");
        if self.completion > 0 {
            println!(
                "  (`replay` then runs the fault-free completion: {} events)",
                self.completion
            );
        }
        // `Setup::of` built the start again and found it the same (its fingerprint).
        let start = &self.start;
        let again = read_schedule(start, &names).and_then(|schedule| replay(start, &schedule));
        let same = again.is_some_and(|(v, _)| {
            (kind(&v), known(&v)) == (kind(&self.violation), known(&self.violation))
        });
        if !same {
            println!(
                "  that replay, read back, does not break the same invariant: a bug in the report"
            );
        }
        same
    }
}

/// Events from their printed names (`{:?}`): at each turn the one the world enables by that
/// name. `None` when a name matches no enabled event.
fn read_schedule(start: &World, names: &[String]) -> Option<Vec<Event>> {
    let mut w = start.clone();
    let mut events = Vec::new();
    for name in names {
        let e = w
            .enabled(u32::MAX, true)
            .into_iter()
            .find(|e| format!("{e:?}") == *name)?;
        let broke = w.apply(&e).is_err();
        events.push(e);
        if broke {
            break;
        }
    }
    Some(events)
}

/// Runs a schedule from the start; events that are not enabled at their turn are skipped
/// (so a shrunk schedule still runs). `Some` when an invariant breaks, liveness included.
fn replay(start: &World, schedule: &[Event]) -> Option<(Violation, Vec<Event>)> {
    replay_counted(start, schedule).map(|(v, taken, _)| (v, taken))
}

/// `replay`, which also says how many of the events taken are the fault-free completion.
fn replay_counted(start: &World, schedule: &[Event]) -> Option<(Violation, Vec<Event>, usize)> {
    let mut w = start.clone();
    let mut taken = Vec::new();
    for e in schedule {
        if !w.enabled(u32::MAX, true).contains(e) {
            continue;
        }
        taken.push(e.clone());
        if let Err(v) = w.apply(e) {
            return Some((v, taken, 0));
        }
    }
    match settle(&w, None) {
        Ok(_) => None,
        Err((v, tail)) => {
            let completion = tail.len();
            taken.extend(tail);
            Some((v, taken, completion))
        }
    }
}

/// Fault-free completion: partitions heal, then the first enabled event in a fixed order,
/// until the group has converged. Err when an invariant breaks or it never converges.
///
/// `converging` (the exhaustive search's) holds states a completion already went through to
/// convergence: reaching one ends this completion too (its suffix converges), and every state
/// this completion passes joins them. Most of the search's states lie on earlier
/// completions' paths, so this spares most of the work.
fn settle(
    start: &World,
    mut converging: Option<&mut HashSet<u64>>,
) -> Result<World, (Violation, Vec<Event>)> {
    let mut w = start.clone();
    let mut tail = Vec::new();
    let mut passed = Vec::new();
    for x in w.nodes.clone().iter().filter(|x| x.partitioned) {
        let heal = Event::Partition(x.n);
        tail.push(heal.clone());
        w.apply(&heal).map_err(|v| (v, tail.clone()))?;
    }
    for turn in 0..CONVERGE_WITHIN {
        if let Some(converging) = converging.as_deref_mut() {
            let h = w.fingerprint();
            if converging.contains(&h) {
                converging.extend(passed);
                return Ok(w);
            }
            passed.push(h);
        }
        if w.converged() || w.disaster() {
            if let Some(converging) = converging {
                converging.extend(passed);
            }
            return Ok(w);
        }
        let events = w.enabled(0, false);
        if events.is_empty() {
            break;
        }
        // Round-robin over what can happen, so no node starves.
        let e = events[turn % events.len()].clone();
        tail.push(e.clone());
        w.apply(&e).map_err(|v| (v, tail.clone()))?;
    }
    Err((
        Violation {
            what: format!(
                "no convergence within {CONVERGE_WITHIN} fault-free events{}:\n{}",
                w.known_causes(),
                w.describe()
            ),
        },
        tail,
    ))
}

/// The kind of a violation, so that shrinking keeps the one it started from.
fn kind(violation: &Violation) -> &'static str {
    let what = &violation.what;
    [
        "two clusters",
        "without a quorum",
        "which is up and reachable",
        "refused to start",
        "which had published",
        "no convergence",
    ]
    .into_iter()
    .find(|k| what.contains(k))
    .unwrap_or("other")
}

/// Shrinks a failing schedule: drops chunks, then single events, while it still fails the
/// same way. What it returns ends before the fault-free completion (`replay` runs it).
fn shrink(start: &World, schedule: Vec<Event>) -> Vec<Event> {
    // The same kind, and known or not as the original: a shrink must not wander into a
    // known weakness and hide the new one.
    let Some((violation, mut best, completion)) = replay_counted(start, &schedule) else {
        return schedule;
    };
    let target = (kind(&violation), known(&violation));
    best.truncate(best.len() - completion);
    let mut chunk = best.len() / 2;
    while chunk >= 1 {
        let mut i = 0;
        while i < best.len() {
            let mut candidate = best.clone();
            candidate.drain(i..(i + chunk).min(candidate.len()));
            // Without its fault-free completion, which every replay runs again.
            match replay_counted(start, &candidate) {
                Some((v, mut taken, completion))
                    if taken.len() - completion < best.len() && (kind(&v), known(&v)) == target =>
                {
                    taken.truncate(taken.len() - completion);
                    best = taken;
                }
                _ => i += chunk,
            }
        }
        chunk /= 2;
    }
    best
}

/// Every schedule of a `size`-node group with up to `faults` faults, breadth first (so the
/// first violation found has a shortest schedule). Returns (states, transitions, violation).
/// What one exhaustive search saw.
struct Search {
    states: usize,
    transitions: usize,
    /// The first violation outside the known list; the search stops there.
    found: Option<Found>,
    /// Known violations: signature, how often, and the first schedule.
    known: Vec<(&'static str, usize, Found)>,
}

fn note_known(
    known: &mut Vec<(&'static str, usize, Found)>,
    signature: &'static str,
    found: Found,
) {
    match known.iter_mut().find(|(s, _, _)| *s == signature) {
        Some((_, count, _)) => *count += 1,
        None => known.push((signature, 1, found)),
    }
}

/// A violation reached from `start`: noted when it is a known one, returned when it is new.
fn classify(
    known_found: &mut Vec<(&'static str, usize, Found)>,
    start: &World,
    (schedule, completion): (Vec<Event>, usize),
    violation: Violation,
) -> Option<Found> {
    let found = Found {
        start: start.clone(),
        schedule,
        completion,
        violation,
    };
    match known(&found.violation) {
        Some(signature) => {
            note_known(known_found, signature, found);
            None
        }
        None => Some(found),
    }
}

/// Where an exhaustive search starts, and how the group is set up.
#[derive(Clone, Copy, Default)]
struct Setup {
    ec2_late: bool,
    /// From a cluster already formed, not from the first boot.
    formed: bool,
    operations: bool,
    /// Peers addressed by DNS name.
    dns: bool,
    /// No `--etcd-data-dir`: every look says `LocalData::Unknown`.
    data_dir_not_named: bool,
    /// One fault more than the run's `--faults`: cheap from a formed cluster (about 66,000
    /// states at 3), where the rarer rules (19's power cut, 13 after a lost quorum) need
    /// three.
    one_more_fault: bool,
    /// Scaled-in instances go back to the warm pool with their disks (`ReuseOnScaleIn`).
    reuse_on_scale_in: bool,
    /// `--learner`: joins add learners, which the promote unit makes voters.
    learner: bool,
    /// A start etcd refuses because the member list changed (K4) is followed through the
    /// unit's restart.
    follow_refused_starts: bool,
    /// `--snapshot-url`: rule 14's record is the bucket's object, and bootstraps restore.
    bucket: bool,
    /// Peers addressed by DNS name in a VPC that gives none (the tool falls back to IPs).
    no_dns_names: bool,
}

impl Setup {
    /// The group this setup starts from: its first boot, or the cluster a fault-free first
    /// boot forms.
    fn world(&self, version: Version, size: u8) -> World {
        let mut fresh = World::new(version, size, self.ec2_late, self.dns);
        if self.no_dns_names {
            fresh = fresh.without_dns_names();
        }
        if self.data_dir_not_named {
            fresh = fresh.without_named_data_dir();
        }
        fresh.operations = self.operations;
        fresh.bucket = self.bucket;
        fresh.reuse_on_scale_in = self.reuse_on_scale_in;
        fresh.learner = self.learner;
        fresh.follow_refused_starts = self.follow_refused_starts;
        if !self.formed {
            return fresh;
        }
        let formed = settle(&fresh, None)
            .unwrap_or_else(|(v, _)| panic!("a fault-free bootstrap: {}", v.what));
        assert!(formed.converged(), "a fault-free bootstrap converges");
        formed
    }

    /// The setup, etcd version and size `start` was built from, when `world` builds exactly
    /// it again (a replayed regression's hand-made start is not).
    fn of(start: &World) -> Option<(Setup, Version, u8)> {
        let setup = Setup {
            ec2_late: start.ec2_late,
            formed: !start.clusters.is_empty(),
            operations: start.operations,
            dns: start.dns,
            data_dir_not_named: !start.data_dir_named,
            one_more_fault: false,
            reuse_on_scale_in: start.reuse_on_scale_in,
            learner: start.learner,
            follow_refused_starts: start.follow_refused_starts,
            bucket: start.bucket,
            no_dns_names: !start.dns_names,
        };
        let size = u8::try_from(start.nodes.len()).ok()?;
        let again = setup.world(start.version, size);
        (again.fingerprint() == start.fingerprint()).then_some((setup, start.version, size))
    }

    /// `world` as the replayed regressions write it, to paste into `fixed_regressions`.
    fn as_rust(&self, version: Version, size: u8) -> Vec<String> {
        let mut lines = vec![format!(
            "let mut start = World::new(Version::{version:?}, {size}, {}, {});",
            self.ec2_late, self.dns
        )];
        if self.no_dns_names {
            lines.push("start = start.without_dns_names();".into());
        }
        if self.data_dir_not_named {
            lines.push("start = start.without_named_data_dir();".into());
        }
        for (on, field) in [
            (self.operations, "operations"),
            (self.bucket, "bucket"),
            (self.reuse_on_scale_in, "reuse_on_scale_in"),
            (self.learner, "learner"),
            (self.follow_refused_starts, "follow_refused_starts"),
        ] {
            if on {
                lines.push(format!("start.{field} = true;"));
            }
        }
        if self.formed {
            lines.push(
                "let start = settle(&start, None).expect(\"a fault-free bootstrap\");".into(),
            );
        }
        lines
    }

    fn describe(&self) -> String {
        [
            (
                true,
                if self.formed {
                    "from a formed cluster"
                } else {
                    "from the first boot"
                },
            ),
            (self.ec2_late, "EC2 late"),
            (self.operations, "with operations"),
            (self.dns, "by DNS name"),
            (self.data_dir_not_named, "data directory not named"),
            (self.reuse_on_scale_in, "scale-ins back to the warm pool"),
            (self.learner, "joins as learners"),
            (
                self.follow_refused_starts,
                "K4 followed through the restart",
            ),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, what)| *what)
        .collect::<Vec<_>>()
        .join(", ")
    }
}

fn exhaustive(version: Version, size: u8, faults: u32, setup: Setup) -> Search {
    let start = setup.world(version, size);
    let mut parent: HashMap<u64, (u64, Event)> = HashMap::new();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut converges: HashSet<u64> = HashSet::new();
    let mut queue = VecDeque::new();
    seen.insert(start.fingerprint());
    let first = start.clone();
    queue.push_back(start);
    let mut transitions = 0;
    let mut known_found = Vec::new();
    let path_to = |parent: &HashMap<u64, (u64, Event)>, mut h: u64| {
        let mut path = Vec::new();
        while let Some((p, e)) = parent.get(&h) {
            path.push(e.clone());
            h = *p;
        }
        path.reverse();
        path
    };
    while let Some(w) = queue.pop_front() {
        let h = w.fingerprint();
        // Liveness from here, remembered along the way: most completions share a suffix.
        if !converges.contains(&h) {
            match settle(&w, Some(&mut converges)) {
                Ok(_) => {}
                Err((violation, tail)) => {
                    let mut schedule = path_to(&parent, h);
                    let completion = tail.len();
                    schedule.extend(tail);
                    match classify(&mut known_found, &first, (schedule, completion), violation) {
                        None => continue, // known: this state is not expanded
                        found => {
                            return Search {
                                states: seen.len(),
                                transitions,
                                found,
                                known: known_found,
                            }
                        }
                    }
                }
            }
        }
        for e in w.enabled(faults, size <= 3) {
            transitions += 1;
            let mut next = w.clone();
            if let Err(violation) = next.apply(&e) {
                let mut schedule = path_to(&parent, h);
                schedule.push(e);
                match classify(&mut known_found, &first, (schedule, 0), violation) {
                    None => continue, // known: the state it leads to is not explored
                    found => {
                        return Search {
                            states: seen.len(),
                            transitions,
                            found,
                            known: known_found,
                        }
                    }
                }
            }
            let nh = next.fingerprint();
            if seen.insert(nh) {
                parent.insert(nh, (h, e));
                queue.push_back(next);
            }
        }
    }
    Search {
        states: seen.len(),
        transitions,
        found: None,
        known: known_found,
    }
}

/// How random schedule `i` of every seed is set up: each combination in turn.
fn random_setup(i: u64) -> (Version, u8, Setup) {
    let version = if i.is_multiple_of(2) {
        Version::V34
    } else {
        Version::V35Late
    };
    // 5 and 7 nodes, and one in eight a single node that scale-outs grow.
    let size = match i % 8 {
        7 => 1,
        i if i % 4 < 2 => 5,
        _ => 7,
    };
    // Addressed by DNS name in half, and in a quarter of those the VPC gives no names.
    let dns = (i / 4) % 2 == 1;
    let bucket = (i / 8) % 2 == 1;
    // No --etcd-data-dir in a quarter of those without a bucket (which needs one).
    let data_dir_named = bucket || (i / 32) % 4 != 3;
    let setup = Setup {
        ec2_late: i.is_multiple_of(3),
        operations: true,
        dns,
        no_dns_names: dns && (i / 16) % 4 == 3,
        data_dir_not_named: !data_dir_named,
        bucket,
        // Half of those with a named data directory have a warm pool that takes scaled-in
        // instances back with their disks (rule 15 needs the directory named).
        reuse_on_scale_in: data_dir_named && (i / 128) % 2 == 1,
        // Half join as learners, as the user data does.
        learner: (i / 256) % 2 == 1,
        // Half follow K4 through the unit's restart (the others count it, as known).
        follow_refused_starts: (i / 512) % 2 == 1,
        ..Setup::default()
    };
    (version, size, setup)
}

/// `--show N`: random schedule N of the seed alone, in full (shrunk, when it breaks an
/// invariant), with what each node's run would observe before its last event: the input of
/// a `plan.rs` table case. The schedules before it are drawn, not run, to reach its events.
fn show(seed: u64, n: u64) {
    let mut rng = Rng::seeded(seed);
    for i in 0..n {
        let (version, size, setup) = random_setup(i);
        random_events(&mut rng, &setup.world(version, size));
    }
    let (version, size, setup) = random_setup(n);
    let Some(found) = random_schedule(&mut rng, version, size, setup) else {
        println!(
            "sim: seed {seed}, schedule {n} ({}): no violation",
            setup.describe()
        );
        return;
    };
    let known = known(&found.violation).unwrap_or("not a known one");
    println!("sim: seed {seed}, schedule {n}, shrunk ({known}):");
    let found = found.shrunk();
    let reproduced = found.report();
    let mut w = found.start.clone();
    for e in &found.schedule[..found.schedule.len().saturating_sub(1)] {
        if w.apply(e).is_err() {
            break;
        }
    }
    for x in w.nodes.iter().filter(|x| !x.terminated) {
        println!("  i-{} would observe:\n{}", x.n, w.observation(x.n));
    }
    if !reproduced {
        std::process::exit(1);
    }
}

/// One random schedule, replayed: `Some` when it breaks an invariant.
fn random_schedule(rng: &mut Rng, version: Version, size: u8, setup: Setup) -> Option<Found> {
    let start = setup.world(version, size);
    let schedule = random_events(rng, &start);
    let (violation, schedule, completion) = replay_counted(&start, &schedule)?;
    Some(Found {
        start,
        schedule,
        completion,
        violation,
    })
}

/// The events of one random schedule from `start`: 20 to 80 of them, a fault or an
/// operation one time in six when one is enabled, until an invariant breaks.
fn random_events(rng: &mut Rng, start: &World) -> Vec<Event> {
    let mut w = start.clone();
    let mut schedule = Vec::new();
    let length = 20 + rng.below(60);
    for _ in 0..length {
        let events = w.enabled(u32::MAX, true);
        let (faults, steps): (Vec<Event>, Vec<Event>) =
            events.into_iter().partition(Event::is_fault);
        let pool = if !faults.is_empty() && (steps.is_empty() || rng.below(6) == 0) {
            faults
        } else {
            steps
        };
        if pool.is_empty() {
            break;
        }
        // A leader decides the cluster's version within moments of forming: drawn first half
        // the time, so that the window rule 18 waits out stays a few events wide, as it is
        // short in etcd (the exhaustive search tries every width).
        let e = match pool.iter().find(|e| **e == Event::DecideVersion) {
            Some(decide) if rng.below(2) == 0 => decide.clone(),
            _ => pool[rng.below(pool.len())].clone(),
        };
        schedule.push(e.clone());
        if w.apply(&e).is_err() {
            break;
        }
    }
    schedule
}

/// Schedules the random search found once in 100,000 or more, replayed on every run: each
/// made two clusters with rule 14's record in the group's tags (K10) until the seed read the
/// group again just before recording (`plan::may_record`); in a bucket, where a seed writes
/// it only if nobody recorded since its look, they never did. The count of violations.
fn conditional_record_regressions() -> u64 {
    use Event::*;
    // A warm instance launched before the replacement seed enters service while the seed
    // bootstraps: both decided, both recorded, both read their own record back.
    let k10 = (
        "K10 (seed 2)",
        World::new(Version::V35Late, 1, false, false),
        vec![
            WarmLaunch,
            Terminate(1),
            Launch,
            Step(3),
            ScaleOut,
            Step(2),
            Step(2),
            Step(2),
            Step(3),
            Step(2),
            Step(3),
            Step(3),
            StartEtcd(3),
            StartEtcd(2),
        ],
    );
    // The same, the older instance's record and read-back done before the seed's record.
    let k10_again = (
        "K10 (seed 4)",
        World::new(Version::V35Late, 1, false, false),
        vec![
            Terminate(1),
            WarmLaunch,
            Launch,
            Step(3),
            ScaleOut,
            Step(2),
            Step(2),
            Step(2),
            Step(3),
            Step(3),
            Step(2),
            StartEtcd(2),
            Step(3),
            StartEtcd(3),
        ],
    );
    let mut violations = 0;
    for (name, mut start, schedule) in [k10, k10_again] {
        start.operations = true;
        let in_tags = replay_counted(&start, &schedule);
        start.bucket = true;
        let in_bucket = replay_counted(&start, &schedule);
        let said = |found: &Option<_>| found.as_ref().map_or("no violation", |_| "a violation");
        println!(
            "sim: {name}, record in tags: {}; in a bucket: {}",
            said(&in_tags),
            said(&in_bucket)
        );
        for (bucket, found) in [(false, in_tags), (true, in_bucket)] {
            if let Some((violation, taken, completion)) = found {
                start.bucket = bucket;
                // Counted whether or not its printed replay reproduces it.
                let _ = Found {
                    start: start.clone(),
                    schedule: taken,
                    completion,
                    violation,
                }
                .report();
                violations += 1;
            }
        }
    }
    violations
}

/// Schedules of violations found and fixed, replayed on every run: each must now end without
/// a violation outside the known list. The count of those that do not.
fn fixed_regressions() -> u64 {
    use Event::*;
    // Seed 8, schedule 59872 (data directory not named): i-4, an initial member cut off
    // from the start, never ran; a reconcile and a leave removed i-2 and i-1, and i-3 was
    // terminated, which left i-5 running alone. i-4 heard nobody and, with the last join's
    // record naming nobody counted, bootstrapped beside it. Removals record the members
    // they leave now (rule 17), so i-4 waits for i-5. That cluster lost its leader before
    // deciding its version, and the removals changed its initial membership, so no `new`
    // start would join it (rule 18's late initial member needs the initial cluster): i-4
    // waits for a member that ran to come back. No second cluster.
    let mut removals = World::new(Version::V34, 5, false, false).without_named_data_dir();
    removals.operations = true;
    let removals_schedule = vec![
        Partition(4),
        Step(1),
        Step(1),
        Step(5),
        Step(3),
        Step(1),
        Step(1),
        Step(5),
        Step(3),
        ScaleIn(1),
        StartEtcd(1),
        StartEtcd(3),
        StartEtcd(5),
        Terminate(2),
        Launch,
        Reconcile,
        Leave(1),
        Terminate(3),
        Launch,
        FinishTerminate(1),
        Step(4),
        Step(4),
        Step(4),
        Step(4),
        StartEtcd(4),
    ];
    // Rule 19 (seed 7, schedule 3056, in the shape of the lab's test): a cluster a seed tool
    // bootstrapped (no record in the group's tags) and whose tool names no data directory;
    // i-3 is replaced by i-4 while a power cut takes the others down. i-1, launched first,
    // used to decide a new bootstrap as the seed, and i-4 took part in it beside the old
    // cluster. Now i-1 and i-2 start as their files said, and i-4 waits, then joins.
    let fresh = World::new(Version::V34, 3, false, false).without_named_data_dir();
    let mut seed_tools =
        settle(&fresh, None).unwrap_or_else(|(v, _)| panic!("a fault-free bootstrap: {}", v.what));
    seed_tools.record = None;
    seed_tools.members_record = None;
    let steps = |n: u8| [Step(n), Step(n), Step(n), Step(n), Step(n), Step(n)];
    let power_cut_schedule = [
        vec![Terminate(3), Launch, Reboot(1), Reboot(2)],
        steps(1).to_vec(),
        steps(2).to_vec(),
        steps(4).to_vec(),
        vec![StartEtcd(1), StartEtcd(2), StartEtcd(4)],
    ]
    .concat();
    // Seed 2, schedule 51447 (tenth session; one node grown by scale-outs, EC2 late, peers by
    // DNS name in a VPC that gives none): i-2 joined while EC2 told it by IP (i-1 had an
    // address and no name); i-1 was terminated, and i-2's etcd, cut off, failed. Its next
    // run heard nobody and kept its file (rule 19), but advertised the name instance
    // metadata gives, which its member's URL is not. The file's initial cluster says it now.
    let mut kept_by_ip = World::new(Version::V35Late, 1, true, true)
        .without_dns_names()
        .without_named_data_dir();
    kept_by_ip.operations = true;
    let kept_by_ip_schedule = vec![
        Visible(1),
        Step(1),
        Step(1),
        Step(1),
        Step(1),
        ScaleOut,
        Launch,
        StartEtcd(1),
        DecideVersion,
        Step(2),
        Step(2),
        Step(2),
        Terminate(1),
        StartEtcd(2),
        Step(2),
        Step(2),
    ];
    // Seed 7, schedule 44759 (tenth session; warm pool reusing instances): i-2, the single
    // member, was scaled into the pool; i-4 bootstrapped anew; i-2, back in service with the
    // old member's data, set it aside and joined before the new cluster decided its version:
    // etcd refused the start without data. Such a start asks for the version now (rule 18).
    let mut pool_single = World::new(Version::V35Late, 1, false, true);
    pool_single.operations = true;
    pool_single.reuse_on_scale_in = true;
    let pool_single_schedule = vec![
        Terminate(1),
        Launch,
        Step(2),
        Step(2),
        Step(2),
        Step(2),
        ScaleOut,
        Launch,
        StartEtcd(2),
        ScaleIn(2),
        Leave(2),
        FinishTerminate(2),
        Terminate(3),
        Launch,
        Step(4),
        Step(4),
        Step(4),
        Step(4),
        StartEtcd(4),
        ScaleOut,
        Step(2),
        Step(2),
        Step(2),
        StartEtcd(2),
    ];
    // Seed 6, schedule 8009 (eleventh session, found at the tenth's end commit too): three
    // of a five-member bootstrap ran and decided the version; i-2 looked then and wrote
    // `existing`; then the three lost their data or their instances. i-4 started `new` (the
    // same ID, empty), and etcd on i-2 asked it for a version it never had. The cluster was
    // lost to faults: the refusal is followed through the restart, as liveness is not owed.
    let mut version_lost = World::new(Version::V35Late, 5, false, false);
    version_lost.operations = true;
    version_lost.bucket = true;
    version_lost.learner = true;
    version_lost.follow_refused_starts = true;
    let version_lost_schedule = vec![
        Step(1),
        Step(1),
        Step(5),
        Step(3),
        Step(3),
        Step(5),
        StartEtcd(5),
        Step(1),
        Step(4),
        StartEtcd(3),
        ScaleIn(3),
        Step(4),
        Step(1),
        StartEtcd(1),
        DecideVersion,
        Step(2),
        WipeData(5),
        Leave(3),
        WipeData(1),
        FinishTerminate(3),
        Step(2),
        StartEtcd(4),
        StartEtcd(2),
    ];
    // Rule 20, in the shape of the lab's test (twelfth session): the seed i-1 recorded
    // {1, 2, 3} and its etcd ran alone; i-2 and i-3 were terminated before they took part,
    // and i-4 and i-5 replaced them. i-1's etcd waited in that bootstrap for ever, and the
    // replacements for it. Its start times out, it leaves, and the group bootstraps anew.
    // The random search rarely got here while a dead bootstrap's second cluster ID ended a
    // schedule as K6 (before `can_never_form`).
    let dead_bootstrap = World::new(Version::V34, 3, false, false);
    let dead_bootstrap_schedule = [
        vec![Step(1); 6],
        vec![StartEtcd(1), Terminate(2), Terminate(3), Launch, Launch],
    ]
    .concat();
    // Seed ?, the thirteenth session's model (a leave or reconcile killed in the middle):
    // i-4, an initial member cut off while the other four formed the cluster, ran in it
    // without a leader ever reaching it. Two scale-ins shrank the cluster to i-3, i-4 and
    // i-5, and i-3 was terminated: two of the five initial instances are left, as in a
    // bootstrap that can never form. While the removals recorded the members they left only
    // once done, both leaves killed in between left no record naming i-4: it left, and
    // bootstrapped anew beside i-5's cluster. The record goes first now: an interrupted
    // leave removes nobody (the group then lost most of its cluster at once: K8).
    let mut unrecorded = World::new(Version::V34, 5, false, false);
    unrecorded.operations = true;
    let unrecorded_schedule = [
        vec![Partition(4)],
        [1, 2, 3, 4, 5]
            .iter()
            .flat_map(|&n| vec![Step(n); 6])
            .collect(),
        vec![
            StartEtcd(1),
            StartEtcd(2),
            StartEtcd(3),
            StartEtcd(4),
            StartEtcd(5),
            DecideVersion,
            ScaleIn(1),
            LeaveInterrupted(1),
            FinishTerminate(1),
            ScaleIn(2),
            LeaveInterrupted(2),
            FinishTerminate(2),
            Terminate(3),
            Launch,
            KillEtcd(4),
        ],
        vec![Step(4); 6],
    ]
    .concat();
    // Fifteenth session, the lab's finding: a cluster restored from a snapshot names no
    // member until it publishes. i-4 and i-5, initial members of a bootstrap of five that
    // restored the bucket's snapshot after the group was lost whole, look once the other
    // three formed it, decided its version and uploaded a newer snapshot. Sought by name,
    // neither was a late member, and both wrote `existing` without data (K13's wait for
    // each other on 3.4 and 3.5): by the ID etcd gives an initial member at its URL, each
    // starts `new` from the snapshot the record names.
    let mut restored_late = World::new(Version::V34, 5, false, false);
    restored_late.bucket = true;
    restored_late.ever_formed = true;
    restored_late.snapshots = 1;
    let restored_late_schedule = [
        [1, 2, 3].iter().flat_map(|&n| vec![Step(n); 6]).collect(),
        vec![
            StartEtcd(1),
            StartEtcd(2),
            StartEtcd(3),
            DecideVersion,
            Snapshot,
        ],
        [4, 5].iter().flat_map(|&n| vec![Step(n); 6]).collect(),
    ]
    .concat();
    // Seed 1, schedule 1215 (found while the leave hook was held, seventeenth session; the
    // same schedule fails without the hold): i-2's bootstrap with i-3 died with i-3's
    // instance, and i-2, rebooted mid-run, was made an initial member of the group's new
    // bootstrap with i-4 and i-5, which formed without it. Rule 20 set its dead bootstrap's
    // data aside and decided as a node without data, but the run had asked what a node with
    // data asks: no cluster version, so no late initial member (rule 18), and it wrote
    // `existing` without data, which etcd refuses while no version is decided. Rule 20's
    // run asks the version as a node without data does now, and i-2 starts `new`.
    let mut rule_20_late = World::new(Version::V35Late, 1, true, true).without_dns_names();
    rule_20_late.operations = true;
    rule_20_late.bucket = true;
    rule_20_late.reuse_on_scale_in = true;
    let rule_20_late_schedule = vec![
        ScaleOut,
        Terminate(1),
        Launch,
        Visible(2),
        Launch,
        Visible(3),
        Step(2),
        Step(2),
        Step(2),
        Step(2),
        StartEtcd(2),
        Terminate(3),
        Reboot(2),
        ScaleOut,
        Launch,
        Launch,
        Visible(5),
        Visible(4),
        Step(2),
        Step(2),
        Step(4),
        Step(4),
        Step(5),
        Reboot(2),
        Step(5),
        StartEtcd(5),
        StartEtcd(4),
        Step(2),
        Step(2),
        StartEtcd(2),
    ];
    // Seed 1, schedule 90214 (a model fix, seventeenth session): i-8 joined, was cut off,
    // and its etcd's start found nobody; its next run heard nobody either and, with no data
    // directory named, wrote its previous file again ("etcd starts as that file said"),
    // while a reconcile removed a member meanwhile. etcd refuses the list (K4, its unit's
    // restart writes the new one), but the model took a file written from no list read for
    // the tool's error: such a file passes on the read of the run that first wrote it.
    let mut kept_unnamed = World::new(Version::V34, 7, false, true).without_named_data_dir();
    kept_unnamed.operations = true;
    let kept_unnamed_schedule = vec![
        Step(1),
        Step(1),
        Step(7),
        Step(7),
        Step(1),
        Step(3),
        Step(5),
        Step(1),
        Step(6),
        Step(5),
        StartEtcd(7),
        Step(3),
        StartEtcd(5),
        StartEtcd(3),
        StartEtcd(1),
        DecideVersion,
        Terminate(2),
        Step(4),
        Launch,
        Step(4),
        StartEtcd(4),
        Step(8),
        Step(6),
        StartEtcd(6),
        Step(8),
        Step(8),
        Terminate(1),
        Step(8),
        Reconcile,
        Partition(8),
        StartEtcd(8),
        Step(8),
        Partition(8),
        Step(8),
        Launch,
        StartEtcd(8),
    ];
    // Seed 3, schedule 85417 (found in the seventeenth session; the same schedule fails on
    // the sixteenth's code): with a bucket, i-1, i-3 and i-5 formed the group's bootstrap of
    // five, which restored nothing, and the cluster uploaded a snapshot. i-5 lost its data
    // and i-1 and i-3 were terminated; i-4, a late initial member, started, and its peer port
    // listed the bootstrap, its members on the terminated instances unnamed. i-5 took part
    // in it, but its initial cluster (those two named by URL only) did not match the
    // bucket's record, and it restored the newest snapshot: other data under the same IDs.
    // The record is matched by URL where the list names nobody.
    let mut unnamed_restore = World::new(Version::V35Late, 5, false, false);
    unnamed_restore.operations = true;
    unnamed_restore.bucket = true;
    unnamed_restore.reuse_on_scale_in = true;
    unnamed_restore.learner = true;
    let unnamed_restore_schedule = vec![
        Step(1),
        Step(1),
        Step(5),
        Step(1),
        Step(5),
        Step(3),
        Step(3),
        Step(1),
        StartEtcd(3),
        StartEtcd(5),
        Step(4),
        StartEtcd(1),
        DecideVersion,
        Snapshot,
        Step(4),
        WipeData(5),
        Terminate(1),
        Terminate(3),
        StartEtcd(4),
        Step(5),
        Step(5),
        StartEtcd(5),
    ];
    let mut violations = 0;
    for (name, start, schedule) in [
        (
            "seed 3's restore of a bootstrap listed unnamed",
            unnamed_restore,
            unnamed_restore_schedule,
        ),
        (
            "seed 1's file kept with no data directory named",
            kept_unnamed,
            kept_unnamed_schedule,
        ),
        (
            "rule 20's member, late in the group's next bootstrap",
            rule_20_late,
            rule_20_late_schedule,
        ),
        (
            "two late members of a group restored whole",
            restored_late,
            restored_late_schedule,
        ),
        (
            "rule 20's seed alone in a dead bootstrap",
            dead_bootstrap,
            dead_bootstrap_schedule,
        ),
        ("seed 8's removal record", removals, removals_schedule),
        (
            "a cut-off member beside interrupted leaves",
            unrecorded,
            unrecorded_schedule,
        ),
        (
            "a seed tool's cluster after a power cut",
            seed_tools,
            power_cut_schedule,
        ),
        (
            "seed 2's kept file, named by IP",
            kept_by_ip,
            kept_by_ip_schedule,
        ),
        (
            "seed 7's single member back from the pool",
            pool_single,
            pool_single_schedule,
        ),
        (
            "seed 6's version asked of a lost cluster",
            version_lost,
            version_lost_schedule,
        ),
    ] {
        let found = replay_counted(&start, &schedule).filter(|(v, _, _)| known(v).is_none());
        println!(
            "sim: regression, {name}: {}",
            found
                .as_ref()
                .map_or("no new violation", |_| "a new violation")
        );
        if let Some((violation, taken, completion)) = found {
            // Counted whether or not its printed replay reproduces it.
            let _ = Found {
                start,
                schedule: taken,
                completion,
                violation,
            }
            .report();
            violations += 1;
        }
    }
    violations
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut schedules = 300u64;
    let mut seed = 1u64;
    let mut faults = 2u32;
    let mut operations = false;
    let mut show_one = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} takes a number"))
        };
        match arg.as_str() {
            "--schedules" => schedules = value("--schedules"),
            "--seed" => seed = value("--seed"),
            "--faults" => faults = value("--faults") as u32,
            "--operations" => operations = true,
            "--show" => show_one = Some(value("--show")),
            // cargo test passes its own flags to a harness-less target: ignore them.
            _ => {}
        }
    }
    if let Some(n) = show_one {
        show(seed, n);
        return;
    }
    let started = Instant::now();
    let mut violations = conditional_record_regressions() + fixed_regressions();
    let mut known_total: Vec<(&'static str, usize, Found)> = Vec::new();
    for version in [Version::V34, Version::V35Late] {
        // The operations multiply a first boot's states by five or more: searched only on
        // request; from a formed cluster, and in every random schedule, always.
        let first_boot = Setup::default();
        let formed = Setup {
            formed: true,
            ..first_boot
        };
        let with_operations = Setup {
            operations: true,
            ..formed
        };
        let mut searches = vec![
            formed,
            first_boot,
            Setup {
                ec2_late: true,
                ..first_boot
            },
            Setup {
                data_dir_not_named: true,
                ..first_boot
            },
            with_operations,
            Setup {
                dns: true,
                ..with_operations
            },
            Setup {
                one_more_fault: true,
                ..formed
            },
            Setup {
                one_more_fault: true,
                data_dir_not_named: true,
                ..formed
            },
            Setup {
                reuse_on_scale_in: true,
                ..with_operations
            },
            Setup {
                learner: true,
                ..with_operations
            },
            Setup {
                learner: true,
                one_more_fault: true,
                ..formed
            },
            Setup {
                follow_refused_starts: true,
                ..with_operations
            },
            Setup {
                follow_refused_starts: true,
                learner: true,
                ..with_operations
            },
        ];
        if operations {
            searches.extend([
                Setup {
                    operations: true,
                    ..first_boot
                },
                Setup {
                    operations: true,
                    ec2_late: true,
                    ..first_boot
                },
            ]);
        }
        for setup in searches {
            let faults = faults + u32::from(setup.one_more_fault);
            let search = exhaustive(version, 3, faults, setup);
            let known_count: Vec<String> = search
                .known
                .iter()
                .map(|(signature, n, _)| {
                    format!("{}x{n}", signature.split(':').next().unwrap_or(signature))
                })
                .collect();
            let known_count = if known_count.is_empty() {
                "0".to_string()
            } else {
                known_count.join(" ")
            };
            println!(
                "sim: exhaustive, {version:?}, 3 nodes, up to {faults} faults, {}: {} states, {} transitions, {} known, {}",
                setup.describe(),
                search.states,
                search.transitions,
                known_count,
                if search.found.is_some() { "a new violation" } else { "no new violation" }
            );
            if let Some(found) = search.found {
                // Counted whether or not its printed replay reproduces it.
                let _ = found.report();
                violations += 1;
            }
            for (signature, count, found) in search.known {
                match known_total.iter_mut().find(|(s, _, _)| *s == signature) {
                    Some((_, n, _)) => *n += count,
                    None => known_total.push((signature, count, found)),
                }
            }
        }
    }
    let mut rng = Rng::seeded(seed);
    let mut reported = 0;
    // The first random schedule of each known violation, for `--show`.
    let mut first_drawn: Vec<(&'static str, u64)> = Vec::new();
    for i in 0..schedules {
        let (version, size, setup) = random_setup(i);
        let Some(found) = random_schedule(&mut rng, version, size, setup) else {
            continue;
        };
        if let Some(signature) = known(&found.violation) {
            if !first_drawn.iter().any(|(s, _)| *s == signature) {
                first_drawn.push((signature, i));
            }
            note_known(&mut known_total, signature, found);
            continue;
        }
        violations += 1;
        if reported < 3 {
            // Shrunk only when shown: shrinking replays the schedule many times.
            let as_found = format!(
                "{} events; as found: {}",
                found.schedule.len(),
                found.violation.what.lines().next().unwrap_or_default()
            );
            println!("seed {seed}, schedule {i} ({as_found}):");
            // Counted whether or not its printed replay reproduces it.
            let _ = found.shrunk().report();
            reported += 1;
        }
    }
    for (signature, count, found) in &known_total {
        let drawn = first_drawn.iter().find(|(s, _)| s == signature);
        let alone = drawn.map_or(String::new(), |(_, i)| {
            format!(" (random schedule {i} alone: --seed {seed} --show {i})")
        });
        println!("sim: known, not fixed yet: {signature} ({count} times){alone}; first seen:");
        // Known, but a report whose replay does not reproduce it would mislead: that fails.
        if !found.report() {
            violations += 1;
        }
    }
    println!("sim: took {:.1} s", started.elapsed().as_secs_f64());
    println!("sim: {schedules} schedules, {violations} violations");
    if violations > 0 {
        std::process::exit(1);
    }
}
