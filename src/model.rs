//! Domain types: what the tool observes about itself, its group and the cluster. No I/O, no
//! wire formats: `aws/` and `etcd.rs` translate their answers into these.

/// This instance, as the metadata service describes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub instance_id: String,
    pub private_ip: String,
    /// `meta-data/local-hostname`, e.g. `ip-10-0-1-5.eu-west-1.compute.internal`.
    pub private_dns: String,
    pub region: String,
    pub availability_zone: String,
}

/// An instance of the group(s) that counts as part of the cluster (see `counts_in_cluster`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Instance {
    pub id: String,
    /// Empty until EC2 has assigned one.
    pub private_ip: String,
    /// Empty when the VPC has no DNS hostnames.
    pub private_dns: String,
    /// EC2's `launchTime` (ISO 8601 UTC, so the text sorts by time); empty when unknown.
    /// The earliest-launched instance is the one that may bootstrap a cluster from nothing.
    pub launch_time: String,
}

/// A group as AutoScaling describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    /// In `capacity_type` units: instances, unless weights or a capacity type say otherwise.
    pub desired_capacity: u32,
    /// (instance id, lifecycle state)
    pub instances: Vec<(String, String)>,
    /// `DesiredCapacityType`: `units` (instances or weights; also when AWS leaves it out),
    /// `vcpu` or `memory-mib`.
    pub capacity_type: String,
    /// (instance id, the capacity units it counts for: its `WeightedCapacity`), for the
    /// instances AWS gave one.
    pub weights: Vec<(String, u32)>,
    /// The mixed instances policy gives its instance types weights other than 1.
    pub weighted_types: bool,
    /// The initial cluster a seed recorded in the group's tags before its etcd first started
    /// (`name=url,...`, as etcd reads it): see `plan`'s rule 14.
    pub bootstrap_record: Option<String>,
    /// The members the cluster's last join left, as that join recorded them in the group's
    /// tags (`name=url,...`): see `plan`'s rule 17.
    pub members_record: Option<String>,
    /// (instance id, its availability zone), for the instances AWS gave one: `status` shows it.
    pub zones: Vec<(String, String)>,
}

impl Group {
    /// How many instances the cluster waits for before it may bootstrap, and, for a group not
    /// sized in instances, why, in words for the log. Counted instances (see `counts_in_cluster`) are compared with the desired
    /// capacity like with like: a plain group counts instances; a group whose desired
    /// capacity is in vCPUs, MiB or weights sums the weights of its counted instances, and
    /// while that sum is short of the desired capacity, at least one more instance is to
    /// come (how many is unknown until enough weight is here). A counted instance AWS gave
    /// no weight is counted as 1.
    pub fn expected_instances(&self) -> (u32, Option<String>) {
        let counted: Vec<&str> = self
            .instances
            .iter()
            .filter(|(_, state)| counts_in_cluster(state))
            .map(|(id, _)| id.as_str())
            .collect();
        let units = matches!(self.capacity_type.as_str(), "" | "units");
        let weighted =
            !units || self.weighted_types || self.weights.iter().any(|(_, weight)| *weight != 1);
        if !weighted {
            return (self.desired_capacity, None);
        }
        let weight_of = |id: &str| {
            self.weights
                .iter()
                .find(|(i, _)| i == id)
                .map_or(1, |(_, weight)| *weight)
        };
        let present: u64 = counted.iter().map(|id| u64::from(weight_of(id))).sum();
        let unit = if units {
            "units"
        } else {
            self.capacity_type.as_str()
        };
        let count = counted.len() as u32;
        if present >= u64::from(self.desired_capacity) {
            (
                count,
                Some(format!(
                    "capacity in {unit}: its {count} counted instances weigh {present} of {} desired, all are here",
                    self.desired_capacity
                )),
            )
        } else {
            (
                count + 1,
                Some(format!(
                    "capacity in {unit}: its {count} counted instances weigh {present} of {} desired, more are to come",
                    self.desired_capacity
                )),
            )
        }
    }
}

