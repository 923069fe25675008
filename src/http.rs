//! The one place the tool speaks HTTP: a ureq agent with short timeouts, status codes returned
//! rather than raised (AWS and etcd explain failures in their bodies), a cap on every body we
//! read, and a bounded retry with jittered exponential backoff and an injected sleep.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ureq::RequestExt;

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use crate::error::{snippet, Error, Result};

/// No answer we read is legitimately larger: a DescribeInstances page of 1,000 instances is
/// about 5 MB only with every field, and we ask for 100 at a time.
pub const BODY_LIMIT: u64 = 4 * 1024 * 1024;

/// How patient one agent is. IMDS and etcd peers sit on the local network: a second to
/// connect is plenty, and a group of dead addresses must cost seconds, not minutes.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// The whole call: connect, send, wait for and read the answer.
    pub call: Duration,
}

/// One ready-to-use HTTP client.
#[derive(Clone)]
pub struct Http {
    agent: ureq::Agent,
    call_timeout: Duration,
    connect_timeout: Duration,
    /// Sent as the `Authorization` header on every request (etcd's auth token); never logged.
    authorization: Option<std::sync::Arc<str>>,
    /// Counts this client's requests and retries (and its clones'), for `--metrics-file`.
    counter: Counter,
}

/// Requests sent and retries made through the clients that share it. Cheap to clone: the
/// clones count into the same numbers, from any thread.
#[derive(Clone, Default, Debug)]
pub struct Counter(std::sync::Arc<[std::sync::atomic::AtomicU64; 2]>);

impl Counter {
    /// (requests, retries) so far.
    pub fn get(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.0[0].load(Relaxed), self.0[1].load(Relaxed))
    }

    fn add(&self, which: usize) {
        self.0[which].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The whole run's deadline (`--timeout`): no call outlasts it and no retry waits past it, so
/// a unit's start never hangs however slow the things it talks to are.
static DEADLINE: OnceLock<Instant> = OnceLock::new();

/// Sets the run's deadline; once, from `main`.
pub fn set_deadline(deadline: Instant) {
    let _ = DEADLINE.set(deadline);
}

/// Time left before the deadline; `None` when there is none.
fn time_left() -> Option<Duration> {
    DEADLINE
        .get()
        .map(|d| d.saturating_duration_since(Instant::now()))
}

fn out_of_time(what: &str) -> Error {
    Error::Transport {
        what: what.to_string(),
        detail: "the run's --timeout is up".into(),
        transient: true,
    }
}

/// What came back: the status and the body (capped at `BODY_LIMIT`).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: String,
    /// The headers S3 answers in (`etag`, `x-amz-bucket-region`, a record's metadata) and the cluster ID an etcd
    /// peer port names (`x-etcd-cluster-id`), names in lowercase; the others are not kept.
    pub headers: Vec<(&'static str, String)>,
}

/// The answer headers kept in `Response::headers`.
const KEPT_HEADERS: [&str; 4] = [
    "etag",
    "x-amz-bucket-region",
    "x-amz-meta-restores", // aws::s3::RESTORES (http is below aws: no import)
    "x-etcd-cluster-id",
];

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A kept header's value (`KEPT_HEADERS`).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Client-certificate settings for talking to etcd over https.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdTls {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// Reads a PEM file the operator named, with an error that names it.
fn read_pem(path: &Path, what: &str) -> Result<Vec<PemItem<'static>>> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::Usage(format!("cannot read the {what} {}: {e}", path.display())))?;
    let items = ureq::tls::parse_pem(&bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::Usage(format!(
                "the {what} {} is not valid PEM: {e}",
                path.display()
            ))
        })?;
    if items.is_empty() {
        return Err(Error::Usage(format!(
            "the {what} {} holds no PEM item",
            path.display()
        )));
    }
    Ok(items)
}

/// TLS settings for AWS API calls: the certificates of a CA bundle (`AWS_CA_BUNDLE`, or the
/// shared config's `ca_bundle`; `source` names which) replace the bundled web roots, as the
/// AWS SDKs do; else the bundled web roots.
pub fn aws_tls(ca_bundle: Option<(&Path, &str)>) -> Result<TlsConfig> {
    let Some((path, source)) = ca_bundle else {
        return Ok(TlsConfig::default());
    };
    let roots = read_roots(path, &format!("CA bundle ({source})"))?;
    Ok(TlsConfig::builder().root_certs(roots).build())
}

