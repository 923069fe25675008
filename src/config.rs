//! The settled configuration of a run: what `cli` makes of the flags and variables, and what
//! `run` acts on. Types only, no parsing and no I/O. Each setting whose meaning belongs to one
//! client (URL schemes to `plan`, the etcd API to `etcd`, TLS files to `http`, keys to
//! `aws::credentials`) lives there; this module only gathers them, so the clients and the
//! transport never reach up into the flag parser.

use std::path::PathBuf;

use crate::aws::credentials::Credentials;
use crate::etcd::{EtcdApi, EtcdUser};
use crate::http::EtcdTls;
use crate::model::AddressFamily;
use crate::plan::{AddressKind, Scheme};
use crate::status::Output;

/// Which Auto Scaling group(s) form the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupSelector {
    /// The group this instance belongs to (DescribeAutoScalingInstances).
    Own,
    /// A group by name; the lookup of our own group is skipped.
    Named(String),
    /// Every group carrying all these tags (one group per availability zone is common).
    Tagged(Vec<(String, String)>),
}

/// Where AWS lives for this run, from the SDKs' environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// `--region`, `AWS_REGION`, `AWS_DEFAULT_REGION`; else the identity document's.
    pub region: Option<String>,
    pub autoscaling_endpoint: Option<String>,
    pub ec2_endpoint: Option<String>,
    pub imds_endpoint: String,
    pub keys: Option<Credentials>,
    /// The ECS/container credentials URL and its optional `Authorization` value.
    pub container_credentials: Option<(String, Option<String>)>,
    /// `AWS_CA_BUNDLE`: a PEM file whose certificates replace the bundled web roots for AWS
    /// API calls (as the AWS SDKs do), for TLS-inspecting proxies and private CAs. Never used
    /// for IMDS or etcd.
    pub ca_bundle: Option<std::path::PathBuf>,
    /// The shared config file (`AWS_CONFIG_FILE`, else `~/.aws/config`) and the profile
    /// (`AWS_PROFILE`, else `default`): its `ca_bundle` is used when `AWS_CA_BUNDLE` is not set.
    pub shared_config: Option<(std::path::PathBuf, String)>,
    /// `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`: S3 is then called path-style there.
    pub s3_endpoint: Option<String>,
}

/// What a run does. The default job needs no subcommand (the seeds had none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Bootstrap or join, write the environment file (before etcd starts).
    Discover,
    /// Promote this node from learner to voter once it has caught up (`ExecStartPost=`).
    Promote,
    /// Remove this node's member when that keeps quorum (`ExecStop=`, termination hook).
    Leave,
    /// On the leader only: remove members whose instances are gone (a systemd timer).
    Reconcile,
    /// Read-only: the group and the cluster side by side, and what `discover` would do.
    Status,
    /// On the leader only: stream etcd's snapshot into S3 (a systemd timer).
    Snapshot,
}

impl Command {
    /// The subcommand's word on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Command::Discover => "discover",
            Command::Promote => "promote",
            Command::Leave => "leave",
            Command::Reconcile => "reconcile",
            Command::Status => "status",
            Command::Snapshot => "snapshot",
        }
    }
}

/// A validated run configuration. Every field has one meaning and one source of truth.
#[derive(Debug, Clone)]
pub struct Config {
    pub command: Command,
    /// Join as a non-voting learner (etcd 3.4+, v3 API); `promote` makes it a voter.
    pub learner: bool,
    /// etcd listens for clients on 127.0.0.1 too (`--listen-localhost`).
    pub listen_localhost: bool,
    /// Write etcd's listen and advertise URLs too (`--url-variables`). Without them the file
    /// holds what the seed tools wrote, for a unit that passes those URLs as flags: etcd
    /// refuses to start when a flag shadows a variable.
    pub url_variables: bool,
    /// With `leave`: complete this termination lifecycle hook once the member is gone.
    pub lifecycle_hook: Option<String>,
    /// Where the `KEY=value` file for etcd's `EnvironmentFile=` goes.
    pub environment_file: PathBuf,
    pub client_scheme: Scheme,
    pub peer_scheme: Scheme,
    pub client_port: u16,
    pub peer_port: u16,
    pub address_kind: AddressKind,
    /// In a dual-stack group, the private address peers are reached at (`--address-family`).
    pub address_family: AddressFamily,
    /// Consumer node: never change membership, write proxy/gateway settings.
    pub proxy_mode: bool,
    pub group: GroupSelector,
    pub etcd_api: EtcdApi,
    pub etcd_tls: EtcdTls,
    /// Logs in to etcd with this user (`--etcd-user`, `ETCDCTL_USER`); its password is never
    /// logged.
    pub etcd_user: Option<EtcdUser>,
    /// Print the plan and the file; change nothing.
    pub dry_run: bool,
    /// etcd's data directory: a started member without `member/` data here must be re-added.
    pub data_dir: PathBuf,
    /// Whether the operator named the data directory (flag or `ETCD_DATA_DIR`). Only then is
    /// a directory without member data taken as lost: Debian's package leaves an empty
    /// `/var/lib/etcd` behind even when etcd keeps its data elsewhere.
    pub data_dir_named: bool,
    /// How long to wait for the whole group to be visible before bootstrapping.
    pub wait_timeout: std::time::Duration,
    /// How long what is only "not yet" at boot is waited for: a metadata service or network
    /// that comes up late, this instance not yet listed by AutoScaling (then exit 75).
    pub boot_wait: std::time::Duration,
    /// The whole run's limit: every call and every retry stops there (exit 75).
    pub timeout: std::time::Duration,
    pub aws: AwsSettings,
    /// From `-v=N` / `--log-level`; `RUST_LOG` overrides it.
    pub log_level: log::LevelFilter,
    /// With `status`: a table, or JSON for scripts (`--output`).
    pub output: Output,
    /// Where every run writes what it did, for node_exporter's textfile collector.
    pub metrics_file: Option<PathBuf>,
    /// Where `snapshot` uploads (`--snapshot-url s3://BUCKET/PREFIX`).
    pub snapshot_url: Option<crate::aws::s3::Location>,
    /// How many snapshots `snapshot` keeps; older ones are deleted (`--snapshot-keep`).
    pub snapshot_keep: usize,
}
