//! `natter bench files`: shared files against a running natter server, measured from the outside.
//!
//! * **Throughput.** A file of `size` random bytes is uploaded and downloaded through natter (the client's
//!   SHA-256 of the file, `offer`, the transfer connection, the server's verification; then `fetch`, the
//!   download and its check), and — in the same run, as the floor — piped raw over a loopback socket into
//!   a file and hashed after, what `nc -l > f; sha256sum f` does.
//! * **Memory.** The server's RSS before and at its peak during the transfers (`--server-pid`).
//! * **Chat beside a transfer.** The latency scenario (one sender at 200 msg/s into a 100-member room) alone,
//!   then again while uploads of the big file run back to back (optionally paced to `--transfer-rate`).
//! * **Many at once.** `concurrent` uploads of `concurrent_size` bytes each, at the same time, each from
//!   its own user; every one must come back `uploaded` (the server verified it) and download identical.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use natter_proto::file::hex;

use crate::BenchError;

/// Bytes per read and write, as natter's client uses.
const CHUNK: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct FilesOptions {
    pub server: String,
    /// The big file's size.
    pub size: u64,
    /// Scratch space for the files (needs about three times `size`).
    pub dir: PathBuf,
    pub server_pid: Option<u32>,
    /// Uploads at once, and the size of each.
    pub concurrent: usize,
    pub concurrent_size: u64,
    /// How long each latency run lasts.
    pub latency_duration: Duration,
    /// Upload pace during the latency run with a transfer, in MiB/s (`None`: as fast as it goes).
    pub transfer_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub seconds: f64,
    pub mib_per_s: f64,
    /// Of the raw pipe's rate (the goal: at least 0.5).
    pub of_raw: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FilesReport {
    pub size: u64,
    pub raw_pipe: Throughput,
    pub upload: Throughput,
    pub download: Throughput,
    pub server_rss_before_mib: Option<f64>,
    pub server_rss_peak_mib: Option<f64>,
    pub chat_p99_alone_us: u64,
    pub chat_p99_with_transfer_us: u64,
    pub chat_lost_with_transfer: u64,
    /// What the uploads beside the chat moved, in MiB/s.
    pub transfer_mib_per_s_during_chat: f64,
    pub concurrent_uploads: usize,
    pub concurrent_size: u64,
    pub concurrent_verified: usize,
    pub concurrent_seconds: f64,
}

/// `len` bytes of xorshift noise (incompressible, and different for every `seed`).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

async fn write_noise(path: &Path, size: u64, seed: u64) -> std::io::Result<()> {
    let mut file = tokio::fs::File::create(path).await?;
    let mut left = size;
    let mut block = 0;
    while left > 0 {
        let n = left.min(8 << 20) as usize;
        file.write_all(&noise(n, seed + block)).await?;
        left -= n as u64;
        block += 1;
    }
    file.flush().await
}

async fn hash_file(path: &Path) -> std::io::Result<String> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut file = std::fs::File::open(path)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 4 * CHUNK];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                return Ok(hex(&hasher.finalize()));
            }
            hasher.update(&buf[..n]);
        }
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Lets the disk catch up (`sync`) before the next part is measured, so one part's writes are not
/// another's latency.
async fn settle() {
    let _ = tokio::process::Command::new("sync").status().await;
}

/// A chat connection of the bench's, as a guest out of the lobby.
struct Session {
    conn: BufReader<TcpStream>,
    next: u64,
}

impl Session {
    async fn open(addr: &str, name: &str) -> Result<Self, BenchError> {
        let stream = crate::connect(addr).await?;
        let mut session = Self {
            conn: BufReader::new(stream),
            next: 0,
        };
        session
            .send(json!({"type":"hello","name":name,"version":1,"lobby":false}))
            .await?;
        loop {
            let frame = session.line().await?;
            match frame["type"].as_str() {
                Some("welcome") => return Ok(session),
                Some("error") => return Err(BenchError::Register(frame.to_string())),
                _ => {}
            }
        }
    }

    async fn send(&mut self, frame: Value) -> Result<(), BenchError> {
        let mut line = serde_json::to_vec(&frame).unwrap_or_default();
        line.push(b'\n');
        Ok(self.conn.get_mut().write_all(&line).await?)
    }

