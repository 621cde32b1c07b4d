//! The device's local state: one SQLite file, every value sealed ([`crate::seal`]).
//!
//! Records are `(kind, name, sealed value)` where the name is a keyed hash of the record's id,
//! so the file shows how many groups or contacts a device has but not which. Every change a
//! flow makes is applied in one transaction ([`Batch`]): the group state, its log cursor and
//! the events it produced for the application land together or not at all, which is what
//! makes a crash between any two steps lose nothing and deliver nothing twice.

use crate::error::Error;
use crate::seal::{Sealer, StoreKey};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::time::Duration;

/// The kinds of record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The device's own keys and registration (one record).
    Device,
    /// A contact user, with their devices' cards.
    Contact,
    /// A group: MLS state, log cursor, pending commit.
    Group,
    /// The private half of a KeyPackage in the pool, by KeyPackageRef.
    KeyPackage,
    /// Sibling devices and other per-device bookkeeping.
    Meta,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Device => "device",
            Kind::Contact => "contact",
            Kind::Group => "group",
            Kind::KeyPackage => "key_package",
            Kind::Meta => "meta",
        }
    }
}

/// Changes applied in one transaction.
#[derive(Default)]
pub(crate) struct Batch {
    puts: Vec<(Kind, Vec<u8>, Vec<u8>)>,
    deletes: Vec<(Kind, Vec<u8>)>,
    events: Vec<Vec<u8>>,
    history: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Batch {
    /// Stores `value` (JSON) as record `id` of `kind`.
    pub(crate) fn put<T: Serialize>(
        &mut self,
        kind: Kind,
        id: &[u8],
        value: &T,
    ) -> Result<(), Error> {
        let json = serde_json::to_vec(value).map_err(|e| Error::Corrupt(e.to_string()))?;
        self.puts.push((kind, id.to_vec(), json));
        Ok(())
    }

    /// Deletes record `id` of `kind`.
    pub(crate) fn delete(&mut self, kind: Kind, id: &[u8]) {
        self.deletes.push((kind, id.to_vec()));
    }

    /// Queues an event for the application.
    pub(crate) fn event<T: Serialize>(&mut self, event: &T) -> Result<(), Error> {
        self.events
            .push(serde_json::to_vec(event).map_err(|e| Error::Corrupt(e.to_string()))?);
        Ok(())
    }

    /// Appends a message to `group`'s history.
    pub(crate) fn history<T: Serialize>(&mut self, group: &[u8], message: &T) -> Result<(), Error> {
        let json = serde_json::to_vec(message).map_err(|e| Error::Corrupt(e.to_string()))?;
        self.history.push((group.to_vec(), json));
        Ok(())
    }

    /// Whether the batch changes nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.puts.is_empty()
            && self.deletes.is_empty()
            && self.events.is_empty()
            && self.history.is_empty()
    }
}

/// The local store.
pub(crate) struct Store {
    pool: SqlitePool,
    sealer: Sealer,
}

const SALT_LEN: usize = 16;
const CHECK: &[u8] = b"conclave-client store v1";

