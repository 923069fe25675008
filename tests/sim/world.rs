//! The simulated world: an Auto Scaling group, its instances (IMDS is the instance itself), etcd
//! clusters that follow etcd's runtime-reconfiguration rules, and on every instance the boot
//! units: discovery (`run.rs`'s steps, with the real `plan`) and then etcd. No sockets, no
//! clock, no threads: a transition is a pure function of the state and the event.
//!
//! What each modelled rule stands for (etcd 3.4 `server.go` / `membership/cluster.go`):
//! - an add needs a leader; strict reconfiguration refuses a voter when the started voters would
//!   not make a quorum of the larger cluster (1 -> 2 allowed, `IsReadyToAddVotingMember`);
//! - 3.4 refuses any add while a voter is not connected ("unhealthy cluster",
//!   `isConnectedFullySince`), so a second unstarted member is refused; 3.5.30+/3.6.11+ ask
//!   for a connected quorum of the cluster with the new member counted
//!   (`isConnectedToQuorumAfterAddingNewMemberSince`) and accept it;
//! - a removal needs a leader and must leave a connected quorum (`mayRemoveMember`);
//! - a node started `existing` fetches the member list from a peer of its initial cluster and
//!   refuses to start when the counts differ ("member count is unequal") or its URL is missing;
//! - a node started `new` joins the cluster its token and initial cluster name; one that was
//!   already started ("member has already been bootstrapped") refuses;
//! - a node with data restarts as its member; a removed member does not run: real etcd
//!   starts, hears it was removed (once a member answers it) and exits with status 0, and
//!   etcd's unit (`Restart=always`) runs discovery again. The model has it exit at once: until
//!   a member answers, it only calls elections nobody takes part in;
//! - a member serves clients only once it has published through a leader: a bootstrapping
//!   member refuses client connections (seen with 3.4.23), while its peer port listens;
//! - the member list is served without a leader (the gateway's request is not linearizable);
//! - learners (`--learner`, the user data's way): a learner neither votes nor counts toward
//!   a quorum; an `AddLearner` skips the started-members check but not the connection one,
//!   and is refused while the cluster has a learner (`maxLearners`, 1: "too many learner
//!   members"); a learner's removal needs no quorum check; the promote unit's `promote` is
//!   accepted once the learner runs connected to the leader (caught up, `isLearnerReady`)
//!   and the started voters with it make a quorum of the voters it makes
//!   (`IsReadyToPromoteMember`); `mayAddMember`, `mayRemoveMember`, `mayPromoteMember`
//!   in etcd 3.4 to 3.6 `server.go`.
//!
//! `tests/lab/rules.rs` shows each rule with real etcd 3.4 and 3.5 (README, "Simulation").

use std::fmt::Write as _;
use std::hash::{Hash, Hasher as _};

use crate::model::{self, quorum, Identity, Instance, LocalData, Member, Observed, Restores};
use crate::plan::{self, Action, AddressKind, Mode, Plan, Scheme, Settings};

/// Which etcd the cluster runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// 3.4 (Debian's): a second unstarted member is "unhealthy cluster".
    V34,
    /// 3.5.30+, 3.6.11+, 3.7: a second unstarted member is accepted; member list needs a leader.
    V35Late,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SimMember {
    pub id: u64,
    pub peer_url: String,
    /// From the initial cluster for a bootstrapped member (etcd lists it at once); empty for
    /// an added one until its etcd publishes.
    pub name: String,
    /// Its etcd has published its client URLs (it ran while the cluster had a leader).
    pub published: bool,
    /// Added as a learner and not promoted yet: it neither votes nor counts toward a quorum.
    pub learner: bool,
}

impl Cluster {
    /// The members that vote: every member but the learners.
    pub fn voters(&self) -> impl Iterator<Item = &SimMember> {
        self.members.iter().filter(|m| !m.learner)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cluster {
    pub id: u64,
    pub members: Vec<SimMember>,
    /// The bootstrap's members (ID, name, peer URL): its initial members' logs name them.
    pub initial: Vec<(u64, String, String)>,
    /// Its first member started from the bucket's snapshot (a restore), not empty.
    pub restored: bool,
    /// Which of the bucket's snapshots that was (`World::snapshots`; 0: the bucket had none).
    pub snapshot: u32,
    /// Its leader has decided the cluster's version (`/version` no longer `not_decided`).
    pub version_decided: bool,
}

/// What etcd keeps in its data directory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Data {
    pub cluster: u64,
    pub member: u64,
}

/// What the written env file says, as etcd reads it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EnvFile {
    pub name: String,
    pub new: bool,
    pub initial: Vec<(String, String)>,
    pub token: String,
    pub peer_url: String,
    /// The run restored the bucket's newest snapshot into the empty data directory before
    /// writing this file (`Plan::restore`, with `--snapshot-url`); the model does both at once.
    pub restored: bool,
    /// Which snapshot (`World::snapshots`; 0: the bucket had none).
    pub snapshot: u32,
    /// An `existing` file's list was the member list its run read (or an earlier run's, when
    /// a run that read none wrote the same file again), or the membership of the cluster
    /// holding this node's member when it was written (a `new` file: always). etcd
    /// compares the file with the cluster at its start: a list that agreed then and not at
    /// the start changed in between (K4); one that never agreed is the tool's doing.
    pub agreed_when_written: bool,
}

/// Where a node's discovery run is.
#[derive(Clone, Debug, Hash)]
pub enum Run {
    /// Nothing running: not booted, or etcd is up after a run.
    Idle,
    /// Next: observe and decide.
    Observe,
    /// Next: the action at `next` of the plan; then the file.
    Apply {
        observed: Box<Observed>,
        plan: Plan,
        next: usize,
    },
    /// Next: record the bootstrap in the group's tags (a seed's new cluster), then the file.
    Record { observed: Box<Observed>, plan: Plan },
    /// Next: read the group again: still counted, and the record still this seed's.
    Verify { observed: Box<Observed>, plan: Plan },
    /// Next: re-list (after changes) and write the file.
    Write { observed: Box<Observed>, plan: Plan },
    /// The run ended with this exit code; 0 lets etcd start, 75 is retried by the unit.
    Exited(i32),
}

#[derive(Clone, Debug, Hash)]
pub struct Node {
    pub n: u8,
    pub terminated: bool,
    /// `Terminating:Wait`: scaled in, still running until its lifecycle hook completes; the
    /// group no longer counts it.
    pub leaving: bool,
    /// Its termination hook ran `leave`, and completed.
    pub left: bool,
    /// Its `leave` was refused for now: the hook is held (heartbeats), `leave` tries again.
    pub held: bool,
    /// In the warm pool (`Warmed:*`): its boot units run, the group does not count it.
    pub warm: bool,
    /// DescribeInstances knows it (EC2 is eventually consistent right after a launch).
    pub visible: bool,
    pub partitioned: bool,
    pub data: Option<Data>,
    pub file: Option<EnvFile>,
    pub etcd: bool,
    /// Its etcd has run at some time (a fact of the past, not of the data directory).
    pub ran: bool,
    /// Its promote unit stopped on a failure that needs a person, until etcd starts again.
    pub promote_failed: bool,
    /// The file was written for a node without data, and the data directory has not changed
    /// since (its fingerprint in the file still matches): a wipe ends it.
    pub data_dir_as_written: bool,
    /// etcd serves its client port only once it has published through a leader (3.4 and 3.5
    /// do not listen for clients before: a bootstrapping member refuses connections).
    pub ready: bool,
    pub run: Run,
    /// Peers are addressed by private DNS name (gambol99's default), else by IP.
    pub dns: bool,
    /// EC2 gives it a private DNS name (a VPC with DNS hostnames off gives none: the tool
    /// asked for names falls back to IPs).
    pub named: bool,
}

