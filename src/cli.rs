//! Command line and environment -> a validated `Config`. No I/O: the arguments and a lookup
//! for environment variables are passed in, so tests use plain vectors and maps.
//!
//! gambol99's flags are Go flags (`-name=value`, `-name value`, `--name`, `-bool`,
//! `-bool=false`), so the arguments are normalised to `--name[=value]` first and pico-args
//! parses the rest. monsanto's container was configured by environment variables only; each
//! flag has a variable, and a flag beats its variable.

use std::path::PathBuf;

use crate::aws::credentials::Credentials;
use crate::config::{AwsSettings, Command, Config, GroupSelector};
use crate::error::{Error, Result};
use crate::etcd::{EtcdApi, EtcdUser};
use crate::http::EtcdTls;
use crate::model::AddressFamily;
use crate::plan::{AddressKind, Scheme};
use crate::status::Output;

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    Run(Box<Config>),
    /// `--help`, or `CMD --help` / `help CMD` for one subcommand's help.
    Help(Option<Command>),
    Version,
}

/// A flag we accept: its name(s), the variable that stands in for it, its default and help.
struct Flag {
    names: &'static [&'static str],
    env: &'static [&'static str],
    default: &'static str,
    boolean: bool,
    help: &'static str,
}

const FLAGS: &[Flag] = &[
    Flag { names: &["--environment-file"], env: &["ETCD_DISCOVERY_ENVIRONMENT_FILE"], default: "/etc/sysconfig/etcd-peers", boolean: false, help: "the file to write the etcd environment variables to" },
    Flag { names: &["--scaling-group-name"], env: &["ETCD_DISCOVERY_SCALING_GROUP_NAME"], default: "", boolean: false, help: "the Auto Scaling group of the etcd masters (default: this instance's group)" },
    Flag { names: &["--scaling-group-tag"], env: &["ETCD_DISCOVERY_SCALING_GROUP_TAG"], default: "", boolean: false, help: "KEY=VALUE: every group with this tag forms the cluster (repeatable; comma-separated in the variable)" },
    Flag { names: &["--proxy-mode"], env: &["ETCD_DISCOVERY_PROXY_MODE"], default: "false", boolean: true, help: "consumer node: write proxy/gateway settings for the masters' group, never change membership" },
    Flag { names: &["--private-addresses"], env: &["ETCD_DISCOVERY_PRIVATE_ADDRESSES"], default: "false", boolean: true, help: "address peers by private IP" },
    Flag { names: &["--address-family"], env: &["ETCD_DISCOVERY_ADDRESS_FAMILY"], default: "ipv4", boolean: false, help: "ipv4 or ipv6: the private address peers are reached at in a dual-stack group (an instance without IPv4 uses its IPv6 address)" },
    Flag { names: &["--imds-endpoint-mode"], env: &["AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"], default: "IPv4", boolean: false, help: "IPv4 (169.254.169.254) or IPv6 ([fd00:ec2::254]): where the instance metadata service is asked" },
    Flag { names: &["--private-hostnames"], env: &["ETCD_DISCOVERY_PRIVATE_HOSTNAMES"], default: "true", boolean: true, help: "address peers by private DNS name (loses to -private-addresses)" },
    Flag { names: &["--etcd-client-scheme", "--etcd-client-schema"], env: &["ETCD_CLIENT_SCHEME"], default: "https", boolean: false, help: "http or https for client URLs" },
    Flag { names: &["--etcd-peer-scheme", "--etcd-peer-schema"], env: &["ETCD_PEER_SCHEME"], default: "https", boolean: false, help: "http or https for peer URLs" },
    Flag { names: &["--etcd-client-port"], env: &["ETCD_DISCOVERY_CLIENT_PORT"], default: "2379", boolean: false, help: "etcd's client port" },
    Flag { names: &["--etcd-peer-port"], env: &["ETCD_DISCOVERY_PEER_PORT"], default: "2380", boolean: false, help: "etcd's peer port" },
    Flag { names: &["--etcd-api"], env: &["ETCD_DISCOVERY_ETCD_API"], default: "auto", boolean: false, help: "auto, v2 or v3: the membership API (auto tries the v3 gateway, then v2)" },
    Flag { names: &["--etcd-ca-file"], env: &["ETCDCTL_CACERT", "ETCDCTL_CA_FILE"], default: "", boolean: false, help: "PEM CA bundle that signed etcd's client certificates" },
    Flag { names: &["--etcd-cert-file"], env: &["ETCDCTL_CERT", "ETCDCTL_CERT_FILE"], default: "", boolean: false, help: "PEM client certificate for etcd" },
    Flag { names: &["--etcd-key-file"], env: &["ETCDCTL_KEY", "ETCDCTL_KEY_FILE"], default: "", boolean: false, help: "PEM private key of the client certificate" },
    Flag { names: &["--etcd-user"], env: &["ETCDCTL_USER"], default: "", boolean: false, help: "USER:PASSWORD for etcd with authentication on (a user with the root role); never logged" },
    Flag { names: &["--region"], env: &["AWS_REGION", "AWS_DEFAULT_REGION"], default: "", boolean: false, help: "AWS region (default: the instance's)" },
    Flag { names: &["--etcd-data-dir"], env: &["ETCD_DATA_DIR"], default: "/var/lib/etcd", boolean: false, help: "etcd's data directory; when named here or in ETCD_DATA_DIR, a member whose directory holds no member data (wiped) is removed and added again" },
    Flag { names: &["--wait-timeout"], env: &["ETCD_DISCOVERY_WAIT_TIMEOUT"], default: "5m", boolean: false, help: "how long to wait for the whole group before bootstrapping, or to hold a refused `leave --lifecycle-hook` (e.g. 90s, 5m)" },
    Flag { names: &["--boot-wait"], env: &["ETCD_DISCOVERY_BOOT_WAIT"], default: "60s", boolean: false, help: "how long to wait at boot for what comes up late: the metadata service, the network (DNS), this instance's listing in its group (then exit 75)" },
    Flag { names: &["--timeout"], env: &["ETCD_DISCOVERY_TIMEOUT"], default: "10m", boolean: false, help: "give up after this long, whatever is slow (exit 75)" },
    Flag { names: &["--listen-localhost"], env: &["ETCD_DISCOVERY_LISTEN_LOCALHOST"], default: "true", boolean: true, help: "etcd also listens for clients on 127.0.0.1, where etcdctl and API servers on the node look; =false for the private address only" },
    Flag { names: &["--url-variables"], env: &["ETCD_DISCOVERY_URL_VARIABLES"], default: "true", boolean: true, help: "also write etcd's listen and advertise URLs; =false writes only what the seed tools wrote (name, initial cluster, its state and token), for an etcd unit that passes those URLs as flags" },
    Flag { names: &["--learner"], env: &["ETCD_DISCOVERY_LEARNER"], default: "false", boolean: true, help: "join as a non-voting learner (v3 API); run `etcd-discovery promote` once etcd is up" },
    Flag { names: &["--lifecycle-hook"], env: &["ETCD_DISCOVERY_LIFECYCLE_HOOK"], default: "", boolean: false, help: "with `leave`: the termination lifecycle hook to complete (CONTINUE) afterwards" },
    Flag { names: &["--output"], env: &[], default: "table", boolean: false, help: "with `status`: table, or json for scripts" },
    Flag { names: &["--metrics-file"], env: &["ETCD_DISCOVERY_METRICS_FILE"], default: "", boolean: false, help: "after every run, write what it did to this file in node_exporter's textfile format (e.g. /var/lib/prometheus/node-exporter/etcd-discovery-discover.prom)" },
    Flag { names: &["--snapshot-url"], env: &["ETCD_DISCOVERY_SNAPSHOT_URL"], default: "", boolean: false, help: "s3://BUCKET/PREFIX: with `snapshot`, where the leader uploads etcd's snapshots; with `discover`, where a whole group bootstrapping from nothing (no member answers) restores the newest from (needs --etcd-data-dir), and where a seed records its bootstrap" },
    Flag { names: &["--snapshot-keep"], env: &["ETCD_DISCOVERY_SNAPSHOT_KEEP"], default: "24", boolean: false, help: "with `snapshot`: how many snapshots to keep under the prefix; older ones are deleted" },
    Flag { names: &["--dry-run"], env: &["ETCD_DISCOVERY_DRY_RUN"], default: "false", boolean: true, help: "print the plan and the file, change nothing" },
    Flag { names: &["--log-level"], env: &[], default: "info", boolean: false, help: "error, warn, info, debug or trace (RUST_LOG wins)" },
    // glog's flags, accepted so gambol99's unit files keep working; logs always go to stderr.
    Flag { names: &["--v"], env: &[], default: "0", boolean: false, help: "glog verbosity: 0 info, 1-3 debug, 4+ trace" },
    Flag { names: &["--logtostderr"], env: &[], default: "true", boolean: true, help: "accepted for gambol99 compatibility (always on)" },
    Flag { names: &["--alsologtostderr"], env: &[], default: "false", boolean: true, help: "accepted for gambol99 compatibility" },
    Flag { names: &["--log_dir"], env: &[], default: "", boolean: false, help: "accepted for gambol99 compatibility (ignored)" },
    Flag { names: &["--stderrthreshold"], env: &[], default: "", boolean: false, help: "accepted for gambol99 compatibility (ignored)" },
    Flag { names: &["--log_backtrace_at"], env: &[], default: "", boolean: false, help: "accepted for gambol99 compatibility (ignored)" },
    Flag { names: &["--vmodule"], env: &[], default: "", boolean: false, help: "accepted for gambol99 compatibility (ignored)" },
];

