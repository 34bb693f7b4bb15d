//! File transfers, the client's side: share a file ([`send`]) and download one ([`get`]) — resumed
//! after any interruption, verified end to end.
//!
//! Both ask on the chat session (`offer`, `fetch`, through a [`Requester`]) and move the bytes on a
//! transfer connection of their own to the same server (PROTOCOL.md §7), so chat goes on meanwhile.
//! A dropped transfer connection is retried with backoff from where it stopped: an upload from what the
//! server says it has, a download from what is already on disk (a `.part` file beside the destination,
//! kept across runs, so `natter get` run again resumes too). Every completed download is checked
//! against the file's SHA-256 before it gets its name; a damaged one is deleted, never kept.
//!
//! Cancelling is dropping the future (the UIs abort the task): what arrived stays for a later resume.

use std::path::{Path, PathBuf};
use std::time::Duration;

use natter_i18n::t;
use natter_proto::file::{self, DataRequest, FileInfo};
use natter_proto::{ClientFrame, ErrorCode, ServerFrame};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufReader};

use crate::chat::Requester;
use crate::net::Io;

/// Bytes moved per read and write.
const CHUNK: usize = 256 * 1024;

/// A transfer connection that moves nothing for this long is given up and retried.
const STALL: Duration = Duration::from_secs(30);

/// Attempts in a row that move no byte before a transfer gives up (with backoff: about two minutes).
const ATTEMPTS: u32 = 16;

/// Why a transfer failed. Each is one line for the user, in their language.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("{}", t!("send-cannot-read", path = path, why = why))]
    Read { path: String, why: String },
    #[error("{}", t!("send-not-a-file", path = .0))]
    NotAFile(String),
    #[error("{}", t!("downloads-unusable", dir = path, why = why))]
    Write { path: String, why: String },
    /// The server's refusal, already in the user's language.
    #[error("{reason}")]
    Refused { code: ErrorCode, reason: String },
    #[error("{}", t!("download-corrupt", file = .0))]
    Corrupt(String),
    #[error("{}", t!("error-connection-lost"))]
    Lost,
}

/// What a transfer reports as it goes: bytes done of the total (both known from the start).
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// A shared file: its id (the number `/get` takes), name and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    pub id: u64,
    pub name: String,
    pub size: u64,
}

/// Hashes a file (on the blocking pool): its size and SHA-256 in lowercase hex.
pub async fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK * 4];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        Ok((size, file::hex(&hasher.finalize())))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Shares the file at `path` with `room` (or privately with `to`) and returns it once the server has
/// all of it, verified. Run again after any failure, it resumes.
pub async fn send(
    requester: &Requester,
    path: &Path,
    room: Option<String>,
    to: Option<String>,
    progress: Progress<'_>,
) -> Result<Shared, TransferError> {
    let shown = path.display().to_string();
    let read_error = |e: std::io::Error| TransferError::Read {
        path: shown.clone(),
        why: e.to_string(),
    };
    let meta = tokio::fs::metadata(path).await.map_err(read_error)?;
    if !meta.is_file() {
        return Err(TransferError::NotAFile(shown));
    }
    let (size, sha256) = hash_file(path).await.map_err(read_error)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    progress(0, size);
    let mut retry = Retry::default();
    loop {
        let answer = requester
            .request(|id| ClientFrame::Offer {
                name: name.clone(),
                size,
                sha256: sha256.clone(),
                room: room.clone(),
                to: to.clone(),
                id: Some(id),
            })
            .await
            .ok_or(TransferError::Lost)?;
        let token = match answer {
            ServerFrame::UploadReady {
                file: Some(id),
                size,
                ..
            } => {
                progress(size, size);
                return Ok(Shared {
                    id,
                    name: file::safe_name(&name),
                    size,
                });
            }
            ServerFrame::UploadReady { token, .. } => token,
            other => return Err(refused(other)),
        };
        match put(requester, &token, path, size, progress).await {
            Ok(id) => {
                return Ok(Shared {
                    id,
                    name: file::safe_name(&name),
                    size,
                })
            }
            Err(Attempt::Failed(e)) => return Err(e),
            Err(Attempt::Lost { reached }) => retry.after(reached).await?,
        }
    }
}

