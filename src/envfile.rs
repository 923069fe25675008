//! The environment file etcd reads through systemd's `EnvironmentFile=` (and that `sh` can
//! source). `render` is pure and refuses any value that could break either reader;
//! `write_atomic` replaces the file whole or not at all, and leaves it alone when unchanged.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{snippet, Error, Result};
use crate::model::{LastRun, PreviousFile};

/// Characters that mean the same to systemd and to `sh` unquoted, and cover URLs, instance ids
/// and lists: no quotes, spaces, `$`, backslashes, `#`, `~` or line breaks.
fn is_safe_value_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._-:/,=@%+[]".contains(c)
}

/// The comment line that keeps the data directory's fingerprint in a bootstrap's file.
const DATA_FINGERPRINT: &str = "# etcd's data directory before it first ran: ";

/// The rendered file with the data directory's fingerprint after its first line.
pub fn with_data_fingerprint(text: &str, fingerprint: &str) -> String {
    let (header, rest) = text.split_once('\n').unwrap_or((text, ""));
    let fingerprint: String = fingerprint.chars().filter(|c| *c != '\n').collect();
    format!("{header}\n{DATA_FINGERPRINT}{fingerprint}\n{rest}")
}

/// `KEY=value` lines, in the given order. Refuses unsafe keys and values.
pub fn render(vars: &[(&str, String)]) -> Result<String> {
    let mut out = String::from("# Written by etcd-discovery; changes are overwritten.\n");
    for (key, value) in vars {
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(Error::Parse {
                what: "environment file".into(),
                detail: format!("bad variable name {key:?}"),
            });
        }
        if let Some(bad) = value.chars().find(|c| !is_safe_value_char(*c)) {
            return Err(Error::Parse {
                what: format!("the value of {key}"),
                detail: format!(
                    "{:?} holds {bad:?}, which is not safe in an environment file; check the instance's tags, hostname and the member list",
                    snippet(value)
                ),
            });
        }
        out.push_str(key);
        out.push('=');
        out.push_str(value);
        out.push('\n');
    }
    Ok(out)
}

/// The variables the seed tools wrote (name, initial cluster, its state and token), plus the
/// proxy's: what an etcd unit that passes its listen and advertise URLs as flags can take,
/// since etcd refuses to start when a flag shadows a variable ("conflicting environment
/// variable ... is shadowed by corresponding command-line flag").
pub fn seed_variables_only(vars: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    const URLS: [&str; 4] = [
        "ETCD_INITIAL_ADVERTISE_PEER_URLS",
        "ETCD_ADVERTISE_CLIENT_URLS",
        "ETCD_LISTEN_PEER_URLS",
        "ETCD_LISTEN_CLIENT_URLS",
    ];
    vars.into_iter()
        .filter(|(k, _)| !URLS.contains(k))
        .collect()
}

/// What `write_atomic` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    Replaced,
    Unchanged,
}

/// Proves, before any membership change, that the file can be written: a missing directory is
/// created (0755, like `install -d`; Debian and Ubuntu have no `/etc/sysconfig`), and a
/// temporary file is created and removed in it. A read-only or full filesystem stops the run
/// here, while the cluster is still untouched.
pub fn check_writable(path: &Path) -> Result<()> {
    let dir = parent(path);
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(io_error(
                path,
                format!("{} is not a directory", dir.display()),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .map_err(|e| io_error(path, format!("cannot create {}: {e}", dir.display())))?;
            log::info!("created the directory {}", dir.display());
        }
        Err(e) => return Err(io_error(path, format!("directory {}: {e}", dir.display()))),
    }
    let probe = temp_path(path)?;
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&probe)
        .and_then(|mut f| f.write_all(b"#\n").and_then(|()| f.sync_all()));
    let _ = fs::remove_file(&probe);
    created.map_err(|e| io_error(path, format!("the directory is not writable: {e}")))
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn io_error(path: &Path, detail: String) -> Error {
    Error::Io {
        path: path.display().to_string(),
        detail,
        after_change: false,
    }
}

/// `.NAME.PID.tmp` beside the file: the same filesystem, so the rename is atomic.
fn temp_path(path: &Path) -> Result<std::path::PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io_error(path, "not a file name".into()))?;
    Ok(parent(path).join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    )))
}

