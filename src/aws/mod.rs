//! AWS over its Query API, without an SDK: credentials, SigV4 signing, one client that turns
//! form parameters into a signed POST and the answer into XML or an AWS error, and one
//! function per API call that turns wire structs into `model` types.

pub mod autoscaling;
pub mod credentials;
pub mod ec2;
pub mod query;
pub mod s3;
pub mod sign;

use crate::error::{Error, Result};
use crate::http::{body_snippet, Response};

/// A signed request's headers as `Http::send` takes them: `extra` (the request's own: the
/// Query API signs them, S3's conditions go unsigned), then the signature's own.
pub fn header_pairs<'a>(
    extra: &[(&'a str, &'a str)],
    signed: &'a [(String, String)],
) -> Vec<(&'a str, &'a str)> {
    let mut headers = extra.to_vec();
    headers.extend(signed.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    headers
}

/// What an AWS answer comes to, for both protocols: an error document inside any answer is
/// `Error::Aws` (a 200 can carry one: S3's CompleteMultipartUpload does), else a status
/// outside 2xx is `Error::Status`. `parse_error` reads the service's error shape.
pub fn answer(
    action: &str,
    what: &str,
    response: Response,
    parse_error: fn(&str) -> Option<(String, String)>,
) -> Result<Response> {
    if let Some((code, message)) = parse_error(&response.body) {
        return Err(Error::Aws {
            action: action.to_string(),
            code,
            message,
            status: response.status,
        });
    }
    if !response.is_success() {
        return Err(Error::Status {
            what: what.to_string(),
            status: response.status,
            body: body_snippet(&response),
        });
    }
    Ok(response)
}

/// An AWS partition: a set of regions that share a DNS suffix.
#[derive(Debug, PartialEq, Eq)]
pub struct Partition {
    pub id: &'static str,
    /// The first labels of its region names, as its `regionRegex` has them: a region is
    /// `<prefix>-<word>-<digits>`.
    prefixes: &'static [&'static str],
    pub dns_suffix: &'static str,
}

/// Every partition the SDKs know, from botocore's `botocore/data/partitions.json` (the same
/// data as aws-sdk-js-v3's `packages/util-endpoints/src/lib/aws/partitions.json`): its `id`,
/// its `regionRegex` (here the fixed prefix before `-\w+-\d+`) and `outputs.dnsSuffix`.
/// GovCloud shares the commercial suffix; the European sovereign cloud (`eusc-de-*`) has its
/// own, `amazonaws.eu`.
pub const PARTITIONS: &[Partition] = &[
    Partition {
        id: "aws",
        prefixes: &["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx"],
        dns_suffix: "amazonaws.com",
    },
    Partition {
        id: "aws-cn",
        prefixes: &["cn"],
        dns_suffix: "amazonaws.com.cn",
    },
    Partition {
        id: "aws-eusc",
        prefixes: &["eusc-de"],
        dns_suffix: "amazonaws.eu",
    },
    Partition {
        id: "aws-iso",
        prefixes: &["us-iso"],
        dns_suffix: "c2s.ic.gov",
    },
    Partition {
        id: "aws-iso-b",
        prefixes: &["us-isob"],
        dns_suffix: "sc2s.sgov.gov",
    },
    Partition {
        id: "aws-iso-e",
        prefixes: &["eu-isoe"],
        dns_suffix: "cloud.adc-e.uk",
    },
    Partition {
        id: "aws-iso-f",
        prefixes: &["us-isof"],
        dns_suffix: "csp.hci.ic.gov",
    },
    Partition {
        id: "aws-us-gov",
        prefixes: &["us-gov"],
        dns_suffix: "amazonaws.com",
    },
];

/// Whether `rest` is `<word>-<digits>` (`\w+-\d+`): one label of letters, digits or `_`,
/// then a number.
fn word_dash_number(rest: &str) -> bool {
    match rest.split_once('-') {
        Some((word, number)) => {
            !word.is_empty()
                && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !number.is_empty()
                && number.chars().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

/// The partition whose region pattern `region` matches; `None` for a region no SDK knows.
/// The patterns never overlap (`us-gov-west-1` is no `us-\w+-\d+`: `\w` has no dash).
pub fn partition(region: &str) -> Option<&'static Partition> {
    PARTITIONS.iter().find(|p| {
        p.prefixes.iter().any(|prefix| {
            region
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(word_dash_number)
        })
    })
}

/// `key` of `profile` in the shared config file's text (`[default]` or `[profile NAME]`; the
/// default profile may also be `[profile default]`), as the AWS CLI reads it: `key = value`,
/// whole-line `#` and `;` comments.
pub fn shared_config_value(text: &str, profile: &str, key: &str) -> Option<String> {
    let wanted = |section: &str| {
        let section = section.trim();
        section == format!("profile {profile}") || (profile == "default" && section == "default")
    };
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = wanted(section);
            continue;
        }
        if inside {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == key {
                    return Some(v.trim().to_string()).filter(|v| !v.is_empty());
                }
            }
        }
    }
    None
}