/// The certificates of a PEM file, as trust roots; a file without one is refused.
fn read_roots(path: &Path, what: &str) -> Result<RootCerts> {
    let roots: Vec<Certificate<'static>> = read_pem(path, what)?
        .into_iter()
        .filter_map(|item| match item {
            PemItem::Certificate(c) => Some(c),
            _ => None,
        })
        .collect();
    if roots.is_empty() {
        return Err(Error::Usage(format!(
            "the {what} {} holds no certificate",
            path.display()
        )));
    }
    Ok(RootCerts::from(roots))
}

/// TLS settings for etcd: an operator-given CA (else the bundled web roots), and an optional
/// client certificate. Certificates are always verified.
pub fn etcd_tls(tls: &EtcdTls) -> Result<TlsConfig> {
    let mut builder = TlsConfig::builder();
    if let Some(ca) = &tls.ca_file {
        builder = builder.root_certs(read_roots(ca, "CA file")?);
    }
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        let chain: Vec<Certificate<'static>> = read_pem(cert, "certificate file")?
            .into_iter()
            .filter_map(|item| match item {
                PemItem::Certificate(c) => Some(c),
                _ => None,
            })
            .collect();
        let key: PrivateKey<'static> = read_pem(key, "key file")?
            .into_iter()
            .find_map(|item| match item {
                PemItem::PrivateKey(k) => Some(k),
                _ => None,
            })
            .ok_or_else(|| {
                Error::Usage(format!(
                    "the key file {} holds no private key",
                    key.display()
                ))
            })?;
        builder = builder.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    Ok(builder.build())
}

/// ureq's resolver starts a thread for every lookup made under a timeout, an IP address's
/// included: a proxy node of a 1,000-instance group spent most of its own time starting those
/// threads (`./build.sh bench`, "A 1,000-instance masters' group"). An address needs no
/// lookup; a name still goes to ureq's resolver.
#[derive(Debug, Default)]
struct AddressFirst(ureq::unversioned::resolver::DefaultResolver);

impl ureq::unversioned::resolver::Resolver for AddressFirst {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> std::result::Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        match socket_address(uri) {
            Some(address) => {
                let mut addresses = self.empty();
                addresses.push(address);
                Ok(addresses)
            }
            None => self.0.resolve(uri, config, timeout),
        }
    }
}

/// The socket address a URL names by IP address (its port, else its scheme's); `None` for a
/// name.
fn socket_address(uri: &ureq::http::Uri) -> Option<std::net::SocketAddr> {
    let host = uri.host()?;
    let ip: std::net::IpAddr = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse()
        .ok()?;
    let port = uri.port_u16().or(match uri.scheme_str()? {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })?;
    Some(std::net::SocketAddr::new(ip, port))
}

