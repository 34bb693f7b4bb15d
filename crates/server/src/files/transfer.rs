//! Transfer connections: one file's bytes, raw, on a connection of their own.
//!
//! A connection to the chat port whose first line is a [`DataRequest`] is a transfer, not a chat
//! session (PROTOCOL.md §7). Its bytes never pass through the hub or any outbox, so a chat message never
//! waits behind them; they flow between the socket and the disk through a small bounded pipeline, so a
//! transfer holds a few hundred KiB of memory however large the file.
//!
//! * **Upload.** The server answers `upload_at` with what it has; the client sends the rest. A thread
//!   of the blocking pool writes and hashes (SHA-256) while the connection task reads the next chunk.
//!   When the last byte is in: a wrong hash discards the upload (`bad_checksum`); a right one is synced
//!   to disk and handed to the store's writer, which moves it into the content store and records the
//!   share and its message in one transaction; then `uploaded`. A connection that ends early leaves
//!   the bytes it delivered for the next one to continue from.
//! * **Download.** `sending`, then the file from the requested offset, then FIN.

use std::io::{Read, Seek, Write};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use natter_proto::file::DataRequest;
use natter_proto::{ErrorCode, Name, ServerFrame};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{Files, Ticket, UploadMeta};
use crate::hub::AppendToken;
use crate::session::Shared;
use crate::store::NewFile;

/// Bytes read from the socket (and written to disk) at a time.
pub const CHUNK: usize = 256 * 1024;

/// Chunks queued between the socket and the disk: what one upload holds in memory, at most.
const PIPELINE: usize = 4;

/// An upload is flushed to disk every this many bytes.
const SYNC_EVERY: usize = 16 << 20;

/// A transfer that moves no byte for this long is closed (what arrived is kept).
const STALL: Duration = Duration::from_secs(60);

/// Serves one transfer connection. `buffered` is what was read past the request line.
pub async fn serve<R, W>(
    request: DataRequest,
    buffered: BytesMut,
    read: R,
    mut write: W,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let Some(files) = shared.files.clone() else {
        reply(&mut write, &refusal(ErrorCode::FilesOff)).await;
        return;
    };
    let answer = match request {
        DataRequest::Upload { token } => match files.ticket(&token) {
            Some(Ticket::Upload {
                key,
                meta,
                outbox,
                id,
            }) => {
                let upload = Upload {
                    files: &files,
                    shared: &shared,
                    key,
                    meta,
                };
                upload
                    .run(buffered, read, &mut write, &shutdown, outbox, id)
                    .await
            }
            _ => Some(refusal(ErrorCode::UnknownTransfer)),
        },
        DataRequest::Download { token, offset } => match files.ticket(&token) {
            Some(Ticket::Download(info)) => {
                download(&files, &info, offset, &mut write, &shutdown).await
            }
            _ => Some(refusal(ErrorCode::UnknownTransfer)),
        },
    };
    if let Some(answer) = answer {
        reply(&mut write, &answer).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), write.shutdown()).await;
}

/// How an upload over HTTP (the browser's `PATCH`) ended.
pub(crate) enum HttpUpload {
    /// Shared as this file.
    Shared(u64),
    /// The body did not start where the upload stands: the server has this many bytes.
    WrongOffset(u64),
    /// The body ended before the file did; the server has this many bytes now.
    Incomplete(u64),
    Refused(ServerFrame),
}

/// What the server has of the upload `token` opens (`HEAD`), if it opens one.
pub(crate) fn upload_offset(files: &Files, token: &str) -> Option<u64> {
    match files.ticket(token)? {
        Ticket::Upload { key, .. } => Some(files.have(&key)),
        Ticket::Download(_) => None,
    }
}