/// Whether an instance in this AutoScaling lifecycle state belongs in the cluster.
///
/// `Pending*` and `InService` count: a pending instance is booting and about to run etcd.
/// `Terminating*`, `Terminated`, `Detaching`, `Detached` do not: their etcd is going away.
/// `Standby` (and `EnteringStandby`) count: standby takes an instance out of the load
/// balancer, not out of service, and its etcd keeps running; removing it from the cluster
/// would cost a member every time an operator patches a node. `Warmed:*` instances of a warm
/// pool are stopped or hibernated and do not count. `ReplacingRootVolume`,
/// `ReplacingRootVolume:Wait` and `RootVolumeReplaced` count: a root volume replacement keeps
/// the instance, its address and its data volume, and its etcd comes back as the same member;
/// removing it while it is down for the swap would cost the cluster a member for nothing.
pub fn counts_in_cluster(lifecycle_state: &str) -> bool {
    lifecycle_state.starts_with("Pending")
        || lifecycle_state == "InService"
        || lifecycle_state == "Standby"
        || lifecycle_state == "EnteringStandby"
        || lifecycle_state.starts_with("ReplacingRootVolume")
        || lifecycle_state == "RootVolumeReplaced"
}

/// Whether AutoScaling is taking this instance into its warm pool (IMDS
/// `meta-data/autoscaling/target-lifecycle-state` is `Warmed:Stopped`, `Warmed:Running` or
/// `Warmed:Hibernated`): its boot runs long before it is put in service, and a member added
/// now would sit unstarted in the quorum arithmetic for as long as it waits in the pool.
pub fn warmed(target_lifecycle_state: &str) -> bool {
    target_lifecycle_state.starts_with("Warmed:")
}

/// A member of the etcd cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Member {
    pub id: u64,
    /// Empty while the member was added but its etcd has not started yet.
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

impl Member {
    pub fn is_started(&self) -> bool {
        !self.name.is_empty()
    }
}

/// Which private address a node is reached at, in a dual-stack group: its IPv4 address (the
/// default) or its IPv6 one. An instance with no IPv4 address (an IPv6-only subnet) is reached
/// at its IPv6 address either way: every node sees the same data, so every node falls back
/// the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressFamily {
    Ipv4,
    Ipv6,
}

/// The address `family` picks from an instance's private IPv4 address and its IPv6 one
/// (either may be empty).
pub fn pick_address(family: AddressFamily, ipv4: &str, ipv6: &str) -> String {
    let (ipv4, ipv6) = (ipv4.trim(), ipv6.trim());
    match family {
        AddressFamily::Ipv4 if !ipv4.is_empty() => ipv4,
        AddressFamily::Ipv4 => ipv6,
        AddressFamily::Ipv6 => ipv6,
    }
    .to_string()
}

/// What this node's etcd data directory says about its membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LocalData {
    /// A `member/` folder is there: etcd will restart under its old member ID.
    Present,
    /// The directory holds no member data or does not exist: wiped, or a new volume.
    Missing,
    /// Not named, or not readable as a directory: we cannot tell, so we assume the data is
    /// intact.
    Unknown,
}

/// What the previous env file says of this instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PreviousFile {
    /// No file, or one for another instance (an AMI bake) or for a proxy.
    NotAMember,
    /// `ETCD_NAME` is this instance and the state `new`: written for a bootstrap (of this
    /// initial cluster), which may have formed with this node's etcd, or without it.
    Bootstrap {
        initial_cluster: String,
        /// `datadir::fingerprint` of the data directory when the file was written without
        /// member data: unchanged since, etcd never ran from the file.
        data_fingerprint: Option<String>,
    },
    /// `ETCD_NAME` is this instance and the state `existing` (a join or a reboot): a cluster
    /// was running when it was written.
    Member {
        /// `ETCD_INITIAL_CLUSTER`, as written.
        initial_cluster: String,
    },
}

/// What the previous env file says, read before anything else: what a reboot needs to ask
/// the cluster without AWS (see `plan::reboot_shortcut`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRun {
    /// `ETCD_NAME`: the instance the file was written for.
    pub name: String,
    /// `ETCD_PROXY=on`: written in proxy mode.
    pub proxy: bool,
    /// `ETCD_INITIAL_CLUSTER_STATE=new`: written for a bootstrap.
    pub bootstrap: bool,
    /// The peer URLs of `ETCD_INITIAL_CLUSTER` (`name=url,...`), in the file's order.
    pub peer_urls: Vec<String>,
    /// `ETCD_ENDPOINTS`: the client URLs a proxy's file names.
    pub endpoints: Vec<String>,
}

