//! What etcd's data directory says about this node's membership, and its fingerprint: what
//! tells, on a later boot, whether etcd has run from the file written for a bootstrap.
//!
//! The fingerprint tells two boots apart that look the same from outside: a node whose data
//! was lost after its etcd ran (it must not bootstrap again: its peers may hold the cluster)
//! and a node that wrote its file and went down before etcd started (it resumes the bootstrap
//! its file names, or the whole first boot would wait for it). It is kept in the env file:
//! nothing is written into etcd's directories.
//!
//! The one change made there: member data is moved aside, never deleted, so that etcd starts
//! afresh: a member the cluster removed (an instance reused from a warm pool after a scale-in),
//! or a member of a bootstrap that can never form, whose write-ahead log shows that no leader
//! ever reached it (`member_log`); the plan decides when (`Plan::set_aside_data`), this module
//! only reads the log and renames.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use crate::model::LocalData;

/// What the data directory says. Debian keeps etcd's data one level down
/// (`/var/lib/etcd/default/member`), so a `member/` folder one level down counts too: we
/// only call the data missing when we are sure. A directory that does not exist at all (an
/// instance-store volume after a stop/start, a new EBS volume) is missing data too; the
/// unit's `RequiresMountsFor=` keeps an unmounted volume from looking like a lost one.
pub fn local_data(dir: &Path) -> LocalData {
    let has_member = |d: &Path| d.join("member").is_dir();
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log::debug!(
                "data directory {} does not exist: no member data",
                dir.display()
            );
            return LocalData::Missing;
        }
        _ => {
            log::debug!(
                "data directory {} cannot be read as a directory: assuming the member's data is intact",
                dir.display()
            );
            return LocalData::Unknown;
        }
    }
    let one_level_down = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .any(|e| has_member(&e.path()))
        })
        .unwrap_or(true);
    if has_member(dir) || one_level_down {
        LocalData::Present
    } else {
        LocalData::Missing
    }
}

/// The data directory as etcd's first start would change it: the directory (its device, inode
/// and modification time) and each folder in it, or, while it does not exist, its parent.
/// etcd creates the directory and `member/` in it (or one level down); a wipe removes them, a
/// new volume is another inode: each changes a part. Compared for equality only, so a clock
/// stepped back at boot cannot make a change look old. One line of `[A-Za-z0-9 .:/_-]`.
pub fn fingerprint(dir: &Path) -> Option<String> {
    let stamp = |path: &Path| -> Option<String> {
        let meta = fs::metadata(path).ok()?;
        Some(format!(
            "{}:{}:{}.{:09}",
            meta.dev(),
            meta.ino(),
            meta.mtime(),
            meta.mtime_nsec()
        ))
    };
    if !dir.exists() {
        return Some(format!("absent, parent {}", stamp(dir.parent()?)?));
    }
    let mut folders: Vec<String> = Vec::new();
    for entry in fs::read_dir(dir).ok()?.filter_map(|e| e.ok()) {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let name: String = entry
                .file_name()
                .to_string_lossy()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            folders.push(format!("{name} {}", stamp(&entry.path())?));
        }
    }
    folders.sort();
    let mut line = format!("dir {}", stamp(dir)?);
    for folder in folders {
        line.push_str(", ");
        line.push_str(&folder);
    }
    Some(line)
}

/// What a member's write-ahead log says of how it began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberLog {
    /// It holds only what etcd writes when it bootstraps (the initial members' configuration
    /// entries at term 1, each naming its member; its votes in elections nobody won) and no
    /// snapshot: no leader ever reached this member. The bootstrap's members as a JSON list
    /// of etcd's `membership.Member` (the configuration entries' contexts): the shape of a
    /// peer port's `GET /members`, which `etcd::parse_peer_members` reads.
    NeverLed(String),
    /// A leader reached it: a leader's first act is an entry of its own term, so any member a
    /// cluster ever reached (or that took part in one that formed) has one. Also a member that
    /// joined (its log starts empty: no configuration of its own).
    Led,
}

