//! One run, start to finish: observe (IMDS, AWS, etcd), decide (`plan`), act (`apply`), write
//! (`envfile`). This module wires the edges together; it makes no decision of its own. The
//! default job (`discover`) looks again while the plan is to wait (the group not all visible,
//! an election under way), within `--wait-timeout`; `promote`, `leave` and `reconcile` act
//! on the running cluster and write no file.

use std::time::{Duration, Instant, SystemTime};

use crate::aws::autoscaling::{self, GroupQuery};
use crate::aws::query::QueryClient;
use crate::aws::s3::{self, S3};
use crate::aws::{credentials, ec2, endpoint};
use crate::config::{Command, Config, GroupSelector};
use crate::error::{Error, Result};
use crate::etcd::{self, Discovery, Etcd, Health};
use crate::http::{aws_tls, etcd_tls, jitter, Http, Timeouts};
use crate::imds::{join, Imds};
use crate::metrics::{Counts, Tally};
use crate::model::{
    self, counts_in_cluster, warmed, Group, Identity, Instance, LastRun, LocalData, Member,
    Observed, PreviousFile, Restores,
};
use crate::plan::{self, Mode, Plan, Settings};
use crate::{apply, datadir, envfile, restore, snapshot, status};

/// IMDS and the container endpoint are link-local: they answer in milliseconds or not at all.
const LOCAL: Timeouts = Timeouts {
    connect: Duration::from_secs(1),
    call: Duration::from_secs(3),
};
/// etcd peers: a dead address must cost about a second.
const ETCD: Timeouts = Timeouts {
    connect: Duration::from_millis(1500),
    call: Duration::from_secs(10),
};
const AWS: Timeouts = Timeouts {
    connect: Duration::from_secs(3),
    call: Duration::from_secs(20),
};
/// Between two looks at a group that is not all visible yet, jittered to 2-6 s so a fleet
/// booting at once spreads its AWS calls out.
const WAIT_INTERVAL: Duration = Duration::from_secs(4);
/// What a held `leave` keeps of --timeout for its last try and the hook's completion: past
/// --timeout every call fails at once.
const AFTER_THE_HOLD: Duration = Duration::from_secs(30);
/// How long members may report no leader before we call the quorum lost: an election after
/// a leader's instance died takes a few seconds.
const ELECTION_GRACE: Duration = Duration::from_secs(15);

fn sleep(d: Duration) {
    std::thread::sleep(d);
}

/// The groups that form the cluster, as settled once at the start of a run.
enum Selection {
    Names(Vec<String>),
    Tags(Vec<(String, String)>),
}

impl Selection {
    /// Resolves "my own group" to its name; returns the text the cluster token comes from.
    /// `group_tag`: the group's name when IMDS told it (instance metadata tags on).
    /// AutoScaling may list a just-launched instance only moments later: until `until` (the
    /// end of `--boot-wait`) we ask again.
    fn resolve(
        client: &QueryClient,
        selector: &GroupSelector,
        instance_id: &str,
        group_tag: Option<String>,
        until: Instant,
    ) -> Result<(Selection, String)> {
        match selector {
            GroupSelector::Own => {
                let started = Instant::now();
                let mut names = match group_tag {
                    Some(name) => vec![name],
                    None => autoscaling::groups_of_instance(client, instance_id)?,
                };
                while names.is_empty() && Instant::now() < until {
                    log::info!(
                        "instance {instance_id} is not listed in an Auto Scaling group yet: asking again (--boot-wait)"
                    );
                    let pause = WAIT_INTERVAL.mul_f64(0.5 + jitter());
                    sleep(pause.min(until.saturating_duration_since(Instant::now())));
                    names = autoscaling::groups_of_instance(client, instance_id)?;
                }
                if names.is_empty() {
                    return Err(Error::NotReady(format!(
                        "instance {instance_id} is in no Auto Scaling group after {}s (--boot-wait); if it is not in one, name the masters' group with --scaling-group-name",
                        started.elapsed().as_secs()
                    )));
                }
                names.sort();
                let text = names.join(",");
                Ok((Selection::Names(names), text))
            }
            GroupSelector::Named(name) => Ok((Selection::Names(vec![name.clone()]), name.clone())),
            GroupSelector::Tagged(tags) => {
                let mut text: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                text.sort();
                Ok((Selection::Tags(tags.clone()), text.join(",")))
            }
        }
    }

    fn describe(&self, client: &QueryClient) -> Result<Vec<Group>> {
        let groups = match self {
            Selection::Names(names) => {
                autoscaling::describe_groups(client, GroupQuery::Names(names))?
            }
            Selection::Tags(tags) => autoscaling::describe_groups(client, GroupQuery::Tags(tags))?,
        };
        if groups.is_empty() {
            let what = match self {
                Selection::Names(n) => format!("named {}", n.join(",")),
                Selection::Tags(t) => format!("tagged {t:?}"),
            };
            return Err(Error::Usage(format!(
                "no Auto Scaling group {what}; check the name or tags"
            )));
        }
        Ok(groups)
    }
}

