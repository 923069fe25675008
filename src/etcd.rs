//! etcd's membership over HTTP: the v3 JSON gateway (`/v3/cluster/member/*`) or v2
//! (`/v2/members`). Peers are asked in parallel with plain threads and the first good answer
//! wins, so a group of dead addresses costs one connect timeout, not one each.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{snippet, Error, Result};
use crate::http::{body_snippet, retry, Http, Response, RetryPolicy, Sleep};
use crate::model::Member;

/// A membership change right after a member (re)connected or while another added member has
/// not started is refused as "unhealthy cluster"; it clears about five seconds after that
/// member starts. 16 tries with a 5 s cap wait about a minute in all: enough for a scale-up
/// whose new members start one after another.
const MEMBER_CHANGE_RETRY: RetryPolicy = RetryPolicy {
    attempts: 16,
    base: Duration::from_millis(500),
    cap: Duration::from_secs(5),
};

/// Peers asked at once. Dead addresses cost one connect timeout per round of this many.
const MAX_PARALLEL_PEERS: usize = 16;

/// Which etcd membership API to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtcdApi {
    /// The v3 JSON gateway, falling back to v2 when it is not there.
    Auto,
    V2,
    V3,
}

/// An etcd user (`--etcd-user`, `ETCDCTL_USER` as USER:PASSWORD): from etcd 3.5.28 and
/// 3.6.9 a member list needs one when authentication is on, and changes always did. Its
/// `Debug` leaves the password out, so no log line can hold it.
#[derive(Clone, PartialEq, Eq)]
pub struct EtcdUser {
    pub name: String,
    pub password: String,
}

impl std::fmt::Debug for EtcdUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EtcdUser({:?}, password hidden)", self.name)
    }
}

#[derive(Deserialize)]
struct AuthAnswer {
    #[serde(default)]
    token: String,
}

/// Logs in at this endpoint (`/v3/auth/authenticate`) and returns an agent that sends the
/// token. Authentication that is off leaves the agent as it was.
fn authenticate(http: &Http, endpoint: &str, user: &EtcdUser) -> Result<Http> {
    let what = format!("etcd authentication at {endpoint}");
    let body = serde_json::json!({"name": user.name, "password": user.password}).to_string();
    let url = format!("{}/v3/auth/authenticate", endpoint.trim_end_matches('/'));
    let response = http.send(
        &what,
        "POST",
        &url,
        &[("content-type", "application/json")],
        Some(body.into_bytes()),
    )?;
    if response.is_success() {
        let answer: AuthAnswer = parse_json(&what, &response.body)?;
        if answer.token.is_empty() {
            return Err(Error::Parse {
                what,
                detail: "no token in the answer".into(),
            });
        }
        return Ok(http.with_authorization(&answer.token));
    }
    let (_, message) = gateway_error(&response);
    if message.contains("authentication is not enabled") {
        log::debug!("{endpoint}: authentication is off; going on without a token");
        return Ok(http.clone());
    }
    Err(Error::Etcd {
        what: what.trim_start_matches("etcd ").to_string(),
        detail: format!(
            "user {:?}: {} (HTTP {}): check --etcd-user (ETCDCTL_USER) USER:PASSWORD",
            snippet(&user.name),
            snippet(&message),
            response.status
        ),
        transient: response.status >= 500,
    })
}

/// Which protocol an endpoint answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    V2,
    V3,
}

/// A member as v3's gateway writes it: uint64 IDs as decimal strings, `isLearner` omitted
/// when false, `name` and `clientURLs` omitted while the member has not started.
#[derive(Deserialize)]
struct V3Member {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(rename = "peerURLs", default)]
    peer_urls: Vec<String>,
    #[serde(rename = "clientURLs", default)]
    client_urls: Vec<String>,
    #[serde(rename = "isLearner", default)]
    is_learner: bool,
}

#[derive(Deserialize)]
struct V3Members {
    #[serde(default)]
    members: Vec<V3Member>,
    /// Read for its `cluster_id` (a decimal string) only, and leniently: a header of another
    /// shape costs the list nothing.
    #[serde(default)]
    header: Option<serde_json::Value>,
}

/// v2's member: IDs in hex.
#[derive(Deserialize)]
struct V2Member {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(rename = "peerURLs", default)]
    peer_urls: Vec<String>,
    #[serde(rename = "clientURLs", default)]
    client_urls: Vec<String>,
}

#[derive(Deserialize)]
struct V2Members {
    members: Vec<V2Member>,
}

/// What `/v3/maintenance/status` says about who leads.
#[derive(Deserialize)]
struct Status {
    header: StatusHeader,
    #[serde(default)]
    leader: String,
    /// Alarms and health notes (etcd 3.4 and later), e.g. "memberID:... alarm:NOSPACE".
    #[serde(default)]
    errors: Vec<String>,
    /// uint64s as decimal strings, as the gateway writes them.
    #[serde(rename = "dbSize", default)]
    db_size: String,
    #[serde(rename = "raftIndex", default)]
    raft_index: String,
}

impl Status {
    fn has_leader(&self) -> bool {
        !self.leader.is_empty() && self.leader != "0"
    }
}

#[derive(Deserialize)]
struct StatusHeader {
    #[serde(default)]
    member_id: String,
    /// A uint64 as a decimal string.
    #[serde(default)]
    revision: String,
}

/// The gateway's error body.
#[derive(Deserialize)]
struct GatewayError {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
    #[serde(default)]
    error: String,
}

/// The answer when etcd took the request (2xx); otherwise the status, named by `what`.
fn success(what: &str, response: Response) -> Result<Response> {
    if response.is_success() {
        return Ok(response);
    }
    Err(Error::Status {
        what: what.to_string(),
        status: response.status,
        body: body_snippet(&response),
    })
}

fn parse_json<T: for<'de> Deserialize<'de>>(what: &str, body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|e| Error::Parse {
        what: what.to_string(),
        detail: e.to_string(),
    })
}