    async fn line(&mut self) -> Result<Value, BenchError> {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(120), self.conn.read_line(&mut line))
            .await
            .map_err(|_| BenchError::Timeout("the server's answer".into()))??;
        if n == 0 {
            return Err(BenchError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        serde_json::from_str(&line).map_err(|e| BenchError::Register(format!("{line:?}: {e}")))
    }

    /// Sends `frame` with a fresh id and returns the frame that answers it (others are skipped).
    async fn ask(&mut self, mut frame: Value) -> Result<Value, BenchError> {
        self.next += 1;
        let id = format!("b{}", self.next);
        frame["id"] = json!(id);
        self.send(frame).await?;
        loop {
            let answer = self.line().await?;
            if answer["id"] == id.as_str() && answer["type"] != "ack" {
                return Ok(answer);
            }
        }
    }

    async fn join(&mut self, room: &str) -> Result<(), BenchError> {
        self.send(json!({"type":"join","room":room})).await?;
        self.ask(json!({"type":"ping"})).await.map(drop)
    }
}

/// A transfer connection with its request line sent and its first answer read.
async fn transfer(addr: &str, request: Value) -> Result<(BufReader<TcpStream>, Value), BenchError> {
    let stream = crate::connect(addr).await?;
    let mut stream = BufReader::with_capacity(CHUNK, stream);
    let mut line = serde_json::to_vec(&request).unwrap_or_default();
    line.push(b'\n');
    stream.get_mut().write_all(&line).await?;
    let mut head = String::new();
    stream.read_line(&mut head).await?;
    let head =
        serde_json::from_str(&head).map_err(|e| BenchError::Register(format!("{head:?}: {e}")))?;
    Ok((stream, head))
}

/// Shares `bytes` (from memory, or the file at `path`) as `name` to `room`; returns the file's id.
async fn upload(
    addr: &str,
    session: &mut Session,
    room: &str,
    source: Source<'_>,
    pace: Option<f64>,
    sent_so_far: &mut (dyn FnMut(u64) + Send),
) -> Result<u64, BenchError> {
    let (size, sha) = match &source {
        Source::Memory(bytes) => (bytes.len() as u64, hex(&Sha256::digest(bytes))),
        Source::File(path) => (
            tokio::fs::metadata(path).await?.len(),
            hash_file(path).await?,
        ),
    };
    let ready = session
        .ask(json!({"type":"offer","name":"bench.bin","size":size,"sha256":sha,"room":room}))
        .await?;
    if let Some(file) = ready["file"].as_u64() {
        return Ok(file);
    }
    let token = ready["token"]
        .as_str()
        .ok_or_else(|| BenchError::Register(ready.to_string()))?;
    let (mut stream, head) = transfer(addr, json!({"type":"upload","token":token})).await?;
    let offset = head["offset"]
        .as_u64()
        .ok_or_else(|| BenchError::Register(head.to_string()))?;
    let started = Instant::now();
    let mut sent = 0u64;
    let mut pace_wait = async |sent: u64| {
        sent_so_far(sent);
        if let Some(rate) = pace {
            let due = Duration::from_secs_f64(sent as f64 / (rate * 1024.0 * 1024.0));
            tokio::time::sleep_until((started + due).into()).await;
        }
    };
    match source {
        Source::Memory(bytes) => {
            for chunk in bytes[offset as usize..].chunks(CHUNK) {
                stream.get_mut().write_all(chunk).await?;
                sent += chunk.len() as u64;
                pace_wait(sent).await;
            }
        }
        Source::File(path) => {
            let mut file = tokio::fs::File::open(path).await?;
            tokio::io::AsyncSeekExt::seek(&mut file, std::io::SeekFrom::Start(offset)).await?;
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = file.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                stream.get_mut().write_all(&buf[..n]).await?;
                sent += n as u64;
                pace_wait(sent).await;
            }
        }
    }
    let mut last = String::new();
    stream.read_line(&mut last).await?;
    let last: Value = serde_json::from_str(&last).unwrap_or_default();
    last["file"]
        .as_u64()
        .ok_or_else(|| BenchError::Register(format!("upload refused: {last}")))
}

