//! A simulated AWS account for one test: a metadata service for "this" instance, AutoScaling
//! and EC2 answering from a shared model of groups, and optionally an etcd member API on one
//! of the instances' addresses. Each test gets its own 127.0.N.0/24 so tests never collide.

// Shared with the bench, which uses a different part.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use super::fake::{FakeServer, Request};

pub fn instance_id(k: u8) -> String {
    format!("i-{k:017x}")
}

#[derive(Clone)]
pub struct Group {
    pub name: String,
    pub desired: u32,
    pub tags: Vec<(String, String)>,
    /// (host number k in 127.0.N.k, lifecycle state)
    pub instances: Vec<(u8, String)>,
}

#[derive(Clone, Debug)]
pub struct FakeMember {
    pub id: u64,
    pub name: String,
    pub peer_url: String,
    pub client_url: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum EtcdApi {
    V3,
    /// The v3 gateway answers 404, only /v2/members works.
    V2Only,
}

/// What AWS answers instead of the model, for error tests.
pub type AwsOverride = Arc<Mutex<Option<(u16, String)>>>;

/// How the fake AWS departs from the model, for eventual-consistency and credential tests.
#[derive(Clone, Default)]
pub struct AwsFaults {
    /// Hosts EC2 does not know yet: DescribeInstances naming one fails whole, with
    /// `InvalidInstanceID.NotFound` naming them (as EC2 does right after a launch).
    pub ec2_unknown: Arc<Mutex<Vec<u8>>>,
    /// Session tokens AWS calls expired (`ExpiredToken`).
    pub expired_tokens: Arc<Mutex<Vec<String>>>,
    /// Every request is refused for a skewed clock with this (code, message).
    pub clock_skew: Arc<Mutex<Option<(String, String)>>>,
    /// Actions the caller's policy does not allow (`AccessDenied`).
    pub denied_actions: Arc<Mutex<Vec<String>>>,
    /// Actions AWS throttles, every time (`Throttling`, "Rate exceeded", as AutoScaling
    /// answers it: AutoScaling API Reference, Common Errors).
    pub throttled_actions: Arc<Mutex<Vec<String>>>,
    /// A dual-stack subnet: EC2 also gives host k the IPv6 address `fd00:ec2:NET::k`
    /// (`ipv6Address`, EC2 API Reference, `Instance`).
    pub dual_stack: Arc<std::sync::atomic::AtomicBool>,
    /// An IPv6-only subnet: EC2 gives host k `fd00:ec2:NET::k` and no private IPv4 address
    /// (EC2 API Reference, `Instance`: `privateIpAddress` is absent then).
    pub ipv6_only: Arc<std::sync::atomic::AtomicBool>,
    /// Host k enters the first group (`InService`) once a DescribeAutoScalingGroups has been
    /// answered without it: an instance put back in service from a warm pool during a run.
    pub enters_after_a_look: Arc<Mutex<Option<u8>>>,
    /// This tag is set on the first group once a DescribeAutoScalingGroups has been answered
    /// without it: another seed's record written during a run.
    pub tagged_after_a_look: Arc<Mutex<Option<(String, String)>>>,
    /// Hosts EC2 has terminated: a DescribeInstances filtered on `instance-state-name`
    /// (without `terminated`) leaves them out.
    pub terminated: Arc<Mutex<Vec<u8>>>,
}

pub struct World {
    pub net: u8,
    pub imds: FakeServer,
    pub aws: FakeServer,
    /// One fake etcd per serving host, all sharing `members`.
    pub etcd: Vec<FakeServer>,
    /// The groups AWS describes; tests may change them while the tool runs.
    pub groups: Arc<Mutex<Vec<Group>>>,
    /// The client port every instance's etcd would listen on.
    pub client_port: u16,
    pub members: Arc<Mutex<Vec<FakeMember>>>,
    pub aws_override: AwsOverride,
    pub aws_faults: AwsFaults,
    pub etcd_fault: Arc<Mutex<Option<EtcdFault>>>,
    pub dir: PathBuf,
}

/// The binary under test: the one cargo built, or `ETCD_DISCOVERY_BIN` (the static release
/// build, or the aarch64 one under qemu) when `build.sh` names it.
pub fn binary() -> PathBuf {
    std::env::var_os("ETCD_DISCOVERY_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_etcd-discovery")),
        PathBuf::from,
    )
}

