//! A tiny HTTP/1.1 server for tests: one thread per connection, a handler closure that sees
//! each request and answers (status, body), and a record of every request for assertions.
//! Stopped (and its port closed) when dropped.

// Shared by several test binaries; each uses a different part.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The body as sent (an S3 part is binary; `body` is its lossy text).
    pub bytes: Vec<u8>,
    /// When the request was read, and when its answer was ready.
    pub received: Instant,
    pub answered: Instant,
}

/// The number of round trips on the critical path: the longest chain of requests in which
/// each one was sent only after the one before it was answered. Requests made in parallel
/// count once.
pub fn sequential_round_trips(requests: &[Request]) -> usize {
    let mut sorted: Vec<&Request> = requests.iter().collect();
    sorted.sort_by_key(|r| r.received);
    let mut depth: Vec<usize> = Vec::with_capacity(sorted.len());
    for (i, r) in sorted.iter().enumerate() {
        let before = (0..i)
            .filter(|&j| sorted[j].answered <= r.received)
            .map(|j| depth[j])
            .max()
            .unwrap_or(0);
        depth.push(before + 1);
    }
    depth.into_iter().max().unwrap_or(0)
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The headers a proxy passes on: all but those of this hop (`host`, `content-length`,
    /// `connection`), which the client of the next one sets.
    pub fn forwarded_headers(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .filter(|(n, _)| {
                !["host", "content-length", "connection"]
                    .iter()
                    .any(|hop| n.eq_ignore_ascii_case(hop))
            })
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    /// A form parameter of an AWS Query request.
    pub fn param(&self, name: &str) -> Option<String> {
        self.body.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name).then(|| percent_decode(v))
        })
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Answers a request: status, extra headers (S3's `ETag`), body.
pub type Handler = dyn Fn(&Request) -> (u16, Vec<(String, String)>, String) + Send + Sync;

pub struct FakeServer {
    pub port: u16,
    pub ip: String,
    pub requests: Arc<Mutex<Vec<Request>>>,
    /// Milliseconds every answer is held back: a network's round trip, so that requests a
    /// client sends in parallel overlap visibly (see `sequential_round_trips`).
    pub latency_ms: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl FakeServer {
    pub fn start(
        ip: &str,
        handler: impl Fn(&Request) -> (u16, String) + Send + Sync + 'static,
    ) -> FakeServer {
        FakeServer::start_on(ip, 0, handler)
    }

    /// On a given port (0: any free one).
    pub fn start_on(
        ip: &str,
        port: u16,
        handler: impl Fn(&Request) -> (u16, String) + Send + Sync + 'static,
    ) -> FakeServer {
        FakeServer::start_with_headers(ip, port, move |r| {
            let (status, body) = handler(r);
            (status, Vec::new(), body)
        })
    }

    /// A handler that sets headers of its answers too.
    pub fn start_with_headers(
        ip: &str,
        port: u16,
        handler: impl Fn(&Request) -> (u16, Vec<(String, String)>, String) + Send + Sync + 'static,
    ) -> FakeServer {
        let listener = TcpListener::bind((ip, port)).expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let latency_ms = Arc::new(AtomicU64::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (r, s, l) = (requests.clone(), stop.clone(), latency_ms.clone());
        // Blocking accept, so a connection is taken the moment it arrives; `drop` wakes it
        // with a connection of its own after raising the stop flag.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(stream) = stream {
                    let (r, h, l) = (r.clone(), handler.clone(), l.clone());
                    std::thread::spawn(move || serve(stream, &r, &*h, &l));
                }
            }
        });
        FakeServer {
            port,
            ip: ip.to_string(),
            requests,
            latency_ms,
            stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.authority())
    }

    /// `ip:port`, the IP bracketed when it is IPv6 (`[::1]:8080`).
    pub fn authority(&self) -> String {
        if self.ip.contains(':') {
            format!("[{}]:{}", self.ip, self.port)
        } else {
            format!("{}:{}", self.ip, self.port)
        }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ =
            TcpStream::connect_timeout(&self.authority().parse().unwrap(), Duration::from_secs(1));
    }
}

fn serve(
    stream: TcpStream,
    requests: &Mutex<Vec<Request>>,
    handler: &Handler,
    latency_ms: &AtomicU64,
) {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
    stream.set_nonblocking(false).ok();
    // One request per connection: every answer says `Connection: close`.
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let received = Instant::now();
    let mut request = Request {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        bytes: body,
        received,
        answered: received,
    };
    let (status, extra, answer) = handler(&request);
    std::thread::sleep(Duration::from_millis(latency_ms.load(Ordering::Relaxed)));
    request.answered = Instant::now();
    requests.lock().unwrap().push(request);
    let mut out = stream;
    let extra: String = extra.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n{extra}Connection: close\r\n\r\n",
        answer.len()
    );
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(answer.as_bytes());
    let _ = out.flush();
}