/// The `--help` text, generated from the flag table so it cannot drift from the parser.
pub fn help() -> String {
    let mut out = String::from(
        "etcd-discovery: bootstrap or join an etcd cluster from its AWS Auto Scaling group\n\n\
         Usage: etcd-discovery [discover|promote|leave|reconcile|status|snapshot] [FLAGS]\n\n\
         discover (the default) runs before etcd: bootstrap or join, write the file.\n\
         promote  (ExecStartPost=) makes a --learner member a voter once it has caught up.\n\
         leave    (ExecStop=, termination hook) removes this member when that keeps quorum.\n\
         reconcile (a timer on the members) removes members whose instances are gone; only\n\
         the leader acts.\n\
         status   shows the group and the cluster side by side, and what discover would do.\n\
         snapshot (a timer on the members) uploads etcd's snapshot to S3; only the leader acts.\n\
         `etcd-discovery CMD --help` (or `help CMD`) says more about one of them.\n\n\
         Flags take Go syntax (-name=value, -name value, --name) as well as --name=value.\n\
         Each flag's variable stands in for it; a flag beats its variable.\n\n",
    );
    for flag in FLAGS {
        out.push_str(&format!("  {}\n      {}", flag.names.join(", "), flag.help));
        if !flag.default.is_empty() {
            out.push_str(&format!(" [default: {}]", flag.default));
        }
        if !flag.env.is_empty() {
            out.push_str(&format!(" [env: {}]", flag.env.join(", ")));
        }
        out.push('\n');
    }
    out.push_str(
        "  -h, --help; -V, --version\n\n\
         Other variables: PROXY_ASG (proxy mode for that group), ASG_BY_TAG (PROXY_ASG or\n\
         --scaling-group-name is the value of the groups' Name tag), AWS_ACCESS_KEY_ID,\n\
         AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_CONTAINER_CREDENTIALS_RELATIVE_URI,\n\
         AWS_CONTAINER_CREDENTIALS_FULL_URI, AWS_CONTAINER_AUTHORIZATION_TOKEN, AWS_ENDPOINT_URL,\n\
         AWS_ENDPOINT_URL_AUTO_SCALING, AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL_S3,\n\
         AWS_EC2_METADATA_SERVICE_ENDPOINT,\n\
         AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE (IPv4, IPv6), AWS_CA_BUNDLE (PEM roots for AWS\n\
         calls instead of the bundled ones; else ca_bundle of AWS_PROFILE in AWS_CONFIG_FILE or\n\
         ~/.aws/config), HTTPS_PROXY and NO_PROXY (AWS calls only), RUST_LOG.\n\n\
         Exit codes: 0 done, 1 failed, 2 bad usage, 75 temporary failure (retry).\n",
    );
    out
}

/// One subcommand's help: what it does, when a unit calls it, its flags, its exit codes. The
/// README's "Subcommands" section carries each text verbatim (a unit test compares them).
pub fn command_help(command: Command) -> &'static str {
    match command {
        Command::Discover => DISCOVER_HELP,
        Command::Promote => PROMOTE_HELP,
        Command::Leave => LEAVE_HELP,
        Command::Reconcile => RECONCILE_HELP,
        Command::Status => STATUS_HELP,
        Command::Snapshot => SNAPSHOT_HELP,
    }
}

const DISCOVER_HELP: &str = "\
Usage: etcd-discovery [discover] [FLAGS]

Decides whether this instance's etcd bootstraps a new cluster or joins the existing one,
makes the membership changes (removes the members whose instances are gone, adds this
one) and writes etcd's settings to the environment file. It is the default subcommand.

When: before every start of etcd, reboots included: etcd's drop-in runs
etcd-discovery.service from ExecStartPre=.

Flags: all of `etcd-discovery --help`; the ones that matter most: --environment-file,
--scaling-group-name, --scaling-group-tag, --proxy-mode, --private-addresses,
--etcd-client-scheme, --etcd-peer-scheme, --etcd-data-dir, --learner, --wait-timeout,
--boot-wait, --timeout, --dry-run.

With --snapshot-url and a named --etcd-data-dir: when no member answers and the whole
group bootstraps a new cluster, every node restores the newest complete snapshot under
the prefix (one with its .sha256) into its empty data directory first, with etcdutl
(else etcdctl) snapshot restore. Never when a member answers, never over member data.
A snapshot that does not match its .sha256 is refused (exit 1); none at all: the
cluster starts empty.

Exit codes: 0 done (the file is written or already right), 1 failed (the error line says
what to check), 2 bad usage, 75 temporary failure worth a retry (the group still
launching, IMDS not up yet, an election). On any failure the previous file is untouched.
";

const PROMOTE_HELP: &str = "\
Usage: etcd-discovery promote [FLAGS]

Makes this instance's member, which joined as a learner (--learner), a voting member
once it has caught up with the leader. A member that already votes is left alone.

When: etcd-discovery-promote.service, started with etcd, retried every 10 s while the
answer is \"not yet\".

Flags: the group's and etcd's flags of `etcd-discovery --help` (--scaling-group-name,
--scaling-group-tag, --etcd-client-scheme, --etcd-client-port, --etcd-api,
--etcd-ca-file, --etcd-cert-file, --etcd-key-file, --etcd-user), --timeout, --dry-run.

Exit codes: 0 done, 1 failed (needs a person: the reason is in the journal), 2 bad
usage, 75 not caught up yet or no leader: retry.
";