/// How one transfer connection ended badly.
enum Attempt {
    /// Dropped: try again (`reached`: how far it got).
    Lost {
        reached: u64,
    },
    Failed(TransferError),
}

/// When to try a dropped transfer again: with backoff, counting only attempts that moved nothing (any
/// progress starts the count over), giving up after [`ATTEMPTS`] of those in a row.
#[derive(Default)]
struct Retry {
    failures: u32,
    /// The furthest any attempt got.
    best: u64,
}

impl Retry {
    /// Waits before the next attempt after one that got as far as `reached`; `Err` when it is time to stop.
    async fn after(&mut self, reached: u64) -> Result<(), TransferError> {
        if reached > self.best {
            self.best = reached;
            self.failures = 0;
        }
        self.failures += 1;
        if self.failures >= ATTEMPTS {
            return Err(TransferError::Lost);
        }
        let delay = Duration::from_millis(250) * (1 << self.failures.min(5));
        tokio::time::sleep(delay.min(Duration::from_secs(8))).await;
        Ok(())
    }
}

/// The server's `error` as a [`TransferError`] in the user's language; anything else is a lost connection.
fn refused(frame: ServerFrame) -> TransferError {
    match frame {
        ServerFrame::Error {
            code,
            message,
            args,
            ..
        } => TransferError::Refused {
            code,
            reason: crate::display::error(code, &args, &message),
        },
        _ => TransferError::Lost,
    }
}

/// Opens a transfer connection and sends its request line.
async fn open(requester: &Requester, request: DataRequest) -> Option<BufReader<Box<dyn Io>>> {
    let (stream, _) =
        tokio::time::timeout(STALL, crate::net::open(&requester.server, &requester.tls))
            .await
            .ok()?
            .ok()?;
    let mut stream = BufReader::with_capacity(CHUNK, stream);
    stalled(stream.get_mut().write_all(&request.encode()))
        .await
        .ok()?;
    Some(stream)
}

/// One line from the server on a transfer connection; `None` if the connection ended or said nonsense.
async fn line(stream: &mut BufReader<Box<dyn Io>>) -> Option<ServerFrame> {
    let mut line = Vec::new();
    let mut limited = (&mut *stream).take(natter_proto::DEFAULT_MAX_FRAME as u64);
    stalled(limited.read_until(b'\n', &mut line)).await.ok()?;
    serde_json::from_slice(&line).ok()
}

/// An I/O step that must make progress within [`STALL`].
async fn stalled<T>(
    step: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    tokio::time::timeout(STALL, step)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// Sends the rest of the file on one transfer connection.
async fn put(
    requester: &Requester,
    token: &str,
    path: &Path,
    size: u64,
    progress: Progress<'_>,
) -> Result<u64, Attempt> {
    let lost = |reached| Attempt::Lost { reached };
    let request = DataRequest::Upload {
        token: token.to_owned(),
    };
    let mut stream = open(requester, request).await.ok_or(lost(0))?;
    let offset = match line(&mut stream).await.ok_or(lost(0))? {
        ServerFrame::UploadAt { offset } => offset,
        other => return Err(Attempt::Failed(refused(other))),
    };
    let read_error = |e: std::io::Error| {
        Attempt::Failed(TransferError::Read {
            path: path.display().to_string(),
            why: e.to_string(),
        })
    };
    let mut file = tokio::fs::File::open(path).await.map_err(read_error)?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(read_error)?;
    let mut file = BufReader::with_capacity(CHUNK, file.take(size - offset));
    let mut done = offset;
    progress(done, size);
    loop {
        let chunk = file.fill_buf().await.map_err(read_error)?;
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        stalled(stream.get_mut().write_all(chunk))
            .await
            .map_err(|_| lost(done))?;
        file.consume(n);
        done += n as u64;
        progress(done, size);
    }
    if done < size {
        // The file shrank while it was being sent: what the server gets will not match the offer.
        return Err(Attempt::Failed(TransferError::Read {
            path: path.display().to_string(),
            why: std::io::Error::from(std::io::ErrorKind::UnexpectedEof).to_string(),
        }));
    }
    let _ = stream.get_mut().flush().await;
    match line(&mut stream).await.ok_or(lost(done))? {
        ServerFrame::Uploaded { file } => Ok(file),
        other => Err(Attempt::Failed(refused(other))),
    }
}

/// Where a download goes.
#[derive(Debug, Clone)]
pub enum Dest {
    /// Into this directory, under the file's own name made safe, never overwriting (`name (1).pdf`).
    Dir(PathBuf),
    /// Exactly here (what `natter get -o PATH` asks for).
    File(PathBuf),
}

/// A completed download: where it is, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Got {
    pub path: PathBuf,
    pub info: FileInfo,
}

