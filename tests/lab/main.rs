//! Lab tests: the tool against real etcd (Debian's 3.4, or 3.5 from `LAB_ETCD_DIR`) and moto
//! as AutoScaling and EC2, with an IMDS stub per simulated instance, all on loopback. Each
//! test has its own moto and its own 127.0.N.0/24. `./build.sh test` installs and points at
//! what they need; none of them skips (on 3.5 it leaves out the v2-only scenario and the
//! upgrade from 3.4 by name).

mod beside;
#[path = "../support/client.rs"]
mod client;
#[path = "../support/fake.rs"]
mod fake;
mod herd;
mod ipv6;
mod lab;
mod pools;
mod reboot;
mod restore;
mod rules;
mod safety;
mod snapshot;
mod status;
#[path = "../support/throttle.rs"]
mod throttle;
mod units;
mod versions;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use lab::{EtcdFlags, Lab, Profile};

const NO_TLS: &[String] = &[];

/// Bootstraps a cluster of the given nodes of group "etcd": runs the tool for each (all see
/// nobody answering), then starts every etcd, as an ASG's first boot does.
fn bootstrap(lab: &mut Lab, nodes: &[u8], flags: &EtcdFlags) {
    bootstrap_tls(lab, nodes, flags, NO_TLS);
}

fn bootstrap_tls(lab: &mut Lab, nodes: &[u8], flags: &EtcdFlags, etcdctl_tls: &[String]) {
    lab.create_group("etcd", "etcd-masters");
    for k in nodes {
        lab.launch("etcd", *k);
    }
    // As the boot units would: every instance's tool at once, and its etcd as soon as its
    // tool is done. The instance launched first bootstraps; the others take part in it.
    let running = nodes
        .iter()
        .map(|k| (*k, lab.discover_spawn(*k, &[])))
        .collect();
    lab.finish_and_start(running, flags);
    // One initial cluster: a node that looked after the others had formed it takes part in
    // it as a late initial member (`new`, rule 18), or joins it as `existing`, with the same
    // members.
    let first = lab.env_value(nodes[0], "ETCD_INITIAL_CLUSTER");
    for k in nodes {
        let state = lab.env_value(*k, "ETCD_INITIAL_CLUSTER_STATE");
        assert!(state == "new" || state == "existing", "{state}");
        assert_eq!(
            lab.env_value(*k, "ETCD_INITIAL_CLUSTER"),
            first,
            "one initial cluster"
        );
    }
    let seeds = nodes
        .iter()
        .filter(|k| {
            lab.discovery_log(**k)
                .contains("bootstrapping a new cluster")
        })
        .count();
    assert_eq!(
        seeds, 1,
        "only the instance launched first bootstraps from nothing"
    );
    for k in nodes {
        lab.wait_healthy(*k, etcdctl_tls);
    }
}

#[test]
fn bootstrap_reboot_replace_on_the_v3_gateway() {
    // Scenario 1: three instances boot at once; one cluster of three named by instance id.
    // etcd runs without --enable-v2: the tool must speak the v3 gateway (scenario 7, v3).
    let mut lab = Lab::new(31);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    lab.assert_cluster_is_the_nodes(2, NO_TLS);
    // Every `new` file names the group's one token (a node that joined as `existing` needs
    // none).
    let tokens: Vec<String> = [2, 3, 4]
        .iter()
        .filter(|k| lab.env_value(**k, "ETCD_INITIAL_CLUSTER_STATE") == "new")
        .map(|k| lab.env_value(*k, "ETCD_INITIAL_CLUSTER_TOKEN"))
        .collect();
    assert!(
        tokens.iter().all(|t| t == &tokens[0]),
        "one token for the group: {tokens:?}"
    );

    // Scenario 3: a healthy member reboots; nothing changes.
    let before = lab.members(2, NO_TLS);
    let log = lab.discover_ok(3, &[]);
    assert!(log.contains("nothing to change"), "{log}");
    assert_eq!(lab.env_value(3, "ETCD_INITIAL_CLUSTER_STATE"), "existing");
    assert_eq!(lab.members(2, NO_TLS), before);

    // Scenario 2: instance 4 is terminated; instance 5 replaces it and joins.
    lab.terminate(4);
    lab.launch("etcd", 5);
    let log = lab.discover_ok(5, &[]);
    assert!(log.contains("removing member"), "{log}");
    assert_eq!(lab.env_value(5, "ETCD_INITIAL_CLUSTER_STATE"), "existing");
    lab.start_etcd(5, &EtcdFlags::default());
    lab.wait_healthy(5, NO_TLS);
    lab.assert_cluster_is_the_nodes(2, NO_TLS);
}

