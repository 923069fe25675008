//! The decision, as a pure function of what was observed: bootstrap a new cluster, join the
//! existing one (removing members whose instances are gone), change nothing (reboot), or write
//! proxy settings. No I/O here: `apply.rs` carries a plan out, `envfile.rs` writes it down.

use crate::error::{Error, Result};
use crate::model::{
    bootstrapping, host_is_instance, initial_member_id, is_initial_cluster, is_initial_record,
    quorum, url_host, Identity, Instance, LastRun, LocalData, Member, Observed, PreviousFile,
    Restores,
};

/// URL scheme etcd speaks on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// How a peer is addressed in its URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    /// The private DNS name (gambol99's default).
    Hostname,
    /// The private IPv4 address (monsanto's behaviour).
    Ip,
}

/// The parts of the configuration that shape URLs and the decision.
#[derive(Debug, Clone)]
pub struct Settings {
    pub peer_scheme: Scheme,
    pub client_scheme: Scheme,
    pub peer_port: u16,
    pub client_port: u16,
    pub address_kind: AddressKind,
    pub proxy_mode: bool,
    /// `ETCD_INITIAL_CLUSTER_TOKEN` for a new cluster: the same on every node of the group.
    pub cluster_token: String,
    /// Join as a learner: it does not vote, so adding it never costs the quorum.
    pub learner: bool,
    /// Clients on the node (etcdctl, an API server) look at 127.0.0.1:2379 by default.
    pub listen_localhost: bool,
    /// `--snapshot-url`: a bootstrap from nothing restores the bucket's newest snapshot.
    pub restores_snapshots: bool,
}

/// A membership change, in the order it must happen.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    /// Remove a member; `why` is said in the log.
    Remove { id: u64, name: String, why: String },
    /// Add this instance with its peer URL.
    Add { peer_url: String },
    /// Add this instance as a non-voting learner (`--learner`).
    AddLearner { peer_url: String },
    /// Make this node's learner member a voter (`promote`).
    Promote { id: u64 },
}

/// What kind of configuration etcd gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Bootstrap a new cluster from the group.
    New,
    /// Join (or rejoin) the cluster that answered.
    Existing,
    /// A consumer node's proxy/gateway settings.
    Proxy,
    /// Not safe to decide yet (the group is not all visible); look again shortly.
    Wait,
}

/// Why this node's member data goes aside (`Plan::set_aside_data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetAside {
    /// It belongs to a member the cluster removed (rule 15): etcd would refuse to start from it.
    Removed,
    /// It holds only a bootstrap that can never form (rule 20): etcd would wait in it forever.
    Unformed,
}

impl SetAside {
    /// The folder it moves to is `member.<label>-<time>`.
    pub fn label(self) -> &'static str {
        match self {
            SetAside::Removed => "removed",
            SetAside::Unformed => "unformed",
        }
    }

    pub fn why(self) -> &'static str {
        match self {
            SetAside::Removed => "the cluster removed that member",
            SetAside::Unformed => "it holds only a bootstrap that can never form",
        }
    }
}

/// The decision and the reasons for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Plan {
    pub mode: Mode,
    pub actions: Vec<Action>,
    /// One line for the log: why this plan.
    pub summary: String,
    /// A bootstrap decided here from nothing: its initial cluster, to be recorded in the
    /// group's record (its tags, or the bucket's object) before the file is written (rule 14).
    pub record: Option<String>,
    /// Before the actions, move this node's member data aside (`datadir::set_aside`), never
    /// deleted, to `member.<label>-<time>` (`SetAside`).
    pub set_aside_data: Option<SetAside>,
    /// This `new` bootstraps the whole group from nothing: no member answered and this node
    /// holds no member data. With `--snapshot-url`, the newest snapshot is restored into the
    /// data directory before the file is written; every member of this bootstrap (the seed,
    /// those taking part as recorded or as the peers list it, one resuming it) is told the
    /// same, so all restore.
    pub restore: bool,
}

impl Plan {
    /// Whether etcd starting from this plan's file brings a member into the cluster (a join,
    /// a bootstrap, taking part in one), rather than restarting one that is there. Such a
    /// file is written only while the group still counts this instance.
    pub fn brings_a_member(&self, observed: &Observed) -> bool {
        match self.mode {
            Mode::New => observed.local_data != LocalData::Present,
            Mode::Existing => !self.actions.is_empty(),
            Mode::Proxy | Mode::Wait => false,
        }
    }

    fn new(mode: Mode, actions: Vec<Action>, summary: String) -> Plan {
        Plan {
            mode,
            actions,
            summary,
            record: None,
            set_aside_data: None,
            restore: false,
        }
    }

    /// `self`, bootstrapping the whole group from nothing (`restore`): only over a data
    /// directory known to hold no member data.
    fn bootstrapping_from_nothing(self, observed: &Observed) -> Plan {
        Plan {
            restore: observed.local_data == LocalData::Missing,
            ..self
        }
    }
}

/// The address peers reach `instance` at. Falls back to the IP when the VPC gives no DNS
/// names: every node sees the same data, so every node falls back the same way.
pub fn address(instance: &Instance, kind: AddressKind) -> Result<&str> {
    let address = match kind {
        AddressKind::Hostname if !instance.private_dns.is_empty() => &instance.private_dns,
        _ => &instance.private_ip,
    };
    if address.is_empty() {
        return Err(Error::NotReady(format!(
            "instance {} has no private address yet",
            instance.id
        )));
    }
    Ok(address)
}

fn url(scheme: Scheme, host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("{}://[{host}]:{port}", scheme.as_str())
    } else {
        format!("{}://{host}:{port}", scheme.as_str())
    }
}

impl Settings {
    pub fn peer_url(&self, instance: &Instance) -> Result<String> {
        Ok(url(
            self.peer_scheme,
            address(instance, self.address_kind)?,
            self.peer_port,
        ))
    }

    pub fn client_url(&self, instance: &Instance) -> Result<String> {
        Ok(url(
            self.client_scheme,
            address(instance, self.address_kind)?,
            self.client_port,
        ))
    }
}

/// This instance as a group instance.
pub fn me_as_instance(observed: &Observed) -> Instance {
    let launch_time = observed
        .instances
        .iter()
        .find(|i| i.id == observed.me.instance_id)
        .map(|i| i.launch_time.clone())
        .unwrap_or_default();
    Instance {
        id: observed.me.instance_id.clone(),
        private_ip: observed.me.private_ip.clone(),
        private_dns: observed.me.private_dns.clone(),
        launch_time,
    }
}

/// The instance that may bootstrap a cluster from nothing: the earliest launched (then the
/// smallest id; an unknown launch time last). With one instance deciding the initial
/// cluster, two looks at a group that changed in between (an instance replaced while the
/// group boots) can never make two clusters; the others take the initial cluster from its
/// peer port.
pub fn seed(instances: &[Instance]) -> Option<&Instance> {
    instances.iter().min_by_key(|i| {
        (
            i.launch_time.is_empty(),
            i.launch_time.as_str(),
            i.id.as_str(),
        )
    })
}

/// True when any of the member's peer URLs points at this instance.
fn member_is_instance(member: &Member, instance: &Instance) -> bool {
    member
        .peer_urls
        .iter()
        .any(|u| host_is_instance(url_host(u), instance))
}

/// This node's member when this boot is a plain reboot: a member by name whose data is not
/// known to be lost, or that never published (an initial member of the bootstrap whose etcd
/// has not served yet: it has no data to lose, and starting it may be what restores the
/// quorum). Such a boot changes nothing and needs no health check.
pub fn reboot_member<'a>(
    me: &str,
    members: &'a [Member],
    local_data: LocalData,
) -> Option<&'a Member> {
    members
        .iter()
        .find(|m| m.name == me)
        .filter(|m| local_data != LocalData::Missing || m.client_urls.is_empty())
}

/// The member named after this instance that has published (served clients): one whose etcd
/// ran, so whose data, where it is not known to be lost, is taken to be there.
fn published_as<'a>(me: &str, members: &'a [Member]) -> Option<&'a Member> {
    members
        .iter()
        .find(|m| m.name == me && !m.client_urls.is_empty())
}

/// Whether this node's etcd, started now, would start without member data of its own, and so
/// first ask its peers for the cluster's version (rule 18): its data directory holds none, or
/// only a member the list has no longer (a removed member's, moved aside before the join:
/// rule 15), or, when that is not known, the list has no member by its name that has
/// published (a join, or an initial member that never started).
pub fn starts_without_member_data(me: &str, members: &[Member], local_data: LocalData) -> bool {
    match local_data {
        LocalData::Present => !members.iter().any(|m| m.name == me),
        LocalData::Missing => true,
        LocalData::Unknown => published_as(me, members).is_none(),
    }
}

/// What the reboot fast path has seen before any AWS call: the previous file, who this
/// instance is (IMDS), the member list the peers (or, for a proxy, the endpoints) that file
/// names gave, and the data directory.
#[derive(Debug, Clone, Copy)]
pub struct Shortcut<'a> {
    pub last_run: Option<&'a LastRun>,
    pub me: &'a Identity,
    /// `None` when none of them answered with a list.
    pub members: Option<&'a [Member]>,
    pub local_data: LocalData,
}

/// The reboot fast path: the plan for a plain reboot, decided without AWS from the previous
/// file and the cluster it names, or why the full path (the group from AWS) must decide.
/// It only ever returns the plan `plan` gives a reboot (a member by name whose data is not
/// known to be lost: `reboot_member`; a proxy whose masters answer), and nothing that the
/// group's view would decide otherwise: a changed membership, a lost data directory (rules 5
/// and 11), a bootstrap under way (rule 12), a name only EC2 can give, all go the full way.
/// No health is asked: a reboot is never blocked by it (rule 13).
pub fn reboot_shortcut(seen: &Shortcut, settings: &Settings) -> std::result::Result<Plan, String> {
    let me = &seen.me.instance_id;
    let Some(last) = seen.last_run else {
        return Err("no previous file names an instance".into());
    };
    if &last.name != me {
        return Err(format!(
            "the previous file was written for {}, this is {me} (an image baked from another instance?)",
            last.name
        ));
    }
    if last.proxy != settings.proxy_mode {
        return Err(if last.proxy {
            "the previous file is a proxy's, and this run is not in proxy mode".into()
        } else {
            "the previous file is a member's, and this run is in proxy mode".into()
        });
    }
    let Some(members) = seen.members else {
        return Err(if settings.proxy_mode {
            "none of the previous file's endpoints answered with a member list".into()
        } else {
            "none of the previous file's peers answered with a member list".into()
        });
    };
    if settings.proxy_mode {
        let started = members
            .iter()
            .filter(|m| m.is_started() && !m.client_urls.is_empty())
            .count();
        if started == 0 {
            return Err("no member of the cluster that answered serves clients yet".into());
        }
        return Ok(Plan::new(
            Mode::Proxy,
            vec![],
            format!(
                "proxy for the {} members of the running cluster (its own list, from the endpoints of the previous file: no AWS call)",
                members.len()
            ),
        ));
    }
    if seen.local_data == LocalData::Missing {
        return Err("the data directory holds no member data".into());
    }
    if bootstrapping(members) {
        return Err(format!(
            "the {} members the peers list are still bootstrapping",
            members.len()
        ));
    }
    let Some(member) = reboot_member(me, members, seen.local_data) else {
        return Err(format!(
            "the peers' list of {} members has no member named {me}",
            members.len()
        ));
    };
    // Rule 20: data a bootstrap's member never published from may be of a bootstrap that
    // never formed, while the group's new bootstrap lists this instance again (the same URL,
    // so the same member ID): only the full path reads the data's log for its cluster.
    if last.bootstrap && member.client_urls.is_empty() && seen.local_data == LocalData::Present {
        return Err(format!(
            "member {:x} has never published, and this node's data began in a bootstrap: \
             which cluster it is of is read on the full path",
            member.id
        ));
    }
    // Rule 18: a member that never served, on a node that cannot tell whether it holds its
    // data, may start without any: it must first hear the cluster's version, which only the
    // full path asks.
    if starts_without_member_data(me, members, seen.local_data) {
        return Err(format!(
            "member {:x} has never served and this node may hold no data for it: the cluster's \
             version is asked on the full path",
            member.id
        ));
    }
    // The file advertises the URL this instance's address gives; a member at another one
    // (EC2 names this instance otherwise than IMDS, a DHCP option set's domain) is for EC2 to
    // settle.
    let mine = Instance {
        id: me.clone(),
        private_ip: seen.me.private_ip.clone(),
        private_dns: seen.me.private_dns.clone(),
        launch_time: String::new(),
    };
    let my_url = settings.peer_url(&mine).map_err(|e| e.to_string())?;
    if !member.peer_urls.contains(&my_url) {
        return Err(format!(
            "member {:x} is at {}, not at {my_url} as instance metadata names this instance",
            member.id,
            member.peer_urls.join(",")
        ));
    }
    // An unstarted member's name in ETCD_INITIAL_CLUSTER is its instance's id, which only
    // the group's addresses tell.
    if let Some(unstarted) = members.iter().find(|m| !m.is_started()) {
        return Err(format!(
            "member {:x} ({}) has not started: its instance is found through EC2",
            unstarted.id,
            unstarted.peer_urls.join(",")
        ));
    }
    Ok(Plan::new(
        Mode::Existing,
        vec![],
        format!(
            "already member {:x} of a cluster of {}: nothing to change (reboot; the member list from the peers of the previous file: no AWS call)",
            member.id,
            members.len()
        ),
    ))
}

/// Decides. Pure: the same observation always gives the same plan.
pub fn plan(observed: &Observed, settings: &Settings) -> Result<Plan> {
    if let Some((without, summary)) = leaving_unformed_bootstrap(observed, settings) {
        // Nothing moves while the node waits: its next run decides again.
        return plan(&without, settings).map(|p| match p.mode {
            Mode::Wait => p,
            _ => Plan {
                set_aside_data: Some(SetAside::Unformed),
                summary: format!("{summary}; then {}", p.summary),
                ..p
            },
        });
    }
    let plan = decide(observed, settings)?;
    // Rule 18: etcd started `existing` from an empty data directory first asks its peers for
    // the cluster's version, and exits ("incompatible with current running cluster") when
    // none has one. A cluster decides it seconds after it forms: a late initial member, or a
    // join, that looks in that window waits, before any change.
    let without_data = |members: &[Member]| {
        starts_without_member_data(&observed.me.instance_id, members, observed.local_data)
    };
    let list = observed
        .members
        .as_deref()
        .or(observed.peer_list.as_deref());
    if plan.mode != Mode::Existing || !list.is_some_and(without_data) {
        return Ok(plan);
    }
    // An initial member that never started is no join: it takes part in the bootstrap as a
    // late member of it does, `new` from the initial cluster, when etcd's IDs prove which
    // that is (`late_initial`). While no version is decided that is what a cluster that lost
    // its leader within that moment waits for: etcd would refuse it `existing` until the
    // members that ran are back. Once one is, `existing` would still start, but etcd started
    // so asks every peer's version with no time limit, and a peer whose etcd is doing the
    // same (another late member, a join) holds its port open without answering: the two wait
    // for each other for ever. `new` asks nobody's version. With a bucket, the bootstrap
    // restored a snapshot a late member must restore too: the one the bucket's record says
    // (`recorded_restore`), or while no version is decided the newest (`snapshot` takes none
    // before). A record that does not say (an older version wrote it) leaves `existing`,
    // which gets the data from the leader.
    let late = late_initial(observed, settings)?.filter(|(_, initial)| {
        observed.cluster_version_undecided
            || !settings.restores_snapshots
            || recorded_restore(observed, initial).is_some()
    });
    if let Some((member, _)) = late {
        return Ok(Plan::new(
            Mode::New,
            vec![],
            format!(
                "the cluster lists this instance as initial member {:x}, never started{}: \
                 taking part in its bootstrap (`new`, its initial cluster)",
                member.id,
                if observed.cluster_version_undecided {
                    ", and has not decided its version yet"
                } else {
                    ""
                }
            ),
        )
        // With a bucket its bootstrap restored the newest snapshot, and no snapshot is
        // taken before the version is decided (`snapshot`): the same one, as every member
        // of one bootstrap must hold the same data.
        .bootstrapping_from_nothing(observed));
    }
    if observed.cluster_version_undecided {
        return Ok(Plan::new(
            Mode::Wait,
            vec![],
            format!(
                "the cluster has not decided its version yet (it formed moments ago): etcd \
                 would refuse to join it now; then: {}",
                plan.summary
            ),
        ));
    }
    Ok(plan)
}

/// This instance's member in `list` if it never published: by this instance's name, as a
/// bootstrap lists its initial members, or unnamed (a cluster restored from a snapshot names
/// no member until it publishes: lab, 3.4.23 and 3.5.1) by the ID etcd gives an initial member
/// at this instance's peer URL, which an added member's never is; either way at that URL.
fn unstarted_initial_me<'a>(
    list: &'a [Member],
    me: &Instance,
    mine: &str,
    token: &str,
) -> Option<&'a Member> {
    let initial_id = initial_member_id(&[mine.to_string()], token);
    list.iter().find(|m| {
        (m.name == me.id || (m.name.is_empty() && m.id == initial_id))
            && m.client_urls.is_empty()
            && m.peer_urls == [mine]
    })
}

/// Whether the list names this instance as an initial member that never started, and its
/// data directory holds no member data: rule 18's late member, if etcd's IDs prove its
/// initial cluster. With `--snapshot-url` its run reads the bucket's record for what its
/// bootstrap restored.
pub fn may_be_late_initial(observed: &Observed, settings: &Settings) -> bool {
    // Rule 20 decides as a node without data: a dead bootstrap's member may be a late
    // initial member of the group's new one.
    let left = leaving_unformed_bootstrap(observed, settings);
    let observed = left.as_ref().map_or(observed, |(without, _)| without);
    let me = me_as_instance(observed);
    let Ok(mine) = settings.peer_url(&me) else {
        return false;
    };
    let lists = [&observed.members, &observed.peer_list];
    observed.local_data == LocalData::Missing
        && lists
            .into_iter()
            .flatten()
            .any(|list| unstarted_initial_me(list, &me, &mine, &settings.cluster_token).is_some())
}

/// With `--snapshot-url`, what the bootstrap of `initial_cluster` restored, when the bucket's
/// record is of that bootstrap and says it (rule 14): every member of one bootstrap, a late
/// one too, restores the same. `None`: the record does not say (the newest is restored, as
/// the seed chose it) or is of another bootstrap.
pub fn recorded_restore<'a>(observed: &'a Observed, initial_cluster: &str) -> Option<&'a Restores> {
    let record = observed.bootstrap_record.as_deref()?;
    // The same entries, in any order (each names another member). A restored cluster names
    // no member until it publishes, and a member whose instance is gone has no instance to
    // name it by: such an entry of a peer's list is known by its URL (etcd's member IDs come
    // from the URLs and the token, not the names).
    let (ours, recorded): (Vec<_>, Vec<_>) = (
        entries(initial_cluster).collect(),
        entries(record).collect(),
    );
    let recorded_as = |(name, url): &(&str, &str)| {
        recorded
            .iter()
            .any(|(n, u)| u == url && (n == name || name.is_empty()))
    };
    let same = ours.len() == recorded.len() && ours.iter().all(recorded_as);
    same.then_some(observed.bootstrap_restores.as_ref())
        .flatten()
}

/// For a late initial member (rule 18): its member (by this instance's name, at its peer URL,
/// never published) and the initial cluster its etcd starts `new` from, when etcd's own IDs
/// prove which that is: the list itself while no member was added or removed since
/// (`is_initial_cluster`), or else the group's record of the bootstrap (rule 14) when its
/// members' IDs give the cluster's and this member's. etcd started `new` from the initial
/// cluster replays the changes since from the leader's log (3.4.23 and 3.5.1: a late member
/// of five, started after a removal, joined with the data written before and after it).
fn late_initial<'a>(
    observed: &'a Observed,
    settings: &Settings,
) -> Result<Option<(&'a Member, String)>> {
    let Some(list) = observed
        .members
        .as_deref()
        .or(observed.peer_list.as_deref())
    else {
        return Ok(None);
    };
    let me = me_as_instance(observed);
    let mine = settings.peer_url(&me)?;
    let token = &settings.cluster_token;
    let Some(member) = unstarted_initial_me(list, &me, &mine, token) else {
        return Ok(None);
    };
    if is_initial_cluster(list, token, observed.cluster_id) {
        let cluster = initial_cluster_from_members(list, &observed.instances, &me);
        return Ok(Some((member, cluster)));
    }
    let recorded = observed.bootstrap_record.as_deref().filter(|record| {
        member.id == initial_member_id(std::slice::from_ref(&mine), token)
            && entries(record).any(|(name, url)| name == me.id && url == mine)
            && is_initial_record(record, token, observed.cluster_id)
    });
    Ok(recorded.map(|record| (member, record.to_string())))
}

