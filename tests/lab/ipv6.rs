//! An IPv6-only group (issue 22): three instances form a cluster and one is replaced, with
//! no IPv4 address anywhere: moto, the lab's AWS side, the metadata stubs at
//! `[fd00:ec2::254]` and every etcd listen on IPv6 addresses of a network namespace's
//! loopback. The test runs itself again inside a namespace of its own (`unshare --net`), so
//! the addresses it adds never reach the host, whatever namespace the suite runs in.

use std::process::Command;

use super::client::request;
use super::lab::{EtcdFlags, Lab, V6_IMDS, V6_MOTO};
use super::{bootstrap, NO_TLS};

/// Set in the namespace the test runs itself in.
const INSIDE: &str = "LAB_IPV6_INSIDE";

/// Runs `test` (this module's test of that name) again inside a new network namespace whose
/// loopback holds the lab's IPv6 addresses; true when this is that run.
fn inside_own_namespace(test: &str, hosts: &[u8]) -> bool {
    if std::env::var_os(INSIDE).is_some() {
        return true;
    }
    let mut addresses = vec![V6_MOTO.to_string(), V6_IMDS.to_string()];
    addresses.extend(hosts.iter().map(|k| format!("fd00:ec2:1::{k}")));
    let script = format!(
        "ip link set lo up && for a in {}; do ip -6 addr add \"$a/128\" dev lo nodad || exit 1; done && exec \"$0\" \"$@\"",
        addresses.join(" ")
    );
    let status = Command::new("unshare")
        .args(["--net", "--", "sh", "-c", &script])
        .arg(std::env::current_exe().unwrap())
        .args([&format!("ipv6::{test}"), "--exact", "--test-threads=1"])
        .env(INSIDE, "1")
        .status()
        .expect("run unshare");
    assert!(status.success(), "the test inside its namespace failed");
    false
}

#[test]
fn an_ipv6_only_cluster_forms_and_replaces_a_member() {
    if !inside_own_namespace(
        "an_ipv6_only_cluster_forms_and_replaces_a_member",
        &[2, 3, 4, 5],
    ) {
        return;
    }
    let mut lab = Lab::ipv6_only(82);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    lab.assert_cluster_is_the_nodes(2, NO_TLS);
    for (key, value) in [
        ("ETCD_LISTEN_PEER_URLS", "http://[fd00:ec2:1::2]:2380"),
        ("ETCD_LISTEN_CLIENT_URLS", "http://[fd00:ec2:1::2]:2379"),
        ("ETCD_ADVERTISE_CLIENT_URLS", "http://[fd00:ec2:1::2]:2379"),
    ] {
        assert_eq!(lab.env_value(2, key), value, "{key}");
    }
    // The lab's AWS side answers DescribeInstances in EC2's IPv6-only shape (moto alone
    // would put the address in privateIpAddress).
    let id = lab.nodes[&2].instance_id.clone();
    let auth = "AWS4-HMAC-SHA256 Credential=AKIDLAB/20261124/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0";
    let (status, described) = request(
        "POST",
        &format!("{}/", lab.aws_url()),
        &[
            ("Authorization", auth),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &format!("Action=DescribeInstances&Version=2016-11-15&InstanceId.1={id}"),
    )
    .unwrap();
    assert_eq!(status, 200, "{described}");
    assert!(
        described.contains("<ipv6Address>fd00:ec2:1::2</ipv6Address>"),
        "{described}"
    );
    assert!(!described.contains("<privateIpAddress>"), "{described}");
    assert!(
        described.contains(&format!(
            "<privateDnsName>{id}.ec2.internal</privateDnsName>"
        )),
        "{described}"
    );
    assert!(
        lab.env_value(3, "ETCD_INITIAL_CLUSTER")
            .contains("=http://[fd00:ec2:1::3]:2380"),
        "peers by their IPv6 addresses from EC2's ipv6Address"
    );

    // Instance 4 is replaced by 5, whose tool finds IMDS by --imds-endpoint-mode=IPv6 alone
    // (port 80 of [fd00:ec2::254]).
    lab.terminate(4);
    lab.launch("etcd", 5);
    lab.move_imds_to_port(5, 80);
    let mut command = lab.discover_command(5, &["--imds-endpoint-mode=IPv6"]);
    command.env_remove("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    let out = command.output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("removing member"), "{log}");
    assert!(
        log.contains("this is i-") && log.contains("(fd00:ec2:1::5"),
        "{log}"
    );
    assert_eq!(lab.env_value(5, "ETCD_INITIAL_CLUSTER_STATE"), "existing");
    lab.start_etcd(5, &EtcdFlags::default());
    lab.wait_healthy(5, NO_TLS);
    lab.assert_cluster_is_the_nodes(2, NO_TLS);
}
