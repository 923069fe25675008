//! The environment file etcd reads through systemd's `EnvironmentFile=` (and that `sh` can
//! source). `render` is pure and refuses any value that could break either reader;
//! `write_atomic` replaces the file whole or not at all, and leaves it alone when unchanged.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{snippet, Error, Result};

/// Characters that mean the same to systemd and to `sh` unquoted, and cover URLs, instance ids
/// and lists: no quotes, spaces, `$`, backslashes, `#`, `~` or line breaks.
fn is_safe_value_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._-:/,=@%+[]".contains(c)
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

/// What `write_atomic` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    Replaced,
    Unchanged,
}

/// Fails early, before any membership change, when the file's directory is missing.
pub fn check_directory(path: &Path) -> Result<()> {
    let dir = parent(path);
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(io_error(
            path,
            format!("{} is not a directory", dir.display()),
        )),
        Err(e) => Err(io_error(path, format!("directory {}: {e}", dir.display()))),
    }
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
    }
}

/// Writes `content` to `path` atomically: temp file in the same directory, fsync, rename,
/// fsync the directory. On failure the old file is untouched and the temp file removed.
pub fn write_atomic(path: &Path, content: &str) -> Result<Written> {
    if fs::read(path).is_ok_and(|old| old == content.as_bytes()) {
        return Ok(Written::Unchanged);
    }
    let dir = parent(path);
    let name = path
        .file_name()
        .ok_or_else(|| io_error(path, "not a file name".into()))?;
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temp)?;
        file.write_all(content.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        File::open(dir)?.sync_all()
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
        assert!(check_directory(&dir.join("missing/etcd-peers")).is_err());
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
}