#[test]
fn scale_up_three_to_five_over_v2() {
    // Scenario 4 (and 7, v2): etcd with --enable-v2, the tool told to use v2; two new nodes
    // join one after the other.
    let mut lab = Lab::new(32);
    let v2 = EtcdFlags {
        args: vec!["--enable-v2".into()],
        ..Default::default()
    };
    bootstrap(&mut lab, &[2, 3, 4], &v2);
    for k in [5, 6] {
        lab.launch("etcd", k);
        let log = lab.discover_ok(k, &["--etcd-api=v2"]);
        assert!(log.contains("adding this instance"), "{log}");
        lab.start_etcd(k, &v2);
        lab.wait_healthy(k, NO_TLS);
    }
    lab.assert_cluster_is_the_nodes(3, NO_TLS);
    assert_eq!(lab.members(3, NO_TLS).len(), 5);
}

#[test]
fn proxy_node_reaches_the_cluster_through_etcd_gateway() {
    // Scenario 5: a consumer group's instance in proxy mode; `etcd gateway` started from its
    // file serves a put and a get.
    let mut lab = Lab::new(33);
    bootstrap(&mut lab, &[2, 3, 4], &EtcdFlags::default());
    lab.create_group("consumers", "consumers");
    lab.launch("consumers", 9);
    let log = lab.discover_ok(9, &["-proxy-mode", "-scaling-group-name=etcd"]);
    assert!(log.contains("proxy for the 3 members"), "{log}");
    assert_eq!(lab.env_value(9, "ETCD_PROXY"), "on");
    let endpoints = lab.env_value(9, "ETCD_ENDPOINTS");
    assert_eq!(
        endpoints,
        "http://127.0.33.2:2379,http://127.0.33.3:2379,http://127.0.33.4:2379"
    );

    // As a unit would: EnvironmentFile= plus `etcd gateway start --endpoints=${ETCD_ENDPOINTS}`.
    let listen = format!("{}:23790", lab.ip(9));
    let gateway_log = fs::File::create(lab.node_dir(9).join("gateway.log")).unwrap();
    let child = lab::etcd_tool("etcd")
        .env_clear()
        .envs(lab.env_of(9))
        .args([
            "gateway",
            "start",
            &format!("--endpoints={endpoints}"),
            &format!("--listen-addr={listen}"),
        ])
        .stdout(gateway_log.try_clone().unwrap())
        .stderr(gateway_log)
        .spawn()
        .unwrap();
    let _gateway = lab::Guard {
        child,
        what: "gateway".into(),
    };
    let etcdctl = |args: &[&str]| {
        lab::etcd_tool("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &listen, "--dial-timeout=2s"])
            .args(args)
            .output()
            .unwrap()
    };
    lab::wait_until(
        "the gateway to serve a put",
        std::time::Duration::from_secs(20),
        || etcdctl(&["put", "greeting", "hello"]).status.success(),
    );
    let got = etcdctl(&["get", "greeting", "--print-value-only"]);
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "hello");
}

