//! S3 over its REST API, the few calls a snapshot needs: a multipart upload (create, parts,
//! complete, and abort on any failure, so no part is left behind and no cut stream becomes an
//! object), PutObject for its checksum, ListObjectsV2 and DeleteObject to keep the newest N.
//! Signed by `sign` (service `s3`, with `x-amz-content-sha256`), retried like `query`.

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::credentials::Provider;
use super::query::{paginate, parse_xml, percent_encode, root_element};
use super::sign::{sign_request, Unsigned};
use crate::error::{is_expired_credentials, snippet, Error, Result};
use crate::http::{retry, Http, Response, RetryPolicy, Sleep};

const RETRY: RetryPolicy = RetryPolicy {
    attempts: 5,
    base: Duration::from_millis(300),
    cap: Duration::from_secs(5),
};

/// S3's smallest part but the last. One part is held in memory at a time.
pub const PART_SIZE: usize = 5 * 1024 * 1024;

/// Where snapshots go: `s3://BUCKET/PREFIX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub bucket: String,
    /// Empty, or ends with `/`.
    pub prefix: String,
}

impl Location {
    /// Reads `s3://BUCKET[/PREFIX]`; the message says what is wrong.
    pub fn parse(url: &str) -> std::result::Result<Location, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{url:?} is not s3://BUCKET/PREFIX"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // S3's bucket naming rules: 3-63 of lowercase letters, digits, dots and dashes.
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !valid {
            return Err(format!("{url:?}: {bucket:?} is not an S3 bucket name"));
        }
        let prefix = prefix.trim_matches('/');
        Ok(Location {
            bucket: bucket.to_string(),
            prefix: match prefix {
                "" => String::new(),
                p => format!("{p}/"),
            },
        })
    }
}

/// The URL a bucket's objects are under. With an endpoint (`AWS_ENDPOINT_URL_S3`, or
/// `AWS_ENDPOINT_URL`) the bucket goes in the path, as the SDKs do for a custom endpoint;
/// else the regional virtual-hosted name, or the path style for a bucket with dots (its
/// name cannot match the wildcard certificate).
pub fn bucket_url(bucket: &str, region: &str, configured: Option<&str>) -> String {
    let suffix = super::partition(region).map_or("amazonaws.com", |p| p.dns_suffix);
    match configured {
        Some(url) => format!("{}/{bucket}", url.trim_end_matches('/')),
        None if bucket.contains('.') => format!("https://s3.{region}.{suffix}/{bucket}"),
        None => format!("https://{bucket}.s3.{region}.{suffix}"),
    }
}

/// A region name as it may go in a host name and a signature.
fn valid_region(region: &str) -> bool {
    !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A key in a URL path: each segment encoded, the slashes kept.
fn key_path(key: &str) -> String {
    key.split('/')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("/")
}

/// A small object as read, with the ETag a conditional write names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub text: String,
    pub etag: String,
    /// Its user metadata `restores` (`RESTORES`), when it has one.
    pub restores: Option<String>,
}

/// The user metadata with which rule 14's record in a bucket says what its bootstrap
/// restored (`snapshot::restores_value`); an older version's record has none.
pub const RESTORES: &str = "x-amz-meta-restores";

/// One bucket, ready to call.
pub struct S3<'a> {
    pub http: &'a Http,
    /// From `bucket_url`.
    pub bucket_url: String,
    pub region: String,
    pub credentials: &'a Provider<'a>,
    pub sleep: &'a Sleep<'a>,
    pub clock: fn() -> SystemTime,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(rename = "Code", default)]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

/// S3's `<Error><Code>..</Code><Message>..</Message></Error>`; `None` when the body is not one.
fn parse_error(body: &str) -> Option<(String, String)> {
    if root_element(body) != Some("Error") {
        return None;
    }
    let error: ErrorBody = quick_xml::de::from_str(body).ok()?;
    (!error.code.is_empty()).then(|| (error.code, snippet(&error.message)))
}

#[derive(Deserialize)]
struct InitiateMultipartUploadResult {
    #[serde(rename = "UploadId")]
    upload_id: String,
}

#[derive(Deserialize)]
struct ListBucketResult {
    #[serde(rename = "Contents", default)]
    contents: Vec<Contents>,
    #[serde(rename = "NextContinuationToken", default)]
    next: Option<String>,
}

#[derive(Deserialize)]
struct Contents {
    #[serde(rename = "Key")]
    key: String,
}

