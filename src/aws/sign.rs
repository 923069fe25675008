//! SigV4 for Query API and S3 REST requests, through aws-sigv4. The clock is a parameter so signatures
//! can be checked against a fixed vector.

use std::time::SystemTime;

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use super::credentials::Credentials;
use crate::error::{Error, Result};

/// The request parts that go into the signature.
pub struct Unsigned<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// Returns the headers to add (`authorization`, `x-amz-date`, and `x-amz-security-token`
/// when there is a session token; for `s3`, `x-amz-content-sha256` too).
pub fn sign_request(
    request: &Unsigned,
    credentials: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>> {
    let identity: Identity = aws_credential_types::Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.clone(),
        credentials.session_token.clone(),
        None,
        "etcd-discovery",
    )
    .into();
    let signing_error = |e: &dyn std::fmt::Display| Error::Transport {
        what: format!("signing a {service} request"),
        detail: e.to_string(),
        transient: false,
    };
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings(service))
        .build()
        .map_err(|e| signing_error(&e))?
        .into();
    let signable = SignableRequest::new(
        request.method,
        request.url,
        request.headers.iter().copied(),
        SignableBody::Bytes(request.body),
    )
    .map_err(|e| signing_error(&e))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| signing_error(&e))?
        .into_parts();
    let (headers, _query) = instructions.into_parts();
    Ok(headers
        .iter()
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect())
}

/// S3 signs its paths as sent (object keys are encoded once and never normalised: `a/../b`
/// is a key) and wants the payload's sha256 in `x-amz-content-sha256`, as the SDKs send it.
fn settings(service: &str) -> SigningSettings {
    let mut settings = SigningSettings::default();
    if service == "s3" {
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn credentials(token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: token.map(str::to_string),
        }
    }

    #[test]
    fn signature_has_the_right_scope_and_is_deterministic() {
        let body = b"Action=DescribeAutoScalingGroups&Version=2011-01-01";
        let request = Unsigned {
            method: "POST",
            url: "https://autoscaling.eu-west-1.amazonaws.com/",
            headers: &[(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            body,
        };
        // 2015-08-30T12:36:00Z
        let time = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        let a = sign_request(
            &request,
            &credentials(None),
            "eu-west-1",
            "autoscaling",
            time,
        )
        .unwrap();
        let b = sign_request(
            &request,
            &credentials(None),
            "eu-west-1",
            "autoscaling",
            time,
        )
        .unwrap();
        assert_eq!(a, b);
        let auth = &a.iter().find(|(n, _)| n == "authorization").unwrap().1;
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/autoscaling/aws4_request"), "{auth}");
        assert!(
            auth.contains("SignedHeaders=content-type;host;x-amz-date"),
            "{auth}"
        );
        assert!(a
            .iter()
            .any(|(n, v)| n == "x-amz-date" && v == "20150830T123600Z"));
        assert!(!a.iter().any(|(n, _)| n == "x-amz-security-token"));
        // A different body gives a different signature.
        let other = Unsigned {
            body: b"Action=DescribeInstances",
            ..request
        };
        let c = sign_request(&other, &credentials(None), "eu-west-1", "autoscaling", time).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn s3_requests_carry_the_payload_hash() {
        let request = Unsigned {
            method: "PUT",
            url: "http://127.0.0.1:5000/bucket/etcd/a%20b.db?partNumber=1&uploadId=x",
            headers: &[],
            body: b"",
        };
        let h = sign_request(
            &request,
            &credentials(None),
            "us-east-1",
            "s3",
            SystemTime::now(),
        )
        .unwrap();
        // sha256 of no bytes.
        assert!(h.iter().any(|(n, v)| n == "x-amz-content-sha256"
            && v == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        let auth = &h.iter().find(|(n, _)| n == "authorization").unwrap().1;
        assert!(auth.contains("/us-east-1/s3/aws4_request"), "{auth}");
        assert!(auth.contains("x-amz-content-sha256"), "{auth}");
    }

    #[test]
    fn session_token_is_sent() {
        let request = Unsigned {
            method: "POST",
            url: "https://ec2.us-east-1.amazonaws.com/",
            headers: &[],
            body: b"",
        };
        let h = sign_request(
            &request,
            &credentials(Some("TOKEN")),
            "us-east-1",
            "ec2",
            SystemTime::now(),
        )
        .unwrap();
        assert!(h
            .iter()
            .any(|(n, v)| n == "x-amz-security-token" && v == "TOKEN"));
    }
}
