//! The SQL of history: reads (pages, what a resume missed), the dedupe lookup, remembered rooms. Every
//! read walks index ranges in seq order and stops at its limit (a test checks SQLite's plans).

use natter_proto::frame::Message;
use natter_proto::{Name, RoomName};
use rusqlite::{params, Connection, OptionalExtension};

use super::sqlite::DEDUPE_WINDOW;
use super::{Account, NewMessage, Scope, Stored};

/// The rooms a name has joined, in the order joined.
pub(super) fn rooms_of(conn: &Connection, name: &str) -> rusqlite::Result<Vec<RoomName>> {
    let mut stmt =
        conn.prepare_cached("SELECT room FROM memberships WHERE name_key = ?1 ORDER BY rowid")?;
    let rooms = stmt.query_map(params![name], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for room in rooms {
        if let Ok(room) = RoomName::new(&room?) {
            out.push(room);
        }
    }
    Ok(out)
}

/// Every owned name, as its owner spelled it.
pub(super) fn owned_names(conn: &Connection) -> rusqlite::Result<Vec<Name>> {
    let mut stmt = conn.prepare("SELECT name FROM accounts")?;
    let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(names.filter_map(|n| Name::new(&n.ok()?).ok()).collect())
}

/// The account of a folded name, if it is owned.
pub(super) fn account(conn: &mut Connection, name: &str) -> rusqlite::Result<Option<Account>> {
    let Some((display, since, pm_seen, password, password_once)) = conn
        .prepare_cached(
            "SELECT name, since, pm_seen, password, password_once FROM accounts WHERE name_key = ?1",
        )?
        .query_row(params![name], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u64>(1)?,
                r.get::<_, u64>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, bool>(4)?,
            ))
        })
        .optional()?
    else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached("SELECT key FROM account_keys WHERE name_key = ?1")?;
    let keys = stmt
        .query_map(params![name], |r| r.get::<_, Vec<u8>>(0))?
        .filter_map(|k| <[u8; 32]>::try_from(k.ok()?).ok())
        .collect();
    Ok(Name::new(&display).ok().map(|name| Account {
        name,
        keys,
        since,
        pm_seen,
        password,
        password_once,
    }))
}

/// Sets a password hash: on an owned name, or with `claim` on a free one (which it then owns).
pub(super) fn set_password(
    conn: &mut Connection,
    name: &Name,
    hash: &str,
    claim: bool,
    now_ms: i64,
    last_seq: u64,
) -> rusqlite::Result<Option<Account>> {
    let tx = conn.transaction()?;
    let owned = tx
        .prepare_cached("SELECT 1 FROM accounts WHERE name_key = ?1")?
        .exists(params![name.key()])?;
    match (owned, claim) {
        (false, true) => {
            tx.prepare_cached(
                "INSERT INTO accounts (name_key, name, created_ms, last_seen_ms, since, pm_seen, password)
                 VALUES (?1, ?2, ?3, ?3, ?4, ?4, ?5)",
            )?
            .execute(params![name.key(), name.as_str(), now_ms, last_seq, hash])?;
        }
        (true, false) => {
            tx.prepare_cached(
                "UPDATE accounts SET password = ?2, password_once = 0 WHERE name_key = ?1",
            )?
            .execute(params![name.key(), hash])?;
        }
        _ => return Ok(None),
    }
    tx.commit()?;
    account(conn, name.key())
}

/// Forgets an owned name: its account, keys, memberships, blocks, and private messages to or from it.
/// Whether there was one.
pub(super) fn forget(conn: &mut Connection, name: &str) -> rusqlite::Result<bool> {
    let tx = conn.transaction()?;
    let existed = tx.execute("DELETE FROM accounts WHERE name_key = ?1", params![name])? > 0;
    for sql in [
        "DELETE FROM account_keys WHERE name_key = ?1",
        "DELETE FROM memberships WHERE name_key = ?1",
        "DELETE FROM blocks WHERE name_key = ?1 OR blocked_key = ?1",
        "DELETE FROM messages WHERE room_key IS NULL AND (recipient_key = ?1 OR sender_key = ?1)",
    ] {
        tx.execute(sql, params![name])?;
    }
    tx.commit()?;
    Ok(existed)
}

