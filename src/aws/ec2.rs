//! EC2 (API 2016-11-15): the private addresses of the group's instances.

use serde::Deserialize;

use super::query::{paginate, parse_xml, QueryClient};
use crate::error::Result;
use crate::model::Instance;

pub const VERSION: &str = "2016-11-15";

/// DescribeInstances takes many ids, but a bounded request is kinder to the API.
const IDS_PER_CALL: usize = 100;

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
    #[serde(default)]
    private_dns_name: Option<String>,
}

/// Parses one DescribeInstances page.
pub fn parse_instances_page(body: &str) -> Result<(Vec<Instance>, Option<String>)> {
    let r: DescribeInstancesResponse = parse_xml("DescribeInstances", body)?;
    let instances = r
        .reservation_set
        .item
        .into_iter()
        .flat_map(|reservation| reservation.instances_set.item)
        .map(|i| Instance {
            id: i.instance_id,
            private_ip: i.private_ip_address.unwrap_or_default().trim().to_string(),
            private_dns: i.private_dns_name.unwrap_or_default().trim().to_string(),
        })
        .collect();
    Ok((instances, r.next_token))
}

/// Addresses of these instances, every page of every chunk.
pub fn describe_instances(client: &QueryClient, ids: &[String]) -> Result<Vec<Instance>> {
    let mut all = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_CALL) {
        all.extend(paginate("DescribeInstances", |token| {
            let mut params: Vec<(String, String)> = chunk
                .iter()
                .enumerate()
                .map(|(i, id)| (format!("InstanceId.{}", i + 1), id.clone()))
                .collect();
            if let Some(t) = token {
                params.push(("NextToken".into(), t.into()));
            }
            parse_instances_page(&client.call("DescribeInstances", &params)?)
        })?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_and_next_token() {
        let body = std::fs::read_to_string("fixtures/ec2/describe-instances.xml").unwrap();
        let (instances, token) = parse_instances_page(&body).unwrap();
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
    fn last_page_has_no_token() {
        let body =
            std::fs::read_to_string("fixtures/ec2/describe-instances-last-page.xml").unwrap();
        let (instances, token) = parse_instances_page(&body).unwrap();
        assert_eq!(token, None);
        assert_eq!(instances.len(), 1);
    }
}
