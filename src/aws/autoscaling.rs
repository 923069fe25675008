//! AutoScaling (API 2011-01-01): which group this instance is in, and the groups' instances.

use serde::Deserialize;

use super::query::{paginate, parse_xml, QueryClient};
use crate::error::{Error, Result};
use crate::model::Group;

pub const VERSION: &str = "2011-01-01";

/// AWS's `<member>` list wrapper.
#[derive(Deserialize)]
struct Members<T> {
    #[serde(rename = "member", default = "Vec::new")]
    member: Vec<T>,
}

impl<T> Default for Members<T> {
    fn default() -> Self {
        Members { member: Vec::new() }
    }
}

#[derive(Deserialize)]
struct DescribeAutoScalingInstancesResponse {
    #[serde(rename = "DescribeAutoScalingInstancesResult")]
    result: AutoScalingInstancesResult,
}

#[derive(Deserialize)]
struct AutoScalingInstancesResult {
    #[serde(rename = "AutoScalingInstances", default)]
    instances: Members<AutoScalingInstance>,
    #[serde(rename = "NextToken", default)]
    next_token: Option<String>,
}

#[derive(Deserialize)]
struct AutoScalingInstance {
    #[serde(rename = "AutoScalingGroupName")]
    group_name: String,
}

#[derive(Deserialize)]
struct DescribeAutoScalingGroupsResponse {
    #[serde(rename = "DescribeAutoScalingGroupsResult")]
    result: GroupsResult,
}

#[derive(Deserialize)]
struct GroupsResult {
    #[serde(rename = "AutoScalingGroups", default)]
    groups: Members<WireGroup>,
    #[serde(rename = "NextToken", default)]
    next_token: Option<String>,
}

#[derive(Deserialize)]
struct WireGroup {
    #[serde(rename = "AutoScalingGroupName")]
    name: String,
    #[serde(rename = "DesiredCapacity")]
    desired_capacity: u32,
    #[serde(rename = "DesiredCapacityType", default)]
    desired_capacity_type: Option<String>,
    #[serde(rename = "Instances", default)]
    instances: Members<WireInstance>,
    #[serde(rename = "MixedInstancesPolicy", default)]
    mixed_instances_policy: Option<WireMixedInstancesPolicy>,
    #[serde(rename = "Tags", default)]
    tags: Members<WireTag>,
}

#[derive(Deserialize)]
struct WireTag {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value", default)]
    value: String,
}

#[derive(Deserialize)]
struct WireInstance {
    #[serde(rename = "InstanceId")]
    id: String,
    #[serde(rename = "LifecycleState")]
    lifecycle_state: String,
    /// A number as text, 1-999 for weights, the vCPU or MiB count for those capacity types.
    #[serde(rename = "WeightedCapacity", default)]
    weighted_capacity: Option<String>,
    #[serde(rename = "AvailabilityZone", default)]
    zone: String,
}

#[derive(Deserialize, Default)]
struct WireMixedInstancesPolicy {
    #[serde(rename = "LaunchTemplate", default)]
    launch_template: WirePolicyLaunchTemplate,
}

#[derive(Deserialize, Default)]
struct WirePolicyLaunchTemplate {
    #[serde(rename = "Overrides", default)]
    overrides: Members<WireOverride>,
}

#[derive(Deserialize)]
struct WireOverride {
    #[serde(rename = "WeightedCapacity", default)]
    weighted_capacity: Option<String>,
}

/// A `WeightedCapacity` as AWS writes it; `None` when absent or not a whole number.
fn weight(text: Option<&str>) -> Option<u32> {
    text?.trim().parse().ok()
}

/// Parses one DescribeAutoScalingInstances page: group names and the next token.
pub fn parse_instances_page(body: &str) -> Result<(Vec<String>, Option<String>)> {
    let r: DescribeAutoScalingInstancesResponse = parse_xml("DescribeAutoScalingInstances", body)?;
    let names = r
        .result
        .instances
        .member
        .into_iter()
        .map(|i| i.group_name)
        .collect();
    Ok((names, r.result.next_token))
}