/// Asks the client ports for the member list and the peer ports for theirs, at once. A list
/// from a client port, or a bootstrap under way from a peer port, settles it without waiting
/// for the other (a bootstrapping member's silent client port would cost the whole call
/// timeout); otherwise both answers are returned: a formed cluster's peer list matters only
/// when no client port gave one.
fn look(
    http: &Http,
    client_urls: Vec<String>,
    peer_urls: Vec<String>,
    api: crate::etcd::EtcdApi,
    user: Option<crate::etcd::EtcdUser>,
) -> (Result<Discovery>, Option<etcd::PeerList>) {
    enum Answer {
        Clients(Result<Discovery>),
        Peers(Option<etcd::PeerList>),
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    let (clients, peers) = (sender.clone(), sender);
    let (http_a, http_b) = (http.clone(), http.clone());
    // Detached on purpose: once one side settles it, the other's stragglers end at their
    // next send, or with the process.
    std::thread::spawn(move || {
        let found = etcd::discover(&http_a, &client_urls, api, user.as_ref());
        let _ = clients.send(Answer::Clients(found));
    });
    std::thread::spawn(move || {
        let found = (!peer_urls.is_empty())
            .then(|| etcd::peer_member_list(&http_b, &peer_urls))
            .flatten();
        let _ = peers.send(Answer::Peers(found));
    });
    let (mut discovery, mut peer_list, mut peers_done) = (None, None, false);
    for answer in receiver {
        match answer {
            Answer::Clients(found @ Ok(Discovery::Found(..))) => return (found, None),
            Answer::Peers(Some(list)) if crate::model::bootstrapping(&list.members) => {
                return (Ok(Discovery::NobodyAnswered), Some(list));
            }
            Answer::Clients(other) => discovery = Some(other),
            Answer::Peers(list) => {
                peer_list = list;
                peers_done = true;
            }
        }
        if discovery.is_some() && peers_done {
            break;
        }
    }
    match discovery {
        Some(discovery) => (discovery, peer_list),
        // Neither side sent (a thread died): nothing is known.
        None => (
            Err(Error::Etcd {
                what: "member list".into(),
                detail: "the look at the peers ended without an answer".into(),
                transient: true,
            }),
            None,
        ),
    }
}

/// Instances the groups still list that no longer count but may still run etcd
/// (`Terminating:Wait`, `Terminating:Proceed`, `Detaching`): sorted and unique.
fn leaving_ids(groups: &[Group]) -> Vec<String> {
    let gone = |state: &str| state == "Terminated" || state == "Detached";
    let mut ids: Vec<String> = groups
        .iter()
        .flat_map(|g| g.instances.iter())
        .filter(|(_, state)| !counts_in_cluster(state) && !gone(state))
        .map(|(id, _)| id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Counted instance ids of the groups, sorted and unique.
fn counted_ids(groups: &[Group]) -> Vec<String> {
    let mut ids: Vec<String> = groups
        .iter()
        .flat_map(|g| g.instances.iter())
        .filter(|(_, state)| counts_in_cluster(state))
        .map(|(id, _)| id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// A warm pool's instance runs its boot (user data, etcd's units) in the pool, long before
/// AutoScaling puts it in service, and the group does not list it meanwhile. Nothing may
/// change then, and no file may be written that would start etcd. Ending at once would not
/// do: exit 0 would start etcd without a file (a one-node cluster of its own), and 75 would
/// have etcd's unit try again every 15 s until the pool stops the instance. So the run waits
/// here, asking only IMDS, until the instance enters service (`Warmed:Running` taken out of
/// the pool: the run goes on and joins) or `--wait-timeout` passes (exit 75; etcd's unit tries
/// again). A `Warmed:Stopped` or `Warmed:Hibernated` instance is stopped while it waits, and
/// its next boot, in service, joins.
fn wait_out_warm_pool(imds: &Imds, instance_id: &str, state: &str, config: &Config) -> Result<()> {
    let started = Instant::now();
    let deadline = started + config.wait_timeout.min(config.timeout);
    log::info!(
        "instance {instance_id} is headed for the warm pool ({state}): changing nothing and \
         writing no file; waiting for it to enter service (--wait-timeout)"
    );
    let mut state = state.to_string();
    while warmed(&state) {
        if Instant::now() >= deadline {
            return Err(Error::NotReady(format!(
                "instance {instance_id} is still in the warm pool ({state}) after {}s: not \
                 joining until it is in service",
                started.elapsed().as_secs()
            )));
        }
        pause_until(deadline);
        // Gone from IMDS (no longer in a group) is not "in the pool" either: the plan's
        // rule 10 decides then.
        state = imds
            .target_lifecycle_state(&sleep)?
            .unwrap_or_else(|| "unknown".into());
    }
    log::info!("instance {instance_id} left the warm pool ({state}): going on");
    Ok(())
}

/// The edges one run talks to, set up once.
struct World<'a> {
    config: &'a Config,
    /// What `--metrics-file` reports: filled as the run goes.
    tally: &'a Tally,
    etcd_http: Http,
    autoscaling: QueryClient<'a>,
    ec2: QueryClient<'a>,
    me: Identity,
    selection: Selection,
    settings: Settings,
}

impl World<'_> {
    /// One look at the group and the cluster; also the name of the group that lists this
    /// instance (where a bootstrap is recorded).
    fn observe(&self) -> Result<(Observed, Option<Etcd>, Option<String>)> {
        let groups = self.selection.describe(&self.autoscaling)?;
        let my_group = groups
            .iter()
            .find(|g| g.instances.iter().any(|(id, _)| *id == self.me.instance_id))
            .map(|g| g.name.clone());
        let (observed, etcd) = self.observe_groups(&groups)?;
        Ok((observed, etcd, my_group))
    }

    /// One look at the cluster of these groups, as AutoScaling just described them.
    fn observe_groups(&self, groups: &[Group]) -> Result<(Observed, Option<Etcd>)> {
        // Groups are described sorted by name: the first record is the one every node reads.
        let bootstrap_record = groups.iter().find_map(|g| g.bootstrap_record.clone());
        let members_record = groups.iter().find_map(|g| g.members_record.clone());
        let ids = counted_ids(groups);
        let leaving_ids = leaving_ids(groups);
        // This instance is asked about in the same call: peers are named from EC2, so this
        // node is too (see `model::name_me_as_ec2_does`).
        let mut asking: Vec<String> = ids.iter().chain(&leaving_ids).cloned().collect();
        if !asking.contains(&self.me.instance_id) && !self.me.instance_id.is_empty() {
            asking.push(self.me.instance_id.clone());
        }
        let described = ec2::describe_instances(&self.ec2, &asking, self.config.address_family)?;
        let me = model::name_me_as_ec2_does(&self.me, &described);
        if me.private_dns != self.me.private_dns {
            log::info!(
                "this instance is {:?} to EC2 (instance metadata said {:?}): named as EC2 names its peers",
                me.private_dns,
                self.me.private_dns
            );
        }
        let (mut instances, leaving): (Vec<Instance>, Vec<Instance>) = described
            .into_iter()
            .filter(|i| ids.contains(&i.id) || leaving_ids.contains(&i.id))
            .partition(|i| ids.contains(&i.id));
        // An id AutoScaling lists but EC2 does not know (yet) stays, without an address.
        for id in &ids {
            if !instances.iter().any(|i| &i.id == id) {
                instances.push(Instance {
                    id: id.clone(),
                    private_ip: String::new(),
                    private_dns: String::new(),
                    launch_time: String::new(),
                });
            }
        }
        instances.sort_by(|a, b| a.id.cmp(&b.id));
        // Like with like: a group sized in vCPUs, MiB or weights expects a number of
        // instances only its weights tell.
        let desired_capacity = groups
            .iter()
            .map(|g| {
                let (expected, why) = g.expected_instances();
                if let Some(why) = why {
                    log::info!("group {}: {why}: {expected} instance(s) expected", g.name);
                }
                expected
            })
            .sum();
        let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        log::info!(
            "group(s) {}: {} counted instances, {desired_capacity} desired",
            names.join(","),
            instances.len()
        );

        // Instances on their way out still run their etcd until they are gone: asked too, so
        // that "nobody answered" is never said of a cluster that runs there.
        let client_urls: Vec<String> = instances
            .iter()
            .chain(&leaving)
            .filter_map(|i| self.settings.client_url(i).ok())
            .collect();
        // A bootstrap under way serves no client until it has a leader (its client ports
        // accept and stay silent until the call times out), but its members' peer ports list
        // it at once: both are asked at the same time, and whichever settles it first wins.
        let peer_urls: Vec<String> = instances
            .iter()
            .chain(&leaving)
            .filter_map(|i| self.settings.peer_url(i).ok())
            .collect();
        let probe_peers = self.config.command == Command::Discover && !self.config.proxy_mode;
        let (discovery, peer_list) = look(
            &self.etcd_http,
            client_urls,
            if probe_peers {
                peer_urls.clone()
            } else {
                Vec::new()
            },
            self.config.etcd_api,
            self.config.etcd_user.clone(),
        );
        let local_data = local_data(self.config);
        let restarting = local_data == LocalData::Present && probe_peers;
        let (etcd, members, peer_list) = match (discovery, peer_list) {
            (Ok(Discovery::Found(etcd, members)), _) => (Some(etcd), Some(members), None),
            (Ok(Discovery::NobodyAnswered), peer_list) => (None, None, peer_list),
            // Members that are up but serve no client (no leader: the others are still down,
            // as after a power cut) wait for this one. With its data here, etcd restarts as
            // the member it was, whatever the file says.
            (Err(e), _) if restarting && e.is_transient() => {
                log::info!("{e}; this node has member data: restarting etcd from it");
                (None, None, None)
            }
            // No leader, but the peers list the members: the plan decides whether this node
            // is one the cluster waits for (an initial member that never started).
            (Err(e), Some(list)) if e.is_transient() => {
                log::info!("{e}; a peer port lists {} members", list.members.len());
                (None, None, Some(list))
            }
            (Err(e), _) => return Err(e),
        };
        let peer_list_at = peer_list.as_ref().map(|list| list.url.clone());
        let cluster_version_undecided = self.version_undecided(
            etcd.as_ref(),
            members.as_deref(),
            peer_list.as_ref().map(|list| list.members.as_slice()),
            peer_list_at.as_deref(),
            local_data,
        );
        // The cluster's ID, as the answer that gave the list named it: it proves a list is
        // still the initial cluster, for a late initial member (rule 18), and tells another
        // cluster's list from a dead bootstrap's (rule 20).
        let cluster_id = match (&etcd, &peer_list) {
            (Some(etcd), _) => etcd.cluster_id,
            (None, Some(list)) => list.cluster_id,
            (None, None) => None,
        };
        let peer_list = peer_list.map(|list| list.members);
        // A plain reboot is decided without health: one round trip less on every reboot.
        // The member commands always weigh health.
        let needs_health = |members: &[Member]| {
            self.config.command != Command::Discover
                || plan::reboot_member(&self.me.instance_id, members, local_data).is_none()
        };
        let health_asked = members
            .as_deref()
            .is_some_and(|m| !self.config.proxy_mode && needs_health(m));
        let health = match &members {
            Some(members) if health_asked => {
                // With the token: /v3/maintenance/status needs it when auth is on.
                let http = etcd.as_ref().map_or(&self.etcd_http, Etcd::http);
                etcd::member_health(http, members)
            }
            _ => Vec::new(),
        };
        let mut healthy = Vec::new();
        let mut present = Vec::new();
        for (id, health) in health {
            if let Health::Leader { note: Some(note) } = &health {
                log::warn!("member {id:x}: {note}");
            }
            if matches!(health, Health::Leader { .. }) {
                healthy.push(id);
            }
            if health != Health::Absent {
                present.push(id);
            }
        }
        let previous_file =
            envfile::previous_file(&self.config.environment_file, &self.me.instance_id);
        let never_started = self.never_started(&previous_file);
        let (never_led_bootstrap, never_led_cluster_id) =
            self.never_led_bootstrap(&previous_file, local_data).unzip();
        let mut observed = Observed {
            me,
            desired_capacity,
            instances,
            leaving: leaving_ids,
            members,
            peer_list,
            healthy,
            present,
            local_data,
            cluster_version_undecided,
            cluster_id,
            previous_file,
            never_started,
            never_led_bootstrap,
            never_led_cluster_id,
            bootstrap_instances_left: None,
            bootstrap_record,
            bootstrap_restores: None,
            members_record,
        };
        observed.bootstrap_instances_left = self.bootstrap_instances_left(&observed);
        // Rule 20 decides as a node without member data: it asks what such a node asks.
        if plan::leaves_unformed_bootstrap(&observed, &self.settings) {
            observed.cluster_version_undecided = self.version_undecided(
                etcd.as_ref(),
                observed.members.as_deref(),
                observed.peer_list.as_deref(),
                peer_list_at.as_deref(),
                LocalData::Missing,
            );
        }
        self.tally
            .members(observed.members.as_deref().map(|m| Counts {
                members: m.len(),
                healthy: health_asked.then_some(observed.healthy.len()),
                stale: status::stale(&observed.instances, m),
            }));
        Ok((observed, etcd))
    }

    /// Whether this instance's own etcd is there, at its client URL in the group's addressing.
    fn etcd_is_here(&self) -> bool {
        let me = Instance {
            id: self.me.instance_id.clone(),
            private_ip: self.me.private_ip.clone(),
            private_dns: self.me.private_dns.clone(),
            launch_time: String::new(),
        };
        (self.settings.client_url(&me)).is_ok_and(|url| etcd::is_there(&self.etcd_http, &url))
    }

    /// Rule 18: an etcd that starts without member data asks its peers for the cluster's
    /// version, and so do the removals (`leave`, `reconcile`), which wait for it; a failed
    /// ask holds nothing back (etcd would say it at start). `true`: a peer answered that no
    /// version is decided yet. Without a leader, the peer port that listed the members
    /// (`peer_list_at`) answers it.
    fn version_undecided(
        &self,
        etcd: Option<&Etcd>,
        members: Option<&[Member]>,
        peer_list: Option<&[Member]>,
        peer_list_at: Option<&str>,
        local_data: LocalData,
    ) -> bool {
        let probe_peers = self.config.command == Command::Discover && !self.config.proxy_mode;
        let without_data = |members: &[Member]| {
            probe_peers
                && plan::starts_without_member_data(&self.me.instance_id, members, local_data)
        };
        let removes = matches!(self.config.command, Command::Leave | Command::Reconcile);
        let version_at = match (etcd, members, peer_list.zip(peer_list_at)) {
            (Some(etcd), Some(members), _) if removes || without_data(members) => {
                Some((etcd.http(), etcd.endpoint.as_str()))
            }
            (None, None, Some((list, url)))
                if without_data(list) && !crate::model::bootstrapping(list) =>
            {
                Some((&self.etcd_http, url))
            }
            _ => None,
        };
        match version_at {
            Some((http, url)) => match etcd::cluster_version_decided(http, url) {
                Ok(decided) => !decided,
                Err(e) => {
                    log::debug!("{e}: the cluster's version is not known");
                    false
                }
            },
            None => false,
        }
    }

    /// Whether etcd never ran from the bootstrap file: the data directory is as the file
    /// recorded it.
    fn never_started(&self, previous_file: &PreviousFile) -> bool {
        match previous_file {
            PreviousFile::Bootstrap {
                data_fingerprint: Some(recorded),
                ..
            } if self.config.data_dir_named => {
                datadir::fingerprint(&self.config.data_dir).as_deref() == Some(recorded.as_str())
            }
            _ => false,
        }
    }

    /// Rule 20's last evidence, asked of EC2 only when the rest holds: how many of the dead
    /// bootstrap's instances still exist. A failed ask proves nothing (the node stays).
    fn bootstrap_instances_left(&self, observed: &Observed) -> Option<usize> {
        let ids = plan::unformed_bootstrap_instances(observed, &self.settings)?;
        match ec2::count_not_terminated(&self.ec2, &ids) {
            Ok(left) => {
                log::info!(
                    "EC2 still has {left} of the {} instances of the bootstrap this node's member \
                     data began in",
                    ids.len()
                );
                Some(left)
            }
            Err(e) => {
                log::warn!("{e}: whether this node's bootstrap can still form is not known");
                None
            }
        }
    }

    /// Rule 20's evidence: read only for a bootstrap file's member data in a named directory.
    fn never_led_bootstrap(
        &self,
        previous_file: &PreviousFile,
        local_data: LocalData,
    ) -> Option<(String, u64)> {
        let bootstrap = matches!(previous_file, PreviousFile::Bootstrap { .. });
        if !bootstrap || local_data != LocalData::Present || !self.config.data_dir_named {
            return None;
        }
        let datadir::MemberLog::NeverLed(members) = datadir::member_log(&self.config.data_dir)?
        else {
            return None;
        };
        // As `name=peer-url` pairs, etcd's initial-cluster form; a member without a name or
        // peer URL proves nothing.
        let mut initial_cluster = Vec::new();
        let members = etcd::parse_peer_members(&members).ok()?;
        for m in &members {
            if m.name.is_empty() || m.peer_urls.is_empty() {
                return None;
            }
            initial_cluster.extend(m.peer_urls.iter().map(|url| format!("{}={url}", m.name)));
        }
        // etcd computed the bootstrap's cluster ID from these members' IDs, and kept it.
        let ids: Vec<u64> = members.iter().map(|m| m.id).collect();
        Some((initial_cluster.join(","), crate::model::cluster_id(&ids)))
    }
}

/// Only a directory the operator named says anything: an empty default directory (or a
/// leftover one) tells nothing about where etcd really keeps its data.
fn local_data(config: &Config) -> LocalData {
    match datadir::local_data(&config.data_dir) {
        _ if !config.data_dir_named => {
            log::debug!(
                "--etcd-data-dir/ETCD_DATA_DIR is not set: not judging {} (etcd may keep its data elsewhere)",
                config.data_dir.display()
            );
            LocalData::Unknown
        }
        found => found,
    }
}

/// The settings the plan and the file are shaped by. `cluster_token` only goes into a
/// bootstrap's file.
fn settings(config: &Config, cluster_token: String) -> Settings {
    Settings {
        peer_scheme: config.peer_scheme,
        client_scheme: config.client_scheme,
        peer_port: config.peer_port,
        client_port: config.client_port,
        address_kind: config.address_kind,
        proxy_mode: config.proxy_mode,
        cluster_token,
        learner: config.learner,
        listen_localhost: config.listen_localhost,
        restores_snapshots: config.snapshot_url.is_some(),
    }
}

/// The member list of the cluster the previous file names, asked without AWS for the reboot
/// fast path (`plan::reboot_shortcut`). A member asks the *peer* ports of its
/// `ETCD_INITIAL_CLUSTER`: `GET /members` needs no etcd user and answers without a leader,
/// so a member of a cluster that lost its quorum (a power cut) still learns it is one and
/// restarts (rule 13); nothing here needs health (a reboot changes nothing). A proxy asks
/// the client ports of its `ETCD_ENDPOINTS`, as its full path would: it may hold no peer
/// certificate, and its file is etcd's own list of client URLs. `None`: nobody gave a list.
fn ask_last_cluster(http: &Http, last: &LastRun, config: &Config) -> Option<Vec<Member>> {
    if config.proxy_mode {
        match etcd::discover(
            http,
            &last.endpoints,
            config.etcd_api,
            config.etcd_user.as_ref(),
        ) {
            Ok(Discovery::Found(_, members)) => Some(members),
            Ok(Discovery::NobodyAnswered) => None,
            Err(e) => {
                log::debug!("the previous file's endpoints: {e}");
                None
            }
        }
    } else {
        etcd::peer_member_list(http, &last.peer_urls).map(|list| list.members)
    }
}

/// The CA bundle for AWS calls and where it was named: `AWS_CA_BUNDLE`, else the shared
/// config's `ca_bundle` for the profile (a file that cannot be read names none).
fn ca_bundle(config: &Config) -> Option<(std::path::PathBuf, String)> {
    if let Some(path) = &config.aws.ca_bundle {
        return Some((path.clone(), "AWS_CA_BUNDLE".into()));
    }
    let (file, profile) = config.aws.shared_config.as_ref()?;
    let text = std::fs::read_to_string(file).ok()?;
    let path = crate::aws::shared_config_value(&text, profile, "ca_bundle")?;
    Some((
        path.into(),
        format!("ca_bundle of profile {profile} in {}", file.display()),
    ))
}

/// The metrics' word for a plan's kind.
fn kind(mode: Mode) -> &'static str {
    match mode {
        Mode::New => "new",
        Mode::Existing => "existing",
        Mode::Proxy => "proxy",
        Mode::Wait => "wait",
    }
}

/// One run of `config.command`; `tally` gathers what `--metrics-file` reports.
pub fn run(config: &Config, tally: &Tally) -> Result<()> {
    if config.command == Command::Discover {
        envfile::check_writable(&config.environment_file)?;
    }
    let local = Http::new(LOCAL, ureq::tls::TlsConfig::default(), false);
    let etcd_http = Http::new(ETCD, etcd_tls(&config.etcd_tls)?, false).counting(&tally.etcd);
    let aws_http = Http::new(
        AWS,
        aws_tls(
            ca_bundle(config)
                .as_ref()
                .map(|(p, s)| (p.as_path(), s.as_str())),
        )?,
        true,
    )
    .counting(&tally.aws);

    // What comes up late at boot (IMDS, the network, our listing in the group) is waited for
    // until then.
    let boot_deadline = Instant::now() + config.boot_wait.min(config.timeout);
    // `status` is run by hand, not at boot: nothing is waited for. Run outside the group (a
    // laptop with keys and a named group) it finds no metadata service, and shows the group
    // and the cluster without "this instance".
    let boot_deadline = match config.command {
        Command::Status => Instant::now(),
        _ => boot_deadline,
    };
    // The reboot fast path: the previous file names the cluster this node was in. Its peers
    // are asked at once, while IMDS says who we are; when they list this instance as a
    // member, that is the whole run, without AWS (and without fetching credentials).
    let last_run = match config.command {
        Command::Discover => envfile::last_run(&config.environment_file),
        _ => None,
    };
    let asked = last_run.clone().map(|last| {
        let (http, config) = (etcd_http.clone(), config.clone());
        std::thread::spawn(move || ask_last_cluster(&http, &last, &config))
    });
    let outside = config.command == Command::Status && config.group != GroupSelector::Own;
    let (imds, outsider) =
        match Imds::connect(&local, &config.aws.imds_endpoint, boot_deadline, &sleep) {
            Err(Error::ImdsUnreachable(why)) if outside => {
                log::info!("{why}: not on an instance; showing the group and the cluster only");
                (Imds::unreachable(&local, &config.aws.imds_endpoint), true)
            }
            imds => (imds?, false),
        };
    let fetch_credentials = || {
        credentials::resolve(
            config.aws.keys.as_ref(),
            config.aws.container_credentials.as_ref(),
            &local,
            &imds,
            &sleep,
        )
    };
    let fetch_group_tag = || match config.group {
        GroupSelector::Own => imds.autoscaling_group(&sleep),
        _ => Ok(None),
    };
    // Who we are, our group's name (when metadata tags are on) and our credentials are three
    // independent lookups: one round trip instead of three. On a reboot only the first is
    // needed; the other two wait for the fast path to say no. A member's boot also asks where
    // AutoScaling is taking this instance: a warm pool's instance boots long before it is put
    // in service.
    let joins = config.command == Command::Discover && !config.proxy_mode;
    let fetch_target = || {
        if joins {
            imds.target_lifecycle_state(&sleep)
        } else {
            Ok(None)
        }
    };
    let identify = || match outsider {
        true => status::outsider(config.aws.region.as_deref()),
        false => imds.identity(config.address_family, &sleep),
    };
    let (me, target, early) = std::thread::scope(|scope| {
        let target = scope.spawn(fetch_target);
        match asked {
            Some(_) => {
                let me = identify();
                (me, join(target), None)
            }
            None => {
                let group_tag = scope.spawn(fetch_group_tag);
                let credentials = scope.spawn(fetch_credentials);
                let me = identify();
                (me, join(target), Some((join(group_tag), join(credentials))))
            }
        }
    });
    let me = me?;
    if let Some(state) = target?.filter(|s| warmed(s)) {
        wait_out_warm_pool(&imds, &me.instance_id, &state, config)?;
    }
    if !outsider {
        log::info!(
            "this is {} ({}, {}) in {}",
            me.instance_id,
            me.private_ip,
            me.private_dns,
            me.availability_zone
        );
    }
    if let Some(asked) = asked {
        // A thread that died gave no list: the full path decides.
        let members = asked.join().ok().flatten();
        let local_data = local_data(config);
        let seen = plan::Shortcut {
            last_run: last_run.as_ref(),
            me: &me,
            members: members.as_deref(),
            local_data,
        };
        // A member's or a proxy's file names no cluster token.
        let settings = settings(config, String::new());
        match plan::reboot_shortcut(&seen, &settings) {
            Ok(plan) => {
                let observed = Observed::without_group(
                    me.clone(),
                    members,
                    local_data,
                    envfile::previous_file(&config.environment_file, &me.instance_id),
                );
                tally.plan(kind(plan.mode));
                return finish(config, &settings, &observed, None, &plan, None);
            }
            Err(why) => log::info!("not deciding from the previous file alone: {why}; asking AWS"),
        }
    }
    let (group_tag, credentials) = match early {
        Some(early) => early,
        None => std::thread::scope(|scope| {
            let group_tag = scope.spawn(fetch_group_tag);
            let credentials = fetch_credentials();
            (join(group_tag), credentials)
        }),
    };
    let region = config
        .aws
        .region
        .clone()
        .unwrap_or_else(|| me.region.clone());
    // Keys from the environment are what they are; the others are temporary and renewable.
    let renew: Option<&credentials::Refresh> = match config.aws.keys {
        Some(_) => None,
        None => Some(&fetch_credentials),
    };
    let credentials = credentials::Provider::new(credentials?, renew);
    let client =
        |service: &'static str, version: &'static str, configured: Option<&str>| QueryClient {
            http: &aws_http,
            endpoint: endpoint(service, &region, configured),
            region: region.clone(),
            service,
            version,
            credentials: &credentials,
            sleep: &sleep,
            clock: SystemTime::now,
            patient_until: boot_deadline,
        };
    let autoscaling = client(
        "autoscaling",
        autoscaling::VERSION,
        config.aws.autoscaling_endpoint.as_deref(),
    );
    let ec2 = client("ec2", ec2::VERSION, config.aws.ec2_endpoint.as_deref());
    let (selection, selection_text) = Selection::resolve(
        &autoscaling,
        &config.group,
        &me.instance_id,
        group_tag?,
        boot_deadline,
    )?;
    let settings = settings(config, plan::cluster_token(&selection_text));
    let world = World {
        config,
        tally,
        etcd_http,
        autoscaling,
        ec2,
        me,
        selection,
        settings,
    };
    match config.command {
        Command::Discover => discover(&world, &Bucket::new(&aws_http, &credentials, &region)),
        Command::Status => status(&world),
        Command::Snapshot => snapshot(&world, &Bucket::new(&aws_http, &credentials, &region)),
        command => member_command(&world, command),
    }
}

/// `status`: read-only. It looks as `discover` does, asks each member for its status, prints
/// the join of both, and asks the plan what `discover` would do; it acts on nothing.
fn status(world: &World) -> Result<()> {
    let groups = world.selection.describe(&world.autoscaling)?;
    let (observed, etcd) = world.observe_groups(&groups)?;
    let http = etcd.as_ref().map_or(&world.etcd_http, Etcd::http);
    let statuses = observed
        .members
        .as_deref()
        .map(|members| etcd::member_status(http, members))
        .unwrap_or_default();
    let discover = if world.me.instance_id.is_empty() {
        status::OUTSIDE.to_string()
    } else {
        match plan::plan(&observed, &world.settings) {
            Ok(plan) => {
                world.tally.plan(kind(plan.mode));
                plan.summary
            }
            Err(e) => format!("it would stop: {e}"),
        }
    };
    let report = status::report(&status::Seen {
        groups: &groups,
        instances: &observed.instances,
        members: observed.members.as_deref(),
        healthy: &observed.healthy,
        statuses: &statuses,
        this_instance: Some(world.me.instance_id.as_str()).filter(|id| !id.is_empty()),
        discover,
    });
    match world.config.output {
        status::Output::Table => print!("{}", status::table(&report)),
        status::Output::Json => print!("{}", status::json(&report)),
    }
    if !report.etcd_answered {
        return Err(Error::Etcd {
            what: "status".into(),
            detail: "no member of the group's cluster answered: the cluster could not be seen"
                .into(),
            transient: true,
        });
    }
    match status::problem(&report) {
        Some(problem) => Err(Error::Attention(problem)),
        None => Ok(()),
    }
}

/// How S3 is reached, for `snapshot` (uploads) and `discover` (the bootstrap record, and
/// restores on total loss).
struct Bucket<'a> {
    http: &'a Http,
    credentials: &'a credentials::Provider<'a>,
    region: &'a str,
    /// Asked for its region once per run.
    client: std::cell::OnceCell<S3<'a>>,
}

impl<'a> Bucket<'a> {
    fn new(http: &'a Http, credentials: &'a credentials::Provider<'a>, region: &'a str) -> Self {
        Bucket {
            http,
            credentials,
            region,
            client: std::cell::OnceCell::new(),
        }
    }

    /// The client for `location`'s bucket, in the bucket's region.
    fn s3(&self, config: &Config, location: &s3::Location) -> Result<&S3<'a>> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let endpoint = config.aws.s3_endpoint.as_deref();
        let client = S3 {
            http: self.http,
            bucket_url: s3::bucket_url(&location.bucket, self.region, endpoint),
            region: self.region.to_string(),
            credentials: self.credentials,
            sleep: &sleep,
            clock: SystemTime::now,
        }
        .in_bucket_region(&location.bucket, endpoint)?;
        Ok(self.client.get_or_init(|| client))
    }
}