/// How the fake metadata service behaves.
#[derive(Clone, Default)]
pub struct Imds {
    /// Hand out IMDSv2 tokens (else the token call is refused with 403).
    pub v2: bool,
    /// Refuse GETs without a token too (IMDSv1 disabled).
    pub v1_refused: bool,
    /// What `local-hostname` says, instead of the real-shaped name.
    pub hostname: Option<String>,
    /// The identity document, instead of a complete one.
    pub document: Option<String>,
    /// Instance metadata tags are on: the group's name is in `tags/instance/`.
    pub group_tag: Option<String>,
    /// An instance profile whose keys the static ones are.
    pub profile: bool,
}

impl Imds {
    pub fn v2() -> Imds {
        Imds {
            v2: true,
            ..Imds::default()
        }
    }
}

/// How the fake etcd misbehaves.
#[derive(Clone)]
pub enum EtcdFault {
    /// Every member list answers this.
    List(u16, String),
    /// A member add never answers.
    AddHangs,
    /// An active NOSPACE alarm: `/health` is false although there is a leader (etcd 3.4).
    NoSpaceAlarm,
    /// Another node's add lands just before the next v3 add (once): etcd 3.5.30, 3.6.11 and
    /// 3.7 accept both, where older ones refused the second as "unhealthy cluster".
    AnotherAddFirst(FakeMember),
    /// The cluster formed moments ago: `/version` names no cluster version for this many
    /// more answers.
    VersionNotDecided(u32),
}

impl World {
    pub fn ip(net: u8, k: u8) -> String {
        format!("127.0.{net}.{k}")
    }

    /// `etcd_on`: the hosts whose etcd answers (all with the same `members`, healthy), or
    /// `None` for no etcd anywhere.
    pub fn new(
        net: u8,
        me: u8,
        groups: Vec<Group>,
        etcd_on: Option<(&[u8], EtcdApi)>,
        members: Vec<FakeMember>,
        imds: Imds,
    ) -> World {
        let imds_server = start_imds(net, me, imds);
        let aws_override: AwsOverride = Arc::new(Mutex::new(None));
        let groups = Arc::new(Mutex::new(groups));
        let aws_faults = AwsFaults::default();
        let aws = start_aws(
            net,
            groups.clone(),
            aws_override.clone(),
            aws_faults.clone(),
        );
        let members = Arc::new(Mutex::new(members));
        let etcd_fault: Arc<Mutex<Option<EtcdFault>>> = Arc::new(Mutex::new(None));
        // A port nothing listens on yet at any of this test's addresses.
        let probe = std::net::TcpListener::bind((World::ip(net, 250).as_str(), 0)).unwrap();
        let client_port = probe.local_addr().unwrap().port();
        drop(probe);
        let etcd = match etcd_on {
            Some((hosts, api)) => hosts
                .iter()
                .map(|k| {
                    start_etcd(
                        &World::ip(net, *k),
                        client_port,
                        members.clone(),
                        api,
                        etcd_fault.clone(),
                    )
                })
                .collect(),
            None => Vec::new(),
        };
        let dir = std::env::temp_dir().join(format!(
            "etcd-discovery-offline-{net}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        World {
            net,
            imds: imds_server,
            aws,
            etcd,
            groups,
            client_port,
            members,
            aws_override,
            aws_faults,
            etcd_fault,
            dir,
        }
    }

    /// Holds every answer of every fake back by `latency`, like a network would.
    pub fn set_latency(&self, latency: std::time::Duration) {
        let ms = latency.as_millis() as u64;
        for server in [&self.imds, &self.aws].into_iter().chain(&self.etcd) {
            server
                .latency_ms
                .store(ms, std::sync::atomic::Ordering::Relaxed);
        }
    }

    pub fn env_file(&self) -> PathBuf {
        self.dir.join("etcd-peers")
    }

    pub fn member(&self, k: u8, started: bool) -> FakeMember {
        FakeMember {
            id: 1000 + u64::from(k),
            name: if started {
                instance_id(k)
            } else {
                String::new()
            },
            peer_url: format!("http://{}:2380", World::ip(self.net, k)),
            client_url: if started {
                format!("http://{}:{}", World::ip(self.net, k), self.client_port)
            } else {
                String::new()
            },
        }
    }

    /// Runs the binary with this world's endpoints and static keys, plus `args`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_env(args, &[])
    }