/// A member from either API, its URLs checked: only http(s), nothing that could break a line.
fn checked(what: &str, member: Member) -> Result<Member> {
    for url in member.peer_urls.iter().chain(&member.client_urls) {
        let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
        if !scheme_ok || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Error::Parse {
                what: what.to_string(),
                detail: format!("bad URL {:?}", snippet(url)),
            });
        }
    }
    Ok(member)
}

/// A member list we can reason about: not empty (a cluster always has the member that
/// answers), no ID, peer URL or (started) name twice. etcd never writes such a list itself; a
/// proxy or a broken member might, and an empty one must not read as "no cluster".
fn distinct(what: &str, members: Vec<Member>) -> Result<Vec<Member>> {
    let duplicate = |detail: String| {
        Err(Error::Parse {
            what: what.to_string(),
            detail,
        })
    };
    if members.is_empty() {
        return duplicate(
            "the member list is empty; a cluster always has at least the member that answers"
                .into(),
        );
    }
    for (i, m) in members.iter().enumerate() {
        for other in &members[..i] {
            if other.id == m.id {
                return duplicate(format!("member ID {:x} appears twice", m.id));
            }
            if !m.name.is_empty() && other.name == m.name {
                return duplicate(format!(
                    "two members are named {:?}; remove one with etcdctl member remove",
                    snippet(&m.name)
                ));
            }
            if let Some(url) = m.peer_urls.iter().find(|u| other.peer_urls.contains(u)) {
                return duplicate(format!("two members have the peer URL {:?}", snippet(url)));
            }
        }
    }
    Ok(members)
}

/// Members parsed from either API: each checked, the list as a whole sane.
fn checked_list(what: &str, members: impl Iterator<Item = Result<Member>>) -> Result<Vec<Member>> {
    members
        .map(|m| m.and_then(|m| checked(what, m)))
        .collect::<Result<Vec<_>>>()
        .and_then(|members| distinct(what, members))
}

/// Parses v3's `members` array (from list, add and remove answers).
pub fn parse_v3_members(body: &str) -> Result<Vec<Member>> {
    parse_v3_list(body).map(|(members, _)| members)
}

/// `parse_v3_members`, and the cluster's ID the answer's header names (`None` when it names
/// none): one parse of the body.
pub fn parse_v3_list(body: &str) -> Result<(Vec<Member>, Option<u64>)> {
    let what = "etcd v3 member list";
    let list: V3Members = parse_json(what, body)?;
    let cluster_id = list
        .header
        .as_ref()
        .and_then(|h| h.get("cluster_id"))
        .and_then(serde_json::Value::as_str)
        .and_then(|id| id.parse().ok());
    let members = checked_list(
        what,
        list.members.into_iter().map(|m| {
            let id = m.id.parse::<u64>().map_err(|_| Error::Parse {
                what: what.into(),
                detail: format!("member ID {:?} is not a uint64", snippet(&m.id)),
            })?;
            Ok(Member {
                id,
                name: m.name,
                peer_urls: m.peer_urls,
                client_urls: m.client_urls,
                is_learner: m.is_learner,
            })
        }),
    )?;
    Ok((members, cluster_id))
}

/// An ID as etcd's headers write it (`X-Etcd-Cluster-ID`: hexadecimal).
fn parse_hex_id(id: &str) -> Option<u64> {
    u64::from_str_radix(id, 16).ok()
}

/// Parses v2's `/v2/members` answer.
pub fn parse_v2_members(body: &str) -> Result<Vec<Member>> {
    let what = "etcd v2 member list";
    let list: V2Members = parse_json(what, body)?;
    checked_list(
        what,
        list.members.into_iter().map(|m| {
            let id = u64::from_str_radix(&m.id, 16).map_err(|_| Error::Parse {
                what: what.into(),
                detail: format!("member id {:?} is not a 64-bit hex number", snippet(&m.id)),
            })?;
            Ok(Member {
                id,
                name: m.name,
                peer_urls: m.peer_urls,
                client_urls: m.client_urls,
                is_learner: false,
            })
        }),
    )
}

/// A member as a peer port's `GET /members` writes it: the ID as a JSON number, `clientURLs`
/// omitted until the member has published (shape captured from etcd 3.4.23).
#[derive(Deserialize)]
struct PeerMember {
    id: u64,
    #[serde(default)]
    name: String,
    #[serde(rename = "peerURLs", default)]
    peer_urls: Vec<String>,
    #[serde(rename = "clientURLs", default)]
    client_urls: Vec<String>,
    #[serde(rename = "isLearner", default)]
    is_learner: bool,
}

/// Parses a peer port's `GET /members`.
pub fn parse_peer_members(body: &str) -> Result<Vec<Member>> {
    let what = "etcd peer member list";
    let list: Vec<PeerMember> = parse_json(what, body)?;
    checked_list(
        what,
        list.into_iter().map(|m| {
            Ok(Member {
                id: m.id,
                name: m.name,
                peer_urls: m.peer_urls,
                client_urls: m.client_urls,
                is_learner: m.is_learner,
            })
        }),
    )
}

/// A member list as a peer port gave it.
pub struct PeerList {
    /// The peer URL that answered.
    pub url: String,
    /// The cluster's ID, from the answer's `X-Etcd-Cluster-ID` (hexadecimal).
    pub cluster_id: Option<u64>,
    pub members: Vec<Member>,
}

/// The member list as the peers' *peer* ports give it (asked all at once; the first in URL
/// order that answers). An etcd without a leader (a bootstrap under way, a cluster that lost
/// its quorum) serves no client, but its peer port lists the members at once. `None` when no
/// peer port answers with a list.
pub fn peer_member_list(http: &Http, peer_urls: &[String]) -> Option<PeerList> {
    std::thread::scope(|scope| {
        let asks: Vec<_> = peer_urls
            .iter()
            .map(|url| {
                scope.spawn(move || {
                    let what = format!("etcd peer member list at {url}");
                    let members_url = format!("{}/members", url.trim_end_matches('/'));
                    let answer = http.send(&what, "GET", &members_url, &[], None).ok()?;
                    if !answer.is_success() {
                        return None;
                    }
                    let members = parse_peer_members(&answer.body)
                        .map_err(|e| log::warn!("{e}"))
                        .ok()?;
                    log::debug!(
                        "{url} lists {} members{}",
                        members.len(),
                        if crate::model::bootstrapping(&members) {
                            ", none published: a bootstrap"
                        } else {
                            ""
                        }
                    );
                    Some(PeerList {
                        url: url.clone(),
                        cluster_id: answer.header("x-etcd-cluster-id").and_then(parse_hex_id),
                        members,
                    })
                })
            })
            .collect();
        asks.into_iter().find_map(|ask| ask.join().ok().flatten())
    })
}