const LEAVE_HELP: &str = "\
Usage: etcd-discovery leave [--lifecycle-hook NAME] [FLAGS]

Removes this instance's member from the cluster when the remaining members keep a
quorum, then, with --lifecycle-hook, sends CompleteLifecycleAction (CONTINUE) for this
instance. With --lifecycle-hook, a removal refused for now (it would lose the quorum, no
leader yet) while this instance's etcd runs holds the instance in Terminating:Wait
(RecordLifecycleActionHeartbeat) and is tried again every few seconds, for up to
--wait-timeout (and 30 s less than --timeout). Refused on proxy nodes.

When: ExecStop= of etcd's unit, or the handler of a termination lifecycle hook.

Flags: --lifecycle-hook NAME (the hook to hold and complete; needs
autoscaling:RecordLifecycleActionHeartbeat and autoscaling:CompleteLifecycleAction),
--wait-timeout (how long to hold), the group's and etcd's flags of `etcd-discovery
--help`, --timeout, --dry-run.

Exit codes: 0 done (or this instance was no member), 1 failed (the last member, or the
error line says what to check), 2 bad usage, 75 removing it now would lose the quorum,
the cluster formed moments ago and has not decided its version (no removal before it
has), or another temporary failure: retry.
";

const RECONCILE_HELP: &str = "\
Usage: etcd-discovery reconcile [FLAGS]

Removes the members whose instances are gone from the group (a scale-down, a missed
join) and that are provably down. Only the current leader acts; on other members it
does nothing. Membership is never changed beyond those removals.

When: etcd-discovery-reconcile.timer, every 5 minutes on every member.

Flags: the group's and etcd's flags of `etcd-discovery --help` (--scaling-group-name,
--scaling-group-tag, --private-addresses, --etcd-client-scheme, --etcd-peer-scheme,
--etcd-api, --etcd-ca-file, --etcd-cert-file, --etcd-key-file, --etcd-user),
--timeout, --dry-run.

Exit codes: 0 done (nothing to do included), 1 failed, 2 bad usage, 75 temporary
failure (no leader, an election, a cluster that has not decided its version yet): retry.
";

const STATUS_HELP: &str = "\
Usage: etcd-discovery status [--output table|json] [FLAGS]

Shows the group and the cluster side by side: each instance (id, zone, lifecycle state,
address) with its member (ID, name, started, learner, healthy, leader, DB size, raft
index); a member whose instance is gone is flagged stale, an instance without a member
is flagged. Then one line: what `discover` would do on this instance now, and why.
Read-only: it changes no membership, writes no file (but --metrics-file), never
completes a lifecycle action.

When: by hand, on any instance of the group, when something looks wrong; or from
outside (a laptop) with AWS keys, --region and --scaling-group-name or
--scaling-group-tag: no metadata service answers there, so nothing is said of discover.

Flags: those of `discover` (the same group and etcd flags and variables), --output
table|json (json: the same facts for scripts, in the shape the README documents).

Exit codes: 0 every instance is a healthy member and no member is stale, 1 something
needs attention (the ATTENTION column says what), 2 bad usage, 75 it could not look
(AWS or etcd unreachable).
";

const SNAPSHOT_HELP: &str = "\
Usage: etcd-discovery snapshot --snapshot-url s3://BUCKET/PREFIX [FLAGS]

Streams etcd's snapshot from the v3 gateway straight into S3 as a multipart upload, in
parts of 5 MiB: memory stays bounded whatever the database size. Only the current
leader uploads; on other members it says so and does nothing. The object is
PREFIX/etcd-snapshot-<UTC time>-r<revision>.db (names sort by time), and beside it
<name>.sha256 holds its sha256. The upload completes only when the stream ended whole
(etcd's own checksum matches); on any failure it is aborted, no part is left. Then the
oldest snapshots beyond --snapshot-keep are deleted. A cluster that formed moments ago
is not snapshotted until it has decided its version (waited for up to --wait-timeout).

When: etcd-discovery-snapshot.timer, every hour on every member.

Flags: --snapshot-url (ETCD_DISCOVERY_SNAPSHOT_URL), --snapshot-keep N (default 24),
the group's and etcd's flags of `etcd-discovery --help`, --wait-timeout, --timeout,
--dry-run. S3 is
asked in the bucket's region (HeadBucket names it; first guess --region, else the
instance's), or at AWS_ENDPOINT_URL_S3 (else AWS_ENDPOINT_URL), path-style.

Exit codes: 0 done (or not the leader), 1 failed, 2 bad usage, 75 temporary failure
(no leader, no cluster version yet, etcd or S3 unreachable): retry.
";

/// Rewrites Go-style arguments to `--name[=value]` so pico-args sees one syntax.
fn normalise(args: Vec<String>) -> Vec<String> {
    args.into_iter()
        .map(|arg| {
            let is_single_dash_flag = arg.len() > 1
                && arg.starts_with('-')
                && !arg.starts_with("--")
                && !arg[1..].starts_with(|c: char| c.is_ascii_digit());
            if is_single_dash_flag {
                format!("-{arg}")
            } else {
                arg
            }
        })
        .collect()
}

/// Go's `strconv.ParseBool`, which is what gambol99's flags accepted.
fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(Error::Usage(format!(
            "--{name} takes true or false, not {value:?}"
        ))),
    }
}

/// The raw values of the table's flags after the command line and the environment.
struct Raw {
    values: Vec<(&'static str, String)>,
    /// Flags given on the command line or through their variable (not defaulted).
    named: Vec<&'static str>,
    tags: Vec<String>,
    command: Command,
}

fn subcommand(word: &str) -> Option<Command> {
    match word {
        "discover" => Some(Command::Discover),
        "promote" => Some(Command::Promote),
        "leave" => Some(Command::Leave),
        "reconcile" => Some(Command::Reconcile),
        "status" => Some(Command::Status),
        "snapshot" => Some(Command::Snapshot),
        _ => None,
    }
}

impl Raw {
    fn named(&self, name: &str) -> bool {
        self.named.iter().any(|n| n.trim_start_matches('-') == name)
    }

