//! `status`: the group and the cluster side by side, for the operator paged at night: which
//! instances are members, which members are stale or down, and what `discover` would do on
//! this instance now. Pure: `run` gathers the facts, this module joins them and renders a
//! table or JSON. No I/O.

#[cfg(test)]
use serde::Serialize;

use crate::error::{Error, Result};
use crate::etcd::MemberStatus;
use crate::model::{
    counts_in_cluster, host_is_instance, url_host, Group, Identity, Instance, Member,
};

/// How `status` prints (`--output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
}

/// The version of the JSON shape: a script can check it; it changes only when a field's
/// meaning does (new fields may be added).
const JSON_VERSION: u32 = 1;

/// What `status` says of `discover` when it runs outside the group.
pub const OUTSIDE: &str =
    "not run on an instance (no instance metadata): nothing to say about this machine";

/// Who runs `status` when no metadata service answered and the group is named: nobody of
/// the group. The region must then be given.
pub fn outsider(region: Option<&str>) -> Result<Identity> {
    let region = region.ok_or_else(|| {
        Error::Usage(
            "no instance metadata here: outside an instance, give the region (--region or \
             AWS_REGION) with the group (--scaling-group-name or --scaling-group-tag)"
                .into(),
        )
    })?;
    Ok(Identity {
        instance_id: String::new(),
        private_ip: String::new(),
        private_dns: String::new(),
        region: region.to_string(),
        availability_zone: String::new(),
    })
}

/// An instance of the group(s), whatever its lifecycle state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(Serialize))]
pub struct InstanceRow {
    pub id: String,
    /// Empty when AutoScaling gave none.
    pub zone: String,
    pub lifecycle_state: String,
    /// Its private IP; empty for an instance the group does not count (EC2 is not asked about
    /// those) or one EC2 has not given an address yet.
    pub address: String,
    /// Whether the group counts it in the cluster (`Pending*`, `InService`, `Standby`...).
    pub counted: bool,
}

/// A member of the cluster, with what it says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(Serialize))]
pub struct MemberRow {
    /// In hex, as `etcdctl member list` prints it.
    pub id: String,
    /// Empty until its etcd has started.
    pub name: String,
    pub peer_urls: Vec<String>,
    pub started: bool,
    pub learner: bool,
    /// It has a leader (its `/health`, or its status when an alarm makes `/health` false).
    pub healthy: bool,
    pub leader: bool,
    /// From its `/v3/maintenance/status`; `null` when it gave none.
    pub db_size_bytes: Option<u64>,
    pub raft_index: Option<u64>,
}

/// One line of the table: an instance with its member, an instance without one, or a member
/// without an instance. `attention` says what is wrong, when something is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(Serialize))]
pub struct Row {
    pub instance: Option<InstanceRow>,
    pub member: Option<MemberRow>,
    pub attention: Option<String>,
}

/// Everything `status` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(Serialize))]
pub struct Report {
    pub version: u32,
    pub groups: Vec<String>,
    /// The instance `status` ran on; `null` outside the group (no instance metadata).
    pub this_instance: Option<String>,
    /// False when no member answered: the cluster could not be seen (exit 75).
    pub etcd_answered: bool,
    pub rows: Vec<Row>,
    /// What `discover` would do on this instance now, and why (its plan's summary, or the
    /// error that would stop it).
    pub discover: String,
    /// How many rows need attention.
    pub attention: usize,
}

/// What `run` saw, as `status` needs it.
pub struct Seen<'a> {
    pub groups: &'a [Group],
    /// The counted instances, with addresses (`Observed::instances`).
    pub instances: &'a [Instance],
    /// `None` when no member answered.
    pub members: Option<&'a [Member]>,
    pub healthy: &'a [u64],
    pub statuses: &'a [(u64, Option<MemberStatus>)],
    pub this_instance: Option<&'a str>,
    pub discover: String,
}