/// Forgets every owned name unused since `before_ms` (its last sign-out), except those in `keep` (online
/// now). Returns the names forgotten.
pub(super) fn expire(
    conn: &mut Connection,
    before_ms: i64,
    keep: &[String],
) -> rusqlite::Result<Vec<String>> {
    let stale: Vec<String> = {
        let mut stmt = conn.prepare("SELECT name_key FROM accounts WHERE last_seen_ms < ?1")?;
        let rows = stmt.query_map(params![before_ms], |r| r.get::<_, String>(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut gone = Vec::new();
    for name in stale.into_iter().filter(|n| !keep.contains(n)) {
        if forget(conn, &name)? {
            gone.push(name);
        }
    }
    Ok(gone)
}

/// Blocks (or with `on` false, unblocks) `blocked`'s whispers to `name`.
pub(super) fn block(
    conn: &Connection,
    name: &str,
    blocked: &str,
    on: bool,
) -> rusqlite::Result<()> {
    let sql = match on {
        true => "INSERT OR IGNORE INTO blocks (name_key, blocked_key) VALUES (?1, ?2)",
        false => "DELETE FROM blocks WHERE name_key = ?1 AND blocked_key = ?2",
    };
    conn.prepare_cached(sql)?.execute(params![name, blocked])?;
    Ok(())
}

/// What the hub keeps in memory of the accounts, read at start and again now and then (so `natter admin`
/// takes effect on a running server).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub owned: Vec<Name>,
    /// (owner, whose whispers they refuse), folded names.
    pub blocks: Vec<(String, String)>,
    /// Folded names banned server-wide.
    pub banned_names: Vec<String>,
    /// Addresses banned server-wide.
    pub banned_addresses: Vec<std::net::IpAddr>,
    /// Server admins (folded names).
    pub admins: Vec<String>,
    /// Rooms with rules (owner, operators, bans, …): folded room name and the rules as JSON.
    pub room_rules: Vec<(String, String)>,
}

pub(super) fn snapshot(conn: &Connection) -> rusqlite::Result<Snapshot> {
    let strings = |conn: &Connection, sql: &str| -> rusqlite::Result<Vec<String>> {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect()
    };
    let mut stmt = conn.prepare("SELECT name_key, blocked_key FROM blocks")?;
    let blocks = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    drop(stmt);
    Ok(Snapshot {
        owned: owned_names(conn)?,
        blocks,
        banned_names: strings(conn, "SELECT value FROM bans WHERE kind = 'name'")?,
        banned_addresses: strings(conn, "SELECT value FROM bans WHERE kind = 'address'")?
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect(),
        admins: strings(conn, "SELECT name_key FROM accounts WHERE admin = 1")?,
        room_rules: {
            let mut stmt = conn.prepare("SELECT room_key, rules FROM room_rules")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        },
    })
}

/// Adds a key to an owned name's keys.
pub(super) fn add_key(
    conn: &Connection,
    name: &str,
    key: &[u8; 32],
    now_ms: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO account_keys (name_key, key, added_ms)
         SELECT name_key, ?2, ?3 FROM accounts WHERE name_key = ?1",
    )?
    .execute(params![name, key.as_slice(), now_ms])?;
    Ok(())
}

/// Binds `key` to `name` if nobody owns it (as of `last_seq`); the account if `key` is bound to it
/// afterwards.
pub(super) fn claim(
    conn: &mut Connection,
    name: &Name,
    key: &[u8; 32],
    now_ms: i64,
    last_seq: u64,
) -> rusqlite::Result<Option<Account>> {
    let tx = conn.transaction()?;
    let owned: bool = tx
        .prepare_cached("SELECT 1 FROM accounts WHERE name_key = ?1")?
        .exists(params![name.key()])?;
    if !owned {
        tx.prepare_cached(
            "INSERT INTO accounts (name_key, name, created_ms, last_seen_ms, since, pm_seen)
             VALUES (?1, ?2, ?3, ?3, ?4, ?4)",
        )?
        .execute(params![name.key(), name.as_str(), now_ms, last_seq])?;
        tx.prepare_cached(
            "INSERT INTO account_keys (name_key, key, added_ms) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![name.key(), key.as_slice(), now_ms])?;
    }
    let bound = tx
        .prepare_cached("SELECT 1 FROM account_keys WHERE name_key = ?1 AND key = ?2")?
        .exists(params![name.key(), key.as_slice()])?;
    tx.commit()?;
    if !bound {
        return Ok(None);
    }
    account(conn, name.key())
}

/// The earlier message this one repeats, if its client id matches one of the sender's recent messages.
pub(super) fn find_duplicate(
    conn: &Connection,
    m: &NewMessage,
) -> rusqlite::Result<Option<Stored>> {
    let Some(id) = &m.client_id else {
        return Ok(None);
    };
    // The common case (a new id) costs one index lookup; the window is checked only on a match.
    let earlier = conn
        .prepare_cached(
            "SELECT seq, ts FROM messages WHERE sender_key = ?1 AND client_id = ?2 ORDER BY seq DESC LIMIT 1",
        )?
        .query_row(params![m.from.key(), id], |r| {
            Ok(Stored {
                seq: r.get(0)?,
                ts: r.get(1)?,
                duplicate: true,
            })
        })
        .optional()?;
    let Some(earlier) = earlier else {
        return Ok(None);
    };
    let newer: u64 = conn
        .prepare_cached("SELECT COUNT(*) FROM messages WHERE sender_key = ?1 AND seq > ?2")?
        .query_row(params![m.from.key(), earlier.seq], |r| r.get(0))?;
    Ok((newer < DEDUPE_WINDOW).then_some(earlier))
}

/// A file message's `expired` comes from its file's row (found by primary key), so expiry never rewrites
/// history.
pub(super) const COLUMNS: &str = "seq, ts, room, sender, recipient, text, event, file, \
     CASE WHEN file IS NULL THEN 0 ELSE (SELECT expired FROM files WHERE files.seq = messages.seq) END, \
     notice, tags";

pub(super) fn row_to_message(r: &rusqlite::Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        tags: r
            .get::<_, Option<String>>(10)?
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default(),
        notice: r.get::<_, bool>(9)?,
        seq: r.get(0)?,
        ts: r.get(1)?,
        room: r.get(2)?,
        from: r.get(3)?,
        to: r.get(4)?,
        text: r.get(5)?,
        event: r
            .get::<_, Option<String>>(6)?
            .and_then(|e| serde_json::from_str(&e).ok()),
        file: r
            .get::<_, Option<String>>(7)?
            .and_then(|f| serde_json::from_str::<natter_proto::file::FileInfo>(&f).ok())
            .map(|mut f| {
                f.expired = r.get::<_, Option<bool>>(8).ok().flatten().unwrap_or(false);
                Box::new(f)
            }),
    })
}