/// Parses one DescribeAutoScalingGroups page.
pub fn parse_groups_page(body: &str) -> Result<(Vec<Group>, Option<String>)> {
    let r: DescribeAutoScalingGroupsResponse = parse_xml("DescribeAutoScalingGroups", body)?;
    let groups = r
        .result
        .groups
        .member
        .into_iter()
        .map(|g| {
            let tags: Vec<(String, String)> = g
                .tags
                .member
                .into_iter()
                .map(|t| (t.key, t.value))
                .collect();
            Group {
                name: g.name,
                desired_capacity: g.desired_capacity,
                capacity_type: g
                    .desired_capacity_type
                    .map(|t| t.trim().to_string())
                    .unwrap_or_default(),
                weights: g
                    .instances
                    .member
                    .iter()
                    .filter_map(|i| Some((i.id.clone(), weight(i.weighted_capacity.as_deref())?)))
                    .collect(),
                weighted_types: g.mixed_instances_policy.is_some_and(|p| {
                    p.launch_template
                        .overrides
                        .member
                        .iter()
                        .any(|o| weight(o.weighted_capacity.as_deref()).is_some_and(|w| w != 1))
                }),
                zones: g
                    .instances
                    .member
                    .iter()
                    .filter(|i| !i.zone.is_empty())
                    .map(|i| (i.id.clone(), i.zone.clone()))
                    .collect(),
                instances: g
                    .instances
                    .member
                    .into_iter()
                    .map(|i| (i.id, i.lifecycle_state))
                    .collect(),
                bootstrap_record: read_record(&tags, BOOTSTRAP_TAG),
                members_record: read_record(&tags, MEMBERS_TAG),
            }
        })
        .collect();
    Ok((groups, r.result.next_token))
}

/// The group(s) `instance_id` belongs to; empty when it is in none.
pub fn groups_of_instance(client: &QueryClient, instance_id: &str) -> Result<Vec<String>> {
    paginate("DescribeAutoScalingInstances", |token| {
        let mut params = vec![("InstanceIds.member.1".to_string(), instance_id.to_string())];
        if let Some(t) = token {
            params.push(("NextToken".into(), t.into()));
        }
        parse_instances_page(&client.call("DescribeAutoScalingInstances", &params)?)
    })
}

/// Whether AutoScaling refused a CompleteLifecycleAction because no action is waiting: the
/// hook timed out or was completed already (a rerun after a crash, an operator, the heartbeat
/// ran out), so the instance is going on anyway and there is nothing to complete.
pub fn no_active_lifecycle_action(e: &Error) -> bool {
    matches!(e, Error::Aws { code, message, .. }
        if code == "ValidationError"
            && message.to_ascii_lowercase().contains("no active lifecycle action found"))
}

/// Lets AutoScaling go on terminating (or launching) `instance_id` now. `Ok(false)` when no
/// lifecycle action was waiting (see `no_active_lifecycle_action`): warned, not an error.
pub fn complete_lifecycle_action(
    client: &QueryClient,
    hook: &str,
    group: &str,
    instance_id: &str,
) -> Result<bool> {
    let result = [("LifecycleActionResult", "CONTINUE")];
    let done = lifecycle_action(
        client,
        "CompleteLifecycleAction",
        [hook, group, instance_id],
        &result,
    )?;
    if !done {
        log::warn!(
            "lifecycle hook {hook} of {group}: no lifecycle action is waiting for {instance_id} \
             (it timed out or was completed already): nothing to complete"
        );
    }
    Ok(done)
}

/// Holds `instance_id` in its lifecycle action for another heartbeat timeout of the hook
/// (AutoScaling ends the action after 48 hours or 100 heartbeat timeouts, whichever is
/// shorter, however many heartbeats are sent). `Ok(false)` when no lifecycle action is
/// waiting any more: the instance is going on.
pub fn record_lifecycle_action_heartbeat(
    client: &QueryClient,
    hook: &str,
    group: &str,
    instance_id: &str,
) -> Result<bool> {
    lifecycle_action(
        client,
        "RecordLifecycleActionHeartbeat",
        [hook, group, instance_id],
        &[],
    )
}