/// Everything one run has learnt before it decides.
#[derive(Debug, Clone, Hash)]
pub struct Observed {
    pub me: Identity,
    /// How many instances the groups will have: the sum of their desired capacities, in
    /// instances (see `Group::expected_instances` for groups sized in vCPUs, MiB or weights).
    pub desired_capacity: u32,
    /// Counted instances of those groups, with addresses, sorted by id.
    pub instances: Vec<Instance>,
    /// Ids of the instances the groups still list but no longer count (`Terminating:Wait`,
    /// `Detaching`): each may run a member until it is gone. Sorted.
    pub leaving: Vec<String>,
    /// The member list, when some peer answered; `None` when nobody did.
    pub members: Option<Vec<Member>>,
    /// When no client port gave a list: the member list a peer's *peer* port gave. An etcd
    /// without a leader (a bootstrap under way, a cluster that lost its quorum) serves no
    /// clients, but its peer port answers at once.
    pub peer_list: Option<Vec<Member>>,
    /// IDs of the members that have a leader (their `/health`, or their status when an alarm
    /// or a slow read makes `/health` false): what the quorum arithmetic counts.
    pub healthy: Vec<u64>,
    /// IDs of the members that are not provably down: they answered, or something at their
    /// address answered in a way that is not "nothing listens". Never removed.
    pub present: Vec<u64>,
    pub local_data: LocalData,
    /// The member that gave the list (its client port, or without a leader the peer port
    /// that listed the members) has no cluster version yet (`/version` says `not_decided`):
    /// the cluster formed moments ago. Asked only when this node's etcd would start without
    /// member data (`plan::starts_without_member_data`) and by the removals (`leave`,
    /// `reconcile`), which wait for it (rule 18).
    pub cluster_version_undecided: bool,
    /// The cluster's ID, as the answer that gave `members` or `peer_list` named it (v3: the
    /// header's `cluster_id`; v2 and peer ports: `X-Etcd-Cluster-ID`): it proves a list is
    /// still the cluster's initial one (`is_initial_cluster`, rule 18) and tells another
    /// cluster's list from a dead bootstrap's (rule 20).
    pub cluster_id: Option<u64>,
    /// What the previous env file says of this instance.
    pub previous_file: PreviousFile,
    /// The data directory is as it was when the bootstrap file was written (its fingerprint in
    /// the file, `datadir.rs`): etcd has not run from that file, so no data was lost.
    pub never_started: bool,
    /// With a bootstrap file and member data in a named data directory: the initial cluster
    /// (`name=peer-url,...`) of the bootstrap that member began in, when its log shows that no
    /// leader ever reached it (`datadir::member_log`); `None` when not read, not proven, or a
    /// leader reached it. The log names it, not the file: a run may have rewritten the file.
    pub never_led_bootstrap: Option<String>,
    /// That bootstrap's cluster ID, as etcd computed it from its members' IDs in the log
    /// (`cluster_id`): a list whose answer names another ID is another cluster's (rule 20).
    pub never_led_cluster_id: Option<u64>,
    /// How many of the instances that bootstrap's initial cluster names EC2 still has
    /// (terminated ones not counted; stopped ones, as in a warm pool, counted): asked only when
    /// the rest of rule 20's proof holds (`plan::unformed_bootstrap_instances`).
    pub bootstrap_instances_left: Option<usize>,
    /// The initial cluster of a bootstrap, as its seed recorded it before its etcd first
    /// started (in the group's tags, or with `--snapshot-url` in the bucket); it outlives the
    /// seed's instance (rule 14).
    pub bootstrap_record: Option<String>,
    /// With `--snapshot-url`: what the bootstrap that record names restored, as its seed
    /// recorded it beside the record; `None` when the record says nothing of it (a record in
    /// the tags, or one an older version wrote) or, for a late initial member, the snapshot
    /// it names is no longer in the bucket.
    pub bootstrap_restores: Option<Restores>,
    /// The members the cluster's last join left, as it recorded them in the group's tags
    /// (rule 17).
    pub members_record: Option<String>,
}

/// What a bootstrap from nothing put into its members' empty data directories, with
/// `--snapshot-url`. Every member of one bootstrap must hold the same data: one that started
/// empty, or from another snapshot, would apply the leader's log to other data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Restores {
    /// The bucket held no complete snapshot: they started empty.
    Nothing,
    /// This object of the bucket (its key).
    Snapshot(String),
}