/// The platform's Downloads folder (`~/Downloads`), or the current directory when there is none.
pub fn default_downloads() -> PathBuf {
    directories::UserDirs::new()
        .and_then(|u| {
            u.download_dir()
                .map(Path::to_path_buf)
                .or_else(|| Some(u.home_dir().join("Downloads")))
        })
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Downloads shared file `id` to `dest`, resuming what an earlier attempt (or run) left, and verifies
/// it. `progress` is told the total once the server has said what the file is.
pub async fn get(
    requester: &Requester,
    id: u64,
    dest: &Dest,
    progress: Progress<'_>,
) -> Result<Got, TransferError> {
    let mut retry = Retry::default();
    loop {
        let answer = requester
            .request(|rq| ClientFrame::Fetch {
                file: id,
                id: Some(rq),
            })
            .await
            .ok_or(TransferError::Lost)?;
        let (token, info) = match answer {
            ServerFrame::DownloadReady { token, file, .. } => (token, file),
            other => return Err(refused(other)),
        };
        let part = part_path(dest, &info)?;
        // The same token serves every attempt until it expires (a restarted server): then ask again.
        loop {
            match fetch(requester, &token, &info, &part, progress).await {
                Ok(()) => return finish(&part, dest, *info).await,
                Err(Attempt::Failed(TransferError::Refused {
                    code: ErrorCode::UnknownTransfer,
                    ..
                })) => break,
                Err(Attempt::Failed(e)) => return Err(e),
                Err(Attempt::Lost { reached }) => retry.after(reached).await?,
            }
        }
    }
}

/// Where the bytes of a download in progress are kept: beside the destination, named after the file's
/// id and content, so the next attempt — or the next run — continues it.
fn part_path(dest: &Dest, info: &FileInfo) -> Result<PathBuf, TransferError> {
    match dest {
        Dest::File(path) => {
            let mut name = path.as_os_str().to_owned();
            name.push(".part");
            Ok(PathBuf::from(name))
        }
        Dest::Dir(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| TransferError::Write {
                path: dir.display().to_string(),
                why: e.to_string(),
            })?;
            let sha = info.sha256.get(..16).unwrap_or("");
            Ok(dir.join(format!(".natter-{}-{sha}.part", info.id)))
        }
    }
}

/// Receives the rest of the file on one transfer connection, appending to `part`.
async fn fetch(
    requester: &Requester,
    token: &str,
    info: &FileInfo,
    part: &Path,
    progress: Progress<'_>,
) -> Result<(), Attempt> {
    let write_error = |e: std::io::Error| {
        Attempt::Failed(TransferError::Write {
            path: part.display().to_string(),
            why: e.to_string(),
        })
    };
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(part)
        .await
        .map_err(write_error)?;
    let mut have = file.metadata().await.map_err(write_error)?.len();
    if have > info.size {
        file.set_len(0).await.map_err(write_error)?;
        have = 0;
    }
    progress(have, info.size);
    if have == info.size {
        return Ok(());
    }
    let lost = |reached| Attempt::Lost { reached };
    let request = DataRequest::Download {
        token: token.to_owned(),
        offset: have,
    };
    let mut stream = open(requester, request).await.ok_or(lost(have))?;
    match line(&mut stream).await.ok_or(lost(have))? {
        ServerFrame::Sending { offset, .. } if offset == have => {}
        other => return Err(Attempt::Failed(refused(other))),
    }
    let mut done = have;
    while done < info.size {
        let chunk = stalled(stream.fill_buf()).await.map_err(|_| lost(done))?;
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len().min((info.size - done) as usize);
        file.write_all(&chunk[..n]).await.map_err(write_error)?;
        stream.consume(n);
        done += n as u64;
        progress(done, info.size);
    }
    file.flush().await.map_err(write_error)?;
    if done < info.size {
        return Err(lost(done));
    }
    Ok(())
}