impl Store {
    /// Opens (or creates) the store at `path`; [`Error::WrongKey`] if `key` is not the one it
    /// was created with.
    pub(crate) async fn open(path: &Path, key: &StoreKey) -> Result<Self, Error> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Every transaction is on disk before the flow goes on to talk to a server.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        // One connection: a device is one writer, and every read sees the last write.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS store_meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS records (
                 kind TEXT NOT NULL, name BLOB NOT NULL, sealed BLOB NOT NULL,
                 PRIMARY KEY (kind, name));
             CREATE TABLE IF NOT EXISTS events (
                 id INTEGER PRIMARY KEY AUTOINCREMENT, sealed BLOB NOT NULL);
             -- Messages of each group, kept after they are acknowledged as events; the
             -- group column is the keyed name of the group id, not the id.
             CREATE TABLE IF NOT EXISTS history (
                 id INTEGER PRIMARY KEY AUTOINCREMENT, grp BLOB NOT NULL, sealed BLOB NOT NULL);
             CREATE INDEX IF NOT EXISTS history_by_group ON history (grp, id);",
        )
        .execute(&pool)
        .await?;
        let salt: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT value FROM store_meta WHERE name = 'salt'")
                .fetch_optional(&pool)
                .await?;
        let sealer = match salt {
            Some(salt) => {
                let sealer = Sealer::new(key, &salt)?;
                let check: Vec<u8> =
                    sqlx::query_scalar("SELECT value FROM store_meta WHERE name = 'check'")
                        .fetch_one(&pool)
                        .await?;
                match sealer.open(b"check", &check) {
                    Ok(v) if v == CHECK => sealer,
                    _ => return Err(Error::WrongKey),
                }
            }
            None => {
                let mut salt = [0u8; SALT_LEN];
                getrandom::fill(&mut salt).map_err(|e| Error::Config(e.to_string()))?;
                let sealer = Sealer::new(key, &salt)?;
                let check = sealer.seal(b"check", CHECK)?;
                let mut tx = pool.begin().await?;
                sqlx::query(
                    "INSERT INTO store_meta (name, value) VALUES ('salt', ?), ('check', ?)",
                )
                .bind(salt.to_vec())
                .bind(check)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                sealer
            }
        };
        Ok(Self { pool, sealer })
    }

    fn slot(kind: Kind, name: &[u8]) -> Vec<u8> {
        let mut slot = kind.as_str().as_bytes().to_vec();
        slot.push(0);
        slot.extend_from_slice(name);
        slot
    }

    /// Record `id` of `kind`, if stored.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        kind: Kind,
        id: &[u8],
    ) -> Result<Option<T>, Error> {
        let name = self.sealer.name(kind.as_str(), id)?;
        let sealed: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT sealed FROM records WHERE kind = ? AND name = ?")
                .bind(kind.as_str())
                .bind(&name)
                .fetch_optional(&self.pool)
                .await?;
        match sealed {
            None => Ok(None),
            Some(sealed) => {
                let json = self.sealer.open(&Self::slot(kind, &name), &sealed)?;
                serde_json::from_slice(&json)
                    .map(Some)
                    .map_err(|e| Error::Corrupt(e.to_string()))
            }
        }
    }

    /// Every record of `kind`.
    pub(crate) async fn list<T: DeserializeOwned>(&self, kind: Kind) -> Result<Vec<T>, Error> {
        let rows = sqlx::query("SELECT name, sealed FROM records WHERE kind = ?")
            .bind(kind.as_str())
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let name: Vec<u8> = row.try_get("name")?;
            let sealed: Vec<u8> = row.try_get("sealed")?;
            let json = self.sealer.open(&Self::slot(kind, &name), &sealed)?;
            out.push(serde_json::from_slice(&json).map_err(|e| Error::Corrupt(e.to_string()))?);
        }
        Ok(out)
    }

    /// Applies `batch` atomically.
    pub(crate) async fn apply(&self, batch: Batch) -> Result<(), Error> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for (kind, id, json) in batch.puts {
            let name = self.sealer.name(kind.as_str(), &id)?;
            let sealed = self.sealer.seal(&Self::slot(kind, &name), &json)?;
            sqlx::query(
                "INSERT INTO records (kind, name, sealed) VALUES (?, ?, ?)
                 ON CONFLICT (kind, name) DO UPDATE SET sealed = excluded.sealed",
            )
            .bind(kind.as_str())
            .bind(name)
            .bind(sealed)
            .execute(&mut *tx)
            .await?;
        }
        for (kind, id) in batch.deletes {
            let name = self.sealer.name(kind.as_str(), &id)?;
            sqlx::query("DELETE FROM records WHERE kind = ? AND name = ?")
                .bind(kind.as_str())
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        for json in batch.events {
            let sealed = self.sealer.seal(b"event", &json)?;
            sqlx::query("INSERT INTO events (sealed) VALUES (?)")
                .bind(sealed)
                .execute(&mut *tx)
                .await?;
        }
        for (group, json) in batch.history {
            let name = self.sealer.name("history", &group)?;
            let sealed = self.sealer.seal(&Self::slot(Kind::Group, &name), &json)?;
            sqlx::query("INSERT INTO history (grp, sealed) VALUES (?, ?)")
                .bind(name)
                .bind(sealed)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The last `limit` messages of `group`'s history, oldest first.
    pub(crate) async fn history<T: DeserializeOwned>(
        &self,
        group: &[u8],
        limit: u32,
    ) -> Result<Vec<T>, Error> {
        let name = self.sealer.name("history", group)?;
        let rows: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT sealed FROM history WHERE grp = ? ORDER BY id DESC LIMIT ?")
                .bind(&name)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for sealed in rows.into_iter().rev() {
            // Sealed to the group's slot: a row moved to another group does not open.
            let json = self.sealer.open(&Self::slot(Kind::Group, &name), &sealed)?;
            out.push(serde_json::from_slice(&json).map_err(|e| Error::Corrupt(e.to_string()))?);
        }
        Ok(out)
    }

    /// The oldest `limit` events not yet acknowledged, with their ids.
    pub(crate) async fn events<T: DeserializeOwned>(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, T)>, Error> {
        let rows = sqlx::query("SELECT id, sealed FROM events WHERE id > ? ORDER BY id LIMIT ?")
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get("id")?;
            let sealed: Vec<u8> = row.try_get("sealed")?;
            let json = self.sealer.open(b"event", &sealed)?;
            out.push((
                id,
                serde_json::from_slice(&json).map_err(|e| Error::Corrupt(e.to_string()))?,
            ));
        }
        Ok(out)
    }

    /// Deletes the events up to and including `id`.
    pub(crate) async fn ack_events(&self, id: i64) -> Result<(), Error> {
        sqlx::query("DELETE FROM events WHERE id <= ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Closes the file.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}