/// An upload whose bytes from `offset` arrive as an HTTP request's body: the same checks, pipeline and
/// share as a transfer connection's.
pub(crate) async fn upload_http<R: AsyncRead + Unpin>(
    shared: &Arc<Shared>,
    token: &str,
    offset: u64,
    body: R,
    shutdown: &CancellationToken,
) -> HttpUpload {
    let Some(files) = shared.files.clone() else {
        return HttpUpload::Refused(refusal(ErrorCode::FilesOff));
    };
    let Some(Ticket::Upload {
        key,
        meta,
        outbox,
        id,
    }) = files.ticket(token)
    else {
        return HttpUpload::Refused(refusal(ErrorCode::UnknownTransfer));
    };
    if files.have(&key) != offset {
        return HttpUpload::WrongOffset(files.have(&key));
    }
    let upload = Upload {
        files: &files,
        shared,
        key: key.clone(),
        meta,
    };
    let mut nowhere = tokio::io::sink();
    match upload
        .run(BytesMut::new(), body, &mut nowhere, shutdown, outbox, id)
        .await
    {
        Some(ServerFrame::Uploaded { file }) => HttpUpload::Shared(file),
        Some(frame) => HttpUpload::Refused(frame),
        None => HttpUpload::Incomplete(files.have(&key)),
    }
}

/// The file a download token opens, and its bytes.
pub(crate) async fn open_download(
    files: &Files,
    token: &str,
) -> Option<(Arc<natter_proto::file::FileInfo>, tokio::fs::File)> {
    let Ticket::Download(info) = files.ticket(token)? else {
        return None;
    };
    let file = tokio::fs::File::open(files.object(&info.sha256))
        .await
        .ok()?;
    Some((info, file))
}

fn refusal(code: ErrorCode) -> ServerFrame {
    ServerFrame::error(code, natter_proto::error_args!(), None)
}

async fn reply<W: AsyncWrite + Unpin>(write: &mut W, frame: &ServerFrame) {
    let _ = tokio::time::timeout(STALL, write.write_all(&frame.encode())).await;
}

/// One upload connection's work.
struct Upload<'a> {
    files: &'a Arc<Files>,
    shared: &'a Arc<Shared>,
    key: String,
    meta: Arc<UploadMeta>,
}

/// What the disk side of an upload ends with.
struct Written {
    hasher: Sha256,
    len: u64,
    error: Option<std::io::Error>,
}

