//! `--metrics-file`: what the last run of a job did, in node_exporter's textfile-collector
//! format, so that an alert can say "the last discovery failed" or "a member has been stale
//! for an hour". `Tally` is passed down the run and filled at the edges (the HTTP clients
//! count requests and retries, `run` notes what it saw and decided); `render` is pure. Only
//! numbers and fixed words go in: never a name, an address or a secret.

use std::sync::Mutex;
use std::time::Duration;

use crate::http::Counter;

/// What one run saw and decided, as far as it got.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The plan's kind: `new`, `existing`, `proxy` or `wait`; `None` when the run stopped
    /// before deciding (or decides nothing, like `status` on a cluster it cannot see).
    pub plan: Option<&'static str>,
    /// From the last member list seen; `None` when no member answered.
    pub members: Option<Counts>,
}

/// The members, those with a leader, and those whose instance is gone.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub members: usize,
    /// `None` when the run did not ask (a plain reboot is decided without health).
    pub healthy: Option<usize>,
    pub stale: usize,
}

/// Filled during a run: requests and retries per service, and the facts.
#[derive(Debug, Default)]
pub struct Tally {
    pub aws: Counter,
    pub etcd: Counter,
    facts: Mutex<Facts>,
}

impl Tally {
    pub fn plan(&self, kind: &'static str) {
        if let Ok(mut facts) = self.facts.lock() {
            facts.plan = Some(kind);
        }
    }

    pub fn members(&self, counts: Option<Counts>) {
        if let Ok(mut facts) = self.facts.lock() {
            facts.members = counts;
        }
    }

    pub fn facts(&self) -> Facts {
        self.facts.lock().map(|f| f.clone()).unwrap_or_default()
    }
}

/// How a run ended, for `render`.
pub struct Ending<'a> {
    /// The subcommand: `discover`, `promote`, `leave`, `reconcile`, `status`.
    pub command: &'a str,
    /// When it ended, since the Unix epoch.
    pub ended: Duration,
    pub duration: Duration,
    pub exit_code: i32,
}

/// One gauge: its help, then one line per (labels, value).
fn gauge(out: &mut String, name: &str, help: &str, lines: &[(String, String)]) {
    out.push_str(&format!(
        "# HELP etcd_discovery_{name} {help}\n# TYPE etcd_discovery_{name} gauge\n"
    ));
    for (labels, value) in lines {
        out.push_str(&format!("etcd_discovery_{name}{{{labels}}} {value}\n"));
    }
}

