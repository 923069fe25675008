//! One run, start to finish: observe (IMDS, AWS, etcd), decide (`plan`), act (`apply`), write
//! (`envfile`). This module wires the edges together; it makes no decision of its own.

use std::time::{Duration, SystemTime};

use crate::aws::autoscaling::{self, GroupQuery};
use crate::aws::query::QueryClient;
use crate::aws::{credentials, ec2, endpoint};
use crate::cli::{Config, GroupSelector};
use crate::error::{Error, Result};
use crate::etcd::{self, Discovery};
use crate::http::{etcd_tls, Http, Timeouts};
use crate::imds::Imds;
use crate::model::{counts_in_cluster, Group, Instance, Observed};
use crate::plan::{self, Mode, Settings};
use crate::{apply, envfile};

/// IMDS and the container endpoint are link-local: they answer in milliseconds or not at all.
const LOCAL: Timeouts = Timeouts {
    connect: Duration::from_secs(1),
    call: Duration::from_secs(3),
};
/// etcd peers: a dead address must cost about a second.
const ETCD: Timeouts = Timeouts {
    connect: Duration::from_millis(1500),
    call: Duration::from_secs(10),
};
const AWS: Timeouts = Timeouts {
    connect: Duration::from_secs(3),
    call: Duration::from_secs(20),
};

fn sleep(d: Duration) {
    std::thread::sleep(d);
}

/// The groups that form the cluster, and the text the cluster token is derived from.
fn find_groups(
    client: &QueryClient,
    selector: &GroupSelector,
    instance_id: &str,
) -> Result<(Vec<Group>, String)> {
    let (groups, selection) = match selector {
        GroupSelector::Own => {
            let names = autoscaling::groups_of_instance(client, instance_id)?;
            if names.is_empty() {
                return Err(Error::Usage(format!(
                    "instance {instance_id} is in no Auto Scaling group; name the masters' group with --scaling-group-name"
                )));
            }
            let mut selection = names.clone();
            selection.sort();
            (
                autoscaling::describe_groups(client, GroupQuery::Names(&names))?,
                selection.join(","),
            )
        }
        GroupSelector::Named(name) => (
            autoscaling::describe_groups(client, GroupQuery::Names(std::slice::from_ref(name)))?,
            name.clone(),
        ),
        GroupSelector::Tagged(tags) => {
            let mut selection: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            selection.sort();
            (
                autoscaling::describe_groups(client, GroupQuery::Tags(tags))?,
                selection.join(","),
            )
        }
    };
    if groups.is_empty() {
        return Err(Error::Usage(format!(
            "no Auto Scaling group matches {selection:?}; check the name or tags"
        )));
    }
    Ok((groups, selection))
}

/// Counted instance ids of the groups, sorted and unique.
fn counted_ids(groups: &[Group]) -> Vec<String> {
    let mut ids: Vec<String> = groups
        .iter()
        .flat_map(|g| g.instances.iter())
        .filter(|(_, state)| counts_in_cluster(state))
        .map(|(id, _)| id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

pub fn run(config: &Config) -> Result<()> {
    envfile::check_directory(&config.environment_file)?;
    let local = Http::new(LOCAL, ureq::tls::TlsConfig::default(), false);
    let etcd_http = Http::new(ETCD, etcd_tls(&config.etcd_tls)?, false);
    let aws_http = Http::new(AWS, ureq::tls::TlsConfig::default(), true);

    let imds = Imds::connect(&local, &config.aws.imds_endpoint, &sleep)?;
    let me = imds.identity(&sleep)?;
    log::info!(
        "this is {} ({}, {}) in {}",
        me.instance_id,
        me.private_ip,
        me.private_dns,
        me.availability_zone
    );
    let region = config
        .aws
        .region
        .clone()
        .unwrap_or_else(|| me.region.clone());
    let credentials = credentials::resolve(&config.aws, &local, &imds, &sleep)?;

    let client =
        |service: &'static str, version: &'static str, configured: Option<&str>| QueryClient {
            http: &aws_http,
            endpoint: endpoint(service, &region, configured),
            region: region.clone(),
            service,
            version,
            credentials: &credentials,
            sleep: &sleep,
            clock: SystemTime::now,
        };
    let autoscaling = client(
        "autoscaling",
        autoscaling::VERSION,
        config.aws.autoscaling_endpoint.as_deref(),
    );
    let ec2 = client("ec2", ec2::VERSION, config.aws.ec2_endpoint.as_deref());

    let (groups, selection) = find_groups(&autoscaling, &config.group, &me.instance_id)?;
    let ids = counted_ids(&groups);
    let mut instances: Vec<Instance> = ec2::describe_instances(&ec2, &ids)?
        .into_iter()
        .filter(|i| ids.contains(&i.id))
        .collect();
    // An id AutoScaling lists but EC2 does not know (yet) stays, without an address.
    for id in &ids {
        if !instances.iter().any(|i| &i.id == id) {
            instances.push(Instance {
                id: id.clone(),
                private_ip: String::new(),
                private_dns: String::new(),
            });
        }
    }
    instances.sort_by(|a, b| a.id.cmp(&b.id));
    let group_names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
    log::info!(
        "group(s) {}: {} counted instances",
        group_names.join(","),
        instances.len()
    );

    let settings = Settings {
        peer_scheme: config.peer_scheme,
        client_scheme: config.client_scheme,
        peer_port: config.peer_port,
        client_port: config.client_port,
        address_kind: config.address_kind,
        proxy_mode: config.proxy_mode,
        cluster_token: plan::cluster_token(&selection),
    };
    let client_urls: Vec<String> = instances
        .iter()
        .filter_map(|i| settings.client_url(i).ok())
        .collect();
    let discovery = etcd::discover(&etcd_http, &client_urls, config.etcd_api)?;
    let (etcd, members) = match discovery {
        Discovery::Found(etcd, members) => (Some(etcd), Some(members)),
        Discovery::NobodyAnswered => (None, None),
    };
    let observed = Observed {
        me,
        instances,
        members,
    };
    let plan = plan::plan(&observed, &settings)?;
    log::info!("{}", plan.summary);

    // Render what we expect before touching the cluster: a value that cannot go into the file
    // stops the run before any membership change.
    let predicted = observed
        .members
        .as_deref()
        .map(|m| plan::predicted_members(m, &plan.actions));
    let predicted_text = envfile::render(&plan::environment(
        &plan,
        &observed,
        predicted.as_deref(),
        &settings,
    )?)?;
    if config.dry_run {
        println!("# plan: {}", plan.summary);
        for action in &plan.actions {
            println!("# would {action:?}");
        }
        print!("{predicted_text}");
        return Ok(());
    }

    let text = match (&etcd, plan.mode) {
        (Some(etcd), Mode::Existing) if !plan.actions.is_empty() => {
            let members = apply::apply(etcd, &plan.actions, &sleep)?;
            envfile::render(&plan::environment(
                &plan,
                &observed,
                Some(&members),
                &settings,
            )?)?
        }
        _ => predicted_text,
    };
    match envfile::write_atomic(&config.environment_file, &text)? {
        envfile::Written::Replaced => log::info!("wrote {}", config.environment_file.display()),
        envfile::Written::Unchanged => {
            log::info!("{} is up to date", config.environment_file.display())
        }
    }
    Ok(())
}
