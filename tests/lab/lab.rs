//! The lab: moto as AutoScaling/EC2, one IMDS stub and one real etcd per simulated instance,
//! all on loopback. Instance k of a lab lives at 127.0.N.k (its etcd on ports 2379/2380).
//! Every process is started by this file and stopped by PID when the lab is dropped; every
//! wait is bounded.

// Shared by several test binaries; each uses a different part.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client::{request, xml_text};
use super::fake::{FakeServer, Request};

const REGION: &str = "us-east-1";
const IMAGE: &str = "ami-03cf127a";

/// A child process killed (by PID, through its handle) and reaped on drop.
pub struct Guard {
    pub child: Child,
    /// For the reader of a failing test: which process this was.
    #[allow(dead_code)]
    pub what: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A peer that never finishes an answer: every request gets a status line and then one byte
/// of a header line a second, so an HTTP client with a per-read timeout (etcd's peer round
/// tripper: 5 s) waits as long as this runs. It answers only once the request is in: bytes
/// on a connection the client has not sent on yet are "unsolicited" to Go's client, which
/// drops the connection and fails the request that then takes it (etcd decided its version
/// without this peer, once, so). Dropped, it closes its connections within a second.
pub struct Trickle {
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

impl Trickle {
    pub fn start(ip: &str, port: u16) -> Trickle {
        let listener = std::net::TcpListener::bind((ip, port)).expect("bind the trickling peer");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let accepting = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut stream) = stream else { continue };
                let stop = accepting.clone();
                std::thread::spawn(move || {
                    if !request_read(&mut stream, &stop) {
                        return;
                    }
                    let head = b"HTTP/1.1 200 OK\r\nX-Slow: ".iter();
                    for byte in head.chain(std::iter::repeat(&b'a')) {
                        if stop.load(Ordering::SeqCst) || stream.write_all(&[*byte]).is_err() {
                            return;
                        }
                        std::thread::sleep(Duration::from_secs(1));
                    }
                });
            }
        });
        Trickle { stop, addr }
    }
}

/// Reads a request's head (to its blank line), waking every second to see `stop`; false when
/// the client closed, it never ended in 64 KiB, or the trickle stopped.
fn request_read(stream: &mut std::net::TcpStream, stop: &AtomicBool) -> bool {
    use std::io::Read;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if stop.load(Ordering::SeqCst) || head.len() > 64 * 1024 {
            return false;
        }
        match stream.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return false,
        }
    }
    true
}

impl Drop for Trickle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept, which then sees the flag.
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

/// Polls `check` every 100 ms until it holds or `limit` passes.
pub fn wait_until(what: &str, limit: Duration, check: impl FnMut() -> bool) {
    if !poll_until(limit, check) {
        panic!("timed out after {limit:?} waiting for {what}");
    }
}

/// Polls `check` every 100 ms; whether it held before `limit` passed.
pub fn poll_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

pub struct Moto {
    _guard: Guard,
    pub url: String,
}

impl Moto {
    /// Starts moto_server; `free_calls` turns on signature checks after that many calls.
    /// moto binds port 0 itself and prints the port it got: a port chosen here and bound
    /// later could be taken in between by a parallel test (regression: "moto CreateVpc:
    /// Connection reset by peer" with an empty moto.log).
    pub fn start(dir: &Path, free_calls: Option<u32>) -> Moto {
        Moto::start_on("127.0.0.1", dir, free_calls)
    }