/// Verifies a complete download and gives it its name.
async fn finish(part: &Path, dest: &Dest, info: FileInfo) -> Result<Got, TransferError> {
    let (_, sha256) = hash_file(part).await.map_err(|e| TransferError::Write {
        path: part.display().to_string(),
        why: e.to_string(),
    })?;
    if sha256 != info.sha256 {
        let _ = std::fs::remove_file(part);
        return Err(TransferError::Corrupt(info.name));
    }
    let placed = match dest {
        Dest::File(path) => std::fs::rename(part, path).map(|()| path.clone()),
        Dest::Dir(dir) => place(part, dir, &info.name),
    };
    let path = placed.map_err(|e| TransferError::Write {
        path: part.display().to_string(),
        why: e.to_string(),
    })?;
    Ok(Got { path, info })
}

/// Moves `part` into `dir` under `name` made safe — `name (1)`, `name (2)`, … when taken. The name is
/// claimed by creating it (so two downloads never pick the same one), then the bytes are moved onto it.
pub fn place(part: &Path, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    let safe = file::safe_name(name);
    for n in 0..10_000 {
        let candidate = match n {
            0 => dir.join(&safe),
            n => dir.join(file::numbered(&safe, n)),
        };
        // Whatever the name said, the file lands in `dir` itself.
        if candidate.parent() != Some(dir) {
            return Err(std::io::ErrorKind::InvalidInput.into());
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(_) => {
                std::fs::rename(part, &candidate)?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::ErrorKind::AlreadyExists.into())
}

/// What a transfer in the background reports to its UI.
#[derive(Debug)]
pub enum Event {
    /// Shared (an upload finished).
    Sent(Shared),
    /// Downloaded and verified.
    Got(Got),
    Failed(TransferError),
}

/// One transfer in progress, as the UI shows it.
struct Running {
    name: String,
    up: bool,
    started: std::time::Instant,
    /// Bytes done when this run started (a resumed transfer's rate counts only what moves now).
    first: Option<u64>,
    done: u64,
    total: u64,
    task: tokio::task::JoinHandle<()>,
}

/// The transfers a UI has going at once, in the background: each its own task, reporting progress
/// and its end through one channel the UI's loop selects on.
pub struct Transfers {
    requester: Requester,
    running: std::collections::BTreeMap<u64, Running>,
    next: u64,
    tx: tokio::sync::mpsc::UnboundedSender<(u64, Update)>,
    rx: tokio::sync::mpsc::UnboundedReceiver<(u64, Update)>,
    /// When progress was last handed to the UI.
    shown: std::time::Instant,
}

/// How often progress is handed to a UI to show.
const REDRAW: Duration = Duration::from_millis(250);

/// The transfer commands, for a client's `/help`.
pub const HELP: &[(&str, &str)] = &[
    ("usage-send", "help-send"),
    ("usage-get", "help-get"),
    ("usage-cancel", "help-cancel"),
];

/// The line that says how a transfer ended, and whether it failed.
pub fn describe(name: &str, event: &Event) -> (String, bool) {
    let name = natter_proto::text::neutralise(name);
    match event {
        Event::Sent(shared) => (
            t!(
                "upload-done",
                file = name.as_ref(),
                id = shared.id.to_string()
            ),
            false,
        ),
        Event::Got(got) => (
            t!(
                "download-done",
                path = got.path.display().to_string(),
                size = file::human_size(got.info.size)
            ),
            false,
        ),
        Event::Failed(e) => (
            t!("transfer-failed", file = name.as_ref(), why = e.to_string()),
            true,
        ),
    }
}

/// Tab completion of a local path as typed after `/send`: the entries of its directory that start with
/// what follows its last `/`, sorted, directories with a `/` after them (so Tab goes on into them).
pub fn complete_path(typed: &str) -> Vec<String> {
    let (dir_part, prefix) = match typed.rfind('/') {
        Some(i) => (&typed[..=i], &typed[i + 1..]),
        None => ("", typed),
    };
    let dir = match dir_part {
        "" => PathBuf::from("."),
        d => expand_home(d),
    };
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            // Hidden files only when asked for with a dot.
            if !name.starts_with(prefix) || (name.starts_with('.') && !prefix.starts_with('.')) {
                return None;
            }
            let slash = if e.path().is_dir() { "/" } else { "" };
            Some(format!("{dir_part}{name}{slash}"))
        })
        .collect();
    found.sort();
    found
}