impl Observed {
    /// What the reboot fast path saw: this instance, the members its previous file's peers
    /// listed and its data directory; no look at the group.
    pub fn without_group(
        me: Identity,
        members: Option<Vec<Member>>,
        local_data: LocalData,
        previous_file: PreviousFile,
    ) -> Observed {
        Observed {
            me,
            desired_capacity: 0,
            instances: Vec::new(),
            leaving: Vec::new(),
            members,
            peer_list: None,
            healthy: Vec::new(),
            present: Vec::new(),
            local_data,
            cluster_version_undecided: false,
            cluster_id: None,
            previous_file,
            never_started: false,
            never_led_bootstrap: None,
            never_led_cluster_id: None,
            bootstrap_instances_left: None,
            bootstrap_record: None,
            bootstrap_restores: None,
            members_record: None,
        }
    }
}

/// etcd's ID for a member of a bootstrap: the first 8 bytes of SHA-1 over its peer URLs
/// (sorted, joined) and the cluster token (`computeMemberId` in etcd's membership package).
/// A member added later has the time of its add in it too, so it never matches.
pub fn initial_member_id(peer_urls: &[String], token: &str) -> u64 {
    let mut urls = peer_urls.to_vec();
    urls.sort();
    sha1_prefix(&[urls.concat().as_bytes(), token.as_bytes()].concat())
}

/// etcd's cluster ID: the first 8 bytes of SHA-1 over its members' IDs, sorted, 8 bytes
/// big-endian each (`genID`). etcd computes it once, at the bootstrap, and keeps it.
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort();
    let bytes: Vec<u8> = ids.iter().flat_map(|id| id.to_be_bytes()).collect();
    sha1_prefix(&bytes)
}

fn sha1_prefix(bytes: &[u8]) -> u64 {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, bytes);
    let mut prefix = [0; 8];
    prefix.copy_from_slice(&digest.as_ref()[..8]);
    u64::from_be_bytes(prefix)
}

/// Whether `list` is exactly the initial cluster of a bootstrap with `token` and no member
/// has been added or removed since: every member has the ID etcd gives an initial member
/// (`initial_member_id`), and together they give the cluster's ID as a peer named it. Then an
/// etcd started `new` from this list computes the same member and cluster IDs as its peers.
pub fn is_initial_cluster(list: &[Member], token: &str, named_cluster_id: Option<u64>) -> bool {
    let ids: Vec<u64> = list.iter().map(|m| m.id).collect();
    list.iter()
        .all(|m| m.id == initial_member_id(&m.peer_urls, token))
        && named_cluster_id == Some(cluster_id(&ids))
}

/// Whether `record` (`name=peer-url,...`, rule 14's record of a bootstrap) is the initial
/// cluster of the cluster a peer named `named_cluster_id`, bootstrapped with `token`: the IDs
/// etcd gave its members (`initial_member_id`, a member's URLs together) give that ID.
pub fn is_initial_record(record: &str, token: &str, named_cluster_id: Option<u64>) -> bool {
    let mut members: Vec<(&str, Vec<String>)> = Vec::new();
    for (name, url) in record.split(',').filter_map(|e| e.split_once('=')) {
        match members.iter_mut().find(|(n, _)| *n == name) {
            Some((_, urls)) => urls.push(url.to_string()),
            None => members.push((name, vec![url.to_string()])),
        }
    }
    let ids: Vec<u64> = members
        .iter()
        .map(|(_, urls)| initial_member_id(urls, token))
        .collect();
    !ids.is_empty() && named_cluster_id == Some(cluster_id(&ids))
}

/// A list in which no member has published its client URLs: a cluster still being
/// bootstrapped (its members have never had a leader).
pub fn bootstrapping(members: &[Member]) -> bool {
    members.iter().all(|m| m.client_urls.is_empty())
}

/// The majority of `voters`: what etcd needs to commit anything.
pub fn quorum(voters: usize) -> usize {
    voters / 2 + 1
}

/// The host part of a URL (`https://10.0.0.1:2380` -> `10.0.0.1`, `http://[::1]:2380` -> `::1`).
pub fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

/// True when `host` names this instance, by IP or DNS name. Exact comparison: `10.0.2.15` is
/// not `10.0.2.150`, and DNS names compare without case.
pub fn host_is_instance(host: &str, instance: &Instance) -> bool {
    (!instance.private_ip.is_empty() && host == instance.private_ip)
        || (!instance.private_dns.is_empty() && host.eq_ignore_ascii_case(&instance.private_dns))
}