/// An etcd endpoint that answered, and the protocol it answered in.
#[derive(Clone)]
pub struct Etcd {
    http: Http,
    pub endpoint: String,
    pub api: Api,
    /// The cluster's ID, as the member list's answer named it (v3: the header's
    /// `cluster_id`; v2: `X-Etcd-Cluster-ID`).
    pub cluster_id: Option<u64>,
}

/// What asking every peer found.
pub enum Discovery {
    /// A peer answered with the member list.
    Found(Etcd, Vec<Member>),
    /// Nobody answered at all: no connection, no HTTP.
    NobodyAnswered,
}

/// Asks one endpoint for the member list in the requested protocol(s), logged in first when
/// a user is given; the endpoint it returns carries the token and the cluster's ID.
fn list_at(
    http: &Http,
    endpoint: &str,
    api: EtcdApi,
    user: Option<&EtcdUser>,
) -> Result<(Etcd, Vec<Member>)> {
    let http = match user {
        Some(user) if api != EtcdApi::V2 => authenticate(http, endpoint, user)?,
        _ => http.clone(),
    };
    let at = |api| Etcd {
        http: http.clone(),
        endpoint: endpoint.to_string(),
        api,
        cluster_id: None,
    };
    if api != EtcdApi::V2 {
        match at(Api::V3).list_naming_cluster() {
            Err(Error::Status { status: 404, .. }) if api == EtcdApi::Auto => {}
            result => return result,
        }
    }
    at(Api::V2).list_naming_cluster()
}

/// Asks every endpoint at once; the first member list wins. Only when every endpoint proved
/// that nothing listens there does the cluster not exist yet; when some peer answered but gave
/// no list, or could not be told apart from a slow one, that is an error: bootstrapping a new
/// cluster beside a sick one would split it.
pub fn discover(
    http: &Http,
    endpoints: &[String],
    api: EtcdApi,
    user: Option<&EtcdUser>,
) -> Result<Discovery> {
    let (sender, receiver) = mpsc::channel();
    let queue = Arc::new((endpoints.to_vec(), AtomicUsize::new(0)));
    // A bounded pool: a group of a thousand addresses must not cost a thousand threads.
    for _ in 0..endpoints.len().min(MAX_PARALLEL_PEERS) {
        let (http, queue, sender) = (http.clone(), queue.clone(), sender.clone());
        let user = user.cloned();
        // Detached on purpose: once one peer answers we stop waiting for the dead ones; a
        // worker stops at its next send once the receiver is gone.
        std::thread::spawn(move || {
            let (endpoints, next) = &*queue;
            while let Some(endpoint) = endpoints.get(next.fetch_add(1, Ordering::Relaxed)) {
                let result = list_at(&http, endpoint, api, user.as_ref());
                if sender.send((endpoint.clone(), result)).is_err() {
                    return;
                }
            }
        });
    }
    drop(sender);
    let mut answered_badly: Option<Error> = None;
    for (endpoint, result) in receiver {
        match result {
            Ok((etcd, members)) => {
                log::debug!(
                    "{endpoint} answered ({:?}) with {} members",
                    etcd.api,
                    members.len()
                );
                return Ok(Discovery::Found(etcd, members));
            }
            // Refused, or no TCP session: nobody there. Anything else (a stall, a reset,
            // garbage, a TLS refusal, DNS) is somebody we could not use: never a reason to
            // bootstrap.
            Err(e @ Error::Absent { .. }) => log::debug!("no etcd at {endpoint}: {e}"),
            Err(e) => {
                log::warn!("etcd at {endpoint} answered without a member list: {e}");
                // What a person must fix (our certificate refused) outranks what may pass.
                if answered_badly.as_ref().is_none_or(Error::is_transient) {
                    answered_badly = Some(e);
                }
            }
        }
    }
    match answered_badly {
        None => Ok(Discovery::NobodyAnswered),
        Some(e) => Err(Error::Etcd {
            what: "member list".into(),
            transient: e.is_transient(),
            detail: format!(
                "a peer is up but gave no member list ({e}); not bootstrapping beside it"
            ),
        }),
    }
}

impl Etcd {
    /// The agent that got the member list (with the auth token, when there is one).
    pub fn http(&self) -> &Http {
        &self.http
    }

