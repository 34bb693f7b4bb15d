//! The history database's schema, as numbered migrations.

use rusqlite::Connection;

use super::StoreError;

/// The schema, as numbered migrations: entry `i` takes a database from `user_version` i to i + 1, in one
/// transaction with the version bump. Append only — never edit a migration that has shipped. A database
/// from before migrations (version 0, tables present) takes migration 0 harmlessly (`IF NOT EXISTS`).
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the first release's schema.
    "
CREATE TABLE IF NOT EXISTS messages (
    seq           INTEGER PRIMARY KEY,
    ts            TEXT    NOT NULL,
    ts_ms         INTEGER NOT NULL,
    room_key      TEXT,
    room          TEXT,
    sender_key    TEXT    NOT NULL,
    sender        TEXT    NOT NULL,
    recipient_key TEXT,
    recipient     TEXT,
    client_id     TEXT,
    text          TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_room      ON messages(room_key, seq)      WHERE room_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_recipient ON messages(recipient_key, seq) WHERE recipient_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_sender    ON messages(sender_key, seq);
CREATE INDEX IF NOT EXISTS messages_client_id ON messages(sender_key, client_id) WHERE client_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS memberships (
    name_key TEXT NOT NULL,
    room_key TEXT NOT NULL,
    room     TEXT NOT NULL,
    PRIMARY KEY (name_key, room_key)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
",
    // 2: retention by age finds old rows by index; a user's own private messages have one of their own,
    // so neither a prune nor a private-history read walks everything a heavy talker said in rooms.
    "
CREATE INDEX messages_ts             ON messages(ts_ms);
CREATE INDEX messages_private_sender ON messages(sender_key, seq) WHERE room_key IS NULL;
",
    // 3: owned names (issue 12). An account is a name someone proved they hold a key for; `since` is the
    // last seq before they claimed it (private messages up to there were a guest's, never shown to the
    // owner); `pm_seen` the highest seq of their private messages already sent to one of their sessions;
    // `password` an argon2id PHC string, if they set one (`password_once`: an admin's reset code, cleared
    // by its first use); `admin` a server admin. `blocks`: whose whispers an
    // owner refuses; `bans`: names (`name`, folded) and addresses (`address`) banned server-wide;
    // `room_rules`: each room's owner, operators, bans, … (JSON); `messages.event`: a room event (JSON).
    "
CREATE TABLE accounts (
    name_key     TEXT PRIMARY KEY,
    name         TEXT    NOT NULL,
    created_ms   INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    since        INTEGER NOT NULL,
    pm_seen      INTEGER NOT NULL,
    password     TEXT,
    password_once INTEGER NOT NULL DEFAULT 0,
    admin        INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE account_keys (
    name_key TEXT    NOT NULL,
    key      BLOB    NOT NULL,
    added_ms INTEGER NOT NULL,
    PRIMARY KEY (name_key, key)
);
CREATE TABLE blocks (
    name_key    TEXT NOT NULL,
    blocked_key TEXT NOT NULL,
    PRIMARY KEY (name_key, blocked_key)
);
CREATE TABLE bans (
    kind  TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (kind, value)
);
CREATE TABLE room_rules (
    room_key TEXT PRIMARY KEY,
    rules    TEXT NOT NULL
);
ALTER TABLE messages ADD COLUMN event TEXT;
",
    // 4: shared files (issue 13). `blobs`: the content store, one row per distinct content (its bytes are
    // `files/objects/<first two hex>/<sha256>`); `files`: one row per share, keyed by the seq of the
    // message that shared it (the file's id), pointing at a blob. A blob is deleted in the same
    // transaction that leaves it with no live share (and its bytes right after, by the same writer).
    // `upload_key` names an upload (uploader, conversation, content), so a retried upload finds its share;
    // `messages.file`: the file message's `FileInfo` (JSON).
    "
CREATE TABLE blobs (
    sha256     TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE files (
    seq           INTEGER PRIMARY KEY,
    sha256        TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    name          TEXT    NOT NULL,
    mime          TEXT    NOT NULL,
    uploader_key  TEXT    NOT NULL,
    room_key      TEXT,
    room          TEXT,
    recipient_key TEXT,
    upload_key    TEXT    NOT NULL,
    created_ms    INTEGER NOT NULL,
    expired       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX files_live_sha      ON files(sha256)       WHERE expired = 0;
CREATE INDEX files_live_age      ON files(created_ms)   WHERE expired = 0;
CREATE INDEX files_live_uploader ON files(uploader_key) WHERE expired = 0;
CREATE INDEX files_upload        ON files(upload_key, seq);
ALTER TABLE messages ADD COLUMN file TEXT;
",
    // 4 → 5: notices (IRC's NOTICE: messages no program answers automatically) and client tags
    // (IRCv3's client-only tags, a JSON object).
    "
ALTER TABLE messages ADD COLUMN notice INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN tags TEXT;
",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the database up to [`SCHEMA_VERSION`], one migration per transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    // A new database is created at the latest version; only an existing one is said to be migrated.
    let fresh = version == 0
        && conn.query_row(
            "SELECT COUNT(*) = 0 FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get::<_, bool>(0),
        )?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as u32 + 1)?;
        tx.commit()?;
        if !fresh {
            tracing::info!("history database migrated to schema version {}", i + 1);
        }
    }
    Ok(())
}