impl EnvFile {
    /// `ETCD_INITIAL_CLUSTER` as the file has it.
    fn initial_cluster(&self) -> String {
        self.initial
            .iter()
            .map(|(name, url)| format!("{name}={url}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Node {
    /// A just-launched instance, its discovery about to run, in a group whose tool asks for
    /// DNS names (`dns`) in a VPC that gives them or not (`named`).
    fn booting(n: u8, visible: bool, dns: bool, named: bool) -> Node {
        Node {
            n,
            dns: dns && named,
            named,
            terminated: false,
            leaving: false,
            left: false,
            held: false,
            warm: false,
            visible,
            partitioned: false,
            data: None,
            file: None,
            etcd: false,
            ran: false,
            promote_failed: false,
            data_dir_as_written: false,
            ready: false,
            run: Run::Observe,
        }
    }

    /// The group counts it: in service, not leaving, not parked in the warm pool.
    pub fn counted(&self) -> bool {
        !self.terminated && !self.leaving && !self.warm
    }

    pub fn id(&self) -> String {
        format!("i-{}", self.n)
    }
    pub fn ip(&self) -> String {
        format!("10.0.0.{}", self.n)
    }
    /// Its private DNS name, as EC2 gives it.
    fn dns_name(&self) -> String {
        format!("ip-10-0-0-{}.ec2.internal", self.n)
    }
    /// Where peers reach it, in the group's addressing.
    fn host(&self) -> String {
        if self.dns {
            self.dns_name()
        } else {
            self.ip()
        }
    }
    pub fn peer_url(&self) -> String {
        format!("http://{}:2380", self.host())
    }
    /// Its run decided to bootstrap as the seed and its etcd has not run yet.
    fn seeding(&self) -> bool {
        match &self.run {
            Run::Record { plan, .. } | Run::Verify { plan, .. } | Run::Write { plan, .. } => {
                plan.record.is_some()
            }
            Run::Exited(0) => self.file.as_ref().is_some_and(|f| f.new) && !self.ran,
            _ => false,
        }
    }

    fn instance(&self) -> Instance {
        Instance {
            id: self.id(),
            private_ip: if self.visible {
                self.ip()
            } else {
                String::new()
            },
            private_dns: if self.visible && self.named {
                self.dns_name()
            } else {
                String::new()
            },
            // Instances are numbered in launch order; EC2 tells the time once it knows them.
            launch_time: if self.visible {
                format!("2026-11-28T00:00:{:02}.000Z", self.n)
            } else {
                String::new()
            },
        }
    }
}

#[derive(Clone, Debug, Hash)]
pub struct World {
    pub version: Version,
    pub desired: u32,
    pub nodes: Vec<Node>,
    pub clusters: Vec<Cluster>,
    /// Newly launched instances are invisible to EC2 until an event says otherwise.
    pub ec2_late: bool,
    /// Faults injected so far.
    pub faults: u32,
    /// A member of a bootstrap lost its data before any member published: from then on
    /// nothing tells it from data lost after the cluster formed, and rule 11 waits for an
    /// operator rather than risk a second cluster (known K5: liveness is not owed).
    pub lost_unformed_bootstrap: bool,
    /// A formed cluster lost the data of a majority of its members: only a snapshot brings it
    /// back (issue 15), so liveness is not owed after that.
    pub formed_cluster_lost: bool,
    /// Before the recorded bootstrap formed, the instances of a majority of its members were
    /// terminated or scaled in: it can never form, the next seed bootstraps anew, and a node
    /// that took part in the dead one leaves it (rule 20) or, where rule 20 cannot prove it
    /// dead, is left in it for a person to wipe (known K6).
    pub lost_recorded_bootstrap: bool,
    /// An initial member that never started wrote `existing` without member data: neither
    /// its list nor the group's record of the bootstrap provably the initial cluster, or with
    /// a bucket once the version was decided. Rule 18 cannot start it `new`, and its start
    /// may overlap another such start (known K13).
    pub late_member_joined_existing: bool,
    /// The group's tag with a bootstrap's initial cluster, as a seed recorded it (rule 14).
    pub record: Option<String>,
    /// In a bucket, what the record says its bootstrap restores (`model::Restores`).
    pub record_restores: Option<Restores>,
    /// The snapshots a formed cluster's timer uploaded to the bucket: the newest is this one
    /// (0: none yet). A bootstrap restores the newest; a late initial member must restore the
    /// one its bootstrap did, which a later upload is not.
    pub snapshots: u32,
    /// The group's tag with the members the last join left (rule 17).
    pub members_record: Option<String>,
    /// A warm instance launched before a seed was put in service while that seed's bootstrap
    /// was in flight: the seed of the group as it now is decides too (K10 until the seed read
    /// the group again just before recording in the tags; said with a violation, for context).
    pub older_in_service_while_seeding: bool,
    /// A formed cluster was left with fewer members on counted instances than its quorum
    /// (scale-ins, terminations): the group took its data away (known K8).
    pub majority_left: bool,
    /// A formed cluster had fewer members that could run on counted instances (their data
    /// there, or never started there) than its quorum while a member's instance sat in the
    /// warm pool (`ReuseOnScaleIn`: a scale-in whose `leave` was refused, or came too late):
    /// the quorum waits for a scale-out to put it in service again (known K12).
    pub quorum_parked_in_pool: bool,
    /// A formed cluster lost its leader before it decided its version: etcd refuses every
    /// `existing` start from no data until a member that ran comes back; a late initial
    /// member starts `new` instead (rule 18, K11 fixed). Said with a violation, for context.
    pub lost_leader_undecided: bool,
    /// AWS answers every call with `Throttling` (a burst); the tool's retries give up and the
    /// run exits 75.
    pub throttled: bool,
    /// The tool asks for peers by private DNS name, else by IP (see `settings`).
    pub dns: bool,
    /// EC2 gives instances private DNS names; without, the tool asked for names falls back to
    /// IPs (`plan::address`).
    pub dns_names: bool,
    /// `--snapshot-url`: rule 14's record is an S3 object, written only if it is still as the
    /// writer's look read it (else a group tag, which has no conditional write: the seed
    /// reads the group again just before it writes), and a bootstrap from nothing restores
    /// the newest snapshot.
    pub bucket: bool,
    /// Some cluster had a published member: a later bootstrap from nothing is a group that
    /// lost its cluster, and with a bucket it must bring the data back.
    pub ever_formed: bool,
    /// Scale-outs, scale-ins (through `Terminating:Wait` and `leave`), warm-pool launches and
    /// throttling bursts are drawn too (from a formed cluster and in every random schedule;
    /// from the first boot with `--operations`).
    pub operations: bool,
    /// `--etcd-data-dir` given: the tool sees whether its etcd holds member data. Without
    /// it (and then without a bucket: `--snapshot-url` needs it) every look says `Unknown`,
    /// and no data directory is ever lost: the README says the tool cannot tell it then.
    pub data_dir_named: bool,
    /// The warm pool's `ReuseOnScaleIn`: a scaled-in instance goes back to the pool, stopped,
    /// with its disks, instead of being terminated; put in service again, it holds the data
    /// of a member its `leave` (or `reconcile`) removed (rule 15).
    pub reuse_on_scale_in: bool,
    /// `--learner`, as the user data runs it: a join adds a learner, and the promote unit
    /// makes it a voter.
    pub learner: bool,
    /// K4 followed: etcd's refusal of a file whose member list changed since it was written
    /// ("member count is unequal") restarts discovery, as etcd's unit does, instead of
    /// ending the schedule as a known violation; what comes after is checked too.
    pub follow_refused_starts: bool,
}

/// One thing that can happen next.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// The node's discovery run does its next step.
    Step(u8),
    /// The unit retries a run that exited 75.
    Retry(u8),
    /// The promote unit's `promote` on a node whose etcd runs a learner (retried while 75).
    Promote(u8),
    /// etcd starts from the written file (after discovery exited 0).
    StartEtcd(u8),
    /// AutoScaling launches an instance to meet the desired capacity.
    Launch,
    /// EC2 now lists the new instance.
    Visible(u8),
    // Faults.
    /// The discovery run is killed mid-step (power loss, OOM); the unit starts it again.
    Crash(u8),
    /// etcd is killed with SIGKILL; systemd starts discovery and etcd again.
    KillEtcd(u8),
    /// A reboot: etcd stops, discovery runs again, etcd starts.
    Reboot(u8),
    /// A reboot whose data directory was lost (instance store, a new volume).
    WipeData(u8),
    /// The instance is terminated; AutoScaling will launch a replacement.
    Terminate(u8),
    /// The node is cut off from the others, or joins them again.
    Partition(u8),
    // What operators and AutoScaling do; drawn like faults, so that a schedule's tail is
    // free of them and the group must converge.
    /// The desired capacity grows by one: a warm-pool instance enters service (it boots
    /// again, as from `Warmed:Stopped`), or AutoScaling launches one.
    ScaleOut,
    /// The desired capacity shrinks by one and AutoScaling picks this instance: it goes to
    /// `Terminating:Wait` (its hook runs `leave`), then is terminated.
    ScaleIn(u8),
    /// AutoScaling launches an instance into the warm pool; its boot units run there.
    WarmLaunch,
    /// AWS throttles every call for a while.
    Throttle,
    /// The termination hook's `leave` is killed between its record of the members it leaves
    /// (rule 17, written before the removal) and its removal.
    LeaveInterrupted(u8),
    /// `reconcile` is killed the same way, between its record and its removals.
    ReconcileInterrupted,
    // The rest of the operations, regular events.
    /// The throttling burst is over.
    Unthrottle,
    /// The termination hook of a leaving instance runs `etcd-discovery leave`.
    Leave(u8),
    /// The lifecycle hook completes; the instance is terminated.
    FinishTerminate(u8),
    /// `etcd-discovery reconcile` on the leader's timer.
    Reconcile,
    /// The leader of a cluster decides its version, a moment after the cluster formed.
    DecideVersion,
    /// With a bucket, the snapshot timer of a cluster that decided its version uploads a new
    /// snapshot (`etcd-discovery snapshot`; twice at most, to bound the search).
    Snapshot,
    /// etcd never became ready (it notifies systemd only once it has published through a
    /// leader) and systemd stops it at `TimeoutStartSec` (15 min in etcd's drop-in); the
    /// unit's restart runs discovery again. Drawn only for a member whose cluster can never
    /// get a leader: a timeout in a bootstrap that is merely slow restarts it from its data,
    /// which changes nothing.
    StartTimeout(u8),
}

impl Event {
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            Event::Crash(_)
                | Event::KillEtcd(_)
                | Event::Reboot(_)
                | Event::WipeData(_)
                | Event::Terminate(_)
                | Event::Partition(_)
                | Event::ScaleOut
                | Event::ScaleIn(_)
                | Event::WarmLaunch
                | Event::Throttle
                | Event::LeaveInterrupted(_)
                | Event::ReconcileInterrupted
        )
    }
}

/// A broken invariant: what, and where.
#[derive(Clone, Debug)]
pub struct Violation {
    pub what: String,
}

fn violation<T>(what: String) -> Result<T, Violation> {
    Err(Violation { what })
}

pub const TOKEN: &str = "etcd-sim";