    /// `retry` for a membership change; each try after the first is counted as a retry.
    fn retry_change<T>(&self, sleep: &Sleep<'_>, mut op: impl FnMut() -> Result<T>) -> Result<T> {
        let mut tries = 0;
        retry(MEMBER_CHANGE_RETRY, sleep, Error::is_transient, || {
            if tries > 0 {
                self.http.note_retry();
            }
            tries += 1;
            op()
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint.trim_end_matches('/'))
    }

    fn post_json(&self, what: &str, path: &str, body: String) -> Result<Response> {
        self.http.send(
            what,
            "POST",
            &self.url(path),
            &[("content-type", "application/json")],
            Some(body.into_bytes()),
        )
    }

    /// The member list from this endpoint.
    pub fn list(&self) -> Result<Vec<Member>> {
        self.list_naming_cluster().map(|(_, members)| members)
    }

    /// The member list, and this endpoint with the cluster's ID its answer named.
    fn list_naming_cluster(&self) -> Result<(Etcd, Vec<Member>)> {
        let what = format!("etcd member list at {}", self.endpoint);
        let response = match self.api {
            Api::V3 => self.post_json(&what, "/v3/cluster/member/list", "{}".into())?,
            Api::V2 => self
                .http
                .send(&what, "GET", &self.url("/v2/members"), &[], None)?,
        };
        if !response.is_success() {
            return Err(list_refusal(what, self.api, &response));
        }
        let (members, cluster_id) = match self.api {
            Api::V3 => parse_v3_list(&response.body)?,
            Api::V2 => (
                parse_v2_members(&response.body)?,
                response.header("x-etcd-cluster-id").and_then(parse_hex_id),
            ),
        };
        let etcd = Etcd {
            cluster_id,
            ..self.clone()
        };
        Ok((etcd, members))
    }

    /// Adds a member with this peer URL, retrying "not yet" answers for a bounded time, and
    /// returns the member list etcd answered the add with (v3): the cluster as of this add,
    /// which is what this node's `ETCD_INITIAL_CLUSTER` must match.
    ///
    /// Two nodes joining at once: etcd before 3.5.30 / 3.6.11 refuses the second add
    /// ("unhealthy cluster") until the first member has started; later ones accept it, and
    /// then the first node's list misses the second and its etcd refuses to start ("member
    /// count is unequal"). So whatever etcd does, there is one join at a time: every try
    /// looks first and waits while another added member has not started, and an add whose
    /// answer shows another unstarted member (the other node got in first) is taken back and
    /// tried again once that member has started. Each look also finds an earlier try that
    /// went through after all (a timed-out answer), so a retry never adds a duplicate.
    pub fn add(
        &self,
        peer_url: &str,
        learner: bool,
        sleep: &Sleep<'_>,
    ) -> Result<Option<Vec<Member>>> {
        let what = format!("member add {peer_url}");
        let peer_urls = serde_json::to_string(&[peer_url]).map_err(|e| Error::Parse {
            what: what.clone(),
            detail: e.to_string(),
        })?;
        let is_mine = |m: &Member| m.peer_urls.iter().any(|u| u == peer_url);
        let mut told = false;
        self.retry_change(sleep, || {
            let members = self.list()?;
            if members.iter().any(is_mine) {
                return Ok(None);
            }
            if let Some(other) = another_unstarted(&members, peer_url) {
                if !std::mem::replace(&mut told, true) {
                    log::info!("{other}");
                }
                return Err(Error::Etcd {
                    what: what.clone(),
                    detail: other,
                    transient: true,
                });
            }
            let body = if learner {
                format!(r#"{{"peerURLs":{peer_urls},"isLearner":true}}"#)
            } else {
                format!(r#"{{"peerURLs":{peer_urls}}}"#)
            };
            let response = match self.api {
                Api::V3 => self.post_json(&what, "/v3/cluster/member/add", body)?,
                Api::V2 => self.post_json(&what, "/v2/members", body)?,
            };
            if response.is_success() {
                if self.api == Api::V2 {
                    return Ok(None);
                }
                let answered = parse_v3_members(&response.body)?;
                let Some(other) = another_unstarted(&answered, peer_url) else {
                    return Ok(Some(answered));
                };
                // The other node's add went in first: ours goes, and waits for its member.
                if let Some(mine) = answered.iter().find(|m| is_mine(m)) {
                    log::info!(
                        "another node joined at the same time: taking member {:x} back",
                        mine.id
                    );
                    self.remove(mine.id, sleep)?;
                }
                return Err(Error::Etcd {
                    what: what.clone(),
                    detail: other,
                    transient: true,
                });
            }
            match self.refusal(&what, &response) {
                // Seen in the lab with etcd 3.4: an add right after a removal is answered
                // "member not found" (gRPC 5) until the removal settles. The add itself is
                // sound, and the next try looks for a duplicate first.
                Error::Etcd { what, detail, .. } if self.is_not_found(&response) => {
                    Err(Error::Etcd {
                        what,
                        detail,
                        transient: true,
                    })
                }
                refused => Err(refused),
            }
        })
    }

    /// Promotes a learner to a voter, retrying etcd's "not in sync" answer (gRPC 9, failed
    /// precondition) while it catches up, for a bounded time.
    pub fn promote(&self, id: u64, sleep: &Sleep<'_>) -> Result<()> {
        let what = format!("member promote {id:x}");
        self.retry_change(sleep, || {
            let body = format!(r#"{{"ID":"{id}"}}"#);
            let response = self.post_json(&what, "/v3/cluster/member/promote", body)?;
            if response.is_success() {
                return Ok(());
            }
            let refused = self.refusal(&what, &response);
            let not_in_sync =
                serde_json::from_str::<GatewayError>(&response.body).is_ok_and(|e| e.code == 9);
            match refused {
                Error::Etcd { what, detail, .. } if not_in_sync => Err(Error::Etcd {
                    what,
                    detail,
                    transient: true,
                }),
                refused => Err(refused),
            }
        })
    }

    /// The same cluster, asked at another member's client URL.
    pub fn at(&self, endpoint: &str) -> Etcd {
        Etcd {
            endpoint: endpoint.to_string(),
            ..self.clone()
        }
    }

    /// Whether the member answering at this endpoint is the cluster's leader (v3 maintenance
    /// status; v2's self stats when the gateway is missing).
    pub fn is_leader(&self) -> Result<bool> {
        let what = format!("etcd status at {}", self.endpoint);
        let response = match self.api {
            Api::V3 => Some(self.post_json(&what, "/v3/maintenance/status", "{}".into())?),
            Api::V2 => None,
        };
        let response = match response {
            Some(r) if r.status != 404 => r,
            _ => {
                let r = self
                    .http
                    .send(&what, "GET", &self.url("/v2/stats/self"), &[], None)?;
                return Ok(r.is_success() && r.body.contains("\"StateLeader\""));
            }
        };
        let response = success(&what, response)?;
        let status: Status = parse_json(&what, &response.body)?;
        Ok(!status.leader.is_empty() && status.leader == status.header.member_id)
    }

    /// The store's revision at this member now (v3 maintenance status).
    pub fn revision(&self) -> Result<u64> {
        let what = format!("etcd status at {}", self.endpoint);
        let response = self.post_json(&what, "/v3/maintenance/status", "{}".into())?;
        let status: Status = parse_json(&what, &success(&what, response)?.body)?;
        status.header.revision.parse().map_err(|_| Error::Parse {
            what,
            detail: format!("revision {:?} is not a number", status.header.revision),
        })
    }

    /// The v3 gateway's snapshot stream of this member (`POST /v3/maintenance/snapshot`),
    /// as `snapshot` reads it. v2 has none.
    pub fn snapshot(&self) -> Result<crate::snapshot::Stream<ureq::BodyReader<'static>>> {
        let what = format!("etcd snapshot at {}", self.endpoint);
        if self.api == Api::V2 {
            return Err(Error::Usage(format!(
                "{what}: snapshots need the v3 gateway; drop --etcd-api=v2"
            )));
        }
        let url = self.url("/v3/maintenance/snapshot");
        let (status, body) = self.http.open(
            &what,
            "POST",
            &url,
            &[("content-type", "application/json")],
            b"{}",
        )?;
        let mut stream = crate::snapshot::Stream::new(body);
        if !(200..300).contains(&status) {
            // etcd explains a refusal in the stream's shape: `{"error":{...}}`.
            let detail = match stream.next_piece() {
                Err(e) => e.to_string(),
                Ok(_) => "no reason given".into(),
            };
            return Err(Error::Etcd {
                what,
                detail: format!("HTTP {status}: {detail}"),
                transient: status >= 500 && !detail.contains("auth"),
            });
        }
        Ok(stream)
    }

    /// Removes a member by ID; a member that is already gone counts as removed.
    pub fn remove(&self, id: u64, sleep: &Sleep<'_>) -> Result<()> {
        let what = format!("member remove {id:x}");
        self.retry_change(sleep, || {
            let response = match self.api {
                Api::V3 => self.post_json(
                    &what,
                    "/v3/cluster/member/remove",
                    format!(r#"{{"ID":"{id}"}}"#),
                )?,
                Api::V2 => self.http.send(
                    &what,
                    "DELETE",
                    &self.url(&format!("/v2/members/{id:x}")),
                    &[],
                    None,
                )?,
            };
            if response.is_success() || self.is_not_found(&response) {
                return Ok(());
            }
            Err(self.refusal(&what, &response))
        })
    }

    fn is_not_found(&self, response: &Response) -> bool {
        match self.api {
            Api::V2 => response.status == 404,
            // gRPC code 5, NotFound
            Api::V3 => {
                serde_json::from_str::<GatewayError>(&response.body).is_ok_and(|e| e.code == 5)
            }
        }
    }

    /// Turns a refused change into an error, transient when etcd says to come back later.
    fn refusal(&self, what: &str, response: &Response) -> Error {
        let (code, message) = gateway_error(response);
        if let Some(auth) = auth_refusal(code, &message, response.status) {
            return Error::Etcd {
                what: what.to_string(),
                detail: auth,
                transient: false,
            };
        }
        let transient = is_not_yet(response.status, code, &message);
        Error::Etcd {
            what: what.to_string(),
            detail: format!("HTTP {}: {}", response.status, snippet(&message)),
            transient,
        }
    }
}

/// Another member than the one at `peer_url` that was added and has not started: while there
/// is one, a join waits (what to say), so that two joins never overlap.
fn another_unstarted(members: &[Member], peer_url: &str) -> Option<String> {
    let other = members
        .iter()
        .find(|m| !m.is_started() && !m.peer_urls.iter().any(|u| u == peer_url))?;
    Some(format!(
        "member {:x} at {} was added and has not started yet; joining after it starts (two \
         joins at once would give their etcds different member lists)",
        other.id,
        other
            .peer_urls
            .first()
            .map(|u| snippet(u))
            .unwrap_or_default()
    ))
}

/// The gateway's error body as (gRPC code, message); (0, the body) when it is not one.
fn gateway_error(response: &Response) -> (i64, String) {
    match serde_json::from_str::<GatewayError>(&response.body) {
        Ok(e) if !e.message.is_empty() => (e.code, e.message),
        Ok(e) if !e.error.is_empty() => (e.code, e.error),
        _ => (0, body_snippet(response)),
    }
}

/// Whether a refused membership change passes with time. gRPC 14 Unavailable ("unhealthy
/// cluster", and 3.5's learner refusal) and v2's generic 500 do; so do two FailedPrecondition
/// answers (HTTP 400 through the gateway): "not enough started members" clears as members
/// start, "too many learner members" as the learner is promoted.
fn is_not_yet(status: u16, code: i64, message: &str) -> bool {
    code == 14
        || status >= 500
        || message.contains("unhealthy cluster")
        || message.contains("not enough started members")
        || message.contains("too many learner members")
        || message.contains("rpc not supported for learner")
}

/// etcd refusing for want of a login, said as what to give.
fn auth_refusal(code: i64, message: &str, status: u16) -> Option<String> {
    let auth = [
        "user name is empty",
        "permission denied",
        "invalid auth token",
    ];
    (code == 16 || auth.iter().any(|a| message.contains(a))).then(|| {
        format!(
            "{} (HTTP {status}): authentication is on in etcd (3.5.28 and 3.6.9 on check it \
             for member lists too): give --etcd-user (ETCDCTL_USER) as USER:PASSWORD of a user \
             with the root role, or a client certificate whose common name is such a user",
            snippet(message)
        )
    })
}

/// A member list refused: a learner answering (look again), authentication (say how to log
/// in), v2 gone (say to use v3), or the plain status.
fn list_refusal(what: String, api: Api, response: &Response) -> Error {
    let (code, message) = gateway_error(response);
    let etcd = |detail: String, transient: bool| Error::Etcd {
        what: what.trim_start_matches("etcd ").to_string(),
        detail,
        transient,
    };
    if message.contains("rpc not supported for learner") {
        return etcd(
            "this member is a learner and lists no members (etcd 3.6 and later); asking the \
             other members again"
                .into(),
            true,
        );
    }
    if let Some(auth) = auth_refusal(code, &message, response.status) {
        return etcd(auth, false);
    }
    if api == Api::V2 && response.status == 404 {
        return etcd(
            "no v2 API here (HTTP 404): it is off by default in etcd 3.5 and gone in 3.6; use \
             --etcd-api=v3 (or auto)"
                .into(),
            false,
        );
    }
    Error::Status {
        what,
        status: response.status,
        body: body_snippet(response),
    }
}

/// What a member says of itself at `/v3/maintenance/status`, for `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberStatus {
    /// The leader's member ID as this member knows it; 0 without a leader.
    pub leader: u64,
    /// The size of its database file, in bytes.
    pub db_size: u64,
    pub raft_index: u64,
}

/// Parses a `/v3/maintenance/status` answer.
pub fn parse_status(body: &str) -> Result<MemberStatus> {
    let status: Status = parse_json("etcd status", body)?;
    let number = |text: &str| text.parse::<u64>().unwrap_or(0);
    Ok(MemberStatus {
        leader: number(&status.leader),
        db_size: number(&status.db_size),
        raft_index: number(&status.raft_index),
    })
}

/// Each member's status, asked at its client URLs in parallel (the first URL that answers);
/// `None` for a member none of whose URLs gave one. Read-only.
pub fn member_status(http: &Http, members: &[Member]) -> Vec<(u64, Option<MemberStatus>)> {
    std::thread::scope(|scope| {
        let asks: Vec<_> = members
            .iter()
            .map(|member| {
                scope.spawn(move || {
                    member.client_urls.iter().find_map(|url| {
                        let base = url.trim_end_matches('/');
                        http.send(
                            &format!("etcd status at {url}"),
                            "POST",
                            &format!("{base}/v3/maintenance/status"),
                            &[("content-type", "application/json")],
                            Some(b"{}".to_vec()),
                        )
                        .ok()
                        .filter(Response::is_success)
                        .and_then(|r| parse_status(&r.body).ok())
                    })
                })
            })
            .collect();
        asks.into_iter()
            .zip(members)
            .map(|(ask, member)| (member.id, ask.join().unwrap_or(None)))
            .collect()
    })
}

/// What a member's client URLs said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// It has a leader: `/health` is true, or false while its status names a leader (an alarm
    /// or a slow read); `note` says what to do then.
    Leader { note: Option<String> },
    /// It answered, and has no leader.
    NoLeader,
    /// Somebody is there, but the answer was unusable (slow, reset, garbled, TLS): alive as
    /// far as we can tell.
    Unknown,
    /// Nothing listens at any of its client URLs, or it has none (it never started).
    Absent,
}

impl Health {
    /// Orders what several client URLs said: the strongest evidence of life wins.
    fn rank(&self) -> u8 {
        match self {
            Health::Leader { .. } => 3,
            Health::NoLeader => 2,
            Health::Unknown => 1,
            Health::Absent => 0,
        }
    }
}

/// Each member's health, asked at its client URLs in parallel. etcd's `/health` is false
/// without a leader, but also for an alarm (NOSPACE) or a read slower than a second; the
/// member's status tells those apart, because it names the leader.
pub fn member_health(http: &Http, members: &[Member]) -> Vec<(u64, Health)> {
    std::thread::scope(|scope| {
        let checks: Vec<_> = members
            .iter()
            .map(|member| {
                scope.spawn(move || {
                    let health = member
                        .client_urls
                        .iter()
                        .map(|url| health_at(http, url))
                        .max_by_key(Health::rank)
                        .unwrap_or(Health::Absent);
                    log::debug!("member {:x} ({}): {health:?}", member.id, member.name);
                    (member.id, health)
                })
            })
            .collect();
        checks
            .into_iter()
            .zip(members)
            .map(|(check, member)| check.join().unwrap_or((member.id, Health::Unknown)))
            .collect()
    })
}

/// Whether an etcd is there at the client URL `url`: only a refused (or impossible) connect
/// says none is; a slow, failing or leaderless answer is somebody.
pub fn is_there(http: &Http, url: &str) -> bool {
    health_at(http, url) != Health::Absent
}

fn health_at(http: &Http, url: &str) -> Health {
    let base = url.trim_end_matches('/');
    let what = format!("etcd health at {url}");
    let answer = match http.send(&what, "GET", &format!("{base}/health"), &[], None) {
        Ok(answer) => answer,
        Err(Error::Absent { .. }) => return Health::Absent,
        Err(e) => {
            log::warn!("{e}: counting the member as alive");
            return Health::Unknown;
        }
    };
    let health = serde_json::from_str::<HealthAnswer>(&answer.body).ok();
    if answer.is_success() && health.as_ref().is_some_and(HealthAnswer::is_true) {
        return Health::Leader { note: None };
    }
    // Unhealthy by /health: is there a leader all the same?
    let what = format!("etcd status at {url}");
    let status = http
        .send(
            &what,
            "POST",
            &format!("{base}/v3/maintenance/status"),
            &[("content-type", "application/json")],
            Some(b"{}".to_vec()),
        )
        .ok()
        .filter(Response::is_success)
        .and_then(|r| serde_json::from_str::<Status>(&r.body).ok());
    match status {
        Some(status) if status.has_leader() => {
            let reason = health.map(|h| h.reason).unwrap_or_default();
            Health::Leader {
                note: Some(unhealthy_note(&status.errors, &reason)),
            }
        }
        _ => Health::NoLeader,
    }
}

/// What an operator should do about a member that has a leader but reports unhealthy.
fn unhealthy_note(errors: &[String], reason: &str) -> String {
    let said = errors.join("; ");
    let said = if said.is_empty() { reason } else { &said };
    if said.contains("NOSPACE") {
        format!(
            "alarm NOSPACE ({}): the database is over its quota; compact, defragment, then \
             `etcdctl alarm disarm` (or raise --quota-backend-bytes)",
            snippet(said)
        )
    } else if said.contains("CORRUPT") {
        format!(
            "alarm CORRUPT ({}): a member's data differs from the others'; replace that member",
            snippet(said)
        )
    } else if said.is_empty() {
        "it has a leader but reads are slow (over a second): check disk and network latency"
            .to_string()
    } else {
        format!("it has a leader but reports {}", snippet(said))
    }
}

/// Whether the cluster has decided its version, as the etcd at `base_url` answers
/// `GET /version`: a client URL, or a peer URL (the peer port answers it too, with or
/// without a leader). Until it has, etcd refuses to start a member `existing` from an empty
/// data directory.
pub fn cluster_version_decided(http: &Http, base_url: &str) -> Result<bool> {
    let what = format!("etcd version at {base_url}");
    let url = format!("{}/version", base_url.trim_end_matches('/'));
    let response = http.send(&what, "GET", &url, &[], None)?;
    parse_cluster_version_decided(&success(&what, response)?.body)
}

/// `GET /version`: `{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}`, the cluster's version
/// `not_decided` until its leader decides it.
#[derive(Deserialize)]
struct VersionAnswer {
    etcdcluster: String,
}

/// Whether a `/version` answer names a cluster version (`3.4.0`), as etcd itself checks a
/// peer's before a member joins: `not_decided` does not parse as one.
pub fn parse_cluster_version_decided(body: &str) -> Result<bool> {
    let answer: VersionAnswer = parse_json("etcd version", body)?;
    let parts: Vec<&str> = answer.etcdcluster.split('.').collect();
    Ok(parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
}

/// `{"health":"true"}` (etcd 3.4 writes a string; later versions may write a bool, and a
/// `reason`).
#[derive(Deserialize)]
struct HealthAnswer {
    health: serde_json::Value,
    #[serde(default)]
    reason: String,
}

impl HealthAnswer {
    fn is_true(&self) -> bool {
        self.health == serde_json::Value::Bool(true) || self.health == "true"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("fixtures/etcd/{name}")).unwrap()
    }

    #[test]
    fn v3_member_list_fixture() {
        let members = parse_v3_members(&fixture("v3-member-list.json")).unwrap();
        assert_eq!(members.len(), 3);
        assert_eq!(members[0].id, 10501334649042878790);
        assert_eq!(members[0].name, "i-0a1b2c3d4e5f60718");
        assert!(!members[0].is_learner);
        let unstarted = &members[2];
        assert!(!unstarted.is_started() && unstarted.client_urls.is_empty());
        assert!(unstarted.is_learner);
    }

    #[test]
    fn version_fixtures() {
        assert!(!parse_cluster_version_decided(&fixture("version-not-decided.json")).unwrap());
        assert!(parse_cluster_version_decided(&fixture("version-decided.json")).unwrap());
        assert!(parse_cluster_version_decided(r#"{"etcdserver":"x"}"#).is_err());
    }

    #[test]
    fn status_fixture() {
        let status = parse_status(&fixture("v3-status-nospace.json")).unwrap();
        assert_eq!(
            status,
            MemberStatus {
                leader: 11502783638607158352,
                db_size: 1376256,
                raft_index: 18,
            }
        );
    }

    #[test]
    fn v2_member_list_fixture() {
        let members = parse_v2_members(&fixture("v2-members.json")).unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(members[0].id, 0x8e9e05c52164694d);
        assert_eq!(members[1].name, "");
    }

    /// The cluster's ID comes with the list: v3 in the answer's header (a decimal string), v2
    /// and peer ports in `X-Etcd-Cluster-ID` (hexadecimal). Rules 18 and 20 weigh it.
    #[test]
    fn the_cluster_id_comes_with_the_list() {
        let v3 = fixture("v3-member-list.json");
        let cluster_id = |body: &str| parse_v3_list(body).unwrap().1;
        let one = r#"[{"ID":"1","name":"a","peerURLs":["http://a:2380"],"clientURLs":["http://a:2379"]}]"#;
        assert_eq!(cluster_id(&v3), Some(14841639068965178418));
        assert_eq!(cluster_id(&format!(r#"{{"members":{one}}}"#)), None);
        assert_eq!(
            cluster_id(&format!(
                r#"{{"header":{{"cluster_id":"not a number"}},"members":{one}}}"#
            )),
            None
        );
        // A header of another shape costs the list nothing.
        assert_eq!(
            parse_v3_list(&format!(r#"{{"header":"odd","members":{one}}}"#))
                .unwrap()
                .0
                .len(),
            1
        );
        assert_eq!(
            parse_hex_id("174c4fd5677bc401"),
            Some(0x174c_4fd5_677b_c401)
        );
        assert_eq!(parse_hex_id(""), None);
    }

    fn answer(status: u16, name: &str) -> Response {
        Response {
            status,
            body: fixture(name),
            headers: Vec::new(),
        }
    }

    #[test]
    fn refusals_that_pass_with_time() {
        // Regression: "not enough started members" and "too many learner members" (gRPC 9,
        // HTTP 400) were failures; etcd answers them while a new member has not started.
        for name in [
            "v3.5-add-not-enough-started.json",
            "v3.5-add-too-many-learners.json",
        ] {
            let (code, message) = gateway_error(&answer(400, name));
            assert_eq!(code, 9, "{name}");
            assert!(is_not_yet(400, code, &message), "failed testcase: {name}");
        }
        assert!(is_not_yet(503, 14, "etcdserver: unhealthy cluster"));
        assert!(!is_not_yet(400, 3, "etcdserver: peerURL exists"));
    }

    #[test]
    fn a_learner_answering_the_list_means_look_again() {
        // Regression: etcd 3.6's learner answers 400 "rpc not supported for learner"; that
        // was exit 1 when the learner was the only member answering.
        let e = list_refusal(
            "etcd member list at x".into(),
            Api::V3,
            &answer(400, "v3.6-learner-list-refused.json"),
        );
        assert!(e.is_transient(), "{e}");
        assert!(e.to_string().contains("learner"), "{e}");
    }

    #[test]
    fn authentication_is_named() {
        // From 3.5.28 and 3.6.9 a member list needs a user when auth is on.
        for (status, name) in [
            (400, "v3.5-list-user-empty.json"),
            (403, "v3.5-list-permission-denied.json"),
        ] {
            let e = list_refusal(
                "etcd member list at x".into(),
                Api::V3,
                &answer(status, name),
            );
            assert!(!e.is_transient(), "{name}: {e}");
            let text = e.to_string();
            assert!(
                text.contains("authentication is on") && text.contains("--etcd-user"),
                "{text}"
            );
        }
    }

    #[test]
    fn v2_gone_says_to_use_v3() {
        let e = list_refusal(
            "etcd member list at x".into(),
            Api::V2,
            &Response {
                status: 404,
                body: "404 page not found\n".into(),
                headers: Vec::new(),
            },
        );
        assert!(
            e.to_string().contains("gone in 3.6; use --etcd-api=v3"),
            "{e}"
        );
    }

    #[test]
    fn bad_member_lists() {
        let cases = [
            r#"{"members":[{"ID":"18446744073709551616","peerURLs":["http://a:2380"]}]}"#,
            r#"{"members":[{"ID":"-1","peerURLs":["http://a:2380"]}]}"#,
            r#"{"members":[{"ID":"1","peerURLs":["ftp://a:2380"]}]}"#,
            r#"{"members":[{"ID":"1","peerURLs":["http://a:2380\nETCD_X=1"]}]}"#,
            r#"{"members":"#,
            "<html>",
        ];
        for body in cases {
            assert!(parse_v3_members(body).is_err(), "failed testcase {body}");
        }
        assert!(parse_v2_members(r#"{"members":[{"id":"zz"}]}"#).is_err());
        assert!(parse_v2_members(r#"{"members":[{"id":"1ffffffffffffffff"}]}"#).is_err());
        assert!(parse_v2_members("{}").is_err());
        let twice = [
            (
                r#"{"members":[{"ID":"1","name":"a","peerURLs":["http://a:2380"]},{"ID":"1","name":"b","peerURLs":["http://b:2380"]}]}"#,
                "ID 1 appears twice",
            ),
            (
                r#"{"members":[{"ID":"1","name":"a","peerURLs":["http://a:2380"]},{"ID":"2","name":"a","peerURLs":["http://b:2380"]}]}"#,
                "two members are named",
            ),
            (
                r#"{"members":[{"ID":"1","name":"a","peerURLs":["http://a:2380"]},{"ID":"2","peerURLs":["http://a:2380"]}]}"#,
                "peer URL",
            ),
        ];
        for (body, needle) in twice {
            let e = parse_v3_members(body).unwrap_err();
            assert!(
                e.to_string().contains(needle),
                "failed testcase {body}: {e}"
            );
        }
        // Unstarted members share the empty name; that is not a duplicate.
        let ok = r#"{"members":[{"ID":"1","peerURLs":["http://a:2380"]},{"ID":"2","peerURLs":["http://b:2380"]}]}"#;
        assert_eq!(parse_v3_members(ok).unwrap().len(), 2);
    }

    #[test]
    fn a_status_with_an_alarm_names_the_leader() {
        let status: Status = serde_json::from_str(&fixture("v3-status-nospace.json")).unwrap();
        assert!(status.has_leader());
        let note = unhealthy_note(&status.errors, "");
        assert!(
            note.contains("alarm NOSPACE") && note.contains("etcdctl alarm disarm"),
            "{note}"
        );
        let no_leader: Status =
            serde_json::from_str(r#"{"header":{"member_id":"1"},"leader":"0"}"#).unwrap();
        assert!(!no_leader.has_leader());
        let cases = [
            (vec![], "", "reads are slow"),
            (
                vec!["memberID:1 alarm:CORRUPT ".to_string()],
                "",
                "replace that member",
            ),
            (vec![], "NOSPACE", "alarm NOSPACE"),
            (
                vec!["something new".to_string()],
                "",
                "reports something new",
            ),
        ];
        for (errors, reason, needle) in cases {
            let note = unhealthy_note(&errors, reason);
            assert!(
                note.contains(needle),
                "failed testcase {errors:?} {reason:?}: {note}"
            );
        }
    }

    /// etcd's own IDs, from a capture: what proves a list is still the initial cluster.
    #[test]
    fn member_and_cluster_ids_are_computed_as_etcd_does() {
        use crate::model::{cluster_id, initial_member_id, is_initial_cluster, is_initial_record};
        let members = parse_peer_members(&fixture("peer-members-cluster-id.json")).unwrap();
        let token = "etcd-etcd-3f0c3b2e";
        let named = 0x174c_4fd5_677b_c401; // X-Etcd-Cluster-Id, as captured
        for m in &members {
            assert_eq!(m.id, initial_member_id(&m.peer_urls, token), "{}", m.name);
        }
        let ids: Vec<u64> = members.iter().map(|m| m.id).collect();
        assert_eq!(cluster_id(&ids), named);
        assert!(is_initial_cluster(&members, token, Some(named)));
        // Another token's bootstrap, a member removed since, no cluster ID named.
        assert!(!is_initial_cluster(&members, "etcd-other", Some(named)));
        assert!(!is_initial_cluster(&members[..1], token, Some(named)));
        assert!(!is_initial_cluster(&members, token, None));
        // The group's record of that bootstrap (rule 14) proves the same.
        let record = "i-1=http://127.0.0.1:2380,i-2=http://127.0.0.2:2380";
        assert!(is_initial_record(record, token, Some(named)));
        assert!(!is_initial_record(record, "etcd-other", Some(named)));
        assert!(!is_initial_record(
            "i-1=http://127.0.0.1:2380",
            token,
            Some(named)
        ));
        assert!(!is_initial_record(record, token, None));
        assert!(!is_initial_record("", token, Some(named)));
    }

    #[test]
    fn a_bootstrapping_peer_port_lists_the_initial_cluster() {
        let members = parse_peer_members(&fixture("peer-members-bootstrapping.json")).unwrap();
        assert_eq!(members.len(), 3);
        assert_eq!(members[2].id, 13487502627470054085);
        assert_eq!(members[2].name, "n3");
        assert!(
            members.iter().all(|m| m.client_urls.is_empty()),
            "none published"
        );
        assert!(
            parse_peer_members("[]").is_err(),
            "an empty list is a bad answer"
        );
        assert!(parse_peer_members(r#"[{"id":1,"peerURLs":["ftp://a"]}]"#).is_err());
    }
}
