//! The AWS Query protocol: form parameters -> signed POST -> XML, or an AWS error carrying its
//! code and message. Throttling, 5xx and dropped connections are retried with jittered
//! backoff, a bounded number of times; each try is signed anew.

use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;

use super::credentials::Provider;
use super::sign::{sign_request, Unsigned};
use crate::error::{is_expired_credentials, snippet, Error, Result};
use crate::http::{retry_until, Http, RetryPolicy, Sleep};

const RETRY: RetryPolicy = RetryPolicy {
    attempts: 5,
    base: Duration::from_millis(300),
    cap: Duration::from_secs(5),
};

/// A paging loop that never ends would be a server bug; no group needs more pages than this.
const MAX_PAGES: usize = 500;

const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// One AWS service endpoint, ready to call.
pub struct QueryClient<'a> {
    pub http: &'a Http,
    pub endpoint: String,
    pub region: String,
    /// The signing name: `autoscaling` or `ec2`.
    pub service: &'static str,
    /// The API version, e.g. `2011-01-01`.
    pub version: &'static str,
    pub credentials: &'a Provider<'a>,
    pub sleep: &'a Sleep<'a>,
    pub clock: fn() -> SystemTime,
    /// Until when a network that is not up yet (refused, unreachable, DNS, timed out) is
    /// waited for beyond the usual tries: the end of `--boot-wait`.
    pub patient_until: Instant,
}

/// A network that is not up yet: the connection failed below HTTP (refused, unreachable, or
/// a stall, a reset, DNS), and may work later.
fn not_up_yet(e: &Error) -> bool {
    matches!(
        e,
        Error::Absent { .. }
            | Error::Transport {
                transient: true,
                ..
            }
    )
}

/// AWS throttled the call: a fleet booting at once shares the account's request rate, and
/// waiting (jittered, with backoff) is what lets every instance through. Waited for like a
/// network that is not up yet, until `--boot-wait` ends, beyond the usual tries.
fn throttled(e: &Error) -> bool {
    matches!(e, Error::Aws { code, .. } if crate::error::is_throttling_code(code))
}

/// Both error shapes: `<ErrorResponse><Error>` (AutoScaling) and `<Response><Errors><Error>` (EC2).
#[derive(Deserialize, Default)]
struct ErrorDocument {
    #[serde(rename = "Error", default)]
    error: Option<ErrorBody>,
    #[serde(rename = "Errors", default)]
    errors: Option<ErrorList>,
}

#[derive(Deserialize, Default)]
struct ErrorList {
    #[serde(rename = "Error", default)]
    error: Vec<ErrorBody>,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(rename = "Code", default)]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

/// The name of the document's root element, skipping the declaration and comments.
pub fn root_element(body: &str) -> Option<&str> {
    let mut rest = body.trim_start_matches('\u{feff}').trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("<?") {
            rest = after.split_once("?>")?.1.trim_start();
        } else if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.split_once("-->")?.1.trim_start();
        } else {
            let name = rest.strip_prefix('<')?;
            let end = name.find(|c: char| c.is_whitespace() || c == '>' || c == '/')?;
            return Some(&name[..end]);
        }
    }
}

/// Reads an AWS error document; `None` when the body is not one.
pub fn parse_error(body: &str) -> Option<(String, String)> {
    if !matches!(root_element(body), Some("ErrorResponse" | "Response")) {
        return None;
    }
    let doc: ErrorDocument = quick_xml::de::from_str(body).ok()?;
    let error = doc
        .error
        .or_else(|| doc.errors.and_then(|list| list.error.into_iter().next()))?;
    (!error.code.is_empty()).then(|| (error.code, snippet(&error.message)))
}

/// Parses a successful answer into `T`, naming the action on failure.
pub fn parse_xml<T: for<'de> Deserialize<'de>>(action: &str, body: &str) -> Result<T> {
    quick_xml::de::from_str(body).map_err(|e| Error::Parse {
        what: format!("AWS {action}"),
        detail: snippet(&e.to_string()),
    })
}

/// RFC 3986 percent-encoding, as SigV4 and the Query protocol want it.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The form body of a Query call, encoded as the SDKs encode it
/// (`application/x-www-form-urlencoded`: a space is `+`). AWS hashes the body as sent, but an
/// endpoint that hashes the form it parsed again (moto) agrees only with that encoding; a tag
/// value is the one place a space occurs.
pub fn form_body(action: &str, version: &str, params: &[(String, String)]) -> String {
    let form = |text: &str| percent_encode(text).replace("%20", "+");
    let mut body = format!("Action={}&Version={}", form(action), form(version));
    for (name, value) in params {
        body.push('&');
        body.push_str(&form(name));
        body.push('=');
        body.push_str(&form(value));
    }
    body
}