impl Upload<'_> {
    /// Receives the rest of the upload; returns the last line to send (`None`: nothing, the client went).
    async fn run<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
        self,
        mut buffered: BytesMut,
        mut read: R,
        write: &mut W,
        shutdown: &CancellationToken,
        outbox: Arc<crate::outbox::Outbox>,
        id: Option<String>,
    ) -> Option<ServerFrame> {
        // A newer connection for the same upload takes over: the older one is told to stop, and this one
        // waits until it has.
        let (lock, mine) = {
            let mut state = self.files.state();
            let entry = state.active.entry(self.key.clone()).or_insert_with(|| {
                (
                    Arc::new(tokio::sync::Mutex::new(())),
                    CancellationToken::new(),
                )
            });
            entry.1.cancel();
            entry.1 = CancellationToken::new();
            (entry.0.clone(), entry.1.clone())
        };
        let _turn = lock.lock_owned().await;
        let result = self
            .receive(&mut buffered, &mut read, write, shutdown, &mine)
            .await;
        {
            let mut state = self.files.state();
            // Not cancelled: nobody took over, so the entry is still this connection's.
            if !mine.is_cancelled() {
                state.active.remove(&self.key);
            }
        }
        match result {
            Received::Complete(hash) => self.share(hash, outbox, id).await,
            Received::Partial => None,
            Received::Failed(frame) => Some(frame),
        }
    }

    async fn receive<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
        &self,
        buffered: &mut BytesMut,
        read: &mut R,
        write: &mut W,
        shutdown: &CancellationToken,
        mine: &CancellationToken,
    ) -> Received {
        let path = self.files.partial(&self.key);
        let size = self.meta.size;
        // The bytes already here, hashed again (the hash state does not survive a restart).
        let opened = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)?;
            let mut len = file.metadata()?.len();
            if len > size {
                file.set_len(0)?;
                len = 0;
            }
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; CHUNK];
            let mut reader = (&mut file).take(len);
            loop {
                let n = reader.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            file.seek(std::io::SeekFrom::Start(len))?;
            Ok((file, hasher, len))
        })
        .await;
        let (file, hasher, mut offset) = match opened {
            Ok(Ok(opened)) => opened,
            // Gone: shared or discarded by an earlier connection meanwhile.
            _ => return Received::Failed(refusal(ErrorCode::UnknownTransfer)),
        };
        if tokio::time::timeout(
            STALL,
            write.write_all(&ServerFrame::UploadAt { offset }.encode()),
        )
        .await
        .map_or(true, |r| r.is_err())
        {
            return Received::Partial;
        }
        let (chunks, mut queue) = mpsc::channel::<Bytes>(PIPELINE);
        let disk = tokio::task::spawn_blocking(move || {
            let mut file = file;
            let mut written = Written {
                hasher,
                len: offset,
                error: None,
            };
            let mut unsynced = 0;
            while let Some(chunk) = queue.blocking_recv() {
                if let Err(e) = file.write_all(&chunk) {
                    written.error = Some(e);
                    break;
                }
                written.hasher.update(&chunk);
                written.len += chunk.len() as u64;
                unsynced += chunk.len();
                // To disk as it goes, a little at a time: one flush of a whole large file at the end
                // holds up every other write on the file system (the history's too) while it lasts.
                if unsynced >= SYNC_EVERY {
                    unsynced = 0;
                    if let Err(e) = file.sync_data() {
                        written.error = Some(e);
                        break;
                    }
                }
            }
            if written.error.is_none() && written.len == size {
                written.error = file.sync_all().err();
            }
            written
        });
        let mut buf = std::mem::take(buffered);
        let mut ended = false;
        while offset < size && !ended {
            if buf.is_empty() {
                buf.reserve(CHUNK);
                let step = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => None,
                    _ = mine.cancelled() => None,
                    n = tokio::time::timeout(STALL, read.read_buf(&mut buf)) => n.ok().and_then(Result::ok),
                };
                match step {
                    Some(n) if n > 0 => {}
                    _ => ended = true,
                }
            }
            let take = buf.len().min((size - offset) as usize);
            if take > 0 {
                offset += take as u64;
                let chunk = buf.split_to(take).freeze();
                if chunks.send(chunk).await.is_err() {
                    break; // the disk side failed; its error is below
                }
            }
            // Anything past the declared size is not part of the file; it is ignored.
            if offset == size {
                buf.clear();
            }
        }
        drop(chunks);
        let Ok(written) = disk.await else {
            return Received::Failed(refusal(ErrorCode::ServerError));
        };
        if let Some(e) = written.error {
            tracing::error!("an upload could not be written: {e}");
            // What was written may be torn; a full disk needs the space back. Start over next time.
            self.files.discard(&self.key);
            return Received::Failed(super::storage_refusal(&e).frame(None));
        }
        if written.len < size {
            return Received::Partial;
        }
        Received::Complete(natter_proto::file::hex(&written.hasher.finalize()))
    }

    /// The whole upload is here: verify it, then share it through the store's writer.
    async fn share(
        self,
        hash: String,
        outbox: Arc<crate::outbox::Outbox>,
        id: Option<String>,
    ) -> Option<ServerFrame> {
        let meta = &self.meta;
        if hash != meta.sha256 {
            tracing::info!(
                "an upload of {} by {} did not match its SHA-256; discarded",
                meta.name,
                meta.from
            );
            self.files.discard(&self.key);
            return Some(refusal(ErrorCode::BadChecksum));
        }
        if let Some(cluster) = self.files.cluster() {
            // Every node must find the bytes once it reads the share: they go to the cluster first.
            if let Err(e) = cluster
                .put(&meta.sha256, &self.files.partial(&self.key))
                .await
            {
                tracing::error!("cannot put an upload into the cluster's file store: {e}");
                return Some(refusal(ErrorCode::ServerError));
            }
        }
        let hub = &self.shared.hub;
        let from = Name::new(&meta.from).ok()?;
        // The conversation is checked again: the uploader may have left the room meanwhile.
        let mut message = match hub.prepare(
            &from,
            meta.room.as_deref(),
            meta.to.as_deref(),
            "file",
            None,
        ) {
            Ok(message) => message,
            Err(refusal) => return Some(refusal.frame(None)),
        };
        let file = NewFile {
            name: meta.name.clone(),
            size: meta.size,
            mime: meta.mime.clone(),
            sha256: meta.sha256.clone(),
            upload_key: self.key.clone(),
            partial: self.files.partial(&self.key),
            object: self.files.object(&meta.sha256),
        };
        let duplicate = file.duplicate();
        message.file = Some(Box::new(file));
        let permit = self.shared.appends.clone().acquire_owned().await.ok()?;
        let (done, _) = oneshot::channel();
        let (stored, outcome) = oneshot::channel();
        let token = AppendToken {
            outbox,
            id,
            done,
            permit,
            stored: Some(stored),
        };
        if hub.submit(message, token).is_err() {
            return Some(refusal(ErrorCode::ServerError));
        }
        let outcome = outcome.await;
        // Content the store had already: its second copy goes, here rather than on the writer.
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(duplicate)).await;
        match outcome {
            Ok(Ok(seq)) => {
                if self.files.cluster().is_some() {
                    self.files.keep_local(&self.key, &meta.sha256);
                }
                self.files.discard(&self.key);
                tracing::info!(
                    event = "file_shared",
                    "{} shared {} ({} bytes) as file {seq}",
                    meta.from,
                    meta.name,
                    meta.size
                );
                Some(ServerFrame::Uploaded { file: seq })
            }
            _ => Some(refusal(ErrorCode::ServerError)),
        }
    }
}

