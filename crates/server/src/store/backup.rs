//! `natter backup` and `natter restore`: a consistent copy of a server's data directory — the history
//! database (through SQLite's online backup, so the server keeps running and writing meanwhile) and its
//! TLS certificate and key, and the shared files the copied database knows (`files/objects`; uploads in
//! progress are not carried) — and putting one back into a stopped server's data directory.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// The files of a data directory besides the database that a backup carries (kept with their modes).
const KEPT: &[&str] = &[crate::tls::CERT_FILE, crate::tls::KEY_FILE];

/// The database's file name in a data directory and in a backup.
pub const DB_FILE: &str = "natter.db";

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Dir {
        path: path.display().to_string(),
        source,
    }
}

/// Copies the database `db` and the data directory's keys (`data_dir`, if given) into the new directory
/// `out`. Returns the highest seq in the copy.
pub fn backup(db: &Path, data_dir: Option<&Path>, out: &Path) -> Result<u64, StoreError> {
    let open_err = |source| StoreError::Open {
        path: db.display().to_string(),
        source,
    };
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    let target = out.join(DB_FILE);
    if target.exists() {
        return Err(io_err(&target)(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "a backup is already there",
        )));
    }
    let source =
        Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(open_err)?;
    source
        .busy_timeout(Duration::from_secs(5))
        .map_err(open_err)?;
    let mut copy = Connection::open(&target)?;
    {
        // In steps, so the server's writer is never held up for long; a step that meets a write simply
        // starts that page over.
        let step = rusqlite::backup::Backup::new(&source, &mut copy)?;
        step.run_to_completion(256, Duration::from_millis(5), None)?;
    }
    let last: Option<u64> = copy.query_row("SELECT MAX(seq) FROM messages", [], |r| r.get(0))?;
    if let Some(dir) = data_dir {
        for name in KEPT {
            let from = dir.join(name);
            if from.exists() {
                std::fs::copy(&from, out.join(name)).map_err(io_err(&from))?;
            }
        }
        // The blobs the copied database refers to — content-addressed, so a blob's bytes never change:
        // copying them after the database is consistent. One that expired meanwhile is simply gone.
        let blobs = super::files::blobs(&copy)?;
        copy_objects(&blobs, &dir.join(OBJECTS), &out.join(OBJECTS))?;
    }
    Ok(last.unwrap_or(0))
}

/// Where shared files' bytes are, in a data directory and in a backup.
const OBJECTS: &str = "files/objects";

/// Copies the objects named `blobs` from `from` to `to` (a hard link where the file system allows).
fn copy_objects(blobs: &[String], from: &Path, to: &Path) -> Result<(), StoreError> {
    for sha in blobs.iter().filter(|s| natter_proto::file::is_sha256(s)) {
        let source = super::files::object_path(from, sha);
        if !source.exists() {
            continue;
        }
        let target = super::files::object_path(to, sha);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        if std::fs::hard_link(&source, &target).is_err() {
            std::fs::copy(&source, &target).map_err(io_err(&source))?;
        }
    }
    Ok(())
}

/// Puts the backup in `from` into the data directory `data_dir` (database at `db`): the server must be
/// stopped. Refuses to overwrite a database unless `force`.
pub fn restore(from: &Path, db: &Path, data_dir: &Path, force: bool) -> Result<u64, StoreError> {
    let source_path = from.join(DB_FILE);
    let source = Connection::open_with_flags(&source_path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|source| StoreError::Open {
            path: source_path.display().to_string(),
            source,
        })?;
    if db.exists() && !force {
        return Err(io_err(db)(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "a database is already there (stop the server; --force replaces it)",
        )));
    }
    std::fs::create_dir_all(data_dir).map_err(io_err(data_dir))?;
    let mut target = Connection::open(db).map_err(|source| StoreError::Open {
        path: db.display().to_string(),
        source,
    })?;
    {
        let step = rusqlite::backup::Backup::new(&source, &mut target)?;
        step.run_to_completion(1024, Duration::from_millis(0), None)?;
    }
    let last: Option<u64> = target.query_row("SELECT MAX(seq) FROM messages", [], |r| r.get(0))?;
    for name in KEPT {
        let file = from.join(name);
        if file.exists() {
            std::fs::copy(&file, data_dir.join(name)).map_err(io_err(&file))?;
        }
    }
    let blobs = super::files::blobs(&target)?;
    copy_objects(&blobs, &from.join(OBJECTS), &data_dir.join(OBJECTS))?;
    Ok(last.unwrap_or(0))
}
