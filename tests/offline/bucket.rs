//! A fake S3 bucket, "bucket" in us-east-1, for the offline tests: HeadBucket, ListObjectsV2,
//! GetObject with ETags and the user metadata `x-amz-meta-restores`, and PutObject checking
//! conditional writes as S3 does (rule 14's record in a bucket). Its refusal is the captured
//! fixture.

use std::sync::{Arc, Mutex};

use super::fake::FakeServer;

/// An object of the fake bucket: key, ETag, text, its `x-amz-meta-restores` metadata.
pub type Objects = Arc<Mutex<Vec<(String, String, String, Option<String>)>>>;

const RESTORES: &str = "x-amz-meta-restores";

/// A bucket (in us-east-1) that checks conditional writes as S3 does. `racer`: an object
/// another seed writes just before this run's first PutObject reaches the bucket.
pub fn start(ip: &str, objects: Objects, racer: Option<(String, String)>) -> FakeServer {
    let racer = Mutex::new(racer);
    let lost = include_str!("../../fixtures/aws/s3-error-precondition-failed.xml");
    let lost = lost.split_once("-->").unwrap().1.trim_start().to_string();
    let no_such_key =
        "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>";
    FakeServer::start_with_headers(ip, 0, move |r| {
        let (path, query) = r.path.split_once('?').unwrap_or((&r.path, ""));
        let key = path.strip_prefix("/bucket/").unwrap_or("").to_string();
        let mut objects = objects.lock().unwrap();
        let etag_of = |etag: &str| vec![("ETag".to_string(), etag.to_string())];
        match r.method.as_str() {
            "HEAD" => {
                let region = vec![("x-amz-bucket-region".into(), "us-east-1".into())];
                (200, region, String::new())
            }
            "GET" if query.starts_with("list-type=2") => {
                let keys: String = objects
                    .iter()
                    .map(|(k, ..)| format!("<Contents><Key>{k}</Key></Contents>"))
                    .collect();
                let list = format!(
                    "<ListBucketResult><IsTruncated>false</IsTruncated>{keys}</ListBucketResult>"
                );
                (200, vec![], list)
            }
            "GET" => match objects.iter().find(|(k, ..)| *k == key) {
                Some((_, etag, text, restores)) => {
                    let mut headers = etag_of(etag);
                    headers.extend(restores.clone().map(|r| (RESTORES.to_string(), r)));
                    (200, headers, text.clone())
                }
                None => (404, vec![], no_such_key.into()),
            },
            "PUT" => {
                if let Some((k, text)) = racer.lock().unwrap().take() {
                    objects.retain(|(o, ..)| *o != k);
                    objects.push((k, "\"racer\"".into(), text, None));
                }
                let found = objects.iter().position(|(k, ..)| *k == key);
                let held = found.map(|i| objects[i].1.clone());
                match (r.header("If-None-Match"), r.header("If-Match"), held) {
                    (Some("*"), _, Some(_)) => return (412, vec![], lost.clone()),
                    (_, Some(_), None) => return (404, vec![], no_such_key.into()),
                    (_, Some(wanted), Some(held)) if wanted != held => {
                        return (412, vec![], lost.clone())
                    }
                    _ => {}
                }
                let etag = format!("\"v{}\"", r.received.elapsed().as_nanos());
                objects.retain(|(k, ..)| *k != key);
                let restores = r.header(RESTORES).map(str::to_string);
                objects.push((key, etag.clone(), r.body.clone(), restores));
                (200, etag_of(&etag), String::new())
            }
            _ => (405, vec![], String::new()),
        }
    })
}