fn member_row(member: &Member, seen: &Seen) -> MemberRow {
    let status = seen
        .statuses
        .iter()
        .find(|(id, _)| *id == member.id)
        .and_then(|(_, s)| *s);
    // The leader as any member that has one knows it: they all agree.
    let leader = seen
        .statuses
        .iter()
        .filter_map(|(_, s)| s.map(|s| s.leader))
        .find(|l| *l != 0);
    MemberRow {
        id: format!("{:x}", member.id),
        name: member.name.clone(),
        peer_urls: member.peer_urls.clone(),
        started: member.is_started(),
        learner: member.is_learner,
        healthy: seen.healthy.contains(&member.id),
        leader: leader == Some(member.id),
        db_size_bytes: status.map(|s| s.db_size),
        raft_index: status.map(|s| s.raft_index),
    }
}

/// Whether `member` is `instance`'s: by name (the tool names members after their instance),
/// or by a peer URL at the instance's address (a member whose etcd has not started).
fn belongs(member: &Member, id: &str, instance: Option<&Instance>) -> bool {
    member.name == id
        || instance.is_some_and(|i| {
            member
                .peer_urls
                .iter()
                .any(|u| host_is_instance(url_host(u), i))
        })
}

/// How many members match no counted instance by name or address: stale, for the metrics.
pub fn stale(instances: &[Instance], members: &[Member]) -> usize {
    members
        .iter()
        .filter(|m| !instances.iter().any(|i| belongs(m, &i.id, Some(i))))
        .count()
}

/// Joins the group and the cluster: one row per instance (sorted by id), then one per member
/// that belongs to none.
pub fn report(seen: &Seen) -> Report {
    let mut listed: Vec<(String, String, String)> = seen
        .groups
        .iter()
        .flat_map(|g| {
            g.instances.iter().map(|(id, state)| {
                let zone = g
                    .zones
                    .iter()
                    .find(|(i, _)| i == id)
                    .map(|(_, z)| z.clone())
                    .unwrap_or_default();
                (id.clone(), state.clone(), zone)
            })
        })
        .collect();
    listed.sort();
    listed.dedup_by(|a, b| a.0 == b.0);
    let members = seen.members.unwrap_or_default();
    let mut taken = vec![false; members.len()];
    let mut rows = Vec::new();
    for (id, state, zone) in listed {
        let instance = seen.instances.iter().find(|i| i.id == id);
        let counted = counts_in_cluster(&state);
        // By name first: an old member at a reused address must not hide the instance's own.
        let found = (0..members.len())
            .find(|&k| !taken[k] && members[k].name == id)
            .or_else(|| {
                (0..members.len()).find(|&k| !taken[k] && belongs(&members[k], &id, instance))
            });
        if let Some(k) = found {
            taken[k] = true;
        }
        let member = found.map(|k| member_row(&members[k], seen));
        let attention = match (&member, counted) {
            _ if seen.members.is_none() => None,
            (Some(m), true) if !m.started => {
                Some("member added, but its etcd has not started".to_string())
            }
            (Some(m), true) if !m.healthy => Some("member is down or has no leader".to_string()),
            (Some(_), true) => None,
            (Some(_), false) => Some(format!(
                "the instance is {state}: its member stays until `leave` or `reconcile` removes it"
            )),
            (None, true) => Some("no member: this instance is not in the cluster".to_string()),
            (None, false) => None,
        };
        rows.push(Row {
            instance: Some(InstanceRow {
                address: instance.map(|i| i.private_ip.clone()).unwrap_or_default(),
                id,
                zone,
                lifecycle_state: state,
                counted,
            }),
            member,
            attention,
        });
    }
    let mut strays: Vec<&Member> = members
        .iter()
        .zip(&taken)
        .filter(|(_, t)| !**t)
        .map(|(m, _)| m)
        .collect();
    strays.sort_by_key(|m| m.id);
    for member in strays {
        let twin = seen
            .instances
            .iter()
            .find(|i| belongs(member, &i.id, Some(i)));
        let attention = match twin {
            Some(i) => format!("a second member for instance {}", i.id),
            None => "stale: no instance of the group has its name or address".to_string(),
        };
        rows.push(Row {
            instance: None,
            member: Some(member_row(member, seen)),
            attention: Some(attention),
        });
    }
    let mut groups: Vec<String> = seen.groups.iter().map(|g| g.name.clone()).collect();
    groups.sort();
    Report {
        version: JSON_VERSION,
        groups,
        this_instance: seen.this_instance.map(str::to_string),
        etcd_answered: seen.members.is_some(),
        attention: rows.iter().filter(|r| r.attention.is_some()).count(),
        rows,
        discover: seen.discover.clone(),
    }
}

