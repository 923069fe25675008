//! The EC2 instance metadata service: who this instance is, and `get` for the paths others
//! read (`aws::credentials` reads the instance profile's keys; this module knows nothing of
//! AWS credentials, so the two never import each other). IMDSv2 first; IMDSv1 only when the
//! token call is refused (403/404/405), never because IMDS is unreachable: an unreachable IMDS
//! is waited for within `--boot-wait` (it may come up late at boot), then an error worth a
//! retry.

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::http::{retry, retry_until, Http, RetryPolicy, Sleep};
use crate::model::{pick_address, AddressFamily, Identity};

/// Six hours, the longest IMDS allows; one run needs seconds.
const TOKEN_TTL_SECONDS: &str = "21600";

const RETRY: RetryPolicy = RetryPolicy {
    attempts: 3,
    base: Duration::from_millis(200),
    cap: Duration::from_secs(1),
};

/// A session with the metadata service.
pub struct Imds<'a> {
    http: &'a Http,
    base: String,
    /// `None` when IMDSv1 is in use.
    token: Option<String>,
}

/// The fields of `/latest/dynamic/instance-identity/document` we use.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentityDocument {
    instance_id: Option<String>,
    private_ip: Option<String>,
    region: Option<String>,
    availability_zone: Option<String>,
}

/// Parses the identity document; every field we use must be there, except `privateIp`:
/// an instance in an IPv6-only subnet has no private IPv4 address (`None` then).
pub fn parse_identity_document(body: &str) -> Result<(String, Option<String>, String, String)> {
    let doc: IdentityDocument = serde_json::from_str(body).map_err(|e| Error::Parse {
        what: "instance identity document".into(),
        detail: e.to_string(),
    })?;
    let field = |value: Option<String>, name: &str| {
        value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::Imds(format!("the identity document has no {name}")))
    };
    Ok((
        field(doc.instance_id, "instanceId")?,
        doc.private_ip
            .map(|ip| ip.trim().to_string())
            .filter(|ip| !ip.is_empty()),
        field(doc.region, "region")?,
        field(doc.availability_zone, "availabilityZone")?,
    ))
}

/// The metadata service's address for `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE`, as the SDKs
/// read it: `IPv4` (the default) or `IPv6` (`[fd00:ec2::254]`, on Nitro instances with the
/// IPv6 endpoint turned on). `None` for any other mode.
pub fn endpoint_for_mode(mode: &str) -> Option<&'static str> {
    match mode.trim() {
        m if m.is_empty() || m.eq_ignore_ascii_case("ipv4") => Some("http://169.254.169.254"),
        m if m.eq_ignore_ascii_case("ipv6") => Some("http://[fd00:ec2::254]"),
        _ => None,
    }
}

