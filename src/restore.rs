//! Restore on total loss: when the plan bootstraps the whole group from nothing
//! (`Plan::restore`) and `--snapshot-url` is set, the newest complete snapshot is put into the
//! data directory before the file is written, so the new cluster starts with the old data.
//!
//! The side effects, in order: list the prefix and choose (`snapshot::newest_complete`, the
//! same object on every node); read its `.sha256`; stream the object to a file inside the data
//! directory while hashing it (one read buffer in memory, whatever its size); refuse it when
//! the hash differs (never falling back to an older one); run `etcdutl snapshot restore` (etcd
//! 3.5+), else `etcdctl snapshot restore` (3.4) into a fresh folder inside the data directory;
//! then rename its `member/` into place. Until that rename the data directory holds no member
//! data, so a crash at any step leaves nothing a later run could take for a member's data:
//! it restores again.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use ring::digest::{Context, SHA256};

use crate::aws::s3::{Location, S3};
use crate::error::{Error, Result};
use crate::model::{LocalData, Restores};
use crate::{datadir, snapshot};

/// Who the restored member is: the same values its env file gives etcd.
pub struct Target<'a> {
    pub data_dir: &'a Path,
    pub name: &'a str,
    pub initial_cluster: &'a str,
    pub token: &'a str,
    pub peer_url: &'a str,
}

/// What was done.
#[derive(Debug, PartialEq, Eq)]
pub enum Restored {
    /// `s3://BUCKET/KEY` is in the data directory now.
    Snapshot(String),
    /// No complete snapshot under the prefix: the bootstrap goes on empty.
    Nothing,
}

/// The folder etcd's restore writes into, inside the data directory (the same file system,
/// so the rename into place is atomic). A leftover from a crash is removed first.
const WORK: &str = ".etcd-discovery-restore";

fn failed(detail: String) -> Error {
    Error::Restore(detail)
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    failed(format!("{what} {}: {e}", path.display()))
}

/// Restores into `target.data_dir` what the bootstrap restores (`which`, as its record says;
/// `None`: the newest complete snapshot under `location`).
pub fn restore(
    s3: &S3,
    location: &Location,
    target: &Target,
    which: Option<&Restores>,
) -> Result<Restored> {
    // Never over member data: the plan saw none, and nothing may have put some since.
    if datadir::local_data(target.data_dir) != LocalData::Missing {
        return Err(failed(format!(
            "{} is not known to be empty of member data: not restoring over it",
            target.data_dir.display()
        )));
    }
    let at = format!("s3://{}/{}", location.bucket, location.prefix);
    if which == Some(&Restores::Nothing) {
        log::info!(
            "no complete snapshot under {at} when the bootstrap was recorded: bootstrapping an \
             empty cluster, as every member of it does"
        );
        return Ok(Restored::Nothing);
    }
    let keys = s3.list(&location.prefix)?;
    let key = match which {
        Some(Restores::Snapshot(key)) => {
            if !snapshot::is_complete(&keys, key) {
                return Err(failed(format!(
                    "s3://{}/{key}, which the bootstrap record says every member of this \
                     bootstrap restores, is no longer complete in the bucket: not restoring \
                     another (its members would hold other data); put it back, or restore the \
                     group anew (README: restore on total loss)",
                    location.bucket
                )));
            }
            key.as_str()
        }
        _ => match snapshot::newest_complete(&keys, &location.prefix) {
            Some(key) => key,
            None => {
                log::info!("no complete snapshot under {at}: bootstrapping an empty cluster");
                return Ok(Restored::Nothing);
            }
        },
    };
    let url = format!("s3://{}/{key}", location.bucket);
    let checksum_key = snapshot::checksum_name(key);
    let expected = snapshot::parse_checksum(&s3.get_text(&checksum_key)?).ok_or_else(|| {
        failed(format!(
            "s3://{}/{checksum_key} is not a sha256sum line: not restoring {url}; fix or \
             delete that object (with its snapshot) and run again",
            location.bucket
        ))
    })?;
    log::info!(
        "restoring {url} into {}: no member answered and the whole group bootstraps",
        target.data_dir.display()
    );
    make_data_dir(target.data_dir)?;
    let work = target.data_dir.join(WORK);
    remove_leftover(&work)?;
    let result = (|| {
        make_dir(&work)?;
        let file = work.join("snapshot.db");
        let got = s3.get_to(key, |reader| download(reader, &file))?;
        if got != expected {
            return Err(failed(format!(
                "{url} does not match its checksum (sha256 {got}, {checksum_key} says \
                 {expected}): not restoring it, and not falling back to an older one. Check the \
                 bucket; delete the damaged object with its .sha256 to restore the one before, \
                 or unset --snapshot-url to bootstrap empty"
            )));
        }
        let restored = work.join("data");
        run_restore(&file, &restored, target)?;
        // etcd 3.4 and 3.5 both write `member/` under the restore's data dir.
        let member = restored.join("member");
        give_to_owner_of(target.data_dir, &member)?;
        let into = target.data_dir.join("member");
        fs::rename(&member, &into).map_err(|e| io("moving the restored member into", &into, e))?;
        sync_dir(target.data_dir);
        Ok(())
    })();
    // The work folder goes, whatever happened: the snapshot file is as large as the data.
    if let Err(e) = fs::remove_dir_all(&work) {
        log::warn!("could not remove {}: {e}", work.display());
    }
    result?;
    log::info!("restored {url} into {}", target.data_dir.display());
    Ok(Restored::Snapshot(url))
}