/// Up to `limit` messages of `scope` with seq < `before`, oldest first.
pub(super) fn page(
    conn: &Connection,
    scope: &Scope,
    before: u64,
    limit: usize,
) -> rusqlite::Result<Vec<Message>> {
    range(conn, scope, 0, before, limit, true)
}

/// Up to `limit` messages of `scope` with `after < seq < before` — the newest when `newest`, else the
/// oldest — oldest first.
pub(super) fn range(
    conn: &Connection,
    scope: &Scope,
    after: u64,
    before: u64,
    limit: usize,
    newest: bool,
) -> rusqlite::Result<Vec<Message>> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let before = i64::try_from(before).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(&range_sql(scope, newest))?;
    let rows = match scope {
        Scope::Room(key) | Scope::Private(key) => {
            stmt.query_map(params![key, after, before, limit as i64], row_to_message)?
        }
        Scope::Between(me, other) => stmt.query_map(
            params![me, after, before, limit as i64, other],
            row_to_message,
        )?,
    };
    let mut messages = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    if newest {
        messages.reverse();
    }
    Ok(messages)
}

/// `range`'s statement: ?1 the room or user key, ?2 after, ?3 before, ?4 limit, ?5 the other user's key.
pub(super) fn range_sql(scope: &Scope, newest: bool) -> String {
    let order = if newest { "DESC" } else { "ASC" };
    match scope {
        Scope::Room(_) => format!(
            "SELECT {COLUMNS} FROM messages WHERE room_key = ?1 AND seq > ?2 AND seq < ?3
             ORDER BY seq {order} LIMIT ?4"
        ),
        // Two index ranges merged in seq order (an OR here made SQLite collect and sort every match):
        // what others sent me, and what I sent privately (a whisper to myself is in the first arm only).
        Scope::Private(_) => format!(
            "SELECT {COLUMNS} FROM messages WHERE recipient_key = ?1 AND seq > ?2 AND seq < ?3
             UNION ALL
             SELECT {COLUMNS} FROM messages
             WHERE sender_key = ?1 AND room_key IS NULL AND recipient_key <> ?1 AND seq > ?2 AND seq < ?3
             ORDER BY seq {order} LIMIT ?4"
        ),
        // What the other sent me, and what I sent them (once, if they are me).
        Scope::Between(..) => format!(
            "SELECT {COLUMNS} FROM messages
             WHERE recipient_key = ?1 AND sender_key = ?5 AND seq > ?2 AND seq < ?3
             UNION ALL
             SELECT {COLUMNS} FROM messages
             WHERE sender_key = ?1 AND recipient_key = ?5 AND ?5 <> ?1 AND seq > ?2 AND seq < ?3
             ORDER BY seq {order} LIMIT ?4"
        ),
    }
}