/// Whether rule 20 leaves this node's bootstrap: the plan then decides as for a node whose
/// data directory holds no member data, and the run asks what such a node's plan needs (the
/// cluster's version, rule 18).
pub fn leaves_unformed_bootstrap(observed: &Observed, settings: &Settings) -> bool {
    leaving_unformed_bootstrap(observed, settings).is_some()
}

/// Rule 20: a bootstrap that can never form is left. This node's file was written for a
/// bootstrap and its etcd ran from one (its log names which: a later run may have rewritten
/// the file), but fewer of that bootstrap's instances than its quorum still exist (EC2
/// terminated the rest: a stopped one, parked in a warm pool with its data, still counts), so
/// it can never get a leader, and this member's log shows that no leader ever reached it: its
/// data holds nothing but that bootstrap's configuration. etcd would wait in it forever (it
/// never becomes ready: systemd stops it at `TimeoutStartSec`, and the restart runs this tool
/// again), a second cluster ID beside the one the group bootstraps anew. The node decides as one without data or file instead (the dead
/// bootstrap's other members, answering its member list, are not a bootstrap to take part
/// in), and the data goes aside, never deleted, once it acts. `Some`: that observation, and
/// what to say.
fn leaving_unformed_bootstrap(
    observed: &Observed,
    settings: &Settings,
) -> Option<(Observed, String)> {
    let names = unformed_bootstrap_instances(observed, settings)?;
    let left = observed.bootstrap_instances_left?;
    if left >= quorum(names.len()) {
        return None;
    }
    let initial_cluster = observed.never_led_bootstrap.as_deref()?;
    let urls: Vec<&str> = entries(initial_cluster).map(|(_, url)| url).collect();
    let not_that_bootstrap = |list: &Vec<Member>| {
        let same = list.len() == urls.len()
            && list
                .iter()
                .all(|m| m.peer_urls.iter().any(|u| urls.contains(&u.as_str())));
        !(same && bootstrapping(list))
    };
    let without = Observed {
        members: observed.members.clone().filter(not_that_bootstrap),
        peer_list: observed.peer_list.clone().filter(not_that_bootstrap),
        local_data: LocalData::Missing,
        previous_file: PreviousFile::NotAMember,
        never_started: false,
        never_led_bootstrap: None,
        never_led_cluster_id: None,
        bootstrap_instances_left: None,
        ..observed.clone()
    };
    let summary = format!(
        "this node's bootstrap of {} members can never form (EC2 has {left} of its instances, \
         fewer than its quorum of {}) and no leader ever reached its member: its data goes \
         aside (member.unformed-<time>)",
        names.len(),
        quorum(names.len())
    );
    Some((without, summary))
}

/// Rule 20's question to EC2: the instances of the bootstrap this node's member data began in
/// (as its log names them), when the rest of the proof holds (its etcd ran from a bootstrap
/// file, its log shows no leader ever reached it, and fewer of them than that bootstrap's
/// quorum are in service); `None` otherwise, and nothing is asked. The count of those EC2
/// still has (`Observed::bootstrap_instances_left`) decides.
pub fn unformed_bootstrap_instances(
    observed: &Observed,
    settings: &Settings,
) -> Option<Vec<String>> {
    let initial_cluster = observed.never_led_bootstrap.as_deref()?;
    let evidence = matches!(observed.previous_file, PreviousFile::Bootstrap { .. })
        && observed.local_data == LocalData::Present
        && !settings.proxy_mode;
    // The bootstrap may have formed without this member (cut off from its leader) and changed
    // its membership since, which makes the initial cluster's quorum the wrong one: a member
    // of it that answers as started, or a record of a membership change that names this
    // instance, keeps the node where it is.
    // A list from another cluster (the answer names another ID than the one this bootstrap's
    // members give) tells nothing of this one: the group's new bootstrap lists its instances
    // again at the same URLs.
    let urls: Vec<&str> = entries(initial_cluster).map(|(_, url)| url).collect();
    let another_cluster = matches!(
        (observed.cluster_id, observed.never_led_cluster_id),
        (Some(answered), Some(this_one)) if answered != this_one
    );
    let lists = || {
        [&observed.members, &observed.peer_list]
            .into_iter()
            .flatten()
    };
    let formed_answer = !another_cluster
        && lists().flatten().any(|m| {
            // Published: only a member a leader reached has its client URLs listed.
            !m.client_urls.is_empty() && m.peer_urls.iter().any(|u| urls.contains(&u.as_str()))
        });
    // The record does not say which cluster it is of: another cluster formed and answering
    // explains it (this bootstrap formed and alive beside it would be two clusters already).
    let another_cluster_formed = another_cluster && lists().any(|list| !bootstrapping(list));
    let changed_with_me = !another_cluster_formed
        && observed
            .members_record
            .as_deref()
            .is_some_and(|record| entries(record).any(|(name, _)| name == observed.me.instance_id));
    let mut names: Vec<String> = Vec::new();
    for (name, _) in entries(initial_cluster) {
        // A member with two peer URLs is named twice.
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    // The names are the instances' ids (`ETCD_NAME`); members named otherwise prove nothing
    // EC2 could answer.
    let ids = names.iter().all(|n| n.starts_with("i-"));
    let proof = evidence && ids && !formed_answer && !changed_with_me;
    (proof && !can_still_form(initial_cluster, observed)).then_some(names)
}

/// `plan`, but for rule 18.
fn decide(observed: &Observed, settings: &Settings) -> Result<Plan> {
    let me = me_as_instance(observed);
    if settings.proxy_mode {
        let summary = match &observed.members {
            Some(m) => format!("proxy for the {} members of the running cluster", m.len()),
            None => format!(
                "proxy for the {} instances of the masters' group (no member answered)",
                observed.instances.len()
            ),
        };
        return Ok(Plan::new(Mode::Proxy, vec![], summary));
    }
    let Some(members) = &observed.members else {
        return plan_new(observed, settings, &me);
    };
    if let Some(member) = reboot_member(&me.id, members, observed.local_data) {
        // A reboot. Never blocked by health: this member starting may be what restores the
        // quorum.
        return Ok(Plan::new(
            Mode::Existing,
            vec![],
            format!(
                "already member {:x} of a cluster of {}: nothing to change (reboot)",
                member.id,
                members.len()
            ),
        ));
    }
    // Rule 10: only an instance the group counts joins. One that is leaving (Terminating:Wait,
    // Detaching), parked in a warm pool, or not listed yet would add a voter that never serves.
    if !observed.instances.iter().any(|i| i.id == me.id) {
        return Ok(Plan::new(
            Mode::Wait,
            vec![],
            format!(
                "this instance ({}) is not counted by the group (not listed yet, or leaving): not joining",
                me.id
            ),
        ));
    }
    if let Err(lost) = check_quorum(observed, members) {
        // Rule 13 again: the cluster without a quorum may be waiting for this node's member,
        // added by an earlier run whose etcd never started, or started without ever seeing
        // a leader (it restarts from that data). Starting it changes nothing and may be what
        // restores the quorum.
        let mine = settings.peer_url(&me)?;
        return match members
            .iter()
            .find(|m| !m.is_started() && m.peer_urls == std::slice::from_ref(&mine))
        {
            Some(member) => Ok(Plan::new(
                Mode::Existing,
                vec![],
                format!(
                    "{lost}; but member {:x} at this instance's peer URL never started: \
                     starting it (it may be what restores the quorum)",
                    member.id
                ),
            )),
            _ => Err(lost),
        };
    }

    // Members to remove, before this node is added: etcd refuses an add while dead members
    // keep the started count below the quorum of the larger cluster. A member that is not
    // provably down is never removed, whatever its name or address say.
    let my_peer_url = settings.peer_url(&me)?;
    let refuse = |detail: String| {
        Err(Error::Etcd {
            what: "join".into(),
            detail,
            transient: false,
        })
    };
    let mut stale: Vec<(&Member, String)> = Vec::new();
    let mut reuse = false;
    for member in members {
        let alive = is_alive(observed, member);
        if member.name == me.id {
            if alive {
                return refuse(format!(
                    "the data directory holds no member data, but this instance's member {:x} \
                     answers: is the data volume mounted? Not removing a live member",
                    member.id
                ));
            }
            // Rule 5: our data directory is gone; the old ID cannot come back.
            stale.push((
                member,
                "this node's data directory has no member data: re-adding it".into(),
            ));
        } else if member_is_instance(member, &me) {
            if !member.is_started() && member.peer_urls == std::slice::from_ref(&my_peer_url) {
                // Added by an earlier run whose etcd never started: reuse the entry.
                reuse = true;
            } else if alive {
                return refuse(format!(
                    "member {:x} ({}) at this instance's address answers: another etcd runs \
                     here; stop it, or remove the member with etcdctl member remove",
                    member.id,
                    if member.is_started() {
                        &member.name
                    } else {
                        "unstarted"
                    }
                ));
            } else if member.is_started() {
                stale.push((
                    member,
                    format!(
                        "it holds this instance's address but is named {}",
                        member.name
                    ),
                ));
            } else {
                stale.push((
                    member,
                    format!(
                        "an unstarted entry at this instance's address with peer URLs {:?}, not {my_peer_url}",
                        member.peer_urls
                    ),
                ));
            }
        } else if let Some(why) = gone(observed, member) {
            if let Some(waiting) = unaddressed(observed, member) {
                return Ok(Plan::new(Mode::Wait, vec![], waiting));
            }
            stale.push((member, why));
        }
    }
    stale.sort_by_key(|(m, _)| m.id);

    // The quorum arithmetic is done on the cluster as it will be after the removals. Stale
    // members are provably down, so removing them never lowers the healthy count.
    let removed = |m: &Member| stale.iter().any(|(s, _)| s.id == m.id);
    let voters = members
        .iter()
        .filter(|m| !m.is_learner && !removed(m))
        .count();
    let healthy_voters = members
        .iter()
        .filter(|m| !m.is_learner && !removed(m) && observed.healthy.contains(&m.id))
        .count();
    let mut actions: Vec<Action> = stale
        .iter()
        .map(|(member, why)| removal(member, why.clone()))
        .collect();
    let readd = actions
        .iter()
        .any(|a| matches!(a, Action::Remove { name, .. } if *name == me.id));
    // Rule 15: our member was removed (leave, reconcile; an instance a warm pool took back on
    // scale-in and now returns) but its data is still here: etcd would refuse to start from
    // it ("member ... has already been removed"). The proof that it is gone: this list comes
    // from a cluster with a healthy quorum (checked above), no member is named after this
    // instance (a member by name with data is a reboot), and none holds its address. Then the
    // data is moved aside, never deleted, and this node joins as a new member. Anything at
    // this address is not proof: refuse as before.
    let set_aside_data = observed.local_data == LocalData::Present && !reuse && !readd;
    if set_aside_data && members.iter().any(|m| member_is_instance(m, &me)) {
        return Err(Error::Etcd {
            what: "join".into(),
            detail: "this node's data directory holds member data, but the cluster has no member \
                     named after this instance, and a member holds its address. Move the data \
                     directory's member/ folder away and run again to join afresh"
                .into(),
            transient: false,
        });
    }
    let aside = if set_aside_data {
        "; this node's data is a removed member's: moving it aside"
    } else {
        ""
    };
    let with_aside = |mut plan: Plan| {
        plan.set_aside_data = set_aside_data.then_some(SetAside::Removed);
        plan.summary.push_str(aside);
        plan
    };
    if reuse && !readd {
        let summary = format!(
            "joining the existing cluster of {}: {} to remove, reusing the entry an earlier run added",
            members.len(),
            actions.len()
        );
        return Ok(Plan::new(Mode::Existing, actions, summary));
    }
    // Until this node starts, the cluster has one more voter and no more healthy members.
    // etcd itself counts *started* members and allows growing one member to two; we count
    // *healthy* ones, so a down member cannot leave the grown cluster without a quorum.
    let grows_single_member = voters == 1 && healthy_voters == 1;
    if settings.learner {
        actions.push(Action::AddLearner {
            peer_url: my_peer_url,
        });
        let summary = format!(
            "joining the existing cluster of {} members as a learner: {} to remove",
            members.len(),
            actions.len() - 1
        );
        return Ok(with_aside(Plan::new(Mode::Existing, actions, summary)));
    }
    if !grows_single_member && healthy_voters < quorum(voters + 1) {
        return Err(Error::Etcd {
            what: "member add".into(),
            detail: format!(
                "adding this node would make {} voters of which {healthy_voters} are healthy, below \
                 the quorum of {}; start the members that are down, or remove them if their \
                 instances are gone",
                voters + 1,
                quorum(voters + 1)
            ),
            transient: true,
        });
    }
    actions.push(Action::Add {
        peer_url: my_peer_url,
    });
    let summary = format!(
        "joining the existing cluster of {} members: {} to remove, adding this instance",
        members.len(),
        actions.len() - 1
    );
    Ok(with_aside(Plan::new(Mode::Existing, actions, summary)))
}

/// Whether the member is not provably down: it has a leader, or it answered (or something at
/// its address did, in a way that is not "nothing listens").
fn is_alive(observed: &Observed, member: &Member) -> bool {
    observed.healthy.contains(&member.id) || observed.present.contains(&member.id)
}

/// Why `member` is gone, when it is: its address matches no counted instance, and it is
/// provably down (nothing listens at its client URLs, or it never started). A member that
/// answers, or might (a slow one), is never removed, whatever AutoScaling says.
fn gone(observed: &Observed, member: &Member) -> Option<String> {
    let listed = observed
        .instances
        .iter()
        .any(|i| member_is_instance(member, i));
    (!listed && !is_alive(observed, member)).then(|| {
        format!(
            "its peer URLs {:?} match no instance of the group",
            member.peer_urls
        )
    })
}

/// Why `member`, which matches no instance's address, cannot be called gone yet: a counted
/// instance has no address yet (EC2 does not know it yet), and the member may be its.
fn unaddressed(observed: &Observed, member: &Member) -> Option<String> {
    let instance = observed
        .instances
        .iter()
        .find(|i| i.private_ip.is_empty() && i.private_dns.is_empty())?;
    Some(format!(
        "instance {} has no address yet: member {:x} may be its, not removing anything until it has one",
        instance.id, member.id
    ))
}

fn removal(member: &Member, why: String) -> Action {
    let name = if member.is_started() {
        member.name.clone()
    } else {
        "(unstarted)".to_string()
    };
    Action::Remove {
        id: member.id,
        name,
        why,
    }
}

/// This node's own member: by name, or (not yet started) by its address.
fn my_member<'a>(observed: &Observed, members: &'a [Member]) -> Option<&'a Member> {
    let me = me_as_instance(observed);
    members
        .iter()
        .find(|m| m.name == me.id)
        .or_else(|| members.iter().find(|m| member_is_instance(m, &me)))
}

/// Rule 18: no member is removed before the cluster has decided its version. Until then its
/// membership is its initial cluster, and that is what a late initial member's `new` start
/// needs when the cluster loses its leader in that moment: after a removal, only the members
/// that ran could bring it back.
fn initial_cluster_kept_until_version(observed: &Observed, what: &str) -> Result<()> {
    if !observed.cluster_version_undecided {
        return Ok(());
    }
    Err(Error::Etcd {
        what: what.into(),
        detail: "the cluster has not decided its version yet (it formed moments ago): no member \
                 is removed before it has, so a late initial member can still take part in \
                 its bootstrap; try again in a few seconds"
            .into(),
        transient: true,
    })
}

fn members_or_error<'a>(observed: &'a Observed, what: &str) -> Result<&'a [Member]> {
    observed.members.as_deref().ok_or_else(|| Error::Etcd {
        what: what.into(),
        detail: "no member of the group's cluster answered".into(),
        transient: true,
    })
}

/// Rule 9: remove the members whose instances are gone (a scale-down, a missed join), under
/// rule 3. The caller runs this on the leader only, so the members never race each other.
pub fn plan_reconcile(observed: &Observed) -> Result<Plan> {
    let members = members_or_error(observed, "reconcile")?;
    check_quorum(observed, members)?;
    let mut gone_members: Vec<(&Member, String)> = members
        .iter()
        .filter_map(|m| gone(observed, m).map(|why| (m, why)))
        .collect();
    gone_members.sort_by_key(|(m, _)| m.id);
    if let Some(waiting) = gone_members
        .first()
        .and_then(|(m, _)| unaddressed(observed, m))
    {
        return Ok(Plan::new(Mode::Wait, vec![], waiting));
    }
    let actions: Vec<Action> = gone_members
        .into_iter()
        .map(|(m, why)| removal(m, why))
        .collect();
    if !actions.is_empty() {
        initial_cluster_kept_until_version(observed, "reconcile")?;
    }
    let summary = match actions.len() {
        0 => "every member's instance is in the group: nothing to reconcile".to_string(),
        n => format!(
            "{n} of {} members have no instance in the group",
            members.len()
        ),
    };
    Ok(Plan::new(Mode::Existing, actions, summary))
}

/// Rule 8: this node's member leaves, when the members left still make a quorum.
pub fn plan_leave(observed: &Observed) -> Result<Plan> {
    let members = members_or_error(observed, "leave")?;
    let Some(mine) = my_member(observed, members) else {
        return Ok(Plan::new(
            Mode::Existing,
            vec![],
            "this instance is not a member: nothing to leave".into(),
        ));
    };
    initial_cluster_kept_until_version(observed, "leave")?;
    let refuse = |detail: String, transient| {
        Err(Error::Etcd {
            what: "leave".into(),
            detail,
            transient,
        })
    };
    if !mine.is_learner {
        let voters = members.iter().filter(|m| !m.is_learner).count();
        let healthy = members
            .iter()
            .filter(|m| !m.is_learner && observed.healthy.contains(&m.id))
            .count();
        let healthy_after = healthy - usize::from(observed.healthy.contains(&mine.id));
        if voters <= 1 {
            return refuse(
                "this is the last member; removing it would end the cluster".into(),
                false,
            );
        }
        if healthy_after < quorum(voters - 1) {
            return refuse(
                format!(
                    "removing this member would leave {healthy_after} healthy of {} voters, below the quorum of {}",
                    voters - 1,
                    quorum(voters - 1)
                ),
                true,
            );
        }
    }
    let summary = format!("leaving the cluster of {} members", members.len());
    Ok(Plan::new(
        Mode::Existing,
        vec![removal(mine, "this instance is leaving".into())],
        summary,
    ))
}

/// Rule 7: make this node's learner member a voter.
pub fn plan_promote(observed: &Observed) -> Result<Plan> {
    let members = members_or_error(observed, "promote")?;
    let Some(mine) = my_member(observed, members) else {
        return Err(Error::Etcd {
            what: "promote".into(),
            detail:
                "this instance is not a member; run `etcd-discovery --learner` before etcd starts"
                    .into(),
            transient: false,
        });
    };
    if !mine.is_learner {
        return Ok(Plan::new(
            Mode::Existing,
            vec![],
            format!("member {:x} already votes: nothing to promote", mine.id),
        ));
    }
    Ok(Plan::new(
        Mode::Existing,
        vec![Action::Promote { id: mine.id }],
        format!("promoting learner {:x}", mine.id),
    ))
}

/// Rule 6: members answered, but not enough of them are healthy to have a leader.
fn check_quorum(observed: &Observed, members: &[Member]) -> Result<()> {
    let voters: Vec<&Member> = members.iter().filter(|m| !m.is_learner).collect();
    let healthy = voters
        .iter()
        .filter(|m| observed.healthy.contains(&m.id))
        .count();
    if healthy < quorum(voters.len()) {
        return Err(Error::QuorumLost {
            healthy,
            voters: voters.len(),
        });
    }
    Ok(())
}