/// What the previous file (if any) says of `instance_id`: a member of a running cluster
/// (`ETCD_NAME` is this instance and the state `existing`), a member of a bootstrap (`new`),
/// or nothing.
pub fn previous_file(path: &Path, instance_id: &str) -> PreviousFile {
    let Some(content) = old_content(path, 64 * 1024) else {
        return PreviousFile::NotAMember;
    };
    let text = String::from_utf8_lossy(&content);
    let line = |key: &str| text.lines().find_map(|l| l.strip_prefix(key));
    let initial_cluster = || {
        line("ETCD_INITIAL_CLUSTER=")
            .unwrap_or_default()
            .to_string()
    };
    if line("ETCD_NAME=") != Some(instance_id) {
        return PreviousFile::NotAMember;
    }
    match line("ETCD_INITIAL_CLUSTER_STATE=") {
        Some("existing") => PreviousFile::Member {
            initial_cluster: initial_cluster(),
        },
        Some("new") => PreviousFile::Bootstrap {
            initial_cluster: initial_cluster(),
            data_fingerprint: line(DATA_FINGERPRINT).map(str::to_string),
        },
        _ => PreviousFile::NotAMember,
    }
}

/// What the previous file names (its instance, and the peers or endpoints it was written
/// with), for the reboot fast path; `None` without a readable file naming an instance.
pub fn last_run(path: &Path) -> Option<LastRun> {
    let content = old_content(path, 64 * 1024)?;
    parse_last_run(&String::from_utf8_lossy(&content))
}

/// `last_run` on the file's text. Pure.
pub fn parse_last_run(text: &str) -> Option<LastRun> {
    let line = |key: &str| text.lines().find_map(|l| l.strip_prefix(key));
    let list = |value: Option<&str>| -> Vec<String> {
        value
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect()
    };
    let name = line("ETCD_NAME=")?.trim();
    if name.is_empty() {
        return None;
    }
    Some(LastRun {
        name: name.to_string(),
        proxy: line("ETCD_PROXY=") == Some("on"),
        bootstrap: line("ETCD_INITIAL_CLUSTER_STATE=") == Some("new"),
        peer_urls: list(line("ETCD_INITIAL_CLUSTER="))
            .into_iter()
            .filter_map(|entry| entry.split_once('=').map(|(_, url)| url.to_string()))
            .filter(|url| !url.is_empty())
            .collect(),
        endpoints: list(line("ETCD_ENDPOINTS=")),
    })
}

/// The old file's content, when it is a regular file of a sane size. A FIFO would block the
/// read and a link to `/dev/zero` would never end, so neither is read.
fn old_content(path: &Path, limit: usize) -> Option<Vec<u8>> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > limit as u64 {
        return None;
    }
    let mut content = Vec::new();
    File::open(path)
        .ok()?
        .take(limit as u64 + 1)
        .read_to_end(&mut content)
        .ok()?;
    Some(content)
}