impl<'a> Imds<'a> {
    /// Opens a session: asks for an IMDSv2 token, falls back to v1 only when refused. A
    /// metadata service that does not answer (refused, unreachable, timed out, HTTP 5xx) is
    /// asked again until `until` (the end of `--boot-wait`): at boot it may come up late.
    pub fn connect(
        http: &'a Http,
        base: &str,
        until: Instant,
        sleep: &Sleep<'_>,
    ) -> Result<Imds<'a>> {
        let base = base.trim_end_matches('/').to_string();
        let url = format!("{base}/latest/api/token");
        let started = Instant::now();
        let mut told = false;
        let not_yet = Error::is_transient;
        let response = retry_until(RETRY, until, sleep, Error::is_transient, not_yet, || {
            if !told && started.elapsed() >= RETRY.cap {
                told = true;
                log::info!(
                    "the metadata service at {base} does not answer yet: waiting (--boot-wait)"
                );
            }
            http.send(
                "IMDS token",
                "PUT",
                &url,
                &[("X-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL_SECONDS)],
                None,
            )
            .and_then(|r| {
                if r.status >= 500 {
                    Err(Error::NotReady(format!("HTTP {}", r.status)))
                } else {
                    Ok(r)
                }
            })
        })
        .map_err(|e| {
            let what = format!(
                "no IMDSv2 token from {base} (tried for {}s): {e}",
                started.elapsed().as_secs()
            );
            if e.is_transient() {
                Error::ImdsUnreachable(what)
            } else {
                Error::Imds(what)
            }
        })?;
        let token = match response.status {
            200 if !response.body.trim().is_empty() => Some(response.body.trim().to_string()),
            // 403 Forbidden, 404 Not Found, 405 Method Not Allowed: IMDSv2 is not offered.
            403..=405 => {
                log::warn!(
                    "IMDSv2 token refused (HTTP {}); falling back to IMDSv1",
                    response.status
                );
                None
            }
            status => {
                return Err(Error::Imds(format!(
                    "the token call answered HTTP {status}"
                )));
            }
        };
        Ok(Imds { http, base, token })
    }

    /// A session with a metadata service that did not answer (`status` outside the group):
    /// every call to it fails as the service does.
    pub fn unreachable(http: &'a Http, base: &str) -> Imds<'a> {
        Imds {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: None,
        }
    }

    /// GETs a metadata path under `/latest/`; `Ok(None)` on 404.
    pub fn get(&self, path: &str, sleep: &Sleep<'_>) -> Result<Option<String>> {
        let url = format!("{}/latest/{path}", self.base);
        let headers: Vec<(&str, &str)> = match &self.token {
            Some(t) => vec![("X-aws-ec2-metadata-token", t.as_str())],
            None => vec![],
        };
        let response = retry(RETRY, sleep, Error::is_transient, || {
            self.http
                .send("IMDS", "GET", &url, &headers, None)
                .and_then(|r| {
                    if r.status >= 500 {
                        Err(Error::NotReady(format!("IMDS {path}: HTTP {}", r.status)))
                    } else {
                        Ok(r)
                    }
                })
        })
        .map_err(|e| Error::Imds(format!("{path}: {e}")))?;
        match response.status {
            200 => Ok(Some(response.body)),
            404 => Ok(None),
            401 => Err(Error::Imds(format!("{path}: token rejected (HTTP 401)"))),
            status => Err(Error::Imds(format!("{path}: HTTP {status}"))),
        }
    }

    /// Who this instance is: the identity document plus `local-hostname` (and `ipv6` when
    /// `family` asks for it). The calls at once: they are independent, and every boot waits
    /// on them.
    pub fn identity(&self, family: AddressFamily, sleep: &Sleep<'_>) -> Result<Identity> {
        let (document, hostname, ipv6) = std::thread::scope(|scope| {
            let hostname = scope.spawn(|| self.get("meta-data/local-hostname", sleep));
            let ipv6 = scope.spawn(|| match family {
                AddressFamily::Ipv6 => self.ipv6(sleep),
                AddressFamily::Ipv4 => Ok(String::new()),
            });
            let document = self.get("dynamic/instance-identity/document", sleep);
            (document, join(hostname), join(ipv6))
        });
        let document = document?
            .ok_or_else(|| Error::Imds("no instance identity document (HTTP 404)".into()))?;
        let (instance_id, private_ipv4, region, availability_zone) =
            parse_identity_document(&document)?;
        // An IPv6-only instance has no private IPv4 address: it listens on its IPv6 one.
        let ipv6 = match (&private_ipv4, ipv6?) {
            (None, v6) if v6.is_empty() => self.ipv6(sleep)?,
            (_, v6) => v6,
        };
        let private_ip = pick_address(family, private_ipv4.as_deref().unwrap_or_default(), &ipv6);
        if private_ip.is_empty() {
            return Err(Error::Imds(match family {
                AddressFamily::Ipv4 => {
                    "the identity document has no privateIp and meta-data/ipv6 no address".into()
                }
                AddressFamily::Ipv6 => {
                    "meta-data/ipv6 has no address (--address-family ipv6: is this instance in a \
                     subnet with IPv6?)"
                        .into()
                }
            }));
        }
        let private_dns = hostname?.as_deref().map(first_hostname).unwrap_or_default();
        Ok(Identity {
            instance_id,
            private_ip,
            private_dns,
            region,
            availability_zone,
        })
    }

    /// Where AutoScaling is taking this instance (`meta-data/autoscaling/target-lifecycle-state`):
    /// `InService`, `Warmed:Stopped`, `Warmed:Running`, `Warmed:Hibernated`, `Terminated`, ...;
    /// `None` when IMDS has no such path (an instance in no Auto Scaling group).
    pub fn target_lifecycle_state(&self, sleep: &Sleep<'_>) -> Result<Option<String>> {
        let state = self.get("meta-data/autoscaling/target-lifecycle-state", sleep)?;
        Ok(state
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()))
    }

    /// `meta-data/ipv6`: the IPv6 address of the primary network interface (EC2 User Guide,
    /// "Instance metadata categories"); empty when it has none (404).
    pub fn ipv6(&self, sleep: &Sleep<'_>) -> Result<String> {
        Ok(self
            .get("meta-data/ipv6", sleep)?
            .as_deref()
            .map(first_hostname)
            .unwrap_or_default())
    }

    /// This instance's Auto Scaling group, from the `aws:autoscaling:groupName` instance tag;
    /// `None` when instance metadata tags are off (the default), so the caller asks AutoScaling.
    pub fn autoscaling_group(&self, sleep: &Sleep<'_>) -> Result<Option<String>> {
        let name = self.get("meta-data/tags/instance/aws:autoscaling:groupName", sleep)?;
        Ok(name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()))
    }
}