enum Source<'a> {
    Memory(&'a [u8]),
    File(&'a Path),
}

/// Downloads file `id` into `out` (or into memory's hash only) and checks its SHA-256.
async fn download(
    addr: &str,
    session: &mut Session,
    id: u64,
    out: Option<&Path>,
) -> Result<bool, BenchError> {
    let ready = session.ask(json!({"type":"fetch","file":id})).await?;
    let token = ready["token"]
        .as_str()
        .ok_or_else(|| BenchError::Register(ready.to_string()))?;
    let (mut stream, head) =
        transfer(addr, json!({"type":"download","token":token,"offset":0})).await?;
    let want = head["sha256"].as_str().unwrap_or_default().to_owned();
    match out {
        Some(path) => {
            let mut file = tokio::fs::File::create(path).await?;
            tokio::io::copy_buf(&mut stream, &mut file).await?;
            file.flush().await?;
            Ok(hash_file(path).await? == want)
        }
        None => {
            let mut hasher = Sha256::new();
            loop {
                let chunk = stream.fill_buf().await?;
                if chunk.is_empty() {
                    break;
                }
                hasher.update(chunk);
                let n = chunk.len();
                stream.consume(n);
            }
            Ok(hex(&hasher.finalize()) == want)
        }
    }
}

/// The floor: the file piped over a loopback socket into another file, hashed afterwards.
async fn raw_pipe(src: &Path, dst: &Path) -> Result<Duration, BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let started = Instant::now();
    let dst = dst.to_owned();
    let receiver = tokio::spawn(async move {
        let (socket, _) = listener.accept().await?;
        let mut file = tokio::fs::File::create(&dst).await?;
        tokio::io::copy_buf(&mut BufReader::with_capacity(CHUNK, socket), &mut file).await?;
        file.flush().await?;
        hash_file(&dst).await
    });
    let mut socket = TcpStream::connect(addr).await?;
    let file = tokio::fs::File::open(src).await?;
    tokio::io::copy_buf(&mut BufReader::with_capacity(CHUNK, file), &mut socket).await?;
    socket.shutdown().await?;
    drop(socket);
    receiver
        .await
        .map_err(|e| BenchError::Io(std::io::Error::other(e)))??;
    Ok(started.elapsed())
}

fn rate(size: u64, took: Duration, raw: Duration) -> Throughput {
    let seconds = took.as_secs_f64();
    Throughput {
        seconds,
        mib_per_s: size as f64 / (1024.0 * 1024.0) / seconds,
        of_raw: raw.as_secs_f64() / seconds,
    }
}

/// The uploader beside the chat (`natter bench files --uploader`): shares `dir/big.bin` again and again,
/// each time to a room of its own (so each is a new upload), printing `started` once and then the bytes
/// of every upload that completed.
pub async fn uploader(server: &str, dir: &Path, pace: Option<f64>) -> Result<(), BenchError> {
    let big = dir.join("big.bin");
    let size = tokio::fs::metadata(&big).await?.len();
    let pid = std::process::id();
    let mut session = Session::open(server, &format!("fu{pid}")).await?;
    println!("started");
    for i in 0u64.. {
        let room = format!("up{pid}x{i}");
        session.join(&room).await?;
        let mut reported = 0;
        upload(
            server,
            &mut session,
            &room,
            Source::File(&big),
            pace,
            &mut |sent| {
                // What moved, every 16 MiB: the rate beside the chat counts partial uploads too.
                if sent - reported >= 16 << 20 || sent == size {
                    println!("{}", sent - reported);
                    reported = sent;
                }
            },
        )
        .await?;
    }
    Ok(())
}

