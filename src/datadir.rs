//! What etcd's data directory says about this node's membership, and its fingerprint: what
//! tells, on a later boot, whether etcd has run from the file written for a bootstrap.
//!
//! The fingerprint tells two boots apart that look the same from outside: a node whose data
//! was lost after its etcd ran (it must not bootstrap again: its peers may hold the cluster)
//! and a node that wrote its file and went down before etcd started (it resumes the bootstrap
//! its file names, or the whole first boot would wait for it). It is kept in the env file:
//! nothing is written into etcd's directories.
//!
//! The one change made there: the data of a member the cluster removed (an instance reused
//! from a warm pool after a scale-in) is moved aside, never deleted, so that etcd starts as a
//! new member; the plan decides when (`Plan::set_aside_data`), this module only renames.

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

/// Moves the member data in `dir` (its `member/`, and any one level down, as `local_data`
/// finds them) aside to `member.removed-<when>` beside it, where `when` is UTC as
/// `YYYYMMDDTHHMMSSZ`; returns each (from, to). A name taken already gets `-2`, `-3`, ...
/// A rename within one directory: nothing is copied or deleted, and a failure leaves the
/// data where it was.
pub fn set_aside(
    dir: &Path,
    now: std::time::SystemTime,
) -> std::io::Result<Vec<(std::path::PathBuf, std::path::PathBuf)>> {
    let mut found: Vec<std::path::PathBuf> = vec![dir.join("member")];
    for entry in fs::read_dir(dir)?.filter_map(|e| e.ok()) {
        found.push(entry.path().join("member"));
    }
    let stamp = utc_stamp(now);
    let mut moved = Vec::new();
    for from in found.into_iter().filter(|m| m.is_dir()) {
        let parent = from.parent().unwrap_or(dir);
        let mut to = parent.join(format!("member.removed-{stamp}"));
        let mut n = 1;
        while to.exists() {
            n += 1;
            to = parent.join(format!("member.removed-{stamp}-{n}"));
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
        let moved = set_aside(&base, at).unwrap();
        let to = base.join("member.removed-20261128T102041Z-2");
        assert_eq!(moved, vec![(base.join("member"), to.clone())]);
        assert_eq!(fs::read_to_string(to.join("wal/0.wal")).unwrap(), "log");
        assert_eq!(local_data(&base), LocalData::Missing, "etcd starts afresh");
        // Debian's layout, one level down.
        fs::create_dir_all(base.join("default/member/snap")).unwrap();
        let moved = set_aside(&base, at).unwrap();
        assert_eq!(
            moved,
            vec![(
                base.join("default/member"),
                base.join("default/member.removed-20261128T102041Z")
            )]
        );
        assert_eq!(local_data(&base), LocalData::Missing);
        assert_eq!(
            set_aside(&base, at).unwrap(),
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