/// `snapshot`: on the leader only, stream etcd's snapshot into S3, write its checksum beside
/// it, and delete the oldest beyond `--snapshot-keep`.
fn snapshot(world: &World, bucket: &Bucket) -> Result<()> {
    let config = world.config;
    let location = config
        .snapshot_url
        .as_ref()
        .ok_or_else(|| Error::Usage("snapshot needs --snapshot-url".into()))?;
    let (observed, etcd, _) = world.observe()?;
    let etcd = etcd.ok_or_else(|| Error::Etcd {
        what: "member list".into(),
        detail: "no member of the group's cluster answered".into(),
        transient: true,
    })?;
    // Only the leader uploads, so members on the same timer make one object, not three.
    let mine = etcd.at(&world
        .settings
        .client_url(&plan::me_as_instance(&observed))?);
    if !mine.is_leader()? {
        log::info!("this member is not the leader: the leader uploads the snapshot");
        return Ok(());
    }
    // Rule 18: a late initial member restores the snapshot its bootstrap did, which the
    // bucket's record names; one an earlier version recorded does not say, and the newest
    // is that one only until the version is decided: a snapshot of this cluster would give
    // it other data under the same raft index.
    let started = Instant::now();
    let deadline = started + config.wait_timeout.min(config.timeout);
    while !etcd::cluster_version_decided(mine.http(), &mine.endpoint)? {
        let why = "the cluster has not decided its version yet (it formed moments ago): no \
                   snapshot before it has";
        if Instant::now() >= deadline {
            return Err(Error::NotReady(format!(
                "{why}; still after {}s",
                started.elapsed().as_secs()
            )));
        }
        log::info!("waiting: {why}");
        pause_until(deadline);
    }
    let key = snapshot::object_name(&location.prefix, SystemTime::now(), mine.revision()?);
    if config.dry_run {
        println!(
            "# would upload the snapshot of {} to s3://{}/{key}",
            mine.endpoint, location.bucket
        );
        return Ok(());
    }
    let s3 = bucket.s3(config, location)?;
    let mut stream = mine.snapshot()?;
    let copied = s3.put_stream(&key, |sink| snapshot::copy(&mut stream, sink))?;
    s3.put(
        &snapshot::checksum_name(&key),
        snapshot::checksum_text(&copied.sha256, &key).as_bytes(),
    )?;
    log::info!(
        "uploaded the snapshot of {} to s3://{}/{key}: {} bytes, sha256 {}",
        mine.endpoint,
        location.bucket,
        copied.size,
        copied.sha256
    );
    let keys = s3.list(&location.prefix)?;
    for old in snapshot::to_delete(&keys, &location.prefix, config.snapshot_keep) {
        s3.delete(&old)?;
        log::info!(
            "deleted s3://{}/{old} (--snapshot-keep {})",
            location.bucket,
            config.snapshot_keep
        );
    }
    Ok(())
}