/// This instance as EC2 names it, so that one file names it and its peers alike (peers are
/// named from EC2). With a custom DHCP option set's domain name, IMDS `local-hostname` carries
/// that domain (several, space-separated, when the option names several) while EC2's
/// `privateDnsName` does not; in a VPC that gives no DNS hostnames, EC2 names nobody while
/// IMDS may still: this node then goes by its IP, as its peers do. Before EC2 knows this
/// instance's address (right after a launch), a peer whose address EC2 gives without a name
/// tells the same; IMDS's name stays only when nothing tells.
pub fn name_me_as_ec2_does(me: &Identity, described: &[Instance]) -> Identity {
    let mut me = me.clone();
    let addressed = |i: &&Instance| !i.private_ip.is_empty();
    let from_ec2 = match described
        .iter()
        .filter(addressed)
        .find(|i| i.id == me.instance_id)
    {
        Some(listed) => Some(listed.private_dns.as_str()),
        None => described
            .iter()
            .filter(addressed)
            .any(|i| i.private_dns.is_empty())
            .then_some(""),
    };
    if let Some(name) = from_ec2 {
        if !name.eq_ignore_ascii_case(&me.private_dns) {
            me.private_dns = name.to_string();
        }
    }
    me
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_node_is_named_as_ec2_names_it() {
        // Regression: with a custom DHCP domain, IMDS's local-hostname named this node while
        // EC2's privateDnsName named its peers: one file mixed the two.
        let me = Identity {
            instance_id: "i-1".into(),
            private_ip: "10.0.0.1".into(),
            private_dns: "ip-10-0-0-1.corp.example.com".into(),
            region: "eu-west-1".into(),
            availability_zone: "eu-west-1a".into(),
        };
        let ec2 = |id: &str, ip: &str, dns: &str| Instance {
            id: id.into(),
            private_ip: ip.into(),
            private_dns: dns.into(),
            launch_time: String::new(),
        };
        let internal = "ip-10-0-0-1.eu-west-1.compute.internal";
        let named = name_me_as_ec2_does(
            &me,
            &[ec2("i-2", "10.0.0.2", ""), ec2("i-1", "10.0.0.1", internal)],
        );
        assert_eq!(named.private_dns, internal);
        // Regression (the simulation, a VPC without DNS hostnames): EC2 names nobody, so this
        // node goes by its IP like its peers, not by IMDS's name.
        let unnamed = name_me_as_ec2_does(&me, &[ec2("i-1", "10.0.0.1", "")]);
        assert_eq!(unnamed.private_dns, "");
        // EC2 does not know this instance's address yet, but gives a peer's without a name:
        // no names in this VPC.
        let late = name_me_as_ec2_does(&me, &[ec2("i-1", "", ""), ec2("i-2", "10.0.0.2", "")]);
        assert_eq!(late.private_dns, "");
        // Nothing tells (EC2 knows no address, or names the peers): IMDS's name stays.
        assert_eq!(name_me_as_ec2_does(&me, &[ec2("i-1", "", "")]), me);
        assert_eq!(
            name_me_as_ec2_does(&me, &[ec2("i-2", "10.0.0.2", internal)]),
            me
        );
        assert_eq!(name_me_as_ec2_does(&me, &[]), me);
    }

    #[test]
    fn url_host_cases() {
        let cases = [
            ("https://10.0.0.1:2380", "10.0.0.1"),
            (
                "http://ip-10-0-0-1.ec2.internal:2380",
                "ip-10-0-0-1.ec2.internal",
            ),
            ("http://[fd00::1]:2380", "fd00::1"),
            ("http://10.0.0.1", "10.0.0.1"),
            ("http://10.0.0.1:2380/", "10.0.0.1"),
            ("10.0.0.1:2380", "10.0.0.1"),
        ];
        for (url, host) in cases {
            assert_eq!(url_host(url), host, "failed testcase: {url}");
        }
    }

    #[test]
    fn host_match_is_exact_not_substring() {
        let i = Instance {
            id: "i-1".into(),
            private_ip: "10.0.2.15".into(),
            private_dns: "ip-10-0-2-15.ec2.internal".into(),
            launch_time: String::new(),
        };
        assert!(host_is_instance("10.0.2.15", &i));
        assert!(!host_is_instance("10.0.2.150", &i));
        assert!(!host_is_instance("10.0.2.1", &i));
        assert!(host_is_instance("IP-10-0-2-15.EC2.INTERNAL", &i));
        assert!(!host_is_instance(
            "",
            &Instance {
                id: "i".into(),
                private_ip: String::new(),
                private_dns: String::new(),
                launch_time: String::new(),
            }
        ));
    }

    #[test]
    fn quorum_sizes() {
        let cases = [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (7, 4)];
        for (voters, q) in cases {
            assert_eq!(quorum(voters), q, "failed testcase: {voters} voters");
        }
    }

    fn group(capacity_type: &str, desired: u32, instances: &[(&str, &str, u32)]) -> Group {
        Group {
            name: "g".into(),
            desired_capacity: desired,
            instances: instances
                .iter()
                .map(|(id, state, _)| (id.to_string(), state.to_string()))
                .collect(),
            capacity_type: capacity_type.into(),
            weights: instances
                .iter()
                .map(|(id, _, weight)| (id.to_string(), *weight))
                .collect(),
            weighted_types: false,
            bootstrap_record: None,
            members_record: None,
            zones: Vec::new(),
        }
    }

    #[test]
    fn expected_instances_compare_like_with_like() {
        // Regression: a group sized in vCPUs (desired 12) never "reached" 12 instances, so
        // the cluster was never bootstrapped.
        let cases: [(Group, u32, &str); 6] = [
            (group("", 3, &[("i-1", "InService", 1)]), 3, ""),
            (
                group(
                    "vcpu",
                    12,
                    &[
                        ("i-1", "InService", 4),
                        ("i-2", "Pending", 4),
                        ("i-3", "InService", 4),
                    ],
                ),
                3,
                "all are here",
            ),
            (
                group(
                    "vcpu",
                    12,
                    &[("i-1", "InService", 4), ("i-2", "Terminating", 4)],
                ),
                2,
                "more are to come",
            ),
            (
                group(
                    "memory-mib",
                    16384,
                    &[("i-1", "InService", 8192), ("i-2", "InService", 16384)],
                ),
                2,
                "weigh 24576 of 16384",
            ),
            (
                group(
                    "units",
                    6,
                    &[("i-1", "InService", 2), ("i-2", "InService", 4)],
                ),
                2,
                "capacity in units",
            ),
            (group("vcpu", 0, &[]), 0, "all are here"),
        ];
        for (g, expected, why) in cases {
            let (n, text) = g.expected_instances();
            let text = text.unwrap_or_default();
            assert_eq!(n, expected, "failed testcase: {g:?}: {text}");
            assert!(text.contains(why), "failed testcase: {g:?}: {text}");
            assert_eq!(why.is_empty(), text.is_empty(), "failed testcase: {g:?}");
        }
    }

    #[test]
    fn lifecycle_states() {
        for s in [
            "Pending",
            "Pending:Wait",
            "Pending:Proceed",
            "InService",
            "Standby",
            "EnteringStandby",
            "ReplacingRootVolume",
            "ReplacingRootVolume:Wait",
            "RootVolumeReplaced",
        ] {
            assert!(counts_in_cluster(s), "{s}");
        }
        for s in [
            "Terminating",
            "Terminating:Wait",
            "Terminating:Proceed",
            "Terminated",
            "Detaching",
            "Detached",
            "Warmed:Stopped",
            "Quarantined",
        ] {
            assert!(!counts_in_cluster(s), "{s}");
        }
    }

    #[test]
    fn address_families() {
        use AddressFamily::{Ipv4, Ipv6};
        let cases = [
            (Ipv4, "10.0.1.5", "2600:1f18::5", "10.0.1.5"),
            (Ipv6, "10.0.1.5", "2600:1f18::5", "2600:1f18::5"),
            (Ipv4, "", "2600:1f18::5", "2600:1f18::5"),
            (Ipv6, "10.0.1.5", "", ""),
            (Ipv4, "", "", ""),
        ];
        for (family, v4, v6, want) in cases {
            assert_eq!(
                pick_address(family, v4, v6),
                want,
                "failed testcase: {family:?} {v4} {v6}"
            );
        }
    }

    #[test]
    fn warm_pool_targets() {
        // The values of meta-data/autoscaling/target-lifecycle-state: EC2 User Guide,
        // "Instance metadata categories", and the Auto Scaling User Guide, "Warm pool
        // instance lifecycle".
        for (state, warm) in [
            ("Warmed:Stopped", true),
            ("Warmed:Running", true),
            ("Warmed:Hibernated", true),
            ("Warmed:Terminated", true),
            ("InService", false),
            ("Terminated", false),
            ("Detached", false),
            ("Standby", false),
        ] {
            assert_eq!(warmed(state), warm, "failed testcase: {state}");
        }
    }
}