/// Creates the data directory (etcd wants 0700) when it does not exist, owned as its parent
/// is (Debian's `/var/lib/etcd` is etcd's), as etcd would have made it.
fn make_data_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    make_dir(dir)?;
    if let Some(parent) = dir.parent().and_then(|p| fs::metadata(p).ok()) {
        std::os::unix::fs::lchown(dir, Some(parent.uid()), Some(parent.gid()))
            .map_err(|e| io("cannot give its parent's owner to", dir, e))?;
    }
    Ok(())
}

/// Creates `dir` with mode 0700.
fn make_dir(dir: &Path) -> Result<()> {
    // Not recursive: the data directory's parent is there (the volume, /var/lib/etcd).
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) => Err(io("cannot create", dir, e)),
    }
}

fn remove_leftover(work: &Path) -> Result<()> {
    match fs::remove_dir_all(work) {
        Ok(()) => {
            log::info!(
                "removed {}: a restore before this one did not finish",
                work.display()
            );
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("cannot remove", work, e)),
    }
}

/// Writes what `reader` gives to `file` (anew on every try), hashing as it goes; returns the
/// sha256 in lowercase hex once it is all on disk.
fn download(reader: &mut dyn Read, file: &Path) -> Result<String> {
    let mut out = fs::File::create(file).map_err(|e| io("cannot create", file, e))?;
    let _ = out.set_permissions(fs::Permissions::from_mode(0o600));
    let mut hash = Context::new(&SHA256);
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Transport {
                    what: "S3 GetObject".into(),
                    detail: format!("the download broke off: {e}"),
                    transient: true,
                })
            }
        };
        hash.update(&buffer[..n]);
        out.write_all(&buffer[..n])
            .map_err(|e| io("cannot write", file, e))?;
    }
    out.sync_all().map_err(|e| io("cannot write", file, e))?;
    Ok(snapshot::hex(hash.finish().as_ref()))
}

