//! An HTTP proxy in front of moto that counts every AWS call and answers a share of them
//! with AWS's `Throttling` error, as an account's request rate does when a fleet boots at
//! once. Which calls are throttled comes from a seeded generator: the same seed throttles
//! the same share, in the order the calls arrive.

// Shared by several test binaries; each uses a different part.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::client::request;
use super::fake::{FakeServer, Request};

/// The error document AutoScaling sends with HTTP 400 (EC2 says `RequestLimitExceeded`; the
/// tool retries both). The shape of `fixtures/autoscaling/error-throttling.xml`.
const THROTTLING: &str = r#"<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>0d4e1b5a-0000-4000-8000-000000000004</RequestId></ErrorResponse>"#;

pub struct ThrottlingProxy {
    pub server: FakeServer,
    /// Calls answered `Throttling`.
    pub throttled: Arc<AtomicU64>,
}

impl ThrottlingProxy {
    /// Listens on `ip` (any free port), forwards to `upstream` (moto's URL), and throttles
    /// `percent` of the calls.
    pub fn start(ip: &str, upstream: &str, percent: u64, seed: u64) -> ThrottlingProxy {
        let upstream = upstream.trim_end_matches('/').to_string();
        let state = Arc::new(AtomicU64::new(seed | 1));
        let throttled = Arc::new(AtomicU64::new(0));
        let counted = throttled.clone();
        let server = FakeServer::start(ip, move |r: &Request| {
            // xorshift64, one step per call; the atomic update keeps it one sequence.
            let roll = state
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |mut x| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    Some(x)
                })
                .unwrap_or(1);
            if roll % 100 < percent {
                counted.fetch_add(1, Ordering::SeqCst);
                return (400, THROTTLING.into());
            }
            let headers: Vec<(&str, &str)> = r
                .headers
                .iter()
                .filter(|(n, _)| {
                    !["host", "content-length", "connection"]
                        .iter()
                        .any(|skip| n.eq_ignore_ascii_case(skip))
                })
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            match request(
                &r.method,
                &format!("{upstream}{}", r.path),
                &headers,
                &r.body,
            ) {
                Ok(answer) => answer,
                Err(e) => (502, format!("proxy: {e}")),
            }
        });
        ThrottlingProxy { server, throttled }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Every call that reached the proxy, throttled or not.
    pub fn requests(&self) -> Vec<Request> {
        self.server.requests()
    }
}