/// Writes `content` to `path` atomically: temp file in the same directory, fsync, rename,
/// fsync the directory. On failure the old file is untouched and the temp file removed. An
/// existing file's mode and owner are kept (an operator may have made it 0640 root:etcd).
pub fn write_atomic(path: &Path, content: &str) -> Result<Written> {
    if old_content(path, content.len()).is_some_and(|old| old == content.as_bytes()) {
        return Ok(Written::Unchanged);
    }
    let old = fs::metadata(path).ok().filter(|m| m.is_file());
    let temp = temp_path(path)?;
    let result = (|| -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temp)?;
        if let Some(old) = &old {
            file.set_permissions(fs::Permissions::from_mode(old.mode() & 0o7777))?;
            // Only when the owner differs: a hardened unit filters chown (`~@privileged`),
            // and the file's content matters more than its owner.
            let new = file.metadata()?;
            if (new.uid(), new.gid()) != (old.uid(), old.gid()) {
                if let Err(e) = std::os::unix::fs::fchown(&file, Some(old.uid()), Some(old.gid())) {
                    log::warn!(
                        "could not keep the owner {}:{} of {}: {e}",
                        old.uid(),
                        old.gid(),
                        path.display()
                    );
                }
            }
        }
        file.write_all(content.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        File::open(parent(path))?.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&temp);
        return Err(io_error(path, e.to_string()));
    }
    Ok(Written::Replaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_form_leaves_out_the_urls() {
        // An etcd unit passing these as flags refused to start ("... is shadowed by
        // corresponding command-line flag").
        let all = vec![
            ("ETCD_NAME", "i-1".to_string()),
            ("ETCD_INITIAL_CLUSTER_STATE", "new".into()),
            ("ETCD_INITIAL_CLUSTER", "i-1=http://a:2380".into()),
            ("ETCD_INITIAL_CLUSTER_TOKEN", "t".into()),
            ("ETCD_INITIAL_ADVERTISE_PEER_URLS", "http://a:2380".into()),
            ("ETCD_ADVERTISE_CLIENT_URLS", "http://a:2379".into()),
            ("ETCD_LISTEN_PEER_URLS", "http://a:2380".into()),
            ("ETCD_LISTEN_CLIENT_URLS", "http://a:2379".into()),
        ];
        let kept: Vec<&str> = seed_variables_only(all)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            kept,
            [
                "ETCD_NAME",
                "ETCD_INITIAL_CLUSTER_STATE",
                "ETCD_INITIAL_CLUSTER",
                "ETCD_INITIAL_CLUSTER_TOKEN"
            ]
        );
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("etcd-discovery-test-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn renders_key_value_lines() {
        let text = render(&[
            ("ETCD_NAME", "i-1".into()),
            (
                "ETCD_INITIAL_CLUSTER",
                "i-1=http://10.0.0.1:2380,i-2=http://[fd00::1]:2380".into(),
            ),
        ])
        .unwrap();
        assert_eq!(text, "# Written by etcd-discovery; changes are overwritten.\nETCD_NAME=i-1\nETCD_INITIAL_CLUSTER=i-1=http://10.0.0.1:2380,i-2=http://[fd00::1]:2380\n");
    }

    #[test]
    fn refuses_values_that_would_inject_lines_or_expand() {
        for value in [
            "a\nETCD_X=1",
            "a b",
            "a\"b",
            "a'b",
            "$(reboot)",
            "`x`",
            "a;b",
            "a\\b",
            "~/x",
            "a#b",
            "a\rb",
        ] {
            let e = render(&[("ETCD_NAME", value.to_string())]).unwrap_err();
            assert!(
                e.to_string().contains("ETCD_NAME"),
                "failed testcase {value:?}: {e}"
            );
        }
        assert!(render(&[("etcd name", "x".into())]).is_err());
    }

    #[test]
    fn atomic_write_replaces_and_leaves_unchanged_alone() {
        let dir = temp_dir("write");
        let path = dir.join("etcd-peers");
        assert_eq!(write_atomic(&path, "A=1\n").unwrap(), Written::Replaced);
        let first = fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(write_atomic(&path, "A=1\n").unwrap(), Written::Unchanged);
        assert_eq!(
            fs::metadata(&path).unwrap().modified().unwrap(),
            first,
            "unchanged content is not rewritten"
        );
        assert_eq!(write_atomic(&path, "A=2\n").unwrap(), Written::Replaced);
        assert_eq!(fs::read_to_string(&path).unwrap(), "A=2\n");
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failures_leave_the_old_file() {
        let dir = temp_dir("fail");
        assert!(write_atomic(&dir.join("missing/etcd-peers"), "A=1\n").is_err());
        // The target is a directory: rename fails, nothing is left behind.
        let target = dir.join("peers");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("keep"), "x").unwrap();
        assert!(write_atomic(&target, "A=1\n").is_err());
        assert_eq!(fs::read_to_string(target.join("keep")).unwrap(), "x");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temp file left");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_directory_is_created_and_an_unwritable_one_refused() {
        let dir = temp_dir("prepare");
        let path = dir.join("sysconfig/etcd-peers");
        check_writable(&path).unwrap();
        let meta = fs::metadata(dir.join("sysconfig")).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.mode() & 0o777, 0o755);
        assert_eq!(
            fs::read_dir(dir.join("sysconfig")).unwrap().count(),
            0,
            "probe removed"
        );
        fs::write(dir.join("file"), "x").unwrap();
        let e = check_writable(&dir.join("file/etcd-peers")).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    // A FIFO at the file's path hung the run past --timeout (the old content was read whole).
    #[test]
    fn a_fifo_or_a_link_to_dev_zero_is_not_read() {
        let dir = temp_dir("special");
        let fifo = dir.join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let zero = dir.join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        for path in [fifo, zero] {
            let (done, wait) = std::sync::mpsc::channel();
            let p = path.clone();
            std::thread::spawn(move || done.send(write_atomic(&p, "A=1\n").is_ok()));
            let ok = wait
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("write_atomic hung on {}", path.display()));
            assert!(ok);
            assert_eq!(fs::read_to_string(&path).unwrap(), "A=1\n");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_existing_files_mode_and_owner_are_kept() {
        let dir = temp_dir("owner");
        let path = dir.join("etcd-peers");
        fs::write(&path, "A=1\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        // Tests run as root in CI; elsewhere chown to another owner is refused, so keep ours.
        let owner = std::os::unix::fs::chown(&path, Some(4321), Some(4322))
            .map_or_else(|_| fs::metadata(&path).unwrap().uid(), |()| 4321);
        assert_eq!(write_atomic(&path, "A=2\n").unwrap(), Written::Replaced);
        let meta = fs::metadata(&path).unwrap();
        assert_eq!((meta.mode() & 0o7777, meta.uid()), (0o640, owner));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_previous_file_tells_whether_this_instance_was_a_member() {
        let dir = temp_dir("previous");
        let path = dir.join("etcd-peers");
        let cases = [
            (None, "i-1", PreviousFile::NotAMember, "no file"),
            (
                Some("ETCD_NAME=i-1\nETCD_INITIAL_CLUSTER_STATE=existing\nETCD_INITIAL_CLUSTER=i-1=http://a:2380,i-2=http://b:2380\n"),
                "i-1",
                PreviousFile::Member {
                    initial_cluster: "i-1=http://a:2380,i-2=http://b:2380".into(),
                },
                "a join or a reboot",
            ),
            (
                Some("ETCD_NAME=i-1\nETCD_INITIAL_CLUSTER_STATE=existing\n"),
                "i-2",
                PreviousFile::NotAMember,
                "another instance's file (an AMI bake)",
            ),
            (
                Some("ETCD_NAME=i-1\nETCD_PROXY=on\n"),
                "i-1",
                PreviousFile::NotAMember,
                "a proxy's file",
            ),
            // Regression (simulation K1, K3): a member of the first bootstrap keeps its `new`
            // file until its first reboot; wiped before that with its peers out of reach, it
            // bootstrapped a second cluster.
            (
                Some("ETCD_NAME=i-1\nETCD_INITIAL_CLUSTER_STATE=new\nETCD_INITIAL_CLUSTER=i-1=http://a:2380\n"),
                "i-1",
                PreviousFile::Bootstrap {
                    initial_cluster: "i-1=http://a:2380".into(),
                    data_fingerprint: None,
                },
                "a bootstrap's member",
            ),
            (
                Some(
                    "# header\n# etcd's data directory before it first ran: absent, parent 1:2:3.4\n\
                     ETCD_NAME=i-1\nETCD_INITIAL_CLUSTER_STATE=new\n",
                ),
                "i-1",
                PreviousFile::Bootstrap {
                    initial_cluster: String::new(),
                    data_fingerprint: Some("absent, parent 1:2:3.4".into()),
                },
                "a bootstrap's member, with its data directory's fingerprint",
            ),
        ];
        for (content, instance, expected, what) in cases {
            let _ = fs::remove_file(&path);
            if let Some(content) = content {
                fs::write(&path, content).unwrap();
            }
            assert_eq!(
                previous_file(&path, instance),
                expected,
                "failed testcase: {what}"
            );
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_last_run_names_its_instance_and_its_peers() {
        let member = "# Written by etcd-discovery\nETCD_NAME=i-1\nETCD_INITIAL_CLUSTER_STATE=existing\nETCD_INITIAL_CLUSTER=i-1=http://a:2380,i-2=http://b:2380,i-2=http://b2:2380\n";
        let proxy = "ETCD_NAME=i-9\nETCD_PROXY=on\nETCD_INITIAL_CLUSTER=i-1=http://a:2380\nETCD_ENDPOINTS=http://a:2379,http://b:2379\n";
        let cases: [(&str, Option<LastRun>); 5] = [
            (
                member,
                Some(LastRun {
                    name: "i-1".into(),
                    proxy: false,
                    bootstrap: false,
                    peer_urls: vec![
                        "http://a:2380".into(),
                        "http://b:2380".into(),
                        "http://b2:2380".into(),
                    ],
                    endpoints: vec![],
                }),
            ),
            (
                proxy,
                Some(LastRun {
                    name: "i-9".into(),
                    proxy: true,
                    bootstrap: false,
                    peer_urls: vec!["http://a:2380".into()],
                    endpoints: vec!["http://a:2379".into(), "http://b:2379".into()],
                }),
            ),
            (
                "ETCD_NAME=i-2\nETCD_INITIAL_CLUSTER_STATE=new\nETCD_INITIAL_CLUSTER=i-2=http://b:2380\n",
                Some(LastRun {
                    name: "i-2".into(),
                    proxy: false,
                    bootstrap: true,
                    peer_urls: vec!["http://b:2380".into()],
                    endpoints: vec![],
                }),
            ),
            ("ETCD_NAME=\nETCD_INITIAL_CLUSTER=i-1=http://a:2380\n", None),
            ("# nothing\n", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_last_run(text), expected, "failed testcase: {text}");
        }
    }
}