/// Runs every part of the files benchmark.
pub async fn files(opts: &FilesOptions) -> Result<FilesReport, BenchError> {
    let addr = opts.server.as_str();
    std::fs::create_dir_all(&opts.dir)?;
    let big = opts.dir.join("big.bin");
    eprintln!("writing {} bytes of noise to {}", opts.size, big.display());
    write_noise(&big, opts.size, 1).await?;
    settle().await;
    let rss = || {
        opts.server_pid
            .and_then(crate::rss_kib)
            .map(|k| k as f64 / 1024.0)
    };
    let rss_before = rss();
    let peak = std::sync::Arc::new(std::sync::Mutex::new(rss_before));
    let sampler = {
        let peak = peak.clone();
        let pid = opts.server_pid;
        tokio::spawn(async move {
            while let Some(pid) = pid {
                if let Some(now) = crate::rss_kib(pid).map(|k| k as f64 / 1024.0) {
                    let mut peak = peak.lock().unwrap_or_else(|e| e.into_inner());
                    *peak = Some(peak.unwrap_or(0.0).max(now));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    eprintln!("raw pipe");
    let raw = raw_pipe(&big, &opts.dir.join("raw.bin")).await?;
    settle().await;

    let pid = std::process::id();
    let mut session = Session::open(addr, &format!("fb{pid}")).await?;
    let room = format!("files{pid}");
    session.join(&room).await?;
    eprintln!("upload");
    let started = Instant::now();
    let id = upload(
        addr,
        &mut session,
        &room,
        Source::File(&big),
        None,
        &mut |_| {},
    )
    .await?;
    let up = started.elapsed();
    eprintln!("download");
    let out = opts.dir.join("down.bin");
    let started = Instant::now();
    if !download(addr, &mut session, id, Some(&out)).await? {
        return Err(BenchError::Register(
            "the download differs from the upload".into(),
        ));
    }
    let down = started.elapsed();
    // The copies are deleted at the end: deleting a gigabyte (and flushing what was written) makes the
    // disk busy for a while, which would be measured as the chat's latency.
    settle().await;
    sampler.abort();
    let rss_peak = *peak.lock().unwrap_or_else(|e| e.into_inner());
    // The big file stays for the uploader beside the chat; it is deleted at the end.

    // Chat alone, then beside uploads of the big file (each to a room of its own, so each is a new upload).
    let latency = |room: String| crate::FanoutOptions {
        server: opts.server.clone(),
        dialect: crate::Dialect::Native,
        clients: 100,
        senders: 1,
        rate: 200.0,
        duration: opts.latency_duration,
        room,
        room_size: None,
        connect_batch: 50,
        server_pid: opts.server_pid,
    };
    eprintln!("chat alone");
    let alone = crate::fanout(&latency(format!("lat{pid}a"))).await?;
    eprintln!("chat beside uploads");
    // The uploads run in a process of their own, as a real uploader would: in this one they would take
    // the generator's threads from the receivers whose latency is measured.
    let mut uploader = tokio::process::Command::new(std::env::current_exe()?)
        .args(["bench", "files", "--uploader", "--server", addr, "--dir"])
        .arg(&opts.dir)
        .args(
            opts.transfer_rate
                .map(|r| vec!["--transfer-rate".to_owned(), r.to_string()])
                .unwrap_or_default(),
        )
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut reports = BufReader::new(
        uploader
            .stdout
            .take()
            .ok_or_else(|| BenchError::Io(std::io::Error::other("no stdout from the uploader")))?,
    )
    .lines();
    // Its first upload has started when it says so: only then does the measured run begin.
    reports.next_line().await?;
    let moved = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counting = {
        let moved = moved.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = reports.next_line().await {
                let bytes = line.trim().parse::<u64>().unwrap_or(0);
                moved.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    let beside_started = Instant::now();
    let beside = crate::fanout(&latency(format!("lat{pid}b"))).await?;
    let beside_secs = beside_started.elapsed().as_secs_f64();
    // What it reported while the chat ran (to within 16 MiB).
    let moved = moved.load(std::sync::atomic::Ordering::Relaxed);
    counting.abort();
    let _ = uploader.start_kill();
    let during = moved as f64 / (1024.0 * 1024.0) / beside_secs;

    eprintln!("{} uploads at once", opts.concurrent);
    let started = Instant::now();
    let tasks: Vec<_> = (0..opts.concurrent)
        .map(|i| {
            let addr = opts.server.clone();
            let size = opts.concurrent_size as usize;
            tokio::spawn(async move {
                let bytes = noise(size, 1000 + i as u64);
                let mut session = Session::open(&addr, &format!("fc{pid}x{i}")).await?;
                let room = format!("c{pid}x{i}");
                session.join(&room).await?;
                let id = upload(
                    &addr,
                    &mut session,
                    &room,
                    Source::Memory(&bytes),
                    None,
                    &mut |_| {},
                )
                .await?;
                download(&addr, &mut session, id, None).await
            })
        })
        .collect();
    let mut verified = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(true)) => verified += 1,
            Ok(Ok(false)) => eprintln!("a download differed"),
            Ok(Err(e)) => eprintln!("an upload failed: {e}"),
            Err(e) => eprintln!("an upload task failed: {e}"),
        }
    }
    let concurrent_seconds = started.elapsed().as_secs_f64();
    for copy in [big, opts.dir.join("raw.bin"), out] {
        let _ = std::fs::remove_file(copy);
    }
    Ok(FilesReport {
        size: opts.size,
        raw_pipe: rate(opts.size, raw, raw),
        upload: rate(opts.size, up, raw),
        download: rate(opts.size, down, raw),
        server_rss_before_mib: rss_before,
        server_rss_peak_mib: rss_peak,
        chat_p99_alone_us: alone.latency.p99_us,
        chat_p99_with_transfer_us: beside.latency.p99_us,
        chat_lost_with_transfer: beside.lost,
        transfer_mib_per_s_during_chat: during,
        concurrent_uploads: opts.concurrent,
        concurrent_size: opts.concurrent_size,
        concurrent_verified: verified,
        concurrent_seconds,
    })
}
