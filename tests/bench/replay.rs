//! Where the 1,000-instance group's time goes: a recorder in front of moto keeps each AWS
//! answer (keyed by the request's form body, which holds no time or signature) with how long
//! moto took; a replay server then answers the same calls from that record, each held a
//! fixed time, as a remote AWS endpoint would. Nothing is written by hand: the record is
//! made in the same bench run.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::client::request;
use super::fake::{FakeServer, Request};

/// One recorded call: its answer and how long moto took to give it.
#[derive(Clone)]
pub struct Recorded {
    pub action: String,
    pub status: u16,
    pub answer: String,
    pub moto_ms: f64,
}

pub type Record = Arc<Mutex<HashMap<String, Recorded>>>;

/// A proxy on `ip` that forwards to `upstream` and records every answer.
pub fn recorder(ip: &str, upstream: &str) -> (FakeServer, Record) {
    let upstream = upstream.trim_end_matches('/').to_string();
    let record: Record = Arc::default();
    let kept = record.clone();
    let server = FakeServer::start(ip, move |r: &Request| {
        let headers = r.forwarded_headers();
        let started = Instant::now();
        let (status, answer) = request(
            &r.method,
            &format!("{upstream}{}", r.path),
            &headers,
            &r.body,
        )
        .unwrap_or_else(|e| (502, format!("recorder: {e}")));
        kept.lock().unwrap().insert(
            r.body.clone(),
            Recorded {
                action: r.param("Action").unwrap_or_default(),
                status,
                answer: answer.clone(),
                moto_ms: started.elapsed().as_secs_f64() * 1000.0,
            },
        );
        (status, answer)
    });
    (server, record)
}

/// Answers the recorded calls, each after `latency_ms`; an unrecorded one gets a 500 that
/// fails the run.
pub fn replay(ip: &str, record: &Record, latency_ms: u64) -> FakeServer {
    let record = record.lock().unwrap().clone();
    let server = FakeServer::start(ip, move |r: &Request| match record.get(&r.body) {
        Some(c) => (c.status, c.answer.clone()),
        None => (500, format!("replay: no recorded answer for {}", r.body)),
    });
    server.latency_ms.store(latency_ms, Ordering::SeqCst);
    server
}