/// A CA, a certificate per node (server and client use, IP SAN), and a client certificate.
fn make_certificates(dir: &Path, ips: &[String]) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=lab-ca",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "other-ca.key",
                "-out",
                "other-ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=other-ca",
            ],
        ]
        .concat(),
    );
    // 127.0.0.1 too: on loopback a peer connects *from* 127.0.0.1, and etcd checks the peer's
    // client certificate against that source address. On a real network the two are one.
    let mut names: Vec<(String, String)> = ips
        .iter()
        .map(|ip| {
            (
                ip.clone(),
                format!(
                    "subjectAltName=IP:{ip},IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"
                ),
            )
        })
        .collect();
    names.push(("client".into(), "extendedKeyUsage=clientAuth\n".into()));
    // A client certificate from a CA the members do not trust.
    names.push(("stranger".into(), "extendedKeyUsage=clientAuth\n".into()));
    for (name, ext) in names {
        let ca = if name == "stranger" { "other-ca" } else { "ca" };
        fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        openssl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    &format!("/CN={name}"),
                ],
            ]
            .concat(),
        );
        openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &format!("{name}.pem"),
            "-extfile",
            &format!("{name}.ext"),
        ]);
    }
}

#[test]
fn tls_on_client_and_peer_ports_with_client_certificates() {
    // Scenario 6: https everywhere, client certificates required; the third node joins through
    // the TLS member API with --etcd-ca-file/--etcd-cert-file/--etcd-key-file.
    let mut lab = Lab::new(34);
    let pki = lab.dir.join("pki");
    fs::create_dir_all(&pki).unwrap();
    let ips: Vec<String> = [2, 3, 4].iter().map(|k| lab.ip(*k)).collect();
    make_certificates(&pki, &ips);
    let p = |f: &str| pki.join(f).display().to_string();
    lab.tool_args = vec![
        "-private-addresses".into(),
        "--listen-localhost=false".into(),
        format!("--etcd-ca-file={}", p("ca.pem")),
        format!("--etcd-cert-file={}", p("client.pem")),
        format!("--etcd-key-file={}", p("client.key")),
    ];
    let etcdctl_tls = vec![
        format!("--cacert={}", p("ca.pem")),
        format!("--cert={}", p("client.pem")),
        format!("--key={}", p("client.key")),
    ];
    let flags_for = |k: u8| EtcdFlags {
        args: vec![
            format!("--cert-file={}", p(&format!("127.0.34.{k}.pem"))),
            format!("--key-file={}", p(&format!("127.0.34.{k}.key"))),
            format!("--trusted-ca-file={}", p("ca.pem")),
            "--client-cert-auth".into(),
            format!("--peer-cert-file={}", p(&format!("127.0.34.{k}.pem"))),
            format!("--peer-key-file={}", p(&format!("127.0.34.{k}.key"))),
            format!("--peer-trusted-ca-file={}", p("ca.pem")),
            "--peer-client-cert-auth".into(),
        ],
        ..Default::default()
    };
    lab.create_group("etcd", "etcd-masters");
    for k in [2, 3] {
        lab.launch("etcd", k);
    }
    // Both tools at once: the second takes part in the bootstrap through the first's peer
    // port, over TLS with its client certificate.
    let running = [2, 3].map(|k| (k, lab.discover_spawn(k, &[]))).into();
    lab.finish_and_start_with(running, flags_for);
    for k in [2, 3] {
        assert!(lab
            .env_value(k, "ETCD_INITIAL_CLUSTER")
            .contains("https://127.0.34.3:2380"));
    }
    for k in [2, 3] {
        lab.wait_healthy(k, &etcdctl_tls);
    }

    lab.launch("etcd", 4);
    // A CA that did not sign the members' certificates: the peers are there but untrusted.
    // That must fail loudly, never look like "nobody answered" and bootstrap a second cluster.
    let wrong = lab.discover(4, &[&format!("--etcd-ca-file={}", p("other-ca.pem"))]);
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(
        wrong.status.code(),
        Some(1),
        "a certificate problem is not worth a retry: {err}"
    );
    let line = err
        .lines()
        .find(|l| l.contains("error:"))
        .unwrap_or_default();
    assert!(
        line.contains("invalid peer certificate") && line.contains("--etcd-ca-file"),
        "names the certificate problem: {err}"
    );
    assert!(!lab.env_file(4).exists(), "no file written");

    // Issue 10: our client certificate missing, or from a CA the members do not trust. TLS 1.3
    // ends in the server's alert or, about half the time, a broken pipe: either way somebody
    // is there, and a second cluster must never come of it. 20 runs of each.
    let with_cert = lab.tool_args.clone();
    let refused = [
        ("no client certificate", vec![]),
        (
            "a client certificate from another CA",
            vec![
                format!("--etcd-cert-file={}", p("stranger.pem")),
                format!("--etcd-key-file={}", p("stranger.key")),
            ],
        ),
    ];
    for (case, cert) in refused {
        lab.tool_args = vec![
            "-private-addresses".into(),
            "--listen-localhost=false".into(),
            format!("--etcd-ca-file={}", p("ca.pem")),
        ];
        lab.tool_args.extend(cert);
        let lab = &lab;
        let runs: Vec<Output> = std::thread::scope(|scope| {
            let runs: Vec<_> = (0..20)
                .map(|_| scope.spawn(|| lab.discover(4, &["--wait-timeout=1s"])))
                .collect();
            runs.into_iter().map(|r| r.join().unwrap()).collect()
        });
        for out in runs {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                matches!(out.status.code(), Some(1) | Some(75)),
                "{case}: {err}"
            );
            assert!(!err.contains("bootstrapping a new"), "{case}: {err}");
            if out.status.code() == Some(1) {
                assert!(
                    err.contains("--etcd-cert-file"),
                    "{case}: names our certificate: {err}"
                );
            }
        }
        assert!(!lab.env_file(4).exists(), "{case}: no file written");
    }
    lab.tool_args = with_cert;

    let log = lab.discover_ok(4, &[]);
    assert!(log.contains("adding this instance"), "{log}");
    lab.start_etcd(4, &flags_for(4));
    lab.wait_healthy(4, &etcdctl_tls);
    lab.assert_cluster_is_the_nodes(2, &etcdctl_tls);
}