/// `promote`, `leave`, `reconcile`: act on the running cluster; no file is written.
fn member_command(world: &World, command: Command) -> Result<()> {
    let config = world.config;
    let Some(hook) =
        (config.lifecycle_hook.as_deref()).filter(|_| command == Command::Leave && !config.dry_run)
    else {
        return change_members(world, command);
    };
    // Rule 8: a removal refused for now (it would cost the quorum, no leader yet) holds the
    // instance in Terminating:Wait while its etcd runs: its vote may be what the quorum
    // needs until `reconcile` removes the members whose instances are gone and the
    // replacements join. Heartbeats keep the lifecycle action alive, up to --wait-timeout.
    let hold = config
        .wait_timeout
        .min(config.timeout.saturating_sub(AFTER_THE_HOLD));
    let deadline = Instant::now() + hold;
    let mut group = None;
    let result = loop {
        match change_members(world, command) {
            Err(e) if e.is_transient() && Instant::now() < deadline && world.etcd_is_here() => {
                let group = hook_group(world, &mut group)?;
                let held = autoscaling::record_lifecycle_action_heartbeat(
                    &world.autoscaling,
                    hook,
                    group,
                    &world.me.instance_id,
                )?;
                if !held {
                    log::warn!(
                        "lifecycle hook {hook} of {group}: no lifecycle action is waiting any \
                         more (it timed out or was completed): the instance is going, no hold"
                    );
                    break Err(e);
                }
                log::warn!(
                    "{e}; holding this instance in Terminating:Wait (lifecycle hook {hook}) \
                     while its etcd runs, and trying again"
                );
                pause_until(deadline);
            }
            attempt => break attempt,
        }
    };
    // After the hold, or a removal refused for good, AutoScaling would terminate the instance
    // when the hook times out anyway.
    let group = hook_group(world, &mut group)?;
    if autoscaling::complete_lifecycle_action(
        &world.autoscaling,
        hook,
        group,
        &world.me.instance_id,
    )? {
        log::info!("completed lifecycle hook {hook} of {group}");
    }
    result
}