/// `me`'s conversations with activity strictly between the two times (see `History::conversations`).
pub(super) fn conversations(
    conn: &Connection,
    me: &str,
    rooms: &[String],
    (after_ms, before_ms): (i64, i64),
    (private_since, limit): (u64, usize),
) -> rusqlite::Result<Vec<super::Conversation>> {
    let private_since = i64::try_from(private_since).unwrap_or(i64::MAX);
    let mut found = Vec::new();
    let mut latest_in_room = conn.prepare_cached(
        "SELECT room, MAX(ts_ms) FROM messages WHERE room_key = ?1 AND event IS NULL
         HAVING MAX(ts_ms) > ?2 AND MAX(ts_ms) < ?3",
    )?;
    for room in rooms {
        let row: Option<(Option<String>, Option<i64>)> = latest_in_room
            .query_row(params![room, after_ms, before_ms], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        if let Some((Some(name), Some(latest_ms))) = row {
            found.push(super::Conversation {
                room: Some(name),
                with: None,
                latest_ms,
            });
        }
    }
    // The other person of each private message to or from me (a message to myself: me).
    let mut private = conn.prepare_cached(
        "SELECT CASE WHEN sender_key = ?1 THEN recipient ELSE sender END AS other, MAX(ts_ms)
         FROM messages
         WHERE room_key IS NULL AND (recipient_key = ?1 OR sender_key = ?1)
           AND seq > ?4
         GROUP BY CASE WHEN sender_key = ?1 THEN recipient_key ELSE sender_key END
         HAVING MAX(ts_ms) > ?2 AND MAX(ts_ms) < ?3",
    )?;
    let rows = private.query_map(params![me, after_ms, before_ms, private_since], |r| {
        Ok(super::Conversation {
            room: None,
            with: Some(r.get(0)?),
            latest_ms: r.get(1)?,
        })
    })?;
    for row in rows {
        found.push(row?);
    }
    found.sort_by_key(|c| c.latest_ms);
    found.truncate(limit);
    Ok(found)
}

/// The seq of the first message stored at or after `ms`, or one more than the last.
pub(super) fn seq_at(conn: &Connection, ms: i64) -> rusqlite::Result<u64> {
    let first: Option<u64> = conn
        .prepare_cached("SELECT seq FROM messages WHERE ts_ms >= ?1 ORDER BY seq LIMIT 1")?
        .query_row(params![ms], |r| r.get(0))
        .optional()?;
    match first {
        Some(seq) => Ok(seq),
        None => {
            let last: Option<u64> =
                conn.query_row("SELECT MAX(seq) FROM messages", [], |r| r.get(0))?;
            Ok(last.unwrap_or(0) + 1)
        }
    }
}

/// Messages with `after < seq <= upto` that `me` may see and did not send — in their rooms or addressed to
/// them — oldest first, at most `limit`.
///
/// One index range per room and one for private messages, merged in seq order: each arm starts at
/// `after` and the merge stops at `limit`, so a chunk costs what it returns, however long the history
/// (an OR over the scopes made SQLite collect and sort every match again for each chunk).
pub(super) fn missed(
    conn: &Connection,
    me: &str,
    rooms: &[String],
    private: bool,
    after: u64,
    upto: u64,
    limit: usize,
) -> rusqlite::Result<Vec<Message>> {
    let mut stmt = conn.prepare(&missed_sql(rooms.len(), private))?;
    let mut values: Vec<rusqlite::types::Value> = vec![
        (after.min(i64::MAX as u64) as i64).into(),
        (upto.min(i64::MAX as u64) as i64).into(),
        me.to_owned().into(),
        (limit as i64).into(),
    ];
    values.extend(
        rooms
            .iter()
            .map(|r| rusqlite::types::Value::from(r.clone())),
    );
    let rows = stmt.query_map(rusqlite::params_from_iter(values), row_to_message)?;
    rows.collect()
}

/// `missed`'s statement for `rooms` rooms (and private messages to me, if `private`): ?1 after, ?2 up to,
/// ?3 me, ?4 limit, ?5… the rooms.
pub(super) fn missed_sql(rooms: usize, private: bool) -> String {
    let mut arms = Vec::new();
    if private {
        arms.push(format!(
            "SELECT {COLUMNS} FROM messages WHERE recipient_key = ?3 AND sender_key <> ?3 AND seq > ?1 AND seq <= ?2"
        ));
    }
    for i in 0..rooms {
        arms.push(format!(
            "SELECT {COLUMNS} FROM messages WHERE room_key = ?{} AND sender_key <> ?3 AND seq > ?1 AND seq <= ?2",
            i + 5
        ));
    }
    if arms.is_empty() {
        // Nothing to look in; the same parameters, no rows.
        arms.push(format!(
            "SELECT {COLUMNS} FROM messages WHERE 0 AND seq > ?1 AND seq <= ?2 AND sender_key <> ?3"
        ));
    }
    format!("{} ORDER BY seq LIMIT ?4", arms.join(" UNION ALL "))
}

/// The oldest seq still stored, if any.
pub(super) fn oldest_seq(conn: &Connection) -> rusqlite::Result<Option<u64>> {
    conn.query_row("SELECT MIN(seq) FROM messages", [], |r| r.get(0))
}