/// `action` on the lifecycle action of `[hook, group, instance_id]`, with `more` parameters;
/// `Ok(false)` when none is waiting.
fn lifecycle_action(
    client: &QueryClient,
    action: &str,
    [hook, group, instance_id]: [&str; 3],
    more: &[(&str, &str)],
) -> Result<bool> {
    let params: Vec<(String, String)> = [
        ("LifecycleHookName", hook),
        ("AutoScalingGroupName", group),
        ("InstanceId", instance_id),
    ]
    .iter()
    .chain(more)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    match client.call(action, &params) {
        Ok(_) => Ok(true),
        Err(e) if no_active_lifecycle_action(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The tag that holds a bootstrap's initial cluster (rule 14), and the prefix of its further
/// parts (`...:2`, `...:3`).
pub const BOOTSTRAP_TAG: &str = "etcd-discovery:initial-cluster";
/// The tag that holds the members a join left the cluster with (rule 17), in parts the same
/// way.
pub const MEMBERS_TAG: &str = "etcd-discovery:members";
/// A tag value holds at most 256 characters.
const TAG_VALUE_MAX: usize = 256;
/// Ends a part that another part follows: a shorter record written later ends earlier, so a
/// longer one's leftover parts are never read.
const CONTINUED: &str = " +";

/// The group's tags `key`, `key:2`... for a member list (`name=url,name=url`). Tag values may
/// not hold commas: entries are separated by spaces, over as many parts as 256 characters
/// need.
pub fn record_tags(key: &str, initial_cluster: &str) -> Result<Vec<(String, String)>> {
    let mut parts: Vec<String> = Vec::new();
    let mut part = String::new();
    for entry in initial_cluster.split(',') {
        if entry.len() + CONTINUED.len() > TAG_VALUE_MAX || entry.contains(' ') {
            return Err(Error::Usage(format!(
                "the initial cluster entry {entry:?} does not fit a group tag (at most {} \
                 characters, no spaces): shorten the peer URL",
                TAG_VALUE_MAX - CONTINUED.len()
            )));
        }
        if part.is_empty() {
            part.push_str(entry);
        } else if part.len() + 1 + entry.len() + CONTINUED.len() <= TAG_VALUE_MAX {
            part.push(' ');
            part.push_str(entry);
        } else {
            part.push_str(CONTINUED);
            parts.push(std::mem::replace(&mut part, entry.to_string()));
        }
    }
    parts.push(part);
    Ok(parts
        .into_iter()
        .enumerate()
        .map(|(i, value)| match i {
            0 => (key.to_string(), value),
            i => (format!("{key}:{}", i + 1), value),
        })
        .collect())
}

/// The member list recorded in a group's tags under `key` (see `record_tags`), comma-separated
/// as etcd reads it; `None` when there is none or a part is missing.
pub fn read_record(tags: &[(String, String)], key: &str) -> Option<String> {
    let mut entries: Vec<&str> = Vec::new();
    for part in 1.. {
        let key = match part {
            1 => key.to_string(),
            n => format!("{key}:{n}"),
        };
        let value = tags.iter().find(|(k, _)| *k == key)?.1.as_str();
        let (value, more) = match value.strip_suffix(CONTINUED) {
            Some(value) => (value, true),
            None => (value, false),
        };
        entries.extend(value.split_whitespace());
        if !more {
            break;
        }
    }
    (!entries.is_empty()).then(|| entries.join(","))
}

/// Records a member list in the group's tags under `key`: a bootstrap's initial cluster before
/// its etcd first starts (rule 14), the members a join left (rule 17).
pub fn write_record(
    client: &QueryClient,
    group: &str,
    key: &str,
    initial_cluster: &str,
) -> Result<()> {
    let mut params = Vec::new();
    for (i, (key, value)) in record_tags(key, initial_cluster)?.into_iter().enumerate() {
        let field = |name: &str| format!("Tags.member.{}.{name}", i + 1);
        params.push((field("ResourceId"), group.to_string()));
        params.push((field("ResourceType"), "auto-scaling-group".to_string()));
        params.push((field("Key"), key));
        params.push((field("Value"), value));
        params.push((field("PropagateAtLaunch"), "false".to_string()));
    }
    client.call("CreateOrUpdateTags", &params).map(|_| ())
}

/// Which groups to describe.
pub enum GroupQuery<'a> {
    Names(&'a [String]),
    Tags(&'a [(String, String)]),
}

/// DescribeAutoScalingGroups by names or by tags (every tag must match), every page.
pub fn describe_groups(client: &QueryClient, query: GroupQuery) -> Result<Vec<Group>> {
    let mut base = vec![("MaxRecords".to_string(), "100".to_string())];
    match query {
        GroupQuery::Names(names) => {
            for (i, name) in names.iter().enumerate() {
                base.push((
                    format!("AutoScalingGroupNames.member.{}", i + 1),
                    name.clone(),
                ));
            }
        }
        GroupQuery::Tags(tags) => {
            for (i, (key, value)) in tags.iter().enumerate() {
                base.push((
                    format!("Filters.member.{}.Name", i + 1),
                    format!("tag:{key}"),
                ));
                base.push((
                    format!("Filters.member.{}.Values.member.1", i + 1),
                    value.clone(),
                ));
            }
        }
    }
    paginate("DescribeAutoScalingGroups", |token| {
        let mut params = base.clone();
        if let Some(t) = token {
            params.push(("NextToken".into(), t.into()));
        }
        parse_groups_page(&client.call("DescribeAutoScalingGroups", &params)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("fixtures/autoscaling/{name}")).unwrap()
    }

    #[test]
    fn groups_in_two_pages() {
        let (first, token) =
            parse_groups_page(&fixture("describe-auto-scaling-groups-page1.xml")).unwrap();
        assert_eq!(token.as_deref(), Some("Z3M3LMPEXAMPLE"));
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].name, "etcd-eu-west-1a");
        assert_eq!(first[0].desired_capacity, 2);
        assert_eq!(
            first[0].instances,
            vec![
                ("i-0a1b2c3d4e5f60718".to_string(), "InService".to_string()),
                (
                    "i-0b2c3d4e5f6071829".to_string(),
                    "Terminating:Wait".to_string()
                )
            ]
        );
        let (second, token) =
            parse_groups_page(&fixture("describe-auto-scaling-groups-page2.xml")).unwrap();
        assert_eq!(token, None);
        assert_eq!(second[0].name, "etcd-eu-west-1b");
        assert_eq!(second[0].instances.len(), 1);
    }

    #[test]
    fn capacity_types_and_weights() {
        let body =
            std::fs::read_to_string("fixtures/aws/describe-auto-scaling-groups-vcpu.xml").unwrap();
        let (groups, _) = parse_groups_page(&body).unwrap();
        let vcpu = &groups[0];
        assert_eq!(vcpu.capacity_type, "vcpu");
        assert_eq!(vcpu.desired_capacity, 8);
        assert_eq!(
            vcpu.weights.iter().map(|(_, w)| *w).collect::<Vec<_>>(),
            [2, 4, 2]
        );
        assert!(!vcpu.weighted_types, "requirements, no weights");
        assert_eq!(vcpu.expected_instances().0, 3);
        // Each instance's zone, for `status`.
        assert_eq!(
            vcpu.zones
                .iter()
                .map(|(_, z)| z.as_str())
                .collect::<Vec<_>>(),
            ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
        );
        let weighted = &groups[1];
        assert_eq!(weighted.capacity_type, "");
        assert!(weighted.weighted_types);
        let (expected, why) = weighted.expected_instances();
        assert_eq!(expected, 2, "{why:?}");
        // A plain group: no type, no weights.
        let (plain, _) =
            parse_groups_page(&fixture("describe-auto-scaling-groups-page1.xml")).unwrap();
        assert_eq!(plain[0].capacity_type, "");
        assert!(plain[0].weights.is_empty() && !plain[0].weighted_types);
        assert_eq!(plain[0].expected_instances(), (2, None));
    }

    #[test]
    fn server_errors_from_fixtures_are_worth_a_retry() {
        // (file, HTTP status AWS sends it with, exit code)
        let cases = [
            ("aws/error-resource-contention.xml", 500, 75),
            ("aws/error-ec2-throttled.xml", 503, 75),
            ("aws/error-no-active-lifecycle-action.xml", 400, 1),
        ];
        for (file, status, exit) in cases {
            let (code, message) = crate::aws::query::parse_error(
                &std::fs::read_to_string(format!("fixtures/{file}")).unwrap(),
            )
            .unwrap_or_else(|| panic!("failed testcase {file}"));
            let e = Error::Aws {
                action: "CompleteLifecycleAction".into(),
                code,
                message,
                status,
            };
            assert_eq!(e.exit_code(), exit, "failed testcase {file}: {e}");
            assert_eq!(
                no_active_lifecycle_action(&e),
                file.contains("lifecycle"),
                "failed testcase {file}"
            );
        }
    }

    #[test]
    fn auto_scaling_instances() {
        let (names, token) =
            parse_instances_page(&fixture("describe-auto-scaling-instances.xml")).unwrap();
        assert_eq!(names, vec!["etcd-eu-west-1a".to_string()]);
        assert_eq!(token, None);
    }

    #[test]
    fn a_bootstrap_record_round_trips_through_tag_parts() {
        let entry =
            |n: u32| format!("i-{n:017x}=https://ip-10-0-{n}-1.eu-west-1.compute.internal:2380");
        for size in [1, 3, 5, 7, 9] {
            let cluster: Vec<String> = (1..=size).map(entry).collect();
            let cluster = cluster.join(",");
            let tags = record_tags(BOOTSTRAP_TAG, &cluster).unwrap();
            assert!(
                tags.iter()
                    .all(|(k, v)| k.len() <= 128 && v.len() <= TAG_VALUE_MAX && !v.contains(',')),
                "failed testcase: {size} members: {tags:?}"
            );
            assert_eq!(
                read_record(&tags, BOOTSTRAP_TAG),
                Some(cluster),
                "failed testcase: {size} members"
            );
        }
        // A shorter record written over a longer one: the longer one's last part is left
        // behind, and never read.
        let long = record_tags(
            BOOTSTRAP_TAG,
            &(1..=9).map(entry).collect::<Vec<_>>().join(","),
        )
        .unwrap();
        let short = record_tags(BOOTSTRAP_TAG, &entry(1)).unwrap();
        assert_eq!(short.len(), 1);
        let mut tags = long.clone();
        tags.retain(|(k, _)| *k != short[0].0);
        tags.extend(short);
        assert_eq!(read_record(&tags, BOOTSTRAP_TAG), Some(entry(1)));
        // A missing part, or no record at all.
        assert_eq!(read_record(&long[..1], BOOTSTRAP_TAG), None);
        assert_eq!(
            read_record(&[("role".into(), "etcd".into())], BOOTSTRAP_TAG),
            None
        );
        // The two records sit side by side, each read by its own key.
        let mut both = record_tags(BOOTSTRAP_TAG, &entry(1)).unwrap();
        both.extend(record_tags(MEMBERS_TAG, &entry(2)).unwrap());
        assert_eq!(read_record(&both, BOOTSTRAP_TAG), Some(entry(1)));
        assert_eq!(read_record(&both, MEMBERS_TAG), Some(entry(2)));
        // An entry no tag can hold is refused, not cut.
        let huge = format!("i-1=https://{}:2380", "a".repeat(300));
        assert!(matches!(
            record_tags(BOOTSTRAP_TAG, &huge),
            Err(Error::Usage(_))
        ));
    }

    #[test]
    fn empty_results() {
        let body = r#"<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><DescribeAutoScalingGroupsResult><AutoScalingGroups/></DescribeAutoScalingGroupsResult></DescribeAutoScalingGroupsResponse>"#;
        assert_eq!(parse_groups_page(body).unwrap().0, vec![]);
        let body = r#"<DescribeAutoScalingInstancesResponse><DescribeAutoScalingInstancesResult><AutoScalingInstances/></DescribeAutoScalingInstancesResult></DescribeAutoScalingInstancesResponse>"#;
        assert!(parse_instances_page(body).unwrap().0.is_empty());
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        let good = fixture("describe-auto-scaling-groups-page1.xml");
        let mut cases = vec![
            String::new(),
            "<html>oops</html>".into(),
            "<DescribeAutoScalingGroupsResponse>".into(),
        ];
        for cut in [10, good.len() / 3, good.len() / 2, good.len() - 5] {
            cases.push(good[..cut].to_string());
        }
        for body in cases {
            assert!(
                parse_groups_page(&body).is_err(),
                "failed testcase {body:?}"
            );
        }
    }
}