/// The IAM policy the README documents, taken from the README itself so they cannot drift.
fn readme_policy() -> String {
    let readme = fs::read_to_string("README.md").unwrap();
    let section = readme
        .split("## IAM policy")
        .nth(1)
        .expect("README has an IAM policy section");
    let block = section
        .split("```json")
        .nth(1)
        .expect("a json block")
        .split("```")
        .next()
        .unwrap();
    block.trim().to_string()
}

#[test]
fn signatures_are_really_checked() {
    // Scenario 8: moto verifies every signature after the setup calls, against an IAM user
    // holding exactly the README's policy. All setup happens within the free calls.
    // 3 in Lab::with_moto, 3 for S3, 4 for IAM, 1 group, 2 per launch.
    const SETUP_CALLS: u32 = 17;
    let mut lab = Lab::with_moto(35, Some(SETUP_CALLS));
    // moto checks S3 against IAM too: a bucket holding one snapshot whose checksum does not
    // match, so that a restore lists, reads both objects, and stops before etcd's tool.
    let object = "etcd/etcd-snapshot-20260101T000000Z-r1.db";
    let sum = format!("{}  etcd-snapshot-20260101T000000Z-r1.db\n", "0".repeat(64));
    for (path, body) in [
        ("sig-bucket".to_string(), None),
        (format!("sig-bucket/{object}"), Some("not the database")),
        (format!("sig-bucket/{object}.sha256"), Some(sum.as_str())),
    ] {
        let mut curl = Command::new("curl");
        curl.args(["-sS", "--fail", "--max-time", "20", "-X", "PUT"])
            .args(["-H", "Authorization: AWS4-HMAC-SHA256 Credential=AKIDLABSETUP/20261124/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0"])
            .arg(format!("{}/{path}", lab.moto.url));
        // Not curl's default form type: moto would store the form it parsed, empty.
        if let Some(body) = body {
            curl.args(["-H", "Content-Type: application/octet-stream"])
                .args(["--data-binary", body]);
        }
        let out = curl.output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    lab.moto
        .call("iam", "CreateUser", &[("UserName", "etcd-discovery")]);
    let key = lab
        .moto
        .call("iam", "CreateAccessKey", &[("UserName", "etcd-discovery")]);
    let (id, secret) = (
        client::xml_text(&key, "AccessKeyId").unwrap(),
        client::xml_text(&key, "SecretAccessKey").unwrap(),
    );
    let policy = lab.moto.call(
        "iam",
        "CreatePolicy",
        &[
            ("PolicyName", "etcd-discovery"),
            (
                "PolicyDocument",
                &readme_policy()
                    .replace("BUCKET/PREFIX", "sig-bucket/etcd")
                    .replace("arn:aws:s3:::BUCKET\"", "arn:aws:s3:::sig-bucket\""),
            ),
        ],
    );
    let arn = client::xml_text(&policy, "Arn").unwrap();
    lab.moto.call(
        "iam",
        "AttachUserPolicy",
        &[("UserName", "etcd-discovery"), ("PolicyArn", &arn)],
    );
    lab.create_group("etcd", "etcd-masters");
    lab.launch("etcd", 2);
    // moto's launch times have whole seconds: node 2 is launched first, the seed, for sure.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // Nodes 3 and 4 get the keys as their instance profile, served by their IMDS stubs.
    lab.profile = Some(Profile {
        access_key_id: id.clone(),
        secret_access_key: secret.clone(),
    });
    lab.launch("etcd", 3);
    lab.profile = Some(Profile {
        access_key_id: id.clone(),
        secret_access_key: "wrong".into(),
    });
    lab.launch("etcd", 4);

    fs::write(lab.env_file(2), "OLD=1\n").unwrap();
    let wrong = lab.discover_with_env(
        2,
        &[],
        &[
            ("AWS_ACCESS_KEY_ID", &id),
            ("AWS_SECRET_ACCESS_KEY", "not-the-secret"),
        ],
    );
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(1), "{err}");
    assert!(err.contains("check the access key and secret"), "{err}");
    assert_eq!(
        fs::read_to_string(lab.env_file(2)).unwrap(),
        "OLD=1\n",
        "old file untouched"
    );

    // The seed's restore on total loss: HeadBucket and ListObjectsV2 (s3:ListBucket), two
    // GetObjects (s3:GetObject) pass with the README's policy; the checksum then stops it.
    let restore = lab.discover_with_env(
        2,
        &["--snapshot-url=s3://sig-bucket/etcd", "--wait-timeout=1s"],
        &[
            ("AWS_ACCESS_KEY_ID", &id),
            ("AWS_SECRET_ACCESS_KEY", &secret),
        ],
    );
    let err = String::from_utf8_lossy(&restore.stderr);
    assert_eq!(restore.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "s3://sig-bucket/{object} does not match its checksum"
        )),
        "{err}"
    );

    // Signed right, every AWS call passes: the group is described and a decision taken
    // (to bootstrap, or to wait for the instance launched first).
    let passed = |out: &std::process::Output| {
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        let decided = out.status.success() || log.contains("(launched first) bootstraps");
        assert!(
            decided && log.contains("group(s) etcd: 3 counted instances"),
            "{log}"
        );
        log
    };
    passed(&lab.discover_with_env(
        2,
        &["--wait-timeout=1s"],
        &[
            ("AWS_ACCESS_KEY_ID", &id),
            ("AWS_SECRET_ACCESS_KEY", &secret),
        ],
    ));

    lab.tool_env.clear();
    let log = passed(&lab.discover(3, &["-v=2", "--wait-timeout=1s"]));
    assert!(log.contains("instance profile credentials"), "{log}");
    let out = lab.discover(4, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!lab.env_file(4).exists());
}