/// Rule 1: bootstrap only when the whole group is visible, so that every node computes the
/// same initial cluster. Until then, wait.
fn plan_new(observed: &Observed, settings: &Settings, me: &Instance) -> Result<Plan> {
    let wait = |summary: String| Ok(Plan::new(Mode::Wait, vec![], summary));
    if !observed.instances.iter().any(|i| i.id == me.id) {
        return wait(format!(
            "this instance ({}) is not yet listed among the group's instances",
            me.id
        ));
    }
    // A member restarting from its data (a power cut: nobody serves yet). etcd ignores the
    // initial-cluster settings when it has data, and the others may be waiting for this one
    // to make their quorum: never hold it back.
    if observed.local_data == LocalData::Present {
        return Ok(Plan::new(
            Mode::New,
            vec![],
            "no member answered; this node's data directory holds member data: etcd restarts \
             from it (the initial-cluster settings are ignored)"
                .into(),
        ));
    }
    if let Some(list) = &observed.peer_list {
        // The data directory is not named, the cluster has no leader, and this node's file
        // names it as a member: a member by this name that has served is taken to hold its
        // data, as a reboot is, and restarts (it may be what restores the quorum), as it
        // would with its data seen.
        let published_as_me = published_as(&me.id, list)
            .filter(|_| observed.previous_file != PreviousFile::NotAMember);
        if let (LocalData::Unknown, Some(member)) = (observed.local_data, published_as_me) {
            return Ok(Plan::new(
                Mode::Existing,
                vec![],
                format!(
                    "no member serves clients; the peers list this instance as member {:x} and \
                     the data directory is not named (--etcd-data-dir): restarting it from its \
                     data",
                    member.id
                ),
            ));
        }
        // Taking part in a bootstrap a peer started is bootstrapping from nothing too: a
        // member of it that started empty beside restored ones would hold other data.
        return from_peer_list(list, settings, me).map(|p| match p.mode {
            Mode::New => p.bootstrapping_from_nothing(observed),
            _ => p,
        });
    }
    // The data directory is not named, and the file names this instance as a member: it is
    // taken to hold that member's data, as a reboot is. A new bootstrap decided here would
    // let instances that never were members take part in it beside the old cluster, which
    // this one restarts from its data.
    if let Some((mode, _)) = kept_file(observed) {
        return Ok(Plan::new(
            mode,
            vec![],
            "no member answered; the env file names this instance as a member and the data \
             directory is not named (--etcd-data-dir): etcd starts as that file said (from its \
             data, if it holds the member's)"
                .into(),
        ));
    }
    // Rule 11: this node's file names it as a member and its data is gone, and nobody
    // answers. That is a partition or an outage, not a group without a cluster: a `new` here
    // would start an empty log under the old cluster's name. A bootstrap's member whose etcd
    // never ran from its file lost nothing: it resumes that bootstrap, as the file says.
    if observed.local_data == LocalData::Missing {
        if resumed_bootstrap(observed).is_some() {
            return Ok(Plan::new(
                Mode::New,
                vec![],
                "no member answered; this node's etcd never ran from its bootstrap file: \
                 resuming that bootstrap"
                    .into(),
            )
            .bootstrapping_from_nothing(observed));
        }
        // etcd never ran from a bootstrap file whose cluster can no longer form (most of its
        // instances are gone): nothing was lost here, and the node decides afresh.
        let bootstrap_never_ran = observed.never_started
            && matches!(observed.previous_file, PreviousFile::Bootstrap { .. });
        if observed.previous_file != PreviousFile::NotAMember && !bootstrap_never_ran {
            return wait(format!(
                "the data directory is empty but the env file names {} as a member: waiting \
                 for the cluster's members to answer (if the whole cluster is gone for good, \
                 delete the env file to bootstrap anew)",
                me.id
            ));
        }
    }
    // Rule 17: the last join recorded the cluster's members in the group's tags. While one of
    // those instances other than this one is still counted, the cluster may run there out of
    // this node's reach (its etcd down for a moment, no TCP session to it): a node that never
    // was a member waits for it rather than bootstrap beside it.
    if observed.previous_file == PreviousFile::NotAMember {
        if let Some(named) = recorded_members_counted(observed, me) {
            return wait(format!(
                "no member answered, but the group's tag etcd-discovery:members names {} of a \
                 cluster that ran, still in the group: waiting for it to answer (if that \
                 cluster is gone for good, delete the tag to bootstrap anew)",
                named.join(", ")
            ));
        }
    }
    // Rule 14: a seed recorded its bootstrap for the group before its etcd started, and
    // a quorum of the recorded instances is still counted: that bootstrap can still form, and
    // may have begun (the seed's etcd ran, maybe with others). Its members take part in it as
    // recorded, even with the seed gone; the others join once it has a leader. Bootstrapping
    // anew here would make a second cluster beside it.
    if let Some(record) = live_record(observed) {
        let mine = settings.peer_url(me)?;
        let entries: Vec<(&str, &str)> = entries(record).collect();
        return match entries.iter().find(|(name, _)| *name == me.id) {
            Some((_, url)) if *url == mine => Ok(Plan::new(
                Mode::New,
                vec![],
                format!(
                    "no member answered; taking part in the bootstrap of {} members recorded for \
                     the group",
                    entries.len()
                ),
            )
            .bootstrapping_from_nothing(observed)),
            Some((_, url)) => Err(Error::Usage(format!(
                "the group's bootstrap record (tag etcd-discovery:initial-cluster, or the \
                 etcd-discovery-bootstrap object beside the snapshots) names this instance at {url}, but its peer URL is {mine}: run with the settings the \
                 group bootstrapped with"
            ))),
            None => wait(format!(
                "a bootstrap of {} members recorded for the group is under way without \
                 this instance; it joins once that cluster has a leader",
                entries.len()
            )),
        };
    }
    let visible = observed.instances.len();
    let desired = observed.desired_capacity as usize;
    if visible < desired {
        return wait(format!(
            "{visible} of the group's {desired} desired instances are visible"
        ));
    }
    for instance in &observed.instances {
        if let Err(Error::NotReady(why)) = settings.peer_url(instance) {
            return wait(why);
        }
    }
    // Rule 16: an instance on its way out runs its etcd until it is gone, and this node did
    // not reach it (no TCP session counts as absence). Its member may be the whole cluster (a
    // group of one scaled in while its replacement boots): a bootstrap now could run beside
    // it. The `leave` hook ends within moments; the bootstrap waits for that.
    if !observed.leaving.is_empty() {
        return wait(format!(
            "no member answered, but {} still listed on the way out of the group may run a \
             member this instance cannot reach: not bootstrapping until gone",
            observed.leaving.join(", ")
        ));
    }
    // Rule 1b: only the seed decides the initial cluster; the others take it from the seed.
    match seed(&observed.instances) {
        Some(seed) if seed.id != me.id => wait(format!(
            "no member answered yet: {} (launched first) bootstraps the cluster, this instance \
             takes part once its etcd is up",
            seed.id
        )),
        _ => Ok(Plan {
            record: Some(initial_cluster_from_instances(&observed.instances, settings)?),
            ..Plan::new(
                Mode::New,
                vec![],
                format!(
                    "no member answered: bootstrapping a new cluster of the group's {visible} instances"
                ),
            )
            .bootstrapping_from_nothing(observed)
        }),
    }
}

/// The look again just before a removal of another instance's member (a join's, a
/// reconcile's): an instance the group counts now that this run's look did not may be the
/// one whose member the plan calls gone (put back in service from a warm pool that reuses
/// instances, with that member's data). `Some(id)`: remove nothing, the next run looks again.
pub fn entered_since_look<'a>(observed: &Observed, counted_now: &'a [String]) -> Option<&'a str> {
    counted_now
        .iter()
        .find(|id| !observed.instances.iter().any(|i| &i.id == *id))
        .map(String::as_str)
}

/// Rule 14 in the group's tags, just before the seed writes its record: a tag has no
/// conditional write, so the seed reads the group again and records only if the group is as
/// its look found it. An instance counted now that the look did not may be launched before
/// this seed (a warm one put in service): it is then the seed of the group as it now is, and
/// if it looked before this record was written it decides too (the simulation's K10). A
/// record that changed since the look is another seed's, which the next run follows. Either
/// way nothing is written yet, so no other instance can have taken part in this bootstrap,
/// and the next run decides again. `record_now` and `counted_now`: the group as read again.
pub fn may_record(
    observed: &Observed,
    record_now: Option<&str>,
    counted_now: &[String],
) -> std::result::Result<(), String> {
    if record_now != observed.bootstrap_record.as_deref() {
        return Err(
            "another instance recorded a bootstrap for the group since this run looked: \
             recording nothing, deciding again"
                .into(),
        );
    }
    match entered_since_look(observed, counted_now) {
        Some(id) => Err(format!(
            "the group counts instance {id} since this run looked (if launched before this \
             one, it is the group's seed now): recording nothing, deciding again"
        )),
        None => Ok(()),
    }
}

/// Rule 14's read-back, once the seed has written its record and read the group again:
/// `Ok` to bootstrap, else why the next run decides again. `record_now` is the group's record
/// as read again, `mine` the initial cluster this seed recorded, `counted_now` the instances
/// the group counts now. A seed scaled in meanwhile must not start a member; a record
/// another seed wrote after this one (another view of a group that changed) is the one the
/// group goes by.
pub fn read_back(
    record_now: Option<&str>,
    mine: &str,
    counted_now: &[String],
    me: &str,
) -> std::result::Result<(), &'static str> {
    if !counted_now.iter().any(|id| id == me) {
        return Err(
            "this instance left the group's count while it recorded its bootstrap (scaled in?): \
             not bootstrapping",
        );
    }
    if record_now != Some(mine) {
        return Err(
            "another instance recorded a different bootstrap for the group meanwhile: \
             deciding again",
        );
    }
    Ok(())
}

/// The `(name, url)` entries of an initial-cluster list (`name=url,...`), as the records hold
/// them.
fn entries(list: &str) -> impl Iterator<Item = (&str, &str)> {
    list.split(',').filter_map(|e| e.split_once('='))
}

/// The instances other than `me` that rule 17's record names and the group still counts.
fn recorded_members_counted(observed: &Observed, me: &Instance) -> Option<Vec<String>> {
    let named: Vec<String> = observed
        .members_record
        .as_deref()
        .map(entries)?
        .map(|(name, _)| name)
        .filter(|name| *name != me.id && observed.instances.iter().any(|i| i.id == *name))
        .map(str::to_string)
        .collect();
    (!named.is_empty()).then_some(named)
}

/// The group's bootstrap record, when its cluster can still form (see `can_still_form`).
/// Otherwise it is ignored: whatever ran of it is lost with the majority.
fn live_record(observed: &Observed) -> Option<&str> {
    observed
        .bootstrap_record
        .as_deref()
        .filter(|record| can_still_form(record, observed))
}

/// Whether the bootstrap of `initial_cluster` (`name=url,...`) can still form: a quorum of the
/// instances it names is still counted. With fewer it never gets a leader.
fn can_still_form(initial_cluster: &str, observed: &Observed) -> bool {
    let names: Vec<&str> = entries(initial_cluster).map(|(name, _)| name).collect();
    let counted = names
        .iter()
        .filter(|name| observed.instances.iter().any(|i| i.id == **name))
        .count();
    !names.is_empty() && counted >= quorum(names.len())
}

/// The initial cluster of the bootstrap this node's file was written for, when its etcd never
/// ran from it and nobody answers: the bootstrap was decided, so it is resumed as it was.
fn resumed_bootstrap(observed: &Observed) -> Option<&str> {
    match &observed.previous_file {
        PreviousFile::Bootstrap {
            initial_cluster, ..
        } if observed.never_started
            && observed.local_data == LocalData::Missing
            && observed.members.is_none()
            && observed.peer_list.is_none()
            && can_still_form(initial_cluster, observed) =>
        {
            Some(initial_cluster)
        }
        _ => None,
    }
}

/// This member's peer URLs as the file's initial cluster names them (etcd requires its
/// advertised ones to be those), and this instance named the same way: by IP when they are by
/// IP. They differ from this run's naming when a kept or resumed file was written while EC2
/// told this instance by IP (a VPC that gives no DNS names) and only instance metadata names
/// it now (EC2 does not list it yet, and no peer tells).
fn as_the_file_names(
    initial_cluster: &str,
    me: Instance,
    settings: &Settings,
) -> Result<(String, Instance)> {
    let named: Vec<&str> = entries(initial_cluster)
        .filter(|(name, _)| *name == me.id)
        .map(|(_, url)| url)
        .collect();
    if named.is_empty() {
        return Ok((settings.peer_url(&me)?, me));
    }
    let by_ip = named.iter().all(|u| url_host(u) == me.private_ip);
    let me = match by_ip {
        true => Instance {
            private_dns: String::new(),
            ..me
        },
        false => me,
    };
    Ok((named.join(","), me))
}

/// When nobody answers and the data directory is not named: the state and initial cluster of
/// the previous file, when it names this instance as a member. Whether etcd holds that
/// member's data is not known, so it starts as that file said: with data it ignores the
/// initial-cluster settings; without, it takes part in the file's bootstrap or join, the one
/// its peers know (a join's etcd waits for them to answer).
fn kept_file(observed: &Observed) -> Option<(Mode, &str)> {
    let nobody_answered = observed.members.is_none() && observed.peer_list.is_none();
    if observed.local_data != LocalData::Unknown || !nobody_answered {
        return None;
    }
    match &observed.previous_file {
        PreviousFile::Bootstrap {
            initial_cluster, ..
        } => Some((Mode::New, initial_cluster)),
        PreviousFile::Member { initial_cluster } => Some((Mode::Existing, initial_cluster)),
        PreviousFile::NotAMember => None,
    }
}

/// No client port answered but a peer port listed the members: their etcd has no leader.
fn from_peer_list(list: &[Member], settings: &Settings, me: &Instance) -> Result<Plan> {
    let mine = settings.peer_url(me)?;
    let listed = list
        .iter()
        .find(|m| m.name == me.id || m.peer_urls.contains(&mine));
    // Rule 12: a bootstrap is under way (no member has published). Its initial cluster was
    // decided by the seed: take part in it as it is, or wait for its leader and then join
    // like any replacement.
    if bootstrapping(list) {
        if listed.is_some() {
            return Ok(Plan::new(
                Mode::New,
                vec![],
                format!(
                    "taking part in the bootstrap of the cluster of {} members a peer started",
                    list.len()
                ),
            ));
        }
        return Ok(Plan::new(
            Mode::Wait,
            vec![],
            format!(
                "a cluster of {} members is being bootstrapped without this instance; it joins \
                 once that cluster has a leader",
                list.len()
            ),
        ));
    }
    // Rule 13: a formed cluster without a leader that counts on this instance, listed but
    // never started (an initial member that was late, an add whose etcd never ran): its start
    // may be what restores the quorum. It starts as that member, changing nothing.
    if let Some(member) = listed.filter(|m| m.client_urls.is_empty()) {
        return Ok(Plan::new(
            Mode::Existing,
            vec![],
            format!(
                "no member serves clients, but the cluster of {} lists this instance as member \
                 {:x}, never started: starting it (it may be what restores the quorum)",
                list.len(),
                member.id
            ),
        ));
    }
    Err(Error::Etcd {
        what: "member list".into(),
        detail: format!(
            "the {} members' peer ports answer but no member serves clients: the cluster has no \
             leader; waiting for its members to come back",
            list.len()
        ),
        transient: true,
    })
}

/// Rule 17's record after `leave` or `reconcile`: the members `actions` leave, as
/// `ETCD_INITIAL_CLUSTER` names them; `None` when they remove nobody, or nobody answered.
pub fn members_left(observed: &Observed, actions: &[Action]) -> Option<String> {
    let members = observed.members.as_deref()?;
    let removes = actions.iter().any(|a| matches!(a, Action::Remove { .. }));
    removes.then(|| {
        initial_cluster_from_members(
            &predicted_members(members, actions),
            &observed.instances,
            &me_as_instance(observed),
        )
    })
}

/// The member list once `actions` are done, as etcd will show it: removed members gone, this
/// instance added unstarted. Used for `--dry-run`; a real run asks etcd instead.
pub fn predicted_members(members: &[Member], actions: &[Action]) -> Vec<Member> {
    let mut after: Vec<Member> = members
        .iter()
        .filter(|m| {
            !actions
                .iter()
                .any(|a| matches!(a, Action::Remove { id, .. } if *id == m.id))
        })
        .cloned()
        .collect();
    for action in actions {
        if let Action::Add { peer_url } | Action::AddLearner { peer_url } = action {
            after.push(Member {
                id: 0,
                name: String::new(),
                peer_urls: vec![peer_url.clone()],
                client_urls: vec![],
                is_learner: matches!(action, Action::AddLearner { .. }),
            });
        }
    }
    after
}

/// `ETCD_INITIAL_CLUSTER` for joining: every member and every peer URL, as `etcdctl member
/// add` prints it. An unstarted member has no name yet; it gets the id of the instance at its
/// address (the name it will start with), so two unstarted members never share the name "".
pub fn initial_cluster_from_members(
    members: &[Member],
    instances: &[Instance],
    me: &Instance,
) -> String {
    let mut entries: Vec<String> = Vec::new();
    for member in members {
        let name = if member.is_started() {
            member.name.clone()
        } else if member_is_instance(member, me) {
            me.id.clone()
        } else {
            instances
                .iter()
                .find(|i| member_is_instance(member, i))
                .map(|i| i.id.clone())
                .unwrap_or_default()
        };
        for peer_url in &member.peer_urls {
            entries.push(format!("{name}={peer_url}"));
        }
    }
    entries.sort();
    entries.join(",")
}

/// `ETCD_INITIAL_CLUSTER` for a new cluster: every counted instance, sorted by id.
pub fn initial_cluster_from_instances(
    instances: &[Instance],
    settings: &Settings,
) -> Result<String> {
    let mut entries = instances
        .iter()
        .map(|i| Ok(format!("{}={}", i.id, settings.peer_url(i)?)))
        .collect::<Result<Vec<_>>>()?;
    entries.sort();
    Ok(entries.join(","))
}

/// The variables for etcd. `members` is the member list after the plan's changes (for a new
/// cluster, `None`).
pub fn environment(
    plan: &Plan,
    observed: &Observed,
    members: Option<&[Member]>,
    settings: &Settings,
) -> Result<Vec<(&'static str, String)>> {
    // Rule 20: the plan was made as for a node without data or file; so is its file (the dead
    // bootstrap's peer list and file must not name its initial cluster).
    if plan.set_aside_data == Some(SetAside::Unformed) {
        if let Some((without, _)) = leaving_unformed_bootstrap(observed, settings) {
            return environment(plan, &without, members, settings);
        }
    }
    let me = me_as_instance(observed);
    let mut env = vec![("ETCD_NAME", me.id.clone())];
    let initial_cluster = match plan.mode {
        Mode::Proxy => {
            let started: Vec<&Member> = members
                .unwrap_or_default()
                .iter()
                .filter(|m| m.is_started())
                .collect();
            let (cluster, endpoints) = if started.is_empty() {
                let endpoints = observed
                    .instances
                    .iter()
                    .map(|i| settings.client_url(i))
                    .collect::<Result<Vec<_>>>()?;
                (
                    initial_cluster_from_instances(&observed.instances, settings)?,
                    endpoints,
                )
            } else {
                let owned: Vec<Member> = started.iter().map(|m| (*m).clone()).collect();
                let endpoints = started
                    .iter()
                    .flat_map(|m| m.client_urls.iter().cloned())
                    .collect();
                (
                    initial_cluster_from_members(&owned, &observed.instances, &me),
                    endpoints,
                )
            };
            // Sorted: etcd lists members in ID order, which says nothing; a stable file does.
            let mut endpoints = endpoints;
            endpoints.sort();
            env.push(("ETCD_PROXY", "on".into()));
            env.push(("ETCD_INITIAL_CLUSTER", cluster));
            env.push(("ETCD_ENDPOINTS", endpoints.join(",")));
            return Ok(env);
        }
        Mode::Wait => {
            return Err(Error::NotReady(
                "the plan is to wait; there is nothing to write yet".into(),
            ));
        }
        Mode::New => {
            env.push(("ETCD_INITIAL_CLUSTER_STATE", "new".into()));
            let resumed = resumed_bootstrap(observed).or(kept_file(observed).map(|(_, c)| c));
            // A client list only for a late initial member (rule 18), whose initial cluster
            // `late_initial` gives.
            let listed = observed.peer_list.as_ref().or(observed.members.as_ref());
            let late = late_initial(observed, settings)?.map(|(_, cluster)| cluster);
            let cluster = match (late, listed, resumed) {
                (Some(late), _, _) => late,
                // Exactly the seed's initial cluster: the same URLs and token give the same
                // cluster ID.
                (None, Some(list), _) => {
                    initial_cluster_from_members(list, &observed.instances, &me)
                }
                (None, None, Some(resumed)) => resumed.to_string(),
                (None, None, None) => match live_record(observed) {
                    Some(record) => record.to_string(),
                    None => initial_cluster_from_instances(&observed.instances, settings)?,
                },
            };
            env.push(("ETCD_INITIAL_CLUSTER", cluster.clone()));
            env.push(("ETCD_INITIAL_CLUSTER_TOKEN", settings.cluster_token.clone()));
            cluster
        }
        Mode::Existing => {
            env.push(("ETCD_INITIAL_CLUSTER_STATE", "existing".into()));
            let cluster = match kept_file(observed) {
                Some((_, kept)) => kept.to_string(),
                None => initial_cluster_from_members(
                    // Rule 13's start of a listed member, with no client list to go by.
                    members
                        .or(observed.peer_list.as_deref())
                        .unwrap_or_default(),
                    &observed.instances,
                    &me,
                ),
            };
            env.push(("ETCD_INITIAL_CLUSTER", cluster.clone()));
            cluster
        }
    };
    let (peer_urls, me) = as_the_file_names(&initial_cluster, me, settings)?;
    let ip = &me.private_ip;
    env.push(("ETCD_INITIAL_ADVERTISE_PEER_URLS", peer_urls));
    env.push(("ETCD_ADVERTISE_CLIENT_URLS", settings.client_url(&me)?));
    // Listen URLs must be IPs: etcd refuses names there.
    env.push((
        "ETCD_LISTEN_PEER_URLS",
        url(settings.peer_scheme, ip, settings.peer_port),
    ));
    let mut listen_client = vec![url(settings.client_scheme, ip, settings.client_port)];
    if settings.listen_localhost && ip != "127.0.0.1" {
        listen_client.push(url(
            settings.client_scheme,
            "127.0.0.1",
            settings.client_port,
        ));
    }
    env.push(("ETCD_LISTEN_CLIENT_URLS", listen_client.join(",")));
    Ok(env)
}

