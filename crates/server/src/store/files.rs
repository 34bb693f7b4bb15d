//! The SQL of shared files: recording a share with its message, reading a file's row, quotas, and
//! expiry — where a blob is deleted in the same transaction that leaves it without a live share.

use std::path::Path;

use natter_proto::file::FileInfo;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::{FileRow, NewFile, NewMessage};

/// Records the share of `file` as message `seq` (inside the writer's transaction): moves the uploaded
/// bytes into the content store — unless the same content is there already, when they are dropped —
/// and adds the blob (if new) and the file's row.
///
/// The move happens before the commit. If the commit then fails, the blob's bytes are on disk with no
/// row: harmless (the next upload of the same content reuses them; the start-up sweep removes them).
pub(super) fn share(
    tx: &Transaction<'_>,
    message: &NewMessage,
    file: &NewFile,
    seq: u64,
    now_ms: i64,
) -> rusqlite::Result<()> {
    place(file).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    record(tx, message, file, seq, now_ms)
}

/// Adds the blob (if new) and the file's row of a share; its bytes are placed by whoever took them (in
/// cluster mode: the node that took the upload; any other node copies them from the cluster when asked).
pub(super) fn record(
    tx: &Transaction<'_>,
    message: &NewMessage,
    file: &NewFile,
    seq: u64,
    now_ms: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO blobs (sha256, size, created_ms) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![file.sha256, file.size, now_ms])?;
    tx.prepare_cached(
        "INSERT INTO files (seq, sha256, size, name, mime, uploader_key, room_key, room, recipient_key,
                            upload_key, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        seq,
        file.sha256,
        file.size,
        file.name,
        file.mime,
        message.from.key(),
        message.room.as_ref().map(|r| r.key()),
        message.room.as_ref().map(|r| r.as_str()),
        message.to.as_ref().map(|n| n.key()),
        file.upload_key,
        now_ms,
    ])?;
    Ok(())
}

/// Moves an upload's bytes to their place in the content store — or, when the content is already there
/// (the same file shared twice is stored once), aside to [`NewFile::duplicate`], for the upload's own task
/// to delete after the commit: unlinking a large file can take the file system a while, and the writer's
/// time is every chat message's.
fn place(file: &NewFile) -> std::io::Result<()> {
    if file.object.exists() {
        return std::fs::rename(&file.partial, file.duplicate());
    }
    if let Some(dir) = file.object.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::rename(&file.partial, &file.object)
}

/// Where the content store keeps the bytes of `sha256` under `objects`.
pub fn object_path(objects: &Path, sha256: &str) -> std::path::PathBuf {
    objects.join(&sha256[..2]).join(sha256)
}

/// Marks every live file shared before `before_ms` expired and deletes, in the same transaction, the
/// blobs no live share uses any more; then removes their bytes. Returns how many files expired.
///
/// Runs on the writer, like [`share`]: a blob cannot be deleted between an upload's move into the store
/// and the commit of its share.
pub(super) fn expire(
    conn: &mut Connection,
    before_ms: i64,
    objects: &Path,
) -> rusqlite::Result<usize> {
    let tx = conn.transaction()?;
    let expired: Vec<String> = {
        let mut stmt = tx.prepare(
            "UPDATE files SET expired = 1 WHERE expired = 0 AND created_ms < ?1 RETURNING sha256",
        )?;
        let rows = stmt.query_map(params![before_ms], |r| r.get::<_, String>(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut unused = Vec::new();
    for sha in expired.iter().collect::<std::collections::BTreeSet<_>>() {
        let live = tx
            .prepare_cached("SELECT 1 FROM files WHERE sha256 = ?1 AND expired = 0")?
            .exists(params![sha])?;
        if !live && tx.execute("DELETE FROM blobs WHERE sha256 = ?1", params![sha])? > 0 {
            unused.push(sha.clone());
        }
    }
    tx.commit()?;
    for sha in &unused {
        if let Err(e) = std::fs::remove_file(object_path(objects, sha)) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("cannot delete an expired file's bytes ({sha}): {e}");
            }
        }
    }
    Ok(expired.len())
}

/// The columns [`row_to_file`] reads.
const FILE_COLUMNS: &str =
    "seq, name, size, mime, sha256, expired, uploader_key, room, recipient_key, created_ms";

fn row_to_file(r: &rusqlite::Row<'_>) -> rusqlite::Result<FileRow> {
    Ok(FileRow {
        info: FileInfo {
            id: r.get(0)?,
            name: r.get(1)?,
            size: r.get(2)?,
            mime: r.get(3)?,
            sha256: r.get(4)?,
            expired: r.get(5)?,
        },
        uploader_key: r.get(6)?,
        room: r.get(7)?,
        recipient_key: r.get(8)?,
        created_ms: r.get(9)?,
    })
}

pub(super) fn file(conn: &Connection, id: u64) -> rusqlite::Result<Option<FileRow>> {
    conn.prepare_cached(&format!("SELECT {FILE_COLUMNS} FROM files WHERE seq = ?1"))?
        .query_row(params![id], row_to_file)
        .optional()
}

pub(super) fn usage(conn: &Connection, uploader: &str) -> rusqlite::Result<(u64, u64)> {
    let mine: u64 = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(size), 0) FROM files WHERE uploader_key = ?1 AND expired = 0",
        )?
        .query_row(params![uploader], |r| r.get(0))?;
    let all: u64 = conn
        .prepare_cached("SELECT COALESCE(SUM(size), 0) FROM blobs")?
        .query_row([], |r| r.get(0))?;
    Ok((mine, all))
}

pub(super) fn shared_upload(
    conn: &Connection,
    upload_key: &str,
    since_ms: i64,
) -> rusqlite::Result<Option<u64>> {
    conn.prepare_cached(
        "SELECT seq FROM files WHERE upload_key = ?1 AND created_ms >= ?2 AND expired = 0
         ORDER BY seq DESC LIMIT 1",
    )?
    .query_row(params![upload_key, since_ms], |r| r.get(0))
    .optional()
}

pub(super) fn blobs(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT sha256 FROM blobs")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.collect()
}
