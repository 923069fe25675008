//! Everything the tool reads, fed something wrong: each case must end in one clear error
//! line, the documented exit code, no panic, no membership change and the previous env file
//! untouched.

use std::fs;
use std::time::{Duration, Instant};

use super::world::{EtcdApi, EtcdFault, Imds, World};
use super::{assert_failure, group, stderr};

const OLD: &str = "OLD=1\n";

fn world(net: u8, imds: Imds) -> World {
    let w = World::new(net, 2, vec![group("etcd", &[2])], None, vec![], imds);
    fs::write(w.env_file(), OLD).unwrap();
    w
}

fn assert_untouched(w: &World) {
    assert_eq!(
        fs::read_to_string(w.env_file()).unwrap(),
        OLD,
        "the previous env file must stay"
    );
}

#[test]
fn aws_answers_that_make_no_sense() {
    let w = world(60, Imds::v2());
    let error_response = |code: &str| {
        format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>says AWS</Message></Error><RequestId>x</RequestId></ErrorResponse>")
    };
    let huge = format!(
        "<DescribeAutoScalingInstancesResponse>{}</DescribeAutoScalingInstancesResponse>",
        "x".repeat(5 << 20)
    );
    let cases: Vec<(u16, String, i32, &str)> = vec![
        (200, String::new(), 1, "unreadable answer"),
        (
            200,
            "<DescribeAutoScalingInstancesResponse><DescribeAutoScal".into(),
            1,
            "unreadable answer",
        ),
        (
            200,
            error_response("AccessDenied"),
            1,
            "autoscaling:DescribeAutoScalingInstances",
        ),
        (
            400,
            error_response("ExpiredToken"),
            1,
            "refresh credentials",
        ),
        (
            403,
            error_response("SignatureDoesNotMatch"),
            1,
            "check the access key and secret",
        ),
        (200, huge, 1, "larger than"),
        (
            503,
            "<html><body><h1>503 Service Unavailable</h1></body></html>".into(),
            75,
            "HTTP status 503",
        ),
    ];
    for (status, body, code, needle) in cases {
        *w.aws_override.lock().unwrap() = Some((status, body));
        assert_failure(&w.run(&[]), code, needle);
        assert_untouched(&w);
    }
}

#[test]
fn an_aws_endpoint_that_accepts_and_never_answers() {
    let w = world(61, Imds::v2());
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let started = Instant::now();
    let out = w.run_with_env(&["--timeout=3s"], &[("AWS_ENDPOINT_URL", &url)]);
    assert_failure(&out, 75, "timed out");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "bounded by --timeout: {:?}",
        started.elapsed()
    );
    assert_untouched(&w);
}

#[test]
fn metadata_that_cannot_be_used() {
    let cases = [
        (
            Imds {
                v2: false,
                v1_refused: true,
                ..Imds::default()
            },
            "token rejected",
        ),
        (
            Imds {
                document: Some(
                    r#"{"instanceId":"i-1","region":"us-east-1","availabilityZone":"a"}"#.into(),
                ),
                ..Imds::v2()
            },
            "has no privateIp",
        ),
        (
            Imds {
                document: Some("<html>not json</html>".into()),
                ..Imds::v2()
            },
            "unreadable answer",
        ),
    ];
    for (n, (imds, needle)) in cases.into_iter().enumerate() {
        let w = world(62 + n as u8, imds);
        assert_failure(&w.run(&[]), 1, needle);
        assert_untouched(&w);
        assert!(
            w.aws_requests().is_empty(),
            "no AWS call without an identity"
        );
    }
}