impl Http {
    /// `use_proxy`: honour HTTPS_PROXY & co. (for AWS APIs); never for link-local IMDS or etcd.
    pub fn new(timeouts: Timeouts, tls: TlsConfig, use_proxy: bool) -> Http {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(timeouts.connect))
            .timeout_global(Some(timeouts.call))
            .max_redirects(0)
            .user_agent(concat!("etcd-discovery/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls);
        if !use_proxy {
            config = config.proxy(None);
        }
        Http {
            agent: ureq::Agent::with_parts(
                config.build(),
                ureq::unversioned::transport::DefaultConnector::default(),
                AddressFirst::default(),
            ),
            call_timeout: timeouts.call,
            connect_timeout: timeouts.connect,
            authorization: None,
            counter: Counter::default(),
        }
    }

    /// The same agent, counting into `counter`.
    pub fn counting(self, counter: &Counter) -> Http {
        Http {
            counter: counter.clone(),
            ..self
        }
    }

    /// A try after a failed one, made by the caller's retry loop.
    pub fn note_retry(&self) {
        self.counter.add(1);
    }

    /// The same agent, sending this `Authorization` header on every request.
    pub fn with_authorization(&self, value: &str) -> Http {
        Http {
            authorization: Some(value.into()),
            ..self.clone()
        }
    }

    /// Sends one request. `what` names the call in errors ("etcd member list at http://...").
    pub fn send(
        &self,
        what: &str,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Response> {
        self.send_slice(
            what,
            method,
            url,
            headers,
            body.as_deref().unwrap_or_default(),
        )
    }

    /// `send`, with a borrowed body: a retried S3 part is not copied for each try.
    pub fn send_slice(
        &self,
        what: &str,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response> {
        let request = self.request(what, method, url, headers, body)?;
        let timeout = match time_left() {
            Some(left) if left.is_zero() => return Err(out_of_time(what)),
            Some(left) => self.call_timeout.min(left),
            None => self.call_timeout,
        };
        self.counter.add(0);
        let mut response = request
            .with_agent(&self.agent)
            .configure()
            .timeout_global(Some(timeout))
            .run()
            .map_err(|e| transport_error(what, url, self.connect_timeout, e))?;
        let status = response.status().as_u16();
        let headers = KEPT_HEADERS
            .iter()
            .filter_map(|name| {
                let value = response.headers().get(*name)?.to_str().ok()?;
                Some((*name, value.to_string()))
            })
            .collect();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => Error::Parse {
                    what: what.to_string(),
                    detail: format!("the answer is larger than {BODY_LIMIT} bytes"),
                },
                e => transport_error(what, url, self.connect_timeout, e),
            })?;
        let body = String::from_utf8(bytes).map_err(|_| Error::Parse {
            what: what.to_string(),
            detail: "the answer is not UTF-8".into(),
        })?;
        log::trace!("{what}: HTTP {status}, {} bytes", body.len());
        Ok(Response {
            status,
            body,
            headers,
        })
    }

    fn request<'b>(
        &self,
        what: &str,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &'b [u8],
    ) -> Result<ureq::http::Request<&'b [u8]>> {
        let mut builder = ureq::http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        if let Some(value) = &self.authorization {
            builder = builder.header("authorization", &**value);
        }
        builder.body(body).map_err(|e| Error::Transport {
            what: what.to_string(),
            detail: format!("cannot build the request: {e}"),
            transient: false,
        })
    }

    /// Sends one request and hands back the status and the body as a reader, unread and
    /// uncapped: for a stream (etcd's snapshot, an S3 object) whose reader bounds its own
    /// memory. The call
    /// may last until the run's `--timeout`, not the agent's usual few seconds.
    pub fn open(
        &self,
        what: &str,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(u16, ureq::BodyReader<'static>)> {
        let request = self.request(what, method, url, headers, body)?;
        let timeout = match time_left() {
            Some(left) if left.is_zero() => return Err(out_of_time(what)),
            left => left,
        };
        self.counter.add(0);
        let response = request
            .with_agent(&self.agent)
            .configure()
            .timeout_global(timeout)
            .run()
            .map_err(|e| transport_error(what, url, self.connect_timeout, e))?;
        let status = response.status().as_u16();
        Ok((status, response.into_body().into_reader()))
    }
}

/// Turns a failed call into our error. Only evidence that nothing listens becomes
/// `Error::Absent`; every other failure means somebody may be there, and is never read as
/// "no etcd here" (that reading bootstraps a second cluster beside a slow or picky one).
fn transport_error(what: &str, url: &str, connect_timeout: Duration, e: ureq::Error) -> Error {
    if nothing_listens(&e, url, connect_timeout) {
        return Error::Absent {
            what: what.to_string(),
            detail: format!("nothing listens there ({e})"),
        };
    }
    let tls = tls_error(&e);
    // Certificates and URLs need a person; everything else may pass.
    let transient = tls.is_none()
        && !matches!(
            e,
            ureq::Error::BadUri(_) | ureq::Error::Tls(_) | ureq::Error::Pem(_)
        );
    let detail = match (&e, tls) {
        (ureq::Error::Timeout(t), _) => format!("timed out ({t})"),
        (ureq::Error::HostNotFound, _) => "the name does not resolve (yet): is DNS up?".into(),
        // std's wording for a failed getaddrinfo (EAI_AGAIN, EAI_NONAME): the resolver may
        // not be up yet at boot.
        (ureq::Error::Io(io), _) if io.to_string().contains("failed to lookup address") => {
            format!("the name does not resolve (yet): is DNS up? ({io})")
        }
        (_, Some(TlsFailure::TheyRefusedUs(alert))) => format!(
            "TLS: the server refused our client certificate ({alert}); check --etcd-cert-file and \
             --etcd-key-file (and that the server's CA signed them)"
        ),
        (_, Some(TlsFailure::WeRefusedThem(why))) => format!(
            "TLS: the server's certificate is not trusted ({why}); for etcd, check --etcd-ca-file"
        ),
        (other, None) => other.to_string(),
    };
    Error::Transport {
        what: what.to_string(),
        detail,
        transient,
    }
}