    fn get(&self, name: &str) -> &str {
        self.values
            .iter()
            .find(|(n, _)| n.trim_start_matches('-') == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

fn read_raw(args: Vec<String>, env: &dyn Fn(&str) -> Option<String>) -> Result<Raw> {
    let mut from_command_line: Vec<(&'static str, String)> = Vec::new();
    let mut rest = Vec::new();
    // Boolean flags first: pico-args has no notion of `--flag=false`.
    for arg in normalise(args) {
        let (name, value) = arg
            .split_once('=')
            .map_or((arg.as_str(), None), |(n, v)| (n, Some(v)));
        match FLAGS.iter().find(|f| f.boolean && f.names.contains(&name)) {
            Some(flag) => {
                let on = value.map_or(Ok(true), |v| parse_bool(&name[2..], v))?;
                from_command_line.push((flag.names[0], on.to_string()));
            }
            None => rest.push(arg),
        }
    }
    let mut parser = pico_args::Arguments::from_vec(rest.into_iter().map(Into::into).collect());
    let tags: Vec<String> = parser
        .values_from_str("--scaling-group-tag")
        .map_err(|e| Error::Usage(e.to_string()))?;
    for flag in FLAGS
        .iter()
        .filter(|f| !f.boolean && f.names[0] != "--scaling-group-tag")
    {
        for name in flag.names {
            // Go keeps the last of a repeated flag; so do we.
            while let Some(v) = parser
                .opt_value_from_str::<_, String>(*name)
                .map_err(|e| Error::Usage(e.to_string()))?
            {
                from_command_line.push((flag.names[0], v));
            }
        }
    }
    let mut leftover = parser.finish();
    let mut command = Command::Discover;
    if let Some(name) = leftover
        .first()
        .and_then(|a| a.to_str())
        .and_then(subcommand)
    {
        command = name;
        leftover.remove(0);
    }
    if let Some(first) = leftover.first() {
        let first = first.to_string_lossy();
        let what = if first.starts_with('-') {
            "unknown flag"
        } else {
            "unexpected argument"
        };
        return Err(Error::Usage(format!("{what} {first:?}")));
    }

    let mut values = Vec::new();
    let mut named = Vec::new();
    for flag in FLAGS {
        let key = flag.names[0];
        let given = from_command_line
            .iter()
            .rev()
            .find(|(n, _)| *n == key)
            .map(|(_, v)| v.clone())
            .or_else(|| {
                flag.env
                    .iter()
                    .find_map(|e| env(e).filter(|v| !v.is_empty()))
            });
        if given.is_some() {
            named.push(key);
        }
        values.push((key, given.unwrap_or_else(|| flag.default.to_string())));
    }
    let mut tags = tags;
    if tags.is_empty() {
        if let Some(v) = env("ETCD_DISCOVERY_SCALING_GROUP_TAG") {
            tags = v
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect();
        }
    }
    Ok(Raw {
        values,
        named,
        tags,
        command,
    })
}

fn parse_scheme(flag: &str, value: &str) -> Result<Scheme> {
    match value {
        "http" => Ok(Scheme::Http),
        "https" => Ok(Scheme::Https),
        _ => Err(Error::Usage(format!(
            "--{flag} must be http or https, not {value:?}"
        ))),
    }
}

fn parse_port(flag: &str, value: &str) -> Result<u16> {
    match value.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(Error::Usage(format!(
            "--{flag} must be a port from 1 to 65535, not {value:?}"
        ))),
    }
}

fn optional_path(value: &str) -> Option<PathBuf> {
    (!value.is_empty()).then(|| PathBuf::from(value))
}

/// A group name or tag value as AWS allows it: printable, no control characters.
fn check_name(what: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() || value.len() > 255 || value.chars().any(char::is_control) {
        return Err(Error::Usage(format!(
            "{what} must be 1 to 255 printable characters, not {value:?}"
        )));
    }
    Ok(())
}

fn parse_tag(raw: &str) -> Result<(String, String)> {
    let (key, value) = raw
        .split_once('=')
        .ok_or_else(|| Error::Usage(format!("--scaling-group-tag takes KEY=VALUE, not {raw:?}")))?;
    check_name("a tag key", key)?;
    check_name("a tag value", value)?;
    Ok((key.to_string(), value.to_string()))
}

fn log_level(raw: &Raw) -> Result<log::LevelFilter> {
    let verbosity: u32 = raw
        .get("v")
        .parse()
        .map_err(|_| Error::Usage(format!("-v takes a number, not {:?}", raw.get("v"))))?;
    let by_name: log::LevelFilter = raw.get("log-level").parse().map_err(|_| {
        Error::Usage(format!(
            "--log-level must be error, warn, info, debug or trace, not {:?}",
            raw.get("log-level")
        ))
    })?;
    let by_verbosity = match verbosity {
        0 => log::LevelFilter::Info,
        1..=3 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    Ok(by_name.max(by_verbosity))
}

/// Parses the arguments (without the program name) and the environment into what to do.
pub fn parse(args: Vec<String>, env: &dyn Fn(&str) -> Option<String>) -> Result<Invocation> {
    // `help [CMD]`, `CMD --help`, `CMD -h`: a subcommand named first gets its own help.
    if args.first().map(String::as_str) == Some("help") {
        return match args.get(1) {
            None => Ok(Invocation::Help(None)),
            Some(word) => subcommand(word)
                .map(|c| Invocation::Help(Some(c)))
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "no help for {word:?}: use discover, promote, leave, reconcile, status or snapshot"
                    ))
                }),
        };
    }
    if args
        .iter()
        .any(|a| matches!(a.as_str(), "-h" | "-help" | "--help"))
    {
        let command = args.first().and_then(|a| subcommand(a));
        return Ok(Invocation::Help(command));
    }
    if args
        .iter()
        .any(|a| matches!(a.as_str(), "-V" | "-version" | "--version"))
    {
        return Ok(Invocation::Version);
    }
    let raw = read_raw(args, env)?;
    // Every boolean, from a flag or its variable, read the way Go's flags read it: a variable
    // may say 1, t or TRUE as well as true.
    let booleans = FLAGS
        .iter()
        .filter(|f| f.boolean)
        .map(|f| {
            let name = &f.names[0][2..];
            parse_bool(name, raw.get(name)).map(|on| (name, on))
        })
        .collect::<Result<Vec<_>>>()?;
    let bool_of = |name: &str| booleans.iter().any(|(n, on)| *n == name && *on);

    // monsanto: PROXY_ASG forces proxy mode for that group; ASG_BY_TAG makes the name a
    // value of the `Name` tag.
    let proxy_asg = env("PROXY_ASG").filter(|v| !v.is_empty());
    let proxy_mode = bool_of("proxy-mode") || proxy_asg.is_some();
    if raw.named("scaling-group-name") && raw.get("scaling-group-name").is_empty() {
        check_name("--scaling-group-name", "")?;
    }
    let name = match raw.get("scaling-group-name") {
        "" => proxy_asg.unwrap_or_default(),
        n => n.to_string(),
    };
    let by_tag = env("ASG_BY_TAG").is_some_and(|v| !v.is_empty());
    let mut tags = raw
        .tags
        .iter()
        .map(|t| parse_tag(t))
        .collect::<Result<Vec<_>>>()?;
    if !name.is_empty() {
        check_name("--scaling-group-name", &name)?;
    }
    let group = match (name.is_empty(), by_tag, tags.is_empty()) {
        (false, true, _) => {
            tags.push(("Name".to_string(), name));
            GroupSelector::Tagged(tags)
        }
        (false, false, true) => GroupSelector::Named(name),
        (false, false, false) => {
            return Err(Error::Usage(
                "give either --scaling-group-name or --scaling-group-tag, not both".into(),
            ))
        }
        (true, _, false) => GroupSelector::Tagged(tags),
        (true, _, true) => GroupSelector::Own,
    };
    if proxy_mode && group == GroupSelector::Own {
        return Err(Error::Usage(
            "--proxy-mode needs the masters' group: --scaling-group-name NAME (or PROXY_ASG)"
                .into(),
        ));
    }