/// The restore tool: `etcdutl` (etcd 3.5+; `etcdctl snapshot restore` is deprecated there)
/// when it is on PATH, else `etcdctl` (etcd 3.4, which has no etcdutl).
pub fn tool(path: Option<&std::ffi::OsStr>) -> Option<(PathBuf, bool)> {
    let find = |name: &str| {
        std::env::split_paths(path?)
            .map(|dir| dir.join(name))
            .find(|p| {
                fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    };
    find("etcdutl")
        .map(|p| (p, true))
        .or_else(|| find("etcdctl").map(|p| (p, false)))
}

/// The restore's arguments, the same for both tools.
pub fn arguments(file: &Path, data_dir: &Path, target: &Target) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec!["snapshot".into(), "restore".into(), file.into()];
    for (flag, value) in [
        ("--name", target.name),
        ("--initial-cluster", target.initial_cluster),
        ("--initial-cluster-token", target.token),
        ("--initial-advertise-peer-urls", target.peer_url),
    ] {
        args.push(format!("{flag}={value}").into());
    }
    let mut dir = std::ffi::OsString::from("--data-dir=");
    dir.push(data_dir);
    args.push(dir);
    args
}

fn run_restore(file: &Path, data_dir: &Path, target: &Target) -> Result<()> {
    let (tool, is_etcdutl) = tool(std::env::var_os("PATH").as_deref()).ok_or_else(|| {
        failed(
            "neither etcdutl nor etcdctl is on PATH: install etcd's tools (etcd-client on \
             Debian) to restore the snapshot"
                .into(),
        )
    })?;
    // etcdctl 3.4 speaks the v3 API by default: no ETCDCTL_API to set (an environment of
    // our own for the child would cost the binary a map of variables).
    let mut command = Command::new(&tool);
    command.args(arguments(file, data_dir, target));
    log::debug!(
        "running {} snapshot restore ({})",
        tool.display(),
        if is_etcdutl { "etcd 3.5+" } else { "etcd 3.4" }
    );
    // Its output goes where ours goes (the journal): no pipes to read here.
    let status = command
        .status()
        .map_err(|e| failed(format!("cannot run {}: {e}", tool.display())))?;
    if !status.success() {
        return Err(failed(format!(
            "{} snapshot restore failed (exit code {}): its own messages are just above",
            tool.display(),
            status.code().map_or("none".into(), |c| c.to_string())
        )));
    }
    Ok(())
}

/// etcd runs as its own user (Debian's `etcd`) and we as root: the restored files become the
/// data directory's owner's, or etcd could not open them. Before the rename, so a member
/// etcd cannot read never appears.
fn give_to_owner_of(data_dir: &Path, member: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let owner = fs::metadata(data_dir).map_err(|e| io("cannot read", data_dir, e))?;
    let (uid, gid) = (owner.uid(), owner.gid());
    let mine = fs::metadata(member).map_err(|e| io("cannot read", member, e))?;
    if (mine.uid(), mine.gid()) == (uid, gid) {
        return Ok(());
    }
    let mut pending = vec![member.to_path_buf()];
    while let Some(path) = pending.pop() {
        std::os::unix::fs::lchown(&path, Some(uid), Some(gid)).map_err(|e| {
            failed(format!(
                "cannot give {} to the data directory's owner ({uid}:{gid}): {e} (the unit \
                 needs CAP_CHOWN and SystemCallFilter=@chown to restore: README, the unit)",
                path.display()
            ))
        })?;
        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            let entries = fs::read_dir(&path).map_err(|e| io("cannot read", &path, e))?;
            pending.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
        }
    }
    Ok(())
}

/// Makes the rename durable; best effort (the data is whole either way).
fn sync_dir(dir: &Path) {
    if let Err(e) = fs::File::open(dir).and_then(|d| d.sync_all()) {
        log::warn!("could not sync {}: {e}", dir.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restore_names_this_member() {
        let target = Target {
            data_dir: Path::new("/var/lib/etcd"),
            name: "i-1",
            initial_cluster: "i-1=http://10.0.0.1:2380,i-2=http://10.0.0.2:2380",
            token: "etcd-cluster-abc",
            peer_url: "http://10.0.0.1:2380",
        };
        let args = arguments(Path::new("/d/s.db"), Path::new("/d/data"), &target);
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into()).collect();
        assert_eq!(
            args,
            [
                "snapshot",
                "restore",
                "/d/s.db",
                "--name=i-1",
                "--initial-cluster=i-1=http://10.0.0.1:2380,i-2=http://10.0.0.2:2380",
                "--initial-cluster-token=etcd-cluster-abc",
                "--initial-advertise-peer-urls=http://10.0.0.1:2380",
                "--data-dir=/d/data",
            ]
        );
    }

    #[test]
    fn etcdutl_goes_before_etcdctl() {
        let dir = std::env::temp_dir().join(format!("restore-tool-{}", std::process::id()));
        let (a, b) = (dir.join("a"), dir.join("b"));
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        let exe = |p: &Path| {
            fs::write(p, "#!/bin/sh\n").unwrap();
            fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
        };
        exe(&a.join("etcdctl"));
        let path = std::env::join_paths([&a, &b]).unwrap();
        assert_eq!(tool(Some(&path)), Some((a.join("etcdctl"), false)));
        // Not executable: not a tool.
        fs::write(b.join("etcdutl"), "").unwrap();
        assert_eq!(tool(Some(&path)), Some((a.join("etcdctl"), false)));
        exe(&b.join("etcdutl"));
        assert_eq!(tool(Some(&path)), Some((b.join("etcdutl"), true)));
        assert_eq!(tool(None), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