/// The log of the member in `dir`. `None`: not proven either way (no single member with one
/// log segment, or a record this reader cannot take apart: a torn write, another format).
/// The log, not the env file, names the bootstrap: a later run may have rewritten the file
/// while etcd kept restarting from this data.
///
/// The log is a sequence of frames (etcd's `wal/encoder.go`): a little-endian u64 whose low
/// 56 bits are the record's length and whose top byte, when its high bit is set, holds the
/// padding to 8 bytes in its low 3 bits; a zero length ends the records (the rest of the
/// 64 MB segment is preallocated zeros). Each record is protobuf `walpb.Record` {1: type,
/// 3: data}; type 2 holds a `raftpb.Entry` {1: type, 2: term, 4: data}, whose data for a
/// configuration entry (type 1) is a `raftpb.ConfChange` {2: type, 4: context}, its context
/// the member as JSON; type 5 holds a `walpb.Snapshot` {1: index}.
pub fn member_log(dir: &Path) -> Option<MemberLog> {
    let members: Vec<std::path::PathBuf> = std::iter::once(dir.join("member"))
        .chain(
            fs::read_dir(dir)
                .ok()?
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("member")),
        )
        .filter(|m| m.is_dir())
        .collect();
    let [member] = members.as_slice() else {
        return None;
    };
    let segments: Vec<std::path::PathBuf> = fs::read_dir(member.join("wal"))
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    match segments.as_slice() {
        // A second segment: 64 MB of entries were written.
        [one] => read_log(&mut std::io::BufReader::new(fs::File::open(one).ok()?)),
        [] => None,
        _ => Some(MemberLog::Led),
    }
}

/// `member_log` for one log segment, read from its start.
fn read_log(log: &mut impl std::io::Read) -> Option<MemberLog> {
    const ENTRY: u64 = 2;
    const SNAPSHOT: u64 = 5;
    const CONF_CHANGE: u64 = 1;
    // The configuration entries' contexts (each a member as JSON), as one JSON list.
    let mut contexts: Vec<String> = Vec::new();
    loop {
        let mut frame = [0u8; 8];
        if log.read_exact(&mut frame).is_err() {
            break;
        }
        let frame = u64::from_le_bytes(frame);
        let length = frame & ((1 << 56) - 1);
        if length == 0 {
            break;
        }
        let padding = if frame >> 63 == 1 {
            (frame >> 56) & 7
        } else {
            0
        };
        // A bootstrap's records are a few hundred bytes; anything this large is not one.
        if length > 1 << 20 {
            return Some(MemberLog::Led);
        }
        let mut record = vec![0u8; usize::try_from(length + padding).ok()?];
        log.read_exact(&mut record).ok()?;
        record.truncate(usize::try_from(length).ok()?);
        let fields = protobuf_fields(&record)?;
        match field(&fields, 1).map(Value::number) {
            Some(ENTRY) => {
                let entry = protobuf_fields(field(&fields, 3).map_or(&[][..], Value::bytes))?;
                let number = |n| field(&entry, n).map_or(0, Value::number);
                if number(2) != 1 || number(1) != CONF_CHANGE {
                    return Some(MemberLog::Led);
                }
                let change = protobuf_fields(field(&entry, 4).map_or(&[][..], Value::bytes))?;
                // A bootstrap only adds (ConfChangeAddNode, 0).
                if field(&change, 2).map_or(0, Value::number) != 0 {
                    return None;
                }
                let context = field(&change, 4).map_or(&[][..], Value::bytes);
                contexts.push(std::str::from_utf8(context).ok()?.to_string());
            }
            Some(SNAPSHOT) => {
                let snapshot = protobuf_fields(field(&fields, 3).map_or(&[][..], Value::bytes))?;
                if field(&snapshot, 1).is_some_and(|v| v.number() != 0) {
                    return Some(MemberLog::Led);
                }
            }
            _ => {}
        }
    }
    if contexts.is_empty() {
        return Some(MemberLog::Led);
    }
    Some(MemberLog::NeverLed(format!("[{}]", contexts.join(","))))
}