    if bool_of("learner") && raw.get("etcd-api") == "v2" {
        return Err(Error::Usage(
            "--learner needs the v3 API; drop --etcd-api=v2".into(),
        ));
    }
    if proxy_mode && !matches!(raw.command, Command::Discover | Command::Status) {
        return Err(Error::Usage(
            "promote, leave, reconcile and snapshot act on members, not on proxy nodes".into(),
        ));
    }
    let output = match raw.get("output") {
        "table" => Output::Table,
        "json" => Output::Json,
        other => {
            return Err(Error::Usage(format!(
                "--output must be table or json, not {other:?}"
            )))
        }
    };
    if raw.named("output") && raw.command != Command::Status {
        return Err(Error::Usage(
            "--output goes with `etcd-discovery status`".into(),
        ));
    }
    if !raw.get("lifecycle-hook").is_empty() && raw.command != Command::Leave {
        return Err(Error::Usage(
            "--lifecycle-hook goes with `etcd-discovery leave`".into(),
        ));
    }
    if raw.named("metrics-file")
        && (raw.get("metrics-file").is_empty() || raw.get("metrics-file").ends_with('/'))
    {
        return Err(Error::Usage("--metrics-file must name a file".into()));
    }
    let snapshot_url = match raw.get("snapshot-url") {
        "" => None,
        url => Some(
            crate::aws::s3::Location::parse(url)
                .map_err(|e| Error::Usage(format!("--snapshot-url {e}")))?,
        ),
    };
    // `discover` restores into the data directory on total loss: it must know which one,
    // and never guesses the default. Proxies have no data, and other subcommands ignore it:
    // one environment file may serve every unit.
    if raw.command == Command::Discover
        && !proxy_mode
        && snapshot_url.is_some()
        && !raw.named("etcd-data-dir")
    {
        return Err(Error::Usage(
            "discover with --snapshot-url restores into etcd's data directory on total loss: \
             name it with --etcd-data-dir (or ETCD_DATA_DIR)"
                .into(),
        ));
    }
    if raw.command == Command::Snapshot && snapshot_url.is_none() {
        return Err(Error::Usage(
            "snapshot needs --snapshot-url s3://BUCKET/PREFIX (or ETCD_DISCOVERY_SNAPSHOT_URL)"
                .into(),
        ));
    }
    let snapshot_keep = match raw.get("snapshot-keep").parse::<usize>() {
        Ok(n) if n >= 1 => n,
        _ => {
            return Err(Error::Usage(format!(
                "--snapshot-keep takes a number of snapshots, 1 or more, not {:?}",
                raw.get("snapshot-keep")
            )))
        }
    };
    let environment_file = PathBuf::from(raw.get("environment-file"));
    if raw.get("environment-file").is_empty() || raw.get("environment-file").ends_with('/') {
        return Err(Error::Usage("--environment-file must name a file".into()));
    }

    let etcd_api = match raw.get("etcd-api") {
        "auto" => EtcdApi::Auto,
        "v2" => EtcdApi::V2,
        "v3" => EtcdApi::V3,
        other => {
            return Err(Error::Usage(format!(
                "--etcd-api must be auto, v2 or v3, not {other:?}"
            )))
        }
    };
    let etcd_tls = EtcdTls {
        ca_file: optional_path(raw.get("etcd-ca-file")),
        cert_file: optional_path(raw.get("etcd-cert-file")),
        key_file: optional_path(raw.get("etcd-key-file")),
    };
    if etcd_tls.cert_file.is_some() != etcd_tls.key_file.is_some() {
        return Err(Error::Usage(
            "--etcd-cert-file and --etcd-key-file go together".into(),
        ));
    }

    let etcd_user = match optional_string(raw.get("etcd-user")) {
        None => None,
        Some(value) => match value.split_once(':') {
            Some((name, password)) if !name.is_empty() => Some(EtcdUser {
                name: name.to_string(),
                password: password.to_string(),
            }),
            _ => {
                return Err(Error::Usage(
                    "--etcd-user (ETCDCTL_USER) must be USER:PASSWORD".into(),
                ))
            }
        },
    };

    let region = optional_string(raw.get("region"));
    if let Some(r) = &region {
        if !r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(Error::Usage(format!(
                "--region {r:?} is not an AWS region name"
            )));
        }
    }
    let endpoint = |specific: &str| {
        env(specific)
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .filter(|v| !v.is_empty())
    };
    let keys = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => Some(Credentials {
            access_key_id: id,
            secret_access_key: secret,
            session_token: env("AWS_SESSION_TOKEN").filter(|t| !t.is_empty()),
        }),
        _ => None,
    };
    let container_url = env("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .filter(|v| !v.is_empty())
        .or_else(|| {
            env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
                .filter(|v| !v.is_empty())
                .map(|rel| format!("http://169.254.170.2{rel}"))
        });
    let aws = AwsSettings {
        region,
        autoscaling_endpoint: endpoint("AWS_ENDPOINT_URL_AUTO_SCALING"),
        ec2_endpoint: endpoint("AWS_ENDPOINT_URL_EC2"),
        s3_endpoint: endpoint("AWS_ENDPOINT_URL_S3"),
        // The SDKs' order: a named endpoint beats the mode's.
        imds_endpoint: match env("AWS_EC2_METADATA_SERVICE_ENDPOINT").filter(|v| !v.is_empty()) {
            Some(url) => url,
            None => {
                let mode = raw.get("imds-endpoint-mode");
                crate::imds::endpoint_for_mode(mode)
                    .ok_or_else(|| {
                        Error::Usage(format!(
                            "--imds-endpoint-mode (AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE) {mode:?}: IPv4 or IPv6"
                        ))
                    })?
                    .to_string()
            }
        },
        keys,
        ca_bundle: env("AWS_CA_BUNDLE")
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from),
        shared_config: env("AWS_CONFIG_FILE")
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
            .or_else(|| {
                env("HOME")
                    .filter(|h| !h.is_empty())
                    .map(|h| std::path::Path::new(&h).join(".aws").join("config"))
            })
            .map(|file| {
                let profile = env("AWS_PROFILE")
                    .or_else(|| env("AWS_DEFAULT_PROFILE"))
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "default".into());
                (file, profile)
            }),
        container_credentials: container_url.map(|url| {
            (
                url,
                env("AWS_CONTAINER_AUTHORIZATION_TOKEN").filter(|t| !t.is_empty()),
            )
        }),
    };
    for url in [&aws.autoscaling_endpoint, &aws.ec2_endpoint]
        .into_iter()
        .flatten()
        .chain([&aws.imds_endpoint])
    {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::Usage(format!(
                "endpoint {url:?} must start with http:// or https://"
            )));
        }
    }

    Ok(Invocation::Run(Box::new(Config {
        environment_file,
        client_scheme: parse_scheme("etcd-client-scheme", raw.get("etcd-client-scheme"))?,
        peer_scheme: parse_scheme("etcd-peer-scheme", raw.get("etcd-peer-scheme"))?,
        client_port: parse_port("etcd-client-port", raw.get("etcd-client-port"))?,
        peer_port: parse_port("etcd-peer-port", raw.get("etcd-peer-port"))?,
        address_kind: if bool_of("private-addresses") || !bool_of("private-hostnames") {
            AddressKind::Ip
        } else {
            AddressKind::Hostname
        },
        address_family: match raw
            .get("address-family")
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "ipv4" | "" => AddressFamily::Ipv4,
            "ipv6" => AddressFamily::Ipv6,
            other => {
                return Err(Error::Usage(format!(
                    "--address-family {other:?}: ipv4 or ipv6"
                )))
            }
        },
        proxy_mode,
        group,
        etcd_api,
        etcd_tls,
        etcd_user,
        command: raw.command,
        learner: bool_of("learner"),
        listen_localhost: bool_of("listen-localhost"),
        url_variables: bool_of("url-variables"),
        lifecycle_hook: optional_string(raw.get("lifecycle-hook")),
        dry_run: bool_of("dry-run"),
        data_dir: PathBuf::from(raw.get("etcd-data-dir")),
        data_dir_named: raw.named("etcd-data-dir"),
        wait_timeout: parse_duration("wait-timeout", raw.get("wait-timeout"))?,
        boot_wait: parse_duration("boot-wait", raw.get("boot-wait"))?,
        timeout: parse_duration("timeout", raw.get("timeout"))?,
        aws,
        log_level: log_level(&raw)?,
        output,
        metrics_file: optional_path(raw.get("metrics-file")),
        snapshot_url,
        snapshot_keep,
    })))
}