/// The regional endpoint of `service` (`autoscaling`, `ec2`), unless the operator gave one.
/// A region in no known partition gets the commercial suffix, as the SDKs guess; whether it
/// resolves is found out by the first call (see `query`).
pub fn endpoint(service: &str, region: &str, configured: Option<&str>) -> String {
    if let Some(url) = configured {
        return url.trim_end_matches('/').to_string();
    }
    let suffix = partition(region).map_or("amazonaws.com", |p| p.dns_suffix);
    format!("https://{service}.{region}.{suffix}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn shared_config_values_by_profile() {
        let text = "# the AWS CLI's file\n[default]\nregion = eu-west-1\nca_bundle = /etc/a.pem\n\n\
                    [profile ops]\n; a comment\nca_bundle=/etc/ops.pem\n[profile empty]\nca_bundle =\n";
        let cases = [
            ("default", Some("/etc/a.pem")),
            ("ops", Some("/etc/ops.pem")),
            ("empty", None),
            ("missing", None),
        ];
        for (profile, expected) in cases {
            assert_eq!(
                super::shared_config_value(text, profile, "ca_bundle").as_deref(),
                expected,
                "failed testcase: {profile}"
            );
        }
        assert_eq!(
            super::shared_config_value(
                "[profile default]\nca_bundle = /b\n",
                "default",
                "ca_bundle"
            )
            .as_deref(),
            Some("/b")
        );
    }

    #[test]
    fn every_partition_the_sdks_know() {
        let cases = [
            (
                "us-east-1",
                Some("aws"),
                "https://ec2.us-east-1.amazonaws.com",
            ),
            (
                "mx-central-1",
                Some("aws"),
                "https://ec2.mx-central-1.amazonaws.com",
            ),
            (
                "il-central-1",
                Some("aws"),
                "https://ec2.il-central-1.amazonaws.com",
            ),
            (
                "cn-northwest-1",
                Some("aws-cn"),
                "https://ec2.cn-northwest-1.amazonaws.com.cn",
            ),
            (
                "us-gov-west-1",
                Some("aws-us-gov"),
                "https://ec2.us-gov-west-1.amazonaws.com",
            ),
            (
                "us-iso-east-1",
                Some("aws-iso"),
                "https://ec2.us-iso-east-1.c2s.ic.gov",
            ),
            (
                "us-isob-east-1",
                Some("aws-iso-b"),
                "https://ec2.us-isob-east-1.sc2s.sgov.gov",
            ),
            (
                "eu-isoe-west-1",
                Some("aws-iso-e"),
                "https://ec2.eu-isoe-west-1.cloud.adc-e.uk",
            ),
            (
                "us-isof-south-1",
                Some("aws-iso-f"),
                "https://ec2.us-isof-south-1.csp.hci.ic.gov",
            ),
            (
                "eusc-de-east-1",
                Some("aws-eusc"),
                "https://ec2.eusc-de-east-1.amazonaws.eu",
            ),
            // No SDK knows these: the commercial suffix is a guess.
            ("xx-moon-1", None, "https://ec2.xx-moon-1.amazonaws.com"),
            ("us-east", None, "https://ec2.us-east.amazonaws.com"),
            (
                "eusc-fr-south-1",
                None,
                "https://ec2.eusc-fr-south-1.amazonaws.com",
            ),
        ];
        for (region, id, url) in cases {
            assert_eq!(
                super::partition(region).map(|p| p.id),
                id,
                "failed testcase: {region}"
            );
            assert_eq!(
                super::endpoint("ec2", region, None),
                url,
                "failed testcase: {region}"
            );
        }
    }

    #[test]
    fn endpoints() {
        let cases = [
            (
                "autoscaling",
                "eu-west-1",
                None,
                "https://autoscaling.eu-west-1.amazonaws.com",
            ),
            (
                "ec2",
                "cn-north-1",
                None,
                "https://ec2.cn-north-1.amazonaws.com.cn",
            ),
            (
                "ec2",
                "us-east-1",
                Some("http://127.0.0.1:5000/"),
                "http://127.0.0.1:5000",
            ),
        ];
        for (service, region, configured, url) in cases {
            assert_eq!(
                super::endpoint(service, region, configured),
                url,
                "failed testcase: {service} {region}"
            );
        }
    }
}