    /// `start`, bound to `host` (an IPv6 address for the IPv6-only lab).
    pub fn start_on(host: &str, dir: &Path, free_calls: Option<u32>) -> Moto {
        let binary = std::env::var("LAB_MOTO_SERVER")
            .expect("LAB_MOTO_SERVER must name moto_server (./build.sh test sets it)");
        let log_path = dir.join("moto.log");
        let log = fs::File::create(&log_path).unwrap();
        let mut command = Command::new(binary);
        command
            .args(["-H", host, "-p", "0"])
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some(n) = free_calls {
            command.env("INITIAL_NO_AUTH_ACTION_COUNT", n.to_string());
        }
        let mut guard = Guard {
            child: command.spawn().expect("start moto_server"),
            what: "moto".into(),
        };
        // Read from its log, not probed with a request: in authenticating mode every
        // request counts.
        let mut port = None;
        wait_until("moto to say its port", Duration::from_secs(20), || {
            if let Ok(Some(status)) = guard.child.try_wait() {
                panic!(
                    "moto_server exited ({status}): {}",
                    fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            port = moto_port(&fs::read_to_string(&log_path).unwrap_or_default(), host);
            port.is_some()
        });
        let port = port.unwrap();
        wait_until("moto to listen", Duration::from_secs(20), || {
            std::net::TcpStream::connect((host, port)).is_ok()
        });
        Moto {
            _guard: guard,
            url: format!("http://{}:{port}", bracketed(host)),
        }
    }

    /// A setup call. moto routes by the credential scope; it does not check the signature
    /// unless told to, and setup calls stay within the free ones.
    pub fn call(&self, service: &str, action: &str, params: &[(&str, &str)]) -> String {
        let version = match service {
            "ec2" => "2016-11-15",
            "autoscaling" => "2011-01-01",
            "iam" => "2010-05-08",
            other => panic!("no version for {other}"),
        };
        let mut body = format!("Action={action}&Version={version}");
        for (k, v) in params {
            body.push_str(&format!("&{k}={}", encode(v)));
        }
        let auth = format!("AWS4-HMAC-SHA256 Credential=AKIDLABSETUP/20261124/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0");
        let (status, answer) = request(
            "POST",
            &format!("{}/", self.url),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            &body,
        )
        .unwrap_or_else(|e| panic!("moto {action}: {e}"));
        assert!(status < 300, "moto {action}: HTTP {status}: {answer}");
        answer
    }
}

/// An address as it goes in a URL: IPv6 in brackets.
pub fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// The port in werkzeug's " * Running on http://HOST:PORT" line (`[HOST]` for IPv6).
fn moto_port(log: &str, host: &str) -> Option<u16> {
    let prefix = format!("Running on http://{}:", bracketed(host));
    let rest = &log[log.find(&prefix)? + prefix.len()..];
    let end = rest.find(|c: char| !c.is_ascii_digit())?; // the whole line, not part of it
    rest[..end].parse().ok().filter(|&p| p != 0)
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Credentials an IMDS stub hands out as the instance profile.
#[derive(Clone)]
pub struct Profile {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// Where AutoScaling is taking an instance, as its IMDS stub answers
/// `meta-data/autoscaling/target-lifecycle-state`; a test changes it as AutoScaling would.
pub type Target = Arc<Mutex<String>>;

/// An IMDSv2 stub for one instance in service.
pub fn start_imds(instance_id: &str, ip: &str, profile: Option<Profile>) -> FakeServer {
    start_imds_targeted(
        instance_id,
        ip,
        profile,
        Arc::new(Mutex::new("InService".into())),
    )
}

/// An IMDSv2 stub for one instance headed for `target`.
pub fn start_imds_targeted(
    instance_id: &str,
    ip: &str,
    profile: Option<Profile>,
    target: Target,
) -> FakeServer {
    start_imds_at(("127.0.0.1", 0), instance_id, ip, profile, target)
}

/// An IMDSv2 stub listening at `at`. An instance whose `ip` is IPv6 is one of an IPv6-only
/// subnet (EC2 User Guide, "Instance metadata categories"): no `privateIp` in its identity
/// document, its address in `meta-data/ipv6`, a resource-based `local-hostname`.
pub fn start_imds_at(
    at: (&str, u16),
    instance_id: &str,
    ip: &str,
    profile: Option<Profile>,
    target: Target,
) -> FakeServer {
    const TOKEN: &str = "lab-imds-token";
    let (id, ip) = (instance_id.to_string(), ip.to_string());
    let v6 = ip.contains(':');
    FakeServer::start_on(at.0, at.1, move |r: &Request| {
        if r.method == "PUT" && r.path == "/latest/api/token" {
            return (200, TOKEN.into());
        }
        if r.header("x-aws-ec2-metadata-token") != Some(TOKEN) {
            return (401, String::new());
        }
        match (r.path.as_str(), &profile) {
            ("/latest/dynamic/instance-identity/document", _) => {
                let private_ip = if v6 {
                    "null".to_string()
                } else {
                    format!("\"{ip}\"")
                };
                (
                    200,
                    format!(
                        r#"{{"accountId":"123456789012","architecture":"x86_64","availabilityZone":"{REGION}a","imageId":"{IMAGE}","instanceId":"{id}","instanceType":"t3.micro","privateIp":{private_ip},"region":"{REGION}","version":"2017-09-30"}}"#
                    ),
                )
            }
            ("/latest/meta-data/ipv6", _) if v6 => (200, ip.clone()),
            ("/latest/meta-data/local-hostname", _) if v6 => (200, format!("{id}.ec2.internal")),
            ("/latest/meta-data/autoscaling/target-lifecycle-state", _) => {
                (200, target.lock().unwrap().clone())
            }
            ("/latest/meta-data/local-hostname", _) => {
                (200, format!("ip-{}.ec2.internal", ip.replace('.', "-")))
            }
            ("/latest/meta-data/iam/security-credentials/", Some(_)) => {
                (200, "etcd-lab-role".into())
            }
            ("/latest/meta-data/iam/security-credentials/etcd-lab-role", Some(p)) => (
                200,
                format!(
                    r#"{{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"{}","SecretAccessKey":"{}","Expiration":"2099-01-01T00:00:00Z"}}"#,
                    p.access_key_id, p.secret_access_key
                ),
            ),
            _ => (404, String::new()),
        }
    })
}

pub struct Node {
    pub k: u8,
    pub instance_id: String,
    pub imds: FakeServer,
    /// Its IMDS stub's `target-lifecycle-state`.
    pub target: Target,
    pub etcd: Option<Guard>,
}

/// Extra flags for an etcd a test starts.
#[derive(Default, Clone)]
pub struct EtcdFlags {
    pub args: Vec<String>,
    /// The directory of the etcd binary to run; the lab's etcd (`etcd_tool`) when `None`.
    pub bin_dir: Option<PathBuf>,
}

/// The etcd under test: `LAB_ETCD_DIR` names the directory of its `etcd` and `etcdctl`
/// (`./build.sh test` runs the lab once on Debian's 3.4 from PATH, once on 3.5 from there).
pub fn etcd_dir() -> Option<PathBuf> {
    std::env::var_os("LAB_ETCD_DIR").map(PathBuf::from)
}

/// `etcd` or `etcdctl` of the etcd under test.
pub fn etcd_tool(name: &str) -> Command {
    match etcd_dir() {
        Some(dir) => Command::new(dir.join(name)),
        None => Command::new(name),
    }
}

/// `etcdctl` (v3) of the etcd under test through k's client URL; its output, whatever the
/// outcome.
pub fn etcdctl_output(lab: &Lab, k: u8, args: &[&str]) -> Output {
    let endpoint = lab.env_value(k, "ETCD_ADVERTISE_CLIENT_URLS");
    etcd_tool("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &endpoint, "--dial-timeout=2s"])
        .args(args)
        .output()
        .unwrap()
}

/// `etcdctl` through k, asserted to succeed; its standard output.
pub fn etcdctl(lab: &Lab, k: u8, args: &[&str]) -> String {
    let out = etcdctl_output(lab, k, args);
    assert!(
        out.status.success(),
        "etcdctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The IPv6-only lab's addresses (each on the loopback of the network namespace it runs in):
/// moto and the lab's AWS side, every instance's metadata service, instance k's address.
pub const V6_MOTO: &str = "fd00:ec2::1";
pub const V6_IMDS: &str = "fd00:ec2::254";
pub const V6_SUBNET: &str = "fd00:ec2:1::/64";

pub struct Lab {
    pub net: u8,
    pub moto: Moto,
    /// IPv6 only: instance k lives at fd00:ec2:1::k, its IMDS stub at `V6_IMDS`, and the
    /// tool's AWS endpoint is `aws`, in front of moto.
    pub v6: bool,
    /// The lab's AWS side in front of moto (IPv6 only): DescribeInstances in EC2's shape.
    pub aws: Option<FakeServer>,
    /// (IPv6 address, instance id) of the IPv6-only lab's instances.
    pub v6_instances: Arc<Mutex<Vec<(String, String)>>>,
    /// The lab's VPC (127.0.0.0/16).
    pub vpc: String,
    pub subnet: String,
    pub dir: PathBuf,
    pub nodes: BTreeMap<u8, Node>,
    /// What every tool run gets: flags and environment.
    pub tool_args: Vec<String>,
    pub tool_env: Vec<(String, String)>,
    pub profile: Option<Profile>,
    /// Tool runs name etcd's data directory (`--etcd-data-dir`); off as with either seed.
    pub data_dir_named: bool,
}

impl Lab {
    pub fn new(net: u8) -> Lab {
        Lab::with_moto(net, None)
    }

    pub fn with_moto(net: u8, free_calls: Option<u32>) -> Lab {
        Lab::build(net, free_calls, false)
    }

    /// An IPv6-only lab: a VPC with an IPv6-only subnet (`V6_SUBNET`), moto at `V6_MOTO`.
    /// Its addresses must be on the loopback: run it inside a network namespace of its own
    /// (`ipv6.rs` does).
    pub fn ipv6_only(net: u8) -> Lab {
        Lab::build(net, None, true)
    }

    fn build(net: u8, free_calls: Option<u32>, v6: bool) -> Lab {
        let base = std::env::var("LAB_DIR").map_or_else(|_| std::env::temp_dir(), PathBuf::from);
        let dir = base.join(format!("lab-{net}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let moto = Moto::start_on(if v6 { V6_MOTO } else { "127.0.0.1" }, &dir, free_calls);
        // EC2 wants an IPv4 block for every VPC, IPv6-only subnets included.
        let vpc_cidr = if v6 { "10.0.0.0/16" } else { "127.0.0.0/16" };
        let vpc = xml_text(
            &moto.call("ec2", "CreateVpc", &[("CidrBlock", vpc_cidr)]),
            "vpcId",
        )
        .unwrap();
        let cidr = format!("127.0.{net}.0/24");
        let subnet_params: Vec<(&str, &str)> = if v6 {
            vec![
                ("VpcId", &vpc),
                ("Ipv6Native", "true"),
                ("Ipv6CidrBlock", V6_SUBNET),
            ]
        } else {
            vec![("VpcId", &vpc), ("CidrBlock", &cidr)]
        };
        let subnet = xml_text(
            &moto.call("ec2", "CreateSubnet", &subnet_params),
            "subnetId",
        )
        .unwrap();
        let v6_instances: Arc<Mutex<Vec<(String, String)>>> = Arc::new(Mutex::new(Vec::new()));
        let aws = v6.then(|| aws_side(&moto.url, v6_instances.clone()));
        moto.call(
            "autoscaling",
            "CreateLaunchConfiguration",
            &[
                ("LaunchConfigurationName", "etcd"),
                ("ImageId", IMAGE),
                ("InstanceType", "t3.micro"),
            ],
        );
        Lab {
            net,
            moto,
            v6,
            aws,
            v6_instances,
            vpc,
            subnet,
            dir,
            nodes: BTreeMap::new(),
            // Every lab node shares this machine's one 127.0.0.1: only the first etcd could
            // listen there, so the lab's nodes listen on their own address only.
            tool_args: vec![
                "-private-addresses".into(),
                "-etcd-client-scheme=http".into(),
                "-etcd-peer-scheme=http".into(),
                "--listen-localhost=false".into(),
            ],
            tool_env: vec![
                ("AWS_ACCESS_KEY_ID".into(), "AKIDLAB".into()),
                ("AWS_SECRET_ACCESS_KEY".into(), "lab-secret".into()),
            ],
            profile: None,
            data_dir_named: true,
        }
    }

    pub fn ip(&self, k: u8) -> String {
        if self.v6 {
            format!("fd00:ec2:1::{k}")
        } else {
            format!("127.0.{}.{k}", self.net)
        }
    }

    /// k's address as it goes in a URL.
    pub fn url_host(&self, k: u8) -> String {
        bracketed(&self.ip(k))
    }

    /// Where the tool asks AWS: the lab's AWS side when there is one, else moto.
    pub fn aws_url(&self) -> String {
        self.aws
            .as_ref()
            .map_or_else(|| self.moto.url.clone(), FakeServer::url)
    }

    /// Where the metadata stubs listen.
    fn imds_host(&self) -> &'static str {
        if self.v6 {
            V6_IMDS
        } else {
            "127.0.0.1"
        }
    }

    /// Moves instance k's metadata stub to `port` of its address (80: where
    /// `--imds-endpoint-mode=IPv6` looks).
    pub fn move_imds_to_port(&mut self, k: u8, port: u16) {
        let host = self.imds_host();
        let node = self.nodes.get_mut(&k).unwrap();
        let ip = if self.v6 {
            format!("fd00:ec2:1::{k}")
        } else {
            format!("127.0.{}.{k}", self.net)
        };
        node.imds = start_imds_at(
            (host, port),
            &node.instance_id,
            &ip,
            self.profile.clone(),
            node.target.clone(),
        );
    }

    /// An empty group (min 0, desired 0) that instances are attached to one by one.
    pub fn create_group(&self, name: &str, name_tag: &str) {
        self.create_asg(
            name,
            0,
            &[
                ("Tags.member.1.Key", "Name"),
                ("Tags.member.1.Value", name_tag),
                ("Tags.member.1.PropagateAtLaunch", "true"),
            ],
        );
    }

    /// CreateAutoScalingGroup in the lab's subnet; moto launches `desired` instances itself.
    fn create_asg(&self, name: &str, desired: u32, more: &[(&str, &str)]) {
        let desired = desired.to_string();
        let mut params = vec![
            ("AutoScalingGroupName", name),
            ("LaunchConfigurationName", "etcd"),
            ("MinSize", "0"),
            ("MaxSize", "20"),
            ("DesiredCapacity", desired.as_str()),
            ("VPCZoneIdentifier", self.subnet.as_str()),
        ];
        params.extend_from_slice(more);
        self.moto
            .call("autoscaling", "CreateAutoScalingGroup", &params);
    }

    /// Runs instance k at 127.0.N.k, attaches it to `group` and gives it an IMDS stub.
    pub fn launch(&mut self, group: &str, k: u8) -> String {
        let id = self.launch_targeted(k, "InService");
        self.attach(group, k);
        id
    }

    /// Attaches instance k to `group`: AutoScaling now counts it.
    pub fn attach(&self, group: &str, k: u8) {
        let id = self.nodes[&k].instance_id.clone();
        self.moto.call(
            "autoscaling",
            "AttachInstances",
            &[
                ("AutoScalingGroupName", group),
                ("InstanceIds.member.1", &id),
            ],
        );
    }

    /// Takes instance k out of `group` and lowers its desired capacity, as a scale-in does:
    /// the group no longer lists it (the instance itself keeps running).
    pub fn detach(&self, group: &str, k: u8) {
        let id = self.nodes[&k].instance_id.clone();
        self.moto.call(
            "autoscaling",
            "DetachInstances",
            &[
                ("AutoScalingGroupName", group),
                ("InstanceIds.member.1", &id),
                ("ShouldDecrementDesiredCapacity", "true"),
            ],
        );
    }

    /// Changes where AutoScaling is taking instance k (its IMDS
    /// `target-lifecycle-state`).
    pub fn set_target(&self, k: u8, state: &str) {
        *self.nodes[&k].target.lock().unwrap() = state.to_string();
    }

    /// Runs instance k at 127.0.N.k in no group (a warm pool's instance is not in the group's
    /// list: moto keeps no warm instances, so the lab leaves it unattached) with an IMDS stub
    /// that names `target` as its target lifecycle state.
    pub fn launch_targeted(&mut self, k: u8, target: &str) -> String {
        let ip = self.ip(k);
        let answer = self.moto.call(
            "ec2",
            "RunInstances",
            &[
                ("ImageId", IMAGE),
                ("MinCount", "1"),
                ("MaxCount", "1"),
                ("SubnetId", &self.subnet),
                ("PrivateIpAddress", &ip),
            ],
        );
        let id = xml_text(&answer, "instanceId").unwrap();
        if self.v6 {
            self.v6_instances
                .lock()
                .unwrap()
                .push((ip.clone(), id.clone()));
        }
        let target: Target = Arc::new(Mutex::new(target.into()));
        let imds = start_imds_at(
            (self.imds_host(), 0),
            &id,
            &ip,
            self.profile.clone(),
            target.clone(),
        );
        fs::create_dir_all(self.node_dir(k).join("var")).unwrap();
        self.nodes.insert(
            k,
            Node {
                k,
                instance_id: id.clone(),
                imds,
                target,
                etcd: None,
            },
        );
        id
    }

    /// A group whose instances AutoScaling launches itself (desired capacity set at once);
    /// returns their host numbers, each with an IMDS stub.
    pub fn create_group_launching(&mut self, name: &str, desired: u32) -> Vec<u8> {
        self.create_asg(name, desired, &[]);
        let groups = self.moto.call(
            "autoscaling",
            "DescribeAutoScalingGroups",
            &[("AutoScalingGroupNames.member.1", name)],
        );
        let ids: Vec<String> = groups
            .split("<InstanceId>")
            .skip(1)
            .filter_map(|s| s.split('<').next())
            .map(str::to_string)
            .collect();
        let mut hosts = Vec::new();
        for id in ids {
            let described = self
                .moto
                .call("ec2", "DescribeInstances", &[("InstanceId.1", &id)]);
            let ip = xml_text(&described, "privateIpAddress").expect("an address from the subnet");
            let k: u8 = ip.rsplit('.').next().unwrap().parse().unwrap();
            let target: Target = Arc::new(Mutex::new("InService".into()));
            let imds = start_imds_targeted(&id, &ip, self.profile.clone(), target.clone());
            fs::create_dir_all(self.node_dir(k).join("var")).unwrap();
            self.nodes.insert(
                k,
                Node {
                    k,
                    instance_id: id,
                    imds,
                    target,
                    etcd: None,
                },
            );
            hosts.push(k);
        }
        hosts.sort();
        hosts
    }

    /// Starts the tool for k without waiting for it.
    pub fn discover_spawn(&self, k: u8, extra: &[&str]) -> Child {
        let mut command = self.discover_command(k, extra);
        command
            .stdout(Stdio::null())
            .stderr(fs::File::create(self.node_dir(k).join("discovery.log")).unwrap());
        command.spawn().expect("start etcd-discovery")
    }

    /// Waits (bounded) for tools started with `discover_spawn`; as each one succeeds, its
    /// etcd is started, the way systemd's `Before=etcd.service` orders them.
    pub fn finish_and_start(&mut self, running: Vec<(u8, Child)>, flags: &EtcdFlags) {
        self.finish_and_start_with(running, |_| flags.clone());
    }

    /// `finish_and_start` with each node's own etcd flags (its certificate, say).
    pub fn finish_and_start_with(
        &mut self,
        running: Vec<(u8, Child)>,
        flags_for: impl Fn(u8) -> EtcdFlags,
    ) {
        self.finish_each(running, |lab, k| lab.start_etcd(k, &flags_for(k)));
    }

    /// Waits (bounded) for tools started with `discover_spawn`, each of which must succeed,
    /// and runs `then` for each node as its tool ends.
    pub fn finish_each(
        &mut self,
        mut running: Vec<(u8, Child)>,
        mut then: impl FnMut(&mut Lab, u8),
    ) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !running.is_empty() {
            assert!(Instant::now() < deadline, "tools still running after 120 s");
            let mut still = Vec::new();
            for (k, mut child) in running {
                match child.try_wait().unwrap() {
                    Some(status) => {
                        assert!(
                            status.success(),
                            "node {k}: etcd-discovery failed ({:?}):\n{}",
                            status.code(),
                            self.discovery_log(k)
                        );
                        then(self, k);
                    }
                    None => still.push((k, child)),
                }
            }
            running = still;
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The instance is gone: its etcd dies with it, its disk too, AutoScaling terminates it.
    pub fn terminate(&mut self, k: u8) {
        let node = self.nodes.remove(&k).expect("a running node");
        drop(node.etcd);
        let _ = fs::remove_dir_all(self.node_dir(k));
        self.moto.call(
            "autoscaling",
            "TerminateInstanceInAutoScalingGroup",
            &[
                ("InstanceId", &node.instance_id),
                ("ShouldDecrementDesiredCapacity", "true"),
            ],
        );
    }

    pub fn node_dir(&self, k: u8) -> PathBuf {
        self.dir.join(format!("node-{k}"))
    }

    /// etcd's data directory, in a folder of its own as on an instance (`/var/lib/etcd/...`
    /// beside `/etc/sysconfig`): the tool fingerprints its parent while it does not exist.
    pub fn data_dir(&self, k: u8) -> PathBuf {
        self.node_dir(k).join("var").join("data")
    }

    pub fn env_file(&self, k: u8) -> PathBuf {
        self.node_dir(k).join("etcd-peers")
    }

    /// Runs etcd-discovery as instance k's boot would, with extra flags.
    pub fn discover(&self, k: u8, extra: &[&str]) -> Output {
        self.discover_with_env(k, extra, &[])
    }

    pub fn discover_with_env(&self, k: u8, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = self.discover_command(k, extra);
        command.envs(env.iter().copied());
        command.output().expect("run etcd-discovery")
    }

    pub fn discover_command(&self, k: u8, extra: &[&str]) -> Command {
        let node = &self.nodes[&k];
        let binary = std::env::var("ETCD_DISCOVERY_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_etcd-discovery").to_string());
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", node.imds.url())
            .env("AWS_ENDPOINT_URL", self.aws_url())
            .envs(self.tool_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(&self.tool_args)
            .arg(format!("-environment-file={}", self.env_file(k).display()));
        if self.data_dir_named {
            command.arg(format!("--etcd-data-dir={}", self.data_dir(k).display()));
        }
        command.args(extra);
        command
    }

    /// Runs the tool for k and asserts it succeeded; returns what it logged.
    pub fn discover_ok(&self, k: u8, extra: &[&str]) -> String {
        let out = self.discover(k, extra);
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "node {k}: etcd-discovery failed ({:?}):\n{log}",
            out.status.code()
        );
        log
    }

    pub fn env_of(&self, k: u8) -> Vec<(String, String)> {
        self.read_env(k)
            .unwrap_or_else(|| panic!("node {k}: no env file at {}", self.env_file(k).display()))
    }

    /// The file the tool wrote for instance k, as (key, value) pairs; `None` without one.
    pub fn read_env(&self, k: u8) -> Option<Vec<(String, String)>> {
        let text = fs::read_to_string(self.env_file(k)).ok()?;
        let pairs = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(pairs)
    }

    /// What instance k's last `discover_spawn` logged (empty before it ran).
    pub fn discovery_log(&self, k: u8) -> String {
        fs::read_to_string(self.node_dir(k).join("discovery.log")).unwrap_or_default()
    }

    pub fn env_value(&self, k: u8, key: &str) -> String {
        self.env_of(k)
            .into_iter()
            .find(|(n, _)| n == key)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("node {k}: no {key}"))
    }

    /// Starts instance k's etcd from the file the tool wrote, as systemd's `EnvironmentFile=`.
    pub fn start_etcd(&mut self, k: u8, flags: &EtcdFlags) {
        let env = self.env_of(k);
        let guard = self.spawn_etcd(k, env, flags);
        self.nodes.get_mut(&k).unwrap().etcd = Some(guard);
    }

    /// How most scenarios end (no TLS): instance k's etcd started with the default flags and
    /// healthy, and the cluster, seen through node 2, is the running nodes.
    pub fn start_and_check_cluster(&mut self, k: u8) {
        self.start_etcd(k, &EtcdFlags::default());
        self.wait_healthy(k, &[]);
        self.assert_cluster_is_the_nodes(2, &[]);
    }

    /// Starts an etcd for host k with this environment; the caller keeps the guard.
    pub fn spawn_etcd(&self, k: u8, env: Vec<(String, String)>, flags: &EtcdFlags) -> Guard {
        fs::create_dir_all(self.node_dir(k).join("var")).unwrap();
        let data = self.data_dir(k);
        let log = fs::File::create(self.node_dir(k).join("etcd.log")).unwrap();
        let mut command = match &flags.bin_dir {
            Some(dir) => Command::new(dir.join("etcd")),
            None => etcd_tool("etcd"),
        };
        command
            .env_clear()
            .envs(env)
            .arg(format!("--data-dir={}", data.display()))
            .args([
                "--heartbeat-interval=50",
                "--election-timeout=500",
                "--log-level=warn",
                "--logger=zap",
            ])
            .args(&flags.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        Guard {
            child: command.spawn().expect("start etcd"),
            what: format!("etcd {k}"),
        }
    }

    /// Waits until k's etcd reports healthy: up to 90 s, a generous bound for a loaded 2-core
    /// machine. (The five-member bootstraps that once took longer than 30 s, then 90 s, had
    /// an etcd that had exited: rule 18. A timeout now reports every node's etcd.)
    pub fn wait_healthy(&self, k: u8, etcdctl_tls: &[String]) {
        let endpoint = self.env_value(k, "ETCD_ADVERTISE_CLIENT_URLS");
        let limit = Duration::from_secs(90);
        let healthy = poll_until(limit, || {
            etcd_tool("etcdctl")
                .env("ETCDCTL_API", "3")
                .args([
                    "--endpoints",
                    &endpoint,
                    "--dial-timeout=1s",
                    "--command-timeout=2s",
                ])
                .args(etcdctl_tls)
                .args(["endpoint", "health"])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        if !healthy {
            panic!(
                "timed out after {limit:?} waiting for etcd {k} healthy\n{}",
                self.etcd_report()
            );
        }
    }

    /// For the reader of a failed wait, which CI shows only in part: each node's state, whether
    /// its etcd still runs, and the ends of its etcd's log (warnings and worse) and the tool's.
    fn etcd_report(&self) -> String {
        let tail = |path: PathBuf, lines: usize| {
            let text = fs::read_to_string(path).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        };
        let mut report = String::new();
        for (k, node) in &self.nodes {
            let state = self
                .read_env(*k)
                .and_then(|env| {
                    env.into_iter()
                        .find(|(n, _)| n == "ETCD_INITIAL_CLUSTER_STATE")
                })
                .map_or_else(|| "no file".to_string(), |(_, state)| state);
            let etcd = match &node.etcd {
                None => "not started".to_string(),
                Some(guard) => {
                    let pid = guard.child.id();
                    // An exited child stays a zombie until the guard reaps it.
                    match fs::read_to_string(format!("/proc/{pid}/stat")) {
                        Ok(stat) if !stat.contains(") Z ") => format!("running (pid {pid})"),
                        _ => format!("exited (pid {pid})"),
                    }
                }
            };
            report += &format!(
                "---- node {k}: {state}, etcd {etcd}; etcd.log ends:\n{}\n---- node {k}: discovery.log ends:\n{}\n",
                tail(self.node_dir(*k).join("etcd.log"), 12),
                tail(self.node_dir(*k).join("discovery.log"), 6),
            );
        }
        report
    }

    /// `etcdctl member list` through k: (name, peer URL, started) of each member, sorted.
    pub fn members(&self, k: u8, etcdctl_tls: &[String]) -> Vec<(String, String, bool)> {
        let endpoint = self.env_value(k, "ETCD_ADVERTISE_CLIENT_URLS");
        let out = etcd_tool("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &endpoint, "--dial-timeout=2s"])
            .args(etcdctl_tls)
            .args(["member", "list"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "member list: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut members: Vec<(String, String, bool)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(", ").collect();
                (f[2].to_string(), f[3].to_string(), f[1] == "started")
            })
            .collect();
        members.sort();
        members
    }

    /// Peer URLs of the learner members, through k.
    pub fn learners(&self, k: u8) -> Vec<String> {
        let endpoint = self.env_value(k, "ETCD_ADVERTISE_CLIENT_URLS");
        let out = etcd_tool("etcdctl")
            .env("ETCDCTL_API", "3")
            .args([
                "--endpoints",
                &endpoint,
                "--dial-timeout=2s",
                "member",
                "list",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split(", ").collect::<Vec<_>>())
            .filter(|f| f.get(5) == Some(&"true"))
            .map(|f| f[3].to_string())
            .collect()
    }

    /// The cluster as it should be: every running node a started member under its instance id.
    pub fn assert_cluster_is_the_nodes(&self, through: u8, etcdctl_tls: &[String]) {
        let scheme = if !etcdctl_tls.iter().any(|a| a.starts_with("--cacert")) {
            "http"
        } else {
            "https"
        };
        let mut expected: Vec<(String, String, bool)> = self
            .nodes
            .values()
            .map(|n| {
                (
                    n.instance_id.clone(),
                    format!("{scheme}://{}:2380", self.url_host(n.k)),
                    true,
                )
            })
            .collect();
        expected.sort();
        wait_until("all members started", Duration::from_secs(20), || {
            self.members(through, etcdctl_tls).iter().all(|m| m.2)
        });
        assert_eq!(self.members(through, etcdctl_tls), expected);
    }
}

/// The IPv6-only lab's AWS side: every call goes on to moto, and DescribeInstances comes
/// back in EC2's shape. moto 5.2.5 puts an IPv6-only subnet's instance's address in
/// `privateIpAddress`, names it `ip-<IPv6>.ec2.internal` and leaves `ipv6Address` out; EC2
/// (API Reference, `Instance`; User Guide, "Amazon EC2 instance hostname types") gives such
/// an instance no `privateIpAddress`, its address in `ipv6Address` and a resource-based name.
fn aws_side(moto: &str, instances: Arc<Mutex<Vec<(String, String)>>>) -> FakeServer {
    moto_proxy(V6_MOTO, moto, move |body| {
        if body.contains("<DescribeInstancesResponse") {
            ec2_ipv6_shape(&body, &instances.lock().unwrap())
        } else {
            body
        }
    })
}

/// A server on `host` that passes every call on to moto and its answer's body through
/// `rewrite`: AWS as the lab's moto cannot show it.
pub fn moto_proxy(
    host: &str,
    moto: &str,
    rewrite: impl Fn(String) -> String + Send + Sync + 'static,
) -> FakeServer {
    let moto = moto.to_string();
    FakeServer::start(host, move |r: &Request| {
        let headers = r.forwarded_headers();
        match request(&r.method, &format!("{moto}{}", r.path), &headers, &r.body) {
            Ok((status, body)) => (status, rewrite(body)),
            Err(e) => (502, format!("the lab's AWS side could not reach moto: {e}")),
        }
    })
}

/// moto's DescribeInstances answer in EC2's shape for these IPv6-only instances
/// ((address, id) pairs): see `aws_side`.
pub fn ec2_ipv6_shape(body: &str, instances: &[(String, String)]) -> String {
    let mut body = body.to_string();
    for (ip, id) in instances {
        body = body.replace(&format!("<privateIpAddress>{ip}</privateIpAddress>"), "");
        body = body.replace(
            &format!("<privateDnsName>ip-{ip}.ec2.internal</privateDnsName>"),
            &format!(
                "<privateDnsName>{id}.ec2.internal</privateDnsName><ipv6Address>{ip}</ipv6Address>"
            ),
        );
    }
    body
}

impl Drop for Lab {
    fn drop(&mut self) {
        // etcds first (they are Guards inside the nodes), then moto with the struct.
        self.nodes.clear();
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("lab files kept in {}", self.dir.display());
        }
    }
}