/// The first value of field `n`.
fn field<'f, 'a>(fields: &'f [(u64, Value<'a>)], n: u64) -> Option<&'f Value<'a>> {
    fields.iter().find(|(f, _)| *f == n).map(|(_, v)| v)
}

/// A protobuf field's value: a number (varint or fixed) or bytes.
enum Value<'a> {
    Number(u64),
    Bytes(&'a [u8]),
}

impl<'a> Value<'a> {
    fn number(&self) -> u64 {
        match self {
            Value::Number(n) => *n,
            Value::Bytes(_) => 0,
        }
    }
    fn bytes(&self) -> &'a [u8] {
        match self {
            Value::Number(_) => &[],
            Value::Bytes(b) => b,
        }
    }
}

/// The (field number, value) pairs of a protobuf message; `None` when it is malformed.
fn protobuf_fields(mut message: &[u8]) -> Option<Vec<(u64, Value<'_>)>> {
    fn varint(bytes: &mut &[u8]) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = bytes.split_first()?;
            *bytes = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = (bytes.get(..n)?, bytes.get(n..)?);
        *bytes = rest;
        Some(taken)
    }
    let mut fields = Vec::new();
    while !message.is_empty() {
        let key = varint(&mut message)?;
        let value = match key & 7 {
            0 => Value::Number(varint(&mut message)?),
            1 => Value::Number(u64::from_le_bytes(take(&mut message, 8)?.try_into().ok()?)),
            2 => {
                let n = usize::try_from(varint(&mut message)?).ok()?;
                Value::Bytes(take(&mut message, n)?)
            }
            5 => Value::Number(u64::from(u32::from_le_bytes(
                take(&mut message, 4)?.try_into().ok()?,
            ))),
            _ => return None,
        };
        fields.push((key >> 3, value));
    }
    Some(fields)
}

/// Moves the member data in `dir` (its `member/`, and any one level down, as `local_data`
/// finds them) aside to `member.<label>-<when>` beside it, where `when` is UTC as
/// `YYYYMMDDTHHMMSSZ`; returns each (from, to). A name taken already gets `-2`, `-3`, ...
/// A rename within one directory: nothing is copied or deleted, and a failure leaves the
/// data where it was.
pub fn set_aside(
    dir: &Path,
    now: std::time::SystemTime,
    label: &str,
) -> std::io::Result<Vec<(std::path::PathBuf, std::path::PathBuf)>> {
    let mut found: Vec<std::path::PathBuf> = vec![dir.join("member")];
    for entry in fs::read_dir(dir)?.filter_map(|e| e.ok()) {
        found.push(entry.path().join("member"));
    }
    let stamp = utc_stamp(now);
    let mut moved = Vec::new();
    for from in found.into_iter().filter(|m| m.is_dir()) {
        let parent = from.parent().unwrap_or(dir);
        let mut to = parent.join(format!("member.{label}-{stamp}"));
        let mut n = 1;
        while to.exists() {
            n += 1;
            to = parent.join(format!("member.{label}-{stamp}-{n}"));
        }
        fs::rename(&from, &to)?;
        moved.push((from, to));
    }
    Ok(moved)
}