fn yes(on: bool) -> &'static str {
    if on {
        "yes"
    } else {
        "no"
    }
}

/// The table an operator reads, then what `discover` would do, then the verdict.
pub fn table(report: &Report) -> String {
    let header = [
        "INSTANCE",
        "ZONE",
        "STATE",
        "ADDRESS",
        "MEMBER",
        "NAME",
        "STARTED",
        "LEARNER",
        "HEALTHY",
        "LEADER",
        "DB SIZE",
        "RAFT INDEX",
        "ATTENTION",
    ];
    let dash = || "-".to_string();
    let or_dash = |s: &str| if s.is_empty() { dash() } else { s.to_string() };
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for row in &report.rows {
        let mut cells = match &row.instance {
            Some(i) => vec![
                i.id.clone(),
                or_dash(&i.zone),
                i.lifecycle_state.clone(),
                or_dash(&i.address),
            ],
            None => vec![dash(), dash(), dash(), dash()],
        };
        match &row.member {
            Some(m) => cells.extend([
                m.id.clone(),
                or_dash(&m.name),
                yes(m.started).into(),
                yes(m.learner).into(),
                yes(m.healthy).into(),
                yes(m.leader).into(),
                m.db_size_bytes.map_or_else(dash, |n| n.to_string()),
                m.raft_index.map_or_else(dash, |n| n.to_string()),
            ]),
            None => cells.extend((0..8).map(|_| dash())),
        }
        cells.push(row.attention.clone().unwrap_or_default());
        lines.push(cells);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in &lines {
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            text.push_str(cell);
            if c + 1 < line.len() {
                text.extend(std::iter::repeat_n(
                    ' ',
                    widths[c] - cell.chars().count() + 2,
                ));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    if !report.etcd_answered {
        out.push_str("etcd: no member of the cluster answered at the instances' client URLs\n");
    }
    match &report.this_instance {
        Some(id) => out.push_str(&format!("discover on {id} now: {}\n", report.discover)),
        None => out.push_str(&format!("discover: {}\n", report.discover)),
    }
    out.push_str(&verdict(report));
    out.push('\n');
    out
}

/// One line: all is well, or how much needs attention.
fn verdict(report: &Report) -> String {
    match (report.etcd_answered, report.attention) {
        (false, _) => "could not see the cluster: no member answered".to_string(),
        (true, 0) => {
            let instances = report
                .rows
                .iter()
                .filter(|r| r.instance.as_ref().is_some_and(|i| i.counted))
                .count();
            format!("all {instances} instances are healthy members; no member is stale")
        }
        (true, 1) => "1 row needs attention (see ATTENTION)".to_string(),
        (true, n) => format!("{n} rows need attention (see ATTENTION)"),
    }
}

/// The report as one JSON document (the shape is in the README), indented by two spaces.
/// Written field by field rather than by serde's derive and serde_json's pretty printer:
/// the same text (a test holds the two to the letter) for 1,456 bytes less code in the
/// static x86_64 binary.
pub fn json(report: &Report) -> String {
    let mut w = Writer::default();
    w.open('{');
    w.number("version", Some(report.version.into()));
    w.strings("groups", &report.groups);
    w.text("this_instance", report.this_instance.as_deref());
    w.flag("etcd_answered", report.etcd_answered);
    w.key("rows");
    w.open('[');
    for row in &report.rows {
        w.next(None);
        w.open('{');
        match &row.instance {
            Some(i) => {
                w.key("instance");
                w.open('{');
                w.text("id", Some(&i.id));
                w.text("zone", Some(&i.zone));
                w.text("lifecycle_state", Some(&i.lifecycle_state));
                w.text("address", Some(&i.address));
                w.flag("counted", i.counted);
                w.close('}');
            }
            None => w.text("instance", None),
        }
        match &row.member {
            Some(m) => {
                w.key("member");
                w.open('{');
                w.text("id", Some(&m.id));
                w.text("name", Some(&m.name));
                w.strings("peer_urls", &m.peer_urls);
                w.flag("started", m.started);
                w.flag("learner", m.learner);
                w.flag("healthy", m.healthy);
                w.flag("leader", m.leader);
                w.number("db_size_bytes", m.db_size_bytes);
                w.number("raft_index", m.raft_index);
                w.close('}');
            }
            None => w.text("member", None),
        }
        w.text("attention", row.attention.as_deref());
        w.close('}');
    }
    w.close(']');
    w.text("discover", Some(&report.discover));
    w.number("attention", Some(report.attention as u64));
    w.close('}');
    w.out.push('\n');
    w.out
}

/// Writes JSON as it goes: `depth` open brackets, `empty` while the innermost has nothing.
#[derive(Default)]
struct Writer {
    out: String,
    depth: usize,
    empty: bool,
}

impl Writer {
    /// Starts the next item of the innermost bracket on a line of its own, after its key.
    fn next(&mut self, key: Option<&str>) {
        if !self.empty {
            self.out.push(',');
        }
        self.out.push('\n');
        self.out.extend(std::iter::repeat_n(' ', 2 * self.depth));
        if let Some(key) = key {
            quote(key, &mut self.out);
            self.out.push_str(": ");
        }
        self.empty = false;
    }

    fn key(&mut self, key: &str) {
        self.next(Some(key));
    }

    fn open(&mut self, bracket: char) {
        self.out.push(bracket);
        self.depth += 1;
        self.empty = true;
    }

    fn close(&mut self, bracket: char) {
        self.depth -= 1;
        if !self.empty {
            self.out.push('\n');
            self.out.extend(std::iter::repeat_n(' ', 2 * self.depth));
        }
        self.out.push(bracket);
        self.empty = false;
    }

    fn text(&mut self, key: &str, value: Option<&str>) {
        self.next(Some(key));
        match value {
            Some(s) => quote(s, &mut self.out),
            None => self.out.push_str("null"),
        }
    }

    fn number(&mut self, key: &str, value: Option<u64>) {
        self.next(Some(key));
        match value {
            Some(n) => self.out.push_str(&n.to_string()),
            None => self.out.push_str("null"),
        }
    }

    fn strings(&mut self, key: &str, values: &[String]) {
        self.key(key);
        self.open('[');
        for value in values {
            self.next(None);
            quote(value, &mut self.out);
        }
        self.close(']');
    }

    fn flag(&mut self, key: &str, value: bool) {
        self.next(Some(key));
        self.out.push_str(if value { "true" } else { "false" });
    }
}

/// A JSON string, escaped by serde_json (its string writer is in the binary anyway).
fn quote(s: &str, out: &mut String) {
    // Serialising a string cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

/// The verdict as the exit code sees it: `None` when all is well.
pub fn problem(report: &Report) -> Option<String> {
    (report.etcd_answered && report.attention > 0).then(|| verdict(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table cases' instance k: `i-k` at 10.0.0.k.
    fn id(k: u8) -> String {
        format!("i-{k}")
    }

    fn ip(k: u8) -> String {
        format!("10.0.0.{k}")
    }

    fn instance(id: &str, ip: &str) -> Instance {
        Instance {
            id: id.to_string(),
            private_ip: ip.to_string(),
            private_dns: String::new(),
            launch_time: String::new(),
        }
    }

    /// A member at `ip`; without a name it has not started, and has no client URL.
    fn member(id: u64, name: &str, ip: &str) -> Member {
        Member {
            id,
            name: name.to_string(),
            peer_urls: vec![format!("http://{ip}:2380")],
            client_urls: if name.is_empty() {
                vec![]
            } else {
                vec![format!("http://{ip}:2379")]
            },
            is_learner: false,
        }
    }

    /// The table cases' member of instance k, named `name`.
    fn member_of(k: u8, name: &str) -> Member {
        member(u64::from(k) * 0x1111, name, &ip(k))
    }

    /// Group `etcd` of these instances: (id, lifecycle state, zone).
    fn group(instances: &[(String, &str, &str)]) -> Group {
        Group {
            name: "etcd".into(),
            desired_capacity: instances.len() as u32,
            instances: instances
                .iter()
                .map(|(id, state, _)| (id.clone(), state.to_string()))
                .collect(),
            capacity_type: String::new(),
            weights: vec![],
            weighted_types: false,
            bootstrap_record: None,
            members_record: None,
            zones: instances
                .iter()
                .map(|(id, _, zone)| (id.clone(), zone.to_string()))
                .collect(),
        }
    }

    /// What each member says of itself: a started one its status, under `leader`.
    fn statuses(
        members: &[Member],
        leader: u64,
        raft_index: u64,
    ) -> Vec<(u64, Option<MemberStatus>)> {
        members
            .iter()
            .map(|m| {
                let status = m.is_started().then_some(MemberStatus {
                    leader,
                    db_size: 20480,
                    raft_index,
                });
                (m.id, status)
            })
            .collect()
    }

    struct Case {
        what: &'static str,
        group: Vec<(u8, &'static str)>,
        /// (instance k, member name): the member of k, started when named.
        members: Option<Vec<(u8, &'static str)>>,
        healthy: Vec<u8>,
        /// (instance or "-", member name or "-", attention containing, "" for none)
        rows: Vec<(&'static str, &'static str, &'static str)>,
    }

    fn run(case: &Case) -> Report {
        let listed: Vec<(String, &str, &str)> = case
            .group
            .iter()
            .map(|(k, state)| (id(*k), *state, "us-east-1a"))
            .collect();
        let instances: Vec<Instance> = case
            .group
            .iter()
            .filter(|(_, s)| counts_in_cluster(s))
            .map(|(k, _)| instance(&id(*k), &ip(*k)))
            .collect();
        let healthy: Vec<u64> = case
            .healthy
            .iter()
            .map(|k| u64::from(*k) * 0x1111)
            .collect();
        let members: Option<Vec<Member>> = case
            .members
            .as_ref()
            .map(|m| m.iter().map(|(k, name)| member_of(*k, name)).collect());
        let statuses = statuses(members.as_deref().unwrap_or_default(), 0x2222, 9);
        report(&Seen {
            groups: &[group(&listed)],
            instances: &instances,
            members: members.as_deref(),
            healthy: &healthy,
            statuses: &statuses,
            this_instance: Some("i-2"),
            discover: "already member 2222 of a cluster of 3: nothing to change (reboot)".into(),
        })
    }

    #[test]
    fn rows_join_the_group_and_the_cluster() {
        let cases = [
            Case {
                what: "healthy cluster",
                group: vec![(2, "InService"), (3, "InService"), (4, "InService")],
                members: Some(vec![(2, "i-2"), (3, "i-3"), (4, "i-4")]),
                healthy: vec![2, 3, 4],
                rows: vec![("i-2", "i-2", ""), ("i-3", "i-3", ""), ("i-4", "i-4", "")],
            },
            Case {
                what: "terminated without replacement",
                group: vec![(2, "InService"), (3, "InService")],
                members: Some(vec![(2, "i-2"), (3, "i-3"), (4, "i-4")]),
                healthy: vec![2, 3],
                rows: vec![
                    ("i-2", "i-2", ""),
                    ("i-3", "i-3", ""),
                    ("-", "i-4", "stale"),
                ],
            },
            Case {
                what: "a new instance, not joined yet; one member down",
                group: vec![(2, "InService"), (3, "InService"), (5, "Pending")],
                members: Some(vec![(2, "i-2"), (3, "i-3")]),
                healthy: vec![2],
                rows: vec![
                    ("i-2", "i-2", ""),
                    ("i-3", "i-3", "down"),
                    ("i-5", "-", "not in the cluster"),
                ],
            },
            Case {
                what: "added but never started, matched by address",
                group: vec![(2, "InService"), (6, "InService")],
                members: Some(vec![(2, "i-2"), (6, "")]),
                healthy: vec![2],
                rows: vec![("i-2", "i-2", ""), ("i-6", "", "not started")],
            },
            Case {
                what: "leaving and gone instances",
                group: vec![(2, "InService"), (3, "Terminating:Wait"), (4, "Terminated")],
                members: Some(vec![(2, "i-2"), (3, "i-3")]),
                healthy: vec![2, 3],
                rows: vec![
                    ("i-2", "i-2", ""),
                    ("i-3", "i-3", "Terminating:Wait"),
                    ("i-4", "-", ""),
                ],
            },
            Case {
                what: "etcd did not answer: nothing flagged, the exit says so",
                group: vec![(2, "InService")],
                members: None,
                healthy: vec![],
                rows: vec![("i-2", "-", "")],
            },
        ];
        for case in &cases {
            let report = run(case);
            let got: Vec<(String, String, String)> = report
                .rows
                .iter()
                .map(|r| {
                    (
                        r.instance.as_ref().map_or("-".into(), |i| i.id.clone()),
                        r.member.as_ref().map_or("-".into(), |m| m.name.clone()),
                        r.attention.clone().unwrap_or_default(),
                    )
                })
                .collect();
            assert_eq!(
                got.len(),
                case.rows.len(),
                "failed testcase: {}: {got:?}",
                case.what
            );
            for (g, (i, m, a)) in got.iter().zip(&case.rows) {
                assert!(
                    g.0 == *i && g.1 == *m && (a.is_empty() == g.2.is_empty()) && g.2.contains(a),
                    "failed testcase: {}: {got:?}",
                    case.what
                );
            }
            let flagged = case.rows.iter().filter(|r| !r.2.is_empty()).count();
            assert_eq!(report.attention, flagged, "failed testcase: {}", case.what);
            assert_eq!(
                problem(&report).is_some(),
                flagged > 0,
                "failed testcase: {}",
                case.what
            );
        }
    }

    #[test]
    fn stale_counts_members_without_a_counted_instance() {
        let instances = [instance(&id(2), &ip(2)), instance(&id(3), &ip(3))];
        let members = [member_of(2, "i-2"), member_of(3, ""), member_of(4, "i-4")];
        assert_eq!(stale(&instances, &members), 1);
        assert_eq!(stale(&instances, &members[..2]), 0);
    }

    #[test]
    fn table_names_every_instance_and_what_discover_would_do() {
        let case = Case {
            what: "stale",
            group: vec![(2, "InService"), (3, "InService")],
            members: Some(vec![(2, "i-2"), (3, "i-3"), (4, "i-4")]),
            healthy: vec![2, 3],
            rows: vec![],
        };
        let text = table(&run(&case));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("INSTANCE  ZONE"), "{text}");
        assert!(
            lines[1].starts_with("i-2       us-east-1a  InService  10.0.0.2  2222"),
            "{text}"
        );
        assert!(
            lines[1].contains("yes      no       yes      yes     20480    9"),
            "{text}"
        );
        assert!(
            lines[3].starts_with("-         -")
                && lines[3].ends_with("stale: no instance of the group has its name or address"),
            "{text}"
        );
        assert_eq!(lines[4], "discover on i-2 now: already member 2222 of a cluster of 3: nothing to change (reboot)");
        assert_eq!(lines[5], "1 row needs attention (see ATTENTION)");
    }

    #[test]
    fn the_readme_example_is_what_the_table_prints() {
        let readme = include_str!("../README.md");
        let start = readme
            .find("On a healthy cluster (`etcd-discovery status` on one of its instances):\n\n```text\n")
            .expect("README example");
        let block = &readme[start..];
        let block = &block[block.find("```text\n").unwrap() + 8..];
        let block = &block[..block.find("```").unwrap()];
        let ids = [
            "i-0a1b2c3d4e5f60718",
            "i-0b2c3d4e5f6071829",
            "i-0c3d4e5f607182930",
        ];
        let member_ids = [0x92bd7b8b2c1d0e41, 0x1c4f6a2b9d3e8f70, 0x6e8a1f0c2b4d7a93];
        let ips = ["10.0.1.5", "10.0.2.7", "10.0.3.9"];
        let listed: Vec<(String, &str, &str)> = ids
            .iter()
            .zip(["us-east-1a", "us-east-1b", "us-east-1c"])
            .map(|(id, zone)| (id.to_string(), "InService", zone))
            .collect();
        let instances: Vec<Instance> = ids
            .iter()
            .zip(ips)
            .map(|(id, ip)| instance(id, ip))
            .collect();
        let members: Vec<Member> = ids
            .iter()
            .zip(member_ids)
            .zip(ips)
            .map(|((id, m), ip)| member(m, id, ip))
            .collect();
        let statuses = statuses(&members, member_ids[0], 12);
        let report = report(&Seen {
            groups: &[group(&listed)],
            instances: &instances,
            members: Some(&members),
            healthy: &member_ids,
            statuses: &statuses,
            this_instance: Some(ids[0]),
            discover:
                "already member 92bd7b8b2c1d0e41 of a cluster of 3: nothing to change (reboot)"
                    .into(),
        });
        assert_eq!(table(&report), block);
    }

    #[test]
    fn json_is_what_serde_json_pretty_printed_to_the_letter() {
        // `json` is written by hand to save bytes; the text must stay what serde_json's
        // pretty printer gave (a field added to the structs and not to `json` fails here).
        let mut cases: Vec<Report> = [
            Case {
                what: "every kind of row",
                group: vec![(2, "InService"), (5, "Pending"), (6, "InService")],
                members: Some(vec![(2, "i-2"), (6, ""), (7, "i-7")]),
                healthy: vec![2],
                rows: vec![],
            },
            Case {
                what: "etcd did not answer",
                group: vec![(2, "InService")],
                members: None,
                healthy: vec![],
                rows: vec![],
            },
        ]
        .iter()
        .map(run)
        .collect();
        let mut odd = run(&Case {
            what: "strings that need escaping",
            group: vec![],
            members: Some(vec![(3, "q\"b\\s\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f} é ✓ /")]),
            healthy: vec![],
            rows: vec![],
        });
        odd.groups.clear();
        odd.this_instance = None;
        odd.rows[0].member.as_mut().unwrap().peer_urls.clear();
        odd.rows[0].member.as_mut().unwrap().db_size_bytes = Some(u64::MAX);
        cases.push(odd);
        for report in &cases {
            let serde = serde_json::to_string_pretty(report).unwrap() + "\n";
            assert_eq!(json(report), serde);
        }
    }

    #[test]
    fn json_has_the_documented_shape() {
        let case = Case {
            what: "healthy",
            group: vec![(2, "InService")],
            members: Some(vec![(2, "i-2")]),
            healthy: vec![2],
            rows: vec![],
        };
        let value: serde_json::Value = serde_json::from_str(&json(&run(&case))).unwrap();
        assert_eq!(value["version"], 1);
        assert_eq!(value["groups"][0], "etcd");
        assert_eq!(value["this_instance"], "i-2");
        assert_eq!(value["etcd_answered"], true);
        assert_eq!(value["attention"], 0);
        let row = &value["rows"][0];
        assert_eq!(row["instance"]["id"], "i-2");
        assert_eq!(row["instance"]["zone"], "us-east-1a");
        assert_eq!(row["instance"]["lifecycle_state"], "InService");
        assert_eq!(row["instance"]["address"], "10.0.0.2");
        assert_eq!(row["instance"]["counted"], true);
        assert_eq!(row["member"]["id"], "2222");
        assert_eq!(row["member"]["name"], "i-2");
        assert_eq!(row["member"]["peer_urls"][0], "http://10.0.0.2:2380");
        for flag in ["started", "healthy", "leader"] {
            assert_eq!(row["member"][flag], true, "{flag}");
        }
        assert_eq!(row["member"]["learner"], false);
        assert_eq!(row["member"]["db_size_bytes"], 20480);
        assert_eq!(row["member"]["raft_index"], 9);
        assert!(row["attention"].is_null());
        assert!(value["discover"].as_str().unwrap().contains("reboot"));
    }
}