enum Received {
    /// Every byte arrived; their SHA-256.
    Complete(String),
    /// The connection ended early; what arrived is kept.
    Partial,
    Failed(ServerFrame),
}

/// Sends a file from `offset`; returns a last line only when refusing.
async fn download<W: AsyncWrite + Unpin>(
    files: &Files,
    info: &natter_proto::file::FileInfo,
    offset: u64,
    write: &mut W,
    shutdown: &CancellationToken,
) -> Option<ServerFrame> {
    if offset > info.size {
        return Some(ServerFrame::error(
            ErrorCode::BadFrame,
            natter_proto::error_args!(
                reason = "fields",
                kind = "\"download\"",
                detail = format!("offset {offset} is past the end ({})", info.size)
            ),
            None,
        ));
    }
    let path = files.object(&info.sha256);
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(_) => {
            return Some(ServerFrame::error(
                ErrorCode::FileExpired,
                natter_proto::error_args!(file = info.id),
                None,
            ))
        }
    };
    if file.seek(std::io::SeekFrom::Start(offset)).await.is_err() {
        return Some(refusal(ErrorCode::ServerError));
    }
    let head = ServerFrame::Sending {
        file: info.id,
        offset,
        size: info.size,
        sha256: info.sha256.clone(),
    };
    let send = async {
        write.write_all(&head.encode()).await?;
        let mut reader = tokio::io::BufReader::with_capacity(CHUNK, file.take(info.size - offset));
        loop {
            let chunk = tokio::time::timeout(STALL, reader.fill_buf())
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
            if chunk.is_empty() {
                break;
            }
            let n = chunk.len();
            tokio::time::timeout(STALL, write.write_all(chunk))
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
            reader.consume(n);
        }
        write.flush().await
    };
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = send => {}
    }
    None
}

use tokio::io::AsyncSeekExt;