impl QueryClient<'_> {
    /// Calls `action` and returns the XML of a successful answer. When AWS says the temporary
    /// credentials expired, fetches fresh ones and tries once more.
    pub fn call(&self, action: &str, params: &[(String, String)]) -> Result<String> {
        match self.call_once(action, params) {
            Err(Error::Aws { code, .. })
                if is_expired_credentials(&code) && self.credentials.refresh()? =>
            {
                log::info!("AWS {action}: {code}: signing again with fresh credentials");
                self.call_once(action, params)
            }
            result => result,
        }
    }

    /// The endpoint was guessed for a region in no partition the SDKs know: a name that does
    /// not resolve is then a wrong region, not a resolver that is not up yet.
    fn guessed_endpoint(&self) -> bool {
        super::partition(&self.region).is_none()
            && self.endpoint == super::endpoint(self.service, &self.region, None)
    }

    fn call_once(&self, action: &str, params: &[(String, String)]) -> Result<String> {
        let body = form_body(action, self.version, params);
        let url = format!("{}/", self.endpoint);
        let what = format!("AWS {action} at {}", self.endpoint);
        let guessed = self.guessed_endpoint();
        let wrong_region = |e: &Error| guessed && does_not_resolve(e);
        let mut tries = 0;
        retry_until(
            RETRY,
            self.patient_until,
            self.sleep,
            |e| Error::is_transient(e) && !wrong_region(e),
            |e| (not_up_yet(e) || throttled(e)) && !wrong_region(e),
            || {
                if tries > 0 {
                    self.http.note_retry();
                }
                tries += 1;
                let unsigned = Unsigned {
                    method: "POST",
                    url: &url,
                    headers: &[("content-type", FORM)],
                    body: body.as_bytes(),
                };
                let signed = sign_request(
                    &unsigned,
                    &self.credentials.current(),
                    &self.region,
                    self.service,
                    (self.clock)(),
                )?;
                let headers = super::header_pairs(&[("content-type", FORM)], &signed);
                log::debug!("AWS {action} -> {}", self.endpoint);
                let response = self.http.send(
                    &what,
                    "POST",
                    &url,
                    &headers,
                    Some(body.as_bytes().to_vec()),
                )?;
                super::answer(action, &what, response, parse_error).map(|r| r.body)
            },
        )
        .map_err(|e| {
            if !wrong_region(&e) {
                return e;
            }
            Error::Transport {
                what,
                detail: format!(
                    "{} does not resolve: region {:?} is in no partition the AWS SDKs know, so its \
                     endpoint was guessed; check --region/AWS_REGION, or name the endpoints \
                     (AWS_ENDPOINT_URL_AUTO_SCALING, AWS_ENDPOINT_URL_EC2)",
                    self.endpoint, self.region
                ),
                transient: false,
            }
        })
    }
}

/// A name that does not resolve, as `http` words it.
fn does_not_resolve(e: &Error) -> bool {
    matches!(e, Error::Transport { detail, .. } if detail.contains("does not resolve"))
}

/// Follows `NextToken`s: `page(token)` returns one page's items and the next token.
pub fn paginate<T>(
    action: &str,
    mut page: impl FnMut(Option<&str>) -> Result<(Vec<T>, Option<String>)>,
) -> Result<Vec<T>> {
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let (items, next) = page(token.as_deref())?;
        all.extend(items);
        match next.filter(|t| !t.is_empty()) {
            Some(next) if Some(&next) == token.as_ref() => {
                return Err(Error::Parse {
                    what: format!("AWS {action}"),
                    detail: "the same NextToken twice".into(),
                })
            }
            Some(next) => token = Some(next),
            None => return Ok(all),
        }
    }
    Err(Error::Parse {
        what: format!("AWS {action}"),
        detail: format!("more than {MAX_PAGES} pages"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("fixtures/{name}")).unwrap()
    }

    #[test]
    fn error_documents_from_fixtures() {
        let cases = [
            (
                "autoscaling/error-throttling.xml",
                "Throttling",
                "Rate exceeded",
            ),
            (
                "autoscaling/error-access-denied.xml",
                "AccessDenied",
                "is not authorized to perform: autoscaling:DescribeAutoScalingGroups",
            ),
            (
                "ec2/error-request-limit-exceeded.xml",
                "RequestLimitExceeded",
                "Request limit exceeded.",
            ),
            (
                "ec2/error-auth-failure.xml",
                "AuthFailure",
                "AWS was not able to validate",
            ),
        ];
        for (file, code, message) in cases {
            let (c, m) =
                parse_error(&fixture(file)).unwrap_or_else(|| panic!("failed testcase {file}"));
            assert_eq!(c, code, "failed testcase {file}");
            assert!(m.contains(message), "failed testcase {file}: {m}");
        }
    }

    #[test]
    fn not_error_documents() {
        for body in [
            "",
            "<html><body>502 Bad Gateway</body></html>",
            "<DescribeInstancesResponse/>",
            "<ErrorResponse>",
            "garbage",
        ] {
            assert_eq!(parse_error(body), None, "failed testcase {body:?}");
        }
    }

    #[test]
    fn root_element_skips_prolog() {
        assert_eq!(
            root_element("<?xml version=\"1.0\"?>\n<!-- x --><ErrorResponse xmlns=\"a\">"),
            Some("ErrorResponse")
        );
        assert_eq!(root_element("<Response><Errors>"), Some("Response"));
        assert_eq!(root_element("{}"), None);
    }

    #[test]
    fn form_encoding() {
        let params = vec![
            ("Filters.member.1.Name".to_string(), "tag:Name".to_string()),
            (
                "Filters.member.1.Values.member.1".to_string(),
                "etcd masters/prod".to_string(),
            ),
        ];
        assert_eq!(
            form_body("DescribeAutoScalingGroups", "2011-01-01", &params),
            "Action=DescribeAutoScalingGroups&Version=2011-01-01&Filters.member.1.Name=tag%3AName&Filters.member.1.Values.member.1=etcd+masters%2Fprod"
        );
    }

    #[test]
    fn paginate_follows_tokens_and_refuses_loops() {
        let pages = ["a", "b", "c"];
        let r = paginate("X", |token| {
            let i = token.map_or(0, |t| pages.iter().position(|p| *p == t).unwrap());
            let next = pages.get(i + 1).map(|s| s.to_string());
            Ok((vec![i], next))
        });
        assert_eq!(r.unwrap(), vec![0, 1, 2]);
        let r: Result<Vec<u8>> = paginate("X", |_| Ok((vec![], Some("same".into()))));
        assert!(r.is_err());
    }
}