/// A token that is the same for every node selecting the group the same way, different for
/// another selection, and safe in a URL-safe env file: a readable part plus a hash of all of it.
pub fn cluster_token(selection: &str) -> String {
    // FNV-1a, 64 bits: stable across versions and platforms, unlike std's hasher.
    let hash = selection.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let readable: String = selection
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    format!("etcd-{readable}-{:08x}", hash as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Identity;

    fn settings() -> Settings {
        Settings {
            peer_scheme: Scheme::Http,
            client_scheme: Scheme::Http,
            peer_port: 2380,
            client_port: 2379,
            address_kind: AddressKind::Ip,
            proxy_mode: false,
            cluster_token: cluster_token("etcd"),
            learner: false,
            listen_localhost: false,
            restores_snapshots: false,
        }
    }

    fn instance(n: u8) -> Instance {
        Instance {
            id: format!("i-{n}"),
            private_ip: format!("10.0.2.{n}"),
            private_dns: format!("ip-10-0-2-{n}.ec2.internal"),
            launch_time: format!("2026-11-28T05:00:{n:02}.000Z"),
        }
    }

    fn member(id: u64, name: &str, ip: &str) -> Member {
        Member {
            id,
            name: name.into(),
            peer_urls: vec![format!("http://{ip}:2380")],
            client_urls: if name.is_empty() {
                vec![]
            } else {
                vec![format!("http://{ip}:2379")]
            },
            is_learner: false,
        }
    }

    /// An observation where every started member whose instance is listed is healthy (its
    /// etcd answers), except this node's own (its etcd is not running yet), the group is
    /// complete, and the data directory intact.
    fn observed(me: u8, instances: &[u8], members: Option<Vec<Member>>) -> Observed {
        let i = instance(me);
        let instances: Vec<Instance> = instances.iter().map(|n| instance(*n)).collect();
        let healthy: Vec<u64> = members
            .iter()
            .flatten()
            .filter(|m| {
                m.is_started()
                    && instances
                        .iter()
                        .any(|i| i.id != format!("i-{me}") && member_is_instance(m, i))
            })
            .map(|m| m.id)
            .collect();
        Observed {
            me: Identity {
                instance_id: i.id,
                private_ip: i.private_ip,
                private_dns: i.private_dns,
                region: "eu-west-1".into(),
                availability_zone: "eu-west-1a".into(),
            },
            desired_capacity: instances.len() as u32,
            instances,
            leaving: Vec::new(),
            members,
            peer_list: None,
            present: healthy.clone(),
            healthy,
            local_data: LocalData::Unknown,
            cluster_version_undecided: false,
            cluster_id: None,
            previous_file: PreviousFile::NotAMember,
            never_started: false,
            never_led_bootstrap: None,
            never_led_cluster_id: None,
            bootstrap_instances_left: None,
            bootstrap_record: None,
            bootstrap_restores: None,
            members_record: None,
        }
    }

    #[test]
    fn rule_18_an_etcd_that_joins_from_no_data_waits_for_the_cluster_version() {
        // An initial member of the bootstrap, listed by name but never started: the late one.
        let late = || {
            let mut members = three_members();
            members.push(Member {
                client_urls: vec![],
                ..member(14, "i-4", "10.0.2.4")
            });
            members
        };
        let cases = [
            // No cluster ID proves this list the initial cluster: it waits (the next test
            // has the proof, and then it takes part in the bootstrap).
            (
                "late initial member, no data, undecided",
                late(),
                LocalData::Missing,
                true,
                Mode::Wait,
                0,
            ),
            (
                "late initial member, no data, decided",
                late(),
                LocalData::Missing,
                false,
                Mode::Existing,
                0,
            ),
            (
                "late initial member, data not named, undecided",
                late(),
                LocalData::Unknown,
                true,
                Mode::Wait,
                0,
            ),
            (
                "a join, data not named, undecided",
                three_members(),
                LocalData::Unknown,
                true,
                Mode::Wait,
                0,
            ),
            (
                "a started member, data not named: etcd restarts from what it has",
                [three_members(), vec![member(14, "i-4", "10.0.2.4")]].concat(),
                LocalData::Unknown,
                true,
                Mode::Existing,
                0,
            ),
            (
                "a join, undecided: no add yet",
                three_members(),
                LocalData::Missing,
                true,
                Mode::Wait,
                0,
            ),
            (
                "a join, decided",
                three_members(),
                LocalData::Missing,
                false,
                Mode::Existing,
                1,
            ),
            // etcd restarts from its write-ahead log and asks nobody for the version.
            (
                "a member with its data",
                late(),
                LocalData::Present,
                true,
                Mode::Existing,
                0,
            ),
        ];
        for (name, members, local_data, undecided, mode, actions) in cases {
            let mut seen = observed(4, &[1, 2, 3, 4], Some(members));
            seen.local_data = local_data;
            seen.cluster_version_undecided = undecided;
            let plan = plan(&seen, &settings()).unwrap();
            assert_eq!(
                (plan.mode, plan.actions.len()),
                (mode, actions),
                "{name}: {plan:?}"
            );
            if mode == Mode::Wait {
                assert!(
                    plan.summary.contains("has not decided its version"),
                    "{name}"
                );
            }
        }
        // A bootstrap asks nobody: there is no version to wait for.
        let mut seen = observed(1, &[1, 2, 3], None);
        seen.cluster_version_undecided = true;
        assert_eq!(plan(&seen, &settings()).unwrap().mode, Mode::New);
    }

    /// Rule 18's exception (the simulation's K11): an initial member that never started takes
    /// part in the bootstrap (`new`, the initial cluster and token), from a client port's list
    /// or, without a leader, a peer port's, when etcd's IDs prove the list is still the
    /// initial cluster. While the cluster has not decided its version etcd would refuse it
    /// `existing`, which a cluster that lost its leader in that moment never decides without
    /// it; after that, `existing` without data waits for every peer's version with no time
    /// limit, and two late members started at once wait for each other (lab:
    /// `two_late_initial_members_start_at_once`). Only with a bucket, once the version is
    /// decided, does it join `existing`: its bootstrap's snapshot may no longer be the newest.
    #[test]
    fn rule_18_a_late_initial_member_takes_part_in_the_bootstrap() {
        use crate::model::{cluster_id, initial_member_id};
        let token = cluster_token("etcd");
        let initial = |n: u8, published: bool| {
            let url = format!("http://10.0.2.{n}:2380");
            Member {
                id: initial_member_id(std::slice::from_ref(&url), &token),
                name: format!("i-{n}"),
                peer_urls: vec![url],
                client_urls: match published {
                    true => vec![format!("http://10.0.2.{n}:2379")],
                    false => vec![],
                },
                is_learner: false,
            }
        };
        let bootstrap = |late: &[u8]| -> Vec<Member> {
            (1..=4).map(|n| initial(n, !late.contains(&n))).collect()
        };
        let id_of =
            |list: &[Member]| Some(cluster_id(&list.iter().map(|m| m.id).collect::<Vec<_>>()));
        let added = Member {
            name: String::new(),
            ..member(15, "", "10.0.2.5")
        };
        let elsewhere = Member {
            peer_urls: vec!["http://10.0.9.4:2380".into()],
            ..initial(4, false)
        };
        let with_me_elsewhere = [bootstrap(&[4])[..3].to_vec(), vec![elsewhere]].concat();
        // The modes without and with a bucket (`--snapshot-url`).
        let cases = [
            (
                "the others formed",
                bootstrap(&[4]),
                id_of(&bootstrap(&[4])),
                true,
                [Mode::New, Mode::New],
            ),
            (
                "two were late",
                bootstrap(&[3, 4]),
                id_of(&bootstrap(&[3, 4])),
                true,
                [Mode::New, Mode::New],
            ),
            // `existing` without data waits for every peer's version with no time limit: two
            // late members would wait for each other. With a bucket the newest snapshot may
            // be a later one than its bootstrap restored: `existing` gets the data.
            (
                "version decided",
                bootstrap(&[4]),
                id_of(&bootstrap(&[4])),
                false,
                [Mode::New, Mode::Existing],
            ),
            (
                "two were late, version decided",
                bootstrap(&[3, 4]),
                id_of(&bootstrap(&[3, 4])),
                false,
                [Mode::New, Mode::Existing],
            ),
            // Not the initial cluster any more: `new` would make another cluster ID.
            (
                "a member added since",
                [bootstrap(&[4]), vec![added.clone()]].concat(),
                id_of(&bootstrap(&[4])),
                true,
                [Mode::Wait, Mode::Wait],
            ),
            (
                "a member added since, version decided",
                [bootstrap(&[4]), vec![added.clone()]].concat(),
                id_of(&bootstrap(&[4])),
                false,
                [Mode::Existing, Mode::Existing],
            ),
            (
                "a member removed since",
                bootstrap(&[4])[1..].to_vec(),
                id_of(&bootstrap(&[4])),
                true,
                [Mode::Wait, Mode::Wait],
            ),
            (
                "a member removed since, version decided",
                bootstrap(&[4])[1..].to_vec(),
                id_of(&bootstrap(&[4])),
                false,
                [Mode::Existing, Mode::Existing],
            ),
            (
                "no peer port named the cluster's ID",
                bootstrap(&[4]),
                None,
                true,
                [Mode::Wait, Mode::Wait],
            ),
            (
                "no peer port named the cluster's ID, version decided",
                bootstrap(&[4]),
                None,
                false,
                [Mode::Existing, Mode::Existing],
            ),
            // etcd names the member by its URL: another URL is another member.
            (
                "listed at another peer URL",
                with_me_elsewhere.clone(),
                id_of(&with_me_elsewhere),
                true,
                [Mode::Wait, Mode::Wait],
            ),
        ];
        for (name, list, named_id, undecided, modes) in cases {
            for (through_peer_port, bucket) in [(false, false), (true, false), (false, true)] {
                let mut seen = if through_peer_port {
                    let mut seen = observed(4, &[1, 2, 3, 4], None);
                    seen.peer_list = Some(list.clone());
                    seen
                } else {
                    observed(4, &[1, 2, 3, 4], Some(list.clone()))
                };
                seen.local_data = LocalData::Missing;
                seen.cluster_version_undecided = undecided;
                seen.cluster_id = named_id;
                let settings = Settings {
                    restores_snapshots: bucket,
                    ..settings()
                };
                let mode = modes[usize::from(bucket)];
                let p = plan(&seen, &settings).unwrap();
                let label = format!(
                    "{name} (through the peer port: {through_peer_port}, bucket: {bucket})"
                );
                assert_eq!(p.mode, mode, "{label}: {p:?}");
                if mode != Mode::New {
                    continue;
                }
                assert!(
                    p.restore,
                    "{label}: restores as its bootstrap did, with a bucket"
                );
                let env = environment(&p, &seen, seen.members.as_deref(), &settings).unwrap();
                let get = |key: &str| {
                    env.iter()
                        .find(|(k, _)| *k == key)
                        .map(|(_, v)| v.as_str())
                        .unwrap()
                };
                assert_eq!(get("ETCD_INITIAL_CLUSTER_STATE"), "new", "{label}");
                assert_eq!(
                    get("ETCD_INITIAL_CLUSTER"),
                    "i-1=http://10.0.2.1:2380,i-2=http://10.0.2.2:2380,\
                     i-3=http://10.0.2.3:2380,i-4=http://10.0.2.4:2380",
                    "{label}: exactly the members, so etcd computes the cluster's ID"
                );
                assert_eq!(get("ETCD_INITIAL_CLUSTER_TOKEN"), token);
            }
        }
        // After a member was added or removed, the group's record of the bootstrap (rule 14)
        // is the initial cluster when etcd's IDs prove it: `new` from it replays the changes.
        let record = "i-1=http://10.0.2.1:2380,i-2=http://10.0.2.2:2380,\
                      i-3=http://10.0.2.3:2380,i-4=http://10.0.2.4:2380";
        let other_bootstrap = "i-1=http://10.0.2.1:2380,i-4=http://10.0.2.4:2380";
        let changed = [
            [bootstrap(&[4]), vec![added.clone()]].concat(),
            bootstrap(&[4])[1..].to_vec(),
        ];
        // With a bucket, once the version is decided, only a record that says what its
        // bootstrap restored lets the late member restore the same (`recorded_restore`).
        let snapshot = || Some(Restores::Snapshot("etcd/etcd-snapshot-1-r9.db".into()));
        // (the record, version undecided, bucket, what it says its bootstrap restored, mode)
        let record_cases = [
            (record, false, false, None, Mode::New),
            (record, true, false, None, Mode::New),
            (record, true, true, None, Mode::New),
            (record, false, true, None, Mode::Existing),
            (record, false, true, snapshot(), Mode::New),
            (record, false, true, Some(Restores::Nothing), Mode::New),
            (other_bootstrap, false, false, None, Mode::Existing),
            (other_bootstrap, true, false, None, Mode::Wait),
            (other_bootstrap, false, true, snapshot(), Mode::Existing),
        ];
        for list in &changed {
            for (recorded, undecided, bucket, restores, mode) in record_cases.clone() {
                let mut seen = observed(4, &[1, 2, 3, 4], Some(list.clone()));
                seen.local_data = LocalData::Missing;
                seen.cluster_version_undecided = undecided;
                seen.cluster_id = id_of(&bootstrap(&[4]));
                seen.bootstrap_record = Some(recorded.into());
                seen.bootstrap_restores = restores;
                let settings = Settings {
                    restores_snapshots: bucket,
                    ..settings()
                };
                let label = format!(
                    "{} members, record {recorded}, {undecided}, {bucket}, {:?}",
                    list.len(),
                    seen.bootstrap_restores
                );
                let p = plan(&seen, &settings).unwrap();
                assert_eq!(p.mode, mode, "{label}: {p:?}");
                if mode == Mode::New {
                    let env = environment(&p, &seen, seen.members.as_deref(), &settings).unwrap();
                    assert!(
                        env.contains(&("ETCD_INITIAL_CLUSTER", record.to_string())),
                        "{label}: {env:?}"
                    );
                    assert!(p.restore, "{label}");
                    assert_eq!(
                        recorded_restore(&seen, record),
                        seen.bootstrap_restores.as_ref(),
                        "{label}"
                    );
                }
            }
        }
        // The list itself proves the initial cluster; with a bucket and the version decided
        // the record must still say what the bootstrap restored, in whatever order it names
        // the members.
        let reordered = "i-4=http://10.0.2.4:2380,i-3=http://10.0.2.3:2380,\
                         i-2=http://10.0.2.2:2380,i-1=http://10.0.2.1:2380";
        // As many members, one of them another instance: another bootstrap's record.
        let same_size_other = "i-1=http://10.0.2.1:2380,i-2=http://10.0.2.2:2380,\
                               i-3=http://10.0.2.3:2380,i-5=http://10.0.2.5:2380";
        for (recorded, restores, mode) in [
            (record, snapshot(), Mode::New),
            (reordered, snapshot(), Mode::New),
            (record, None, Mode::Existing),
            (other_bootstrap, snapshot(), Mode::Existing),
            (same_size_other, snapshot(), Mode::Existing),
        ] {
            let mut seen = observed(4, &[1, 2, 3, 4], Some(bootstrap(&[4])));
            seen.local_data = LocalData::Missing;
            seen.cluster_id = id_of(&bootstrap(&[4]));
            seen.bootstrap_record = Some(recorded.into());
            seen.bootstrap_restores = restores;
            let settings = Settings {
                restores_snapshots: true,
                ..settings()
            };
            let p = plan(&seen, &settings).unwrap();
            assert_eq!(
                p.mode, mode,
                "{recorded}, {:?}: {p:?}",
                seen.bootstrap_restores
            );
        }
        // A cluster restored from a snapshot names no member until it publishes: this
        // instance's entry is known by the ID etcd gives an initial member at its URL (an
        // added member's has the time of its add in it).
        let unnamed = |id: u64| {
            let mut list = bootstrap(&[4]);
            list[3].name = String::new();
            list[3].id = id;
            list
        };
        let initial_id = bootstrap(&[4])[3].id;
        for (list, mode) in [
            (unnamed(initial_id), Mode::New),
            (unnamed(initial_id ^ 1), Mode::Existing),
        ] {
            let mut seen = observed(4, &[1, 2, 3, 4], Some(list));
            seen.local_data = LocalData::Missing;
            seen.cluster_id = id_of(&bootstrap(&[4]));
            seen.bootstrap_record = Some(record.into());
            seen.bootstrap_restores = snapshot();
            let settings = Settings {
                restores_snapshots: true,
                ..settings()
            };
            assert_eq!(may_be_late_initial(&seen, &settings), mode == Mode::New);
            let p = plan(&seen, &settings).unwrap();
            assert_eq!(p.mode, mode, "{p:?}");
        }
        // Rule 20, then rule 18 (simulation, seed 1, schedule 1215): i-4's etcd ran in the
        // bootstrap {4, 6, 7}, which can never form (EC2 has 1 of its instances), and the
        // group's next bootstrap formed without it. Rule 20 decides as a node without data:
        // a late initial member of that one, so its run asks what such a member's run asks
        // (the version, the bucket's record: `may_be_late_initial`). Before, the run asked
        // nothing of it (its data was there when it looked), and it joined `existing`
        // without data, which etcd refuses while no version is decided.
        let dead = "i-4=http://10.0.2.4:2380,i-6=http://10.0.2.6:2380,i-7=http://10.0.2.7:2380";
        // (version undecided, bucket, what the record says its bootstrap restored, mode)
        for (undecided, bucket, restores, mode) in [
            (true, false, None, Mode::New),
            (false, false, None, Mode::New),
            (true, true, None, Mode::New),
            (false, true, snapshot(), Mode::New),
            (false, true, None, Mode::Existing),
        ] {
            let mut seen = observed(4, &[1, 2, 3, 4], Some(bootstrap(&[4])));
            seen.local_data = LocalData::Present;
            seen.previous_file = PreviousFile::Bootstrap {
                initial_cluster: dead.into(),
                data_fingerprint: None,
            };
            seen.never_led_bootstrap = Some(dead.into());
            seen.bootstrap_instances_left = Some(1);
            seen.cluster_id = id_of(&bootstrap(&[4]));
            seen.cluster_version_undecided = undecided;
            seen.bootstrap_record = Some(record.into());
            seen.bootstrap_restores = restores;
            let settings = Settings {
                restores_snapshots: bucket,
                ..settings()
            };
            let label = format!("{undecided}, {bucket}, {:?}", seen.bootstrap_restores);
            assert!(leaves_unformed_bootstrap(&seen, &settings), "{label}");
            assert!(may_be_late_initial(&seen, &settings), "{label}");
            let p = plan(&seen, &settings).unwrap();
            assert_eq!(p.mode, mode, "{label}: {p:?}");
            assert_eq!(p.set_aside_data, Some(SetAside::Unformed), "{label}");
        }
    }

    fn three_members() -> Vec<Member> {
        vec![
            member(11, "i-1", "10.0.2.1"),
            member(12, "i-2", "10.0.2.2"),
            member(13, "i-3", "10.0.2.3"),
        ]
    }

    impl Observed {
        /// These members have a leader; the others are provably down.
        fn with_healthy(mut self, ids: &[u64]) -> Observed {
            self.healthy = ids.to_vec();
            self.present = ids.to_vec();
            self
        }

        /// These members answer, or might, without being healthy (no leader, slow, garbled).
        fn with_present(mut self, ids: &[u64]) -> Observed {
            self.present.extend_from_slice(ids);
            self
        }
    }

    /// Rule 15: data left by a member the cluster removed (an instance a warm pool reused
    /// after a scale-in) is moved aside, and the node joins afresh, only when the proof is
    /// strong: a cluster with a healthy quorum, no member by this instance's name nor at its
    /// address.
    #[test]
    fn a_removed_members_data_is_set_aside_only_on_proof() {
        let with_data = |o: Observed| Observed {
            local_data: LocalData::Present,
            ..o
        };
        let learner = Settings {
            learner: true,
            ..settings()
        };
        let mut at_my_address = three_members();
        at_my_address.push(member(19, "i-9", "10.0.2.4"));
        let mut unstarted_mine = three_members();
        unstarted_mine.push(member(14, "", "10.0.2.4"));
        let mut named_me = three_members();
        named_me.push(member(14, "i-4", "10.0.2.4"));
        // (what, observed, settings, Ok(set aside, last action) or Err(words))
        type Want = std::result::Result<(bool, &'static str), &'static str>;
        let cases: Vec<(&str, Observed, Settings, Want)> = vec![
            (
                "removed, the cluster healthy: set aside, then added",
                with_data(observed(4, &[1, 2, 3, 4], Some(three_members()))),
                settings(),
                Ok((true, "Add")),
            ),
            (
                "the same as a learner",
                with_data(observed(4, &[1, 2, 3, 4], Some(three_members()))),
                learner.clone(),
                Ok((true, "AddLearner")),
            ),
            (
                "a member by this name: a reboot, the data stays",
                with_data(observed(4, &[1, 2, 3, 4], Some(named_me))),
                settings(),
                Ok((false, "")),
            ),
            (
                "an entry an earlier run added at this peer URL: reused, the data stays",
                with_data(observed(4, &[1, 2, 3, 4], Some(unstarted_mine))),
                settings(),
                Ok((false, "")),
            ),
            (
                "a dead member under another name at this address: no proof",
                with_data(observed(4, &[1, 2, 3, 4], Some(at_my_address.clone()))),
                settings(),
                Err("a member holds its address"),
            ),
            (
                "a live member under another name at this address",
                with_data(observed(4, &[1, 2, 3, 4], Some(at_my_address)).with_present(&[19])),
                settings(),
                Err("another etcd runs here"),
            ),
            (
                "no quorum: the list proves nothing",
                with_data(observed(4, &[1, 2, 3, 4], Some(three_members())).with_healthy(&[11])),
                settings(),
                Err("quorum lost"),
            ),
            (
                "the add would cost the quorum: nothing is moved either",
                with_data(
                    observed(4, &[1, 2, 3, 4], Some(three_members())).with_healthy(&[11, 12]),
                ),
                settings(),
                Err("below the quorum"),
            ),
        ];
        for (what, o, s, want) in cases {
            let got = plan(&o, &s);
            match (want, got) {
                (Ok((aside, last)), Ok(p)) => {
                    assert_eq!(
                        p.set_aside_data,
                        aside.then_some(SetAside::Removed),
                        "failed testcase: {what}: {p:?}"
                    );
                    assert_eq!(
                        p.summary.contains("moving it aside"),
                        aside,
                        "failed testcase: {what}: {p:?}"
                    );
                    let kind = match p.actions.last() {
                        Some(Action::Add { .. }) => "Add",
                        Some(Action::AddLearner { .. }) => "AddLearner",
                        Some(other) => panic!("failed testcase: {what}: {other:?}"),
                        None => "",
                    };
                    assert_eq!(kind, last, "failed testcase: {what}: {p:?}");
                    assert_eq!(p.mode, Mode::Existing, "failed testcase: {what}");
                }
                (Err(words), Err(e)) => {
                    assert!(
                        e.to_string().contains(words),
                        "failed testcase: {what}: {e}"
                    );
                }
                (want, got) => panic!("failed testcase: {what}: wanted {want:?}, got {got:?}"),
            }
        }
    }

    /// The reboot fast path's table: what the previous file says, what the peers (or a
    /// proxy's endpoints) list, the data directory -> the reboot plan, or the full path and
    /// why.
    #[test]
    fn a_reboot_is_decided_without_aws_only_when_the_peers_say_so() {
        let me = observed(1, &[], None).me;
        let file = |name: &str, proxy: bool| LastRun {
            name: name.into(),
            proxy,
            bootstrap: false,
            peer_urls: vec!["http://10.0.2.1:2380".into(), "http://10.0.2.2:2380".into()],
            endpoints: vec!["http://10.0.2.2:2379".into()],
        };
        let mine = file("i-1", false);
        let mine_bootstrap = LastRun {
            bootstrap: true,
            ..file("i-1", false)
        };
        let baked = file("i-7", false);
        let proxy_file = file("i-1", true);
        let baked_proxy = file("i-7", true);
        let three = three_members();
        let with_unstarted = {
            let mut m = three.clone();
            m.push(member(14, "", "10.0.2.4"));
            m
        };
        let without_me = three[1..].to_vec();
        let bootstrap: Vec<Member> = three
            .iter()
            .map(|m| Member {
                client_urls: vec![],
                ..m.clone()
            })
            .collect();
        // Rule 13: an initial member that never served, in a formed cluster without a leader.
        let mine_unpublished = {
            let mut m = three.clone();
            m[0].client_urls.clear();
            m
        };
        let elsewhere = {
            let mut m = three.clone();
            m[0].peer_urls = vec!["http://10.0.9.1:2380".into()];
            m
        };
        use LocalData::{Missing, Present, Unknown};
        type Case<'a> = (
            &'a str,
            Option<&'a LastRun>,
            Option<&'a [Member]>,
            LocalData,
            bool,
            Result<Mode, &'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                "a member by name, data here",
                Some(&mine),
                Some(&three),
                Present,
                false,
                Ok(Mode::Existing),
            ),
            (
                "data unknown counts as not lost",
                Some(&mine),
                Some(&three),
                Unknown,
                false,
                Ok(Mode::Existing),
            ),
            // Regression (simulation, a data directory not named): it may start without data,
            // and then needs the cluster's version first (rule 18), which only the full path
            // asks; the shortcut wrote `existing` and etcd refused to start.
            (
                "rules 13 and 18: never published, data not named",
                Some(&mine),
                Some(&mine_unpublished),
                Unknown,
                false,
                Err("the cluster's version is asked on the full path"),
            ),
            (
                "never published, data here",
                Some(&mine),
                Some(&mine_unpublished),
                Present,
                false,
                Ok(Mode::Existing),
            ),
            // Rule 20 (simulation): the data may be of a bootstrap that never formed, and the
            // list the group's new bootstrap's, naming this instance again at the same URL.
            (
                "a bootstrap file's member never published, data here",
                Some(&mine_bootstrap),
                Some(&mine_unpublished),
                Present,
                false,
                Err("read on the full path"),
            ),
            (
                "a bootstrap file's member that published",
                Some(&mine_bootstrap),
                Some(&three),
                Present,
                false,
                Ok(Mode::Existing),
            ),
            (
                "rules 5 and 11: data lost",
                Some(&mine),
                Some(&three),
                Missing,
                false,
                Err("no member data"),
            ),
            (
                "no file",
                None,
                Some(&three),
                Present,
                false,
                Err("no previous file"),
            ),
            (
                "an AMI bake: another instance's file",
                Some(&baked),
                Some(&three),
                Present,
                false,
                Err("written for i-7"),
            ),
            (
                "nobody answers",
                Some(&mine),
                None,
                Present,
                false,
                Err("none of the previous file's peers"),
            ),
            (
                "removed: not a member by name",
                Some(&mine),
                Some(&without_me),
                Present,
                false,
                Err("no member named i-1"),
            ),
            (
                "rule 12: a bootstrap under way",
                Some(&mine),
                Some(&bootstrap),
                Present,
                false,
                Err("bootstrapping"),
            ),
            (
                "an unstarted member's name is EC2's to tell",
                Some(&mine),
                Some(&with_unstarted),
                Present,
                false,
                Err("has not started"),
            ),
            (
                "this member at another URL than IMDS names",
                Some(&mine),
                Some(&elsewhere),
                Present,
                false,
                Err("not at http://10.0.2.1:2380"),
            ),
            (
                "a proxy file in member mode",
                Some(&proxy_file),
                Some(&three),
                Present,
                false,
                Err("a proxy's"),
            ),
            (
                "proxy: the endpoints answered",
                Some(&proxy_file),
                Some(&three),
                Unknown,
                true,
                Ok(Mode::Proxy),
            ),
            (
                "proxy: data does not matter",
                Some(&proxy_file),
                Some(&three),
                Missing,
                true,
                Ok(Mode::Proxy),
            ),
            (
                "proxy: nobody answered",
                Some(&proxy_file),
                None,
                Unknown,
                true,
                Err("endpoints answered"),
            ),
            (
                "proxy: nobody serves clients",
                Some(&proxy_file),
                Some(&bootstrap),
                Unknown,
                true,
                Err("serves clients"),
            ),
            (
                "proxy: a member's file",
                Some(&mine),
                Some(&three),
                Unknown,
                true,
                Err("a member's"),
            ),
            (
                "proxy: an AMI bake",
                Some(&baked_proxy),
                Some(&three),
                Unknown,
                true,
                Err("written for i-7"),
            ),
        ];
        for (name, last_run, members, local_data, proxy_mode, expected) in cases {
            let seen = Shortcut {
                last_run,
                me: &me,
                members,
                local_data,
            };
            let settings = Settings {
                proxy_mode,
                ..settings()
            };
            match (reboot_shortcut(&seen, &settings), expected) {
                (Ok(plan), Ok(mode)) => {
                    assert_eq!(plan.mode, mode, "failed testcase: {name}");
                    assert!(plan.actions.is_empty(), "failed testcase: {name}");
                    assert!(
                        plan.summary.contains("no AWS call"),
                        "failed testcase: {name}"
                    );
                }
                (Err(why), Err(text)) => {
                    assert!(why.contains(text), "failed testcase: {name}: {why}")
                }
                (got, want) => panic!("failed testcase: {name}: got {got:?}, want {want:?}"),
            }
        }
    }

    /// Whatever the fast path decides, the full path decides the same with the same list:
    /// the fast path is a shortcut to `plan`'s reboot, never a decision of its own.
    #[test]
    fn the_reboot_shortcut_agrees_with_the_full_plan() {
        let mut full = observed(1, &[1, 2, 3], Some(three_members())).with_healthy(&[12, 13]);
        for local_data in [LocalData::Present, LocalData::Unknown] {
            full.local_data = local_data;
            let last = LastRun {
                name: "i-1".into(),
                proxy: false,
                bootstrap: false,
                peer_urls: vec!["http://10.0.2.2:2380".into()],
                endpoints: vec![],
            };
            let seen = Shortcut {
                last_run: Some(&last),
                me: &full.me,
                members: full.members.as_deref(),
                local_data,
            };
            let fast = reboot_shortcut(&seen, &settings()).unwrap();
            let slow = plan(&full, &settings()).unwrap();
            assert_eq!((fast.mode, &fast.actions), (slow.mode, &slow.actions));
            let members = full.members.clone().unwrap();
            let without_group = Observed {
                instances: vec![],
                desired_capacity: 0,
                ..full.clone()
            };
            assert_eq!(
                environment(&fast, &without_group, Some(&members), &settings()).unwrap(),
                environment(&slow, &full, Some(&members), &settings()).unwrap(),
                "the file written without AWS is the full path's"
            );
        }
    }

    #[test]
    fn unsafe_situations_are_refused() {
        // Two of three instances gone: one member answers but there is no leader.
        let o = observed(4, &[1, 4], Some(three_members()));
        match plan(&o, &settings()) {
            Err(Error::QuorumLost {
                healthy: 1,
                voters: 3,
            }) => {}
            other => panic!("expected quorum lost, got {other:?}"),
        }
        // The same when the survivors answer but report no leader.
        let o = observed(4, &[1, 2, 3, 4], Some(three_members())).with_healthy(&[]);
        assert!(matches!(
            plan(&o, &settings()),
            Err(Error::QuorumLost {
                healthy: 0,
                voters: 3
            })
        ));
        // Scale-up while a listed member's etcd is down: adding a fourth voter with two
        // healthy would leave the cluster below quorum until the new one starts.
        let o = observed(4, &[1, 2, 3, 4], Some(three_members())).with_healthy(&[11, 12]);
        match plan(&o, &settings()) {
            Err(
                e @ Error::Etcd {
                    transient: true, ..
                },
            ) => {
                assert!(
                    e.to_string().contains("4 voters of which 2 are healthy"),
                    "{e}"
                );
                assert_eq!(e.exit_code(), 75);
            }
            other => panic!("expected a refused add, got {other:?}"),
        }
        // A reboot is never blocked by health: this member starting may restore the quorum.
        let o = observed(2, &[1, 2, 3], Some(three_members())).with_healthy(&[]);
        assert_eq!(plan(&o, &settings()).unwrap().actions, vec![]);
    }

    /// Issue 10's review: each of these removed a member that was alive, or joined from an
    /// instance the group does not count.
    #[test]
    fn live_members_are_never_removed() {
        let refused = |o: &Observed, needle: &str| {
            let e = plan(o, &settings()).unwrap_err();
            assert!(e.to_string().contains(needle), "expected {needle:?}: {e}");
            assert_eq!(e.exit_code(), 1, "a person must look: {e}");
        };
        // A started member at this node's address under another name answers healthy.
        let mut members = three_members();
        members[2] = member(13, "i-old", "10.0.2.3");
        let o = observed(3, &[1, 2, 3], Some(members)).with_healthy(&[11, 12, 13]);
        refused(&o, "another etcd runs here");
        // Rule 5 with an unmounted (nofail) volume: the directory is empty, the member is up.
        let o = Observed {
            local_data: LocalData::Missing,
            ..observed(2, &[1, 2, 3], Some(three_members())).with_healthy(&[11, 12, 13])
        };
        refused(&o, "is the data volume mounted?");
        // A member whose instance is gone but that answers slowly is kept; with it counted
        // unhealthy, adding a voter would cost the quorum, so the add waits.
        let o = observed(4, &[1, 2, 4], Some(three_members()))
            .with_healthy(&[11, 12])
            .with_present(&[13]);
        let e = plan(&o, &settings()).unwrap_err();
        assert!(e.to_string().contains("4 voters of which 2"), "{e}");
        assert_eq!(e.exit_code(), 75);
        // The same member provably down (nothing listens): removed, then the add.
        let o = observed(4, &[1, 2, 4], Some(three_members())).with_healthy(&[11, 12]);
        let p = plan(&o, &settings()).unwrap();
        assert!(matches!(p.actions[0], Action::Remove { id: 13, .. }));
        // reconcile keeps a slow member too.
        let o = observed(1, &[1, 2], Some(three_members()))
            .with_healthy(&[11, 12])
            .with_present(&[13]);
        assert_eq!(plan_reconcile(&o).unwrap().actions, vec![]);
    }

    // Found by the simulation (issue 21): two looks at a group that changed in between (an
    // instance replaced while the group boots) computed two initial clusters. Only the seed
    // (launched first) bootstraps from nothing; the others take part in its bootstrap, or
    // wait for its leader when they are not in it.
    #[test]
    fn only_the_seed_bootstraps_from_nothing() {
        let cases: Vec<(&str, Observed, Mode, &str)> = vec![
            (
                "the seed bootstraps",
                observed(1, &[1, 2, 3], None),
                Mode::New,
                "bootstrapping a new cluster",
            ),
            (
                "another waits for it",
                observed(2, &[1, 2, 3], None),
                Mode::Wait,
                "i-1 (launched first)",
            ),
            (
                "launch time, not the id, picks the seed",
                {
                    let mut o = observed(2, &[1, 2, 3], None);
                    o.instances[0].launch_time = "2026-11-28T06:00:00.000Z".into();
                    o.instances[1].launch_time = "2026-11-28T06:00:01.000Z".into();
                    o
                },
                Mode::Wait,
                "i-3 (launched first)",
            ),
            (
                "a replacement not in the bootstrap waits for its leader",
                Observed {
                    peer_list: Some(vec![Member {
                        client_urls: vec![],
                        ..member(1, "i-1", "10.0.2.1")
                    }]),
                    ..observed(4, &[1, 4], None)
                },
                Mode::Wait,
                "without this instance",
            ),
        ];
        for (case, o, mode, needle) in cases {
            let p = plan(&o, &settings()).unwrap_or_else(|e| panic!("failed testcase {case}: {e}"));
            assert_eq!(p.mode, mode, "failed testcase {case}: {}", p.summary);
            assert!(
                p.summary.contains(needle),
                "failed testcase {case}: {}",
                p.summary
            );
        }
    }

    // Found by the simulation (issue 21): two of three initial members started, one lost its
    // data; the third, never started, was "re-added" (rule 5) by a removal that needs the
    // quorum only its own start could give: the group never formed.
    #[test]
    fn an_initial_member_that_never_started_just_starts() {
        let mut members = three_members();
        members[2].client_urls.clear(); // i-3 never published
        let o = Observed {
            local_data: LocalData::Missing,
            ..observed(3, &[1, 2, 3], Some(members)).with_healthy(&[])
        };
        let p = plan(&o, &settings()).unwrap();
        assert_eq!(
            (p.mode, p.actions.len()),
            (Mode::Existing, 0),
            "{}",
            p.summary
        );
    }

    // Found by the simulation (issue 21): a member whose data was wiped rebooted while cut
    // off from its peers, saw nobody, and wrote `new` over the running cluster.
    #[test]
    fn a_member_that_lost_its_data_never_bootstraps_anew() {
        let o = Observed {
            local_data: LocalData::Missing,
            previous_file: PreviousFile::Member {
                initial_cluster: String::new(),
            },
            ..observed(1, &[1, 2, 3], None)
        };
        let p = plan(&o, &settings()).unwrap();
        assert_eq!(p.mode, Mode::Wait, "{}", p.summary);
        assert!(p.summary.contains("delete the env file"), "{}", p.summary);
        // A first boot (no env file naming it) still bootstraps.
        let o = Observed {
            local_data: LocalData::Missing,
            ..observed(1, &[1, 2, 3], None)
        };
        assert_eq!(plan(&o, &settings()).unwrap().mode, Mode::New);
    }

    /// Session 3's simulation findings, each the shrunk schedule's last observation. The env
    /// file written for a bootstrap, whether the data directory changed since, and the peers'
    /// list decide
    /// what a node without data does when no client port gives a list.
    #[test]
    fn a_node_without_data_reads_its_file_its_data_directory_and_the_peers() {
        let bootstrap_file = || PreviousFile::Bootstrap {
            initial_cluster:
                "i-1=http://10.0.2.1:2380,i-2=http://10.0.2.2:2380,i-3=http://10.0.2.3:2380".into(),
            data_fingerprint: Some("absent, parent 1:2:3.4".into()),
        };
        let unpublished = |m: Member| Member {
            client_urls: vec![],
            ..m
        };
        let formed_without_me = |me: usize| {
            let mut members = three_members();
            members[me] = unpublished(members[me].clone());
            members
        };
        let missing = |previous_file: PreviousFile, never_started: bool, o: Observed| Observed {
            local_data: LocalData::Missing,
            previous_file,
            never_started,
            ..o
        };
        // Three started members without a leader, and i-4's member, added but never published.
        let quorum_lost_waiting_for_me = |local_data| {
            let mut members = three_members();
            members.push(member(14, "", "10.0.2.4"));
            Observed {
                local_data,
                ..observed(4, &[1, 2, 3, 4], Some(members)).with_healthy(&[])
            }
        };
        type Check = fn(&Result<Plan>) -> bool;
        let cases: Vec<(&str, Observed, Check)> = vec![
            (
                // K1, K3: the seed's `new` file and its data gone (changed since: etcd ran), cut
                // off from the peers that hold the cluster. It bootstrapped a second cluster.
                "the seed wiped after its etcd ran, nobody answering: waits",
                missing(bootstrap_file(), false, observed(1, &[1, 2, 3], None)),
                |p| matches!(p, Ok(p) if p.mode == Mode::Wait && p.summary.contains("delete the env file")),
            ),
            (
                // Rebooted between its file and etcd's start: its etcd never ran, the data
                // directory's unchanged fingerprint says so. It resumes the bootstrap its file names, even when it is not the
                // seed (the seed may be the one that lost its data and now waits).
                "a bootstrap member whose etcd never ran resumes its file's bootstrap",
                missing(bootstrap_file(), true, observed(2, &[1, 2, 3], None)),
                |p| matches!(p, Ok(p) if p.mode == Mode::New && p.summary.contains("resuming")),
            ),
            (
                // K3's deadlock: the cluster lost its quorum (one member killed, one wiped);
                // the third, an initial member that never started, waited for a client list
                // that only its own start could give.
                "listed by the peers, never started: starts as that member",
                Observed {
                    peer_list: Some(formed_without_me(2)),
                    ..missing(
                        PreviousFile::NotAMember,
                        false,
                        observed(3, &[1, 2, 3], None),
                    )
                },
                |p| matches!(p, Ok(p) if p.mode == Mode::Existing && p.actions.is_empty()),
            ),
            (
                "listed by the peers as a published member, data gone: waits for a leader",
                Observed {
                    peer_list: Some(three_members()),
                    ..missing(bootstrap_file(), false, observed(3, &[1, 2, 3], None))
                },
                |p| matches!(p, Err(e) if e.is_transient() && e.to_string().contains("no leader")),
            ),
            (
                // Client ports refused (etcd listening on localhost only) while the peer
                // ports list a formed cluster: that is a cluster, never a reason for `new`.
                "a formed cluster seen only on its peer ports is never bootstrapped over",
                Observed {
                    peer_list: Some(three_members()),
                    ..observed(1, &[1, 2, 3, 4], None)
                },
                |p| matches!(p, Err(e) if e.is_transient()),
            ),
            (
                // Seed 7, schedule 23285 (data directory not named): the member waited for
                // the others' leader, which waited for it.
                "data not named, the file names it, listed as a published member: restarts",
                Observed {
                    peer_list: Some(three_members()),
                    previous_file: PreviousFile::Member {
                        initial_cluster: String::new(),
                    },
                    ..observed(1, &[1, 2, 3, 4], None)
                },
                |p| matches!(p, Ok(p) if p.mode == Mode::Existing && p.actions.is_empty()),
            ),
            (
                // An add's member has no name until it starts: the peers list it by URL.
                "listed by the peers by its URL alone, never started: starts as that member",
                Observed {
                    peer_list: Some([three_members(), vec![member(14, "", "10.0.2.4")]].concat()),
                    ..missing(
                        PreviousFile::NotAMember,
                        false,
                        observed(4, &[1, 2, 3, 4], None),
                    )
                },
                |p| matches!(p, Ok(p) if p.mode == Mode::Existing && p.summary.contains("never started")),
            ),
            (
                // Rule 13 before rule 19: a member that never served has no data to restart.
                "data not named, the file names it, listed but never started: starts as such",
                Observed {
                    peer_list: Some(formed_without_me(2)),
                    previous_file: PreviousFile::Member {
                        initial_cluster: String::new(),
                    },
                    ..observed(3, &[1, 2, 3], None)
                },
                |p| matches!(p, Ok(p) if p.mode == Mode::Existing && p.summary.contains("never started")),
            ),
            (
                // Seed 7, schedule 4733: a member added by an earlier run, its etcd never
                // started, and the cluster lost its quorum waiting for it.
                "quorum lost, this node's added member never started: starts it",
                quorum_lost_waiting_for_me(LocalData::Missing),
                |p| matches!(p, Ok(p) if p.mode == Mode::Existing && p.actions.is_empty()),
            ),
            (
                // Seed 1, schedule 8833 of 100,000: the same, but its etcd ran without ever
                // seeing a leader, so it has data; it was held back as "quorum lost".
                "quorum lost, this node's added member ran but never published: restarts",
                quorum_lost_waiting_for_me(LocalData::Present),
                |p| matches!(p, Ok(p) if p.mode == Mode::Existing && p.actions.is_empty()),
            ),
        ];
        for (case, o, check) in cases {
            let p = plan(&o, &settings());
            assert!(check(&p), "failed testcase {case}: {p:?}");
        }
    }

    /// Restore on total loss: only a `new` of the whole group from nothing restores, and every
    /// member of that bootstrap does; a node with member data, a join, a start as a listed
    /// member, a proxy never do.
    #[test]
    fn only_a_bootstrap_of_the_whole_group_from_nothing_restores() {
        let record = "i-1=http://10.0.2.1:2380,i-2=http://10.0.2.2:2380,i-3=http://10.0.2.3:2380";
        let empty = |o: Observed| Observed {
            local_data: LocalData::Missing,
            ..o
        };
        let unpublished: Vec<Member> = three_members()
            .into_iter()
            .map(|m| Member {
                client_urls: vec![],
                ..m
            })
            .collect();
        let cases: Vec<(&str, Observed, Mode, bool)> = vec![
            (
                "the seed, nobody answering",
                empty(observed(1, &[1, 2, 3], None)),
                Mode::New,
                true,
            ),
            (
                "a recorded member taking part",
                Observed {
                    bootstrap_record: Some(record.into()),
                    ..empty(observed(2, &[1, 2, 3], None))
                },
                Mode::New,
                true,
            ),
            (
                "a bootstrap member resuming its file",
                Observed {
                    previous_file: PreviousFile::Bootstrap {
                        initial_cluster: record.into(),
                        data_fingerprint: Some("absent, parent 1:2:3.4".into()),
                    },
                    never_started: true,
                    ..empty(observed(2, &[1, 2, 3], None))
                },
                Mode::New,
                true,
            ),
            (
                "the seed whose data directory holds member data",
                Observed {
                    local_data: LocalData::Present,
                    ..observed(1, &[1, 2, 3], None)
                },
                Mode::New,
                false,
            ),
            (
                "the seed whose data directory cannot be read",
                observed(1, &[1, 2, 3], None),
                Mode::New,
                false,
            ),
            (
                "a member answers: a join",
                empty(observed(4, &[1, 2, 3, 4], Some(three_members()))),
                Mode::Existing,
                false,
            ),
            (
                // Found by the lab: the seed's etcd (restored) listed on its peer port, this
                // node took part with an empty data directory and could have led.
                "taking part in a bootstrap the peers list",
                Observed {
                    peer_list: Some(unpublished.clone()),
                    ..empty(observed(2, &[1, 2, 3], None))
                },
                Mode::New,
                true,
            ),
            (
                "a formed cluster without a leader lists this node, never started",
                Observed {
                    peer_list: Some({
                        let mut list = three_members();
                        list[1] = unpublished[1].clone();
                        list
                    }),
                    ..empty(observed(2, &[1, 2, 3], None))
                },
                Mode::Existing,
                false,
            ),
        ];
        for (case, o, mode, restore) in cases {
            let p = plan(&o, &settings()).unwrap();
            assert_eq!(
                (p.mode, p.restore),
                (mode, restore),
                "failed testcase {case}: {}",
                p.summary
            );
        }
        let mut proxy = settings();
        proxy.proxy_mode = true;
        assert!(
            !plan(&empty(observed(1, &[1, 2, 3], None)), &proxy)
                .unwrap()
                .restore
        );
    }

    #[test]
    fn rule_14_the_group_record_of_a_bootstrap() {
        let record = "i-1=http://10.0.2.1:2380,i-2=http://10.0.2.2:2380,i-3=http://10.0.2.3:2380";
        let with_record = |me: u8, instances: &[u8]| Observed {
            bootstrap_record: Some(record.into()),
            local_data: LocalData::Missing,
            ..observed(me, instances, None)
        };
        type Check = fn(&Result<Plan>) -> bool;
        let cases: Vec<(&str, Observed, Check)> = vec![
            (
                "no record: the seed bootstraps and records its initial cluster",
                observed(1, &[1, 2, 3], None),
                |p| {
                    matches!(p, Ok(p) if p.mode == Mode::New && p.record.as_deref()
                    == Some("i-1=http://10.0.2.1:2380,i-2=http://10.0.2.2:2380,i-3=http://10.0.2.3:2380"))
                },
            ),
            (
                "no record: the others wait for the seed",
                observed(2, &[1, 2, 3], None),
                |p| matches!(p, Ok(p) if p.mode == Mode::Wait),
            ),
            (
                // K2: the seed i-1 is gone, i-4 replaced it. i-2 used to become the seed of
                // {2, 3, 4}.
                "the seed gone, an initial member takes part in the recorded bootstrap",
                with_record(2, &[2, 3, 4]),
                |p| matches!(p, Ok(p) if p.mode == Mode::New && p.record.is_none()),
            ),
            (
                // The settings changed since (another port or scheme): not the same member.
                "the record names this instance at another URL: a usage error",
                Observed {
                    bootstrap_record: Some(record.replace("10.0.2.2:2380", "10.0.2.2:2390")),
                    ..with_record(2, &[2, 3, 4])
                },
                |p| matches!(p, Err(Error::Usage(why)) if why.contains("run with the settings")),
            ),
            (
                "the seed's replacement is not in the record: waits",
                with_record(4, &[2, 3, 4]),
                |p| matches!(p, Ok(p) if p.mode == Mode::Wait && p.summary.contains("without this instance")),
            ),
            (
                "the record's members all there, even before the group is all visible: take part",
                Observed {
                    desired_capacity: 5,
                    ..with_record(3, &[1, 2, 3])
                },
                |p| matches!(p, Ok(p) if p.mode == Mode::New && p.record.is_none()),
            ),
            (
                // Two of three recorded instances gone: that cluster can never have a quorum.
                "a record with less than a quorum of its instances counted is ignored",
                with_record(3, &[3, 4, 5]),
                |p| matches!(p, Ok(p) if p.mode == Mode::New && p.record.as_deref().is_some_and(|r| r.contains("i-5="))),
            ),
            (
                // The peers' own list is nearer the truth than the record.
                "a bootstrap seen on the peer ports goes before the record",
                Observed {
                    peer_list: Some(
                        three_members()
                            .into_iter()
                            .map(|m| Member {
                                client_urls: vec![],
                                ..m
                            })
                            .collect(),
                    ),
                    ..with_record(4, &[2, 3, 4])
                },
                |p| matches!(p, Ok(p) if p.mode == Mode::Wait && p.summary.contains("being bootstrapped")),
            ),
            (
                // Rule 11 first: a member whose data is gone after its etcd ran waits.
                "a recorded member that lost its data after its etcd ran still waits",
                Observed {
                    previous_file: PreviousFile::Bootstrap {
                        initial_cluster: record.into(),
                        data_fingerprint: Some("absent, parent 1:2:3.4".into()),
                    },
                    ..with_record(2, &[1, 2, 3])
                },
                |p| matches!(p, Ok(p) if p.mode == Mode::Wait && p.summary.contains("delete the env file")),
            ),
            (
                // Its etcd never ran from the file, and two of the file's three instances are
                // gone: that bootstrap never forms, nothing was lost, it decides afresh.
                "a bootstrap file that can no longer form, etcd never ran: decides afresh",
                Observed {
                    previous_file: PreviousFile::Bootstrap {
                        initial_cluster: record.into(),
                        data_fingerprint: Some("absent, parent 1:2:3.4".into()),
                    },
                    never_started: true,
                    ..with_record(3, &[3, 4, 5])
                },
                |p| matches!(p, Ok(p) if p.mode == Mode::New && p.record.as_deref().is_some_and(|r| r.contains("i-5="))),
            ),
            (
                "the same with a file that can still form: resumes it",
                Observed {
                    previous_file: PreviousFile::Bootstrap {
                        initial_cluster: record.into(),
                        data_fingerprint: Some("absent, parent 1:2:3.4".into()),
                    },
                    never_started: true,
                    ..with_record(3, &[2, 3, 4])
                },
                |p| matches!(p, Ok(p) if p.mode == Mode::New && p.summary.contains("resuming")),
            ),
            (
                "a cluster that answers makes the record irrelevant",
                Observed {
                    bootstrap_record: Some(record.into()),
                    ..observed(4, &[1, 2, 3, 4], Some(three_members()))
                },
                |p| matches!(p, Ok(p) if p.mode == Mode::Existing),
            ),
        ];
        for (case, o, check) in cases {
            let p = plan(&o, &settings());
            assert!(check(&p), "failed testcase {case}: {p:?}");
        }
        // Taking part writes exactly the recorded cluster, the seed's URL included.
        let o = with_record(2, &[2, 3, 4]);
        let p = plan(&o, &settings()).unwrap();
        let env = environment(&p, &o, None, &settings()).unwrap();
        assert!(env.contains(&("ETCD_INITIAL_CLUSTER", record.to_string())));
        assert!(env.contains(&("ETCD_INITIAL_CLUSTER_STATE", "new".to_string())));
    }

    #[test]
    fn rule_16_nothing_is_bootstrapped_beside_a_leaving_instance() {
        // K9 of the simulation: a group of one, its only member's instance scaled in
        // (Terminating:Wait) and out of reach, its replacement i-4 the seed of the group as it
        // now is. i-4 bootstrapped a second cluster beside the one still running on i-1.
        let leaving = |me: u8, instances: &[u8], members: Option<Vec<Member>>| Observed {
            leaving: vec!["i-1".into()],
            ..observed(me, instances, members)
        };
        let record = "i-1=http://10.0.2.1:2380,i-2=http://10.0.2.2:2380,i-3=http://10.0.2.3:2380";
        type Check = fn(&Result<Plan>) -> bool;
        let cases: Vec<(&str, Observed, Check)> = vec![
            (
                "the only counted instance, nobody answers, a member's instance leaving: waits",
                leaving(4, &[4], None),
                |p| matches!(p, Ok(p) if p.mode == Mode::Wait && p.summary.contains("i-1 still listed")),
            ),
            (
                "the same once the leaving instance is gone: bootstraps",
                observed(4, &[4], None),
                |p| matches!(p, Ok(p) if p.mode == Mode::New && p.record.is_some()),
            ),
            (
                "a recorded bootstrap goes on: its cluster is the one the leaving instance runs",
                Observed {
                    bootstrap_record: Some(record.into()),
                    ..leaving(2, &[2, 3], None)
                },
                |p| matches!(p, Ok(p) if p.mode == Mode::New && p.record.is_none()),
            ),
            (
                "a member restarting from its data is never held back",
                Observed {
                    local_data: LocalData::Present,
                    ..leaving(4, &[4], None)
                },
                |p| matches!(p, Ok(p) if p.mode == Mode::New && p.record.is_none()),
            ),
            (
                "members that answer: a join, as ever",
                leaving(4, &[2, 3, 4], Some(three_members())),
                |p| matches!(p, Ok(p) if p.mode == Mode::Existing),
            ),
        ];
        for (case, o, check) in cases {
            let p = plan(&o, &settings());
            assert!(check(&p), "failed testcase {case}: {p:?}");
        }
    }

    #[test]
    fn rule_17_the_members_a_join_recorded() {
        // K9 of the simulation: i-1 bootstrapped alone, i-3 joined, i-1 was terminated; i-2, a
        // warm instance launched before the others and cut off from i-3, was the seed of the
        // group as it then was and bootstrapped beside i-3's cluster.
        let joined = "i-1=http://10.0.2.1:2380,i-3=http://10.0.2.3:2380";
        let fresh = |me: u8, instances: &[u8]| Observed {
            members_record: Some(joined.into()),
            ..observed(me, instances, None)
        };
        type Check = fn(&Result<Plan>) -> bool;
        let cases: Vec<(&str, Observed, Check)> = vec![
            (
                "a recorded member's instance still counted: a fresh node waits",
                fresh(2, &[2, 3, 4]),
                |p| matches!(p, Ok(p) if p.mode == Mode::Wait && p.summary.contains("names i-3 of a cluster that ran")),
            ),
            (
                "none of the recorded instances counted: the group's seed bootstraps",
                fresh(2, &[2, 4, 5]),
                |p| matches!(p, Ok(p) if p.mode == Mode::New && p.record.is_some()),
            ),
            (
                "only this instance is named: nothing else holds the cluster",
                fresh(3, &[3, 4, 5]),
                |p| matches!(p, Ok(p) if p.mode == Mode::New && p.record.is_some()),
            ),
            (
                // After a power cut every member's file names it: they restart as before.
                "a node whose file names it as a member goes on as before",
                Observed {
                    previous_file: PreviousFile::Member {
                        initial_cluster: joined.into(),
                    },
                    ..fresh(1, &[1, 3])
                },
                |p| matches!(p, Ok(p) if p.mode == Mode::Existing && p.record.is_none()),
            ),
            (
                "members that answer: a join, as ever",
                Observed {
                    members_record: Some(joined.into()),
                    ..observed(4, &[1, 2, 3, 4], Some(three_members()))
                },
                |p| matches!(p, Ok(p) if p.mode == Mode::Existing),
            ),
        ];
        for (case, o, check) in cases {
            let p = plan(&o, &settings());
            assert!(check(&p), "failed testcase {case}: {p:?}");
        }
    }

    #[test]
    fn rule_14_the_seed_reads_its_record_back() {
        let mine = "i-1=http://10.0.2.1:2380,i-2=http://10.0.2.2:2380";
        let ids = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // (case, the record read back, the instances counted then, why not, if not)
        type Case<'a> = (&'a str, Option<&'a str>, Vec<String>, Option<&'a str>);
        let cases: Vec<Case> = vec![
            ("all as recorded", Some(mine), ids(&["i-2", "i-1"]), None),
            (
                "scaled in meanwhile",
                Some(mine),
                ids(&["i-2"]),
                Some("left the group's count"),
            ),
            (
                "another seed wrote after",
                Some("i-2=http://10.0.2.2:2380"),
                ids(&["i-1", "i-2"]),
                Some("another instance recorded"),
            ),
            (
                "the record is gone",
                None,
                ids(&["i-1", "i-2"]),
                Some("another instance recorded"),
            ),
        ];
        for (case, record_now, counted, why) in cases {
            let r = read_back(record_now, mine, &counted, "i-1");
            match why {
                None => assert_eq!(r, Ok(()), "failed testcase {case}"),
                Some(why) => assert!(r.is_err_and(|e| e.contains(why)), "failed testcase {case}"),
            }
        }
    }

    /// The initial cluster of instances `hosts`, as a file or a record names it.
    fn initial_cluster(hosts: &[u8]) -> String {
        hosts
            .iter()
            .map(|n| format!("i-{n}=http://10.0.2.{n}:2380"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Regression (simulation, seed 3, schedule 85417): a member that lost its data took part
    /// in the bootstrap its peer's port listed, a restored one whose members on terminated
    /// instances had no name to give; its initial cluster named them by URL only, so the
    /// bucket's record of that bootstrap did not match it, and it restored the newest
    /// snapshot beside members that had restored none.
    #[test]
    fn a_recorded_bootstrap_is_known_by_its_urls_where_a_list_names_nobody() {
        let mut seen = observed(5, &[2, 4, 5], None);
        seen.bootstrap_record = Some(initial_cluster(&[1, 2, 3, 4, 5]));
        seen.bootstrap_restores = Some(Restores::Nothing);
        let with_names = |names: [&str; 5]| {
            names
                .iter()
                .zip(1..=5)
                .map(|(name, n)| format!("{name}=http://10.0.2.{n}:2380"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let unnamed = with_names(["", "i-2", "", "i-4", "i-5"]);
        assert_eq!(recorded_restore(&seen, &unnamed), Some(&Restores::Nothing));
        let another_instance = with_names(["i-9", "i-2", "", "i-4", "i-5"]);
        assert_eq!(recorded_restore(&seen, &another_instance), None);
        let elsewhere = unnamed.replace("10.0.2.1:", "10.0.2.9:");
        assert_eq!(recorded_restore(&seen, &elsewhere), None);
    }

    /// Regression (the simulation's K6): the instances of most of a recorded bootstrap were
    /// terminated before it formed, after this node's etcd had run in it. It waited there for
    /// a person; it now leaves it, on proof only.
    #[test]
    fn rule_20_a_bootstrap_that_can_never_form_is_left_on_proof() {
        // i-3 ran in the bootstrap of {1, 2, 3, 6, 7} and its log shows no leader ever reached
        // it (unless a case says otherwise); the group now counts {3, 4, 5}, and EC2 has only
        // i-2 and i-3 of them.
        let dead = initial_cluster(&[1, 2, 3, 6, 7]);
        let stuck_in = |group: &[u8], never_led: bool| {
            let mut o = observed(3, group, None);
            o.local_data = LocalData::Present;
            o.never_led_bootstrap = never_led.then(|| dead.clone());
            o.bootstrap_instances_left = Some(2);
            o.previous_file = PreviousFile::Bootstrap {
                initial_cluster: dead.clone(),
                data_fingerprint: None,
            };
            o
        };
        let stuck = |never_led| stuck_in(&[3, 4, 5], never_led);
        let survivor_answers = {
            // i-2 ran in it too and is still counted (the group's seed now): its peer port
            // lists the bootstrap, no member started. Not a bootstrap to take part in.
            let mut o = stuck_in(&[2, 3, 4, 5], true);
            o.peer_list = Some(
                [1u8, 2, 3, 6, 7]
                    .iter()
                    .map(|n| member(u64::from(*n), &format!("i-{n}"), &format!("10.0.2.{n}")))
                    .map(|m| Member {
                        client_urls: vec![],
                        ..m
                    })
                    .collect(),
            );
            o
        };
        let unstarted = |hosts: &[u8]| -> Vec<Member> {
            hosts
                .iter()
                .map(|n| member(u64::from(*n), &format!("i-{n}"), &format!("10.0.2.{n}")))
                .map(|m| Member {
                    client_urls: vec![],
                    ..m
                })
                .collect()
        };
        let survivor_serves_the_list = {
            // The same, its client port answering (3.5's gateway lists members without a
            // leader): not a cluster to restart in either.
            let mut o = stuck_in(&[2, 3, 4, 5], true);
            o.members = Some(unstarted(&[1, 2, 3, 6, 7]));
            o
        };
        let new_bootstrap_answers = {
            // The group's new bootstrap, as many members as the dead one, under way: i-4's
            // peer port lists it. That one is taken part in.
            let mut o = stuck_in(&[3, 4, 5, 8, 9], true);
            o.peer_list = Some(unstarted(&[3, 4, 5, 8, 9]));
            o
        };
        let recorded_anew = {
            let mut o = stuck(true);
            o.bootstrap_record = Some(initial_cluster(&[3, 4, 5]));
            o
        };
        let can_still_form = stuck_in(&[1, 3, 4, 5, 6], true);
        let not_the_seed = {
            let mut o = observed(4, &[3, 4, 5], None);
            o.local_data = LocalData::Present;
            o.never_led_bootstrap = Some(initial_cluster(&[1, 4, 6]));
            o.previous_file = PreviousFile::Bootstrap {
                initial_cluster: initial_cluster(&[1, 4, 6]),
                data_fingerprint: None,
            };
            o.bootstrap_instances_left = Some(1);
            o
        };
        let file_rewritten = {
            // A run while nobody answered kept the data and wrote the group's bootstrap: the
            // log still names the one the data began in.
            let mut o = stuck(true);
            o.previous_file = PreviousFile::Bootstrap {
                initial_cluster: initial_cluster(&[3, 4, 5]),
                data_fingerprint: None,
            };
            o
        };
        let with_left = |left| {
            let mut o = stuck(true);
            o.bootstrap_instances_left = left;
            o
        };
        // (case, observed, mode, data set aside, summary contains)
        let cases: Vec<(&str, Observed, Mode, bool, &str)> = vec![
            (
                "the group's seed, nobody else",
                stuck(true),
                Mode::New,
                true,
                "bootstrapping a new cluster of the group's 3 instances",
            ),
            (
                "the dead bootstrap's survivor answers",
                survivor_answers,
                Mode::Wait,
                false,
                "i-2 (launched first) bootstraps the cluster",
            ),
            (
                "the dead bootstrap's survivor serves its list",
                survivor_serves_the_list,
                Mode::Wait,
                false,
                "i-2 (launched first) bootstraps the cluster",
            ),
            (
                "the group's new bootstrap of as many members is under way",
                new_bootstrap_answers,
                Mode::New,
                true,
                "a peer started",
            ),
            (
                "another seed recorded the group anew",
                recorded_anew,
                Mode::New,
                true,
                "taking part in the bootstrap of 3 members recorded",
            ),
            (
                "not the seed: waits, nothing moved",
                not_the_seed,
                Mode::Wait,
                false,
                "bootstraps the cluster",
            ),
            (
                "its file rewritten since",
                file_rewritten,
                Mode::New,
                true,
                "bootstrapping a new cluster of the group's 3 instances",
            ),
            (
                "a leader reached it (it formed), or its log not read",
                stuck(false),
                Mode::New,
                false,
                "etcd restarts from it",
            ),
            (
                "its bootstrap can still form",
                can_still_form,
                Mode::New,
                false,
                "etcd restarts from it",
            ),
            (
                // A warm pool that reuses instances on scale-in: the bootstrap may have formed
                // on them, and they return with their data.
                "a quorum of its instances stopped, not terminated",
                with_left(Some(3)),
                Mode::New,
                false,
                "etcd restarts from it",
            ),
            (
                "EC2 did not answer",
                with_left(None),
                Mode::New,
                false,
                "etcd restarts from it",
            ),
        ];
        for (case, o, mode, aside, says) in cases {
            let p = plan(&o, &settings()).unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(p.mode, mode, "failed testcase {case}: {p:?}");
            assert_eq!(
                p.set_aside_data,
                aside.then_some(SetAside::Unformed),
                "failed testcase {case}: {p:?}"
            );
            assert!(p.summary.contains(says), "failed testcase {case}: {p:?}");
        }
        // What EC2 is asked, and when.
        let ids = |hosts: &[u8]| hosts.iter().map(|n| format!("i-{n}")).collect::<Vec<_>>();
        let asks = |o: &Observed| unformed_bootstrap_instances(o, &settings());
        assert_eq!(asks(&stuck(true)), Some(ids(&[1, 2, 3, 6, 7])));
        assert_eq!(asks(&stuck(false)), None, "a leader reached it");
        assert_eq!(
            asks(&stuck_in(&[1, 3, 4, 5, 6], true)),
            None,
            "a quorum counted"
        );
        let mut named_by_ip = stuck(true);
        named_by_ip.never_led_bootstrap =
            Some("a=http://10.0.2.1:2380,i-3=http://10.0.2.3:2380".into());
        let mut two_urls = stuck(true);
        two_urls.never_led_bootstrap = Some(format!("{dead},i-7=http://10.0.3.7:2380"));
        assert_eq!(asks(&two_urls), Some(ids(&[1, 2, 3, 6, 7])), "named once");
        assert_eq!(asks(&named_by_ip), None, "members not named by instance id");
        // It formed without this member (cut off from its leader) and may have changed its
        // membership since: its initial quorum proves nothing then (simulation, seed 9).
        let mut formed = stuck(true);
        formed.peer_list = Some(vec![
            member(1, "i-1", "10.0.2.1"),
            Member {
                client_urls: vec![],
                ..member(3, "i-3", "10.0.2.3")
            },
        ]);
        assert_eq!(asks(&formed), None, "a member of it answers as published");
        let mut changed = stuck(true);
        changed.members_record = Some(initial_cluster(&[1, 3]));
        assert_eq!(
            asks(&changed),
            None,
            "a membership change named this instance"
        );
        changed.members_record = Some(initial_cluster(&[8, 9]));
        assert!(asks(&changed).is_some(), "another cluster's record");
        // The group's new bootstrap, formed, lists this instance again at the same URL (the
        // same member ID): its answer names another cluster ID than the one this bootstrap's
        // members give (simulation, seed 1: schedules 1611, 7693 never converged).
        let dead_id = 0xd0;
        let answered_by = |id: Option<u64>| {
            let mut o = formed.clone();
            o.never_led_cluster_id = Some(dead_id);
            o.cluster_id = id;
            o
        };
        assert!(asks(&answered_by(Some(0xe1))).is_some(), "another cluster");
        assert_eq!(asks(&answered_by(Some(dead_id))), None, "its own, formed");
        assert_eq!(asks(&answered_by(None)), None, "no ID named: maybe its own");
        // A record naming this instance is explained by the other cluster, formed; not by
        // one still bootstrapping (nobody published).
        let mut recorded_beside = answered_by(Some(0xe1));
        recorded_beside.members_record = Some(initial_cluster(&[1, 3]));
        assert!(asks(&recorded_beside).is_some(), "another cluster formed");
        recorded_beside.peer_list = Some(unstarted(&[1, 3]));
        assert_eq!(
            asks(&recorded_beside),
            None,
            "another one still bootstrapping"
        );
        let proxy = Settings {
            proxy_mode: true,
            ..settings()
        };
        assert_eq!(unformed_bootstrap_instances(&stuck(true), &proxy), None);
    }

    /// Regression (the simulation's K10, seeds 2 and 4): a seed records in the tags only a group
    /// as its look found it, so that an older instance put in service meanwhile, or another
    /// seed's record, never leaves two seeds each reading its own record back.
    #[test]
    fn rule_14_the_seed_records_only_the_group_its_look_found() {
        let recorded = "i-1=http://10.0.2.1:2380,i-2=http://10.0.2.2:2380";
        let ids = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // (case, the record the look saw, the record now, counted now, why not, if not)
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            Vec<String>,
            Option<&'a str>,
        );
        let cases: Vec<Case> = vec![
            ("as looked", None, None, ids(&["i-2", "i-3", "i-4"]), None),
            (
                "a dead record, still as looked",
                Some(recorded),
                Some(recorded),
                ids(&["i-2", "i-3", "i-4"]),
                None,
            ),
            ("one left since", None, None, ids(&["i-2", "i-4"]), None),
            (
                "an older one put in service",
                None,
                None,
                ids(&["i-1", "i-2", "i-3", "i-4"]),
                Some("counts instance i-1 since this run looked"),
            ),
            (
                "another seed recorded",
                None,
                Some(recorded),
                ids(&["i-2", "i-3", "i-4"]),
                Some("another instance recorded"),
            ),
            (
                "another seed replaced a dead record",
                Some(recorded),
                Some("i-3=http://10.0.2.3:2380"),
                ids(&["i-2", "i-3", "i-4"]),
                Some("another instance recorded"),
            ),
        ];
        for (case, looked, record_now, counted, why) in cases {
            let mut look = observed(2, &[2, 3, 4], None);
            look.bootstrap_record = looked.map(str::to_string);
            let r = may_record(&look, record_now, &counted);
            match why {
                None => assert_eq!(r, Ok(()), "failed testcase {case}"),
                Some(why) => assert!(
                    r.as_ref().is_err_and(|e| e.contains(why)),
                    "failed testcase {case}: {r:?}"
                ),
            }
        }
    }

    /// Regression (simulation, reuse-on-scale-in, seed 7, schedule 44759): an instance back
    /// from the warm pool with a removed member's data, while the cluster it joins has not
    /// decided its version. Its data goes aside, so etcd starts without any and would refuse
    /// ("incompatible with current running cluster"): it asks for the version as any start
    /// without data does, and waits with nothing moved.
    #[test]
    fn a_removed_members_data_stays_until_the_version_is_decided() {
        let mut seen = observed(4, &[1, 2, 3, 4], Some(three_members()));
        seen.local_data = LocalData::Present;
        let members = three_members();
        assert!(starts_without_member_data(
            "i-4",
            &members,
            LocalData::Present
        ));
        assert!(!starts_without_member_data(
            "i-1",
            &members,
            LocalData::Present
        ));
        seen.cluster_version_undecided = true;
        let p = plan(&seen, &settings()).unwrap();
        assert_eq!(p.mode, Mode::Wait, "{p:?}");
        assert!(p.set_aside_data.is_none() && p.actions.is_empty(), "{p:?}");
    }

    /// Regression (simulation, reuse-on-scale-in, seed 2, schedules 3011 and 18565): a join
    /// looked while i-5 sat in the warm pool and planned to remove its member; i-5 was put back
    /// in service (in 18565 it even restarted its etcd) before the removal. The group is read
    /// again before each removal: an instance counted now that the look did not stops it.
    #[test]
    fn a_removal_waits_for_an_instance_that_entered_since_the_look() {
        let look = observed(6, &[1, 3, 4, 6], None);
        let ids = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // (case, counted now, the instance that entered)
        let cases = [
            ("as looked", ids(&["i-1", "i-3", "i-4", "i-6"]), None),
            ("one left since", ids(&["i-1", "i-4", "i-6"]), None),
            (
                "back from the pool",
                ids(&["i-1", "i-3", "i-4", "i-5", "i-6"]),
                Some("i-5"),
            ),
            (
                "one for one",
                ids(&["i-1", "i-3", "i-6", "i-7"]),
                Some("i-7"),
            ),
        ];
        for (case, counted_now, entered) in cases {
            assert_eq!(
                entered_since_look(&look, &counted_now),
                entered,
                "failed testcase {case}"
            );
        }
    }

    /// Nobody answers and the data directory is not named: a node whose file names it as a
    /// member starts as that file said, and never decides (or takes part in) a new bootstrap.
    /// Regression (simulation, seed 7, schedule 3056): a member restarting with its data after
    /// its peers went down was the seed, recorded a new bootstrap, and a new instance took
    /// part in it beside the old cluster.
    #[test]
    fn a_member_whose_data_directory_is_not_named_starts_as_its_file_said() {
        let old = "i-1=http://10.0.2.1:2380,i-2=http://10.0.2.2:2380,i-3=http://10.0.2.3:2380";
        let bootstrap_file = PreviousFile::Bootstrap {
            initial_cluster: old.into(),
            data_fingerprint: None,
        };
        let join_file = PreviousFile::Member {
            initial_cluster: old.into(),
        };
        // The seed (i-1, launched first) of a group that replaced i-2 and i-3 since.
        let cases = [
            (
                "a bootstrap's file: that bootstrap, as written",
                LocalData::Unknown,
                bootstrap_file.clone(),
                Some(("new", old)),
            ),
            (
                "a join's or a reboot's file: as written",
                LocalData::Unknown,
                join_file.clone(),
                Some(("existing", old)),
            ),
            (
                "never a member: the seed decides",
                LocalData::Unknown,
                PreviousFile::NotAMember,
                None,
            ),
            // Named and empty, rule 11 waits; named with data, etcd restarts from it (the
            // file is the group's, which etcd ignores).
            (
                "rule 11",
                LocalData::Missing,
                join_file.clone(),
                Some(("", "")),
            ),
        ];
        let get = |env: &[(&str, String)], key: &str| {
            env.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone())
        };
        for (name, local_data, previous_file, kept) in cases {
            let o = Observed {
                local_data,
                previous_file,
                ..observed(1, &[1, 4, 5], None)
            };
            let p = plan(&o, &settings()).unwrap();
            match kept {
                Some(("", "")) => assert_eq!(p.mode, Mode::Wait, "failed testcase: {name}"),
                Some((state, cluster)) => {
                    assert_eq!(p.record, None, "failed testcase: {name}");
                    assert!(!p.restore, "failed testcase: {name}");
                    let env = environment(&p, &o, None, &settings()).unwrap();
                    assert_eq!(
                        get(&env, "ETCD_INITIAL_CLUSTER_STATE").as_deref(),
                        Some(state),
                        "failed testcase: {name}"
                    );
                    assert_eq!(
                        get(&env, "ETCD_INITIAL_CLUSTER").as_deref(),
                        Some(cluster),
                        "failed testcase: {name}"
                    );
                }
                None => assert!(
                    p.mode == Mode::New && p.record.is_some(),
                    "failed testcase: {name}: {p:?}"
                ),
            }
        }
        // Somebody answers: the cluster decides, not the file.
        let o = Observed {
            previous_file: join_file,
            ..observed(1, &[1, 2, 3], Some(three_members()))
        };
        assert!(plan(&o, &settings()).unwrap().summary.contains("reboot"));
    }

    /// The file for rule 13 and for a resumed bootstrap: exactly the cluster etcd expects.
    #[test]
    fn rule_13_and_a_resumed_bootstrap_write_the_expected_initial_cluster() {
        let mut members = three_members();
        members[2].client_urls.clear();
        let get = |env: &[(&str, String)], key: &str| {
            env.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone())
        };
        // The peers' list, not an older file's (rule 19 keeps a file only when nobody
        // answers at all).
        let older_file = PreviousFile::Member {
            initial_cluster: "i-3=http://10.0.2.3:2380,i-9=http://10.0.2.9:2380".into(),
        };
        for (local_data, previous_file) in [
            (LocalData::Missing, PreviousFile::NotAMember),
            (LocalData::Unknown, older_file),
        ] {
            let o = Observed {
                peer_list: Some(members.clone()),
                local_data,
                previous_file,
                ..observed(3, &[1, 2, 3], None)
            };
            let p = plan(&o, &settings()).unwrap();
            let env = environment(&p, &o, None, &settings()).unwrap();
            assert_eq!(
                get(&env, "ETCD_INITIAL_CLUSTER_STATE").as_deref(),
                Some("existing")
            );
            assert_eq!(
                get(&env, "ETCD_INITIAL_CLUSTER").as_deref(),
                Some("i-1=http://10.0.2.1:2380,i-2=http://10.0.2.2:2380,i-3=http://10.0.2.3:2380")
            );
        }
        // The resumed bootstrap names the file's cluster, not the group as it is now (i-3 was
        // replaced by i-4 meanwhile): the others may have taken the same list.
        let resumed = "i-1=http://10.0.2.1:2380,i-2=http://10.0.2.2:2380,i-3=http://10.0.2.3:2380";
        let o = Observed {
            previous_file: PreviousFile::Bootstrap {
                initial_cluster: resumed.into(),
                data_fingerprint: Some("absent, parent 1:2:3.4".into()),
            },
            never_started: true,
            local_data: LocalData::Missing,
            ..observed(2, &[1, 2, 4], None)
        };
        let p = plan(&o, &settings()).unwrap();
        let env = environment(&p, &o, None, &settings()).unwrap();
        assert_eq!(
            get(&env, "ETCD_INITIAL_CLUSTER_STATE").as_deref(),
            Some("new")
        );
        assert_eq!(get(&env, "ETCD_INITIAL_CLUSTER").as_deref(), Some(resumed));
    }

    #[test]
    fn only_an_instance_the_group_counts_joins() {
        // i-4 is Terminating:Wait (not counted): it must not add a voter that never serves.
        let o = Observed {
            me: observed(4, &[4], None).me,
            ..observed(1, &[1, 2, 3], Some(three_members()))
        };
        let p = plan(&o, &settings()).unwrap();
        assert_eq!((p.mode, p.actions.len()), (Mode::Wait, 0));
        assert!(
            p.summary.contains("not counted by the group"),
            "{}",
            p.summary
        );
    }

    // An unstarted entry at this host but another port was reused: the file named a peer URL
    // etcd did not know, and etcd refused to start.
    #[test]
    fn an_unstarted_entry_is_ours_only_with_our_whole_peer_url() {
        let mut members = three_members();
        let mut other_port = member(14, "", "10.0.2.4");
        other_port.peer_urls = vec!["http://10.0.2.4:2381".into()];
        members.push(other_port);
        let o = observed(4, &[1, 2, 3, 4], Some(members));
        let p = plan(&o, &settings()).unwrap();
        assert!(
            matches!(&p.actions[..], [Action::Remove { id: 14, .. }, Action::Add { peer_url }] if peer_url == "http://10.0.2.4:2380"),
            "{:?}",
            p.actions
        );
    }

    #[test]
    fn replacement_while_another_member_is_down_removes_the_dead_first() {
        // The issue's case: a group of three, one member down with its instance gone; etcd
        // refuses the add ("started member (2) will be less than the quorum (3)") unless the
        // dead member is removed first.
        let o = observed(4, &[1, 2, 4], Some(three_members()));
        let p = plan(&o, &settings()).unwrap();
        assert_eq!(
            p.actions,
            vec![
                Action::Remove {
                    id: 13,
                    name: "i-3".into(),
                    why: "its peer URLs [\"http://10.0.2.3:2380\"] match no instance of the group"
                        .into()
                },
                Action::Add {
                    peer_url: "http://10.0.2.4:2380".into()
                },
            ]
        );
    }

    /// Rule 18: no removal before the cluster has decided its version, so a late initial
    /// member's list stays the initial cluster.
    #[test]
    fn removals_wait_for_the_cluster_version() {
        let undecided = |mut seen: Observed| {
            seen.cluster_version_undecided = true;
            seen
        };
        let gone3 = observed(1, &[1, 2], Some(three_members())).with_healthy(&[11, 12]);
        let all = observed(1, &[1, 2, 3], Some(three_members())).with_healthy(&[11, 12, 13]);
        for (name, result) in [
            ("reconcile", plan_reconcile(&undecided(gone3.clone()))),
            ("leave", plan_leave(&undecided(all.clone()))),
        ] {
            match result {
                Err(e @ Error::Etcd { .. }) => {
                    assert!(e.is_transient(), "{name}: {e}");
                    assert!(e.to_string().contains("has not decided its version"), "{e}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        // Decided, they remove; with nothing to remove, reconcile has nothing to wait for.
        assert_eq!(plan_reconcile(&gone3).unwrap().actions.len(), 1);
        assert_eq!(plan_leave(&all).unwrap().actions.len(), 1);
        assert!(plan_reconcile(&undecided(all)).unwrap().actions.is_empty());
    }

    #[test]
    fn member_commands_table() {
        type Case = (&'static str, Result<Plan>, Vec<Action>);
        // On a member (the timer runs where etcd runs), this node's own member is healthy.
        let gone3 = observed(1, &[1, 2], Some(three_members())).with_healthy(&[11, 12]);
        let mut learner = three_members();
        learner.push(Member {
            is_learner: true,
            ..member(14, "i-4", "10.0.2.4")
        });
        let cases: Vec<Case> = vec![
            (
                "reconcile removes the member whose instance is gone",
                plan_reconcile(&gone3),
                vec![removal(
                    &three_members()[2],
                    gone(&gone3, &three_members()[2]).unwrap(),
                )],
            ),
            (
                "reconcile with every instance listed does nothing",
                plan_reconcile(
                    &observed(1, &[1, 2, 3], Some(three_members())).with_healthy(&[11, 12, 13]),
                ),
                vec![],
            ),
            (
                "leave removes this node's member",
                plan_leave(
                    &observed(1, &[1, 2, 3], Some(three_members())).with_healthy(&[11, 12, 13]),
                ),
                vec![removal(
                    &three_members()[0],
                    "this instance is leaving".into(),
                )],
            ),
            (
                // The one left keeps a quorum of one (cargo-mutants: `voters - 1` made
                // `voters / 1` refused this).
                "leave one of two healthy members",
                plan_leave(
                    &observed(1, &[1, 2], Some(three_members()[..2].to_vec()))
                        .with_healthy(&[11, 12]),
                ),
                vec![removal(
                    &three_members()[0],
                    "this instance is leaving".into(),
                )],
            ),
            (
                "leave when not a member does nothing",
                plan_leave(&observed(9, &[1, 2, 3, 9], Some(three_members()))),
                vec![],
            ),
            (
                "promote a learner",
                plan_promote(&observed(4, &[1, 2, 3, 4], Some(learner.clone()))),
                vec![Action::Promote { id: 14 }],
            ),
            (
                "promote a voter does nothing",
                plan_promote(&observed(1, &[1, 2, 3], Some(three_members()))),
                vec![],
            ),
        ];
        for (case, plan, actions) in cases {
            let plan = plan.unwrap_or_else(|e| panic!("failed testcase {case}: {e}"));
            assert_eq!(plan.actions, actions, "failed testcase: {case}");
        }
    }

    #[test]
    fn no_member_is_called_gone_while_an_instance_has_no_address() {
        // Regression: an instance EC2 does not know yet has no address, so a member that
        // may be its matched no instance and would have been removed.
        let mut o = observed(4, &[1, 2, 3, 4], Some(three_members())).with_healthy(&[11, 12]);
        o.instances[2].private_ip.clear();
        o.instances[2].private_dns.clear();
        let p = plan(&o, &settings()).unwrap();
        assert_eq!((p.mode, p.actions.len()), (Mode::Wait, 0), "{}", p.summary);
        assert!(
            p.summary.contains("i-3 has no address yet"),
            "{}",
            p.summary
        );
        let mut r = o.clone();
        r.me = observed(1, &[1], None).me;
        let p = plan_reconcile(&r.with_healthy(&[11, 12])).unwrap();
        assert_eq!((p.mode, p.actions.len()), (Mode::Wait, 0), "{}", p.summary);
        // With every address known, the dead member goes.
        let o = observed(4, &[1, 2, 4], Some(three_members())).with_healthy(&[11, 12]);
        let p = plan(&o, &settings()).unwrap();
        assert_eq!(p.mode, Mode::Existing);
        assert!(matches!(p.actions[0], Action::Remove { id: 13, .. }));
    }

    #[test]
    fn member_commands_refuse_what_is_unsafe() {
        // Leaving with another member down would leave one healthy of two voters.
        let o = observed(1, &[1, 2, 3], Some(three_members())).with_healthy(&[11, 12]);
        let e = plan_leave(&o).unwrap_err();
        assert!(
            e.to_string()
                .contains("1 healthy of 2 voters, below the quorum of 2"),
            "{e}"
        );
        assert_eq!(e.exit_code(), 75);
        // The last member never leaves.
        let o = observed(1, &[1], Some(vec![member(11, "i-1", "10.0.2.1")])).with_healthy(&[11]);
        assert_eq!(plan_leave(&o).unwrap_err().exit_code(), 1);
        // Reconcile never removes when the quorum is already lost.
        let o = observed(1, &[1], Some(three_members())).with_healthy(&[]);
        assert!(matches!(plan_reconcile(&o), Err(Error::QuorumLost { .. })));
        // Nothing answered: the member commands say so.
        assert!(plan_promote(&observed(1, &[1], None)).is_err());
    }

    #[test]
    fn a_learner_joins_without_the_voter_quorum_check() {
        let mut s = settings();
        s.learner = true;
        // Scale-up while a member is down would be refused for a voter; a learner does not vote.
        let o = observed(4, &[1, 2, 3, 4], Some(three_members())).with_healthy(&[11, 12]);
        let p = plan(&o, &s).unwrap();
        assert_eq!(
            p.actions,
            vec![Action::AddLearner {
                peer_url: "http://10.0.2.4:2380".into()
            }]
        );
        let after = predicted_members(&three_members(), &p.actions);
        assert!(after.last().unwrap().is_learner);
    }

    fn remove(id: u64) -> u64 {
        id
    }

    /// The decision table: (case, observation, expected mode, removed ids, adds).
    #[test]
    fn decision_table() {
        let add = |n: u8| Action::Add {
            peer_url: format!("http://10.0.2.{n}:2380"),
        };
        type Case = (&'static str, Observed, Mode, Vec<u64>, Vec<Action>);
        let cases: Vec<Case> = vec![
            (
                "fresh bootstrap: nobody answers",
                observed(1, &[1, 2, 3], None),
                Mode::New,
                vec![],
                vec![],
            ),
            (
                "reboot: already a member by name",
                observed(1, &[1, 2, 3], Some(three_members())),
                Mode::Existing,
                vec![],
                vec![],
            ),
            (
                "one terminated member replaced",
                observed(4, &[1, 2, 4], Some(three_members())),
                Mode::Existing,
                vec![remove(13)],
                vec![add(4)],
            ),
            (
                "two terminated members of five: both removed, one at a time",
                observed(
                    6,
                    &[1, 2, 3, 6],
                    Some(
                        (1..=5)
                            .map(|n| member(10 + n, &format!("i-{n}"), &format!("10.0.2.{n}")))
                            .collect(),
                    ),
                ),
                Mode::Existing,
                vec![remove(14), remove(15)],
                vec![add(6)],
            ),
            (
                "a member with an unknown address is stale",
                observed(
                    4,
                    &[1, 2, 4],
                    Some(vec![
                        member(11, "i-1", "10.0.2.1"),
                        member(12, "i-2", "10.0.2.2"),
                        member(19, "old", "192.168.9.9"),
                    ]),
                ),
                Mode::Existing,
                vec![remove(19)],
                vec![add(4)],
            ),
            (
                "substring addresses do not match: 10.0.2.1 is not 10.0.2.15",
                observed(
                    4,
                    &[1, 2, 4],
                    Some(vec![
                        member(11, "i-1", "10.0.2.1"),
                        member(12, "i-2", "10.0.2.2"),
                        member(15, "i-15", "10.0.2.15"),
                    ]),
                ),
                Mode::Existing,
                vec![remove(15)],
                vec![add(4)],
            ),
            (
                "this node present by URL, unstarted: reuse the entry",
                observed(
                    4,
                    &[1, 2, 3, 4],
                    Some({
                        let mut m = three_members();
                        m.push(member(14, "", "10.0.2.4"));
                        m
                    }),
                ),
                Mode::Existing,
                vec![],
                vec![],
            ),
            (
                "this node's address held by another name (a reused IP): remove it, then add",
                observed(
                    3,
                    &[1, 2, 3],
                    Some(vec![
                        member(11, "i-1", "10.0.2.1"),
                        member(12, "i-2", "10.0.2.2"),
                        member(13, "i-old", "10.0.2.3"),
                    ]),
                ),
                Mode::Existing,
                vec![remove(13)],
                vec![add(3)],
            ),
            (
                "another instance's unstarted entry is kept",
                observed(
                    5,
                    &[1, 2, 3, 4, 5],
                    Some({
                        let mut m = three_members();
                        m.push(member(14, "", "10.0.2.4"));
                        m
                    }),
                ),
                Mode::Existing,
                vec![],
                vec![add(5)],
            ),
            (
                "rule 5: member by name but the data directory is wiped: remove and re-add",
                Observed {
                    local_data: LocalData::Missing,
                    ..observed(2, &[1, 2, 3], Some(three_members()))
                },
                Mode::Existing,
                vec![remove(12)],
                vec![add(2)],
            ),
            (
                "rule 5: no data directory at all: cannot tell, so a reboot",
                Observed {
                    local_data: LocalData::Unknown,
                    ..observed(2, &[1, 2, 3], Some(three_members()))
                },
                Mode::Existing,
                vec![],
                vec![],
            ),
            (
                "rule 3: a member that matches no instance but answers is never removed",
                observed(
                    4,
                    &[1, 2, 3, 4],
                    Some({
                        let mut m = three_members();
                        m.push(member(19, "outsider", "10.9.9.9"));
                        m
                    }),
                )
                .with_healthy(&[11, 12, 13, 19]),
                Mode::Existing,
                vec![],
                vec![add(4)],
            ),
            (
                "growing a single member to two is allowed, as etcd allows it",
                observed(2, &[1, 2], Some(vec![member(11, "i-1", "10.0.2.1")])),
                Mode::Existing,
                vec![],
                vec![add(2)],
            ),
            (
                "rule 1: a group not all visible yet means wait",
                Observed {
                    desired_capacity: 3,
                    ..observed(1, &[1, 2], None)
                },
                Mode::Wait,
                vec![],
                vec![],
            ),
        ];
        for (case, observed, mode, removed, adds) in cases {
            let plan = plan(&observed, &settings())
                .unwrap_or_else(|e| panic!("failed testcase {case}: {e}"));
            assert_eq!(plan.mode, mode, "failed testcase: {case}");
            let got_removed: Vec<u64> = plan
                .actions
                .iter()
                .filter_map(|a| match a {
                    Action::Remove { id, .. } => Some(*id),
                    _ => None,
                })
                .collect();
            assert_eq!(got_removed, removed, "failed testcase: {case}");
            let got_adds: Vec<Action> = plan
                .actions
                .iter()
                .filter(|a| matches!(a, Action::Add { .. }))
                .cloned()
                .collect();
            assert_eq!(got_adds, adds, "failed testcase: {case}");
            // Removals always come before the add: etcd refuses an add while dead members
            // keep the started count below quorum.
            let first_add = plan
                .actions
                .iter()
                .position(|a| matches!(a, Action::Add { .. }));
            let last_remove = plan
                .actions
                .iter()
                .rposition(|a| matches!(a, Action::Remove { .. }));
            if let (Some(a), Some(r)) = (first_add, last_remove) {
                assert!(r < a, "failed testcase {case}: removals first");
            }
        }
    }

    /// Regression (simulation, seed 2, schedule 51447): peers by DNS name in a VPC that gives
    /// none. i-4's file was written while EC2 told it by IP; read back while nobody answers and
    /// EC2 does not list it, only instance metadata names it. The kept file advertises the
    /// peer URL its initial cluster names (etcd refuses any other) and the client URL by IP,
    /// as its peers reach it; a file that names it by DNS name keeps the name.
    #[test]
    fn a_kept_file_advertises_this_member_as_its_initial_cluster_names_it() {
        let mut by_dns = settings();
        by_dns.address_kind = AddressKind::Hostname;
        let kept = |initial_cluster: &str| {
            // The group lists i-4; EC2 does not know it yet.
            let mut seen = observed(4, &[4], None);
            seen.instances[0].private_ip.clear();
            seen.instances[0].private_dns.clear();
            seen.previous_file = PreviousFile::Member {
                initial_cluster: initial_cluster.into(),
            };
            seen
        };
        // (case, the kept initial cluster, the peer URL and the client URL advertised)
        let cases = [
            (
                "by IP",
                "i-1=http://10.0.2.1:2380,i-4=http://10.0.2.4:2380",
                "http://10.0.2.4:2380",
                "http://10.0.2.4:2379",
            ),
            (
                "by name",
                "i-1=http://ip-10-0-2-1.ec2.internal:2380,i-4=http://ip-10-0-2-4.ec2.internal:2380",
                "http://ip-10-0-2-4.ec2.internal:2380",
                "http://ip-10-0-2-4.ec2.internal:2379",
            ),
        ];
        for (case, initial_cluster, peer, client) in cases {
            let seen = kept(initial_cluster);
            let p = plan(&seen, &by_dns).unwrap();
            assert_eq!(p.mode, Mode::Existing, "failed testcase {case}: {p:?}");
            let env = environment(&p, &seen, None, &by_dns).unwrap();
            let value = |key: &str| env.iter().find(|(k, _)| *k == key).unwrap().1.clone();
            assert_eq!(value("ETCD_INITIAL_CLUSTER"), initial_cluster, "{case}");
            assert_eq!(value("ETCD_INITIAL_ADVERTISE_PEER_URLS"), peer, "{case}");
            assert_eq!(value("ETCD_ADVERTISE_CLIENT_URLS"), client, "{case}");
        }
    }

    #[test]
    fn dns_peer_urls_match_instances() {
        let mut s = settings();
        s.address_kind = AddressKind::Hostname;
        let mut m = member(11, "i-1", "x");
        m.peer_urls = vec!["http://ip-10-0-2-1.ec2.internal:2380".into()];
        let o = observed(2, &[1, 2], Some(vec![m]));
        let p = plan(&o, &s).unwrap();
        assert_eq!(
            p.actions,
            vec![Action::Add {
                peer_url: "http://ip-10-0-2-2.ec2.internal:2380".into()
            }]
        );
    }

    #[test]
    fn new_cluster_waits_for_addresses_and_for_itself() {
        let mut o = observed(1, &[1, 2], None);
        o.instances[1].private_ip.clear();
        o.instances[1].private_dns.clear();
        let p = plan(&o, &settings()).unwrap();
        assert_eq!(p.mode, Mode::Wait);
        assert!(p.summary.contains("no private address"), "{}", p.summary);
        let o = observed(3, &[1, 2], None);
        let p = plan(&o, &settings()).unwrap();
        assert_eq!(p.mode, Mode::Wait);
        assert!(p.summary.contains("not yet listed"), "{}", p.summary);
    }

    #[test]
    fn new_cluster_environment() {
        // i-2 takes part in the bootstrap i-1 (the seed) started: the same initial cluster
        // as the seed's own file, taken from i-1's peer port.
        let bootstrap: Vec<Member> = [1u8, 2, 3]
            .iter()
            .map(|n| Member {
                client_urls: vec![],
                ..member(u64::from(*n), &format!("i-{n}"), &format!("10.0.2.{n}"))
            })
            .collect();
        let o = Observed {
            peer_list: Some(bootstrap),
            ..observed(2, &[3, 1, 2], None)
        };
        let s = settings();
        let p = plan(&o, &s).unwrap();
        assert_eq!(p.mode, Mode::New, "{}", p.summary);
        let env = environment(&p, &o, None, &s).unwrap();
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.as_str())
                .unwrap()
        };
        assert_eq!(get("ETCD_NAME"), "i-2");
        assert_eq!(get("ETCD_INITIAL_CLUSTER_STATE"), "new");
        assert_eq!(
            get("ETCD_INITIAL_CLUSTER"),
            "i-1=http://10.0.2.1:2380,i-2=http://10.0.2.2:2380,i-3=http://10.0.2.3:2380"
        );
        assert_eq!(get("ETCD_INITIAL_CLUSTER_TOKEN"), s.cluster_token);
        assert_eq!(
            get("ETCD_INITIAL_ADVERTISE_PEER_URLS"),
            "http://10.0.2.2:2380"
        );
        assert_eq!(get("ETCD_ADVERTISE_CLIENT_URLS"), "http://10.0.2.2:2379");
        assert_eq!(get("ETCD_LISTEN_PEER_URLS"), "http://10.0.2.2:2380");
        assert_eq!(get("ETCD_LISTEN_CLIENT_URLS"), "http://10.0.2.2:2379");
    }

    #[test]
    fn clients_on_the_node_reach_etcd_on_localhost() {
        let o = observed(2, &[2, 3], None);
        let mut s = settings();
        s.listen_localhost = true;
        let env = environment(&plan(&o, &s).unwrap(), &o, None, &s).unwrap();
        let listen = env
            .iter()
            .find(|(k, _)| *k == "ETCD_LISTEN_CLIENT_URLS")
            .unwrap();
        assert_eq!(listen.1, "http://10.0.2.2:2379,http://127.0.0.1:2379");
        let advertise = env
            .iter()
            .find(|(k, _)| *k == "ETCD_ADVERTISE_CLIENT_URLS")
            .unwrap();
        assert_eq!(
            advertise.1, "http://10.0.2.2:2379",
            "peers never get 127.0.0.1"
        );
    }

    #[test]
    fn hostnames_advertise_names_but_listen_on_ips() {
        let o = observed(2, &[2, 3], None);
        let mut s = settings();
        s.address_kind = AddressKind::Hostname;
        s.peer_scheme = Scheme::Https;
        let env = environment(&plan(&o, &s).unwrap(), &o, None, &s).unwrap();
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(
            get("ETCD_INITIAL_ADVERTISE_PEER_URLS"),
            "https://ip-10-0-2-2.ec2.internal:2380"
        );
        assert_eq!(get("ETCD_LISTEN_PEER_URLS"), "https://10.0.2.2:2380");
    }

    #[test]
    fn join_environment_names_unstarted_members_by_instance() {
        let members = vec![
            member(11, "i-1", "10.0.2.1"),
            member(12, "", "10.0.2.2"),
            member(13, "i-3", "10.0.2.3"),
            member(15, "i-5", "10.0.2.5"),
            member(16, "i-6", "10.0.2.6"),
        ];
        let o = observed(4, &[1, 2, 4, 5, 6], Some(members.clone()));
        let s = settings();
        let p = plan(&o, &s).unwrap();
        let after = predicted_members(&members, &p.actions);
        let env = environment(&p, &o, Some(&after), &s).unwrap();
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get("ETCD_INITIAL_CLUSTER_STATE"), "existing");
        assert_eq!(
            get("ETCD_INITIAL_CLUSTER"),
            "i-1=http://10.0.2.1:2380,i-2=http://10.0.2.2:2380,i-4=http://10.0.2.4:2380,i-5=http://10.0.2.5:2380,i-6=http://10.0.2.6:2380"
        );
        assert!(!env.iter().any(|(k, _)| *k == "ETCD_INITIAL_CLUSTER_TOKEN"));
    }

    #[test]
    fn proxy_environment_from_members_or_group() {
        let mut s = settings();
        s.proxy_mode = true;
        let members = vec![
            member(11, "i-1", "10.0.2.1"),
            member(12, "i-2", "10.0.2.2"),
            member(13, "", "10.0.2.3"),
        ];
        let o = observed(9, &[1, 2, 3], Some(members.clone()));
        let p = plan(&o, &s).unwrap();
        assert_eq!((p.mode, p.actions.len()), (Mode::Proxy, 0));
        let env = environment(&p, &o, Some(&members), &s).unwrap();
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get("ETCD_PROXY"), "on");
        assert_eq!(
            get("ETCD_INITIAL_CLUSTER"),
            "i-1=http://10.0.2.1:2380,i-2=http://10.0.2.2:2380"
        );
        assert_eq!(
            get("ETCD_ENDPOINTS"),
            "http://10.0.2.1:2379,http://10.0.2.2:2379"
        );

        let o = observed(9, &[1, 2], None);
        let env = environment(&plan(&o, &s).unwrap(), &o, None, &s).unwrap();
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(
            get("ETCD_INITIAL_CLUSTER"),
            "i-1=http://10.0.2.1:2380,i-2=http://10.0.2.2:2380"
        );
        assert_eq!(
            get("ETCD_ENDPOINTS"),
            "http://10.0.2.1:2379,http://10.0.2.2:2379"
        );
        assert!(!env.iter().any(|(k, _)| *k == "ETCD_INITIAL_CLUSTER_STATE"));
    }

    #[test]
    fn cluster_tokens() {
        assert_eq!(cluster_token("etcd-masters"), cluster_token("etcd-masters"));
        assert_ne!(cluster_token("a b"), cluster_token("a-b"));
        // Stable across versions: the token is in every file and in the cluster's ID.
        assert_eq!(cluster_token("etcd_a.b c/x"), "etcd-etcd_a.b-c-x-bd16ccb9");
        let t = cluster_token("Name=etcd masters,env=prod\n");
        assert!(
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "{t}"
        );
    }
}