/// The textfile-collector document for one run.
pub fn render(ending: &Ending, facts: &Facts, aws: (u64, u64), etcd: (u64, u64)) -> String {
    let command = format!("command=\"{}\"", ending.command);
    let one = |value: String| vec![(command.clone(), value)];
    let seconds = |d: Duration| format!("{:.3}", d.as_secs_f64());
    let mut out = String::new();
    gauge(
        &mut out,
        "last_run_timestamp_seconds",
        "When the last run of this subcommand ended (Unix time).",
        &one(seconds(ending.ended)),
    );
    gauge(
        &mut out,
        "last_run_duration_seconds",
        "How long the last run took.",
        &one(seconds(ending.duration)),
    );
    gauge(
        &mut out,
        "last_run_exit_code",
        "The last run's exit code: 0 done, 1 failed or needs attention, 2 bad usage, 75 temporary failure.",
        &one(ending.exit_code.to_string()),
    );
    gauge(
        &mut out,
        "last_run_plan",
        "The last run's decision: 1 for its kind (new, existing, proxy, wait; none when it stopped before deciding).",
        &[(
            format!("{command},kind=\"{}\"", facts.plan.unwrap_or("none")),
            "1".into(),
        )],
    );
    if let Some(counts) = facts.members {
        gauge(
            &mut out,
            "members",
            "Members in the cluster's member list, as the last run saw it.",
            &one(counts.members.to_string()),
        );
        if let Some(healthy) = counts.healthy {
            gauge(
                &mut out,
                "members_healthy",
                "Members with a leader, as the last run saw them.",
                &one(healthy.to_string()),
            );
        }
        gauge(
            &mut out,
            "members_stale",
            "Members whose name and address match no instance the group counts.",
            &one(counts.stale.to_string()),
        );
    }
    let per_service = |(aws, etcd): (u64, u64)| {
        vec![
            (format!("{command},service=\"aws\""), aws.to_string()),
            (format!("{command},service=\"etcd\""), etcd.to_string()),
        ]
    };
    gauge(
        &mut out,
        "last_run_requests",
        "HTTP requests the last run sent, per service.",
        &per_service((aws.0, etcd.0)),
    );
    gauge(
        &mut out,
        "last_run_retries",
        "Tries the last run made again after a failed one, per service.",
        &per_service((aws.1, etcd.1)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ending(code: i32) -> Ending<'static> {
        Ending {
            command: "discover",
            ended: Duration::from_millis(1_795_000_000_250),
            duration: Duration::from_millis(1_500),
            exit_code: code,
        }
    }

    /// (name with labels, value) of every sample; panics on a line that is neither.
    fn samples(text: &str) -> Vec<(String, String)> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (name, value) = l.rsplit_once(' ').expect("name value");
                (name.to_string(), value.to_string())
            })
            .collect()
    }

    #[test]
    fn a_decided_run_has_every_gauge() {
        let facts = Facts {
            plan: Some("existing"),
            members: Some(Counts {
                members: 3,
                healthy: Some(2),
                stale: 1,
            }),
        };
        let text = render(&ending(0), &facts, (4, 1), (7, 0));
        let got = samples(&text);
        let want = [
            (
                "etcd_discovery_last_run_timestamp_seconds{command=\"discover\"}",
                "1795000000.250",
            ),
            (
                "etcd_discovery_last_run_duration_seconds{command=\"discover\"}",
                "1.500",
            ),
            (
                "etcd_discovery_last_run_exit_code{command=\"discover\"}",
                "0",
            ),
            (
                "etcd_discovery_last_run_plan{command=\"discover\",kind=\"existing\"}",
                "1",
            ),
            ("etcd_discovery_members{command=\"discover\"}", "3"),
            ("etcd_discovery_members_healthy{command=\"discover\"}", "2"),
            ("etcd_discovery_members_stale{command=\"discover\"}", "1"),
            (
                "etcd_discovery_last_run_requests{command=\"discover\",service=\"aws\"}",
                "4",
            ),
            (
                "etcd_discovery_last_run_requests{command=\"discover\",service=\"etcd\"}",
                "7",
            ),
            (
                "etcd_discovery_last_run_retries{command=\"discover\",service=\"aws\"}",
                "1",
            ),
            (
                "etcd_discovery_last_run_retries{command=\"discover\",service=\"etcd\"}",
                "0",
            ),
        ];
        assert_eq!(got.len(), want.len(), "{text}");
        for (name, value) in want {
            assert!(
                got.iter().any(|(n, v)| n == name && v == value),
                "failed testcase: {name} {value}\n{text}"
            );
        }
        // Every sample has its HELP and TYPE before it.
        for (name, _) in &got {
            let bare = name.split('{').next().unwrap();
            assert!(text.contains(&format!("# TYPE {bare} gauge\n")), "{bare}");
            assert!(text.contains(&format!("# HELP {bare} ")), "{bare}");
        }
    }

    #[test]
    fn a_run_that_stopped_early_says_none_and_leaves_the_members_out() {
        let text = render(&ending(75), &Facts::default(), (2, 2), (0, 0));
        assert!(text.contains("etcd_discovery_last_run_exit_code{command=\"discover\"} 75\n"));
        assert!(
            text.contains("etcd_discovery_last_run_plan{command=\"discover\",kind=\"none\"} 1\n")
        );
        assert!(!text.contains("etcd_discovery_members"), "{text}");
    }

    #[test]
    fn counters_count_across_clones() {
        let tally = Tally::default();
        let http = crate::http::Http::new(
            crate::http::Timeouts {
                connect: Duration::from_millis(1),
                call: Duration::from_millis(1),
            },
            ureq::tls::TlsConfig::default(),
            false,
        )
        .counting(&tally.aws);
        http.clone().note_retry();
        http.note_retry();
        assert_eq!(tally.aws.get(), (0, 2));
        assert_eq!(tally.etcd.get(), (0, 0));
    }
}
