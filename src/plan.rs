//! The decision, as a pure function of what was observed: bootstrap a new cluster, join the
//! existing one (removing members whose instances are gone), change nothing (reboot), or write
//! proxy settings. No I/O here: `apply.rs` carries a plan out, `envfile.rs` writes it down.

use crate::cli::{AddressKind, Scheme};
use crate::error::{Error, Result};
use crate::model::{host_is_instance, url_host, Instance, Member, Observed};

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
}

/// A membership change, in the order it must happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Remove a member; `why` is said in the log.
    Remove { id: u64, name: String, why: String },
    /// Add this instance with its peer URL.
    Add { peer_url: String },
}

/// What kind of configuration etcd gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bootstrap a new cluster from the group.
    New,
    /// Join (or rejoin) the cluster that answered.
    Existing,
    /// A consumer node's proxy/gateway settings.
    Proxy,
}

/// The decision and the reasons for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub mode: Mode,
    pub actions: Vec<Action>,
    /// One line for the log: why this plan.
    pub summary: String,
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
    Instance {
        id: observed.me.instance_id.clone(),
        private_ip: observed.me.private_ip.clone(),
        private_dns: observed.me.private_dns.clone(),
    }
}

/// True when any of the member's peer URLs points at this instance.
fn member_is_instance(member: &Member, instance: &Instance) -> bool {
    member
        .peer_urls
        .iter()
        .any(|u| host_is_instance(url_host(u), instance))
}

/// Decides. Pure: the same observation always gives the same plan.
pub fn plan(observed: &Observed, settings: &Settings) -> Result<Plan> {
    let me = me_as_instance(observed);
    if settings.proxy_mode {
        let summary = match &observed.members {
            Some(m) => format!("proxy for the {} members of the running cluster", m.len()),
            None => format!(
                "proxy for the {} instances of the masters' group (no member answered)",
                observed.instances.len()
            ),
        };
        return Ok(Plan {
            mode: Mode::Proxy,
            actions: vec![],
            summary,
        });
    }
    let Some(members) = &observed.members else {
        return plan_new(observed, settings, &me);
    };
    if let Some(member) = members.iter().find(|m| m.name == me.id) {
        return Ok(Plan {
            mode: Mode::Existing,
            actions: vec![],
            summary: format!(
                "already member {:x} of a cluster of {}: nothing to change (reboot)",
                member.id,
                members.len()
            ),
        });
    }

    let mut actions = Vec::new();
    let mut reuse = false;
    for member in members {
        if member_is_instance(member, &me) {
            if member.is_started() {
                // A started member on our address under another name: the instance that had
                // this IP before us. Its data is gone with it.
                actions.push(Action::Remove {
                    id: member.id,
                    name: member.name.clone(),
                    why: format!(
                        "it holds this instance's address but is named {}",
                        member.name
                    ),
                });
            } else {
                // Added by an earlier run whose etcd never started: reuse the entry.
                reuse = true;
            }
            continue;
        }
        if !observed
            .instances
            .iter()
            .any(|i| member_is_instance(member, i))
        {
            let name = if member.name.is_empty() {
                "(unstarted)".to_string()
            } else {
                member.name.clone()
            };
            actions.push(Action::Remove {
                id: member.id,
                name,
                why: format!(
                    "its peer URLs {:?} match no instance of the group",
                    member.peer_urls
                ),
            });
        }
    }
    if !reuse {
        actions.push(Action::Add {
            peer_url: settings.peer_url(&me)?,
        });
    }
    let removals = actions
        .iter()
        .filter(|a| matches!(a, Action::Remove { .. }))
        .count();
    let summary = format!(
        "joining the existing cluster of {} members: {} to remove, {}",
        members.len(),
        removals,
        if reuse {
            "reusing the entry an earlier run added"
        } else {
            "adding this instance"
        }
    );
    Ok(Plan {
        mode: Mode::Existing,
        actions,
        summary,
    })
}

