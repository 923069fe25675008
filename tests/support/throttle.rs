//! An HTTP proxy in front of moto that counts every AWS call and answers a share of them
//! with the service's own throttling error, as an account's request rate does when a fleet
//! boots at once: EC2 calls get `RequestLimitExceeded` in EC2's error shape, AutoScaling
//! calls `Throttling` in the Query API's. Which calls are throttled comes from a seeded
//! generator: the same seed throttles the same share, in the order the calls arrive.

// Shared by several test binaries; each uses a different part.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::client::request;
use super::fake::{FakeServer, Request};

/// AutoScaling's answer to a throttled call, with HTTP 400: the Query API's `ErrorResponse`
/// (AutoScaling API Reference, Common Errors: `Throttling`, 400), the shape of
/// `fixtures/autoscaling/error-throttling.xml`.
const THROTTLING: &str = r#"<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>0d4e1b5a-0000-4000-8000-000000000004</RequestId></ErrorResponse>"#;

/// EC2's answer, with HTTP 503: `Response/Errors/Error` and `RequestID` (Amazon EC2 API
/// Reference, "Error codes for the Amazon EC2 API", its example error response and the code
/// `RequestLimitExceeded`), the shape of `fixtures/ec2/error-request-limit-exceeded.xml`. The
/// reference gives no status for it; 503 is what the SDKs report for it ("Status Code: 503;
/// Error Code: RequestLimitExceeded" in the issues of cloudfoundry/bosh-aws-cpi-release #61
/// and haskell-mafia/mismi #196).
const REQUEST_LIMIT_EXCEEDED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>ea966190-0000-4000-8000-000000000001</RequestID></Response>"#;

/// The service a SigV4-signed call is for, from its credential scope
/// (`Credential=KEY/DATE/REGION/SERVICE/aws4_request`), as moto itself routes it.
pub fn service(r: &Request) -> Option<String> {
    let auth = r
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))?;
    let scope = auth.1.split("Credential=").nth(1)?;
    scope.split('/').nth(3).map(str::to_string)
}

/// What a throttled call is answered: EC2's error or AutoScaling's.
pub fn throttled_answer(r: &Request) -> (u16, String) {
    if service(r).as_deref() == Some("ec2") {
        (503, REQUEST_LIMIT_EXCEEDED.into())
    } else {
        (400, THROTTLING.into())
    }
}

pub struct ThrottlingProxy {
    pub server: FakeServer,
    /// Calls answered with a throttling error (either service).
    pub throttled: Arc<AtomicU64>,
    /// Of those, EC2 calls (answered `RequestLimitExceeded`).
    pub throttled_ec2: Arc<AtomicU64>,
}

impl ThrottlingProxy {
    /// Listens on `ip` (any free port), forwards to `upstream` (moto's URL), and throttles
    /// `percent` of the calls.
    pub fn start(ip: &str, upstream: &str, percent: u64, seed: u64) -> ThrottlingProxy {
        let upstream = upstream.trim_end_matches('/').to_string();
        let state = Arc::new(AtomicU64::new(seed | 1));
        let throttled = Arc::new(AtomicU64::new(0));
        let counted = throttled.clone();
        let throttled_ec2 = Arc::new(AtomicU64::new(0));
        let counted_ec2 = throttled_ec2.clone();
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
                let answer = throttled_answer(r);
                if answer.0 == 503 {
                    counted_ec2.fetch_add(1, Ordering::SeqCst);
                }
                return answer;
            }
            let headers = r.forwarded_headers();
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
        ThrottlingProxy {
            server,
            throttled,
            throttled_ec2,
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Every call that reached the proxy, throttled or not.
    pub fn requests(&self) -> Vec<Request> {
        self.server.requests()
    }
}