/// The group whose lifecycle hook holds this instance, asked once.
fn hook_group<'g>(world: &World, group: &'g mut Option<String>) -> Result<&'g str> {
    if group.is_none() {
        let found = autoscaling::groups_of_instance(&world.autoscaling, &world.me.instance_id)?
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::Usage(format!(
                    "instance {} is in no Auto Scaling group",
                    world.me.instance_id
                ))
            })?;
        *group = Some(found);
    }
    Ok(group.as_deref().unwrap_or_default())
}

/// One look and the changes `command` plans from it.
fn change_members(world: &World, command: Command) -> Result<()> {
    let config = world.config;
    let (observed, etcd, my_group) = world.observe()?;
    let etcd = etcd.ok_or_else(|| Error::Etcd {
        what: "member list".into(),
        detail: "no member of the group's cluster answered".into(),
        transient: true,
    })?;
    let plan = match command {
        Command::Promote => plan::plan_promote(&observed)?,
        Command::Leave => plan::plan_leave(&observed)?,
        _ => {
            // Only the leader reconciles, so members on the same timer never race.
            let mine = world
                .settings
                .client_url(&plan::me_as_instance(&observed))?;
            if !etcd.at(&mine).is_leader()? {
                log::info!("this member is not the leader: nothing to reconcile here");
                return Ok(());
            }
            plan::plan_reconcile(&observed)?
        }
    };
    world.tally.plan(kind(plan.mode));
    log::info!("{}", plan.summary);
    if config.dry_run {
        plan.actions.iter().for_each(|a| println!("# would {a:?}"));
        return Ok(());
    }
    let etcd = match command {
        Command::Leave => through_another_member(etcd, &plan, &observed),
        _ => etcd,
    };
    // Rule 17: a removal records the members it leaves, as a join does: a node that
    // hears nobody later must know the cluster runs on those instances, not on the ones
    // the last join named (most of them may be gone since). Before the first removal,
    // not after: a run killed in between, or a write refused, must not leave a cluster
    // shrunk without a record (rule 20 would take a cut-off member's log for a dead
    // bootstrap's).
    let mut to_record = my_group
        .as_deref()
        .zip(plan::members_left(&observed, &plan.actions));
    apply::apply(&etcd, &plan.actions, &sleep, || {
        // `leave` removes this node's own member: an instance entering meanwhile (its
        // replacement) changes nothing about that.
        if !matches!(command, Command::Leave) {
            nobody_entered(world, &observed)?;
        }
        match to_record.take() {
            Some((group, left)) => record_removal(world, group, &left),
            None => Ok(()),
        }
    })?;
    Ok(())
}

