//! etcd-discovery: bootstraps or joins an etcd cluster from its AWS Auto Scaling group and
//! writes etcd's settings to an environment file. `main` parses, runs, and maps the one
//! result to an exit code.
#![forbid(unsafe_code)]

mod apply;
mod aws;
mod cli;
mod config;
mod envfile;
mod error;
mod etcd;
mod http;
mod imds;
mod model;
mod plan;
#[cfg(test)]
mod robustness;
mod run;

use std::io::Write;
use std::process::ExitCode;

/// `etcd-discovery 0.1.0 (commit 0123abcd, x86_64-unknown-linux-musl)`: what was built, from
/// what, for what. `build.sh` passes the commit in.
fn version() -> String {
    let libc = if cfg!(target_env = "musl") {
        "musl"
    } else {
        "gnu"
    };
    format!(
        "etcd-discovery {} (commit {}, {}-unknown-{}-{libc})",
        env!("CARGO_PKG_VERSION"),
        option_env!("ETCD_DISCOVERY_COMMIT").unwrap_or("unknown"),
        std::env::consts::ARCH,
        std::env::consts::OS,
    )
}

fn init_logging(level: log::LevelFilter) {
    let mut builder = env_logger::Builder::new();
    builder
        .filter_level(log::LevelFilter::Warn)
        .filter_module("etcd_discovery", level)
        .format(|buf, record| {
            writeln!(
                buf,
                "etcd-discovery: {}: {}",
                record.level().as_str().to_lowercase(),
                record.args()
            )
        });
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    builder.target(env_logger::Target::Stderr).init();
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let invocation = cli::parse(args, &|name| std::env::var(name).ok());
    let config = match invocation {
        Ok(cli::Invocation::Run(config)) => config,
        Ok(cli::Invocation::Help) => {
            print!("{}", cli::help());
            return ExitCode::SUCCESS;
        }
        Ok(cli::Invocation::Version) => {
            println!("{}", version());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("etcd-discovery: error: {e}");
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    init_logging(config.log_level);
    http::set_deadline(std::time::Instant::now() + config.timeout);
    match run::run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("etcd-discovery: error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