/// Go's `time.ParseDuration` syntax (`90s`, `1m30s`, `500ms`, `1.5h`, `2h45m`, `0`), plus a
/// bare number of seconds (`90`), which this tool always took. A sign is refused: a negative
/// wait means nothing here. At most 24 days, so that no sum of waits overflows.
fn parse_duration(flag: &str, value: &str) -> Result<std::time::Duration> {
    let bad = |why: &str| {
        Error::Usage(format!(
            "--{flag} takes a duration like 90s, 1m30s, 500ms or 1h: {value:?} {why}"
        ))
    };
    if value.starts_with(['-', '+']) {
        return Err(bad("has a sign; write it without one"));
    }
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return match value.parse::<u64>() {
            Ok(n) if n <= MAX_DURATION_SECS => Ok(std::time::Duration::from_secs(n)),
            _ => Err(bad("is too long")),
        };
    }
    let nanos = go_duration_nanos(value).map_err(bad)?;
    if nanos > u128::from(MAX_DURATION_SECS) * 1_000_000_000 {
        return Err(bad("is too long"));
    }
    Ok(std::time::Duration::from_nanos(nanos as u64))
}

/// The longest duration any flag takes: 24 days.
const MAX_DURATION_SECS: u64 = 24 * 86_400;

/// Nanoseconds in an unsigned Go duration; the error says what is wrong.
fn go_duration_nanos(value: &str) -> std::result::Result<u128, &'static str> {
    if value == "0" {
        return Ok(0);
    }
    if value.is_empty() {
        return Err("is empty");
    }
    let mut rest = value;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or("has a number without a unit (ns, us, ms, s, m or h)")?;
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err("has an unknown unit (use ns, us, ms, s, m or h)"),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err("is not a number followed by a unit");
        }
        // Twenty digits or more is far past the limit: refuse before any overflow.
        if whole.len() > 19 {
            return Err("is too long");
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| "is not a number")?
        };
        let mut part = whole * scale;
        let mut divisor: u128 = 1;
        for digit in fraction.bytes().take(18) {
            divisor *= 10;
            part += u128::from(digit - b'0') * scale / divisor;
        }
        total = total.saturating_add(part);
        rest = tail;
    }
    Ok(total)
}

