//! Shared files with the real binaries: `natter send` and `natter get` end to end, and an upload that
//! resumes after the server was killed with SIGKILL.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Output};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

mod support;

use support::natter;

fn start(data: &Path) -> (Child, SocketAddr) {
    let mut cmd = natter();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data);
    support::spawn_server(cmd)
}

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[2] ^ seed)
        .collect()
}

fn run(args: &[&str], server: SocketAddr) -> Output {
    natter()
        .args(args)
        .args(["--server", &server.to_string()])
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "natter failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn natter_send_and_natter_get_move_files_whole() {
    let root = tempfile::tempdir().unwrap();
    let (mut server, addr) = start(&root.path().join("server"));
    let big = root.path().join("big.bin");
    let bytes = content(3 * 256 * 1024 + 11, 5);
    std::fs::write(&big, &bytes).unwrap();
    let chinese = root.path().join("报告.txt");
    std::fs::write(&chinese, "你好，文件".as_bytes()).unwrap();
    let empty = root.path().join("empty");
    std::fs::write(&empty, b"").unwrap();

    // One line per file on stdout: its id, a tab, its name.
    let sent = stdout(&run(
        &[
            "send",
            "--name",
            "alice",
            big.to_str().unwrap(),
            chinese.to_str().unwrap(),
            empty.to_str().unwrap(),
        ],
        addr,
    ));
    let lines: Vec<(u64, &str)> = sent
        .lines()
        .map(|l| {
            let (id, name) = l.split_once('\t').unwrap();
            (id.parse().unwrap(), name)
        })
        .collect();
    assert_eq!(
        lines.iter().map(|l| l.1).collect::<Vec<_>>(),
        ["big.bin", "报告.txt", "empty"],
        "{sent}"
    );

    // Into the downloads directory, never overwriting: the second copy gets a name of its own.
    let downloads = root.path().join("downloads");
    let get = |id: u64, extra: &[&str]| {
        let id = id.to_string();
        let mut args = vec!["get", &id, "--name", "bob", "--guest", "--downloads"];
        args.push(downloads.to_str().unwrap());
        args.extend(extra);
        run(&args, addr)
    };
    let first = stdout(&get(lines[0].0, &[]));
    assert_eq!(first.trim(), downloads.join("big.bin").to_str().unwrap());
    assert_eq!(std::fs::read(downloads.join("big.bin")).unwrap(), bytes);
    let second = stdout(&get(lines[0].0, &[]));
    assert_eq!(
        second.trim(),
        downloads.join("big (1).bin").to_str().unwrap()
    );
    stdout(&get(lines[1].0, &[]));
    assert_eq!(
        std::fs::read_to_string(downloads.join("报告.txt")).unwrap(),
        "你好，文件"
    );
    stdout(&get(lines[2].0, &[]));
    assert_eq!(std::fs::read(downloads.join("empty")).unwrap(), b"");
    // -o writes exactly there; no partial file is left anywhere.
    let exact = root.path().join("exact.bin");
    stdout(&get(lines[0].0, &["-o", exact.to_str().unwrap()]));
    assert_eq!(std::fs::read(&exact).unwrap(), bytes);
    let leftovers: Vec<_> = std::fs::read_dir(&downloads)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Failures: one line on stderr and a non-zero exit.
    let missing = get(9999, &[]);
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no shared file 9999"), "{err}");
    let nothing = run(&["send", "--name", "alice", "/no/such/file"], addr);
    assert!(!nothing.status.success());
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("/no/such/file"));
    server.kill().unwrap();
    server.wait().unwrap();
}

async fn line(r: &mut BufReader<TcpStream>) -> Value {
    let mut line = String::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), r.read_line(&mut line))
        .await
        .expect("an answer in time")
        .unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

/// A transfer connection with its request line sent.
async fn open_transfer(addr: SocketAddr, request: Value) -> BufReader<TcpStream> {
    let mut stream = BufReader::new(TcpStream::connect(addr).await.unwrap());
    let line = format!("{request}\n");
    stream.get_mut().write_all(line.as_bytes()).await.unwrap();
    stream
}