/// Where this run read rule 14's record, and so where a seed writes it.
enum RecordSeen {
    /// The group's tags: they have no conditional write.
    Tags,
    /// With `--snapshot-url`, an object beside the snapshots (rule 14), with the ETag it had
    /// at the run's last look (`None`: there was none): the seed's write succeeds only if it
    /// is still so, and two seeds deciding at once cannot both record.
    S3(Option<String>),
}

/// Rule 14, with `--snapshot-url`: when nobody answered, the bootstrap record is read from the
/// bucket and stands for the tags' in `observed` (a record in the tags from before the bucket
/// was configured still counts while the bucket has none), with what its bootstrap restored.
/// A late initial member reads it too (rule 18): it restores what its bootstrap did, if the
/// bucket still holds it.
fn read_record(world: &World, bucket: &Bucket, observed: &mut Observed) -> Result<RecordSeen> {
    let Some(location) = &world.config.snapshot_url else {
        return Ok(RecordSeen::Tags);
    };
    let answered = observed.members.is_some();
    let late = answered && plan::may_be_late_initial(observed, &world.settings);
    if answered && !late {
        return Ok(RecordSeen::Tags);
    }
    let s3 = bucket.s3(world.config, location)?;
    let found = record_in_bucket(s3, location)?;
    if let Some(object) = &found {
        observed.bootstrap_record = Some(object.text.clone());
        observed.bootstrap_restores = object
            .restores
            .as_deref()
            .and_then(snapshot::parse_restores);
    }
    if let (true, Some(Restores::Snapshot(key))) = (late, &observed.bootstrap_restores) {
        let keys = s3.list(&location.prefix)?;
        if !snapshot::is_complete(&keys, key) {
            log::info!(
                "s3://{}/{key}, which the bootstrap record says its members restored, is no \
                 longer complete in the bucket",
                location.bucket
            );
            observed.bootstrap_restores = None;
        }
    }
    Ok(RecordSeen::S3(found.map(|v| v.etag)))
}

/// The bucket's bootstrap record (`PREFIX/etcd-discovery-bootstrap`), its text trimmed (an
/// object an operator wrote by hand may end with a newline).
fn record_in_bucket(s3: &S3, location: &s3::Location) -> Result<Option<s3::Versioned>> {
    let found = s3.get_versioned(&snapshot::record_name(&location.prefix))?;
    Ok(found.map(|v| s3::Versioned {
        text: v.text.trim().to_string(),
        ..v
    }))
}

/// Rule 8: this node's own removal goes through another healthy member. A member that
/// removes itself stops as soon as the removal is applied, often before it answers, and the
/// retry then meets a closed port; etcd 3.5 also refuses it while that member is not yet
/// connected to every peer.
fn through_another_member(etcd: Etcd, plan: &Plan, observed: &Observed) -> Etcd {
    let Some(plan::Action::Remove { id, .. }) = plan.actions.first() else {
        return etcd;
    };
    let other = observed
        .members
        .iter()
        .flatten()
        .filter(|m| m.id != *id && observed.healthy.contains(&m.id))
        .find_map(|m| m.client_urls.first());
    match other {
        Some(url) => etcd.at(url),
        None => etcd,
    }
}