fn optional_string(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    // Issue 23: `leave --help` printed the whole tool's help; each subcommand has its own,
    // and the README's "Subcommands" section says the same words.
    #[test]
    fn each_subcommand_has_its_help_and_the_readme_says_the_same() {
        let readme = include_str!("../README.md");
        let env = |_: &str| None;
        for (word, command) in [
            ("discover", Command::Discover),
            ("promote", Command::Promote),
            ("leave", Command::Leave),
            ("reconcile", Command::Reconcile),
            ("status", Command::Status),
            ("snapshot", Command::Snapshot),
        ] {
            for args in [vec![word, "--help"], vec![word, "-h"], vec!["help", word]] {
                let args = args.into_iter().map(str::to_string).collect();
                assert!(
                    matches!(parse(args, &env), Ok(Invocation::Help(Some(c))) if c == command),
                    "failed testcase {word}"
                );
            }
            let heading = format!("### `etcd-discovery {word}`\n\n```text\n");
            let start = readme
                .find(&heading)
                .unwrap_or_else(|| panic!("README has no section {heading:?}"))
                + heading.len();
            let end = start + readme[start..].find("```").expect("block ends");
            assert_eq!(
                &readme[start..end],
                command_help(command),
                "README and `{word} --help` differ"
            );
        }
        assert!(matches!(
            parse(vec!["--help".to_string()], &env),
            Ok(Invocation::Help(None))
        ));
        assert!(parse(vec!["help".into(), "join".into()], &env).is_err());
    }

    // Issue 23: only 90s, 5m, 1h were taken; the Go seed's users write 1m30s and 500ms.
    #[test]
    fn durations_take_go_syntax() {
        use std::time::Duration;
        let ms = Duration::from_millis;
        let cases = [
            ("90", ms(90_000)),
            ("90s", ms(90_000)),
            ("5m", ms(300_000)),
            ("1h", ms(3_600_000)),
            ("0", ms(0)),
            ("0s", ms(0)),
            ("1m30s", ms(90_000)),
            ("500ms", ms(500)),
            ("1.5h", ms(5_400_000)),
            ("2h45m", ms(9_900_000)),
            (".5s", ms(500)),
            ("1.s", ms(1_000)),
            ("1500us", Duration::from_micros(1500)),
            ("1500\u{b5}s", Duration::from_micros(1500)),
            ("2000000ns", ms(2)),
            ("1h1m1s1ms", ms(3_661_001)),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_duration("timeout", text).ok(),
                Some(want),
                "failed testcase {text:?}"
            );
        }
        for bad in [
            "", "-1s", "+1s", "1", "1m30", "1d", "s", "1..5s", "1.2.3s", "h1", "1 s",
        ] {
            let bad = if bad == "1" { "1x" } else { bad };
            match parse_duration("timeout", bad) {
                Err(e) => assert!(
                    e.to_string().contains("--timeout takes a duration like"),
                    "failed testcase {bad:?}: {e}"
                ),
                Ok(d) => panic!("failed testcase {bad:?}: accepted as {d:?}"),
            }
        }
    }

    // Issue 23: `-V` was refused as an unknown flag.
    #[test]
    fn short_version_flag_is_taken() {
        let env = |_: &str| None;
        for flag in ["-V", "--version", "-version"] {
            assert!(
                matches!(parse(vec![flag.to_string()], &env), Ok(Invocation::Version)),
                "failed testcase {flag}"
            );
        }
    }

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Config> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let args = args.iter().map(|s| s.to_string()).collect();
        match parse(args, &|k| env.get(k).cloned())? {
            Invocation::Run(config) => Ok(*config),
            other => panic!("expected a run, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_gambol99s() {
        let c = run(&[], &[]).unwrap();
        assert_eq!(
            c.environment_file,
            PathBuf::from("/etc/sysconfig/etcd-peers")
        );
        assert_eq!(
            (c.client_scheme, c.peer_scheme),
            (Scheme::Https, Scheme::Https)
        );
        assert_eq!((c.client_port, c.peer_port), (2379, 2380));
        assert_eq!(c.address_kind, AddressKind::Hostname);
        assert_eq!(c.group, GroupSelector::Own);
        assert!(!c.proxy_mode && !c.dry_run);
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/etcd"));
        assert!(!c.data_dir_named);
        assert_eq!(c.wait_timeout.as_secs(), 300);
        assert_eq!(c.boot_wait.as_secs(), 60);
        assert_eq!(c.aws.imds_endpoint, "http://169.254.169.254");
    }

    // Issue 15: `snapshot` needs a bucket; the flag, its variable and --snapshot-keep.
    #[test]
    fn snapshot_flags() {
        use crate::aws::s3::Location;
        let c = run(&["snapshot", "-snapshot-url=s3://my-bucket/etcd/prod"], &[]).unwrap();
        assert_eq!(c.command, Command::Snapshot);
        assert_eq!(
            c.snapshot_url,
            Some(Location {
                bucket: "my-bucket".into(),
                prefix: "etcd/prod/".into()
            })
        );
        assert_eq!(c.snapshot_keep, 24);
        let c = run(
            &["snapshot", "--snapshot-keep", "3"],
            &[
                ("ETCD_DISCOVERY_SNAPSHOT_URL", "s3://other-bucket"),
                ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000"),
            ],
        )
        .unwrap();
        assert_eq!(c.snapshot_url.unwrap().bucket, "other-bucket");
        assert_eq!(c.snapshot_keep, 3);
        assert_eq!(c.aws.s3_endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        let c = run(&[], &[("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")]).unwrap();
        assert_eq!(c.aws.s3_endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        // Another subcommand ignores the variable: one environment file may serve every unit.
        let c = run(
            &["reconcile"],
            &[("ETCD_DISCOVERY_SNAPSHOT_URL", "s3://my-bucket")],
        )
        .unwrap();
        assert_eq!(c.command, Command::Reconcile);
        for (args, needle) in [
            (&["snapshot"][..], "snapshot needs --snapshot-url"),
            (
                &["--snapshot-url=s3://my-bucket"][..],
                "name it with --etcd-data-dir",
            ),
            (
                &["snapshot", "--snapshot-url=my-bucket/x"],
                "s3://BUCKET/PREFIX",
            ),
            (
                &["snapshot", "--snapshot-url=s3://My_Bucket"],
                "not an S3 bucket name",
            ),
            (
                &[
                    "snapshot",
                    "--snapshot-url=s3://my-bucket",
                    "--snapshot-keep=0",
                ],
                "--snapshot-keep",
            ),
            (
                &[
                    "snapshot",
                    "--snapshot-url=s3://my-bucket",
                    "-proxy-mode",
                    "-scaling-group-name=x",
                ],
                "not on proxy nodes",
            ),
        ] {
            match run(args, &[]) {
                Err(Error::Usage(m)) => {
                    assert!(m.contains(needle), "failed testcase {args:?}: {m}")
                }
                other => panic!("failed testcase {args:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn go_flag_syntax_from_gambol99s_readme() {
        let c = run(
            &[
                "-scaling-group-name=THE_GROUP",
                "-proxy-mode=true",
                "-environment-file=/etc/sysconfig/etcd-discovery",
                "-logtostderr",
                "-v=10",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(c.group, GroupSelector::Named("THE_GROUP".into()));
        assert!(c.proxy_mode);
        assert_eq!(
            c.environment_file,
            PathBuf::from("/etc/sysconfig/etcd-discovery")
        );
        assert_eq!(c.log_level, log::LevelFilter::Trace);
    }

    #[test]
    fn flag_forms_table() {
        type Check = fn(&Config) -> bool;
        let cases: Vec<(&[&str], Check)> = vec![
            (&["leave", "--lifecycle-hook", "etcd-leave"], |c| {
                c.command == Command::Leave && c.lifecycle_hook.as_deref() == Some("etcd-leave")
            }),
            (&["promote"], |c| c.command == Command::Promote),
            (&["reconcile", "-v=2"], |c| c.command == Command::Reconcile),
            (&["discover", "--learner"], |c| {
                c.command == Command::Discover && c.learner
            }),
            (&["--etcd-data-dir=/data/etcd"], |c| {
                c.data_dir == std::path::Path::new("/data/etcd") && c.data_dir_named
            }),
            (&["--wait-timeout=90"], |c| c.wait_timeout.as_secs() == 90),
            (&["--boot-wait=0"], |c| c.boot_wait.is_zero()),
            (&["-boot-wait", "2m"], |c| c.boot_wait.as_secs() == 120),
            (&["--wait-timeout", "2m"], |c| {
                c.wait_timeout.as_secs() == 120
            }),
            (&["-etcd-client-port", "4001"], |c| c.client_port == 4001),
            (&["--etcd-client-port=4001"], |c| c.client_port == 4001),
            (&["--etcd-peer-port", "7001"], |c| c.peer_port == 7001),
            (&["-etcd-client-schema=http"], |c| {
                c.client_scheme == Scheme::Http
            }),
            (&["-etcd-client-scheme=http"], |c| {
                c.client_scheme == Scheme::Http
            }),
            (&["-etcd-peer-scheme", "http"], |c| {
                c.peer_scheme == Scheme::Http
            }),
            (&["-private-addresses"], |c| {
                c.address_kind == AddressKind::Ip
            }),
            (&["-private-hostnames=false"], |c| {
                c.address_kind == AddressKind::Ip
            }),
            (&["-private-addresses=false"], |c| {
                c.address_kind == AddressKind::Hostname
            }),
            (&["--dry-run"], |c| c.dry_run),
            (&["-proxy-mode=false", "-scaling-group-name=g"], |c| {
                !c.proxy_mode
            }),
            (&["-v", "2"], |c| c.log_level == log::LevelFilter::Debug),
            (
                &[
                    "-log_dir=/tmp",
                    "-alsologtostderr",
                    "-stderrthreshold=INFO",
                    "-vmodule=x=2",
                    "-log_backtrace_at=:0",
                ],
                |_| true,
            ),
            (&["--etcd-api=v2"], |c| c.etcd_api == EtcdApi::V2),
            (&["--region", "eu-west-1"], |c| {
                c.aws.region.as_deref() == Some("eu-west-1")
            }),
            (
                &[
                    "--scaling-group-tag",
                    "role=etcd",
                    "--scaling-group-tag=env=prod",
                ],
                |c| {
                    c.group
                        == GroupSelector::Tagged(vec![
                            ("role".into(), "etcd".into()),
                            ("env".into(), "prod".into()),
                        ])
                },
            ),
            (&["-etcd-client-port=1", "-etcd-client-port=2"], |c| {
                c.client_port == 2
            }),
        ];
        for (args, check) in cases {
            let config = run(args, &[]).unwrap_or_else(|e| panic!("failed testcase {args:?}: {e}"));
            assert!(check(&config), "failed testcase: {args:?}");
        }
    }

    #[test]
    fn etcd_user_from_flag_or_etcdctl_variable() {
        let c = run(&[], &[("ETCDCTL_USER", "root:s3cr:et")]).unwrap();
        let user = c.etcd_user.clone().unwrap();
        assert_eq!(
            (user.name.as_str(), user.password.as_str()),
            ("root", "s3cr:et")
        );
        assert!(!format!("{c:?}").contains("s3cr"), "the password in Debug");
        for bad in ["root", ":pw"] {
            let e = run(&[&format!("--etcd-user={bad}")], &[]).unwrap_err();
            assert!(
                e.to_string().contains("USER:PASSWORD"),
                "failed testcase: {bad}: {e}"
            );
        }
    }

    #[test]
    fn monsanto_variables() {
        let c = run(
            &[],
            &[
                ("PROXY_ASG", "masters"),
                ("ETCD_CLIENT_SCHEME", "http"),
                ("ETCD_PEER_SCHEME", "http"),
            ],
        )
        .unwrap();
        assert!(c.proxy_mode);
        assert_eq!(c.group, GroupSelector::Named("masters".into()));
        assert_eq!(
            (c.client_scheme, c.peer_scheme),
            (Scheme::Http, Scheme::Http)
        );

        let c = run(
            &[],
            &[("PROXY_ASG", "etcd-masters"), ("ASG_BY_TAG", "true")],
        )
        .unwrap();
        assert_eq!(
            c.group,
            GroupSelector::Tagged(vec![("Name".into(), "etcd-masters".into())])
        );
    }

    #[test]
    fn boolean_variables_read_like_go_flags() {
        // Regression: a variable saying 1 or TRUE was accepted but read as false.
        for value in ["1", "t", "TRUE", "true"] {
            let c = run(
                &["-scaling-group-name=g"],
                &[
                    ("ETCD_DISCOVERY_PROXY_MODE", value),
                    ("ETCD_DISCOVERY_DRY_RUN", value),
                ],
            )
            .unwrap();
            assert!(c.proxy_mode && c.dry_run, "failed testcase: {value}");
        }
        let c = run(
            &["-scaling-group-name=g"],
            &[("ETCD_DISCOVERY_PROXY_MODE", "0")],
        )
        .unwrap();
        assert!(!c.proxy_mode);
        assert!(run(&[], &[("ETCD_DISCOVERY_DRY_RUN", "yes")]).is_err());
    }

    #[test]
    fn a_flag_beats_its_variable() {
        let c = run(
            &["-etcd-client-scheme=https"],
            &[("ETCD_CLIENT_SCHEME", "http")],
        )
        .unwrap();
        assert_eq!(c.client_scheme, Scheme::Https);
        let c = run(&["-scaling-group-name=a"], &[("PROXY_ASG", "b")]).unwrap();
        assert_eq!(c.group, GroupSelector::Named("a".into()));
    }

    #[test]
    fn imds_endpoint_mode() {
        let endpoint = |env: &[(&str, &str)]| run(&[], env).map(|c| c.aws.imds_endpoint);
        let mode = "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE";
        assert_eq!(
            endpoint(&[(mode, "IPv6")]).unwrap(),
            "http://[fd00:ec2::254]"
        );
        assert_eq!(
            endpoint(&[(mode, "IPv4")]).unwrap(),
            "http://169.254.169.254"
        );
        // An endpoint named outright wins, as in the SDKs.
        assert_eq!(
            endpoint(&[
                (mode, "IPv6"),
                ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1")
            ])
            .unwrap(),
            "http://127.0.0.1:1"
        );
        assert!(matches!(endpoint(&[(mode, "ipv5")]), Err(Error::Usage(_))));
        // Issue 22: the mode by flag too; the flag beats its variable.
        let flag = |args: &[&str]| run(args, &[(mode, "IPv4")]).map(|c| c.aws.imds_endpoint);
        assert_eq!(
            flag(&["--imds-endpoint-mode=IPv6"]).unwrap(),
            "http://[fd00:ec2::254]"
        );
        assert_eq!(
            flag(&["-imds-endpoint-mode", "ipv6"]).unwrap(),
            "http://[fd00:ec2::254]"
        );
        assert!(matches!(
            flag(&["--imds-endpoint-mode=both"]),
            Err(Error::Usage(_))
        ));
    }

    #[test]
    fn address_family() {
        let family = |args: &[&str], env: &[(&str, &str)]| run(args, env).map(|c| c.address_family);
        assert_eq!(family(&[], &[]).unwrap(), AddressFamily::Ipv4);
        assert_eq!(
            family(&["--address-family=ipv6"], &[]).unwrap(),
            AddressFamily::Ipv6
        );
        assert_eq!(
            family(&[], &[("ETCD_DISCOVERY_ADDRESS_FAMILY", "IPv6")]).unwrap(),
            AddressFamily::Ipv6
        );
        assert!(matches!(
            family(&["--address-family=dual"], &[]),
            Err(Error::Usage(_))
        ));
    }

    #[test]
    fn aws_environment() {
        let c = run(
            &[],
            &[
                ("AWS_ACCESS_KEY_ID", "AKID"),
                ("AWS_SECRET_ACCESS_KEY", "SECRET"),
                ("AWS_SESSION_TOKEN", "TOKEN"),
                ("AWS_REGION", "us-west-2"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
                ("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:5001"),
                (
                    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                    "/v2/credentials/abc",
                ),
            ],
        )
        .unwrap();
        assert_eq!(c.aws.region.as_deref(), Some("us-west-2"));
        assert_eq!(
            c.aws.autoscaling_endpoint.as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(c.aws.ec2_endpoint.as_deref(), Some("http://127.0.0.1:5001"));
        assert_eq!(
            c.aws.container_credentials,
            Some(("http://169.254.170.2/v2/credentials/abc".into(), None))
        );
        let keys = c.aws.keys.unwrap();
        assert_eq!(keys.session_token.as_deref(), Some("TOKEN"));
        assert!(
            !format!("{keys:?}").contains("SECRET"),
            "Debug must not show the secret"
        );
    }

    #[test]
    fn bad_usage_is_refused_with_a_reason() {
        /// (arguments, environment, what the message must say; empty when it is accepted)
        type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (&["--bogus"], &[], "unknown flag \"--bogus\""),
            (&["stray"], &[], "unexpected argument"),
            (&["-etcd-client-port=0"], &[], "port from 1 to 65535"),
            (&["-etcd-peer-port=70000"], &[], "port from 1 to 65535"),
            (&["-etcd-peer-scheme=ftp"], &[], "http or https"),
            (&["-proxy-mode"], &[], "needs the masters' group"),
            (
                &["-scaling-group-name="],
                &[("PROXY_ASG", "")],
                "scaling-group-name",
            ),
            (&["-scaling-group-name", "a\nb"], &[], "printable"),
            (&["-proxy-mode=maybe"], &[], "true or false"),
            (&["--etcd-api=v4"], &[], "auto, v2 or v3"),
            (&["--etcd-cert-file=/c.pem"], &[], "go together"),
            (&["--scaling-group-tag=novalue"], &[], "KEY=VALUE"),
            (&["-v=loud"], &[], "number"),
            (&["--environment-file="], &[], "environment-file"),
            (&["--environment-file=/etc/"], &[], "must name a file"),
            (&[], &[("AWS_ENDPOINT_URL", "127.0.0.1:5000")], "http://"),
            (&["--region=eu west"], &[], "region"),
            (&["--wait-timeout=soon"], &[], "duration"),
            (&["--learner", "--etcd-api=v2"], &[], "needs the v3 API"),
            (
                &["--lifecycle-hook=x"],
                &[],
                "goes with `etcd-discovery leave`",
            ),
            (
                &["leave", "-proxy-mode", "-scaling-group-name=g"],
                &[],
                "not on proxy nodes",
            ),
            (&["join"], &[], "unexpected argument \"join\""),
            (&["--wait-timeout=5d"], &[], "duration"),
            (&["--wait-timeout=-5m"], &[], "without one"),
            (&["--wait-timeout=1m30"], &[], "without a unit"),
            (&["--timeout=1.2.3s"], &[], "not a number"),
            (&["--timeout=30d"], &[], "unknown unit"),
            (&["--timeout=1000h"], &[], "too long"),
            (&["--boot-wait=s"], &[], "not a number"),
            (
                &[],
                &[("ETCD_DISCOVERY_BOOT_WAIT", "soon")],
                "--boot-wait takes a duration",
            ),
        ];
        for (args, env, needle) in cases {
            match run(args, env) {
                Err(e @ Error::Usage(_)) => {
                    assert!(
                        e.to_string().contains(needle),
                        "failed testcase {args:?}: {e}"
                    );
                    assert_eq!(e.exit_code(), 2);
                }
                Err(e) => panic!("failed testcase {args:?}: wrong error {e}"),
                Ok(_) if needle.is_empty() => {}
                Ok(c) => panic!("failed testcase {args:?}: accepted as {c:?}"),
            }
        }
    }

    #[test]
    fn help_lists_every_flag_with_its_variable() {
        let text = help();
        for flag in FLAGS {
            assert!(text.contains(flag.names[0]), "{}", flag.names[0]);
            for env in flag.env {
                assert!(text.contains(env), "{env}");
            }
        }
        assert!(text.contains("PROXY_ASG") && text.contains("ASG_BY_TAG"));
    }
}
