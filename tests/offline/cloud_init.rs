//! The README's "Install on AWS" files are real files: the cloud-config snippets must be
//! valid YAML that carry the unit files verbatim, the units must have the keys systemd needs,
//! the README must show the snippets as they are, and the installer must refuse a binary
//! whose checksum does not match.

use std::fs;
use std::path::Path;
use std::process::Command;

use yaml_rust2::YamlLoader;

const DIR: &str = "tests/cloud-init";

fn read(name: &str) -> String {
    fs::read_to_string(Path::new(DIR).join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// (section, key, value) of every setting in an INI-style systemd unit; panics on a line that
/// is neither a comment, a section nor a key=value.
fn unit(name: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut settings = Vec::new();
    for line in read(name)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_string();
        } else {
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{name}: not key=value: {line}"));
            assert!(!section.is_empty(), "{name}: {key} outside a section");
            settings.push((section.clone(), key.to_string(), value.to_string()));
        }
    }
    settings
}

fn has(settings: &[(String, String, String)], section: &str, key: &str, value: &str) -> bool {
    settings
        .iter()
        .any(|(s, k, v)| s == section && k == key && v == value)
}

#[test]
fn units_have_what_systemd_needs() {
    for name in ["etcd-discovery.service", "etcd-discovery-proxy.service"] {
        let u = unit(name);
        for (section, key, value) in [
            ("Service", "Type", "oneshot"),
            ("Service", "RemainAfterExit", "yes"),
            ("Service", "Restart", "on-failure"),
            ("Service", "RestartPreventExitStatus", "1 2"),
        ] {
            assert!(
                has(&u, section, key, value),
                "{name}: [{section}] {key}={value}"
            );
        }
        assert!(
            u.iter().any(|(s, k, v)| s == "Service"
                && k == "ExecStart"
                && v.starts_with("/usr/local/bin/etcd-discovery ")),
            "{name}"
        );
    }
    assert!(has(
        &unit("etcd-discovery.service"),
        "Unit",
        "Before",
        "etcd.service"
    ));
    assert!(has(
        &unit("etcd-discovery-proxy.service"),
        "Unit",
        "Before",
        "etcd-gateway.service"
    ));
    let dropin = unit("30-etcd-peers.conf");
    assert!(has(
        &dropin,
        "Service",
        "EnvironmentFile",
        "/etc/sysconfig/etcd-peers"
    ));
    assert!(has(&dropin, "Unit", "Requires", "etcd-discovery.service"));
    let gateway = unit("etcd-gateway.service");
    assert!(has(
        &gateway,
        "Service",
        "EnvironmentFile",
        "/etc/sysconfig/etcd-peers"
    ));
    assert!(gateway
        .iter()
        .any(|(_, k, v)| k == "ExecStart" && v.contains("--endpoints=${ETCD_ENDPOINTS}")));
}

#[test]
fn snippets_are_cloud_config_carrying_the_files_verbatim() {
    let cases = [
        (
            "master.yaml",
            vec![
                ("/usr/local/sbin/install-etcd-discovery", "install.sh"),
                (
                    "/etc/systemd/system/etcd-discovery.service",
                    "etcd-discovery.service",
                ),
                (
                    "/etc/systemd/system/etcd.service.d/30-etcd-peers.conf",
                    "30-etcd-peers.conf",
                ),
            ],
        ),
        (
            "proxy.yaml",
            vec![
                ("/usr/local/sbin/install-etcd-discovery", "install.sh"),
                (
                    "/etc/systemd/system/etcd-discovery.service",
                    "etcd-discovery-proxy.service",
                ),
                (
                    "/etc/systemd/system/etcd-gateway.service",
                    "etcd-gateway.service",
                ),
            ],
        ),
    ];
    for (snippet, files) in cases {
        let text = read(snippet);
        assert!(
            text.starts_with("#cloud-config\n"),
            "{snippet}: the header cloud-init looks for"
        );
        let docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{snippet}: {e}"));
        let written = docs[0]["write_files"]
            .as_vec()
            .unwrap_or_else(|| panic!("{snippet}: write_files"));
        assert_eq!(written.len(), files.len(), "{snippet}");
        for (entry, (path, file)) in written.iter().zip(files) {
            assert_eq!(entry["path"].as_str(), Some(path), "{snippet}");
            assert_eq!(
                entry["content"].as_str(),
                Some(read(file).as_str()),
                "{snippet}: {path} differs from {file}"
            );
        }
        let runcmd = format!("{:?}", docs[0]["runcmd"]);
        assert!(
            runcmd.contains("install-etcd-discovery"),
            "{snippet}: runs the installer"
        );
    }
}

#[test]
fn readme_shows_the_snippets_as_they_are() {
    let readme = fs::read_to_string("README.md").unwrap();
    for snippet in ["master.yaml", "proxy.yaml"] {
        assert!(
            readme.contains(&read(snippet)),
            "README.md does not show tests/cloud-init/{snippet} as it is"
        );
    }
}

#[test]
fn installer_checks_the_checksum_and_refuses_a_mismatch() {
    let base = std::env::temp_dir().join(format!("etcd-discovery-install-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    let (release, prefix) = (base.join("release"), base.join("bin"));
    fs::create_dir_all(&release).unwrap();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        other => panic!("no release name for {other}"),
    };
    let name = format!("etcd-discovery-9.9.9-{arch}-linux-musl");
    let sh = |script: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(&release)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    fs::write(
        release.join(&name),
        "#!/bin/sh\necho etcd-discovery 9.9.9\n",
    )
    .unwrap();
    sh(&format!(
        "chmod +x {name} && gzip -kn {name} && sha256sum {name} {name}.gz > SHA256SUMS"
    ));
    let install = || {
        Command::new("sh")
            .arg(Path::new(DIR).join("install.sh"))
            .env("RELEASE_URL", format!("file://{}", release.display()))
            .env("VERSION", "9.9.9")
            .env("PREFIX", &prefix)
            .output()
            .unwrap()
    };
    let out = install();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "etcd-discovery 9.9.9"
    );
    assert!(prefix.join("etcd-discovery").exists());

    fs::remove_file(prefix.join("etcd-discovery")).unwrap();
    sh(&format!("printf 'tampered' >> {name}.gz"));
    let out = install();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("checksum mismatch"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !prefix.join("etcd-discovery").exists(),
        "nothing installed on a mismatch"
    );
    fs::remove_dir_all(&base).unwrap();
}