/// Signs in as the guest `alice` and offers `bytes`: the `upload_ready` answer.
async fn offer(addr: SocketAddr, bytes: &[u8]) -> (BufReader<TcpStream>, Value) {
    use sha2::Digest;
    let sha: String = sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut chat = BufReader::new(TcpStream::connect(addr).await.unwrap());
    let frames = [
        json!({"type":"hello","name":"alice"}),
        json!({"type":"offer","name":"big.bin","size":bytes.len(),"sha256":sha,"id":"o"}),
    ];
    for f in frames {
        chat.get_mut()
            .write_all(format!("{f}\n").as_bytes())
            .await
            .unwrap();
    }
    loop {
        let f = line(&mut chat).await;
        if f["id"] == "o" {
            assert_eq!(f["type"], "upload_ready", "{f}");
            return (chat, f);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_resumes_after_the_server_is_killed() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("server");
    let (mut server, addr) = start(&data);
    let bytes = content(4 << 20, 9);
    let (_chat, ready) = offer(addr, &bytes).await;
    let half = bytes.len() / 2 + 12345;
    let mut upload = open_transfer(addr, json!({"type":"upload","token":ready["token"]})).await;
    assert_eq!(line(&mut upload).await["offset"], 0);
    upload.get_mut().write_all(&bytes[..half]).await.unwrap();
    // The barrier: the server has written every byte sent (the partial file is that long).
    let partial = std::fs::read_dir(data.join("files/partial"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_none())
        .expect("an upload in progress");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::metadata(&partial).unwrap().len() < half as u64 {
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not write what it got"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();

    let (mut server, addr) = start(&data);
    let (mut chat, ready) = offer(addr, &bytes).await;
    assert_eq!(ready["offset"], half, "{ready}");
    let mut upload = open_transfer(addr, json!({"type":"upload","token":ready["token"]})).await;
    assert_eq!(line(&mut upload).await["offset"], half);
    upload.get_mut().write_all(&bytes[half..]).await.unwrap();
    let done = line(&mut upload).await;
    assert_eq!(done["type"], "uploaded", "{done}");
    // What the server keeps is the file, byte for byte.
    let id = done["file"].as_u64().unwrap();
    chat.get_mut()
        .write_all(format!("{}\n", json!({"type":"fetch","file":id,"id":"g"})).as_bytes())
        .await
        .unwrap();
    let ready = loop {
        let f = line(&mut chat).await;
        if f["id"] == "g" {
            break f;
        }
    };
    let mut download = open_transfer(
        addr,
        json!({"type":"download","token":ready["token"],"offset":0}),
    )
    .await;
    assert_eq!(line(&mut download).await["size"], bytes.len());
    let mut got = Vec::new();
    download.read_to_end(&mut got).await.unwrap();
    assert!(got == bytes, "the resumed upload differs from the file");
    server.kill().unwrap();
    server.wait().unwrap();
}

/// `/send` and `/get` in line mode, from a script: the share is a message like any other, the download
/// lands in `--downloads`, and the script's exit waits for both.
#[test]
fn line_mode_sends_and_gets_with_slash_commands() {
    let root = tempfile::tempdir().unwrap();
    let (mut server, addr) = start(&root.path().join("server"));
    let file = root.path().join("notes.txt");
    std::fs::write(&file, "line mode").unwrap();
    let join = |name: &str, script: String| {
        use std::io::Write;
        let mut child = natter()
            .args([
                "join",
                "--plain",
                "--guest",
                "--name",
                name,
                "--server",
                &addr.to_string(),
            ])
            .arg("--downloads")
            .arg(root.path().join("downloads"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = join("alice", format!("/send {}\n", file.display()));
    let said = stdout(&out);
    let shared = said
        .lines()
        .find(|l| l.contains("alice shared notes.txt (9 B) — /get "))
        .unwrap_or_else(|| panic!("no file line in {said:?}"));
    let id: u64 = shared.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        said.contains(&format!("* notes.txt is shared: /get {id}")),
        "{said}"
    );
    let out = join("bob", format!("/get {id}\n"));
    let said = stdout(&out);
    assert!(said.contains("verified"), "{said}");
    assert_eq!(
        std::fs::read_to_string(root.path().join("downloads/notes.txt")).unwrap(),
        "line mode"
    );
    // A file that is not there: said, and the script fails.
    let out = join("carol", "/send /no/such/thing\n".into());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("/no/such/thing"));
    server.kill().unwrap();
    server.wait().unwrap();
}

/// A backup carries the shared files its database knows; restored elsewhere, they download whole.
#[test]
fn shared_files_survive_backup_and_restore() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("server");
    let (mut server, addr) = start(&data);
    let file = root.path().join("keep.bin");
    let bytes = content(700_000, 3);
    std::fs::write(&file, &bytes).unwrap();
    let sent = stdout(&run(
        &["send", "--name", "alice", file.to_str().unwrap()],
        addr,
    ));
    let id = sent.split('\t').next().unwrap().to_owned();
    // `natter backup|restore --data-dir DIR PLACE`, which must succeed.
    let keep = |command: &str, dir: &Path, place: &Path| {
        let out = natter()
            .args([command, "--data-dir"])
            .arg(dir)
            .arg(place)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    // While the server runs.
    let backup = root.path().join("backup");
    keep("backup", &data, &backup);
    server.kill().unwrap();
    server.wait().unwrap();
    let elsewhere = root.path().join("restored");
    keep("restore", &elsewhere, &backup);
    let (mut server, addr) = start(&elsewhere);
    let copy = root.path().join("copy.bin");
    stdout(&run(
        &["get", &id, "--name", "alice", "-o", copy.to_str().unwrap()],
        addr,
    ));
    assert!(std::fs::read(&copy).unwrap() == bytes);
    server.kill().unwrap();
    server.wait().unwrap();
}
