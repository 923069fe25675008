//! The README's "Install on AWS" files are real files: the cloud-config snippets must be
//! valid YAML that carry the unit files verbatim, the units must have the keys the boot
//! wiring needs, the README must show the snippets as they are, and the installer must refuse
//! a binary whose digest does not match the one pinned in the user data. That they boot is
//! tests/boot's job (`./build.sh boot`).

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

/// The value of `key` in `section`, when set once.
fn value<'a>(
    settings: &'a [(String, String, String)],
    section: &str,
    key: &str,
) -> Option<&'a str> {
    settings
        .iter()
        .find(|(s, k, _)| s == section && k == key)
        .map(|(_, _, v)| v.as_str())
}

#[test]
fn units_have_what_systemd_needs() {
    // The tool's units are oneshots the service they feed starts before every start of its
    // own; they never restart themselves (the service's restart does), and are sandboxed.
    for name in ["etcd-discovery.service", "etcd-discovery-proxy.service"] {
        let u = unit(name);
        for (section, key, value) in [
            ("Service", "Type", "oneshot"),
            ("Service", "ConfigurationDirectory", "sysconfig"),
            ("Service", "ReadWritePaths", "/etc/sysconfig"),
            ("Service", "ProtectSystem", "strict"),
            ("Service", "NoNewPrivileges", "yes"),
        ] {
            assert!(
                has(&u, section, key, value),
                "{name}: [{section}] {key}={value}"
            );
        }
        assert_eq!(value(&u, "Service", "Restart"), None, "{name}");
        assert_eq!(
            value(&u, "Service", "RemainAfterExit"),
            None,
            "{name}: runs at every start"
        );
        let exec = value(&u, "Service", "ExecStart").unwrap_or_default();
        assert!(exec.starts_with("/usr/local/bin/etcd-discovery "), "{name}");
        assert!(
            exec.contains("-environment-file=/etc/sysconfig/etcd-peers"),
            "{name}"
        );
        assert!(
            exec.contains("-etcd-client-scheme=http") && exec.contains("-etcd-peer-scheme=http"),
            "{name}: http, or etcd cannot start without certificates"
        );
    }
    // etcd (drop-in) and the gateway: the tool before every start, any failure retried by the
    // service's own restart, without a start limit.
    for name in ["30-etcd-discovery.conf", "etcd-gateway.service"] {
        let u = unit(name);
        for (section, key, value) in [
            ("Unit", "StartLimitIntervalSec", "0"),
            (
                "Service",
                "ExecStartPre",
                "+/usr/bin/systemctl start etcd-discovery.service",
            ),
            ("Service", "EnvironmentFile", "-/etc/sysconfig/etcd-peers"),
            ("Service", "RestartSec", "15"),
        ] {
            assert!(
                has(&u, section, key, value),
                "{name}: [{section}] {key}={value}"
            );
        }
        assert_eq!(
            value(&u, "Unit", "Requires"),
            None,
            "{name}: a failed dependency is never started again"
        );
    }
    // etcd exits 0 when it hears its member was removed; only `always` runs the tool again
    // (rule 15; the boot test's scenario 6). The gateway's exit 0 is a stop.
    assert_eq!(
        value(&unit("30-etcd-discovery.conf"), "Service", "Restart"),
        Some("always")
    );
    assert_eq!(
        value(&unit("etcd-gateway.service"), "Service", "Restart"),
        Some("on-failure")
    );
    // Rule 15: a removed member's data is moved aside within the data directory the tool is
    // told of, so the master's unit lets it write exactly there (`-`: a directory that does
    // not exist yet is no error), and lets root into etcd's 0700 directory to do it.
    let master = unit("etcd-discovery.service");
    let exec = value(&master, "Service", "ExecStart").unwrap_or_default();
    assert!(
        exec.ends_with(" --etcd-data-dir=/var/lib/etcd/default"),
        "{exec}"
    );
    assert!(has(
        &master,
        "Service",
        "ReadWritePaths",
        "-/var/lib/etcd/default"
    ));
    assert!(has(
        &master,
        "Service",
        "CapabilityBoundingSet",
        "CAP_DAC_READ_SEARCH CAP_DAC_OVERRIDE CAP_CHOWN"
    ));
    // Issue 15: a restore gives the restored files to etcd (chown, which ~@privileged denies
    // unless allowed back after it), with the bucket from the snapshot unit's file.
    assert!(has(&master, "Service", "SystemCallFilter", "@chown"));
    assert!(has(
        &master,
        "Service",
        "EnvironmentFile",
        "-/etc/sysconfig/etcd-discovery-snapshot"
    ));
    assert!(has(
        &unit("30-etcd-discovery.conf"),
        "Unit",
        "Wants",
        "network-online.target etcd-discovery-promote.service"
    ));
    let promote = unit("etcd-discovery-promote.service");
    for (section, key, value) in [
        ("Unit", "BindsTo", "etcd.service"),
        ("Unit", "After", "etcd.service"),
        ("Service", "Restart", "on-failure"),
        ("Service", "RestartPreventExitStatus", "1 2"),
    ] {
        assert!(
            has(&promote, section, key, value),
            "promote: [{section}] {key}={value}"
        );
    }
    assert!(has(
        &unit("etcd-discovery-reconcile.timer"),
        "Install",
        "WantedBy",
        "timers.target"
    ));
    // Issue 15: the snapshot timer, on every member; the bucket comes from a file of its own.
    let snapshot = unit("etcd-discovery-snapshot.service");
    for (section, key, value) in [
        ("Unit", "Requisite", "etcd.service"),
        ("Service", "Type", "oneshot"),
        (
            "Service",
            "EnvironmentFile",
            "-/etc/sysconfig/etcd-discovery-snapshot",
        ),
    ] {
        assert!(
            has(&snapshot, section, key, value),
            "snapshot: [{section}] {key}={value}"
        );
    }
    assert!(snapshot
        .iter()
        .any(|(_, k, v)| k == "ExecStart"
            && v.starts_with("/usr/local/bin/etcd-discovery snapshot ")));
    let timer = unit("etcd-discovery-snapshot.timer");
    assert!(has(&timer, "Install", "WantedBy", "timers.target"));
    assert!(has(&timer, "Timer", "OnUnitActiveSec", "1h"));
    assert!(has(
        &unit("etcd-discovery-refresh.timer"),
        "Timer",
        "Unit",
        "etcd-discovery.service"
    ));
    assert!(has(
        &unit("etcd-gateway-restart.path"),
        "Path",
        "PathChanged",
        "/etc/sysconfig/etcd-peers"
    ));
    assert!(unit("etcd-gateway.service")
        .iter()
        .any(|(_, k, v)| k == "ExecStart" && v.contains("--endpoints=${ETCD_ENDPOINTS}")));
}