/// `~/x` as the home directory's `x` (a path typed in `/send` is not seen by a shell).
pub fn expand_home(path: &str) -> PathBuf {
    let path = path.trim();
    match (path.strip_prefix("~/"), directories::UserDirs::new()) {
        (Some(rest), Some(dirs)) => dirs.home_dir().join(rest),
        _ if path == "~" => directories::UserDirs::new()
            .map(|d| d.home_dir().to_path_buf())
            .unwrap_or_else(|| PathBuf::from(path)),
        _ => PathBuf::from(path),
    }
}

/// A running transfer's news.
#[derive(Debug)]
enum Update {
    Progress(u64, u64),
    Done(Event),
}

impl Transfers {
    pub fn new(requester: Requester) -> Self {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        Self {
            requester,
            running: Default::default(),
            next: 0,
            tx,
            rx,
            shown: std::time::Instant::now(),
        }
    }

    fn start<F>(&mut self, name: String, up: bool, work: F)
    where
        F: FnOnce(Requester, Box<dyn Fn(u64, u64) + Send + Sync>) -> tokio::task::JoinHandle<Event>,
    {
        self.next += 1;
        let key = self.next;
        let tx = self.tx.clone();
        let report = {
            let tx = tx.clone();
            Box::new(move |done, total| {
                let _ = tx.send((key, Update::Progress(done, total)));
            })
        };
        let job = work(self.requester.clone(), report);
        let task = tokio::spawn(async move {
            let event = job.await.unwrap_or(Event::Failed(TransferError::Lost));
            let _ = tx.send((key, Update::Done(event)));
        });
        self.running.insert(
            key,
            Running {
                name,
                up,
                started: std::time::Instant::now(),
                first: None,
                done: 0,
                total: 0,
                task,
            },
        );
    }

