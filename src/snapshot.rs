//! etcd's snapshot as the v3 gateway streams it: `POST /v3/maintenance/snapshot` answers a
//! sequence of JSON objects, `{"result":{"remaining_bytes":"..","blob":"<base64>"}}`, or an
//! `{"error":{...}}` object when etcd fails (before or after the stream started). The last
//! message's blob is the sha256 of the database sent before it (etcd 3.4 and 3.5; see
//! fixtures/etcd/README.md), so a stream is whole only when that hash matches.
//!
//! Memory stays bounded whatever the database size: one message at a time (etcd sends 32 KiB
//! chunks; a message above `MAX_MESSAGE` is refused), decoded as it comes. No network here:
//! the reader is a parameter, so tests feed it split, cut and broken streams.

use std::io::Read;

use ring::digest::{Context, SHA256};
use serde::Deserialize;

use crate::error::{snippet, Error, Result};
use crate::model::Restores;

/// etcd sends 32 KiB of database per message (44 KiB of base64); anything far larger is not
/// its stream, and must not grow our memory.
const MAX_MESSAGE: usize = 1024 * 1024;

/// How much is read from the socket at a time.
const READ_SIZE: usize = 16 * 1024;

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    result: Option<Chunk>,
    #[serde(default)]
    error: Option<Failure>,
}

/// The gateway's `{"error":{"grpc_code":..,"http_code":..,"message":..,"http_status":..}}`.
#[derive(Deserialize)]
struct Failure {
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct Chunk {
    /// proto3 JSON: a string, left out when 0.
    #[serde(default)]
    remaining_bytes: Option<String>,
    #[serde(default)]
    blob: String,
}

/// One decoded message: its bytes and what etcd says is left after them.
#[derive(Debug, PartialEq, Eq)]
pub struct Piece {
    pub bytes: Vec<u8>,
    pub remaining: u64,
}

/// Splits a byte stream into JSON objects (by brace depth, strings and escapes minded) and
/// decodes each.
pub struct Stream<R> {
    inner: R,
    /// Bytes read and not yet consumed; never more than one message plus one read.
    pending: Vec<u8>,
    scan: Scan,
    eof: bool,
}

fn broken(detail: impl Into<String>) -> Error {
    Error::Etcd {
        what: "snapshot".into(),
        detail: detail.into(),
        transient: true,
    }
}

/// Where a scan for the end of a JSON object stands, so that each byte is looked at once
/// however the stream is split into reads.
#[derive(Default)]
struct Scan {
    /// Bytes of the current object looked at so far.
    seen: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl Scan {
    /// The end of the object in `bytes` (which starts with `{` and grows between calls), once
    /// it is there.
    fn object_end(&mut self, bytes: &[u8]) -> Option<usize> {
        for (i, &b) in bytes.iter().enumerate().skip(self.seen) {
            self.seen = i + 1;
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' => self.depth += 1,
                b'}' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
        }
        None
    }
}

impl<R: Read> Stream<R> {
    pub fn new(inner: R) -> Stream<R> {
        Stream {
            inner,
            pending: Vec::with_capacity(2 * READ_SIZE),
            scan: Scan::default(),
            eof: false,
        }
    }