#[test]
fn a_hostname_that_would_inject_lines_is_refused_before_any_change() {
    // A name with a newline would add a line to the env file (and run a command in `sh`).
    // This node goes by the name EC2 gives it (IMDS's only while EC2 does not know it yet,
    // which keeps it from joining); here EC2's answer carries the extra line. It is refused
    // before the member add, with the variable named.
    let w = World::new(
        66,
        4,
        vec![group("etcd", &[2, 4, 5])],
        Some((&[2, 5], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(3, true), w.member(5, true)];
    fs::write(w.env_file(), OLD).unwrap();
    // The peers' names resolve through a private /etc/hosts: a name that does not resolve
    // is no longer read as "nobody there".
    let hosts = w.dir.join("hosts");
    fs::write(
        &hosts,
        "127.0.66.2 ip-127-0-66-2.ec2.internal\n127.0.66.5 ip-127-0-66-5.ec2.internal\n127.0.0.1 localhost\n",
    )
    .unwrap();
    let aws = super::aws_behaviour::aws_with(&w, |_, (status, body)| {
        let named = "<privateDnsName>ip-127-0-66-4.ec2.internal</privateDnsName>";
        let injected =
            "<privateDnsName>ip-127-0-66-4.ec2.internal&#10;ETCD_INITIAL_CLUSTER_STATE=new</privateDnsName>";
        (status, body.replace(named, injected))
    });
    let mut command = w.command_by_hostname(&[]);
    command.env("AWS_ENDPOINT_URL", aws.url());
    let out = World::in_private_mounts(
        &command,
        &format!("/bin/mount --bind {} /etc/hosts", hosts.display()),
    )
    .output()
    .unwrap();
    assert_failure(&out, 1, "ETCD_INITIAL_CLUSTER");
    assert_untouched(&w);
    assert!(
        w.etcd_changes().is_empty(),
        "no membership change: {:?}",
        w.etcd_changes()
    );
}

#[test]
fn etcd_answers_that_cannot_be_trusted() {
    let cases: Vec<(EtcdFault, i32, &str)> = vec![
        (EtcdFault::List(500, r#"{"error":"etcdserver: request timed out","code":14}"#.into()), 75, "gave no member list"),
        (EtcdFault::List(200, "{\"members\":[{\"ID\":".into()), 1, "gave no member list"),
        (EtcdFault::List(200, r#"{"members":[{"ID":"1","name":"i-1","peerURLs":["http://a:2380"]},{"ID":"2","name":"i-1","peerURLs":["http://b:2380"]}]}"#.into()), 1, "two members are named"),
        (EtcdFault::List(200, r#"{"members":[{"ID":"99999999999999999999","peerURLs":["http://a:2380"]}]}"#.into()), 1, "not a uint64"),
    ];
    for (n, (fault, code, needle)) in cases.into_iter().enumerate() {
        let w = World::new(
            70 + n as u8,
            4,
            vec![group("etcd", &[2, 4])],
            Some((&[2], EtcdApi::V3)),
            vec![],
            Imds::v2(),
        );
        fs::write(w.env_file(), OLD).unwrap();
        *w.etcd_fault.lock().unwrap() = Some(fault);
        let out = w.run(&["--wait-timeout=1s"]);
        assert_failure(&out, code, needle);
        assert!(
            !stderr(&out).contains("bootstrapping a new cluster"),
            "a peer that answers badly is never 'nobody'"
        );
        assert_untouched(&w);
    }
}

#[test]
fn a_member_add_that_hangs_is_bounded() {
    let w = World::new(
        75,
        4,
        vec![group("etcd", &[2, 4, 5])],
        Some((&[2, 5], EtcdApi::V3)),
        vec![],
        Imds::v2(),
    );
    *w.members.lock().unwrap() = vec![w.member(2, true), w.member(5, true)];
    fs::write(w.env_file(), OLD).unwrap();
    *w.etcd_fault.lock().unwrap() = Some(EtcdFault::AddHangs);
    let started = Instant::now();
    assert_failure(&w.run(&["--timeout=4s"]), 75, "member add");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_untouched(&w);
}

#[test]
fn an_env_file_that_cannot_be_written() {
    let w = world(76, Imds::v2());
    // /proc is a directory no one can create files in, not even root.
    assert_failure(
        &w.run(&["-environment-file=/proc/etcd-peers"]),
        1,
        "cannot write /proc/etcd-peers",
    );
    // A file where the directory should be.
    let out = w.run(&[&format!(
        "-environment-file={}/etcd-peers/inner",
        w.dir.display()
    )]);
    assert_failure(&out, 1, "not a directory");
    assert_untouched(&w);
}

#[test]
fn flags_and_variables_that_are_wrong() {
    let w = world(77, Imds::v2());
    /// (arguments, environment, what the message must say)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&["-etcd-client-port=0"], &[], "port from 1 to 65535"),
        (&["-etcd-peer-port=70000"], &[], "port from 1 to 65535"),
        (&["-etcd-client-scheme=ftp"], &[], "http or https"),
        (
            &["-scaling-group-name", ""],
            &[],
            "1 to 255 printable characters",
        ),
        (
            &["--scaling-group-tag", "Name=etcd\nETCD_X=1"],
            &[],
            "printable",
        ),
        (&["--frobnicate"], &[], "unknown flag"),
        (&[], &[("PROXY_ASG", "bad\"name\n")], "printable"),
    ];
    for (args, env, needle) in cases {
        assert_failure(&w.run_with_env(args, env), 2, needle);
        assert_untouched(&w);
    }
}

#[test]
fn an_aws_endpoint_with_an_untrusted_certificate_is_refused() {
    // AWS endpoints are checked against the bundled web roots, whatever the host trusts:
    // a self-signed certificate (a man in the middle, a proxy) is refused, not retried.
    let w = world(78, Imds::v2());
    let dir = w.dir.join("pki");
    fs::create_dir_all(&dir).unwrap();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .current_dir(&dir)
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "cert.pem",
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
    ]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = std::process::Command::new("openssl")
        .current_dir(&dir)
        .args([
            "s_server",
            "-quiet",
            "-www",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
            "cert.pem",
            "-key",
            "key.pem",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Kill(server);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "openssl s_server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("https://127.0.0.1:{port}");
    let out = w.run_with_env(&[], &[("AWS_ENDPOINT_URL", &url)]);
    assert_failure(&out, 1, "certificate");
    assert_untouched(&w);
}

// Issue 23: AWS_CA_BUNDLE was ignored. A bundle that is missing, unreadable or holds no
// certificate is bad usage naming the file and the variable, before anything changes.
#[test]
fn a_bad_aws_ca_bundle_is_named() {
    let w = world(69, Imds::v2());
    let dir = w.env_file().parent().unwrap().to_path_buf();
    let empty = dir.join("empty.pem");
    fs::write(&empty, "").unwrap();
    let key_only = dir.join("key.pem");
    fs::write(
        &key_only,
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let missing = dir.join("missing.pem");
    for path in [&missing, &empty, &key_only] {
        let shown = path.display().to_string();
        let out = w.run_with_env(&[], &[("AWS_CA_BUNDLE", &shown)]);
        assert_failure(&out, 2, &shown);
        assert!(
            stderr(&out).contains("AWS_CA_BUNDLE"),
            "failed testcase {shown}: {}",
            stderr(&out)
        );
        assert_untouched(&w);
    }
}

// Issue 23: with a private CA (a TLS-inspecting proxy, VPC endpoints) every AWS call failed.
// An AWS endpoint whose certificate a test CA signed is refused without AWS_CA_BUNDLE and
// reached with it.
#[test]
fn aws_ca_bundle_trusts_a_private_ca() {
    use std::io::{Read, Write};
    use std::sync::Arc;
    let w = world(68, Imds::v2());
    let dir = w.env_file().parent().unwrap().join("ca");
    fs::create_dir_all(&dir).unwrap();
    let openssl = |args: &[&str]| {
        let ok = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(ok.success(), "openssl {args:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    fs::write(dir.join("ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);

    let pem = |name: &str| fs::read(dir.join(name)).unwrap();
    let certs = rustls::pki_types::pem::PemObject::pem_slice_iter(&pem("srv.pem"))
        .collect::<Result<Vec<rustls::pki_types::CertificateDer>, _>>()
        .unwrap();
    let key =
        <rustls::pki_types::PrivateKeyDer as rustls::pki_types::pem::PemObject>::from_pem_slice(
            &pem("srv.key"),
        )
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(tcp) = stream else { continue };
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
            let Ok(conn) = rustls::ServerConnection::new(server.clone()) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut buf = [0u8; 8192];
            if tls.read(&mut buf).unwrap_or(0) == 0 {
                continue;
            }
            let body = "<ErrorResponse><Error><Type>Sender</Type><Code>ReachedOverTls</Code><Message>private CA trusted</Message></Error><RequestId>x</RequestId></ErrorResponse>";
            let _ = write!(
                tls,
                "HTTP/1.1 400 Bad Request\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    let bundle = dir.join("ca.pem").display().to_string();
    let without = w.run_with_env(&[], &[("AWS_ENDPOINT_URL", &url)]);
    assert!(
        !stderr(&without).contains("ReachedOverTls"),
        "reached without the bundle: {}",
        stderr(&without)
    );
    assert_ne!(without.status.code(), Some(0));
    let with = w.run_with_env(
        &[],
        &[("AWS_ENDPOINT_URL", &url), ("AWS_CA_BUNDLE", &bundle)],
    );
    assert!(
        stderr(&with).contains("ReachedOverTls"),
        "not reached with the bundle: {}",
        stderr(&with)
    );
    // The same bundle named by the shared config's profile, as the AWS CLI reads it.
    let config = dir.join("config");
    fs::write(
        &config,
        format!("[default]\nregion = us-east-1\n\n[profile ops]\nca_bundle = {bundle}\n"),
    )
    .unwrap();
    let config = config.display().to_string();
    let from_config = w.run_with_env(
        &[],
        &[
            ("AWS_ENDPOINT_URL", &url),
            ("AWS_CONFIG_FILE", &config),
            ("AWS_PROFILE", "ops"),
        ],
    );
    assert!(
        stderr(&from_config).contains("ReachedOverTls"),
        "not reached with the shared config's ca_bundle: {}",
        stderr(&from_config)
    );
    let other_profile = w.run_with_env(
        &[],
        &[("AWS_ENDPOINT_URL", &url), ("AWS_CONFIG_FILE", &config)],
    );
    assert!(
        !stderr(&other_profile).contains("ReachedOverTls"),
        "the default profile names no bundle: {}",
        stderr(&other_profile)
    );
    // A bundle the config names that is not there: exit 2, naming where it was named.
    fs::write(
        dir.join("config"),
        "[default]\nca_bundle = /nonexistent/ca.pem\n",
    )
    .unwrap();
    let bad = w.run_with_env(
        &[],
        &[("AWS_ENDPOINT_URL", &url), ("AWS_CONFIG_FILE", &config)],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("/nonexistent/ca.pem")
            && stderr(&bad).contains("ca_bundle of profile default"),
        "{}",
        stderr(&bad)
    );
    assert_untouched(&w);
}

/// A CONNECT proxy on 127.0.0.1 that records each request's first line and tunnels it.
fn tiny_proxy() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(client) = stream else { continue };
            let log = log.clone();
            std::thread::spawn(move || {
                let _ = client.set_read_timeout(Some(Duration::from_secs(10)));
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    return;
                }
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(n) if n > 2 => {}
                        _ => break,
                    }
                }
                log.lock().unwrap().push(first.trim().to_string());
                let mut client = client;
                let target = first.split_whitespace().nth(1).unwrap_or("").to_string();
                let Ok(upstream) = TcpStream::connect(&target) else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                    return;
                };
                let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                let (mut a, mut b) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let mut up = upstream;
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut b, &mut a);
                    let _ = a.shutdown(std::net::Shutdown::Both);
                });
                let _ = std::io::copy(&mut reader, &mut up);
                let _ = up.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (url, seen)
}

// Issue 23: HTTPS_PROXY carries AWS calls only; IMDS and etcd go direct, and NO_PROXY hosts
// too.
#[test]
fn the_proxy_carries_aws_calls_only() {
    let w = world(67, Imds::v2());
    let (proxy, seen) = tiny_proxy();
    let aws = w.aws.url();
    let aws_host = aws.trim_start_matches("http://").to_string();
    let env = [
        ("HTTPS_PROXY", proxy.as_str()),
        ("HTTP_PROXY", proxy.as_str()),
    ];
    let _ = w.run_with_env(&[], &env);
    let lines = seen.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.contains(&aws_host)),
        "AWS did not go through the proxy: {lines:?}"
    );
    assert!(
        lines.iter().all(|l| l.contains(&aws_host)),
        "something else went through the proxy: {lines:?}"
    );
    seen.lock().unwrap().clear();
    let host = aws_host.split(':').next().unwrap().to_string();
    let _ = w.run_with_env(&[], &[env[0], env[1], ("NO_PROXY", host.as_str())]);
    assert_eq!(
        *seen.lock().unwrap(),
        Vec::<String>::new(),
        "NO_PROXY ignored"
    );
}
