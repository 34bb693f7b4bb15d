//! `natter admin`: the accounts, looked after directly in the database — with the server running or not
//! (SQLite's WAL lets both at once; a running server reads the accounts again within 30 seconds).

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::queries::{expire, forget};
use super::schema::migrate;
use super::sqlite::configure;
use super::StoreError;

/// One owned name, as `natter admin list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameInfo {
    pub name: String,
    pub created_ms: i64,
    pub last_seen_ms: i64,
    pub keys: u32,
    pub password: bool,
    pub admin: bool,
}

/// An open database, for the admin's commands.
pub struct Admin {
    conn: Connection,
}

impl Admin {
    /// Opens (creating and migrating as needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        configure(&conn).map_err(open_err)?;
        migrate(&mut conn)?;
        Ok(Self { conn })
    }

    /// Every owned name, alphabetically.
    pub fn names(&self) -> Result<Vec<NameInfo>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT name, created_ms, last_seen_ms,
                    (SELECT COUNT(*) FROM account_keys k WHERE k.name_key = a.name_key),
                    password IS NOT NULL, admin
             FROM accounts a ORDER BY name_key",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(NameInfo {
                name: r.get(0)?,
                created_ms: r.get(1)?,
                last_seen_ms: r.get(2)?,
                keys: r.get(3)?,
                password: r.get(4)?,
                admin: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Releases an owned name: its account, keys and private history are deleted. Whether it was owned.
    pub fn release(&mut self, name: &str) -> Result<bool, StoreError> {
        Ok(forget(&mut self.conn, &natter_proto::name::fold(name))?)
    }

    /// Replaces a name's password with a one-time code (returned), good for one sign-in: the owner then
    /// sets their own. `None` if the name is not owned.
    pub fn reset_password(&mut self, name: &str) -> Result<Option<String>, StoreError> {
        use rand_core::{OsRng, RngCore};
        let mut bytes = [0u8; 9];
        OsRng.fill_bytes(&mut bytes);
        let code = natter_proto::auth::encode(&bytes);
        let Some(hash) = crate::passwords::Passwords::hash_blocking(&code) else {
            return Ok(None);
        };
        let changed = self.conn.execute(
            "UPDATE accounts SET password = ?2, password_once = 1 WHERE name_key = ?1",
            params![natter_proto::name::fold(name), hash],
        )?;
        Ok((changed > 0).then_some(code))
    }

    /// Makes a name's owner a server admin (or, `on` false, no longer). Whether the name is owned.
    pub fn set_admin(&self, name: &str, on: bool) -> Result<bool, StoreError> {
        let changed = self.conn.execute(
            "UPDATE accounts SET admin = ?2 WHERE name_key = ?1",
            params![natter_proto::name::fold(name), on],
        )?;
        Ok(changed > 0)
    }

    /// Bans (or lifts the ban of) a name server-wide.
    pub fn ban_name(&self, name: &str, on: bool) -> Result<(), StoreError> {
        self.ban("name", &natter_proto::name::fold(name), on)
    }

    /// Bans (or lifts the ban of) an address server-wide.
    pub fn ban_address(&self, address: std::net::IpAddr, on: bool) -> Result<(), StoreError> {
        self.ban("address", &address.to_string(), on)
    }

    fn ban(&self, kind: &str, value: &str, on: bool) -> Result<(), StoreError> {
        let sql = match on {
            true => "INSERT OR IGNORE INTO bans (kind, value) VALUES (?1, ?2)",
            false => "DELETE FROM bans WHERE kind = ?1 AND value = ?2",
        };
        self.conn.execute(sql, params![kind, value])?;
        Ok(())
    }

    /// Releases the names unused (no sign-out) for `days` as of `now_ms`. Returns them.
    pub fn expire(&mut self, now_ms: i64, days: u32) -> Result<Vec<String>, StoreError> {
        let before = now_ms - i64::from(days) * 24 * 60 * 60 * 1000;
        Ok(expire(&mut self.conn, before, &[])?)
    }

    /// Whether `name` is banned server-wide.
    pub fn is_banned(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM bans WHERE kind = 'name' AND value = ?1",
                params![natter_proto::name::fold(name)],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}