    /// The next message; `None` at a clean end of the stream.
    pub fn next_piece(&mut self) -> Result<Option<Piece>> {
        loop {
            let start = self.pending.iter().position(|b| !b.is_ascii_whitespace());
            match start {
                Some(s) if self.pending[s] != b'{' => {
                    return Err(broken(format!(
                        "the stream is not JSON objects: {}",
                        snippet(&String::from_utf8_lossy(&self.pending[s..]))
                    )))
                }
                Some(s) => {
                    if let Some(end) = self.scan.object_end(&self.pending[s..]) {
                        let piece = parse_message(&self.pending[s..s + end])?;
                        self.pending.drain(..s + end);
                        self.scan = Scan::default();
                        return Ok(Some(piece));
                    }
                    if self.pending.len() - s > MAX_MESSAGE {
                        return Err(broken(format!(
                            "a message is larger than {MAX_MESSAGE} bytes"
                        )));
                    }
                }
                // Whitespace between messages: nothing of the next one was scanned yet.
                None => self.pending.clear(),
            }
            if self.eof {
                return match self.pending.is_empty() {
                    true => Ok(None),
                    false => Err(broken("the stream ends in the middle of a message")),
                };
            }
            let len = self.pending.len();
            self.pending.resize(len + READ_SIZE, 0);
            let read = loop {
                match self.inner.read(&mut self.pending[len..]) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            let read = read.map_err(|e| {
                self.pending.truncate(len);
                broken(format!("reading the stream failed: {e}"))
            })?;
            self.pending.truncate(len + read);
            self.eof = read == 0;
        }
    }
}

fn parse_message(raw: &[u8]) -> Result<Piece> {
    // from_str, as etcd.rs reads every other answer: from_slice would link a second copy of
    // serde_json's parser.
    let text = std::str::from_utf8(raw).map_err(|_| broken("a message is not UTF-8"))?;
    let message: Message =
        serde_json::from_str(text).map_err(|e| broken(format!("a message is not etcd's: {e}")))?;
    if let Some(error) = message.error {
        return Err(broken(format!(
            "etcd failed the snapshot: {}",
            snippet(&error.message)
        )));
    }
    let chunk = message
        .result
        .ok_or_else(|| broken("a message has neither result nor error"))?;
    let remaining = match chunk.remaining_bytes.as_deref() {
        None | Some("") => 0,
        Some(n) => n
            .parse()
            .map_err(|_| broken(format!("remaining_bytes is not a number: {}", snippet(n))))?,
    };
    let bytes = base64_simd::STANDARD
        .decode_to_vec(chunk.blob.as_bytes())
        .map_err(|_| broken("a blob is not base64"))?;
    Ok(Piece { bytes, remaining })
}

/// What a whole stream came to.
#[derive(Debug, PartialEq, Eq)]
pub struct Copied {
    /// The bytes handed on: the database and etcd's trailing sha256 (what `etcdctl snapshot
    /// restore` reads).
    pub size: u64,
    /// sha256 of those bytes, lowercase hex.
    pub sha256: String,
}

/// Hands every byte of the stream to `sink`, in order, and returns its size and sha256 once
/// the stream proved whole: it ended cleanly, the last database chunk said nothing remained,
/// and etcd's trailing hash matches the database. On any error the caller must discard what
/// `sink` got. Only the last message is held back (it may be the hash).
pub fn copy(
    stream: &mut Stream<impl Read>,
    mut sink: impl FnMut(&[u8]) -> Result<()>,
) -> Result<Copied> {
    let mut database = Context::new(&SHA256);
    let mut whole = Context::new(&SHA256);
    let mut size = 0u64;
    // The message before the current one, and whether the one before it had nothing left.
    let mut held: Option<Piece> = None;
    while let Some(piece) = stream.next_piece()? {
        if let Some(previous) = held.take() {
            database.update(&previous.bytes);
            whole.update(&previous.bytes);
            size += previous.bytes.len() as u64;
            sink(&previous.bytes)?;
        }
        held = Some(piece);
    }
    let hash = held.ok_or_else(|| broken("the stream is empty"))?;
    if hash.bytes.len() != 32 || size == 0 {
        return Err(broken("the stream ends before etcd's checksum"));
    }
    if database.finish().as_ref() != hash.bytes.as_slice() {
        return Err(broken(
            "etcd's checksum does not match the database streamed: the stream was cut or damaged",
        ));
    }
    whole.update(&hash.bytes);
    size += 32;
    sink(&hash.bytes)?;
    Ok(Copied {
        size,
        sha256: hex(whole.finish().as_ref()),
    })
}

/// What every snapshot's name starts with, after the prefix.
const NAME_START: &str = "etcd-snapshot-";

/// `PREFIX/etcd-snapshot-20261128T110203Z-r1234.db`: the time first, fixed width, so the
/// names sort by time; then the store's revision when the snapshot began.
pub fn object_name(prefix: &str, time: std::time::SystemTime, revision: u64) -> String {
    format!(
        "{prefix}{NAME_START}{}-r{revision}.db",
        crate::datadir::utc_stamp(time)
    )
}

/// `PREFIX/etcd-discovery-bootstrap`: the bootstrap record beside the snapshots (rule 14).
pub fn record_name(prefix: &str) -> String {
    format!("{prefix}etcd-discovery-bootstrap")
}

/// The record's `restores` metadata (`aws::s3::RESTORES`): the key of the snapshot its
/// bootstrap restored, or `none` when the bucket held none (our keys end in `.db`).
pub fn restores_value(restores: &Restores) -> &str {
    match restores {
        Restores::Nothing => "none",
        Restores::Snapshot(key) => key,
    }
}

/// Reads `restores_value`'s text; `None` for an empty one.
pub fn parse_restores(value: &str) -> Option<Restores> {
    match value.trim() {
        "" => None,
        "none" => Some(Restores::Nothing),
        key => Some(Restores::Snapshot(key.to_string())),
    }
}

/// The name of the object holding `key`'s sha256, in `sha256sum` format.
pub fn checksum_name(key: &str) -> String {
    format!("{key}.sha256")
}

/// The checksum object's text: `sha256sum -c` reads it beside the downloaded snapshot.
pub fn checksum_text(sha256: &str, key: &str) -> String {
    let file = key.rsplit('/').next().unwrap_or(key);
    format!("{sha256}  {file}\n")
}

/// Whether `key` is one of our snapshots directly under `prefix` (not another name, not a
/// deeper folder).
fn is_ours(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix).is_some_and(|name| {
        name.starts_with(NAME_START) && name.ends_with(".db") && !name.contains('/')
    })
}

/// The snapshot to restore: the newest of ours under `prefix` whose checksum object is there.
/// One without it never finished (its upload completed, the checksum's put failed): it is
/// skipped, not refused. A pure function of the listing, so every node that lists the same
/// keys chooses the same object.
pub fn newest_complete<'k>(keys: &'k [String], prefix: &str) -> Option<&'k str> {
    keys.iter()
        .filter(|k| is_ours(k, prefix) && is_complete(keys, k))
        .max()
        .map(String::as_str)
}