fn plan_new(observed: &Observed, settings: &Settings, me: &Instance) -> Result<Plan> {
    if !observed.instances.iter().any(|i| i.id == me.id) {
        return Err(Error::NotReady(format!(
            "this instance ({}) is not yet listed among the group's instances",
            me.id
        )));
    }
    for instance in &observed.instances {
        settings.peer_url(instance)?;
    }
    Ok(Plan {
        mode: Mode::New,
        actions: vec![],
        summary: format!(
            "no member answered: bootstrapping a new cluster of the group's {} instances",
            observed.instances.len()
        ),
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
        if let Action::Add { peer_url } = action {
            after.push(Member {
                id: 0,
                name: String::new(),
                peer_urls: vec![peer_url.clone()],
                client_urls: vec![],
                is_learner: false,
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
    let me = me_as_instance(observed);
    let mut env = vec![("ETCD_NAME", me.id.clone())];
    match plan.mode {
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
        Mode::New => {
            env.push(("ETCD_INITIAL_CLUSTER_STATE", "new".into()));
            env.push((
                "ETCD_INITIAL_CLUSTER",
                initial_cluster_from_instances(&observed.instances, settings)?,
            ));
            env.push(("ETCD_INITIAL_CLUSTER_TOKEN", settings.cluster_token.clone()));
        }
        Mode::Existing => {
            env.push(("ETCD_INITIAL_CLUSTER_STATE", "existing".into()));
            env.push((
                "ETCD_INITIAL_CLUSTER",
                initial_cluster_from_members(members.unwrap_or_default(), &observed.instances, &me),
            ));
        }
    }
    let ip = &me.private_ip;
    env.push(("ETCD_INITIAL_ADVERTISE_PEER_URLS", settings.peer_url(&me)?));
    env.push(("ETCD_ADVERTISE_CLIENT_URLS", settings.client_url(&me)?));
    // Listen URLs must be IPs: etcd refuses names there.
    env.push((
        "ETCD_LISTEN_PEER_URLS",
        url(settings.peer_scheme, ip, settings.peer_port),
    ));
    env.push((
        "ETCD_LISTEN_CLIENT_URLS",
        url(settings.client_scheme, ip, settings.client_port),
    ));
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
        }
    }

    fn instance(n: u8) -> Instance {
        Instance {
            id: format!("i-{n}"),
            private_ip: format!("10.0.2.{n}"),
            private_dns: format!("ip-10-0-2-{n}.ec2.internal"),
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

    fn observed(me: u8, instances: &[u8], members: Option<Vec<Member>>) -> Observed {
        let i = instance(me);
        Observed {
            me: Identity {
                instance_id: i.id,
                private_ip: i.private_ip,
                private_dns: i.private_dns,
                region: "eu-west-1".into(),
                availability_zone: "eu-west-1a".into(),
            },
            instances: instances.iter().map(|n| instance(*n)).collect(),
            members,
        }
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
                observed(
                    1,
                    &[1, 2, 3],
                    Some(vec![
                        member(11, "i-1", "10.0.2.1"),
                        member(12, "i-2", "10.0.2.2"),
                        member(13, "i-3", "10.0.2.3"),
                    ]),
                ),
                Mode::Existing,
                vec![],
                vec![],
            ),
            (
                "one terminated member replaced",
                observed(
                    4,
                    &[1, 2, 4],
                    Some(vec![
                        member(11, "i-1", "10.0.2.1"),
                        member(12, "i-2", "10.0.2.2"),
                        member(13, "i-3", "10.0.2.3"),
                    ]),
                ),
                Mode::Existing,
                vec![remove(13)],
                vec![add(4)],
            ),
            (
                "two terminated members",
                observed(
                    5,
                    &[1, 4, 5],
                    Some(vec![
                        member(11, "i-1", "10.0.2.1"),
                        member(12, "i-2", "10.0.2.2"),
                        member(13, "i-3", "10.0.2.3"),
                        member(14, "i-4", "10.0.2.4"),
                    ]),
                ),
                Mode::Existing,
                vec![remove(12), remove(13)],
                vec![add(5)],
            ),
            (
                "a member with an unknown address is stale",
                observed(
                    2,
                    &[1, 2],
                    Some(vec![
                        member(11, "i-1", "10.0.2.1"),
                        member(19, "old", "192.168.9.9"),
                    ]),
                ),
                Mode::Existing,
                vec![remove(19)],
                vec![add(2)],
            ),
            (
                "substring addresses do not match: 10.0.2.1 is not 10.0.2.15",
                observed(
                    2,
                    &[1, 2],
                    Some(vec![
                        member(11, "i-1", "10.0.2.1"),
                        member(15, "i-15", "10.0.2.15"),
                    ]),
                ),
                Mode::Existing,
                vec![remove(15)],
                vec![add(2)],
            ),
            (
                "this node present by URL, unstarted: reuse the entry",
                observed(
                    2,
                    &[1, 2],
                    Some(vec![
                        member(11, "i-1", "10.0.2.1"),
                        member(12, "", "10.0.2.2"),
                    ]),
                ),
                Mode::Existing,
                vec![],
                vec![],
            ),
            (
                "this node's address held by another name: remove it, then add",
                observed(
                    2,
                    &[1, 2],
                    Some(vec![
                        member(11, "i-1", "10.0.2.1"),
                        member(12, "i-old", "10.0.2.2"),
                    ]),
                ),
                Mode::Existing,
                vec![remove(12)],
                vec![add(2)],
            ),
            (
                "another instance's unstarted entry is kept",
                observed(
                    3,
                    &[1, 2, 3],
                    Some(vec![
                        member(11, "i-1", "10.0.2.1"),
                        member(12, "", "10.0.2.2"),
                    ]),
                ),
                Mode::Existing,
                vec![],
                vec![add(3)],
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
        assert!(matches!(plan(&o, &settings()), Err(Error::NotReady(_))));
        let o = observed(3, &[1, 2], None);
        assert!(matches!(plan(&o, &settings()), Err(Error::NotReady(_))));
    }

    #[test]
    fn new_cluster_environment() {
        let o = observed(2, &[3, 1, 2], None);
        let s = settings();
        let p = plan(&o, &s).unwrap();
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
    fn hostnames_advertise_names_but_listen_on_ips() {
        let o = observed(2, &[1, 2], None);
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
        ];
        let o = observed(4, &[1, 2, 4], Some(members.clone()));
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
            "i-1=http://10.0.2.1:2380,i-2=http://10.0.2.2:2380,i-4=http://10.0.2.4:2380"
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
        let t = cluster_token("Name=etcd masters,env=prod\n");
        assert!(
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "{t}"
        );
    }
}