/// FNV-1a: the model's stand-in for etcd's member and cluster ID hashes.
/// Member and cluster IDs, from what etcd derives them (its token, its URLs).
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl World {
    /// The tool's settings in a group addressed by DNS names (with etcd also listening on
    /// 127.0.0.1, the tool's default) or by IP (with `--listen-localhost=false`).
    fn settings(&self) -> Settings {
        Settings {
            peer_scheme: Scheme::Http,
            client_scheme: Scheme::Http,
            peer_port: 2380,
            client_port: 2379,
            address_kind: if self.dns {
                AddressKind::Hostname
            } else {
                AddressKind::Ip
            },
            proxy_mode: false,
            cluster_token: TOKEN.into(),
            learner: self.learner,
            listen_localhost: self.dns,
            restores_snapshots: self.bucket,
        }
    }

    /// A group of `size` instances launched at once, every one booting.
    pub fn new(version: Version, size: u8, ec2_late: bool, dns: bool) -> World {
        let nodes = (1..=size)
            .map(|n| Node::booting(n, !ec2_late, dns, true))
            .collect();
        World {
            version,
            desired: u32::from(size),
            nodes,
            clusters: Vec::new(),
            ec2_late,
            faults: 0,
            lost_unformed_bootstrap: false,
            formed_cluster_lost: false,
            lost_recorded_bootstrap: false,
            late_member_joined_existing: false,
            record: None,
            record_restores: None,
            snapshots: 0,
            members_record: None,
            older_in_service_while_seeding: false,
            majority_left: false,
            quorum_parked_in_pool: false,
            lost_leader_undecided: false,
            throttled: false,
            operations: false,
            dns,
            dns_names: true,
            bucket: false,
            ever_formed: false,
            data_dir_named: true,
            reuse_on_scale_in: false,
            learner: false,
            follow_refused_starts: false,
        }
    }

    pub fn without_named_data_dir(mut self) -> World {
        self.data_dir_named = false;
        self
    }

    /// What `run.rs`'s `local_data` says on node `me`.
    fn local_data(&self, me: &Node) -> LocalData {
        match (self.data_dir_named, &me.data) {
            (false, _) => LocalData::Unknown,
            (true, Some(_)) => LocalData::Present,
            (true, None) => LocalData::Missing,
        }
    }

    /// The same group in a VPC that gives no private DNS names.
    pub fn without_dns_names(mut self) -> World {
        self.dns_names = false;
        for x in &mut self.nodes {
            x.named = false;
            x.dns = false;
        }
        self
    }

    /// A stable fingerprint of the state, for the exhaustive search's visited set.
    /// The state, hashed: the exhaustive search's identity of a state. `DefaultHasher::new()`
    /// has fixed keys, so a state hashes the same in every run (a seed replays exactly).
    pub fn fingerprint(&self) -> u64 {
        let mut hasher = std::hash::DefaultHasher::new();
        self.hash(&mut hasher);
        hasher.finish()
    }

    fn node(&self, n: u8) -> &Node {
        self.nodes.iter().find(|x| x.n == n).expect("a known node")
    }

    fn node_mut(&mut self, n: u8) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|x| x.n == n)
            .expect("a known node")
    }

    /// The node that runs this member, when its etcd is up.
    fn runner(&self, cluster: u64, member: u64) -> Option<&Node> {
        self.nodes
            .iter()
            .find(|x| x.etcd && !x.terminated && x.data.as_ref() == Some(&Data { cluster, member }))
    }

    /// The node running this member, when clients can reach it (it is ready).
    fn serving(&self, cluster: u64, member: u64) -> Option<&Node> {
        self.runner(cluster, member).filter(|x| x.ready)
    }

    fn connected(&self, cluster: u64, member: u64) -> bool {
        self.runner(cluster, member).is_some_and(|x| !x.partitioned)
    }

    pub fn has_leader(&self, cluster: &Cluster) -> bool {
        let connected = cluster
            .voters()
            .filter(|m| self.connected(cluster.id, m.id))
            .count();
        connected >= quorum(cluster.voters().count())
    }

    /// Fewer of the cluster's voters than its quorum are on instances the group counts, or
    /// on leaving ones whose hook has not completed (a held hook keeps them: rule 8): it gets
    /// no leader (until a scale-out puts parked ones back in service, which nothing here
    /// waits for: etcd's start times out in 15 minutes whatever happens meanwhile).
    fn never_gets_a_leader(&self, id: u64) -> bool {
        let runs = |x: &Node| x.counted() || (x.leaving && !x.left && !x.terminated);
        self.cluster(id)
            .is_some_and(|c| self.voters_on(c, runs) < quorum(c.voters().count()))
    }

    /// A quorum of the cluster's voters is on instances that exist (stopped in a warm pool
    /// included): it has, or may yet get, a leader. Rule 20 must never set aside the data of
    /// such a cluster's member: a bootstrap still forming, or one that formed without it.
    /// (In the model such data is worth little, a member no leader reached; in etcd it holds
    /// the member's votes, and a member that forgets them can elect two leaders in a term.)
    fn can_get_a_leader(&self, id: u64) -> bool {
        self.cluster(id)
            .is_some_and(|c| self.voters_on(c, |x| !x.terminated) >= quorum(c.voters().count()))
    }

    /// A bootstrap that never formed (no member published) and never can (`can_get_a_leader`
    /// false): it serves nobody and cannot diverge from the group's cluster, so its etcds are
    /// no second cluster, only nodes the group waits for until their start times out (rule
    /// 20), which the liveness check holds the tool to.
    fn can_never_form(&self, id: u64) -> bool {
        self.cluster(id)
            .is_some_and(|c| c.members.iter().all(|m| !m.published))
            && !self.can_get_a_leader(id)
    }

    /// The cluster's voters on instances the group counts.
    fn voters_counted(&self, c: &Cluster) -> usize {
        self.voters_on(c, Node::counted)
    }

    /// The cluster's voters at the peer URL of an instance that `on` accepts.
    fn voters_on(&self, c: &Cluster, on: impl Fn(&Node) -> bool) -> usize {
        c.voters()
            .filter(|m| {
                self.nodes
                    .iter()
                    .any(|x| on(x) && m.peer_url == x.peer_url())
            })
            .count()
    }

    fn cluster(&self, id: u64) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.id == id)
    }

    /// The cluster whose etcd answers at node `target`'s client URL, asked from `from`.
    fn reachable_cluster(&self, from: u8, target: u8) -> Option<u64> {
        let t = self.node(target);
        if !t.ready || !self.peer_reachable(from, target) {
            return None;
        }
        t.data.as_ref().map(|d| d.cluster)
    }

    /// Whether `target`'s etcd runs and `from` can reach it (its peer port listens at once).
    fn peer_reachable(&self, from: u8, target: u8) -> bool {
        let t = self.node(target);
        let cut = from != target && (self.node(from).partitioned || t.partitioned);
        t.etcd && !t.terminated && !cut
    }

    fn members_of(cluster: &Cluster) -> Vec<Member> {
        cluster
            .members
            .iter()
            .map(|m| Member {
                id: m.id,
                name: m.name.clone(),
                peer_urls: vec![m.peer_url.clone()],
                client_urls: if !m.published {
                    vec![]
                } else {
                    vec![m.peer_url.replace(":2380", ":2379")]
                },
                is_learner: m.learner,
            })
            .collect()
    }

    /// What the node's discovery would see now: `Err(code)` when the look itself fails.
    fn observe(&self, n: u8) -> Result<(Observed, Option<u64>), i32> {
        self.look(n, true)
    }

    /// One look, as `run.rs`'s `World::observe` takes it for `discover` or (with `discover`
    /// false) for a member command, which always weighs health.
    fn look(&self, n: u8, discover: bool) -> Result<(Observed, Option<u64>), i32> {
        if self.throttled {
            return Err(75);
        }
        let me = self.node(n);
        let mut instances: Vec<Instance> = self
            .nodes
            .iter()
            .filter(|x| x.counted())
            .map(Node::instance)
            .collect();
        instances.sort_by(|a, b| a.id.cmp(&b.id));
        // run.rs asks EC2 about the counted instances, those on their way out, and this one.
        let described: Vec<Instance> = self
            .nodes
            .iter()
            .filter(|x| x.counted() || (x.leaving && !x.terminated) || x.n == n)
            .map(Node::instance)
            .collect();
        // Every counted instance with an address is asked; the first that answers wins. A
        // running etcd that does not serve clients yet accepts the connection and stays
        // silent: somebody is there.
        let mut found = None;
        let mut silent = false;
        // Instances on their way out (Terminating:Wait) are asked too: they still run.
        let asked: Vec<u8> = self
            .nodes
            .iter()
            .filter(|x| (x.counted() || (x.leaving && !x.terminated)) && x.visible)
            .map(|x| x.n)
            .collect();
        for target in &asked {
            if let Some(cluster) = self.reachable_cluster(n, *target) {
                found = Some(cluster);
                break;
            }
            silent |= self.peer_reachable(n, *target);
        }
        // No list from a client port: the peer ports list the members of an etcd without a
        // leader (a bootstrap under way, or a cluster without its quorum).
        let peer_cluster = match found {
            Some(_) => None,
            None => asked.iter().find_map(|target| {
                let data = self.node(*target).data.as_ref()?;
                let cluster = self.cluster(data.cluster)?;
                self.peer_reachable(n, *target).then_some(cluster)
            }),
        };
        let mut peer_list = peer_cluster.map(World::members_of);
        // Silent members: a bootstrap's list settles it; otherwise this node restarts from
        // its member data whatever the others say, or the plan reads the peers' list, or the
        // tool looks again (75) (run.rs).
        let bootstrap = peer_list.as_deref().is_some_and(model::bootstrapping);
        let local_data = self.local_data(me);
        if found.is_none() && !bootstrap && silent {
            if local_data == LocalData::Present {
                peer_list = None;
            } else if peer_list.is_none() {
                return Err(75);
            }
        }
        // The gateway's member list is served without a leader (3.5's `linearizable` field
        // defaults to false).
        let members = found.and_then(|id| self.cluster(id)).map(World::members_of);
        // run.rs asks the member that answered for the cluster's version when this node's
        // etcd would start from no data (rule 18).
        // Without a leader, the peer port that listed the members answers it.
        // The removals (the member commands here) ask too, and wait for it.
        let version_undecided =
            |members: &Option<Vec<Member>>, peer_list: &Option<Vec<Member>>, local_data| {
                let without_data = |m: &[Member]| {
                    discover && plan::starts_without_member_data(&me.id(), m, local_data)
                };
                let version_asked = match (members, peer_list) {
                    (Some(members), _) if !discover || without_data(members) => {
                        found.and_then(|id| self.cluster(id))
                    }
                    (None, Some(list)) if without_data(list) && !model::bootstrapping(list) => {
                        peer_cluster
                    }
                    _ => None,
                };
                version_asked.is_some_and(|c| !c.version_decided)
            };
        let cluster_version_undecided = version_undecided(&members, &peer_list, local_data);
        // The answer that gave the list names its cluster's ID.
        let cluster_id = found.or(peer_list.as_ref().and(peer_cluster).map(|c| c.id));
        let mut healthy = Vec::new();
        let mut present = Vec::new();
        if let (Some(members), Some(cluster)) = (&members, found.and_then(|id| self.cluster(id))) {
            // run.rs weighs health only when this is not a plain reboot.
            if !discover || plan::reboot_member(&me.id(), members, local_data).is_none() {
                for m in members {
                    let Some(runner) = self.serving(cluster.id, m.id) else {
                        continue; // nothing listens on its client port: absent
                    };
                    if runner.n != n && (runner.partitioned || me.partitioned) {
                        continue; // a connect that never gets a TCP session: absent
                    }
                    present.push(m.id);
                    if self.has_leader(cluster) {
                        healthy.push(m.id);
                    }
                }
            }
        }
        // run.rs: the group still lists an instance on its way out until it is terminated.
        let leaving: Vec<String> = self
            .nodes
            .iter()
            .filter(|x| x.leaving && !x.terminated && x.visible)
            .map(Node::id)
            .collect();
        // run.rs reads the log of a bootstrap file's member data, in a named directory: a
        // leader's entry is there once the member published (or heard from one); an initial
        // member's log names its bootstrap, a joined member's names none.
        let (never_led_bootstrap, never_led_cluster_id) = me
            .data
            .as_ref()
            .filter(|_| self.data_dir_named && me.file.as_ref().is_some_and(|f| f.new))
            .and_then(|d| {
                let c = self.cluster(d.cluster)?;
                // A member the cluster removed: rule 15 sets its data aside (a leader
                // removed it, and may have reached it first: not proven here).
                let unled = c.members.iter().any(|m| m.id == d.member && !m.published);
                let initial = c.initial.iter().any(|(id, ..)| *id == d.member);
                (initial && unled).then(|| {
                    let initial_cluster = c
                        .initial
                        .iter()
                        .map(|(_, name, url)| format!("{name}={url}"))
                        .collect::<Vec<_>>()
                        .join(",");
                    (initial_cluster, c.id)
                })
            })
            .unzip();
        let mut observed = Observed {
            // run.rs asks EC2 about this instance with its peers, and names it as EC2 does.
            me: model::name_me_as_ec2_does(&self.identity(n), &described),
            desired_capacity: self.desired,
            instances,
            leaving,
            members,
            peer_list,
            healthy,
            present,
            local_data,
            cluster_version_undecided,
            cluster_id,
            previous_file: match &me.file {
                Some(f) if f.name == me.id() && f.new => model::PreviousFile::Bootstrap {
                    initial_cluster: f.initial_cluster(),
                    data_fingerprint: None,
                },
                Some(f) if f.name == me.id() => model::PreviousFile::Member {
                    initial_cluster: f.initial_cluster(),
                },
                _ => model::PreviousFile::NotAMember,
            },
            // run.rs reads the fingerprint of a bootstrap file only, in a named directory.
            never_started: self.data_dir_named
                && me.file.as_ref().is_some_and(|f| f.new)
                && me.data_dir_as_written
                && me.data.is_none(),
            never_led_bootstrap,
            // run.rs computes it from the log's member IDs, as etcd did: the cluster's ID.
            never_led_cluster_id,
            bootstrap_instances_left: None,
            bootstrap_record: self.record.clone(),
            bootstrap_restores: None,
            members_record: self.members_record.clone(),
        };
        // run.rs asks EC2 only when the rest of rule 20's proof holds; a stopped instance, as
        // one parked in the warm pool, still exists.
        observed.bootstrap_instances_left =
            plan::unformed_bootstrap_instances(&observed, &self.settings()).map(|names| {
                self.nodes
                    .iter()
                    .filter(|x| !x.terminated && names.contains(&x.id()))
                    .count()
            });
        // run.rs: rule 20 decides as a node without member data, and asks what such a node
        // asks.
        if plan::leaves_unformed_bootstrap(&observed, &self.settings()) {
            observed.cluster_version_undecided =
                version_undecided(&observed.members, &observed.peer_list, LocalData::Missing);
        }
        // run.rs reads what the bucket's record says its bootstrap restored when nobody
        // answered, or for a late initial member (`read_record`); the model keeps every
        // snapshot, so the one it names is always there.
        let late = plan::may_be_late_initial(&observed, &self.settings());
        if self.bucket && (observed.members.is_none() || late) {
            observed.bootstrap_restores = self.record_restores.clone();
        }
        Ok((observed, found))
    }

    /// What a bootstrap that restores now restores: the bucket's newest snapshot.
    fn newest(&self) -> Restores {
        match self.snapshots {
            0 => Restores::Nothing,
            g => Restores::Snapshot(format!("snapshot-{g}")),
        }
    }

    /// The events that can happen now; faults only while `fault_budget` is not spent.
    pub fn enabled(&self, fault_budget: u32, partitions: bool) -> Vec<Event> {
        let mut events = Vec::new();
        for x in self.nodes.iter().filter(|x| !x.terminated) {
            match x.run {
                Run::Observe
                | Run::Apply { .. }
                | Run::Record { .. }
                | Run::Verify { .. }
                | Run::Write { .. } => events.push(Event::Step(x.n)),
                Run::Exited(75) => events.push(Event::Retry(x.n)),
                Run::Exited(0) if !x.etcd => events.push(Event::StartEtcd(x.n)),
                _ => {}
            }
            if !x.visible {
                events.push(Event::Visible(x.n));
            }
            if self.promotes(x) {
                events.push(Event::Promote(x.n));
            }
        }
        let counted = self.nodes.iter().filter(|x| x.counted()).count() as u32;
        if counted < self.desired {
            events.push(Event::Launch);
        }
        if self.throttled {
            events.push(Event::Unthrottle);
        }
        let may_fail = self.faults < fault_budget;
        for x in self.nodes.iter().filter(|x| x.leaving && !x.terminated) {
            if !x.left {
                events.push(Event::Leave(x.n));
            }
            if x.left || (x.held && self.hold_is_hopeless(x)) {
                events.push(Event::FinishTerminate(x.n));
            }
            if !x.left && may_fail {
                events.push(Event::LeaveInterrupted(x.n));
            }
        }
        if self.reconciler().is_some() && self.stale_member() {
            events.push(Event::Reconcile);
            if may_fail {
                events.push(Event::ReconcileInterrupted);
            }
        }
        if self
            .clusters
            .iter()
            .any(|c| !c.version_decided && self.has_leader(c))
        {
            events.push(Event::DecideVersion);
        }
        if self.bucket
            && self.snapshots < 2
            && self
                .clusters
                .iter()
                .any(|c| c.version_decided && self.has_leader(c))
        {
            events.push(Event::Snapshot);
        }
        for x in self.nodes.iter().filter(|x| x.etcd && !x.ready) {
            if x.data
                .as_ref()
                .is_some_and(|d| self.never_gets_a_leader(d.cluster))
            {
                events.push(Event::StartTimeout(x.n));
            }
        }
        if self.faults < fault_budget && self.operations {
            if self.desired < 9 {
                events.push(Event::ScaleOut);
            }
            if self.desired > 1 {
                for x in self.nodes.iter().filter(|x| x.counted()) {
                    events.push(Event::ScaleIn(x.n));
                }
            }
            if !self.nodes.iter().any(|x| x.warm && !x.terminated) {
                events.push(Event::WarmLaunch);
            }
            if !self.throttled {
                events.push(Event::Throttle);
            }
        }
        if self.faults < fault_budget {
            for x in self.nodes.iter().filter(|x| !x.terminated) {
                if matches!(
                    x.run,
                    Run::Apply { .. } | Run::Record { .. } | Run::Verify { .. } | Run::Write { .. }
                ) {
                    events.push(Event::Crash(x.n));
                }
                if x.etcd {
                    events.push(Event::KillEtcd(x.n));
                }
                events.push(Event::Reboot(x.n));
                if self.data_dir_named {
                    events.push(Event::WipeData(x.n));
                }
                events.push(Event::Terminate(x.n));
                if partitions {
                    events.push(Event::Partition(x.n));
                }
            }
        }
        events
    }

    /// Applies one event; checks the invariants that concern the transition itself.
    pub fn apply(&mut self, event: &Event) -> Result<(), Violation> {
        self.apply_event(event).map_err(|mut v| {
            v.what.push_str(&self.known_causes());
            v
        })
    }

    /// Events in the run that a known, unfixed weakness (README, "Simulation") needs, as a
    /// suffix for a violation's text, so that the known list matches causes, not symptoms.
    pub fn known_causes(&self) -> String {
        let mut causes = String::new();
        if self.lost_unformed_bootstrap {
            causes.push_str(" (a bootstrap member lost its data before the cluster formed)");
        }
        if self.lost_leader_undecided {
            causes.push_str(" (a formed cluster lost its leader before deciding its version)");
        }
        if self.majority_left {
            causes.push_str(" (a formed cluster's majority left the group)");
        }
        if self.quorum_parked_in_pool {
            causes.push_str(" (a formed cluster's quorum was parked in the warm pool)");
        }
        if self.older_in_service_while_seeding {
            causes.push_str(
                " (an instance launched before a seed entered service during its bootstrap)",
            );
        }
        if self.lost_recorded_bootstrap {
            causes.push_str(" (a majority of the recorded bootstrap's instances was terminated before it formed)");
            // Rule 20 needs the log (a named data directory) and proof that the instances
            // are gone, which a warm pool that takes them back with their disks never gives.
            if self.reuse_on_scale_in || !self.data_dir_named {
                causes.push_str(" (rule 20 cannot prove it: no named data directory, or a warm pool that reuses instances)");
            }
        }
        if self.late_member_joined_existing {
            causes.push_str(" (a late initial member joined `existing`: no proof of its initial cluster, or a bucket)");
        }
        causes
    }

    fn apply_event(&mut self, event: &Event) -> Result<(), Violation> {
        if event.is_fault() {
            self.faults += 1;
        }
        match *event {
            Event::Step(n) => self.step(n)?,
            Event::Retry(n) => self.node_mut(n).run = Run::Observe,
            Event::StartEtcd(n) => self.start_etcd(n)?,
            Event::Launch => {
                let n = self.nodes.iter().map(|x| x.n).max().unwrap_or(0) + 1;
                let x = Node::booting(n, !self.ec2_late, self.dns, self.dns_names);
                self.nodes.push(x);
            }
            Event::Visible(n) => self.node_mut(n).visible = true,
            Event::Crash(n) => self.node_mut(n).run = Run::Exited(75),
            Event::KillEtcd(n) | Event::Reboot(n) | Event::StartTimeout(n) => {
                let x = self.node_mut(n);
                x.etcd = false;
                x.ready = false;
                x.run = Run::Observe;
                if matches!(event, Event::Reboot(_)) {
                    x.partitioned = false;
                }
            }
            Event::WipeData(n) => {
                let unformed = self
                    .clusters
                    .iter()
                    .all(|c| c.members.iter().all(|m| !m.published));
                let bootstrap_member = self.node(n).file.as_ref().is_some_and(|f| f.new);
                self.lost_unformed_bootstrap |= unformed && bootstrap_member;
                let x = self.node_mut(n);
                x.etcd = false;
                x.ready = false;
                x.data = None;
                x.data_dir_as_written = false;
                x.partitioned = false;
                x.run = Run::Observe;
            }
            Event::FinishTerminate(n) if self.reuse_on_scale_in => {
                // Back to the warm pool, stopped: its etcd stops, its disks and file stay.
                let x = self.node_mut(n);
                x.leaving = false;
                x.left = false;
                x.held = false;
                x.warm = true;
                x.etcd = false;
                x.ready = false;
                x.partitioned = false;
                x.run = Run::Idle;
            }
            Event::Terminate(n) | Event::FinishTerminate(n) => {
                // The instance is gone, its etcd and its disks with it.
                let x = self.node_mut(n);
                x.terminated = true;
                x.etcd = false;
                x.ready = false;
                x.data = None;
                x.data_dir_as_written = false;
                x.run = Run::Idle;
            }
            Event::Partition(n) => {
                let x = self.node_mut(n);
                x.partitioned = !x.partitioned;
            }
            Event::ScaleOut => {
                self.desired += 1;
                let warm = self
                    .nodes
                    .iter()
                    .find(|x| x.warm && !x.terminated)
                    .map(|x| x.n);
                self.older_in_service_while_seeding |= !self.bucket
                    && warm.is_some_and(|w| {
                        self.nodes
                            .iter()
                            .any(|x| x.n > w && !x.terminated && x.seeding())
                    });
                if let Some(x) = self.nodes.iter_mut().find(|x| x.warm && !x.terminated) {
                    // Out of the pool: started again, its boot units run.
                    x.warm = false;
                    x.etcd = false;
                    x.ready = false;
                    x.run = Run::Observe;
                }
            }
            Event::ScaleIn(n) => {
                self.desired -= 1;
                self.node_mut(n).leaving = true;
            }
            Event::WarmLaunch => {
                let n = self.nodes.iter().map(|x| x.n).max().unwrap_or(0) + 1;
                let mut x = Node::booting(n, !self.ec2_late, self.dns, self.dns_names);
                x.warm = true;
                self.nodes.push(x);
            }
            Event::Throttle => self.throttled = true,
            Event::Unthrottle => self.throttled = false,
            Event::Leave(n) | Event::LeaveInterrupted(n) => {
                let done = self.leave(n, matches!(event, Event::Leave(_)))?;
                let x = self.node_mut(n);
                x.left = done;
                x.held = !done;
            }
            Event::Reconcile => self.reconcile(true)?,
            Event::ReconcileInterrupted => self.reconcile(false)?,
            Event::Promote(n) => self.promote(n)?,
            Event::DecideVersion => {
                let undecided: Vec<u64> = self
                    .clusters
                    .iter()
                    .filter(|c| !c.version_decided && self.has_leader(c))
                    .map(|c| c.id)
                    .collect();
                for c in self.clusters.iter_mut() {
                    c.version_decided |= undecided.contains(&c.id);
                }
            }
            Event::Snapshot => self.snapshots += 1,
        }
        self.lost_recorded_bootstrap |= self.recorded_bootstrap_lost();
        self.majority_left |= self.clusters.iter().any(|c| {
            c.members.iter().any(|m| m.published)
                && self.voters_counted(c) < quorum(c.voters().count())
        });
        let holds = |x: &Node, c: &Cluster, m: &SimMember| {
            !x.terminated
                && x.data
                    == Some(Data {
                        cluster: c.id,
                        member: m.id,
                    })
        };
        self.quorum_parked_in_pool |= self.clusters.iter().any(|c| {
            // Members that can run without a scale-out: their data on a counted instance, or
            // never started on one.
            let on = |x: &Node, m: &SimMember| !x.terminated && x.peer_url() == m.peer_url;
            let available = c
                .voters()
                .filter(|m| {
                    self.nodes
                        .iter()
                        .any(|x| x.counted() && (holds(x, c, m) || (!m.published && on(x, m))))
                })
                .count();
            let parked = c
                .members
                .iter()
                .any(|m| self.nodes.iter().any(|x| x.warm && on(x, m)));
            c.members.iter().any(|m| m.published)
                && parked
                && available < quorum(c.voters().count())
        });
        self.lost_leader_undecided |= self.clusters.iter().any(|c| {
            c.members.iter().any(|m| m.published) && !c.version_decided && !self.has_leader(c)
        });
        // A formed cluster that lost the data of a majority stays lost, even once its record
        // is dropped below.
        self.formed_cluster_lost |= self
            .clusters
            .iter()
            .any(|c| c.members.iter().any(|m| m.published) && self.unrecoverable(c));
        // A cluster whose data no living instance holds is gone.
        let nodes = &self.nodes;
        self.clusters.retain(|c| {
            nodes
                .iter()
                .any(|x| !x.terminated && x.data.as_ref().is_some_and(|d| d.cluster == c.id))
        });
        self.publish();
        self.check_state()
    }

    /// The group's recorded bootstrap has not formed (no member ever published) and fewer of
    /// its instances than its quorum are left.
    fn recorded_bootstrap_lost(&self) -> bool {
        let Some(record) = &self.record else {
            return false;
        };
        let names: Vec<&str> = record
            .split(',')
            .filter_map(|e| e.split_once('=').map(|(name, _)| name))
            .collect();
        let left = names
            .iter()
            .filter(|name| self.nodes.iter().any(|x| x.counted() && x.id() == **name))
            .count();
        let formed = self
            .clusters
            .iter()
            .any(|c| c.members.iter().any(|m| m.published));
        !formed && left < quorum(names.len())
    }

    /// The node whose `reconcile` acts: the leader, here the lowest-numbered node serving a
    /// cluster with a leader (the others' runs find they are not the leader and stop).
    fn reconciler(&self) -> Option<u8> {
        self.nodes
            .iter()
            .filter(|x| x.ready && x.etcd && !x.terminated && !x.partitioned)
            .find(|x| {
                x.data
                    .as_ref()
                    .and_then(|d| self.cluster(d.cluster))
                    .is_some_and(|c| self.has_leader(c))
            })
            .map(|x| x.n)
    }

    /// A member of a running cluster that is no counted instance's: reconcile has work.
    fn stale_member(&self) -> bool {
        self.clusters.iter().any(|c| {
            c.members.iter().any(|m| {
                !self
                    .nodes
                    .iter()
                    .any(|x| x.counted() && m.peer_url == x.peer_url())
            })
        })
    }

    /// `leave` on a leaving instance: the real `plan_leave`, then its removal through etcd's
    /// rules. `Ok(true)`: the hook completes. A removal refused for now (75: no quorum after
    /// it, etcd not answering, no version yet) holds the hook while this node's etcd runs
    /// (rule 8), and `leave` tries again; refused for good, or with its etcd down, the member
    /// is left for reconcile. An interrupted run (`removes` false) stops after its record, and
    /// its hook times out.
    fn leave(&mut self, n: u8, removes: bool) -> Result<bool, Violation> {
        let holds = self.node(n).etcd;
        let Ok((observed, Some(_))) = self.look(n, false) else {
            return Ok(!holds);
        };
        let plan = match plan::plan_leave(&observed) {
            Ok(plan) => plan,
            Err(e) => return Ok(!holds || e.exit_code() != 75),
        };
        if !self.record_members_left(&observed, &plan.actions) {
            return Ok(!holds);
        }
        if !removes {
            return Ok(true);
        }
        for action in &plan.actions {
            if self.change_as(n, action, None)?.is_err() {
                return Ok(!holds);
            }
        }
        Ok(true)
    }

    /// A held hook ends without the removal (run.rs: at `--wait-timeout`, which the model
    /// takes to be long enough for what can happen meanwhile) when holding cannot help: the
    /// node's etcd is down, or its cluster cannot get a leader from the instances that run.
    fn hold_is_hopeless(&self, x: &Node) -> bool {
        !x.etcd
            || x.data.as_ref().is_none_or(|d| {
                self.cluster(d.cluster).is_none_or(|c| {
                    self.voters_on(c, |y| !y.terminated && !y.warm) < quorum(c.voters().count())
                })
            })
    }

    /// The promote unit on a learner: the real `plan_promote`, then etcd's rules. Not yet
    /// (75) is retried; a failure that needs a person (1, 2) stops the unit until etcd's next
    /// start (`RestartPreventExitStatus=1 2`).
    fn promote(&mut self, n: u8) -> Result<(), Violation> {
        let Ok((observed, Some(_))) = self.look(n, false) else {
            return Ok(());
        };
        let code = match plan::plan_promote(&observed) {
            Err(e) => e.exit_code(),
            Ok(plan) => match plan.actions.first() {
                Some(action) => self.change(n, action, &observed)?.err().unwrap_or(0),
                None => 0,
            },
        };
        if code != 0 && code != 75 {
            self.node_mut(n).promote_failed = true;
        }
        Ok(())
    }

    /// A learner this node's etcd runs, which its promote unit still tries to promote.
    fn promotes(&self, x: &Node) -> bool {
        x.etcd
            && !x.terminated
            && !x.promote_failed
            && x.data.as_ref().is_some_and(|d| {
                self.cluster(d.cluster)
                    .is_some_and(|c| c.members.iter().any(|m| m.id == d.member && m.learner))
            })
    }

    /// run.rs: a removal records the members it leaves (rule 17) before it removes anything;
    /// a throttled write removes nothing (the model's look fails first while throttled).
    fn record_members_left(&mut self, observed: &Observed, actions: &[Action]) -> bool {
        if self.throttled {
            return false;
        }
        if let Some(left) = plan::members_left(observed, actions) {
            self.members_record = Some(left);
        }
        true
    }

    /// `reconcile` on the leader: the real `plan_reconcile`, its record, then each removal
    /// through etcd's rules; interrupted (`removes` false) after its record.
    fn reconcile(&mut self, removes: bool) -> Result<(), Violation> {
        let Some(n) = self.reconciler() else {
            return Ok(());
        };
        let Ok((observed, Some(_))) = self.look(n, false) else {
            return Ok(());
        };
        let Ok(plan) = plan::plan_reconcile(&observed) else {
            return Ok(());
        };
        if !self.record_members_left(&observed, &plan.actions) || !removes {
            return Ok(());
        }
        for action in &plan.actions {
            if self.change(n, action, &observed)?.is_err() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Every running member of a cluster with a leader publishes its name and client URLs and
    /// starts serving clients.
    fn publish(&mut self) {
        for i in 0..self.nodes.len() {
            let x = &self.nodes[i];
            let Some(data) = x
                .data
                .clone()
                .filter(|_| x.etcd && !x.terminated && !x.partitioned)
            else {
                continue;
            };
            let Some(cluster) = self.cluster(data.cluster) else {
                continue;
            };
            if !self.has_leader(cluster) {
                continue;
            }
            let name = x.id();
            self.nodes[i].ready = true;
            let c = self
                .clusters
                .iter_mut()
                .find(|c| c.id == data.cluster)
                .expect("found");
            if let Some(m) = c.members.iter_mut().find(|m| m.id == data.member) {
                m.published = true;
                self.ever_formed = true;
                if m.name.is_empty() {
                    m.name = name;
                }
            }
        }
    }

    /// The instances the group counts, as a `DescribeAutoScalingGroups` lists them.
    fn counted_ids(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|x| x.counted())
            .map(Node::id)
            .collect()
    }

    /// One step of a discovery run, as `run.rs` takes them.
    fn step(&mut self, n: u8) -> Result<(), Violation> {
        let run = self.node(n).run.clone();
        // Rules 15 and 20: member data is moved aside before any change, after a seed's
        // record is read back (run.rs).
        let fresh_plan = matches!(run, Run::Observe | Run::Verify { .. });
        let next = match run {
            // run.rs waits out the warm pool (IMDS `Warmed:*`) before anything else: no
            // look, no file, then 75 (`wait_out_warm_pool`).
            Run::Observe if self.node(n).warm => Run::Exited(75),
            Run::Observe => match self.shortcut(n) {
                Some((observed, plan)) => Run::Write {
                    observed: Box::new(observed),
                    plan,
                },
                None if self.steady_member(n) => {
                    return violation(format!(
                        "i-{n}'s run asked AWS, though its file and data name a member of the \
                         cluster its peers answer, every member of which has started"
                    ));
                }
                None => match self.observe(n) {
                    Err(code) => Run::Exited(code),
                    Ok((observed, _)) => match plan::plan(&observed, &self.settings()) {
                        Err(e) => Run::Exited(e.exit_code()),
                        Ok(plan) if plan.mode == Mode::Wait => Run::Exited(75),
                        Ok(plan) if plan.record.is_some() => Run::Record {
                            observed: Box::new(observed),
                            plan,
                        },
                        Ok(plan) if plan.actions.is_empty() => Run::Write {
                            observed: Box::new(observed),
                            plan,
                        },
                        Ok(plan) => Run::Apply {
                            observed: Box::new(observed),
                            plan,
                            next: 0,
                        },
                    },
                },
            },
            Run::Apply {
                observed,
                plan,
                next,
            } => {
                let adds = matches!(
                    plan.actions[next],
                    Action::Add { .. } | Action::AddLearner { .. }
                );
                if adds
                    && !observed
                        .instances
                        .iter()
                        .any(|i| i.id == observed.me.instance_id)
                {
                    return violation(format!(
                        "i-{n} adds itself though its own look did not count it (leaving, or in \
                         the warm pool)"
                    ));
                }
                // run.rs reads the group again just before each removal (`nobody_entered`).
                let removes = matches!(plan.actions[next], Action::Remove { .. });
                let counted = self.counted_ids();
                if removes
                    && (self.throttled || plan::entered_since_look(&observed, &counted).is_some())
                {
                    self.node_mut(n).run = Run::Exited(75);
                    return Ok(());
                }
                match self.change(n, &plan.actions[next], &observed)? {
                    Err(code) => Run::Exited(code),
                    Ok(()) if next + 1 < plan.actions.len() => Run::Apply {
                        observed,
                        plan,
                        next: next + 1,
                    },
                    Ok(()) => Run::Write { observed, plan },
                }
            }
            // In S3 the write fails when another seed recorded since this run's look.
            Run::Record { observed, .. }
                if self.bucket && self.record != observed.bootstrap_record =>
            {
                Run::Exited(75)
            }
            // In the tags the seed reads the group again just before it writes, and records
            // only if the group is as its look found it (`plan::may_record`). The read and the
            // write are one step here: in run.rs they are one round trip apart.
            Run::Record { observed, .. }
                if !self.bucket
                    && (self.throttled
                        || plan::may_record(
                            &observed,
                            self.record.as_deref(),
                            &self.counted_ids(),
                        )
                        .is_err()) =>
            {
                Run::Exited(75)
            }
            Run::Record { observed, plan } => {
                self.record = plan.record.clone();
                // run.rs: in a bucket the seed that restores records the newest snapshot.
                self.record_restores = (self.bucket && plan.restore).then(|| self.newest());
                Run::Verify { observed, plan }
            }
            Run::Verify { observed, plan } => {
                let counted = self.counted_ids();
                let mine = plan.record.as_deref().unwrap_or_default();
                let me = self.node(n).id();
                if self.throttled
                    || plan::read_back(self.record.as_deref(), mine, &counted, &me).is_err()
                {
                    Run::Exited(75)
                } else {
                    Run::Write { observed, plan }
                }
            }
            Run::Write { observed, plan } => self.write(n, &observed, &plan)?,
            other => other,
        };
        if let Run::Apply { plan, .. } | Run::Write { plan, .. } = &next {
            let unformed = plan.set_aside_data == Some(plan::SetAside::Unformed);
            if let (true, true, Some(data)) = (fresh_plan, unformed, &self.node(n).data) {
                if self.can_get_a_leader(data.cluster) {
                    return violation(format!(
                        "i-{n} set its data aside (rule 20) while its cluster {:x} can still \
                         get a leader",
                        data.cluster
                    ));
                }
            }
            if fresh_plan && plan.set_aside_data.is_some() {
                let x = self.node_mut(n);
                x.data = None;
                x.data_dir_as_written = false;
                // run.rs: rule 20 makes the file name no member before the data moves.
                if plan.set_aside_data == Some(plan::SetAside::Unformed) {
                    x.file = None;
                }
            }
        }
        self.node_mut(n).run = next;
        Ok(())
    }

    /// A member's run in a steady cluster, which the reboot shortcut must decide without AWS
    /// (README, "The reboot that asks no AWS"): its file names it, its data is not known to
    /// be lost, every peer its file names that answers lists its cluster, one does, and every
    /// member there has started, this one at its address. Said here apart from
    /// `plan::reboot_shortcut`, so that a shortcut that refuses more than it must is seen:
    /// it decides the same on the full path, at the price of AWS calls a fleet's reboot
    /// shares (the default run checks this; no other invariant would).
    fn steady_member(&self, n: u8) -> bool {
        let me = self.node(n);
        let (Some(file), Some(data)) = (&me.file, &me.data) else {
            return false;
        };
        // IMDS names an instance that EC2 gives no DNS name: the file's URL is EC2's to tell.
        let named_alike = !self.dns || self.dns_names;
        if file.name != me.id() || self.local_data(me) == LocalData::Missing || !named_alike {
            return false;
        }
        let answering: Vec<&Node> = file
            .initial
            .iter()
            .filter_map(|(_, url)| self.nodes.iter().find(|x| x.peer_url() == *url))
            .filter(|x| self.peer_reachable(n, x.n) && x.data.is_some())
            .collect();
        let steady = self.cluster(data.cluster).is_some_and(|c| {
            c.members.iter().all(|m| m.published)
                && c.members
                    .iter()
                    .any(|m| m.id == data.member && m.peer_url == me.peer_url())
        });
        steady
            && !answering.is_empty()
            && answering
                .iter()
                .all(|x| x.data.as_ref().is_some_and(|d| d.cluster == data.cluster))
    }

    /// The reboot fast path (`run.rs`): the peers the node's previous file names are asked for
    /// the member list (peer ports, in the file's order, the first list wins), and the real
    /// `plan::reboot_shortcut` decides without AWS. `None`: the full path decides.
    fn shortcut(&self, n: u8) -> Option<(Observed, Plan)> {
        let me = self.node(n);
        let file = me.file.as_ref().filter(|f| f.name == me.id())?;
        let last = model::LastRun {
            name: file.name.clone(),
            proxy: false,
            bootstrap: file.new,
            peer_urls: file.initial.iter().map(|(_, url)| url.clone()).collect(),
            endpoints: Vec::new(),
        };
        let members = last.peer_urls.iter().find_map(|url| {
            let peer = self.nodes.iter().find(|x| x.peer_url() == *url)?;
            let cluster = self.cluster(peer.data.as_ref()?.cluster)?;
            self.peer_reachable(n, peer.n)
                .then(|| World::members_of(cluster))
        });
        let local_data = self.local_data(me);
        let identity = self.identity(n);
        let seen = plan::Shortcut {
            last_run: Some(&last),
            me: &identity,
            members: members.as_deref(),
            local_data,
        };
        let plan = plan::reboot_shortcut(&seen, &self.settings()).ok()?;
        let observed = Observed::without_group(
            identity,
            members,
            local_data,
            model::PreviousFile::NotAMember,
        );
        Some((observed, plan))
    }

    fn identity(&self, n: u8) -> Identity {
        let me = self.node(n);
        Identity {
            instance_id: me.id(),
            private_ip: me.ip(),
            private_dns: me.dns_name(),
            region: "us-east-1".into(),
            availability_zone: "us-east-1a".into(),
        }
    }

    /// The cluster this node's run talks to: the first that answers, asked again.
    fn endpoint(&self, n: u8) -> Option<u64> {
        self.observe(n).ok().and_then(|(_, found)| found)
    }

    /// One membership change through etcd's rules. `Ok(Err(code))`: etcd refused (after the
    /// tool's retries), and the run exits with `code`.
    /// `looked`: what the run saw when it decided (its `present` members answered then).
    fn change(
        &mut self,
        n: u8,
        action: &Action,
        looked: &Observed,
    ) -> Result<Result<(), i32>, Violation> {
        self.change_as(n, action, Some(looked))
    }

    /// `change`; without a look (`leave`), the one removal of a running member that is right:
    /// a leaving node's own (its etcd then stops, as a removed etcd does).
    fn change_as(
        &mut self,
        n: u8,
        action: &Action,
        looked: Option<&Observed>,
    ) -> Result<Result<(), i32>, Violation> {
        let leaving = looked.is_none();
        let Some(id) = self.endpoint(n) else {
            return Ok(Err(75));
        };
        let cluster = self.cluster(id).expect("found").clone();
        if !self.has_leader(&cluster) {
            return Ok(Err(75));
        }
        let voters = cluster.voters().count();
        let connected =
            |w: &World, c: &Cluster| c.voters().filter(|m| w.connected(c.id, m.id)).count();
        let mut after = cluster.clone();
        match action {
            Action::Remove { id: member, .. } => {
                if !cluster.members.iter().any(|m| m.id == *member) {
                    return Ok(Ok(())); // already gone: counts as removed
                }
                let own = leaving
                    && self
                        .node(n)
                        .data
                        .as_ref()
                        .is_some_and(|d| d.cluster == id && d.member == *member);
                // A member on an instance that is leaving (Terminating:Wait) and that did not
                // answer when the run looked (it started since) goes with its instance anyway:
                // its own `leave` removes it too. Quorum is still checked below.
                let answered = looked.is_some_and(|o| o.present.contains(member));
                if !own
                    && self
                        .runner(id, *member)
                        .is_some_and(|r| !r.partitioned && (!r.leaving || answered))
                {
                    return violation(format!(
                        "i-{n} removed member {member:x}, which is up and reachable"
                    ));
                }
                // Only a member whose instance is gone is removed, or a node's own (rule 5):
                // never the member of another instance the group still has, started or not.
                let url = cluster
                    .members
                    .iter()
                    .find(|m| m.id == *member)
                    .map(|m| m.peer_url.clone())
                    .unwrap_or_default();
                if let Some(owner) = self
                    .nodes
                    .iter()
                    .find(|x| x.n != n && x.counted() && url == x.peer_url())
                {
                    return violation(format!(
                        "i-{n} removed member {member:x} of i-{}, an instance the group still has",
                        owner.n
                    ));
                }
                let learner = cluster.members.iter().any(|m| m.id == *member && m.learner);
                after.members.retain(|m| m.id != *member);
                // mayRemoveMember: a learner's removal needs no quorum check.
                if !learner && connected(self, &after) < quorum(after.voters().count()) {
                    return Ok(Err(75)); // unhealthy cluster
                }
            }
            Action::Add { peer_url } | Action::AddLearner { peer_url } => {
                if cluster.members.iter().any(|m| &m.peer_url == peer_url) {
                    return Ok(Err(1)); // "Peer URLs already exists"
                }
                let learner = matches!(action, Action::AddLearner { .. });
                let started = cluster.voters().filter(|m| m.published).count();
                let grows_single = started == 1 && voters == 1;
                if !learner && !grows_single && started < quorum(voters + 1) {
                    return Ok(Err(75)); // not enough started members
                }
                // maxLearners (1): the tool retries "too many learner members", then 75.
                if learner && cluster.members.iter().any(|m| m.learner) {
                    return Ok(Err(75));
                }
                // The tool looks first and waits while another added member has not started
                // (etcd.rs `add`): one join at a time, whichever way etcd answers.
                if cluster
                    .members
                    .iter()
                    .any(|m| m.name.is_empty() && &m.peer_url != peer_url)
                {
                    return Ok(Err(75));
                }
                // 3.4: every voter connected in the last 5 s (isConnectedFullySince); 3.5.30+
                // and 3.6.11+: a quorum of the cluster with the new member counted
                // (isConnectedToQuorumAfterAddingNewMemberSince), so a second unstarted
                // member gets in; that function lets a single-member cluster grow whatever
                // it is connected to.
                let ok = match self.version {
                    Version::V34 => connected(self, &cluster) == voters,
                    Version::V35Late => {
                        voters == 1 || connected(self, &cluster) >= quorum(voters + 1)
                    }
                };
                if !ok {
                    return Ok(Err(75)); // unhealthy cluster
                }
                after.members.push(SimMember {
                    id: fnv(&format!("{TOKEN}/{peer_url}/{}", cluster.members.len())),
                    peer_url: peer_url.clone(),
                    name: String::new(),
                    published: false,
                    learner,
                });
            }
            Action::Promote { id: member } => {
                let Some(m) = after.members.iter_mut().find(|m| m.id == *member) else {
                    return Ok(Err(1)); // membership: member not found
                };
                if !m.learner {
                    return Ok(Err(1)); // "can only promote a learner member"
                }
                // isLearnerReady: it runs and the leader reaches it (it has caught up).
                if !self.connected(id, *member) {
                    return Ok(Err(75));
                }
                // IsReadyToPromoteMember: the started voters and the learner make a quorum
                // of the voters it makes.
                let started = cluster.voters().filter(|m| m.published).count();
                if started + 1 < quorum(voters + 1) {
                    return Ok(Err(75)); // not enough started members
                }
                m.learner = false;
            }
        }
        let had_leader = self.has_leader(&cluster);
        *self
            .clusters
            .iter_mut()
            .find(|c| c.id == id)
            .expect("found") = after.clone();
        if let Action::Remove { id: member, .. } = action {
            // A removed member's etcd stops once it hears of it (it exits 0), and its unit
            // (`Restart=always`) runs discovery again.
            let removed = Some(Data {
                cluster: id,
                member: *member,
            });
            for x in self.nodes.iter_mut().filter(|x| x.data == removed) {
                if x.etcd && !x.terminated && matches!(x.run, Run::Idle) {
                    x.run = Run::Exited(75);
                }
                x.etcd = false;
                x.ready = false;
            }
        }
        // One member grown to two has no leader until the second starts: etcd allows it
        // (strict reconfiguration's one exception), and nothing else grows a single member.
        let grows_single = cluster.members.len() == 1 && after.members.len() == 2;
        if had_leader && !grows_single && !self.has_leader(&after) {
            return violation(format!(
                "i-{n}'s {action:?} left cluster {id:x} without a quorum"
            ));
        }
        Ok(Ok(()))
    }

    /// Re-lists (after changes), renders the file with the real `plan::environment`, writes.
    fn write(&mut self, n: u8, observed: &Observed, plan: &Plan) -> Result<Run, Violation> {
        // run.rs looks at the group once more before a file that brings a member.
        if plan.brings_a_member(observed)
            && plan.record.is_none()
            && (self.throttled || !self.node(n).counted())
        {
            return Ok(Run::Exited(75));
        }
        if plan.mode == Mode::Existing && self.node(n).data.is_none() {
            let list = observed
                .members
                .as_deref()
                .or(observed.peer_list.as_deref());
            let me = self.node(n).id();
            // A restored cluster names no member until it publishes: an initial member's ID.
            let initial_id = model::initial_member_id(&[self.node(n).peer_url()], TOKEN);
            let late = list.is_some_and(|l| {
                l.iter().any(|m| {
                    (m.name == me || (m.name.is_empty() && m.id == initial_id))
                        && m.client_urls.is_empty()
                })
            });
            let provable = list
                .is_some_and(|l| model::is_initial_cluster(l, TOKEN, observed.cluster_id))
                || observed
                    .bootstrap_record
                    .as_deref()
                    .is_some_and(|r| model::is_initial_record(r, TOKEN, observed.cluster_id));
            // With a bucket, once a version is decided, the bucket's record (whether this
            // run read it or not) must say what this cluster's bootstrap restored: a late
            // member restores the same.
            let restore_known = self.record_restores.is_some()
                && self
                    .record
                    .as_deref()
                    .is_some_and(|r| model::is_initial_record(r, TOKEN, observed.cluster_id));
            let bucket_unknown =
                self.bucket && !observed.cluster_version_undecided && !restore_known;
            if late && (!provable || bucket_unknown) {
                self.late_member_joined_existing = true;
            }
        }
        let members = match plan.mode {
            Mode::New => None,
            _ if plan.actions.is_empty() => observed.members.clone(),
            _ => match self.endpoint(n).and_then(|id| self.cluster(id)) {
                Some(c) => Some(World::members_of(c)),
                None => return Ok(Run::Exited(75)),
            },
        };
        let env = match plan::environment(plan, observed, members.as_deref(), &self.settings()) {
            Ok(env) => env,
            Err(e) => return Ok(Run::Exited(e.exit_code())),
        };
        let get = |key: &str| {
            env.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        // Peers are told this node's own address in the group's addressing; etcd listens on
        // its IP (and on 127.0.0.1 when the settings ask).
        let me = self.node(n);
        let listen_client = if self.settings().listen_localhost {
            format!("http://{}:2379,http://127.0.0.1:2379", me.ip())
        } else {
            format!("http://{}:2379", me.ip())
        };
        let expected = [
            ("ETCD_NAME", me.id()),
            ("ETCD_INITIAL_ADVERTISE_PEER_URLS", me.peer_url()),
            (
                "ETCD_ADVERTISE_CLIENT_URLS",
                format!("http://{}:2379", me.host()),
            ),
            ("ETCD_LISTEN_PEER_URLS", format!("http://{}:2380", me.ip())),
            ("ETCD_LISTEN_CLIENT_URLS", listen_client),
        ];
        for (key, want) in expected {
            if get(key) != want {
                return violation(format!("i-{n}'s file says {key}={}, not {want}", get(key)));
            }
        }
        let initial: Vec<(String, String)> = get("ETCD_INITIAL_CLUSTER")
            .split(',')
            .filter_map(|e| e.split_once('='))
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let token = match plan.mode {
            Mode::New => get("ETCD_INITIAL_CLUSTER_TOKEN"),
            _ => String::new(),
        };
        // run.rs records the members a join leaves once its file is written; a throttled
        // call leaves the last record as it was.
        if plan.mode == Mode::Existing && !plan.actions.is_empty() && !self.throttled {
            self.members_record = Some(get("ETCD_INITIAL_CLUSTER"));
        }
        let restored = plan.restore && self.bucket;
        // run.rs restores what this seed recorded, else what the record of this bootstrap
        // says, else the newest (`restore_snapshot`).
        let recorded = plan
            .record
            .is_some()
            .then(|| self.record_restores.clone())
            .flatten();
        let which = recorded
            .or_else(|| plan::recorded_restore(observed, &get("ETCD_INITIAL_CLUSTER")).cloned())
            .unwrap_or_else(|| self.newest());
        let snapshot = match (restored, which) {
            (true, Restores::Snapshot(key)) => key["snapshot-".len()..].parse().expect("ours"),
            _ => 0,
        };
        let new = get("ETCD_INITIAL_CLUSTER_STATE") == "new";
        let peer_url = get("ETCD_INITIAL_ADVERTISE_PEER_URLS");
        // The list the run read (its look's, or its re-list after a change): a change to the
        // membership since that read is K4's race, whether it came before the write or after.
        let read = members.as_deref().or(observed.peer_list.as_deref());
        let as_read = read.is_some_and(|list| {
            let urls: Vec<&str> = list
                .iter()
                .flat_map(|m| &m.peer_urls)
                .map(String::as_str)
                .collect();
            same_urls(&urls, &initial)
        });
        // A run that read no list and wrote the previous file's again (the data directory not
        // named: etcd starts as that file said) passes on an earlier run's read.
        let passed_on = read.is_none()
            && self
                .node(n)
                .file
                .as_ref()
                .is_some_and(|f| f.new == new && f.initial == initial && f.agreed_when_written);
        let agreed_when_written = new
            || as_read
            || passed_on
            || self
                .clusters
                .iter()
                .find(|c| c.members.iter().any(|m| m.peer_url == peer_url))
                .is_some_and(|c| same_list(&c.members, &initial));
        let x = self.node_mut(n);
        x.data_dir_as_written |= x.data.is_none();
        x.file = Some(EnvFile {
            name: get("ETCD_NAME"),
            new,
            initial,
            token,
            peer_url,
            restored,
            snapshot,
            agreed_when_written,
        });
        Ok(Run::Exited(0))
    }

    /// etcd starts from the file (`start_etcd_from_file`). After faults destroyed a formed
    /// cluster's data (`disaster`: liveness is not owed), a refused start is followed through
    /// the unit's restart instead: the file agreed with a cluster that is gone (seed 6, schedule
    /// 8009: an initial member wrote `existing` while the cluster ran, then every member that
    /// had run lost its data or its instance, and etcd asked the one peer left for a version it
    /// never had). Every other invariant stays.
    fn start_etcd(&mut self, n: u8) -> Result<(), Violation> {
        match self.start_etcd_from_file(n) {
            Err(v) if self.formed_cluster_lost && v.what.contains(" refused to start: ") => {
                self.node_mut(n).run = Run::Exited(75);
                Ok(())
            }
            other => other,
        }
    }

    /// etcd starts from the file. A start refused for a reason in the file is a violation;
    /// one that only found no peer yet is retried by systemd (discovery runs again first).
    fn start_etcd_from_file(&mut self, n: u8) -> Result<(), Violation> {
        self.node_mut(n).promote_failed = false;
        let node = self.node(n).clone();
        let file = node.file.clone().expect("a written file");
        let refuse = |why: String| violation(format!("etcd on i-{n} refused to start: {why}"));
        if let Some(data) = &node.data {
            let Some(cluster) = self.cluster(data.cluster) else {
                return refuse("its data names a cluster that no longer exists".into());
            };
            if !cluster.members.iter().any(|m| m.id == data.member) {
                // Removed while the tool's plan restarted it from its data (`leave` on its way,
                // or nobody answered: the instance back from a warm pool behind a partition):
                // etcd starts, hears it was removed, exits 0, and the unit's restart runs
                // discovery again (rule 15 moves the data aside once a quorum answers).
                self.node_mut(n).run = Run::Exited(75);
                return Ok(());
            }
            self.node_mut(n).etcd = true;
            self.node_mut(n).ran = true;
            self.node_mut(n).run = Run::Idle;
            return Ok(());
        }
        if !file
            .initial
            .iter()
            .any(|(name, url)| name == &file.name && url == &file.peer_url)
        {
            return refuse(format!(
                "ETCD_INITIAL_CLUSTER has no {}={}",
                file.name, file.peer_url
            ));
        }
        if file.new {
            // etcd's own IDs, as `new` computes them from the file.
            let id_of =
                |url: &String| model::initial_member_id(std::slice::from_ref(url), &file.token);
            let ids: Vec<u64> = file.initial.iter().map(|(_, u)| id_of(u)).collect();
            let id = model::cluster_id(&ids);
            let member = id_of(&file.peer_url);
            if let Some(c) = self.cluster(id) {
                // Every member of one bootstrap holds the same data: all restored, or none.
                if c.restored != file.restored {
                    return violation(format!(
                        "i-{n} started the bootstrap of cluster {id:x} {} beside members that {}",
                        if file.restored { "restored" } else { "empty" },
                        if c.restored {
                            "restored"
                        } else {
                            "started empty"
                        }
                    ));
                }
                // ... and the same snapshot: the leader's log would apply to other data.
                if c.snapshot != file.snapshot {
                    return violation(format!(
                        "i-{n} started the bootstrap of cluster {id:x} from snapshot {} beside \
                         members that restored snapshot {} (0: none)",
                        file.snapshot, c.snapshot
                    ));
                }
                // isMemberBootstrapped: a peer that answers knows this member published.
                let published = c.members.iter().any(|m| m.id == member && m.published);
                let peer_knows = self.nodes.iter().any(|p| {
                    p.data.as_ref().is_some_and(|d| d.cluster == id) && self.peer_reachable(n, p.n)
                });
                if published && peer_knows {
                    return refuse("member has already been bootstrapped".into());
                }
                if published {
                    return violation(format!(
                        "etcd on i-{n} started `new` with no data as member {member:x} of cluster \
                         {id:x}, which had published: its empty log would meet the others' later"
                    ));
                }
                if !c.members.iter().any(|m| m.id == member) {
                    // An initial member the cluster removed before it ever ran (its instance
                    // sat in a warm pool): etcd writes its data, hears it was removed, exits 0,
                    // and the unit's restart runs discovery again (rule 15 then).
                    let x = self.node_mut(n);
                    x.data = Some(Data {
                        cluster: id,
                        member,
                    });
                    x.ran = true;
                    x.run = Run::Exited(75);
                    return Ok(());
                }
            } else {
                // A restore keeps each member's peer URLs only: etcd names none until it
                // publishes (lab, 3.4.23 and 3.5.1).
                let from_snapshot = file.restored && (file.snapshot > 0 || self.ever_formed);
                let members = file
                    .initial
                    .iter()
                    .map(|(name, url)| SimMember {
                        id: id_of(url),
                        peer_url: url.clone(),
                        name: if from_snapshot {
                            String::new()
                        } else {
                            name.clone()
                        },
                        published: false,
                        learner: false,
                    })
                    .collect();
                if self.bucket && self.ever_formed && !file.restored {
                    return violation(format!(
                        "i-{n} bootstrapped cluster {id:x} empty, after the group's cluster was \
                         lost, though the bucket holds its snapshots"
                    ));
                }
                let initial = file
                    .initial
                    .iter()
                    .map(|(name, url)| (id_of(url), name.clone(), url.clone()))
                    .collect();
                self.clusters.push(Cluster {
                    id,
                    members,
                    initial,
                    restored: file.restored,
                    snapshot: file.snapshot,
                    version_decided: false,
                });
            }
            let x = self.node_mut(n);
            x.data = Some(Data {
                cluster: id,
                member,
            });
            x.etcd = true;
            x.ran = true;
            x.run = Run::Idle;
            return Ok(());
        }
        // existing: the member list from a peer of the initial cluster.
        let peers: Vec<u8> = self
            .nodes
            .iter()
            .filter(|x| file.initial.iter().any(|(_, u)| *u == x.peer_url()))
            .map(|x| x.n)
            .collect();
        let Some(id) = peers
            .iter()
            .filter(|p| self.peer_reachable(n, **p))
            .find_map(|p| self.node(*p).data.as_ref().map(|d| d.cluster))
        else {
            // "could not retrieve cluster information": etcd exits, systemd tries again.
            self.node_mut(n).run = Run::Observe;
            return Ok(());
        };
        let cluster = self.cluster(id).expect("found").clone();
        let list_changed = !same_list(&cluster.members, &file.initial);
        if list_changed && !file.agreed_when_written {
            return refuse(format!(
                "its `existing` file's list was neither the list its run read nor its \
                 cluster's when written (the file names {} members, the cluster has {})",
                file.initial.len(),
                cluster.members.len()
            ));
        }
        if list_changed && self.follow_refused_starts {
            // K4 followed: etcd exits 1, its unit's restart runs discovery again.
            self.node_mut(n).run = Run::Exited(75);
            return Ok(());
        }
        if cluster.members.len() != file.initial.len() {
            return refuse(format!(
                "member count is unequal: the file names {}, the cluster has {}",
                file.initial.len(),
                cluster.members.len()
            ));
        }
        for (_, url) in &file.initial {
            if !cluster.members.iter().any(|m| &m.peer_url == url) {
                return refuse(format!("{url} in the file is no member of the cluster"));
            }
        }
        // isCompatibleWithCluster: a peer must name the cluster's version.
        if !cluster.version_decided {
            return refuse(
                "incompatible with current running cluster: no peer has decided the cluster's \
                 version yet"
                    .into(),
            );
        }
        let mine = cluster
            .members
            .iter()
            .find(|m| m.peer_url == file.peer_url)
            .expect("checked above");
        if mine.published {
            return violation(format!(
                "etcd on i-{n} started `existing` with no data as member {:x}, which had \
                 published: its empty log would meet the others'",
                mine.id
            ));
        }
        let member = mine.id;
        let x = self.node_mut(n);
        x.data = Some(Data {
            cluster: id,
            member,
        });
        x.etcd = true;
        x.ran = true;
        x.run = Run::Idle;
        Ok(())
    }

    /// Invariants of every state: one cluster among running etcds.
    fn check_state(&self) -> Result<(), Violation> {
        let mut ids: Vec<u64> = self
            .nodes
            .iter()
            .filter(|x| x.etcd && !x.terminated)
            .filter_map(|x| x.data.as_ref().map(|d| d.cluster))
            .filter(|id| !self.can_never_form(*id))
            .collect();
        ids.sort();
        ids.dedup();
        if ids.len() > 1 {
            return violation(format!("two clusters run at once: {ids:x?}"));
        }
        self.no_two_existing_starts_without_data()
    }

    /// etcd 3.4 and 3.5 started `existing` without member data ask every peer's version with
    /// no time limit, and a peer doing the same holds its port open without answering: two
    /// such starts, each in the other's initial cluster, that overlap wait for each other for
    /// ever (lab `two_late_initial_members_start_at_once`). The model's starts are atomic, so
    /// the state that allows the overlap is the violation: two nodes whose run let etcd start
    /// (exit 0) from such files, neither started yet.
    fn no_two_existing_starts_without_data(&self) -> Result<(), Violation> {
        let about_to_start: Vec<(u8, &EnvFile)> = self
            .nodes
            .iter()
            .filter(|x| !x.terminated && !x.etcd && x.data.is_none())
            .filter(|x| matches!(x.run, Run::Exited(0)))
            .filter_map(|x| x.file.as_ref().filter(|f| !f.new).map(|f| (x.n, f)))
            .collect();
        let names = |f: &EnvFile, url: &str| f.initial.iter().any(|(_, u)| u == url);
        for (i, (a, fa)) in about_to_start.iter().enumerate() {
            for (b, fb) in &about_to_start[i + 1..] {
                if names(fa, &fb.peer_url) && names(fb, &fa.peer_url) {
                    return violation(format!(
                        "i-{a} and i-{b} would both start `existing` without member data, each \
                         in the other's initial cluster: etcd 3.4 and 3.5 wait for each other \
                         for ever"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Faults destroyed the data of a majority of the cluster's members (or, before it formed,
    /// the instances of a majority of its initial members): no tool can bring it back
    /// (restoring a snapshot is issue 15's); liveness is not owed after that. Except for a
    /// bootstrap that never formed where rule 20 can prove it dead (a named data directory,
    /// no warm pool that reuses instances): its members leave it, and the group is owed a
    /// cluster anew.
    pub fn disaster(&self) -> bool {
        let left_by_rule_20 = |c: &Cluster| {
            self.data_dir_named && !self.reuse_on_scale_in && c.members.iter().all(|m| !m.published)
        };
        self.formed_cluster_lost
            || self.clusters.iter().any(|c| {
                self.unrecoverable(c) && self.live_cluster() == Some(c.id) && !left_by_rule_20(c)
            })
    }

    /// Fewer of the cluster's members than its quorum can still run: those with their data,
    /// and those that never started (they have no data to lose).
    fn unrecoverable(&self, c: &Cluster) -> bool {
        let recoverable = c
            .voters()
            .filter(|m| {
                let instance_alive = self
                    .nodes
                    .iter()
                    .any(|x| !x.terminated && m.peer_url == x.peer_url());
                (!m.published && instance_alive)
                    || self.nodes.iter().any(|x| {
                        !x.terminated
                            && x.data.as_ref()
                                == Some(&Data {
                                    cluster: c.id,
                                    member: m.id,
                                })
                    })
            })
            .count();
        recoverable < quorum(c.voters().count())
    }

    /// The cluster the group's data belongs to, when there is exactly one.
    fn live_cluster(&self) -> Option<u64> {
        let mut ids: Vec<u64> = self
            .nodes
            .iter()
            .filter(|x| !x.terminated)
            .filter_map(|x| x.data.as_ref().map(|d| d.cluster))
            .collect();
        ids.sort();
        ids.dedup();
        match ids[..] {
            [id] => Some(id),
            _ => None,
        }
    }

    /// Converged: every counted instance runs a started member of the one cluster, which has
    /// a leader, and the group has its desired number of started, running members.
    pub fn converged(&self) -> bool {
        let living: Vec<&Node> = self.nodes.iter().filter(|x| x.counted()).collect();
        let leaving = self.nodes.iter().any(|x| x.leaving && !x.terminated);
        // A warm-pool instance waits in the pool without etcd (and without a member).
        let warm_runs = self.nodes.iter().any(|x| x.warm && !x.terminated && x.etcd);
        if leaving
            || warm_runs
            || living.len() as u32 != self.desired
            || living.iter().any(|x| !x.etcd)
        {
            return false;
        }
        let Some(id) = living[0].data.as_ref().map(|d| d.cluster) else {
            return false;
        };
        let Some(cluster) = self.cluster(id) else {
            return false;
        };
        // Every member is a counted instance's: reconcile or a join removed the others; every
        // learner was promoted.
        self.has_leader(cluster)
            && cluster.members.iter().all(|m| !m.learner)
            && cluster.version_decided
            && cluster.members.len() == living.len()
            && living.iter().all(|x| {
                x.data.as_ref().is_some_and(|d| d.cluster == id)
                    && cluster.members.iter().any(|m| {
                        Some(m.id) == x.data.as_ref().map(|d| d.member)
                            && m.name == x.id()
                            && m.published
                    })
            })
    }

    /// What node `n`'s run would observe now, as `plan` gets it (`--show`).
    pub fn observation(&self, n: u8) -> String {
        match self.observe(n) {
            Err(code) => format!("the look fails ({code})"),
            Ok((observed, _)) => format!("{observed:#?}"),
        }
    }

    /// What node `n`'s discovery would decide now, in words: for reading a reported run.
    pub fn decision(&self, n: u8) -> String {
        match self.observe(n) {
            Err(code) => format!("the look fails ({code})"),
            Ok((observed, _)) => match plan::plan(&observed, &self.settings()) {
                Ok(plan) => format!("{:?}: {}", plan.mode, plan.summary),
                Err(e) => format!("error ({}): {e}", e.exit_code()),
            },
        }
    }

    /// What a person would read: each node and the cluster.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for x in &self.nodes {
            let _ = writeln!(
                out,
                "  i-{}: {}{}etcd {} data {:?} run {}",
                x.n,
                if x.terminated { "terminated, " } else { "" },
                if x.partitioned { "partitioned, " } else { "" },
                if x.etcd { "up" } else { "down" },
                x.data.as_ref().map(|d| (d.cluster, d.member)),
                match &x.run {
                    Run::Apply { plan, .. }
                    | Run::Record { plan, .. }
                    | Run::Verify { plan, .. }
                    | Run::Write { plan, .. } => {
                        plan.summary.clone()
                    }
                    other => format!("{other:?}"),
                }
            );
        }
        for c in &self.clusters {
            let _ = writeln!(out, "  cluster {:x}: {:?}", c.id, c.members);
        }
        out
    }
}

/// What etcd checks of an `existing` start against the cluster's membership: as many members,
/// and every URL of the file among them.
fn same_list(members: &[SimMember], initial: &[(String, String)]) -> bool {
    let urls: Vec<&str> = members.iter().map(|m| m.peer_url.as_str()).collect();
    same_urls(&urls, initial)
}

/// As many peer URLs as the file's entries, and every URL of the file among them.
fn same_urls(urls: &[&str], initial: &[(String, String)]) -> bool {
    urls.len() == initial.len() && initial.iter().all(|(_, url)| urls.contains(&url.as_str()))
}