    pub fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = self.command(args);
        command.envs(env.iter().copied());
        command.output().expect("run etcd-discovery")
    }

    /// The command for one run, with static keys, peers addressed by IP, not started.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.command_by_hostname(&["-private-addresses"]);
        command.args(args);
        command
    }

    /// The same, with peers addressed by their private DNS names (which resolve nowhere here).
    pub fn command_by_hostname(&self, args: &[&str]) -> Command {
        let port = self.client_port.to_string();
        let file = self.env_file();
        let mut command = Command::new(binary());
        command
            .env_clear()
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", self.imds.url())
            .env("AWS_ENDPOINT_URL", self.aws.url())
            .env("AWS_ACCESS_KEY_ID", "AKIDOFFLINE")
            .env("AWS_SECRET_ACCESS_KEY", "offline-secret-key")
            .args(["-etcd-client-scheme=http", "-etcd-peer-scheme=http"])
            .args(["-etcd-client-port", &port])
            .arg(format!("-environment-file={}", file.display()))
            .args(args);
        command
    }

    /// `command` run in a private mount namespace after `setup` (a shell line, absolute paths:
    /// the environment is the command's own), so a test can mount over a directory or
    /// `/etc/hosts` without touching the machine.
    pub fn in_private_mounts(command: &Command, setup: &str) -> Command {
        let mut wrapped = Command::new("/usr/bin/unshare");
        wrapped
            .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
            .arg(format!("{setup} && exec \"$0\" \"$@\""))
            .arg(command.get_program())
            .args(command.get_args())
            .env_clear()
            .envs(command.get_envs().filter_map(|(k, v)| Some((k, v?))));
        wrapped
    }

    pub fn aws_requests(&self) -> Vec<Request> {
        self.aws.requests()
    }

    /// Peer ports (2380) at these hosts that answer `GET /members` with the members, as
    /// etcd's do (with or without a leader, no user needed). Their requests count as etcd's.
    pub fn serve_peer_ports(&mut self, hosts: &[u8]) {
        for k in hosts {
            let members = self.members.clone();
            self.etcd.push(FakeServer::start_on(
                &World::ip(self.net, *k),
                2380,
                move |r: &Request| match (r.method.as_str(), r.path.as_str()) {
                    ("GET", "/members") => (200, peer_members_json(&members.lock().unwrap())),
                    _ => (404, "404 page not found\n".into()),
                },
            ));
        }
    }

    pub fn etcd_requests(&self) -> Vec<Request> {
        self.etcd.iter().flat_map(|e| e.requests()).collect()
    }

    /// Membership changes the fake etcds saw, as (path, body), in no particular host order.
    pub fn etcd_changes(&self) -> Vec<(String, String)> {
        self.etcd_requests()
            .into_iter()
            .filter(|r| {
                let read = r.path.ends_with("/list")
                    || r.path == "/health"
                    || r.path == "/version"
                    || r.path == "/v3/maintenance/status"
                    || (r.method == "GET" && (r.path == "/v2/members" || r.path == "/members"));
                !read
            })
            .map(|r| (r.path, r.body))
            .collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The IMDSv2 token the fake hands out, and the instance profile's secret parts: long and
/// distinctive, so a test can look for any piece of them in a log.
pub const IMDS_TOKEN: &str = "AQAEAJ7mIMDSv2tokenQx4Zr9Kp2Lw8Vn5Ts1Yh==";
pub const PROFILE_SECRET: &str = "Hq7yPROFILEsecretK3vWm9Zx2Lp5Rn8Tc4Bd6Gf";
pub const PROFILE_TOKEN: &str = "IQoJb3JpZ2luX2VjEPROFILEsessionTOKENa8Xq3Wv7Nm2Kd5Rt9Yp4Lz6Hc1";

fn start_imds(net: u8, me: u8, imds: Imds) -> FakeServer {
    FakeServer::start("127.0.0.1", imds_handler(net, me, imds))
}

/// The fake metadata service of host `me`, to start on any address. The instance profile's
/// session token changes on every fetch after the first (`PROFILE_TOKEN`, then
/// `PROFILE_TOKEN-2`, ...), as temporary credentials do.
pub fn imds_handler(
    net: u8,
    me: u8,
    imds: Imds,
) -> impl Fn(&Request) -> (u16, String) + Send + Sync + 'static {
    const TOKEN: &str = IMDS_TOKEN;
    let ip = World::ip(net, me);
    let id = instance_id(me);
    let profile_fetches = std::sync::atomic::AtomicUsize::new(0);
    move |r: &Request| {
        if r.method == "PUT" && r.path == "/latest/api/token" {
            return if imds.v2 {
                (200, TOKEN.into())
            } else {
                (403, String::new())
            };
        }
        // The container credentials endpoint (ECS), served here too: no IMDS token, its own
        // authorization token instead.
        if r.path == "/v2/credentials/task" {
            return match r.header("authorization") {
                Some("container-auth-token") => (
                    200,
                    r#"{"AccessKeyId":"ASIACONTAINER","SecretAccessKey":"container-secret","Token":"container-session","Expiration":"2099-01-01T00:00:00Z"}"#.into(),
                ),
                _ => (401, String::new()),
            };
        }
        let has_token = r.header("x-aws-ec2-metadata-token") == Some(TOKEN);
        if (imds.v2 || imds.v1_refused) && !has_token {
            return (401, String::new());
        }
        match r.path.as_str() {
            "/latest/dynamic/instance-identity/document" => (
                200,
                imds.document.clone().unwrap_or_else(|| {
                    format!(r#"{{"instanceId":"{id}","privateIp":"{ip}","region":"us-east-1","availabilityZone":"us-east-1a","accountId":"123456789012"}}"#)
                }),
            ),
            "/latest/meta-data/tags/instance/aws:autoscaling:groupName" if imds.group_tag.is_some() => {
                (200, imds.group_tag.clone().unwrap_or_default())
            }
            "/latest/meta-data/iam/security-credentials/" if imds.profile => (200, "etcd-role".into()),
            "/latest/meta-data/iam/security-credentials/etcd-role" if imds.profile => {
                let n = 1 + profile_fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let token = match n {
                    1 => PROFILE_TOKEN.to_string(),
                    n => format!("{PROFILE_TOKEN}-{n}"),
                };
                (
                    200,
                    format!(r#"{{"Code":"Success","AccessKeyId":"ASIAPROFILE","SecretAccessKey":"{PROFILE_SECRET}","Token":"{token}"}}"#),
                )
            }
            "/latest/meta-data/local-hostname" => {
                (200, imds.hostname.clone().unwrap_or_else(|| format!("ip-{}.ec2.internal", ip.replace('.', "-"))))
            }
            _ => (404, String::new()),
        }
    }
}

fn start_aws(
    net: u8,
    groups: Arc<Mutex<Vec<Group>>>,
    aws_override: AwsOverride,
    faults: AwsFaults,
) -> FakeServer {
    FakeServer::start("127.0.0.1", aws_handler(net, groups, aws_override, faults))
}

/// The fake AutoScaling and EC2 of this world, to start on any address.
pub fn aws_handler(
    net: u8,
    groups: Arc<Mutex<Vec<Group>>>,
    aws_override: AwsOverride,
    faults: AwsFaults,
) -> impl Fn(&Request) -> (u16, String) + Send + Sync + 'static {
    move |r: &Request| {
        if let Some(answer) = aws_override.lock().unwrap().clone() {
            return answer;
        }
        if let Some((code, message)) = faults.clock_skew.lock().unwrap().clone() {
            return (403, format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>x</RequestId></ErrorResponse>"));
        }
        let token = r.header("x-amz-security-token").unwrap_or_default();
        if faults
            .expired_tokens
            .lock()
            .unwrap()
            .iter()
            .any(|t| t == token)
        {
            return (403, "<ErrorResponse><Error><Type>Sender</Type><Code>ExpiredToken</Code><Message>The security token included in the request is expired</Message></Error><RequestId>x</RequestId></ErrorResponse>".into());
        }
        let action = r.param("Action").unwrap_or_default();
        if faults.denied_actions.lock().unwrap().contains(&action) {
            return (403, format!("<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:sts::123456789012:assumed-role/etcd/i-x is not authorized to perform: autoscaling:{action}</Message></Error><RequestId>x</RequestId></ErrorResponse>"));
        }
        if faults.throttled_actions.lock().unwrap().contains(&action) {
            return (400, "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>x</RequestId></ErrorResponse>".into());
        }
        if action == "CreateOrUpdateTags" {
            let mut groups = groups.lock().unwrap();
            for i in 1..50 {
                let field = |name: &str| r.param(&format!("Tags.member.{i}.{name}"));
                let (Some(group), Some(key)) = (field("ResourceId"), field("Key")) else {
                    break;
                };
                let value = field("Value").unwrap_or_default();
                if let Some(g) = groups.iter_mut().find(|g| g.name == group) {
                    g.tags.retain(|(k, _)| *k != key);
                    g.tags.push((key, value));
                }
            }
            return (200, r#"<CreateOrUpdateTagsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><ResponseMetadata><RequestId>x</RequestId></ResponseMetadata></CreateOrUpdateTagsResponse>"#.into());
        }
        let shared = groups.clone();
        let groups = groups.lock().unwrap().clone();
        if action == "DescribeAutoScalingGroups" {
            if let Some(k) = faults.enters_after_a_look.lock().unwrap().take() {
                shared.lock().unwrap()[0]
                    .instances
                    .push((k, "InService".into()));
            }
            if let Some(tag) = faults.tagged_after_a_look.lock().unwrap().take() {
                shared.lock().unwrap()[0].tags.push(tag);
            }
        }
        match action.as_str() {
            "DescribeAutoScalingInstances" => {
                let wanted = r.param("InstanceIds.member.1").unwrap_or_default();
                let members: String = groups
                    .iter()
                    .flat_map(|g| g.instances.iter().map(move |(k, state)| (g, k, state)))
                    .filter(|(_, k, _)| instance_id(**k) == wanted)
                    .map(|(g, k, state)| format!("<member><InstanceId>{}</InstanceId><AutoScalingGroupName>{}</AutoScalingGroupName><AvailabilityZone>us-east-1a</AvailabilityZone><LifecycleState>{state}</LifecycleState><HealthStatus>HEALTHY</HealthStatus></member>", instance_id(*k), g.name))
                    .collect();
                (200, format!(r#"<DescribeAutoScalingInstancesResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><DescribeAutoScalingInstancesResult><AutoScalingInstances>{members}</AutoScalingInstances></DescribeAutoScalingInstancesResult><ResponseMetadata><RequestId>x</RequestId></ResponseMetadata></DescribeAutoScalingInstancesResponse>"#))
            }
            "DescribeAutoScalingGroups" => {
                let names: Vec<String> = (1..20).filter_map(|i| r.param(&format!("AutoScalingGroupNames.member.{i}"))).collect();
                let tag_filters: Vec<(String, String)> = (1..20)
                    .filter_map(|i| {
                        let key = r.param(&format!("Filters.member.{i}.Name"))?;
                        let value = r.param(&format!("Filters.member.{i}.Values.member.1"))?;
                        Some((key.trim_start_matches("tag:").to_string(), value))
                    })
                    .collect();
                let selected = groups.iter().filter(|g| {
                    (names.is_empty() || names.contains(&g.name)) && tag_filters.iter().all(|t| g.tags.contains(t))
                });
                let members: String = selected
                    .map(|g| {
                        let instances: String = g.instances.iter().map(|(k, state)| format!("<member><InstanceId>{}</InstanceId><AvailabilityZone>us-east-1a</AvailabilityZone><LifecycleState>{state}</LifecycleState><HealthStatus>Healthy</HealthStatus></member>", instance_id(*k))).collect();
                        let tags: String = g.tags.iter().map(|(k, v)| format!("<member><ResourceId>{}</ResourceId><ResourceType>auto-scaling-group</ResourceType><Key>{k}</Key><Value>{v}</Value><PropagateAtLaunch>false</PropagateAtLaunch></member>", g.name)).collect();
                        format!("<member><AutoScalingGroupName>{}</AutoScalingGroupName><MinSize>0</MinSize><MaxSize>9</MaxSize><DesiredCapacity>{}</DesiredCapacity><Instances>{instances}</Instances><Tags>{tags}</Tags></member>", g.name, g.desired)
                    })
                    .collect();
                (200, format!(r#"<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><DescribeAutoScalingGroupsResult><AutoScalingGroups>{members}</AutoScalingGroups></DescribeAutoScalingGroupsResult><ResponseMetadata><RequestId>x</RequestId></ResponseMetadata></DescribeAutoScalingGroupsResponse>"#))
            }
            "DescribeInstances" => {
                let unknown: Vec<String> = (1..200)
                    .filter_map(|i| r.param(&format!("InstanceId.{i}")))
                    .filter(|id| faults.ec2_unknown.lock().unwrap().iter().any(|k| instance_id(*k) == *id))
                    .collect();
                if !unknown.is_empty() {
                    let (noun, verb) = if unknown.len() == 1 { ("ID", "does") } else { ("IDs", "do") };
                    return (400, format!("<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code><Message>The instance {noun} '{}' {verb} not exist</Message></Error></Errors><RequestID>x</RequestID></Response>", unknown.join(", ")));
                }
                // Asked by id, or with filters (EC2 API Reference, DescribeInstances:
                // `instance-id`, `instance-state-name`).
                let by_filter = r.param("Filter.1.Name").as_deref() == Some("instance-id");
                let key = if by_filter { "Filter.1.Value" } else { "InstanceId" };
                let live_only = r.param("Filter.2.Name").as_deref() == Some("instance-state-name")
                    && !(1..9).filter_map(|i| r.param(&format!("Filter.2.Value.{i}"))).any(|v| v == "terminated");
                let items: String = (1..200)
                    .filter_map(|i| r.param(&format!("{key}.{i}")))
                    .filter_map(|id| (1..=250u8).find(|k| instance_id(*k) == id))
                    .filter(|k| !(live_only && faults.terminated.lock().unwrap().contains(k)))
                    .map(|k| {
                        let ip = World::ip(net, k);
                        let only6 = faults.ipv6_only.load(std::sync::atomic::Ordering::SeqCst);
                        let ipv6 = if only6 || faults.dual_stack.load(std::sync::atomic::Ordering::SeqCst) {
                            format!("<ipv6Address>fd00:ec2:{net}::{k}</ipv6Address>")
                        } else {
                            String::new()
                        };
                        let ipv4 = if only6 { String::new() } else { format!("<privateIpAddress>{ip}</privateIpAddress>") };
                        format!("<item><instanceId>{}</instanceId><instanceState><code>16</code><name>running</name></instanceState><privateDnsName>ip-{}.ec2.internal</privateDnsName>{ipv4}{ipv6}</item>", instance_id(k), ip.replace('.', "-"))
                    })
                    .collect();
                (200, format!(r#"<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>x</requestId><reservationSet><item><reservationId>r-1</reservationId><instancesSet>{items}</instancesSet></item></reservationSet></DescribeInstancesResponse>"#))
            }
            // The shape of the AutoScaling API reference's RecordLifecycleActionHeartbeat
            // response (an empty result).
            "RecordLifecycleActionHeartbeat" => (
                200,
                r#"<RecordLifecycleActionHeartbeatResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><RecordLifecycleActionHeartbeatResult/><ResponseMetadata><RequestId>x</RequestId></ResponseMetadata></RecordLifecycleActionHeartbeatResponse>"#.into(),
            ),
            "CompleteLifecycleAction" => (
                200,
                r#"<CompleteLifecycleActionResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><CompleteLifecycleActionResult/><ResponseMetadata><RequestId>x</RequestId></ResponseMetadata></CompleteLifecycleActionResponse>"#.into(),
            ),
            other => (400, format!("<ErrorResponse><Error><Code>InvalidAction</Code><Message>{other}</Message></Error></ErrorResponse>")),
        }
    }
}

fn v3_members_json(members: &[FakeMember]) -> String {
    let items: Vec<String> = members
        .iter()
        .map(|m| {
            if m.name.is_empty() {
                format!(r#"{{"ID":"{}","peerURLs":["{}"]}}"#, m.id, m.peer_url)
            } else if m.client_url.is_empty() {
                // An initial member that never started: named from the initial cluster, no
                // client URLs (fixtures/etcd/peer-members-bootstrapping.json).
                format!(
                    r#"{{"ID":"{}","name":"{}","peerURLs":["{}"]}}"#,
                    m.id, m.name, m.peer_url
                )
            } else {
                format!(
                    r#"{{"ID":"{}","name":"{}","peerURLs":["{}"],"clientURLs":["{}"]}}"#,
                    m.id, m.name, m.peer_url, m.client_url
                )
            }
        })
        .collect();
    format!(
        r#"{{"header":{{"cluster_id":"1","member_id":"2","raft_term":"3"}},"members":[{}]}}"#,
        items.join(",")
    )
}

fn v2_members_json(members: &[FakeMember]) -> String {
    format!(
        r#"{{"members":[{}]}}"#,
        listed_members(members, |id| format!(r#""{id:x}""#))
    )
}

/// A peer port's `GET /members`: ids as numbers, every field present.
fn peer_members_json(members: &[FakeMember]) -> String {
    format!("[{}]", listed_members(members, |id| id.to_string()))
}

/// The members as the v2 API and a peer port list them: every field present, the id as
/// `id_of` writes it (v2: a hex string; a peer port: a number).
fn listed_members(members: &[FakeMember], id_of: fn(u64) -> String) -> String {
    let items: Vec<String> = members
        .iter()
        .map(|m| {
            let clients = if m.client_url.is_empty() {
                String::new()
            } else {
                format!(r#""{}""#, m.client_url)
            };
            format!(
                r#"{{"id":{},"name":"{}","peerURLs":["{}"],"clientURLs":[{clients}]}}"#,
                id_of(m.id),
                m.name,
                m.peer_url
            )
        })
        .collect();
    items.join(",")
}

/// The first string value in a small JSON body after `"key":`.
fn json_string(body: &str, key: &str) -> Option<String> {
    let after = body.split(&format!(r#""{key}":"#)).nth(1)?;
    let start = after.find('"')? + 1;
    let end = start + after[start..].find('"')?;
    Some(after[start..end].to_string())
}

fn start_etcd(
    ip: &str,
    port: u16,
    members: Arc<Mutex<Vec<FakeMember>>>,
    api: EtcdApi,
    fault: Arc<Mutex<Option<EtcdFault>>>,
) -> FakeServer {
    let host = format!("//{ip}:");
    FakeServer::start_on(ip, port, move |r: &Request| {
        if r.path == "/v3/cluster/member/add" {
            let mut fault = fault.lock().unwrap();
            if let Some(EtcdFault::AnotherAddFirst(other)) = fault.clone() {
                members.lock().unwrap().push(other);
                *fault = None;
            }
        }
        // Cloned first: the arms below may set the fault.
        let current = fault.lock().unwrap().clone();
        match (current, r.path.as_str()) {
            (Some(EtcdFault::List(status, body)), "/v3/cluster/member/list" | "/v2/members")
                if r.method != "DELETE" =>
            {
                return (status, body)
            }
            (Some(EtcdFault::AddHangs), "/v3/cluster/member/add") => {
                std::thread::sleep(std::time::Duration::from_secs(20));
                return (504, String::new());
            }
            // Shapes captured from etcd 3.4.23 with a NOSPACE alarm raised.
            (Some(EtcdFault::VersionNotDecided(left)), "/version") => {
                *fault.lock().unwrap() =
                    (left > 1).then_some(EtcdFault::VersionNotDecided(left - 1));
                return (
                    200,
                    include_str!("../../fixtures/etcd/version-not-decided.json").into(),
                );
            }
            (Some(EtcdFault::NoSpaceAlarm), "/health") => {
                return (503, r#"{"health":"false"}"#.into())
            }
            (Some(EtcdFault::NoSpaceAlarm), "/v3/maintenance/status") => {
                return (
                    200,
                    include_str!("../../fixtures/etcd/v3-status-nospace.json").into(),
                )
            }
            _ => {}
        }
        let mut list = members.lock().unwrap();
        match (r.method.as_str(), r.path.as_str(), api) {
            ("GET", "/health", _) => (200, r#"{"health":"true"}"#.into()),
            // The shape of fixtures/etcd/v3-status-nospace.json (captured from 3.4.23): this
            // host's member, and the list's first member as the leader.
            ("POST", "/v3/maintenance/status", EtcdApi::V3) => {
                let mine = list
                    .iter()
                    .find(|m| m.client_url.contains(&host))
                    .map_or(0, |m| m.id);
                let leader = list.first().map_or(0, |m| m.id);
                (
                    200,
                    format!(
                        r#"{{"header":{{"cluster_id":"1","member_id":"{mine}","revision":"1","raft_term":"2"}},"version":"3.4.23","dbSize":"20480","leader":"{leader}","raftIndex":"8","raftTerm":"2","raftAppliedIndex":"8","dbSizeInUse":"16384"}}"#
                    ),
                )
            }
            ("GET", "/version", _) => (
                200,
                include_str!("../../fixtures/etcd/version-decided.json").into(),
            ),
            ("POST", p, EtcdApi::V2Only) if p.starts_with("/v3/") => {
                (404, "404 page not found\n".into())
            }
            ("POST", "/v3/cluster/member/list", _) => (200, v3_members_json(&list)),
            ("POST", "/v3/cluster/member/remove", _) => {
                let id: u64 = json_string(&r.body, "ID")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                if !list.iter().any(|m| m.id == id) {
                    return (404, r#"{"error":"etcdserver: member not found","code":5,"message":"etcdserver: member not found"}"#.into());
                }
                list.retain(|m| m.id != id);
                (200, v3_members_json(&list))
            }
            ("POST", "/v3/cluster/member/add", _) | ("POST", "/v2/members", _) => {
                let peer = json_string(&r.body, "peerURLs").unwrap_or_default();
                let id = 5000 + list.len() as u64;
                list.push(FakeMember {
                    id,
                    name: String::new(),
                    peer_url: peer,
                    client_url: String::new(),
                });
                if r.path.starts_with("/v2") {
                    (201, "{}".into())
                } else {
                    (200, v3_members_json(&list))
                }
            }
            ("GET", "/v2/members", _) => (200, v2_members_json(&list)),
            ("DELETE", p, _) if p.starts_with("/v2/members/") => {
                let id = u64::from_str_radix(p.trim_start_matches("/v2/members/"), 16).unwrap_or(0);
                let before = list.len();
                list.retain(|m| m.id != id);
                if list.len() < before {
                    (204, String::new())
                } else {
                    (404, String::new())
                }
            }
            _ => (404, "404 page not found\n".into()),
        }
    })
}
