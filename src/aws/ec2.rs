//! EC2 (API 2016-11-15): the private addresses of the group's instances.

use serde::Deserialize;

use super::query::{paginate, parse_xml, QueryClient};
use crate::error::{Error, Result};
use crate::model::{pick_address, AddressFamily, Instance};

pub const VERSION: &str = "2016-11-15";

/// DescribeInstances takes many ids, but a bounded request is kinder to the API.
const IDS_PER_CALL: usize = 100;
/// DescribeInstances calls in flight at once for a big group.
const PARALLEL_CHUNKS: usize = 4;

/// EC2's `<item>` list wrapper.
#[derive(Deserialize)]
struct Items<T> {
    #[serde(rename = "item", default = "Vec::new")]
    item: Vec<T>,
}

impl<T> Default for Items<T> {
    fn default() -> Self {
        Items { item: Vec::new() }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeInstancesResponse {
    #[serde(default)]
    reservation_set: Items<Reservation>,
    #[serde(default)]
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reservation {
    #[serde(default)]
    instances_set: Items<WireInstance>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireInstance {
    instance_id: String,
    #[serde(default)]
    private_ip_address: Option<String>,
    /// The instance's primary IPv6 address, when it has one (EC2 API Reference, `Instance`:
    /// `ipv6Address`).
    #[serde(default)]
    ipv6_address: Option<String>,
    #[serde(default)]
    network_interface_set: Items<WireInterface>,
    #[serde(default)]
    private_dns_name: Option<String>,
    #[serde(default)]
    launch_time: Option<String>,
}

/// EC2 API Reference, `InstanceNetworkInterface`: its device index and IPv6 addresses.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireInterface {
    #[serde(default)]
    attachment: Option<WireAttachment>,
    #[serde(default)]
    ipv6_addresses_set: Items<WireIpv6>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAttachment {
    #[serde(default)]
    device_index: Option<u32>,
}

/// EC2 API Reference, `InstanceIpv6Address`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireIpv6 {
    #[serde(default)]
    ipv6_address: Option<String>,
    #[serde(default)]
    is_primary_ipv6: Option<bool>,
}

impl WireInstance {
    /// The instance's IPv6 address: `ipv6Address`, else its primary network interface's
    /// (device 0) primary IPv6 address, else that interface's first; empty when it has none.
    fn ipv6(&self) -> String {
        if let Some(a) = self
            .ipv6_address
            .as_deref()
            .filter(|a| !a.trim().is_empty())
        {
            return a.trim().to_string();
        }
        let primary = self
            .network_interface_set
            .item
            .iter()
            .find(|n| n.attachment.as_ref().and_then(|a| a.device_index) == Some(0))
            .or(self.network_interface_set.item.first());
        let addresses = primary
            .map(|n| n.ipv6_addresses_set.item.as_slice())
            .unwrap_or_default();
        addresses
            .iter()
            .find(|a| a.is_primary_ipv6 == Some(true))
            .or(addresses.first())
            .and_then(|a| a.ipv6_address.as_deref())
            .unwrap_or_default()
            .trim()
            .to_string()
    }
}

/// Parses one DescribeInstances page; each instance's address is the one `family` picks.
pub fn parse_instances_page(
    body: &str,
    family: AddressFamily,
) -> Result<(Vec<Instance>, Option<String>)> {
    let r: DescribeInstancesResponse = parse_xml("DescribeInstances", body)?;
    let instances = r
        .reservation_set
        .item
        .into_iter()
        .flat_map(|reservation| reservation.instances_set.item)
        .map(|i| Instance {
            private_ip: pick_address(
                family,
                i.private_ip_address.as_deref().unwrap_or_default(),
                &i.ipv6(),
            ),
            id: i.instance_id,
            private_dns: i.private_dns_name.unwrap_or_default().trim().to_string(),
            launch_time: i.launch_time.unwrap_or_default().trim().to_string(),
        })
        .collect();
    Ok((instances, r.next_token))
}

/// Addresses of these instances, every page of every chunk. An id EC2 does not know yet is
/// left out (the caller sees it without an address); the others still get theirs.
/// The chunks are asked a few at once: a 1,000-instance group is 10 calls, and one after
/// another they cost 10 round trips; all at once they would spend the account's API budget
/// in a burst (AWS throttles per account).
pub fn describe_instances(
    client: &QueryClient,
    ids: &[String],
    family: AddressFamily,
) -> Result<Vec<Instance>> {
    let describe = |chunk: &[String]| {
        known_only(chunk, &mut |asking| {
            paginate("DescribeInstances", |token| {
                let mut params: Vec<(String, String)> = asking
                    .iter()
                    .enumerate()
                    .map(|(i, id)| (format!("InstanceId.{}", i + 1), id.clone()))
                    .collect();
                if let Some(t) = token {
                    params.push(("NextToken".into(), t.into()));
                }
                parse_instances_page(&client.call("DescribeInstances", &params)?, family)
            })
        })
    };
    let chunks: Vec<&[String]> = ids.chunks(IDS_PER_CALL).collect();
    if chunks.len() <= 1 {
        return chunks
            .first()
            .map_or(Ok(Vec::new()), |chunk| describe(chunk));
    }
    // A bounded pool: each worker takes the next chunk; the answers keep the chunks' order.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let answers: std::sync::Mutex<Vec<Option<Result<Vec<Instance>>>>> =
        std::sync::Mutex::new(chunks.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..chunks.len().min(PARALLEL_CHUNKS) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(chunk) = chunks.get(i) else { break };
                let answer = describe(chunk);
                let failed = answer.is_err();
                if let Ok(mut answers) = answers.lock() {
                    answers[i] = Some(answer);
                }
                if failed {
                    // The whole call fails: no more chunks are asked.
                    next.store(chunks.len(), std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    let answers = answers.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut all = Vec::with_capacity(ids.len());
    // A chunk is left unasked only after another failed: that failure is returned.
    for answer in answers.into_iter().flatten() {
        all.extend(answer?);
    }
    Ok(all)
}

/// How many of these instances EC2 still has, terminated ones not counted: pending, running,
/// stopping or stopped (a warm pool's `Warmed:Stopped` instance is `stopped`; it can return to
/// service with its disks). Asked with filters, not ids, so an id EC2 has forgotten (an
/// instance terminated about an hour ago or more) is simply not there, never an error. An
/// endpoint that ignored the filters would count more: the caller's proof only gets weaker.
pub fn count_not_terminated(client: &QueryClient, ids: &[String]) -> Result<usize> {
    let mut count = 0;
    for chunk in ids.chunks(IDS_PER_CALL) {
        let found = paginate("DescribeInstances", |token| {
            let mut params: Vec<(String, String)> = vec![
                ("Filter.1.Name".into(), "instance-id".into()),
                ("Filter.2.Name".into(), "instance-state-name".into()),
            ];
            params.extend(
                chunk
                    .iter()
                    .enumerate()
                    .map(|(i, id)| (format!("Filter.1.Value.{}", i + 1), id.clone())),
            );
            params.extend(
                ["pending", "running", "stopping", "stopped"]
                    .iter()
                    .enumerate()
                    .map(|(i, state)| (format!("Filter.2.Value.{}", i + 1), state.to_string())),
            );
            if let Some(t) = token {
                params.push(("NextToken".into(), t.into()));
            }
            parse_instances_page(
                &client.call("DescribeInstances", &params)?,
                AddressFamily::Ipv4,
            )
        })?;
        count += found.len();
    }
    Ok(count)
}

/// What EC2 answers, for the whole call, when it does not know one of the ids. Right after a
/// launch AutoScaling lists instances that EC2 does not know yet (eventual consistency).
const NOT_FOUND: &str = "InvalidInstanceID.NotFound";

/// The instance ids EC2's NotFound message names: "The instance ID 'i-1a' does not exist",
/// "The instance IDs 'i-1a, i-2b' do not exist".
pub fn ids_in_message(message: &str) -> Vec<String> {
    message
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| {
            w.strip_prefix("i-")
                .is_some_and(|hex| !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .map(str::to_string)
        .collect()
}

/// Asks `describe` for `ids`, leaving out the ids EC2 answers NotFound for: those named in
/// its message first, one at a time when it names none of them (a shortened message).
fn known_only(
    ids: &[String],
    describe: &mut dyn FnMut(&[String]) -> Result<Vec<Instance>>,
) -> Result<Vec<Instance>> {
    let mut asking = ids.to_vec();
    let mut unknown: Vec<String> = Vec::new();
    let mut found = Vec::new();
    while !asking.is_empty() {
        match describe(&asking) {
            Ok(instances) => {
                found = instances;
                break;
            }
            Err(Error::Aws { code, message, .. }) if code == NOT_FOUND => {
                let named = ids_in_message(&message);
                let (missing, rest): (Vec<String>, Vec<String>) =
                    asking.into_iter().partition(|id| named.contains(id));
                if !missing.is_empty() {
                    unknown.extend(missing);
                    asking = rest;
                    continue;
                }
                for id in rest {
                    match describe(std::slice::from_ref(&id)) {
                        Ok(instances) => found.extend(instances),
                        Err(Error::Aws { code, .. }) if code == NOT_FOUND => unknown.push(id),
                        Err(e) => return Err(e),
                    }
                }
                break;
            }
            Err(e) => return Err(e),
        }
    }
    if !unknown.is_empty() {
        log::info!(
            "EC2 does not know {} yet (launched moments ago): no address until it does",
            unknown.join(", ")
        );
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_by_family() {
        // fixtures/ec2/describe-instances-ipv6.xml names its source: a dual-stack instance,
        // an IPv6-only one, and one whose address is only in its primary interface (device
        // 0), marked primary among two.
        let body = std::fs::read_to_string("fixtures/ec2/describe-instances-ipv6.xml").unwrap();
        let addresses = |family| -> Vec<String> {
            let (instances, _) = parse_instances_page(&body, family).unwrap();
            instances.into_iter().map(|i| i.private_ip).collect()
        };
        assert_eq!(
            addresses(AddressFamily::Ipv4),
            ["10.0.1.15", "2a05:d018:1:2f01::16", "2a05:d018:1:2f02::17"]
        );
        assert_eq!(
            addresses(AddressFamily::Ipv6),
            [
                "2a05:d018:1:2f00::15",
                "2a05:d018:1:2f01::16",
                "2a05:d018:1:2f02::17"
            ]
        );
    }

    #[test]
    fn reservations_and_next_token() {
        let body = std::fs::read_to_string("fixtures/ec2/describe-instances.xml").unwrap();
        let (instances, token) = parse_instances_page(&body, AddressFamily::Ipv4).unwrap();
        assert_eq!(token.as_deref(), Some("eyJ2IjoiMiIsImMiOiJFWEFNUExFIn0="));
        let ids: Vec<&str> = instances.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "i-0a1b2c3d4e5f60718",
                "i-0b2c3d4e5f6071829",
                "i-0c3d4e5f607182930"
            ]
        );
        assert_eq!(instances[0].private_ip, "10.0.1.15");
        assert_eq!(
            instances[0].private_dns,
            "ip-10-0-1-15.eu-west-1.compute.internal"
        );
        assert_eq!(
            instances[2].private_ip, "",
            "a terminated instance has no address"
        );
    }

    #[test]
    fn not_found_ids_in_ec2_messages() {
        let cases: [(&str, &[&str]); 4] = [
            (
                "The instance ID 'i-0a1b2c3d4e5f60718' does not exist",
                &["i-0a1b2c3d4e5f60718"],
            ),
            (
                "The instance IDs 'i-0a1b2c3d4e5f60718, i-0b2c3d4e5f6071829' do not exist",
                &["i-0a1b2c3d4e5f60718", "i-0b2c3d4e5f6071829"],
            ),
            ("Invalid id: \"i-xyz\"", &[]),
            ("", &[]),
        ];
        for (message, ids) in cases {
            assert_eq!(ids_in_message(message), ids, "failed testcase: {message}");
        }
    }

    fn instance(id: &str) -> Instance {
        Instance {
            id: id.into(),
            private_ip: "10.0.0.1".into(),
            private_dns: String::new(),
            launch_time: String::new(),
        }
    }

    /// A DescribeInstances that knows only `known` and answers the whole call NotFound
    /// otherwise, naming the unknown ids when `names_them`.
    fn ec2<'a>(
        known: &'static [&'static str],
        names_them: bool,
        calls: &'a mut Vec<Vec<String>>,
    ) -> impl FnMut(&[String]) -> Result<Vec<Instance>> + 'a {
        move |ids: &[String]| {
            calls.push(ids.to_vec());
            let unknown: Vec<&str> = ids
                .iter()
                .map(String::as_str)
                .filter(|id| !known.contains(id))
                .collect();
            if unknown.is_empty() {
                return Ok(ids.iter().map(|id| instance(id)).collect());
            }
            let message = if names_them {
                format!("The instance IDs '{}' do not exist", unknown.join(", "))
            } else {
                "The instance IDs 'i-0a1b2c3d4e5f60718, i-0b2c3d4e5f...' do not exist".into()
            };
            Err(Error::Aws {
                action: "DescribeInstances".into(),
                code: NOT_FOUND.into(),
                message,
                status: 400,
            })
        }
    }

    #[test]
    fn instances_ec2_does_not_know_yet_are_left_out() {
        // Regression: one just-launched id failed the whole DescribeInstances (exit 1).
        let ids: Vec<String> = ["i-1", "i-2", "i-3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut calls = Vec::new();
        let found = known_only(&ids, &mut ec2(&["i-1", "i-3"], true, &mut calls)).unwrap();
        assert_eq!(
            found.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            ["i-1", "i-3"]
        );
        assert_eq!(
            calls.len(),
            2,
            "asked again without the unknown id: {calls:?}"
        );

        // A message naming none of them: one at a time.
        let mut calls = Vec::new();
        let found = known_only(&ids, &mut ec2(&["i-2"], false, &mut calls)).unwrap();
        assert_eq!(
            found.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            ["i-2"]
        );
        assert_eq!(calls.len(), 4, "{calls:?}");

        // Nobody known yet: an empty answer, not an error.
        let mut calls = Vec::new();
        assert!(known_only(&ids, &mut ec2(&[], true, &mut calls))
            .unwrap()
            .is_empty());

        // Other errors pass through.
        let e = known_only(&ids, &mut |_| {
            Err(Error::Aws {
                action: "DescribeInstances".into(),
                code: "UnauthorizedOperation".into(),
                message: "no".into(),
                status: 403,
            })
        })
        .unwrap_err();
        assert!(e.to_string().contains("UnauthorizedOperation"));
    }

    #[test]
    fn last_page_has_no_token() {
        let body =
            std::fs::read_to_string("fixtures/ec2/describe-instances-last-page.xml").unwrap();
        let (instances, token) = parse_instances_page(&body, AddressFamily::Ipv4).unwrap();
        assert_eq!(token, None);
        assert_eq!(instances.len(), 1);
    }
}
