//! Shared files: the server's side of `offer` and `fetch`, and the transfer connections that carry the
//! bytes ([`transfer`]).
//!
//! * **Where.** Under the files directory (`<data dir>/files`): `objects/ab/<sha256>` is the content
//!   store — one copy per distinct content, whoever shared it and however often; `partial/<upload>` the
//!   bytes of an upload in progress, with `partial/<upload>.json` saying what it is. Which shares exist,
//!   and which blobs they use, is in the database (`files`, `blobs`); a share and its message are
//!   recorded in one transaction by the store's writer, which also moves the bytes into place.
//! * **Uploads** are named by who uploads what to which conversation (`upload_key`): offering the same
//!   file again — after a dropped connection, a killed client, a restarted server — finds the bytes
//!   already there and resumes after them. An upload belongs to its uploader: another user offering the
//!   same content starts their own (knowing a file's hash never grants it; deduplication is storage only).
//!   A retry of an upload that completed within [`RETRY_WINDOW`] gets the share it made, not a second.
//! * **Tokens.** `offer` and `fetch` answer with a token for a transfer connection: a capability for
//!   one upload or one file, minted for an authenticated session, valid for [`TOKEN_LIFE`] and only in
//!   this process (a restarted server's client offers again).
//! * **Limits** are checked when an upload is offered, counting what uploads in progress will need:
//!   per file (`--max-file-size`), per user (`--user-quota`, their live files), in all (`--files-max`,
//!   the content store), and the disk itself (a reserve is kept free, so chat and its history can go on).

pub mod transfer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use natter_proto::file::{self, FileInfo};
use natter_proto::{ErrorCode, Name, ServerFrame};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::hub::{Hub, Refusal};
use crate::outbox::Outbox;
use crate::store::files::object_path;
use crate::store::History;

/// Settings of shared files (`natter serve --files-dir … --max-file-size …`).
#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// Where files are kept; `None`: this server keeps no files (`files_off`).
    pub dir: Option<PathBuf>,
    /// Largest file, in bytes (`--max-file-size`, default 1 GiB).
    pub max_file: u64,
    /// Most bytes of live files one user may have shared (`--user-quota`; `None`: no limit).
    pub user_quota: Option<u64>,
    /// Most bytes in the content store in all (`--files-max`; `None`: only the disk limits it).
    pub total: Option<u64>,
    /// Files are kept this many days after they were shared (`--file-days`, default 30; `None`: forever).
    pub days: Option<u32>,
    /// Bytes of disk always left free: an upload that would eat into them is refused (`storage_full`).
    pub reserve: u64,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            dir: None,
            max_file: 1 << 30,
            user_quota: Some(5 << 30),
            total: None,
            days: Some(30),
            reserve: 256 << 20,
        }
    }
}

/// How long a transfer token stays valid.
pub const TOKEN_LIFE: Duration = Duration::from_secs(3600);

/// An offer of an upload that completed this recently is a retry: it gets the share already made.
pub const RETRY_WINDOW: Duration = Duration::from_secs(600);

/// An upload in progress untouched this long is deleted (its uploader gave up).
pub const ABANDONED: Duration = Duration::from_secs(24 * 3600);

/// What an upload in progress is, kept beside its bytes (`partial/<upload>.json`) so it survives a
/// restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadMeta {
    /// The uploader, as spelled.
    pub from: String,
    pub room: Option<String>,
    pub to: Option<String>,
    pub name: String,
    pub mime: String,
    pub size: u64,
    pub sha256: String,
}

/// What a token opens.
#[derive(Clone)]
enum Ticket {
    Upload {
        key: String,
        meta: Arc<UploadMeta>,
        /// The offering session: it gets the ack of the share (with the offer's `id`).
        outbox: Arc<Outbox>,
        id: Option<String>,
    },
    Download(Arc<FileInfo>),
}

#[derive(Default)]
struct State {
    tickets: HashMap<String, (Ticket, Instant)>,
    /// Uploads in progress: their uploader (folded) and declared size, counted against the quotas.
    reserved: HashMap<String, (String, u64)>,
    /// The connection currently sending each upload: a newer one for the same upload takes over.
    active: HashMap<String, (Arc<tokio::sync::Mutex<()>>, CancellationToken)>,
}

/// The server's shared files.
pub struct Files {
    pub config: FilesConfig,
    dir: PathBuf,
    state: Mutex<State>,
    /// When this process opened the store (the start-up sweep leaves anything newer alone).
    started: std::time::SystemTime,
    /// Cluster mode: where every node's shared files are ([`crate::cluster::SharedFiles`]).
    cluster: std::sync::OnceLock<crate::cluster::SharedFiles>,
}