#[test]
fn snippets_are_cloud_config_carrying_the_files_verbatim() {
    let master_units = [
        (
            "/etc/systemd/system/etcd-discovery.service",
            "etcd-discovery.service",
        ),
        (
            "/etc/systemd/system/etcd.service.d/30-etcd-discovery.conf",
            "30-etcd-discovery.conf",
        ),
        (
            "/etc/systemd/system/etcd-discovery-promote.service",
            "etcd-discovery-promote.service",
        ),
        (
            "/etc/systemd/system/etcd-discovery-reconcile.service",
            "etcd-discovery-reconcile.service",
        ),
        (
            "/etc/systemd/system/etcd-discovery-reconcile.timer",
            "etcd-discovery-reconcile.timer",
        ),
    ];
    let installer = ("/usr/local/sbin/install-etcd-discovery", "install.sh");
    let policy = ("/usr/sbin/policy-rc.d", "policy-rc.d");
    let cases = [
        (
            "master.yaml",
            [vec![policy, installer], master_units.to_vec()].concat(),
        ),
        (
            "proxy.yaml",
            vec![
                policy,
                installer,
                (
                    "/etc/systemd/system/etcd-discovery.service",
                    "etcd-discovery-proxy.service",
                ),
                (
                    "/etc/systemd/system/etcd-gateway.service",
                    "etcd-gateway.service",
                ),
                (
                    "/etc/systemd/system/etcd-discovery-refresh.timer",
                    "etcd-discovery-refresh.timer",
                ),
                (
                    "/etc/systemd/system/etcd-gateway-restart.path",
                    "etcd-gateway-restart.path",
                ),
                (
                    "/etc/systemd/system/etcd-gateway-restart.service",
                    "etcd-gateway-restart.service",
                ),
            ],
        ),
        (
            "master-al2023.yaml",
            [
                vec![
                    ("/usr/local/sbin/install-etcd", "install-etcd.sh"),
                    installer,
                    ("/etc/systemd/system/etcd.service", "etcd-al2023.service"),
                ],
                master_units.to_vec(),
            ]
            .concat(),
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
        // The placeholders the operator (and the boot test) replaces.
        assert!(
            text.contains(
                "RELEASE_URL=https://github.com/OWNER/etcd-discovery/releases/download/v0.1.0"
            ) && text.contains(
                "SHA256_X86_64=paste-sha256-of-etcd-discovery-0.1.0-x86_64-linux-musl.gz"
            ),
            "{snippet}: the release URL and the pinned digest's placeholder"
        );
        if text.contains("policy-rc.d") {
            assert!(
                runcmd.contains("policy-rc.d"),
                "{snippet}: runcmd lifts the policy-rc.d it wrote"
            );
        }
    }
}

#[test]
fn readme_shows_the_snippets_as_they_are() {
    let readme = fs::read_to_string("README.md").unwrap();
    for snippet in ["master.yaml", "proxy.yaml", "master-al2023.yaml"] {
        assert!(
            readme.contains(&read(snippet)),
            "README.md does not show tests/cloud-init/{snippet} as it is"
        );
    }
}

#[test]
fn installer_checks_the_pinned_digest_and_refuses_a_mismatch() {
    let base = std::env::temp_dir().join(format!("etcd-discovery-install-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    let (release, prefix) = (base.join("release"), base.join("bin"));
    fs::create_dir_all(&release).unwrap();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "X86_64",
        "aarch64" => "AARCH64",
        other => panic!("no release name for {other}"),
    };
    let name = format!(
        "etcd-discovery-9.9.9-{}-linux-musl",
        arch.to_ascii_lowercase()
    );
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
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    fs::write(
        release.join(&name),
        "#!/bin/sh\necho etcd-discovery 9.9.9\n",
    )
    .unwrap();
    let digest = sh(&format!(
        "chmod +x {name} && gzip -kn {name} && sha256sum {name}.gz | cut -d' ' -f1"
    ));
    // No SHA256SUMS on the server: the digest comes from the user data only.
    let install = |digest: &str| {
        Command::new("sh")
            .arg(Path::new(DIR).join("install.sh"))
            .env("RELEASE_URL", format!("file://{}", release.display()))
            .env("VERSION", "9.9.9")
            .env(format!("SHA256_{arch}"), digest)
            .env("PREFIX", &prefix)
            .output()
            .unwrap()
    };
    let out = install(&digest);
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

    // The user data's placeholder, left in place: refused before anything is downloaded.
    let out = install(&format!("paste-sha256-of-{name}.gz"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no pinned digest"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    sh(&format!("printf 'tampered' >> {name}.gz"));
    let out = install(&digest);
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

#[test]
fn release_workflow_publishes_what_the_snippets_download() {
    // The snippets download from the release a version tag publishes: the workflow must build
    // with `./build.sh dist`, upload all of dist/ under the tag, and pin its actions to commits.
    let workflow = fs::read_to_string(".github/workflows/release.yml").unwrap();
    let yaml = YamlLoader::load_from_str(&workflow).unwrap();
    assert_eq!(
        yaml[0]["on"]["push"]["tags"][0].as_str(),
        Some("v*"),
        "runs on version tags"
    );
    let steps = format!("{:?}", yaml[0]["jobs"]["release"]["steps"]);
    for expected in [
        "./build.sh dist",
        "gh release create \\\"$TAG\\\" dist/*",
        "sha256sum -c SHA256SUMS",
    ] {
        assert!(steps.contains(expected), "the workflow runs {expected}");
    }
    for step in yaml[0]["jobs"]["release"]["steps"].as_vec().unwrap() {
        if let Some(uses) = step["uses"].as_str() {
            let (_, commit) = uses.split_once('@').unwrap();
            assert!(
                commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
                "{uses}: pinned to a full commit"
            );
        }
    }
    let version = fs::read_to_string("Cargo.toml")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap()
        .to_string();
    let url = format!(
        "RELEASE_URL=https://github.com/OWNER/etcd-discovery/releases/download/v{version}\""
    );
    for snippet in ["master.yaml", "master-al2023.yaml", "proxy.yaml"] {
        assert!(read(snippet).contains(&url), "{snippet}: {url}");
    }
    let readme = fs::read_to_string("README.md").unwrap();
    assert!(readme.contains(&format!(
        "https://github.com/OWNER/etcd-discovery/releases/download/v{version}/etcd-discovery-{version}-x86_64-linux-musl.gz"
    )));
}