/// Rule 14: the seed records its bootstrap before its etcd can start, then reads it back
/// (`plan::read_back`). In the group's tags it first reads the group again and records only
/// if the group is as its look found it (`plan::may_record`); without the permission
/// (autoscaling:CreateOrUpdateTags) the bootstrap goes on as before the record existed, said
/// loudly: losing the seed before its peers start could then make two clusters.
/// In a bucket the record also says what the bootstrap restores (`restores`: it restores
/// from nothing): the newest complete snapshot now, which every member restores then, a late
/// one too (rule 18). `Some`: what it recorded so.
fn record_bootstrap(
    full: &FullPath,
    observed: &Observed,
    initial_cluster: &str,
    restores: bool,
) -> Result<Option<Restores>> {
    let world = full.world;
    if let (RecordSeen::S3(etag), Some(location)) = (&full.record, &world.config.snapshot_url) {
        let s3 = full.bucket.s3(world.config, location)?;
        let chosen = if restores {
            let keys = s3.list(&location.prefix)?;
            Some(match snapshot::newest_complete(&keys, &location.prefix) {
                Some(key) => Restores::Snapshot(key.to_string()),
                None => Restores::Nothing,
            })
        } else {
            None
        };
        let key = snapshot::record_name(&location.prefix);
        let at = format!("s3://{}/{key}", location.bucket);
        let metadata = chosen.as_ref().map(snapshot::restores_value);
        if !s3.put_if_unchanged(&key, initial_cluster.as_bytes(), etag.as_deref(), metadata)? {
            return Err(Error::NotReady(format!(
                "another instance recorded a bootstrap at {at} since this run read it: deciding again"
            )));
        }
        log::info!(
            "recorded the bootstrap at {at}{}",
            metadata.map_or(String::new(), |m| format!(" (it restores: {m})"))
        );
        verify_record(world, initial_cluster, |_| {
            Ok(record_in_bucket(s3, location)?.map(|v| v.text))
        })?;
        return Ok(chosen);
    }
    let Some(group) = full.my_group.as_deref() else {
        log::warn!(
            "this instance is listed in none of the described groups: its bootstrap is not recorded in a group tag"
        );
        return Ok(None);
    };
    let groups = world.selection.describe(&world.autoscaling)?;
    plan::may_record(
        observed,
        groups.iter().find_map(|g| g.bootstrap_record.as_deref()),
        &counted_ids(&groups),
    )
    .map_err(Error::NotReady)?;
    match autoscaling::write_record(
        &world.autoscaling,
        group,
        autoscaling::BOOTSTRAP_TAG,
        initial_cluster,
    ) {
        Ok(()) => {
            log::info!(
                "recorded the bootstrap in group {group}'s tag etcd-discovery:initial-cluster"
            );
            verify_record(world, initial_cluster, |groups| {
                Ok(groups.iter().find_map(|g| g.bootstrap_record.clone()))
            })?;
            Ok(None)
        }
        Err(e) if e.is_access_denied() => {
            log::warn!(
                "cannot record the bootstrap in group {group}'s tags (access denied): allow \
                 autoscaling:CreateOrUpdateTags (README, IAM policy); without the record, losing \
                 this instance before its peers start could make them bootstrap a second cluster"
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Reads the group again: a node the group no longer counts (scaled in, detached, taken into
/// a warm pool during the run) writes no file, so its etcd never starts a member; a member
/// it added is left for `leave` or `reconcile` to remove.
fn still_counted(world: &World) -> Result<()> {
    let groups = world.selection.describe(&world.autoscaling)?;
    if counted_ids(&groups).contains(&world.me.instance_id) {
        return Ok(());
    }
    Err(Error::NotReady(
        "the group stopped counting this instance during the run (scaled in?): not writing the file, so etcd does not start".into(),
    ))
}

/// Reads the group again just before removing another instance's member: an instance counted
/// now that the look did not count may be that member's, back in service from a warm pool
/// that reuses instances (`plan::entered_since_look`).
fn nobody_entered(world: &World, observed: &Observed) -> Result<()> {
    let groups = world.selection.describe(&world.autoscaling)?;
    match plan::entered_since_look(observed, &counted_ids(&groups)) {
        None => Ok(()),
        Some(id) => Err(Error::NotReady(format!(
            "the group counts instance {id} since this run looked (back from a warm pool, or \
             launched): removing nothing, looking again"
        ))),
    }
}

/// Reads the group and the record (`record_now`, given the groups) again after recording;
/// `plan::read_back` says whether to go on.
fn verify_record(
    world: &World,
    initial_cluster: &str,
    record_now: impl FnOnce(&[Group]) -> Result<Option<String>>,
) -> Result<()> {
    let groups = world.selection.describe(&world.autoscaling)?;
    let record_now = record_now(&groups)?;
    plan::read_back(
        record_now.as_deref(),
        initial_cluster,
        &counted_ids(&groups),
        &world.me.instance_id,
    )
    .map_err(|why| Error::NotReady(why.into()))
}

/// Restores into the data directory, as the member the file names (`restore`), what this
/// bootstrap restores: what this seed `recorded`, else what the bucket's record of it says
/// (`plan::recorded_restore`), else the newest complete snapshot. A failure stops the run
/// before the file is written.
fn restore_snapshot(
    config: &Config,
    observed: &Observed,
    plan: &Plan,
    settings: &Settings,
    recorded: Option<&Restores>,
    location: &s3::Location,
    bucket: &Bucket,
) -> Result<()> {
    let env = plan::environment(plan, observed, None, settings)?;
    let value = |name: &str| {
        env.iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let target = restore::Target {
        data_dir: &config.data_dir,
        name: value("ETCD_NAME"),
        initial_cluster: value("ETCD_INITIAL_CLUSTER"),
        token: value("ETCD_INITIAL_CLUSTER_TOKEN"),
        peer_url: value("ETCD_INITIAL_ADVERTISE_PEER_URLS"),
    };
    let which = recorded.or_else(|| plan::recorded_restore(observed, target.initial_cluster));
    restore::restore(bucket.s3(config, location)?, location, &target, which).map(|_| ())
}

/// One jittered pause between two looks, never past `deadline`.
fn pause_until(deadline: Instant) {
    let pause = WAIT_INTERVAL.mul_f64(0.5 + jitter());
    sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
}

/// The default job: bootstrap or join, and write the environment file.
fn discover<'a>(world: &World<'a>, bucket: &Bucket<'a>) -> Result<()> {
    let config = world.config;
    let started = Instant::now();
    // The run-wide --timeout bounds the waiting too: past it every call fails at once.
    let deadline = started + config.wait_timeout.min(config.timeout);
    let election_deadline = started + ELECTION_GRACE.min(config.wait_timeout);
    let mut looks = 0;
    let (observed, etcd, (my_group, record), plan) = loop {
        let seen = match world.observe() {
            Ok(seen) => seen,
            // A peer is there but gave no usable member list (slow, reset, garbled): not
            // evidence of anything. Look again; the last error is what the operator reads.
            Err(
                e @ Error::Etcd {
                    transient: true, ..
                },
            ) if Instant::now() < deadline => {
                looks += 1;
                log::warn!("{e}; looking again");
                pause_until(deadline);
                continue;
            }
            Err(e) => return Err(e),
        };
        let (mut observed, etcd, my_group) = seen;
        let record = read_record(world, bucket, &mut observed)?;
        let why_wait = match plan::plan(&observed, &world.settings) {
            Ok(plan) if plan.mode != Mode::Wait => {
                break (observed, etcd, (my_group, record), plan)
            }
            Ok(plan) if Instant::now() < deadline => {
                format!("before deciding: {}", plan.summary)
            }
            Ok(plan) => {
                return Err(Error::NotReady(format!(
                    "{} after waiting {:?}",
                    plan.summary, config.wait_timeout
                )))
            }
            // A member that just lost its leader reports unhealthy until the election is
            // over: look again for a few seconds before calling the quorum lost.
            Err(Error::QuorumLost { healthy, voters }) if Instant::now() < election_deadline => format!(
                "for a leader: {healthy} of {voters} voting members are healthy so far (an election takes a few seconds)"
            ),
            Err(e) => return Err(e),
        };
        looks += 1;
        log::info!("waiting {why_wait}");
        pause_until(deadline);
    };
    world.tally.plan(kind(plan.mode));
    if looks > 0 {
        log::info!("decided after {looks} more look(s)");
    }
    finish(
        config,
        &world.settings,
        &observed,
        etcd.as_ref(),
        &plan,
        Some(&FullPath {
            world,
            my_group,
            record,
            bucket,
        }),
    )
}

/// What the full path hands `finish`: its edges; the group that lists this instance and
/// where this run read the record, for a bootstrap's record (rule 14); the bucket a bootstrap
/// from nothing restores from.
struct FullPath<'w, 'a> {
    world: &'w World<'a>,
    my_group: Option<String>,
    record: RecordSeen,
    bucket: &'w Bucket<'a>,
}

/// The env file while a node leaves a bootstrap that can never form (rule 20): it names no
/// member, and says why.
const LEFT_UNFORMED: &str =
    "# Written by etcd-discovery; changes are overwritten.\n# This node left \
a bootstrap that can never form (its data is in member.unformed-*); the next run writes \
this file anew.\n";

/// Carries the plan out (`--dry-run`: prints it) and writes the file. `full`: what the full
/// path saw (`FullPath`), for a bootstrap's record (rule 14), the last look before a file
/// that brings a member (rule 10) and a restore (`Plan::restore`, with `--snapshot-url`); the
/// reboot fast path has none and needs none (its plan changes nothing, and restores nothing).
fn finish(
    config: &Config,
    settings: &Settings,
    observed: &Observed,
    etcd: Option<&Etcd>,
    plan: &Plan,
    full: Option<&FullPath>,
) -> Result<()> {
    log::info!("{}", plan.summary);

    // Render what we expect before touching the cluster: a value that cannot go into the file
    // stops the run before any membership change.
    let predicted = observed
        .members
        .as_deref()
        .map(|m| plan::predicted_members(m, &plan.actions));
    let form = |env: Vec<(&'static str, String)>| {
        if config.url_variables {
            env
        } else {
            envfile::seed_variables_only(env)
        }
    };
    let predicted_text = envfile::render(&form(plan::environment(
        plan,
        observed,
        predicted.as_deref(),
        settings,
    )?))?;
    if config.dry_run {
        println!("# plan: {}", plan.summary);
        if let Some(aside) = plan.set_aside_data {
            println!(
                "# would move the member data in {} aside (member.{}-<time>)",
                config.data_dir.display(),
                aside.label()
            );
        }
        if let (true, Some(location)) = (plan.restore, &config.snapshot_url) {
            let env = plan::environment(plan, observed, None, settings)?;
            let initial = env.iter().find(|(n, _)| *n == "ETCD_INITIAL_CLUSTER");
            let what = match initial.and_then(|(_, v)| plan::recorded_restore(observed, v)) {
                Some(recorded) => format!(
                    "what the bootstrap record says its members restored ({})",
                    snapshot::restores_value(recorded)
                ),
                None => "the newest complete snapshot".into(),
            };
            println!(
                "# would restore {what} under s3://{}/{} into {}",
                location.bucket,
                location.prefix,
                config.data_dir.display()
            );
        }
        for action in &plan.actions {
            println!("# would {action:?}");
        }
        print!("{predicted_text}");
        return Ok(());
    }

    let mut recorded = None;
    if let (Some(initial_cluster), Some(full)) = (&plan.record, full) {
        recorded = record_bootstrap(full, observed, initial_cluster, plan.restore)?;
    }
    // Rule 15: a removed member's data goes aside before the join; if it cannot move (the
    // unit's ReadWritePaths), the cluster is left untouched.
    if let Some(aside) = plan.set_aside_data {
        let why = aside.why();
        if aside == plan::SetAside::Unformed {
            // Rule 20: the file stops naming the dead bootstrap before its data moves. A run
            // that stops after the move and before the new file (a failed join, a power cut)
            // then finds a node with neither, which decides afresh; with the old file it would
            // be a member whose data is gone, and wait for a person (rule 11). A stop before
            // the move leaves the data, and the next run leaves again.
            envfile::write_atomic(&config.environment_file, LEFT_UNFORMED)?;
        }
        let moved = datadir::set_aside(&config.data_dir, SystemTime::now(), aside.label())
            .map_err(|e| Error::Io {
                path: config.data_dir.display().to_string(),
                detail: format!(
                    "moving member data aside ({why}): {e} (the unit needs the data directory \
                     in ReadWritePaths=)"
                ),
                after_change: false,
            })?;
        for (from, to) in moved {
            log::info!("moved {} aside to {}: {why}", from.display(), to.display());
        }
    }
    let changed =
        matches!((etcd, plan.mode), (Some(_), Mode::Existing)) && !plan.actions.is_empty();
    // The members a join leaves, as its ETCD_INITIAL_CLUSTER names them (rule 17's record).
    let mut joined = None;
    let text = match (etcd, plan.mode) {
        (Some(etcd), Mode::Existing) if changed => {
            // The list etcd answered this node's add with, else the list as it now stands:
            // the joining node's ETCD_INITIAL_CLUSTER must match it exactly. A later
            // concurrent add takes itself back (etcd::Etcd::add), so it must not be in ours.
            // A join that removes members is on the full path, which has the world.
            let before_removal = || match full {
                Some(full) => nobody_entered(full.world, observed),
                None => Ok(()),
            };
            let members = match apply::apply(etcd, &plan.actions, &sleep, before_removal)? {
                Some(members) => members,
                None => etcd.list()?,
            };
            let env = plan::environment(plan, observed, Some(&members), settings)?;
            joined = env
                .iter()
                .find(|(key, _)| *key == "ETCD_INITIAL_CLUSTER")
                .map(|(_, value)| value.clone());
            envfile::render(&form(env))?
        }
        _ => predicted_text,
    };
    // A node scaled in during its run (Terminating:Wait) must not start a member: its plan
    // was made while the group counted it. The seed checked this with its record already.
    if let Some(full) = full.filter(|_| plan.brings_a_member(observed)) {
        if plan.record.is_none() {
            still_counted(full.world)?;
        }
    }
    // Restore on total loss: into the empty data directory, before the file that starts etcd.
    if let (true, Some(location), Some(full)) = (plan.restore, &config.snapshot_url, full) {
        let recorded = recorded.as_ref();
        restore_snapshot(
            config,
            observed,
            plan,
            settings,
            recorded,
            location,
            full.bucket,
        )?;
    }
    // A bootstrap's file keeps the data directory's fingerprint: a later boot that finds it
    // unchanged knows etcd never ran from the file, so nothing was lost (rule 11).
    // Data set aside above leaves the directory without member data, as etcd will find it.
    let fingerprint = (plan.mode == Mode::New
        && config.data_dir_named
        && (observed.local_data == LocalData::Missing || plan.set_aside_data.is_some()))
    .then(|| datadir::fingerprint(&config.data_dir))
    .flatten();
    let text = match fingerprint {
        Some(fingerprint) => envfile::with_data_fingerprint(&text, &fingerprint),
        None => text,
    };
    let written = envfile::write_atomic(&config.environment_file, &text).map_err(|e| match e {
        // The cluster now expects this node; a rerun finds the change and writes the file.
        Error::Io { path, detail, .. } if changed => Error::Io {
            path,
            detail,
            after_change: true,
        },
        e => e,
    })?;
    match written {
        envfile::Written::Replaced => log::info!("wrote {}", config.environment_file.display()),
        envfile::Written::Unchanged => {
            log::info!("{} is up to date", config.environment_file.display())
        }
    }
    if let (
        Some(members),
        Some(FullPath {
            world,
            my_group: Some(my_group),
            ..
        }),
    ) = (joined, full)
    {
        record_members(world, my_group, &members);
    }
    Ok(())
}

/// Rule 17, before a removal (`leave`, `reconcile`): the members it will leave. Nothing is
/// removed unless this is written (a throttled or failed write leaves the member for the
/// next `reconcile`, which records first too); only a group that does not allow the write at
/// all (AccessDenied) has its removals done without, as its seed bootstrapped without rule
/// 14's record.
fn record_removal(world: &World, group: &str, members: &str) -> Result<()> {
    match autoscaling::write_record(&world.autoscaling, group, autoscaling::MEMBERS_TAG, members) {
        Ok(()) => {
            log::info!(
                "recorded the members the removal leaves in group {group}'s tag {}",
                autoscaling::MEMBERS_TAG
            );
            Ok(())
        }
        Err(e) if e.is_access_denied() => {
            log::warn!(
                "cannot record the members the removal leaves in group {group}'s tags (access denied): \
                 allow autoscaling:CreateOrUpdateTags (README, IAM policy); removing without it"
            );
            Ok(())
        }
        Err(e) => {
            log::warn!(
                "could not record the members the removal leaves in group {group}'s tags: \
                 removing nothing until it is recorded"
            );
            Err(e)
        }
    }
}

/// Rule 17: a join records the members it leaves in its group's tags, so that a node that
/// hears nobody later knows a cluster runs on those instances. The join is done whatever
/// this costs: a failure only leaves the last record as it was, and is said.
fn record_members(world: &World, group: &str, members: &str) {
    match autoscaling::write_record(&world.autoscaling, group, autoscaling::MEMBERS_TAG, members) {
        Ok(()) => log::info!(
            "recorded the cluster's members in group {group}'s tag {}",
            autoscaling::MEMBERS_TAG
        ),
        Err(e) => log::warn!(
            "could not record the cluster's members in group {group}'s tags: {e} (allow \
             autoscaling:CreateOrUpdateTags, README, IAM policy)"
        ),
    }
}
