//! etcd-discovery: bootstraps or joins an etcd cluster from its AWS Auto Scaling group and
//! writes etcd's settings to an environment file. `main` parses, runs, and maps the one
//! result to an exit code.
#![forbid(unsafe_code)]

mod apply;
mod aws;
mod cli;
mod config;
mod datadir;
mod envfile;
mod error;
mod etcd;
mod http;
mod imds;
mod metrics;
mod model;
mod plan;
mod restore;
#[cfg(test)]
mod robustness;
mod run;
mod snapshot;
mod status;

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

/// Other crates never log above this, whatever `RUST_LOG` says: at trace, ureq hex-dumps every
/// byte it sends and receives (the instance profile's keys from IMDS, the session token, the
/// signature, the IMDS token), while its debug lines redact headers. Our own modules may go
/// to trace: they never log a secret.
const OTHER_CRATES_MAX: log::LevelFilter = log::LevelFilter::Debug;

/// env_logger's filter, with other crates capped at `OTHER_CRATES_MAX`. A filter directive
/// alone cannot cap them: `RUST_LOG=ureq_proto::util=trace` would win over `ureq=debug`.
struct CappedLogger(env_logger::Logger);

impl CappedLogger {
    fn allowed(metadata: &log::Metadata<'_>) -> bool {
        let target = metadata.target();
        let ours = target == "etcd_discovery" || target.starts_with("etcd_discovery::");
        ours || metadata.level() <= OTHER_CRATES_MAX
    }
}

impl log::Log for CappedLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        Self::allowed(metadata) && self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if Self::allowed(record.metadata()) {
            self.0.log(record);
        }
    }

    fn flush(&self) {
        self.0.flush();
    }
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
    let logger = builder.target(env_logger::Target::Stderr).build();
    let max = logger.filter();
    // Only fails when a logger is already set, which nothing here does.
    if log::set_boxed_logger(Box::new(CappedLogger(logger))).is_ok() {
        log::set_max_level(max);
    }
}

fn main() -> ExitCode {
    // Arguments and variables that are not UTF-8 are usage errors, not an abort (args())
    // or a silently ignored setting (var().ok()).
    let args: Result<Vec<String>, _> = std::env::args_os()
        .skip(1)
        .map(|a| {
            a.into_string()
                .map_err(|a| format!("the argument {a:?} is not valid UTF-8"))
        })
        .collect();
    let not_unicode = std::cell::RefCell::new(None);
    let variable = |name: &str| match std::env::var(name) {
        Ok(value) => Some(value),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            not_unicode.borrow_mut().get_or_insert(format!(
                "the variable {name} is not valid UTF-8; set it to a UTF-8 value or unset it"
            ));
            None
        }
    };
    let invocation = args.map_err(error::Error::Usage).and_then(|args| {
        let invocation = cli::parse(args, &variable)?;
        match not_unicode.borrow_mut().take() {
            Some(message) => Err(error::Error::Usage(message)),
            None => Ok(invocation),
        }
    });
    let config = match invocation {
        Ok(cli::Invocation::Run(config)) => config,
        Ok(cli::Invocation::Help(command)) => {
            match command {
                Some(command) => print!("{}", cli::command_help(command)),
                None => print!("{}", cli::help()),
            }
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
    let started = std::time::Instant::now();
    http::set_deadline(started + config.timeout);
    let tally = metrics::Tally::default();
    let result = run::run(&config, &tally);
    let code = match &result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("etcd-discovery: error: {e}");
            e.exit_code()
        }
    };
    if let Some(path) = &config.metrics_file {
        write_metrics(path, config.command.name(), started, code, &tally);
    }
    ExitCode::from(code as u8)
}

/// The run's metrics, whatever its outcome; a failure to write them is a warning, never a
/// changed exit code: the job's result matters more than its report.
fn write_metrics(
    path: &std::path::Path,
    command: &str,
    started: std::time::Instant,
    exit_code: i32,
    tally: &metrics::Tally,
) {
    let ending = metrics::Ending {
        command,
        ended: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default(),
        duration: started.elapsed(),
        exit_code,
    };
    let text = metrics::render(&ending, &tally.facts(), tally.aws.get(), tally.etcd.get());
    if let Err(e) = envfile::write_atomic(path, &text) {
        log::warn!("metrics: {e}");
    }
}
