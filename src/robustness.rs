//! Property tests for every parser the tool runs on what others send it: AWS XML, etcd JSON,
//! IMDS JSON and the command line. Each gets random bytes and thousands of mutations of the
//! real-shaped fixtures (truncations, flipped and inserted bytes, spliced halves, repeated
//! chunks) and must return a value or an error, never panic: the release build aborts on
//! panic, at boot, on every instance. The generator is seeded, so a failure reproduces.

use crate::aws::{autoscaling, credentials, ec2, query};
use crate::model::AddressFamily;
use crate::{cli, etcd, imds};

/// xorshift64*: deterministic, no dependency, good enough to shake parsers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter to XML and JSON, more often than chance would pick them.
const SPICE: &[u8] = b"<>/\"'&;:{}[],0123456789-.e\\\n\t \x00\xff\xc3";

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let len = data.len();
        match rng.below(6) {
            0 => data.truncate(rng.below(len + 1)),
            1 if len > 0 => data[rng.below(len)] = SPICE[rng.below(SPICE.len())],
            2 => data.insert(rng.below(len + 1), SPICE[rng.below(SPICE.len())]),
            3 if len > 0 => {
                let (a, b) = (rng.below(len), rng.below(len));
                let (from, to) = (a.min(b), a.max(b));
                let chunk = data[from..to].to_vec();
                let at = rng.below(data.len() + 1);
                data.splice(at..at, chunk);
            }
            4 if len > 0 => {
                let from = rng.below(len);
                data.drain(from..(from + rng.below(64)).min(len));
            }
            _ => data.push((rng.next() & 0xff) as u8),
        }
    }
    data
}

/// Runs `parse` on random and mutated inputs; it must not panic (the test harness turns a
/// panic into a failure that names the seed).
fn shake(name: &str, seeds: &[&str], rounds: usize, parse: impl Fn(&str)) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64);
    for round in 0..rounds {
        let input = if round % 10 == 0 {
            (0..rng.below(200))
                .map(|_| (rng.next() & 0xff) as u8)
                .collect()
        } else {
            mutate(&mut rng, seeds[round % seeds.len()].as_bytes())
        };
        let text = String::from_utf8_lossy(&input);
        parse(&text);
    }
}

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!("fixtures/{path}")).unwrap()
}

#[test]
fn aws_xml_parsers_never_panic() {
    let groups = [
        fixture("autoscaling/describe-auto-scaling-groups-page1.xml"),
        fixture("autoscaling/describe-auto-scaling-groups-page2.xml"),
    ];
    let seeds: Vec<&str> = groups.iter().map(String::as_str).collect();
    shake("groups", &seeds, 3000, |s| {
        drop(autoscaling::parse_groups_page(s))
    });
    let instances = fixture("autoscaling/describe-auto-scaling-instances.xml");
    shake("asg-instances", &[&instances], 2000, |s| {
        drop(autoscaling::parse_instances_page(s))
    });
    let ec2 = [
        fixture("ec2/describe-instances.xml"),
        fixture("ec2/describe-instances-last-page.xml"),
        fixture("ec2/describe-instances-ipv6.xml"),
    ];
    let seeds: Vec<&str> = ec2.iter().map(String::as_str).collect();
    shake("ec2", &seeds, 3000, |s| {
        drop(ec2::parse_instances_page(s, AddressFamily::Ipv4));
        drop(ec2::parse_instances_page(s, AddressFamily::Ipv6));
    });
    let errors = [
        fixture("autoscaling/error-throttling.xml"),
        fixture("ec2/error-auth-failure.xml"),
    ];
    let seeds: Vec<&str> = errors.iter().map(String::as_str).collect();
    shake("errors", &seeds, 3000, |s| drop(query::parse_error(s)));
}

#[test]
fn etcd_json_parsers_never_panic() {
    let v3 = fixture("etcd/v3-member-list.json");
    shake("v3", &[&v3], 3000, |s| drop(etcd::parse_v3_members(s)));
    let v2 = fixture("etcd/v2-members.json");
    shake("v2", &[&v2], 3000, |s| drop(etcd::parse_v2_members(s)));
}

#[test]
fn imds_json_parsers_never_panic() {
    let identity = fixture("imds/identity-document.json");
    shake("identity", &[&identity], 2000, |s| {
        drop(imds::parse_identity_document(s))
    });
    let creds = fixture("imds/security-credentials.json");
    shake("credentials", &[&creds], 2000, |s| {
        drop(credentials::parse_credentials_document(s, "x"))
    });
}

#[test]
fn flag_parser_never_panics() {
    let seeds = [
        "-scaling-group-name=etcd -proxy-mode=true -environment-file=/etc/sysconfig/etcd-peers -logtostderr -v=10",
        "--etcd-client-port 2379 --etcd-peer-scheme=https --scaling-group-tag role=etcd --wait-timeout=5m leave",
        "-private-addresses -etcd-client-schema=http --etcd-api=v3 --learner --timeout 90s reconcile --dry-run",
    ];
    shake("flags", &seeds, 3000, |s| {
        let args: Vec<String> = s.split(' ').map(str::to_string).collect();
        let env = |name: &str| (name == "PROXY_ASG").then(|| "masters".to_string());
        drop(cli::parse(args, &env));
    });
}