/// Whether the listing holds `key` and its checksum object: an upload that finished.
pub fn is_complete(keys: &[String], key: &str) -> bool {
    keys.iter().any(|k| k == key) && keys.contains(&checksum_name(key))
}

/// Reads a checksum object (`sha256sum` format: the hex, two spaces, the file name): the
/// sha256 in lowercase hex, or `None` when the text is not one.
pub fn parse_checksum(text: &str) -> Option<String> {
    let hash = text.split_whitespace().next()?;
    (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hash.to_ascii_lowercase())
}

/// The objects to delete so that `keep` snapshots are left under `prefix`: the oldest
/// snapshots beyond `keep`, each with its checksum. Keys that are not ours (another name,
/// a deeper folder) are never touched.
pub fn to_delete(keys: &[String], prefix: &str, keep: usize) -> Vec<String> {
    let mut ours: Vec<&String> = keys.iter().filter(|k| is_ours(k, prefix)).collect();
    ours.sort();
    let old = ours.len().saturating_sub(keep);
    ours[..old]
        .iter()
        .flat_map(|k| {
            let checksum = checksum_name(k);
            let has_checksum = keys.contains(&checksum);
            std::iter::once(k.to_string()).chain(has_checksum.then_some(checksum))
        })
        .collect()
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Vec<u8> {
        std::fs::read("fixtures/etcd/v3.5-snapshot-stream.json").unwrap()
    }

    /// Hands out at most `step` bytes per read, so messages split anywhere.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn copy_all(data: Vec<u8>, step: usize) -> Result<(Copied, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stream = Stream::new(Trickle { data, at: 0, step });
        let copied = copy(&mut stream, |b| {
            out.extend_from_slice(b);
            Ok(())
        })?;
        Ok((copied, out))
    }

    #[test]
    fn fixture_stream_is_whole_and_its_checksum_matches() {
        let (copied, out) = copy_all(fixture(), usize::MAX).unwrap();
        assert_eq!(copied.size, out.len() as u64);
        let (db, hash) = out.split_at(out.len() - 32);
        assert_eq!(ring::digest::digest(&SHA256, db).as_ref(), hash);
        assert_eq!(
            copied.sha256,
            hex(ring::digest::digest(&SHA256, &out).as_ref())
        );
    }

    #[test]
    fn messages_split_across_reads_give_the_same_bytes() {
        let (whole, out) = copy_all(fixture(), usize::MAX).unwrap();
        for step in [1, 2, 3, 7, 100, 4095, 16 * 1024 + 1] {
            let (copied, bytes) = copy_all(fixture(), step).unwrap();
            assert_eq!(copied, whole, "failed testcase: step {step}");
            assert_eq!(bytes, out, "failed testcase: step {step}");
        }
    }

    #[test]
    fn remaining_bytes_is_read() {
        let data = fixture();
        let mut stream = Stream::new(&data[..]);
        let first = stream.next_piece().unwrap().unwrap();
        assert_eq!(first.remaining, 4096);
        assert_eq!(stream.next_piece().unwrap().unwrap().remaining, 0);
    }

    #[test]
    fn a_truncated_stream_is_refused_wherever_it_is_cut() {
        let data = fixture();
        let ends: Vec<usize> = data
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i + 1)
            .collect();
        // Cut inside a message, and cut cleanly after each whole message but the last.
        let mut cuts = vec![0, 10, data.len() / 2, data.len() - 5];
        cuts.extend(&ends[..ends.len() - 1]);
        for cut in cuts {
            let result = copy_all(data[..cut].to_vec(), 1000);
            assert!(
                matches!(result, Err(Error::Etcd { .. })),
                "failed testcase: cut at {cut}"
            );
        }
    }

    #[test]
    fn an_error_mid_stream_stops_the_copy() {
        let data = fixture();
        let first_end = data.iter().position(|b| *b == b'\n').unwrap() + 1;
        let mut broken = data[..first_end].to_vec();
        broken.extend(std::fs::read("fixtures/etcd/v3.4-snapshot-auth-error.json").unwrap());
        broken.extend(&data[first_end..]);
        let err = copy_all(broken, 500).unwrap_err();
        assert!(
            err.to_string().contains("auth: user name is empty"),
            "{err}"
        );
    }

    #[test]
    fn damaged_streams_are_refused() {
        let data = fixture();
        let text = String::from_utf8(data.clone()).unwrap();
        // A changed byte of the database: etcd's checksum no longer matches.
        let flipped = text.replacen("eHh4", "eHh5", 1);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("checksum mismatch", flipped.into_bytes()),
            ("not json", b"<html>502</html>".to_vec()),
            ("not base64", br#"{"result":{"blob":"!!!"}}"#.to_vec()),
            ("empty", Vec::new()),
            ("neither", br#"{"x":1}"#.to_vec()),
            (
                "huge",
                format!("{{\"result\":{{\"blob\":\"{}", "A".repeat(MAX_MESSAGE + 10)).into_bytes(),
            ),
        ];
        for (name, data) in cases {
            assert!(copy_all(data, 4096).is_err(), "failed testcase: {name}");
        }
    }

    #[test]
    fn names_sort_by_time_and_carry_the_revision() {
        use std::time::{Duration, UNIX_EPOCH};
        let at = |secs| UNIX_EPOCH + Duration::from_secs(secs);
        let a = object_name("etcd/prod/", at(1_764_327_723), 99_999);
        assert_eq!(a, "etcd/prod/etcd-snapshot-20251128T110203Z-r99999.db");
        // A later snapshot with a smaller revision (a restored cluster) still sorts after.
        let b = object_name("etcd/prod/", at(1_764_327_724), 5);
        assert!(a < b);
        assert_eq!(
            object_name("", at(0), 1),
            "etcd-snapshot-19700101T000000Z-r1.db"
        );
        assert_eq!(
            checksum_text("ab12", &a),
            "ab12  etcd-snapshot-20251128T110203Z-r99999.db\n"
        );
    }

    #[test]
    fn the_oldest_beyond_keep_are_deleted_with_their_checksums() {
        let keys: Vec<String> = [
            "p/etcd-snapshot-20250101T000000Z-r3.db",
            "p/etcd-snapshot-20250101T000000Z-r3.db.sha256",
            "p/etcd-snapshot-20240101T000000Z-r9.db",
            "p/etcd-snapshot-20240101T000000Z-r9.db.sha256",
            "p/etcd-snapshot-20260101T000000Z-r1.db",
            "p/etcd-snapshot-20260101T000000Z-r1.db.sha256",
            "p/other.db",
            "p/etcd-discovery-bootstrap",
            "p/deeper/etcd-snapshot-20200101T000000Z-r1.db",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            to_delete(&keys, "p/", 1),
            vec![
                "p/etcd-snapshot-20240101T000000Z-r9.db",
                "p/etcd-snapshot-20240101T000000Z-r9.db.sha256",
                "p/etcd-snapshot-20250101T000000Z-r3.db",
                "p/etcd-snapshot-20250101T000000Z-r3.db.sha256",
            ]
        );
        assert!(to_delete(&keys, "p/", 3).is_empty());
        assert!(to_delete(&keys, "p/", 24).is_empty());
    }

    #[test]
    fn the_newest_complete_snapshot_is_chosen() {
        let keys =
            |names: &[&str]| -> Vec<String> { names.iter().map(|s| s.to_string()).collect() };
        let a = "p/etcd-snapshot-20250101T000000Z-r3.db";
        let b = "p/etcd-snapshot-20260101T000000Z-r1.db";
        let a_sum = "p/etcd-snapshot-20250101T000000Z-r3.db.sha256";
        let b_sum = "p/etcd-snapshot-20260101T000000Z-r1.db.sha256";
        let cases: Vec<(&str, Vec<String>, Option<&str>)> = vec![
            (
                "the newest by time, not revision",
                keys(&[b, b_sum, a, a_sum]),
                Some(b),
            ),
            (
                "the newest has no checksum: skipped",
                keys(&[a, a_sum, b]),
                Some(a),
            ),
            (
                "a checksum alone is no snapshot",
                keys(&[a_sum, b_sum]),
                None,
            ),
            ("nothing", keys(&[]), None),
            (
                "the bootstrap record is no snapshot",
                keys(&[&record_name("p/"), a, a_sum]),
                Some(a),
            ),
            (
                "other names and deeper folders are not ours",
                keys(&[
                    "p/other.db",
                    "p/other.db.sha256",
                    "p/deeper/etcd-snapshot-20990101T000000Z-r1.db",
                    "p/deeper/etcd-snapshot-20990101T000000Z-r1.db.sha256",
                    a,
                    a_sum,
                ]),
                Some(a),
            ),
        ];
        for (case, listed, expected) in cases {
            assert_eq!(
                newest_complete(&listed, "p/"),
                expected,
                "failed testcase: {case}"
            );
            // The listing's order does not matter: every node chooses the same.
            let mut reversed = listed.clone();
            reversed.reverse();
            assert_eq!(
                newest_complete(&reversed, "p/"),
                expected,
                "failed testcase: {case}"
            );
        }
    }

    #[test]
    fn a_records_restores_metadata_reads_back() {
        use std::time::{Duration, UNIX_EPOCH};
        let key = object_name("etcd/prod/", UNIX_EPOCH + Duration::from_secs(60), 7);
        for restores in [Restores::Nothing, Restores::Snapshot(key)] {
            assert_eq!(parse_restores(restores_value(&restores)), Some(restores));
        }
        assert_eq!(
            parse_restores(" "),
            None,
            "said nothing: the newest, as before"
        );
    }

    #[test]
    fn checksum_objects_are_read() {
        let hash = "AB".repeat(32);
        assert_eq!(
            parse_checksum(&format!("{hash}  etcd-snapshot-x.db\n")),
            Some(hash.to_ascii_lowercase())
        );
        assert_eq!(
            parse_checksum(&checksum_text(&"0f".repeat(32), "p/x.db")),
            Some("0f".repeat(32))
        );
        for bad in ["", "abc  x.db", &"g".repeat(64), &"a".repeat(65)] {
            assert_eq!(parse_checksum(bad), None, "failed testcase: {bad}");
        }
    }

    #[test]
    fn braces_inside_strings_do_not_end_a_message() {
        assert_eq!(Scan::default().object_end(br#"{"a":"}\"{"} x"#), Some(12));
        assert_eq!(Scan::default().object_end(br#"{"a":{"b":1}"#), None);
        // The same object fed in two goes.
        let mut scan = Scan::default();
        assert_eq!(scan.object_end(br#"{"a":"}\"#), None);
        assert_eq!(scan.object_end(br#"{"a":"}\"{"} x"#), Some(12));
    }
}
