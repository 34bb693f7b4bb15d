//! Issue 16: the Debian package. Builds it (`packaging/build-deb`), installs it with `dpkg -i`, checks
//! what it put where and the `natter` user it made, starts `natter serve --config
//! /etc/natter/natter.toml` as that user (without systemd, which a test machine may not run) and talks to
//! it, scores the unit with `systemd-analyze security --offline`, and purges it again.
//!
//! It installs into the real system, so it needs root (or sudo without a password); it says so and fails
//! rather than skip.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::json;

mod support;

use support::{Raw, Served};

/// Runs a command as root (through sudo when the test runs as another user).
fn root(program: &str, args: &[&str]) -> Output {
    let uid = Command::new("id").arg("-u").output().unwrap();
    let mut cmd = if String::from_utf8_lossy(&uid.stdout).trim() == "0" {
        Command::new(program)
    } else {
        let mut sudo = Command::new("sudo");
        sudo.args(["-n", program]);
        sudo
    };
    let out = cmd.args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {program} (this test installs a package: it needs root or sudo): {e}")
    });
    out
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn the_debian_package_installs_a_hardened_service_that_starts() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let built = Command::new(repo.join("packaging/build-deb"))
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let deb = ok(built, "packaging/build-deb")
        .lines()
        .rfind(|l| l.ends_with(".deb"))
        .expect("cargo deb names the package it made")
        .trim()
        .to_owned();
    let deb = repo.join(deb);
    // A package left by an earlier run that failed half way is purged first.
    root("dpkg", &["--purge", "natter"]);
    ok(
        root("dpkg", &["-i", deb.to_str().unwrap()]),
        "dpkg -i natter",
    );
    let purge = scopeguard(|| {
        root("dpkg", &["--purge", "natter"]);
    });

    // The files, where Debian keeps them.
    for file in [
        "/usr/bin/natter",
        "/etc/natter/natter.toml",
        "/usr/lib/systemd/system/natter.service",
        "/usr/share/man/man1/natter.1.gz",
        "/usr/share/man/man1/natter-serve.1.gz",
        "/usr/share/bash-completion/completions/natter",
        "/usr/share/zsh/vendor-completions/_natter",
        "/usr/share/fish/vendor_completions.d/natter.fish",
        "/usr/share/doc/natter/OPERATIONS.md.gz",
    ] {
        assert!(Path::new(file).exists(), "{file} is not installed");
    }
    // The system user, owning the data directory; the config readable by it, not by everyone.
    let user = ok(
        Command::new("getent")
            .args(["passwd", "natter"])
            .output()
            .unwrap(),
        "getent passwd natter",
    );
    assert!(
        user.contains(":/var/lib/natter:") && user.trim_end().ends_with("nologin"),
        "{user}"
    );
    let owners = ok(
        Command::new("stat")
            .args([
                "-c",
                "%U:%G %a %n",
                "/var/lib/natter",
                "/etc/natter/natter.toml",
            ])
            .output()
            .unwrap(),
        "stat",
    );
    assert!(
        owners.contains("natter:natter 750 /var/lib/natter"),
        "{owners}"
    );
    assert!(
        owners.contains("root:natter 640 /etc/natter/natter.toml"),
        "{owners}"
    );
    ok(
        Command::new("/usr/bin/natter")
            .args(["config", "check", "/etc/natter/natter.toml"])
            .output()
            .unwrap(),
        "natter config check /etc/natter/natter.toml",
    );

    // The service's command line, as the natter user, on a free port (the flag beats the file).
    // setpriv execs natter itself (runuser would stay between, and a kill would miss natter).
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=natter",
        "--regid=natter",
        "--clear-groups",
        "/usr/bin/natter",
        "serve",
        "--config",
        "/etc/natter/natter.toml",
        "--listen",
        "127.0.0.1:0",
        "--web",
        "none",
        "--irc",
        "none",
    ])
    .env("LANG", "C.UTF-8");
    let server = Served::start(cmd);
    let addr = server.addr("natter: listening on");
    assert!(
        server
            .announced
            .iter()
            .any(|l| l.contains("history in /var/lib/natter/natter.db")),
        "{:?}",
        server.announced
    );
    let mut alice = Raw::join(addr, "alice").await;
    alice
        .send(json!({"type":"say","text":"installed","id":"1"}))
        .await;
    assert_eq!(alice.next_of("ack").await["seq"], 1);
    drop(server);

    // The unit's exposure, as `systemd-analyze security` scores it (docs/OPERATIONS.md reports it).
    let analyzed = Command::new("systemd-analyze")
        .args([
            "security",
            "--offline=true",
            "--no-pager",
            "/usr/lib/systemd/system/natter.service",
        ])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&analyzed.stdout);
    let score: f64 = report
        .lines()
        .find_map(|l| {
            l.strip_prefix("→ Overall exposure level for natter.service: ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no overall exposure level in:\n{report}"));
    println!("systemd-analyze security: {score}");
    assert!(score <= 2.0, "the unit's exposure is {score}:\n{report}");

    drop(purge);
    assert!(!Path::new("/usr/bin/natter").exists());
    assert!(!Path::new("/var/lib/natter").exists(), "purge keeps data");
    let gone = Command::new("getent")
        .args(["passwd", "natter"])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "purge keeps the user");
}

/// Runs `f` when dropped (the package is purged even when an assertion fails).
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}