    /// Starts sharing `path` with `room` (or `to`).
    pub fn upload(&mut self, path: PathBuf, room: Option<String>, to: Option<String>) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        self.start(name, true, move |requester, report| {
            tokio::spawn(async move {
                match send(&requester, &path, room, to, &*report).await {
                    Ok(shared) => Event::Sent(shared),
                    Err(e) => Event::Failed(e),
                }
            })
        });
    }

    /// Starts downloading file `id` into `dir`.
    pub fn download(&mut self, id: u64, dir: PathBuf) {
        self.start(format!("#{id}"), false, move |requester, report| {
            tokio::spawn(async move {
                match get(&requester, id, &Dest::Dir(dir), &*report).await {
                    Ok(got) => Event::Got(got),
                    Err(e) => Event::Failed(e),
                }
            })
        });
    }

    /// Stops every transfer; returns their names (what arrived stays, for a later resume).
    pub fn cancel_all(&mut self) -> Vec<String> {
        let running = std::mem::take(&mut self.running);
        running
            .into_values()
            .map(|r| {
                r.task.abort();
                r.name
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// The next transfer to end — with its name — or `None` when only progress moved (at most a few
    /// times a second, for a UI to redraw). Waits forever when none is running (for a `select!` branch).
    pub async fn next(&mut self) -> Option<(String, Event)> {
        loop {
            let Some((key, update)) = self.rx.recv().await else {
                return std::future::pending().await;
            };
            match update {
                Update::Progress(done, total) => {
                    if let Some(r) = self.running.get_mut(&key) {
                        r.first.get_or_insert(done);
                        r.done = done;
                        r.total = total;
                    }
                    if self.shown.elapsed() >= REDRAW {
                        self.shown = std::time::Instant::now();
                        return None;
                    }
                }
                Update::Done(event) => {
                    if let Some(r) = self.running.remove(&key) {
                        let name = match &event {
                            Event::Sent(shared) => shared.name.clone(),
                            Event::Got(got) => got.info.name.clone(),
                            Event::Failed(_) => r.name,
                        };
                        return Some((name, event));
                    }
                }
            }
        }
    }

    /// One line per transfer: `↑ report.pdf 45% 12.0 MiB/s 3 s left`.
    pub fn lines(&self) -> Vec<String> {
        self.running
            .values()
            .map(|r| {
                let percent = match r.total {
                    0 => 100,
                    total => r.done * 100 / total,
                };
                let secs = r.started.elapsed().as_secs_f64().max(0.001);
                let rate = r.done.saturating_sub(r.first.unwrap_or(r.done)) as f64 / secs;
                let left = match rate {
                    0.0 => 0,
                    rate => ((r.total - r.done.min(r.total)) as f64 / rate).ceil() as u64,
                };
                let id = match r.up {
                    true => "transfer-up",
                    false => "transfer-down",
                };
                t!(
                    id,
                    file = natter_proto::text::neutralise(&r.name).into_owned(),
                    percent = percent.to_string(),
                    rate = file::human_size(rate as u64),
                    eta = t!("transfer-eta", secs = left)
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tab_completes_paths_after_send() {
        let root = tempfile::tempdir().unwrap();
        let base = format!("{}/", root.path().display());
        std::fs::create_dir(root.path().join("reports")).unwrap();
        std::fs::write(root.path().join("report.pdf"), b"").unwrap();
        std::fs::write(root.path().join("报告.txt"), b"").unwrap();
        std::fs::write(root.path().join(".secret"), b"").unwrap();
        assert_eq!(
            complete_path(&format!("{base}rep")),
            vec![format!("{base}report.pdf"), format!("{base}reports/")]
        );
        assert_eq!(
            complete_path(&format!("{base}报")),
            vec![format!("{base}报告.txt")]
        );
        assert_eq!(
            complete_path(&format!("{base}.s")),
            vec![format!("{base}.secret")]
        );
        assert_eq!(complete_path(&base).len(), 3);
        assert!(complete_path(&format!("{base}nothing")).is_empty());
    }

    /// Whatever a file's name says, it lands in the downloads directory, under a name of its own,
    /// never over an existing file.
    #[test]
    fn hostile_names_never_escape_the_downloads_directory() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("Downloads");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(root.path().join("victim"), b"keep").unwrap();
        std::fs::write(dir.join("report.pdf"), b"mine").unwrap();
        let hostile = [
            "../victim",
            "../../../../../../tmp/victim",
            "/etc/passwd",
            "..\\..\\victim",
            "C:\\Windows\\win.ini",
            "..",
            ".",
            "",
            "a\0b",
            "CON",
            "report.pdf",
            "report.pdf",
            ".hidden",
            &"长".repeat(300),
        ];
        let mut placed = Vec::new();
        for (i, name) in hostile.iter().enumerate() {
            let part = root.path().join(format!("part{i}"));
            std::fs::write(&part, format!("{i}")).unwrap();
            let path = place(&part, &dir, name).unwrap();
            assert_eq!(path.parent(), Some(dir.as_path()), "{name:?} → {path:?}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{i}"));
            placed.push(path);
        }
        // Nothing outside was touched, nothing inside overwritten, every download has its own file.
        assert_eq!(std::fs::read(root.path().join("victim")).unwrap(), b"keep");
        assert_eq!(std::fs::read(dir.join("report.pdf")).unwrap(), b"mine");
        assert!(dir.join("report (1).pdf").exists() && dir.join("report (2).pdf").exists());
        placed.sort();
        placed.dedup();
        assert_eq!(placed.len(), hostile.len());
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 2);
    }
}
