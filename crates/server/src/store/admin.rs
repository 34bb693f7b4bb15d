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

/// One of `natter admin`'s changes to the accounts. On one server `natter admin` applies it to the
/// database itself; in cluster mode it is published to the stream and every node's store applies it
/// ([`crate::cluster::Change::Admin`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "admin", rename_all = "snake_case")]
pub enum AdminChange {
    /// The name's account, keys and private history go; anyone may use it again.
    Release {
        name: String,
    },
    /// The owner's password is replaced by a one-time code's hash.
    OncePassword {
        name: String,
        hash: String,
    },
    SetAdmin {
        name: String,
        on: bool,
    },
    BanName {
        name: String,
        on: bool,
    },
    BanAddress {
        address: std::net::IpAddr,
        on: bool,
    },
}

impl AdminChange {
    /// Applies the change; whether it found what it changes (an owned name; bans always do).
    pub(crate) fn apply(&self, conn: &mut Connection) -> rusqlite::Result<bool> {
        let fold = natter_proto::name::fold;
        let ban = |conn: &Connection, kind: &str, value: &str, on: bool| {
            let sql = match on {
                true => "INSERT OR IGNORE INTO bans (kind, value) VALUES (?1, ?2)",
                false => "DELETE FROM bans WHERE kind = ?1 AND value = ?2",
            };
            conn.execute(sql, params![kind, value]).map(|_| true)
        };
        match self {
            AdminChange::Release { name } => forget(conn, &fold(name)),
            AdminChange::OncePassword { name, hash } => conn
                .execute(
                    "UPDATE accounts SET password = ?2, password_once = 1 WHERE name_key = ?1",
                    params![fold(name), hash],
                )
                .map(|n| n > 0),
            AdminChange::SetAdmin { name, on } => conn
                .execute(
                    "UPDATE accounts SET admin = ?2 WHERE name_key = ?1",
                    params![fold(name), on],
                )
                .map(|n| n > 0),
            AdminChange::BanName { name, on } => ban(conn, "name", &fold(name), *on),
            AdminChange::BanAddress { address, on } => {
                ban(conn, "address", &address.to_string(), *on)
            }
        }
    }

    /// A one-time code for [`AdminChange::OncePassword`], and the change that sets it for `name`.
    pub fn once_password(name: &str) -> Option<(String, Self)> {
        use rand_core::{OsRng, RngCore};
        let mut bytes = [0u8; 9];
        OsRng.fill_bytes(&mut bytes);
        let code = natter_proto::auth::encode(&bytes);
        let hash = crate::passwords::Passwords::hash_blocking(&code)?;
        let change = AdminChange::OncePassword {
            name: name.to_owned(),
            hash,
        };
        Some((code, change))
    }
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

    /// Applies one change; whether it found what it changes (see [`AdminChange::apply`]).
    pub fn apply(&mut self, change: &AdminChange) -> Result<bool, StoreError> {
        Ok(change.apply(&mut self.conn)?)
    }

    /// Releases an owned name: its account, keys and private history are deleted. Whether it was owned.
    pub fn release(&mut self, name: &str) -> Result<bool, StoreError> {
        self.apply(&AdminChange::Release {
            name: name.to_owned(),
        })
    }

    /// Replaces a name's password with a one-time code (returned), good for one sign-in: the owner then
    /// sets their own. `None` if the name is not owned.
    pub fn reset_password(&mut self, name: &str) -> Result<Option<String>, StoreError> {
        let Some((code, change)) = AdminChange::once_password(name) else {
            return Ok(None);
        };
        Ok(self.apply(&change)?.then_some(code))
    }

    /// Makes a name's owner a server admin (or, `on` false, no longer). Whether the name is owned.
    pub fn set_admin(&mut self, name: &str, on: bool) -> Result<bool, StoreError> {
        self.apply(&AdminChange::SetAdmin {
            name: name.to_owned(),
            on,
        })
    }

    /// Bans (or lifts the ban of) a name server-wide.
    pub fn ban_name(&mut self, name: &str, on: bool) -> Result<(), StoreError> {
        self.apply(&AdminChange::BanName {
            name: name.to_owned(),
            on,
        })
        .map(|_| ())
    }

    /// Bans (or lifts the ban of) an address server-wide.
    pub fn ban_address(&mut self, address: std::net::IpAddr, on: bool) -> Result<(), StoreError> {
        self.apply(&AdminChange::BanAddress { address, on })
            .map(|_| ())
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