/// The first name of `local-hostname`: with a DHCP option set naming several domains, IMDS
/// answers them all, space-separated (`ip-10-0-1-5.a.example ip-10-0-1-5.b.example`). Only
/// spaces separate: any other control character stays, so that a hostile name is refused
/// where it would reach the file, not quietly cut.
pub fn first_hostname(text: &str) -> String {
    text.trim()
        .split(' ')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Joins a scoped thread, passing its panic on (the release build aborts on panic anyway).
pub fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_document_fixture() {
        let body = std::fs::read_to_string("fixtures/imds/identity-document.json").unwrap();
        let (id, ip, region, az) = parse_identity_document(&body).unwrap();
        let ip = ip.unwrap_or_default();
        assert_eq!(
            (id.as_str(), ip.as_str(), region.as_str(), az.as_str()),
            (
                "i-0a1b2c3d4e5f60718",
                "10.0.1.15",
                "eu-west-1",
                "eu-west-1a"
            )
        );
    }

    #[test]
    fn ipv6_only_identity_document_has_no_private_ip() {
        for body in [
            r#"{"instanceId":"i-1","region":"r","availabilityZone":"a"}"#,
            r#"{"instanceId":"i-1","privateIp":null,"region":"r","availabilityZone":"a"}"#,
            r#"{"instanceId":"i-1","privateIp":"","region":"r","availabilityZone":"a"}"#,
        ] {
            let (_, ip, _, _) = parse_identity_document(body).unwrap();
            assert_eq!(ip, None, "failed testcase {body}");
        }
    }

    #[test]
    fn ipv6_only_and_warm_pool_fixtures() {
        // fixtures/imds/README.md and each document's _source name where the shapes come from.
        let body =
            std::fs::read_to_string("fixtures/imds/identity-document-ipv6-only.json").unwrap();
        let (id, ip, _, _) = parse_identity_document(&body).unwrap();
        assert_eq!((id.as_str(), ip), ("i-0e2f3a4b5c6d71829", None));
        let ipv6 = std::fs::read_to_string("fixtures/imds/ipv6.txt").unwrap();
        assert_eq!(first_hostname(&ipv6), "2a05:d018:1:2f01::16");
        let target =
            std::fs::read_to_string("fixtures/imds/target-lifecycle-state-warmed.txt").unwrap();
        assert!(crate::model::warmed(target.trim()), "{target}");
    }

    #[test]
    fn endpoint_modes() {
        let cases = [
            ("", Some("http://169.254.169.254")),
            ("IPv4", Some("http://169.254.169.254")),
            ("IPv6", Some("http://[fd00:ec2::254]")),
            ("ipv6", Some("http://[fd00:ec2::254]")),
            ("dualstack", None),
        ];
        for (mode, url) in cases {
            assert_eq!(endpoint_for_mode(mode), url, "failed testcase: {mode}");
        }
    }

    #[test]
    fn local_hostname_with_several_domains() {
        let cases = [
            ("ip-10-0-1-5.ec2.internal\n", "ip-10-0-1-5.ec2.internal"),
            (
                "ip-10-0-1-5.corp.example.com ip-10-0-1-5.lab.example.com",
                "ip-10-0-1-5.corp.example.com",
            ),
            ("", ""),
            ("a\nETCD_X=1 b", "a\nETCD_X=1"),
        ];
        for (text, name) in cases {
            assert_eq!(first_hostname(text), name, "failed testcase: {text:?}");
        }
    }

    #[test]
    fn identity_document_missing_fields_is_an_imds_error() {
        let cases = [
            (
                r#"{"privateIp":"10.0.0.1","region":"r","availabilityZone":"a"}"#,
                "instanceId",
            ),
            (
                r#"{"instanceId":"","privateIp":"10.0.0.1","region":"r","availabilityZone":"a"}"#,
                "instanceId",
            ),
        ];
        for (body, field) in cases {
            let e = parse_identity_document(body).unwrap_err();
            assert!(e.to_string().contains(field), "failed testcase {body}: {e}");
        }
        assert!(matches!(
            parse_identity_document("<html>"),
            Err(Error::Parse { .. })
        ));
        assert!(matches!(
            parse_identity_document(""),
            Err(Error::Parse { .. })
        ));
    }
}