/// Whether the failure proves that nothing listens at the URL: the connection was refused or
/// the address unreachable, or the connect timed out and a bare TCP connect (the TLS handshake
/// counts into ureq's connect timeout) cannot be made either. The run's deadline is not
/// evidence: ureq names it `Global`, never `Connect`.
fn nothing_listens(e: &ureq::Error, url: &str, connect_timeout: Duration) -> bool {
    use std::io::ErrorKind::*;
    match e {
        // These only happen while connecting: no TCP session ever existed.
        ureq::Error::Io(io) => matches!(
            io.kind(),
            ConnectionRefused
                | HostUnreachable
                | NetworkUnreachable
                | NetworkDown
                | AddrNotAvailable
        ),
        ureq::Error::Timeout(ureq::Timeout::Connect) if url.starts_with("https://") => {
            !tcp_connects(url, connect_timeout)
        }
        ureq::Error::Timeout(ureq::Timeout::Connect) => true,
        _ => false,
    }
}

/// A bare TCP connect to the URL's host and port; false when it cannot be made (or the name
/// does not resolve, in which case the caller's error already says more than we could).
fn tcp_connects(url: &str, timeout: Duration) -> bool {
    use std::net::{TcpStream, ToSocketAddrs};
    let Ok(uri) = url.parse::<ureq::http::Uri>() else {
        return false;
    };
    let (Some(host), port) = (uri.host(), uri.port_u16()) else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port.unwrap_or(if uri.scheme_str() == Some("https") {
        443
    } else {
        80
    });
    let Ok(addresses) = (host, port).to_socket_addrs() else {
        // Not resolvable now: we cannot tell, so this is not evidence of absence.
        return true;
    };
    addresses
        .into_iter()
        .any(|a| TcpStream::connect_timeout(&a, timeout).is_ok())
}

/// Which side of a TLS handshake said no.
enum TlsFailure {
    /// The server sent an alert: it refused our certificate (or has none for us to pass).
    TheyRefusedUs(String),
    /// We refused the server's certificate.
    WeRefusedThem(String),
}

/// rustls reports handshake failures through the stream, as `InvalidData` carrying its error.
fn tls_error(e: &ureq::Error) -> Option<TlsFailure> {
    let rustls_error = match e {
        ureq::Error::Rustls(r) => Some(r),
        ureq::Error::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        _ => None,
    }?;
    Some(match rustls_error {
        rustls::Error::AlertReceived(alert) => TlsFailure::TheyRefusedUs(format!("{alert:?}")),
        other => TlsFailure::WeRefusedThem(other.to_string()),
    })
}

/// An error body as part of an error message.
pub fn body_snippet(response: &Response) -> String {
    snippet(&response.body)
}

/// How long to wait before retry number `attempt` (1-based): exponential from `base`, capped,
/// with "equal jitter" (half fixed, half random) so a fleet booting at once spreads out.
/// `random` is in [0, 1).
pub fn backoff(attempt: u32, base: Duration, cap: Duration, random: f64) -> Duration {
    let exponential = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let ceiling = exponential.min(cap);
    let half = ceiling / 2;
    half + half.mul_f64(random.clamp(0.0, 1.0))
}

/// A cheap random number in [0, 1) for jitter: clock and process id mixed. Not for secrets.
pub fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    let mut x = nanos ^ (u64::from(std::process::id()) << 32) ^ 0x9E37_79B9_7F4A_7C15;
    // xorshift64*
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
}

/// The injected sleep: `std::thread::sleep` in a run, a recorder in tests. `Sync` so the
/// calls a run makes in parallel can share it.
pub type Sleep<'a> = dyn Fn(Duration) + Sync + 'a;

/// How many times to try, and how long to wait between tries.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

/// Runs `op` until it succeeds, fails with an error `retryable` rejects, or runs out of tries.
/// `sleep` is injected so tests don't wait.
pub fn retry<T>(
    policy: RetryPolicy,
    sleep: &Sleep<'_>,
    retryable: impl Fn(&Error) -> bool,
    op: impl FnMut() -> Result<T>,
) -> Result<T> {
    retry_until(policy, Instant::now(), sleep, retryable, |_| false, op)
}