/// An `offer`, as received.
pub struct Offer {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub room: Option<String>,
    pub to: Option<String>,
    pub id: Option<String>,
}

impl Files {
    /// Opens (creating) the files directory and takes stock of the uploads in progress there. `None`
    /// when the configuration keeps no files.
    pub fn open(config: FilesConfig) -> std::io::Result<Option<Arc<Files>>> {
        let Some(dir) = config.dir.clone() else {
            return Ok(None);
        };
        std::fs::create_dir_all(dir.join("partial"))?;
        std::fs::create_dir_all(dir.join("objects"))?;
        let mut state = State::default();
        for entry in std::fs::read_dir(dir.join("partial"))? {
            let path = entry?.path();
            let Some(key) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            match read_meta(&path) {
                Some(meta) => {
                    let owner = Name::new(&meta.from).map(|n| n.key().to_owned());
                    state
                        .reserved
                        .insert(key.to_owned(), (owner.unwrap_or_default(), meta.size));
                }
                None => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        Ok(Some(Arc::new(Files {
            config,
            dir,
            state: Mutex::new(state),
            started: std::time::SystemTime::now(),
            cluster: std::sync::OnceLock::new(),
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cluster mode: shares go through the cluster's object store, and files shared on other nodes are
    /// copied from it when asked for.
    pub fn share_through(&self, shared: crate::cluster::SharedFiles) {
        let _ = self.cluster.set(shared);
    }

    pub(crate) fn cluster(&self) -> Option<&crate::cluster::SharedFiles> {
        self.cluster.get()
    }

    /// Cluster mode: a finished upload's bytes stay in this node's content store (the share was
    /// recorded from the stream, which does not move them).
    fn keep_local(&self, key: &str, sha256: &str) {
        let object = self.object(sha256);
        if !object.exists() {
            if let Some(dir) = object.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = std::fs::rename(self.partial(key), &object);
        }
    }

    pub fn objects(&self) -> PathBuf {
        self.dir.join("objects")
    }

    fn partial(&self, key: &str) -> PathBuf {
        self.dir.join("partial").join(key)
    }

    /// Bytes of the upload `key` already here.
    fn have(&self, key: &str) -> u64 {
        std::fs::metadata(self.partial(key)).map_or(0, |m| m.len())
    }

    fn meta_path(&self, key: &str) -> PathBuf {
        self.dir.join("partial").join(format!("{key}.json"))
    }

    /// `offer`: checks the conversation and the limits, finds what the server already has of this upload,
    /// and answers `upload_ready` with a token.
    pub async fn offer(
        &self,
        hub: &Hub,
        history: &dyn History,
        me: &Name,
        offer: Offer,
        outbox: &Arc<Outbox>,
    ) -> Result<ServerFrame, Refusal> {
        if !file::is_sha256(&offer.sha256) {
            return Err(Refusal(
                ErrorCode::BadFrame,
                natter_proto::error_args!(
                    reason = "fields",
                    kind = "\"offer\"",
                    detail = "sha256 must be 64 lowercase hex digits"
                ),
            ));
        }
        if offer.size > self.config.max_file {
            return Err(Refusal(
                ErrorCode::FileTooBig,
                natter_proto::error_args!(
                    max = file::human_size(self.config.max_file),
                    bytes = self.config.max_file
                ),
            ));
        }
        // Whether this user may post there now: the same rules as a message (member, not muted, not
        // blocked, the person exists).
        let target = hub.prepare(me, offer.room.as_deref(), offer.to.as_deref(), "file", None)?;
        let name = file::safe_name(&offer.name);
        let meta = UploadMeta {
            from: me.to_string(),
            room: target.room.as_ref().map(|r| r.to_string()),
            to: target.to.as_ref().map(|n| n.to_string()),
            mime: mime_guess::from_path(&name)
                .first_or_octet_stream()
                .essence_str()
                .to_owned(),
            name,
            size: offer.size,
            sha256: offer.sha256.clone(),
        };
        let key = upload_key(me, &target, &offer.sha256, offer.size);
        let server_error = |_| {
            Refusal(
                ErrorCode::ServerError,
                natter_proto::error_args!(what = "other"),
            )
        };
        let since = jiff::Timestamp::now().as_millisecond() - RETRY_WINDOW.as_millis() as i64;
        if let Some(seq) = history
            .shared_upload(key.clone(), since)
            .await
            .map_err(server_error)?
        {
            return Ok(ServerFrame::UploadReady {
                id: offer.id,
                token: String::new(),
                offset: offer.size,
                size: offer.size,
                file: Some(seq),
            });
        }
        let (mine, stored) = history
            .file_usage(me.key().to_owned())
            .await
            .map_err(server_error)?;
        let have = self.have(&key);
        {
            let state = self.state();
            let others = state.reserved.iter().filter(|(k, _)| **k != key);
            let (my_pending, all_pending) = others.fold((0, 0), |(m, a), (_, (owner, size))| {
                (m + if owner == me.key() { *size } else { 0 }, a + size)
            });
            if let Some(limit) = self.config.user_quota {
                if mine + my_pending + offer.size > limit {
                    return Err(quota("user", limit));
                }
            }
            if let Some(limit) = self.config.total {
                if stored + all_pending + offer.size > limit {
                    return Err(quota("server", limit));
                }
            }
        }
        let free = fs4::available_space(&self.dir).unwrap_or(u64::MAX);
        if free < (offer.size - have.min(offer.size)).saturating_add(self.config.reserve) {
            tracing::warn!(
                "refused an upload of {} bytes: {} bytes free on the files' disk",
                offer.size,
                free
            );
            return Err(Refusal(ErrorCode::StorageFull, natter_proto::error_args!()));
        }
        let offset = self.begin(&key, &meta).map_err(|e| {
            tracing::error!("cannot start an upload in {}: {e}", self.dir.display());
            storage_refusal(&e)
        })?;
        let token = new_token();
        let mut state = self.state();
        state
            .reserved
            .insert(key.clone(), (me.key().to_owned(), meta.size));
        let now = Instant::now();
        state
            .tickets
            .retain(|_, (_, at)| now.duration_since(*at) < TOKEN_LIFE);
        state.tickets.insert(
            token.clone(),
            (
                Ticket::Upload {
                    key,
                    meta: Arc::new(meta),
                    outbox: outbox.clone(),
                    id: offer.id.clone(),
                },
                now,
            ),
        );
        Ok(ServerFrame::UploadReady {
            id: offer.id,
            token,
            offset,
            size: offer.size,
            file: None,
        })
    }

    /// Creates (or finds) an upload's files; returns how many of its bytes are already here. The same
    /// content offered again under another name keeps its bytes (only the description changes).
    fn begin(&self, key: &str, meta: &UploadMeta) -> std::io::Result<u64> {
        let meta_path = self.meta_path(key);
        let existing = read_meta(&meta_path);
        if existing.as_ref() != Some(meta) {
            let tmp = meta_path.with_extension("json.tmp");
            std::fs::write(
                &tmp,
                serde_json::to_vec(meta).map_err(std::io::Error::other)?,
            )?;
            let same_content =
                existing.is_some_and(|old| old.size == meta.size && old.sha256 == meta.sha256);
            if !same_content {
                // New, or unreadable: start from nothing.
                std::fs::File::create(self.partial(key))?;
            }
            std::fs::rename(tmp, &meta_path)?;
        }
        let data = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.partial(key))?;
        let len = data.metadata()?.len();
        if len > meta.size {
            data.set_len(0)?;
            return Ok(0);
        }
        Ok(len)
    }

    /// Forgets an upload in progress: its bytes, its description, its place in the quotas.
    fn discard(&self, key: &str) {
        let _ = std::fs::remove_file(self.partial(key));
        let _ = std::fs::remove_file(self.meta_path(key));
        self.end(key);
    }

    /// An upload is over (shared, or discarded): it no longer counts against the quotas.
    fn end(&self, key: &str) {
        let mut state = self.state();
        state.reserved.remove(key);
        state
            .tickets
            .retain(|_, (t, _)| !matches!(t, Ticket::Upload { key: k, .. } if k == key));
    }

    /// `fetch`: whether `me` may have the file — a member of its room now, or one of the two people of
    /// its private conversation — and a token to download it with.
    pub async fn fetch(
        &self,
        hub: &Hub,
        history: &dyn History,
        me: &Name,
        id: u64,
    ) -> Result<ServerFrame, Refusal> {
        let row = history.file(id).await.map_err(|_| {
            Refusal(
                ErrorCode::ServerError,
                natter_proto::error_args!(what = "other"),
            )
        })?;
        let Some(row) = row else {
            return Err(Refusal(
                ErrorCode::NoSuchFile,
                natter_proto::error_args!(file = id),
            ));
        };
        let allowed = match &row.room {
            Some(room) => natter_proto::RoomName::new(room).is_ok_and(|r| hub.is_member(me, &r)),
            None => row.uploader_key == me.key() || row.recipient_key.as_deref() == Some(me.key()),
        };
        if !allowed {
            return Err(Refusal(
                ErrorCode::Forbidden,
                match &row.room {
                    Some(room) => {
                        natter_proto::error_args!(what = "file", room = format!("#{room}"))
                    }
                    None => natter_proto::error_args!(what = "private_file"),
                },
            ));
        }
        if row.info.expired {
            return Err(Refusal(
                ErrorCode::FileExpired,
                natter_proto::error_args!(file = id),
            ));
        }
        if let Some(cluster) = self.cluster() {
            // Shared through another node: copied from the cluster first.
            let object = self.object(&row.info.sha256);
            if !object.exists() {
                if let Err(e) = cluster.get(&row.info.sha256, &object).await {
                    tracing::error!("cannot copy file {id} from the cluster: {e}");
                    return Err(Refusal(
                        ErrorCode::ServerError,
                        natter_proto::error_args!(what = "other"),
                    ));
                }
            }
        }
        let token = new_token();
        let now = Instant::now();
        let mut state = self.state();
        state
            .tickets
            .retain(|_, (_, at)| now.duration_since(*at) < TOKEN_LIFE);
        state.tickets.insert(
            token.clone(),
            (Ticket::Download(Arc::new(row.info.clone())), now),
        );
        Ok(ServerFrame::DownloadReady {
            id: None,
            token,
            file: Box::new(row.info),
        })
    }

    fn ticket(&self, token: &str) -> Option<Ticket> {
        let state = self.state();
        let (ticket, at) = state.tickets.get(token)?;
        (at.elapsed() < TOKEN_LIFE).then(|| ticket.clone())
    }

    /// Housekeeping: expires files past `--file-days` (through the store's writer), deletes uploads
    /// abandoned for [`ABANDONED`], and — at start-up — blob bytes the database does not know.
    pub async fn tidy(&self, hub: &Hub, history: &dyn History, sweep: bool) {
        if let Some(days) = self.config.days {
            let before = jiff::Timestamp::now().as_millisecond() - i64::from(days) * 86_400_000;
            match hub.expire_files(before, self.objects()).await {
                Ok(0) | Err(_) => {}
                Ok(n) => tracing::info!("{n} shared files expired (--file-days {days})"),
            }
        }
        let abandoned: Vec<String> = std::fs::read_dir(self.dir.join("partial"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                e.metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > ABANDONED))
            })
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .map(|n| n.trim_end_matches(".json").to_owned())
            })
            .collect();
        for key in abandoned {
            if !self.state().active.contains_key(&key) {
                tracing::info!("deleting an upload abandoned for a day ({key})");
                self.discard(&key);
            }
        }
        if sweep {
            let Ok(known) = history.blobs().await else {
                return;
            };
            let known: std::collections::HashSet<String> = known.into_iter().collect();
            let objects = self.objects();
            for entry in walk(&objects) {
                let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
                // Only bytes from before this process: an upload completing right now may have moved
                // its bytes in after the list of blobs was read.
                let old = std::fs::metadata(&entry)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t < self.started);
                if !known.contains(name) && old {
                    tracing::info!("deleting bytes of a file the database does not know ({name})");
                    let _ = std::fs::remove_file(&entry);
                }
            }
        }
    }

    pub fn object(&self, sha256: &str) -> PathBuf {
        object_path(&self.objects(), sha256)
    }
}

/// The files two levels under `dir` (the content store's layout).
fn walk(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|sub| {
            std::fs::read_dir(sub.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| e.path())
        .collect()
}

fn read_meta(path: &Path) -> Option<UploadMeta> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn quota(what: &str, limit: u64) -> Refusal {
    Refusal(
        ErrorCode::QuotaExceeded,
        natter_proto::error_args!(what = what, limit = file::human_size(limit), bytes = limit),
    )
}

/// An I/O error while storing: a full disk says so; anything else is the server's trouble.
fn storage_refusal(e: &std::io::Error) -> Refusal {
    if e.kind() == std::io::ErrorKind::StorageFull || e.kind() == std::io::ErrorKind::QuotaExceeded
    {
        Refusal(ErrorCode::StorageFull, natter_proto::error_args!())
    } else {
        Refusal(
            ErrorCode::ServerError,
            natter_proto::error_args!(what = "other"),
        )
    }
}

/// Names an upload: who sends what to which conversation.
fn upload_key(me: &Name, target: &crate::store::NewMessage, sha256: &str, size: u64) -> String {
    let conversation = match (&target.room, &target.to) {
        (Some(room), _) => format!("#{}", room.key()),
        (None, Some(to)) => format!("@{}", to.key()),
        (None, None) => String::new(),
    };
    let digest = Sha256::digest(format!("{}\n{conversation}\n{sha256}\n{size}", me.key()));
    file::hex(&digest[..16])
}

/// A fresh token: 192 random bits, URL-safe.
fn new_token() -> String {
    use base64::Engine;
    use rand_core::RngCore;
    let mut bytes = [0u8; 24];
    rand_core::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