/// `YYYYMMDDTHHMMSSZ` for a time (UTC; before 1970 reads as 1970).
pub fn utc_stamp(now: std::time::SystemTime) -> String {
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days to a civil date: Howard Hinnant's `civil_from_days`, for days since 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data directory whose member's log is `log` (one segment), under `dir`.
    fn with_log(dir: &Path, log: &[u8]) {
        let wal = dir.join("member/wal");
        fs::create_dir_all(&wal).unwrap();
        fs::write(wal.join("0000000000000000-0000000000000000.wal"), log).unwrap();
    }

    fn fixture(name: &str) -> Vec<u8> {
        fs::read(format!("fixtures/etcd/{name}")).unwrap()
    }

    #[test]
    fn a_log_tells_whether_a_leader_ever_reached_the_member() {
        let alone = fixture("wal-3.4-bootstrap-only.wal");
        let formed = fixture("wal-3.4-formed.wal");
        let mut preallocated = alone.clone();
        preallocated.resize(alone.len() + 4096, 0);
        let torn = &alone[..alone.len() - 5];
        // The fixture's bootstrap, as its configuration entries name it.
        let never_led = || {
            Some(MemberLog::NeverLed(
                r#"[{"id":6598929098562179454,"peerURLs":["http://127.0.0.1:2380"],"name":"a"},{"id":8088786560411510159,"peerURLs":["http://127.0.0.2:2380"],"name":"b"},{"id":13487502627470054085,"peerURLs":["http://127.0.0.3:2380"],"name":"c"}]"#.into(),
            ))
        };
        // They are etcd's own IDs for that bootstrap (token `t`), so the cluster ID rule 20
        // computes from them (`model::cluster_id`) is the one its members were given.
        for (id, url) in [
            (6598929098562179454, "http://127.0.0.1:2380"),
            (8088786560411510159, "http://127.0.0.2:2380"),
            (13487502627470054085, "http://127.0.0.3:2380"),
        ] {
            assert_eq!(crate::model::initial_member_id(&[url.into()], "t"), id);
        }
        // (case, the log, what it proves)
        let cases: [(&str, &[u8], Option<MemberLog>); 5] = [
            ("bootstrap only, cut after its records", &alone, never_led()),
            (
                "bootstrap only, preallocated zeros after",
                &preallocated,
                never_led(),
            ),
            ("formed", &formed, Some(MemberLog::Led)),
            ("torn in its last record", torn, None),
            ("empty: no bootstrap of its own", &[], Some(MemberLog::Led)),
        ];
        for (case, log, proves) in cases {
            let dir = scratch("never-led");
            with_log(&dir, log);
            assert_eq!(member_log(&dir), proves, "failed testcase {case}");
            let _ = fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn a_log_is_read_only_where_there_is_one_member_with_one_segment() {
        let alone = fixture("wal-3.4-bootstrap-only.wal");
        // Debian's layout, one level down.
        let dir = scratch("never-led-debian");
        with_log(&dir.join("default"), &alone);
        assert!(matches!(member_log(&dir), Some(MemberLog::NeverLed(_))));
        // A second segment: 64 MB of entries were written.
        fs::write(
            dir.join("default/member/wal/0000000000000001-0000000000000009.wal"),
            &alone,
        )
        .unwrap();
        assert_eq!(member_log(&dir), Some(MemberLog::Led));
        // Two members' data: not this reader's to judge.
        with_log(&dir, &alone);
        assert_eq!(member_log(&dir), None);
        let _ = fs::remove_dir_all(&dir);
        // No data directory, no log.
        assert_eq!(member_log(&dir), None);
        fs::create_dir_all(dir.join("member/wal")).unwrap();
        assert_eq!(member_log(&dir), None);
        let _ = fs::remove_dir_all(&dir);
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "etcd-discovery-datadir-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn local_data_cases() {
        let base = scratch("local");
        // Regression: a named directory that did not exist was "intact", so the node
        // rejoined as its old member with no data and etcd could not start.
        assert_eq!(
            local_data(&base),
            LocalData::Missing,
            "no directory: no member data"
        );
        fs::write(&base, "").unwrap();
        assert_eq!(
            local_data(&base),
            LocalData::Unknown,
            "not a directory: cannot tell"
        );
        fs::remove_file(&base).unwrap();
        fs::create_dir_all(&base).unwrap();
        assert_eq!(
            local_data(&base),
            LocalData::Missing,
            "empty directory: wiped"
        );
        fs::create_dir_all(base.join("default/member")).unwrap();
        assert_eq!(
            local_data(&base),
            LocalData::Present,
            "Debian's layout, one level down"
        );
        fs::remove_dir_all(base.join("default")).unwrap();
        fs::create_dir_all(base.join("member/snap")).unwrap();
        assert_eq!(local_data(&base), LocalData::Present);
        fs::remove_dir_all(&base).unwrap();
    }

    /// Each way data can go after the file was written: only an untouched directory keeps
    /// its fingerprint.
    #[test]
    fn the_fingerprint_survives_only_an_untouched_directory() {
        type Change = fn(&Path);
        let cases: [(&str, bool, Change, bool); 9] = [
            ("nothing happened: etcd never ran", true, |_| {}, true),
            (
                "etcd ran: member/ created",
                true,
                |d| fs::create_dir(d.join("member")).unwrap(),
                false,
            ),
            (
                "etcd ran, then member/ was removed",
                true,
                |d| {
                    fs::create_dir(d.join("member")).unwrap();
                    fs::remove_dir(d.join("member")).unwrap();
                },
                false,
            ),
            (
                "etcd ran one level down (Debian's default/)",
                true,
                |d| fs::create_dir(d.join("default").join("member")).unwrap(),
                false,
            ),
            (
                "emptied with rm -rf DIR/*",
                true,
                |d| fs::remove_dir_all(d.join("default")).unwrap(),
                false,
            ),
            (
                "a new, empty volume",
                true,
                |d| {
                    fs::remove_dir_all(d).unwrap();
                    fs::create_dir(d).unwrap();
                },
                false,
            ),
            ("absent, nothing happened", false, |_| {}, true),
            (
                "absent, then etcd created it",
                false,
                |d| fs::create_dir_all(d.join("member")).unwrap(),
                false,
            ),
            (
                "absent, etcd created it, then it was deleted",
                false,
                |d| {
                    fs::create_dir_all(d.join("member")).unwrap();
                    fs::remove_dir_all(d).unwrap();
                },
                false,
            ),
        ];
        for (what, exists, change, same) in cases {
            let parent = scratch("fingerprint");
            let dir = parent.join("data");
            fs::create_dir_all(&parent).unwrap();
            if exists {
                fs::create_dir_all(dir.join("default")).unwrap();
            }
            let before = fingerprint(&dir).unwrap();
            assert!(!before.contains('\n'), "one line: {before}");
            // Timestamps come from the kernel's coarse clock: let it tick past the first.
            std::thread::sleep(std::time::Duration::from_millis(20));
            change(&dir);
            assert_eq!(
                fingerprint(&dir).as_deref() == Some(before.as_str()),
                same,
                "failed testcase: {what}"
            );
            fs::remove_dir_all(&parent).unwrap();
        }
    }

    #[test]
    fn utc_stamps() {
        let at = |secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        let cases = [
            (0, "19700101T000000Z"),
            (951_782_400, "20000229T000000Z"),
            (1_795_861_241, "20261128T102041Z"),
            (4_102_444_799, "20991231T235959Z"),
        ];
        for (secs, text) in cases {
            assert_eq!(utc_stamp(at(secs)), text, "failed testcase: {secs}");
        }
    }

    #[test]
    fn set_aside_moves_member_data_and_keeps_it() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_861_241);
        let base = scratch("aside");
        fs::create_dir_all(base.join("member/wal")).unwrap();
        fs::write(base.join("member/wal/0.wal"), "log").unwrap();
        fs::create_dir_all(base.join("member.removed-20261128T102041Z")).unwrap();
        let moved = set_aside(&base, at, "removed").unwrap();
        let to = base.join("member.removed-20261128T102041Z-2");
        assert_eq!(moved, vec![(base.join("member"), to.clone())]);
        assert_eq!(fs::read_to_string(to.join("wal/0.wal")).unwrap(), "log");
        assert_eq!(local_data(&base), LocalData::Missing, "etcd starts afresh");
        // Debian's layout, one level down.
        fs::create_dir_all(base.join("default/member/snap")).unwrap();
        let moved = set_aside(&base, at, "removed").unwrap();
        assert_eq!(
            moved,
            vec![(
                base.join("default/member"),
                base.join("default/member.removed-20261128T102041Z")
            )]
        );
        assert_eq!(local_data(&base), LocalData::Missing);
        assert_eq!(
            set_aside(&base, at, "removed").unwrap(),
            vec![],
            "nothing left to move"
        );
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn no_fingerprint_without_a_parent() {
        let dir = scratch("orphan").join("data");
        assert_eq!(fingerprint(&dir), None);
    }
}