/// Escapes text for an XML element.
fn xml_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl S3<'_> {
    /// One call; `query` is empty or starts with `?`. When AWS says the temporary credentials
    /// expired, fetches fresh ones and tries once more.
    fn call(
        &self,
        action: &str,
        method: &str,
        key: &str,
        query: &str,
        body: &[u8],
    ) -> Result<Response> {
        self.call_with(action, (method, key, query), &[], body)
    }

    /// `call` with headers of its own: `x-amz-*` ones (user metadata) are signed, as S3
    /// refuses them otherwise; the others (conditions) need not be.
    fn call_with(
        &self,
        action: &str,
        request: (&str, &str, &str),
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response> {
        match self.call_once(action, request, extra, body) {
            Err(Error::Aws { code, .. })
                if is_expired_credentials(&code) && self.credentials.refresh()? =>
            {
                log::info!("S3 {action}: {code}: signing again with fresh credentials");
                self.call_once(action, request, extra, body)
            }
            result => result,
        }
    }

    fn call_once(
        &self,
        action: &str,
        (method, key, query): (&str, &str, &str),
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response> {
        let url = format!("{}/{}{query}", self.bucket_url, key_path(key));
        let what = format!("S3 {action} at {}", self.bucket_url);
        let amz: Vec<_> = extra
            .iter()
            .copied()
            .filter(|(name, _)| name.starts_with("x-amz-"))
            .collect();
        let mut tries = 0;
        retry(RETRY, self.sleep, Error::is_transient, || {
            if tries > 0 {
                self.http.note_retry();
            }
            tries += 1;
            let signed = self.sign(method, &url, &amz, body)?;
            log::debug!("S3 {action} {key}");
            let response = self.http.send_slice(
                &what,
                method,
                &url,
                &super::header_pairs(extra, &signed),
                body,
            )?;
            super::answer(action, &what, response, parse_error)
        })
    }

    /// The signature's headers for one request.
    fn sign(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Vec<(String, String)>> {
        let unsigned = Unsigned {
            method,
            url,
            headers,
            body,
        };
        sign_request(
            &unsigned,
            &self.credentials.current(),
            &self.region,
            "s3",
            (self.clock)(),
        )
    }

    /// The same bucket, signed for the region S3 says it is in. A bucket lives in one region;
    /// a request signed for another is refused (a redirect, or a 400), and every answer to
    /// HeadBucket names the bucket's region in `x-amz-bucket-region`, whatever its status, as
    /// the SDKs read it. Without an endpoint the URL follows the region too.
    pub fn in_bucket_region(self, bucket: &str, configured: Option<&str>) -> Result<Self> {
        let url = format!("{}/", self.bucket_url);
        let what = format!("S3 HeadBucket at {}", self.bucket_url);
        let signed = self.sign("HEAD", &url, &[], b"")?;
        let headers = super::header_pairs(&[], &signed);
        let response = retry(RETRY, self.sleep, Error::is_transient, || {
            let response = self.http.send_slice(&what, "HEAD", &url, &headers, b"")?;
            match response.status {
                500.. => Err(Error::Status {
                    what: what.clone(),
                    status: response.status,
                    body: String::new(),
                }),
                _ => Ok(response),
            }
        })?;
        match response.header("x-amz-bucket-region") {
            Some(region) if region != self.region && valid_region(region) => {
                log::info!(
                    "bucket {bucket} is in {region}, not {}: asking there",
                    self.region
                );
                Ok(S3 {
                    bucket_url: bucket_url(bucket, region, configured),
                    region: region.to_string(),
                    ..self
                })
            }
            _ => Ok(self),
        }
    }

    /// Uploads what `fill` writes as one object `key`, in parts of `PART_SIZE`: only when
    /// `fill` succeeds is the upload completed; on any failure it is aborted.
    pub fn put_stream<T>(
        &self,
        key: &str,
        fill: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<T>,
    ) -> Result<T> {
        let mut upload = Upload::start(self, key)?;
        let result = fill(&mut |bytes| upload.write(bytes));
        let result = result.and_then(|t| upload.complete().map(|()| t));
        if result.is_err() {
            upload.abort();
        }
        result
    }

    /// PutObject: a small object in one request.
    pub fn put(&self, key: &str, body: &[u8]) -> Result<()> {
        self.call("PutObject", "PUT", key, "", body).map(|_| ())
    }

    /// ListObjectsV2: every key under `prefix`, in S3's order (UTF-8 binary).
    pub fn list(&self, prefix: &str) -> Result<Vec<String>> {
        paginate("ListObjectsV2", |token| {
            let mut query = format!("?list-type=2&prefix={}", percent_encode(prefix));
            if let Some(token) = token {
                query.push_str(&format!("&continuation-token={}", percent_encode(token)));
            }
            let response = self.call("ListObjectsV2", "GET", "", &query, b"")?;
            let page: ListBucketResult = parse_xml("ListObjectsV2", &response.body)?;
            Ok((
                page.contents.into_iter().map(|c| c.key).collect(),
                page.next,
            ))
        })
    }

    /// GetObject of a small object (a checksum), as text.
    pub fn get_text(&self, key: &str) -> Result<String> {
        self.call("GetObject", "GET", key, "", b"").map(|r| r.body)
    }

    /// GetObject of a large object: `read` is handed the body as it arrives (and again, from
    /// the start, when a try fails in a way worth another: it must start over each time).
    /// The error of an answer that is not 2xx is read as S3's, as for every other call.
    pub fn get_to<T>(
        &self,
        key: &str,
        mut read: impl FnMut(&mut dyn std::io::Read) -> Result<T>,
    ) -> Result<T> {
        let url = format!("{}/{}", self.bucket_url, key_path(key));
        let what = format!("S3 GetObject at {}", self.bucket_url);
        let mut tries = 0;
        retry(RETRY, self.sleep, Error::is_transient, || {
            if tries > 0 {
                self.http.note_retry();
            }
            tries += 1;
            let signed = self.sign("GET", &url, &[], b"")?;
            log::debug!("S3 GetObject {key}");
            let (status, mut body) =
                self.http
                    .open(&what, "GET", &url, &super::header_pairs(&[], &signed), b"")?;
            if (200..300).contains(&status) {
                return read(&mut body);
            }
            // An error document is small; read no more than a page of it.
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(
                &mut std::io::Read::take(&mut body, 64 * 1024),
                &mut text,
            );
            let response = Response {
                status,
                body: text,
                headers: Vec::new(),
            };
            Err(
                match super::answer("GetObject", &what, response, parse_error) {
                    Err(e) => e,
                    // Not reached: `answer` fails every status outside 2xx.
                    Ok(r) => Error::Status {
                        what: what.clone(),
                        status: r.status,
                        body: String::new(),
                    },
                },
            )
        })
    }

    /// GetObject of a small object, with its ETag; `None` when there is no such key.
    pub fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        match self.call("GetObject", "GET", key, "", b"") {
            Ok(response) => Ok(Some(Versioned {
                etag: response.header("etag").unwrap_or_default().to_string(),
                restores: response.header(RESTORES).map(str::to_string),
                text: response.body,
            })),
            Err(Error::Aws { code, .. }) if code == "NoSuchKey" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// PutObject only if `key` is still as it was read (`seen`: `None` when it was absent),
    /// as S3's conditional writes check it (`If-None-Match: *`, `If-Match: ETAG`): `false`
    /// when another writer came first. `restores`: the object's `RESTORES` metadata.
    pub fn put_if_unchanged(
        &self,
        key: &str,
        body: &[u8],
        seen: Option<&str>,
        restores: Option<&str>,
    ) -> Result<bool> {
        let condition = match seen {
            None => ("If-None-Match", "*"),
            Some(etag) => ("If-Match", etag),
        };
        let mut headers = vec![condition];
        headers.extend(restores.map(|value| (RESTORES, value)));
        match self.call_with("PutObject", ("PUT", key, ""), &headers, body) {
            Ok(_) => Ok(true),
            // 409: another conditional write to the key was under way at the same moment.
            Err(Error::Aws { code, .. })
                if code == "PreconditionFailed" || code == "ConditionalRequestConflict" =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// DeleteObject.
    pub fn delete(&self, key: &str) -> Result<()> {
        self.call("DeleteObject", "DELETE", key, "", b"")
            .map(|_| ())
    }
}

/// A multipart upload under way: the part being filled and the ETags of those sent.
struct Upload<'s, 'a> {
    s3: &'s S3<'a>,
    key: String,
    id: String,
    parts: Vec<String>,
    buffer: Vec<u8>,
}

impl<'s, 'a> Upload<'s, 'a> {
    fn start(s3: &'s S3<'a>, key: &str) -> Result<Upload<'s, 'a>> {
        let response = s3.call("CreateMultipartUpload", "POST", key, "?uploads", b"")?;
        let created: InitiateMultipartUploadResult =
            parse_xml("CreateMultipartUpload", &response.body)?;
        Ok(Upload {
            s3,
            key: key.to_string(),
            id: created.upload_id,
            parts: Vec::new(),
            // A message of the stream may pass the mark a little: room for it.
            buffer: Vec::with_capacity(PART_SIZE + 64 * 1024),
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= PART_SIZE {
            self.send_part()?;
        }
        Ok(())
    }

    fn send_part(&mut self) -> Result<()> {
        let number = self.parts.len() + 1;
        let query = format!("?partNumber={number}&uploadId={}", percent_encode(&self.id));
        let response = self
            .s3
            .call("UploadPart", "PUT", &self.key, &query, &self.buffer)?;
        let etag = response.header("etag").map(str::to_string);
        let etag = etag.ok_or_else(|| Error::Parse {
            what: "S3 UploadPart".into(),
            detail: format!("part {number} came back without an ETag"),
        })?;
        log::debug!(
            "S3 part {number} of {}: {} bytes",
            self.key,
            self.buffer.len()
        );
        self.parts.push(etag);
        self.buffer.clear();
        Ok(())
    }

    fn complete(&mut self) -> Result<()> {
        if !self.buffer.is_empty() || self.parts.is_empty() {
            self.send_part()?;
        }
        let mut body = String::from(
            "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
        );
        for (i, etag) in self.parts.iter().enumerate() {
            body.push_str(&format!(
                "<Part><ETag>{}</ETag><PartNumber>{}</PartNumber></Part>",
                xml_text(etag),
                i + 1
            ));
        }
        body.push_str("</CompleteMultipartUpload>");
        let query = format!("?uploadId={}", percent_encode(&self.id));
        self.s3
            .call(
                "CompleteMultipartUpload",
                "POST",
                &self.key,
                &query,
                body.as_bytes(),
            )
            .map(|_| ())
    }

    /// Best effort: the error that got us here is the one to report.
    fn abort(&self) {
        let query = format!("?uploadId={}", percent_encode(&self.id));
        match self
            .s3
            .call("AbortMultipartUpload", "DELETE", &self.key, &query, b"")
        {
            Ok(_) => log::info!("aborted the upload of {}: no part is left", self.key),
            Err(e) => log::warn!(
                "could not abort the upload of {} ({e}); a lifecycle rule \
                 (AbortIncompleteMultipartUpload) removes its parts",
                self.key
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let cases = [
            ("s3://my-bucket", Some(("my-bucket", ""))),
            ("s3://my-bucket/", Some(("my-bucket", ""))),
            (
                "s3://my-bucket/etcd/prod",
                Some(("my-bucket", "etcd/prod/")),
            ),
            (
                "s3://my-bucket/etcd/prod/",
                Some(("my-bucket", "etcd/prod/")),
            ),
            ("s3://My_Bucket/x", None),
            ("s3://ab", None),
            ("https://my-bucket/x", None),
            ("my-bucket", None),
        ];
        for (url, expected) in cases {
            let got = Location::parse(url).ok();
            assert_eq!(
                got.as_ref().map(|l| (l.bucket.as_str(), l.prefix.as_str())),
                expected,
                "failed testcase: {url}"
            );
        }
    }

    #[test]
    fn bucket_urls() {
        let cases = [
            (
                "b-1",
                "eu-west-1",
                None,
                "https://b-1.s3.eu-west-1.amazonaws.com",
            ),
            (
                "b-1",
                "cn-north-1",
                None,
                "https://b-1.s3.cn-north-1.amazonaws.com.cn",
            ),
            (
                "a.b",
                "us-east-1",
                None,
                "https://s3.us-east-1.amazonaws.com/a.b",
            ),
            (
                "b-1",
                "us-east-1",
                Some("http://127.0.0.1:5000/"),
                "http://127.0.0.1:5000/b-1",
            ),
        ];
        for (bucket, region, configured, url) in cases {
            assert_eq!(
                bucket_url(bucket, region, configured),
                url,
                "failed testcase: {bucket} {region}"
            );
        }
    }

    #[test]
    fn keys_keep_their_slashes() {
        assert_eq!(key_path("etcd/a b+c.db"), "etcd/a%20b%2Bc.db");
        assert_eq!(key_path(""), "");
    }

    #[test]
    fn s3_error_documents() {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchBucket</Code>\
                    <Message>The specified bucket does not exist</Message><BucketName>b</BucketName></Error>";
        assert_eq!(
            parse_error(body),
            Some((
                "NoSuchBucket".into(),
                "The specified bucket does not exist".into()
            ))
        );
        // A conditional write that lost (rule 14): `put_if_unchanged` reads its code.
        let lost = include_str!("../../fixtures/aws/s3-error-precondition-failed.xml");
        let lost = lost
            .split_once("-->")
            .map_or(lost, |(_, xml)| xml.trim_start());
        assert_eq!(
            parse_error(lost),
            Some((
                "PreconditionFailed".into(),
                "At least one of the pre-conditions you specified did not hold".into()
            ))
        );
        assert_eq!(parse_error("<ListBucketResult/>"), None);
        assert_eq!(parse_error(""), None);
    }
}
