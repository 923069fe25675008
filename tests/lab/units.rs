//! etcd units as operators have them: one that passes its listen and advertise URLs as
//! flags, as the seed tools' units did, must get a file without them (etcd refuses a flag
//! that shadows a variable). The default form (every variable, no flags) is every other test.

use std::fs;
use std::time::Duration;

use super::lab::{self, wait_until, EtcdFlags};
use super::{bootstrap, Lab, NO_TLS};

#[test]
fn a_unit_passing_url_flags_starts_from_the_seed_form() {
    let mut lab = Lab::new(55);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    lab.launch("etcd", 5);
    let ip = lab.ip(5);
    let url_flags = EtcdFlags {
        args: vec![
            format!("--listen-client-urls=http://{ip}:2379"),
            format!("--advertise-client-urls=http://{ip}:2379"),
            format!("--listen-peer-urls=http://{ip}:2380"),
            format!("--initial-advertise-peer-urls=http://{ip}:2380"),
        ],
        ..Default::default()
    };

    // The full file beside those flags: etcd stops at once (the file from --dry-run, so the
    // cluster is not touched).
    let out = lab.discover(5, &["--dry-run"]);
    assert!(out.status.success());
    let full: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(full.iter().any(|(k, _)| k == "ETCD_LISTEN_CLIENT_URLS"));
    let mut refused = lab.spawn_etcd(5, full, &url_flags);
    wait_until(
        "etcd to refuse the shadowed variables",
        Duration::from_secs(20),
        || refused.child.try_wait().is_ok_and(|s| s.is_some()),
    );
    let log = fs::read_to_string(lab.node_dir(5).join("etcd.log")).unwrap();
    assert!(
        log.contains("shadowed by corresponding command-line flag"),
        "{log}"
    );

    // The seed form: name, initial cluster, its state; etcd starts and joins.
    let log = lab.discover_ok(5, &["--url-variables=false"]);
    assert!(log.contains("adding this instance"), "{log}");
    let keys: Vec<String> = lab.env_of(5).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "ETCD_NAME",
            "ETCD_INITIAL_CLUSTER_STATE",
            "ETCD_INITIAL_CLUSTER"
        ],
        "{keys:?}"
    );
    lab.start_etcd(5, &url_flags);
    let endpoint = format!("http://{ip}:2379");
    wait_until("etcd 5 healthy", Duration::from_secs(30), || {
        lab::etcd_tool("etcdctl")
            .env("ETCDCTL_API", "3")
            .args([
                "--endpoints",
                &endpoint,
                "--dial-timeout=1s",
                "endpoint",
                "health",
            ])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    lab.assert_cluster_is_the_nodes(2, NO_TLS);
}