/// `retry`, and after its tries, more of them until `until` for the errors `patient` picks:
/// what is only "not yet" at boot (a metadata service or a network that comes up late).
/// Never past the run's `--timeout`.
pub fn retry_until<T>(
    policy: RetryPolicy,
    until: Instant,
    sleep: &Sleep<'_>,
    retryable: impl Fn(&Error) -> bool,
    patient: impl Fn(&Error) -> bool,
    mut op: impl FnMut() -> Result<T>,
) -> Result<T> {
    let mut attempt = 1;
    loop {
        match op() {
            Err(e) if retryable(&e) || patient(&e) => {
                let wait = backoff(attempt, policy.base, policy.cap, jitter());
                let more_tries = attempt < policy.attempts && retryable(&e);
                let still_waiting = patient(&e) && Instant::now() + wait < until;
                if !(more_tries || still_waiting) || time_left().is_some_and(|left| left < wait) {
                    return Err(e);
                }
                if more_tries {
                    log::debug!(
                        "{e}; try {} of {} in {wait:?}",
                        attempt + 1,
                        policy.attempts
                    );
                } else {
                    log::debug!(
                        "{e}; not up yet? trying again in {wait:?} (for {:?} more)",
                        until.saturating_duration_since(Instant::now())
                    );
                }
                sleep(wait);
                attempt += 1;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn an_address_is_its_own_socket_address_and_a_name_is_looked_up() {
        let cases = [
            (
                "http://127.0.64.5:2379/v3/cluster/member/list",
                Some("127.0.64.5:2379"),
            ),
            (
                "http://169.254.169.254/latest/api/token",
                Some("169.254.169.254:80"),
            ),
            ("https://10.0.0.1/", Some("10.0.0.1:443")),
            ("http://[fd00:ec2::254]/latest", Some("[fd00:ec2::254]:80")),
            (
                "https://[fd00:ec2:1::7]:2379/health",
                Some("[fd00:ec2:1::7]:2379"),
            ),
            ("https://ec2.us-east-1.amazonaws.com/", None),
            ("http://localhost:2379/", None),
        ];
        for (url, want) in cases {
            let uri: ureq::http::Uri = url.parse().unwrap();
            let got = socket_address(&uri).map(|a| a.to_string());
            assert_eq!(got.as_deref(), want, "failed testcase: {url}");
        }
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(2);
        let cases = [
            (1, 0.0, 50),
            (1, 0.999, 99),
            (2, 0.0, 100),
            (3, 0.5, 300),
            (5, 0.0, 800),
            (6, 0.0, 1000),
            (30, 0.0, 1000),
            (30, 1.0, 2000),
        ];
        for (attempt, random, millis) in cases {
            let got = backoff(attempt, base, cap, random).as_millis();
            assert_eq!(
                got, millis,
                "failed testcase: attempt {attempt}, random {random}"
            );
        }
    }

    /// Only a refused or impossible connect is evidence that no etcd is there; the review
    /// of issue 10 saw each of the others read as "nobody" and a second cluster bootstrapped.
    #[test]
    fn only_a_failed_connect_is_evidence_of_absence() {
        use std::io::{Error as Io, ErrorKind};
        let connect = Duration::from_millis(100);
        let cases: Vec<(&str, ureq::Error, &str, bool)> = vec![
            (
                "refused",
                Io::from(ErrorKind::ConnectionRefused).into(),
                "http://a:1",
                true,
            ),
            (
                "no route",
                Io::from(ErrorKind::HostUnreachable).into(),
                "http://a:1",
                true,
            ),
            (
                "no network",
                Io::from(ErrorKind::NetworkUnreachable).into(),
                "http://a:1",
                true,
            ),
            (
                "TCP connect timed out",
                ureq::Error::Timeout(ureq::Timeout::Connect),
                "http://a:1",
                true,
            ),
            (
                "reset after connect",
                Io::from(ErrorKind::ConnectionReset).into(),
                "http://a:1",
                false,
            ),
            (
                "broken pipe",
                Io::from(ErrorKind::BrokenPipe).into(),
                "http://a:1",
                false,
            ),
            (
                "body cut short",
                Io::from(ErrorKind::UnexpectedEof).into(),
                "http://a:1",
                false,
            ),
            (
                "no answer in time",
                ureq::Error::Timeout(ureq::Timeout::RecvResponse),
                "http://a:1",
                false,
            ),
            (
                "body never ends",
                ureq::Error::Timeout(ureq::Timeout::RecvBody),
                "http://a:1",
                false,
            ),
            (
                "the run's deadline",
                ureq::Error::Timeout(ureq::Timeout::Global),
                "http://a:1",
                false,
            ),
            (
                "name does not resolve",
                ureq::Error::HostNotFound,
                "http://a:1",
                false,
            ),
            (
                "header too large",
                ureq::Error::LargeResponseHeader(1, 2),
                "http://a:1",
                false,
            ),
            ("TLS", ureq::Error::Tls("handshake"), "https://a:1", false),
        ];
        for (case, error, url, absent) in cases {
            assert_eq!(
                nothing_listens(&error, url, connect),
                absent,
                "failed testcase: {case}"
            );
        }
        // An https connect that timed out while a TCP session could be made (a stalled TLS
        // handshake) is somebody there.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let stalled = ureq::Error::Timeout(ureq::Timeout::Connect);
        assert!(!nothing_listens(&stalled, &url, connect));
        drop(listener);
        assert!(
            nothing_listens(&stalled, &url, connect),
            "nothing listens now"
        );
    }

    #[test]
    fn jitter_is_in_range() {
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }

    #[test]
    fn a_name_that_does_not_resolve_is_transient() {
        // Regression: DNS not up yet at boot must be "not yet" (75), not a failure.
        let e = transport_error(
            "AWS DescribeAutoScalingInstances",
            "https://autoscaling.us-east-1.amazonaws.com",
            Duration::from_secs(1),
            ureq::Error::HostNotFound,
        );
        assert!(e.is_transient(), "{e}");
        assert!(e.to_string().contains("does not resolve"), "{e}");
        let lookup = std::io::Error::other(
            "failed to lookup address information: Temporary failure in name resolution",
        );
        let e = transport_error("x", "http://a:1", Duration::from_secs(1), lookup.into());
        assert!(
            e.is_transient() && !matches!(e, Error::Absent { .. }),
            "{e}"
        );
    }

    #[test]
    fn retry_until_waits_for_what_is_not_up_yet() {
        let policy = RetryPolicy {
            attempts: 2,
            base: Duration::from_millis(5),
            cap: Duration::from_millis(20),
        };
        let not_up = || Error::Transport {
            what: "IMDS".into(),
            detail: "connection refused".into(),
            transient: true,
        };
        let patient = |e: &Error| matches!(e, Error::Transport { .. });
        // Comes up on the sixth try: past `attempts`, within `until`.
        let calls = Cell::new(0);
        let r = retry_until(
            policy,
            Instant::now() + Duration::from_secs(30),
            &std::thread::sleep,
            Error::is_transient,
            patient,
            || {
                calls.set(calls.get() + 1);
                if calls.get() < 6 {
                    Err(not_up())
                } else {
                    Ok(())
                }
            },
        );
        assert!(r.is_ok());
        assert_eq!(calls.get(), 6);
        // Never up: it stops at `until`.
        let started = Instant::now();
        let r: Result<()> = retry_until(
            policy,
            started + Duration::from_millis(200),
            &std::thread::sleep,
            Error::is_transient,
            patient,
            || Err(not_up()),
        );
        assert!(r.is_err());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        // What is not "not yet" gets only the usual tries.
        calls.set(0);
        let r: Result<()> = retry_until(
            policy,
            Instant::now() + Duration::from_secs(30),
            &|_| {},
            Error::is_transient,
            patient,
            || {
                calls.set(calls.get() + 1);
                Err(Error::NotReady("throttled".into()))
            },
        );
        assert!(r.is_err());
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn retry_stops_at_success_permanent_error_or_last_try() {
        let policy = RetryPolicy {
            attempts: 4,
            base: Duration::from_millis(10),
            cap: Duration::from_secs(1),
        };
        let slept = std::sync::Mutex::new(Vec::new());
        let sleep = |d: Duration| slept.lock().unwrap().push(d);
        let transient = || Error::NotReady("busy".into());

        let calls = Cell::new(0);
        let r = retry(policy, &sleep, Error::is_transient, || {
            calls.set(calls.get() + 1);
            if calls.get() < 3 {
                Err(transient())
            } else {
                Ok(7)
            }
        });
        assert_eq!(
            (r.unwrap(), calls.get(), slept.lock().unwrap().len()),
            (7, 3, 2)
        );

        calls.set(0);
        let r: Result<()> = retry(policy, &sleep, Error::is_transient, || {
            calls.set(calls.get() + 1);
            Err(transient())
        });
        assert!(r.is_err());
        assert_eq!(calls.get(), 4, "bounded: exactly `attempts` tries");

        calls.set(0);
        let r: Result<()> = retry(policy, &sleep, Error::is_transient, || {
            calls.set(calls.get() + 1);
            Err(Error::NoCredentials)
        });
        assert!(r.is_err());
        assert_eq!(calls.get(), 1, "a permanent error is not retried");
    }
}
