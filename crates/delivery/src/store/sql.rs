//! The SQL both engines share. Placeholders are `$n`, which SQLite and PostgreSQL both
//! accept; everything stays within what CockroachDB also accepts: the epoch compare-and-set
//! is a conditional UPDATE, no advisory locks, and every PostgreSQL transaction is retried
//! on a serialization failure or deadlock (SQLSTATE 40001, 40P01). SQLite's single writer
//! waits on a busy file up to its busy timeout instead.
//!
//! Ordering comes from counters in rows, taken with `UPDATE … RETURNING` inside the
//! transaction that uses them, never from insert-time sequences: the row lock of that UPDATE
//! makes the transactions that take consecutive numbers commit one after the other, so
//! numbers become visible in order and a reader paging by cursor never passes one that
//! commits later. A group's log takes its sequence numbers from `groups.last_seq`, a
//! mailbox's entries theirs from `mailboxes.last_seq`.
//!
//! The one difference is the claim of a KeyPackage: PostgreSQL picks its candidate row with
//! `FOR UPDATE SKIP LOCKED`, and when that finds nothing, once more with a plain
//! `FOR UPDATE` that waits for rows other transactions hold (they keep them only if they
//! fail), so the last resort is never handed out while a regular KeyPackage is left. SQLite,
//! whose single writer serialises transactions, needs neither. Either way the row is taken
//! by `DELETE … RETURNING`, which only one transaction can do.

/// Whether a database error is worth retrying the whole transaction for.
pub fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => matches!(
            d.code().as_deref(),
            // PostgreSQL / CockroachDB: serialization_failure, deadlock_detected.
            Some("40001") | Some("40P01")
            // SQLite: SQLITE_BUSY, SQLITE_LOCKED and their extended codes.
            | Some("5") | Some("6") | Some("261") | Some("517") | Some("262")
        ),
        sqlx::Error::PoolTimedOut => true,
        _ => false,
    }
}

/// Most fan-out rows (a commit's Welcome entries) written by one multi-row statement: at
/// three parameters a row, well within SQLite's 32,766 and PostgreSQL's 65,535.
pub const FANOUT_ROWS: usize = 500;

/// `$first, $first+1, …` for `n` parameters.
pub fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|k| format!("${k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs an async block returning `Result<_, StoreError>` again while it fails with a
/// retryable database error (at most 10 attempts, with a growing pause).
macro_rules! retry {
    ($body:expr) => {{
        let mut attempt = 0u32;
        loop {
            match $body.await {
                Err($crate::error::StoreError::Database(e))
                    if attempt < 10 && $crate::store::sql::is_retryable(&e) =>
                {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(1u64 << attempt.min(7)))
                        .await;
                }
                other => break other,
            }
        }
    }};
}
pub(crate) use retry;

/// Implements [`crate::store::Store`] for an engine type that has `reader()` returning its
/// `sqlx::Pool` and `write(f)`, which runs `f` on a connection as (part of) one durable
/// transaction: `f` opens its own transaction with `begin()`, which is a savepoint when the
/// engine batches several writes in one transaction (SQLite's writer task).
/// `claim_lock` and `wait_lock` end the KeyPackage claim's candidate queries;
/// `lock_in_order` says whether a commit first locks the mailbox rows of its Welcomes by
/// ascending id (PostgreSQL, whose row locks could otherwise deadlock; SQLite's single
/// writer needs no row locks).
macro_rules! sql_store {
    ($store:ty, $conn:ty, claim_lock = $lock:literal, wait_lock = $wait:literal, lock_in_order = $lock_in_order:literal) => {
        impl $store {
            /// Takes the next entry number of a mailbox; `None` if there is no such mailbox.
            /// The row lock taken here is held until the transaction ends, so concurrent
            /// inserters into one mailbox commit in the order of their numbers.
            async fn next_entry_seq(
                conn: &mut $conn,
                mailbox: &[u8],
            ) -> Result<Option<i64>, StoreError> {
                let row: Option<(i64,)> = sqlx::query_as(
                    "UPDATE mailboxes SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq",
                )
                .bind(mailbox)
                .fetch_optional(&mut *conn)
                .await?;
                Ok(row.map(|r| r.0))
            }

            /// Records a request's nonce in the caller's transaction; false if it was there
            /// already (a replay). On PostgreSQL a concurrent transaction inserting the same
            /// nonce makes this wait for it, then find the nonce if that one commits: two
            /// nodes never both accept one request.
            async fn insert_nonce(conn: &mut $conn, n: &UsedNonce) -> Result<bool, StoreError> {
                let r = sqlx::query(
                    "INSERT INTO nonces (scope, nonce, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(n.scope.as_slice())
                .bind(n.nonce.as_slice())
                .bind(n.expires_at)
                .execute(&mut *conn)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            /// Drops `n` references to each Welcome (by ascending id, so transactions lock
            /// shared Welcomes in one order) and deletes those no entry refers to any more;
            /// returns how many were deleted.
            async fn release_welcomes(
                conn: &mut $conn,
                released: &std::collections::BTreeMap<i64, i64>,
            ) -> Result<u64, StoreError> {
                let mut deleted = 0;
                for (id, n) in released {
                    let left: Option<(i64,)> = sqlx::query_as(
                        "UPDATE welcomes SET refs = refs - $2 WHERE id = $1 RETURNING refs",
                    )
                    .bind(id)
                    .bind(n)
                    .fetch_optional(&mut *conn)
                    .await?;
                    if matches!(left, Some((refs,)) if refs <= 0) {
                        deleted += sqlx::query("DELETE FROM welcomes WHERE id = $1")
                            .bind(id)
                            .execute(&mut *conn)
                            .await?
                            .rows_affected();
                    }
                }
                Ok(deleted)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            async fn use_nonce(
                &self,
                scope: &[u8],
                nonce: &[u8],
                expires_at: i64,
            ) -> Result<bool, StoreError> {
                let used = std::sync::Arc::new(UsedNonce {
                    scope: scope.to_vec(),
                    nonce: nonce.to_vec(),
                    expires_at,
                });
                self.write(move |conn: &mut $conn| {
                    let used = used.clone();
                    Box::pin(async move { Self::insert_nonce(conn, &used).await })
                })
                .await
            }

            async fn create_mailbox(
                &self,
                id: &[u8],
                public_key: &[u8],
                now: i64,
            ) -> Result<(), StoreError> {
                let (id, public_key) = (id.to_vec(), public_key.to_vec());
                self.write(move |conn: &mut $conn| {
                    let (id, public_key) = (id.clone(), public_key.clone());
                    Box::pin(async move {
                        sqlx::query(
                            "INSERT INTO mailboxes (id, public_key, created_at) VALUES ($1, $2, $3)",
                        )
                        .bind(id)
                        .bind(public_key)
                        .bind($crate::store::record_time(now))
                        .execute(&mut *conn)
                        .await?;
                        Ok(())
                    })
                })
                .await
            }

            async fn mailbox_key(&self, id: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
                let row: Option<(Vec<u8>,)> =
                    sqlx::query_as("SELECT public_key FROM mailboxes WHERE id = $1")
                        .bind(id)
                        .fetch_optional(self.reader())
                        .await?;
                Ok(row.map(|r| r.0))
            }

            async fn post_blob(
                &self,
                mailbox: &[u8],
                data: &[u8],
                now: i64,
                expires_at: i64,
            ) -> Result<Option<MailboxEntryRow>, StoreError> {
                let (mailbox, data) = (mailbox.to_vec(), data.to_vec());
                self.write(move |conn: &mut $conn| {
                    let (mailbox, data) = (mailbox.clone(), data.clone());
                    Box::pin(async move {
                    let mut tx = conn.begin().await?;
                    let Some(seq) = Self::next_entry_seq(&mut tx, &mailbox).await? else {
                        return Ok(None);
                    };
                    sqlx::query(
                        "INSERT INTO mailbox_entries (mailbox_id, seq, kind, data, created_at, expires_at) \
                         VALUES ($1, $2, 2, $3, $4, $5)",
                    )
                    .bind(&mailbox)
                    .bind(seq)
                    .bind(&data)
                    .bind($crate::store::record_time(now))
                    .bind($crate::store::record_expiry(expires_at))
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(Some(MailboxEntryRow {
                        id: seq,
                        kind: EntryKind::Blob,
                        data,
                    }))
                    })
                })
                .await
            }

            async fn fetch_entries(
                &self,
                mailbox: &[u8],
                after: i64,
                limit: i64,
            ) -> Result<Vec<MailboxEntryRow>, StoreError> {
                let rows: Vec<(i64, i64, Option<Vec<u8>>, Option<Vec<u8>>)> =
                    sqlx::query_as(
                        "SELECT e.seq, e.kind, e.data, w.data \
                         FROM mailbox_entries e LEFT JOIN welcomes w ON w.id = e.welcome_id \
                         WHERE e.mailbox_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3",
                    )
                    .bind(mailbox)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(self.reader())
                    .await?;
                rows.into_iter()
                    .map(|(id, kind, data, welcome)| {
                        let kind = match kind {
                            1 => EntryKind::Welcome,
                            2 => EntryKind::Blob,
                            _ => return Err(StoreError::Corrupt("entry kind")),
                        };
                        let data = data.or(welcome).ok_or(StoreError::Corrupt("entry data"))?;
                        Ok(MailboxEntryRow { id, kind, data })
                    })
                    .collect()
            }

            async fn ack_entries(&self, mailbox: &[u8], ids: &[i64]) -> Result<u64, StoreError> {
                let (mailbox, ids) = (mailbox.to_vec(), ids.to_vec());
                self.write(move |conn: &mut $conn| {
                    let (mailbox, mut ids) = (mailbox.clone(), ids.clone());
                    // In one order, so two transactions never wait for each other's rows.
                    ids.sort_unstable();
                    ids.dedup();
                    Box::pin(async move {
                        let mut tx = conn.begin().await?;
                        let mut deleted = 0;
                        let mut released = std::collections::BTreeMap::<i64, i64>::new();
                        for id in ids {
                            let row: Option<(Option<i64>,)> = sqlx::query_as(
                                "DELETE FROM mailbox_entries WHERE mailbox_id = $1 AND seq = $2 \
                                 RETURNING welcome_id",
                            )
                            .bind(&mailbox)
                            .bind(id)
                            .fetch_optional(&mut *tx)
                            .await?;
                            if let Some((welcome,)) = row {
                                deleted += 1;
                                if let Some(w) = welcome {
                                    *released.entry(w).or_default() += 1;
                                }
                            }
                        }
                        // A Welcome goes with its last entry.
                        Self::release_welcomes(&mut tx, &released).await?;
                        tx.commit().await?;
                        Ok(deleted)
                    })
                })
                .await
            }

            async fn create_pool(
                &self,
                pool: &[u8],
                mailbox: &[u8],
                secret_hash: &[u8],
                now: i64,
            ) -> Result<(), StoreError> {
                let (pool, mailbox, secret_hash) = (pool.to_vec(), mailbox.to_vec(), secret_hash.to_vec());
                self.write(move |conn: &mut $conn| {
                    let (pool, mailbox, secret_hash) = (pool.clone(), mailbox.clone(), secret_hash.clone());
                    Box::pin(async move {
                        sqlx::query(
                            "INSERT INTO pools (id, mailbox_id, claim_secret_hash, created_at) \
                             VALUES ($1, $2, $3, $4)",
                        )
                        .bind(pool)
                        .bind(mailbox)
                        .bind(secret_hash)
                        .bind($crate::store::record_time(now))
                        .execute(&mut *conn)
                        .await?;
                        Ok(())
                    })
                })
                .await
            }

            async fn pool(&self, pool: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT mailbox_id, claim_secret_hash FROM pools WHERE id = $1",
                )
                .bind(pool)
                .fetch_optional(self.reader())
                .await?)
            }

            async fn upload_key_packages(
                &self,
                pool: &[u8],
                items: &[(Vec<u8>, bool)],
                expires_at: i64,
            ) -> Result<(), StoreError> {
                let (pool, items) = (pool.to_vec(), std::sync::Arc::new(items.to_vec()));
                self.write(move |conn: &mut $conn| {
                    let (pool, items) = (pool.clone(), items.clone());
                    Box::pin(async move {
                    let mut tx = conn.begin().await?;
                    if items.iter().any(|(_, last)| *last) {
                        sqlx::query(
                            "DELETE FROM sealed_key_packages WHERE pool_id = $1 AND last_resort = TRUE",
                        )
                        .bind(&pool)
                        .execute(&mut *tx)
                        .await?;
                    }
                    for (sealed, last_resort) in items.iter() {
                        sqlx::query(
                            "INSERT INTO sealed_key_packages (pool_id, sealed, last_resort, expires_at) \
                             VALUES ($1, $2, $3, $4)",
                        )
                        .bind(&pool)
                        .bind(sealed.as_slice())
                        .bind(*last_resort)
                        // Earlier, never later: a KeyPackage is never served past its time.
                        .bind($crate::store::record_time(expires_at))
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(())
                    })
                })
                .await
            }

            async fn pool_count(&self, pool: &[u8], now: i64) -> Result<PoolCount, StoreError> {
                let (available,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM sealed_key_packages \
                     WHERE pool_id = $1 AND last_resort = FALSE AND expires_at > $2",
                )
                .bind(pool)
                .bind(now)
                .fetch_one(self.reader())
                .await?;
                let (last,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM sealed_key_packages \
                     WHERE pool_id = $1 AND last_resort = TRUE AND expires_at > $2",
                )
                .bind(pool)
                .bind(now)
                .fetch_one(self.reader())
                .await?;
                Ok(PoolCount { available: to_u64(available)?, last_resort: last > 0 })
            }

            async fn claim(&self, c: NewClaim<'_>) -> Result<ClaimOutcome, StoreError> {
                let (pool, hash) = (c.pool.to_vec(), c.secret_hash.to_vec());
                // The claim budget as a token bucket in GCRA form (one column): `claim_tat` is
                // when the bucket would be full again; a claim is allowed while it is at most
                // `burst - 1` intervals ahead of now, and moves it one interval on.
                let per_minute = i64::from(c.per_minute.max(1));
                let interval = (60_000_000 / per_minute).max(1);
                let tolerance = interval.saturating_mul(per_minute - 1);
                let now_us = c.now_micros;
                let now = now_us.div_euclid(1_000_000);
                let paid = c.paid;
                self.write(move |conn: &mut $conn| {
                    let (pool, hash) = (pool.clone(), hash.clone());
                    Box::pin(async move {
                    let mut tx = conn.begin().await?;
                    // RFC 9420 §16.8: the budget is one per pool, in its row, taken by a
                    // conditional UPDATE whose row lock also serialises the pool's claims.
                    // A paid claim (a Privacy Pass token) neither needs nor takes budget.
                    let row: Option<(Vec<u8>,)> = sqlx::query_as(
                        "UPDATE pools SET claim_tat = CASE WHEN $5 THEN claim_tat ELSE \
                           CASE WHEN claim_tat > $2 THEN claim_tat ELSE $2 END + $3 END \
                         WHERE id = $1 AND ($5 OR claim_tat <= $2 + $4) RETURNING claim_secret_hash",
                    )
                    .bind(&pool)
                    .bind(now_us)
                    .bind(interval)
                    .bind(tolerance)
                    .bind(paid)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some((stored,)) = row else {
                        let exists: Option<(i64,)> =
                            sqlx::query_as("SELECT created_at FROM pools WHERE id = $1")
                                .bind(&pool)
                                .fetch_optional(&mut *tx)
                                .await?;
                        return Ok(match exists {
                            Some(_) => ClaimOutcome::RateLimited,
                            None => ClaimOutcome::NoPool,
                        });
                    };
                    if !$crate::auth::hashes_equal(&hash, &stored) {
                        // The token stays spent.
                        tx.commit().await?;
                        return Ok(ClaimOutcome::WrongSecret);
                    }
                    // RFC 9750 §5.1, RFC 9420 §16.8: each KeyPackage is handed out once.
                    for _ in 0..64 {
                        let mut candidate: Option<(i64,)> = sqlx::query_as(concat!(
                            "SELECT id FROM sealed_key_packages \
                             WHERE pool_id = $1 AND last_resort = FALSE AND expires_at > $2 \
                             ORDER BY id LIMIT 1",
                            $lock
                        ))
                        .bind(&pool)
                        .bind(now)
                        .fetch_optional(&mut *tx)
                        .await?;
                        if candidate.is_none() {
                            // Regular rows locked by other transactions were skipped; they
                            // are still there if those fail. Wait for them rather than hand
                            // out the last resort while a regular KeyPackage is left.
                            candidate = sqlx::query_as(concat!(
                                "SELECT id FROM sealed_key_packages \
                                 WHERE pool_id = $1 AND last_resort = FALSE AND expires_at > $2 \
                                 ORDER BY id LIMIT 1",
                                $wait
                            ))
                            .bind(&pool)
                            .bind(now)
                            .fetch_optional(&mut *tx)
                            .await?;
                        }
                        let Some((id,)) = candidate else {
                            // Only the last resort may be left: handed out, never deleted.
                            let last: Option<(Vec<u8>,)> = sqlx::query_as(
                                "SELECT sealed FROM sealed_key_packages \
                                 WHERE pool_id = $1 AND last_resort = TRUE AND expires_at > $2 \
                                 ORDER BY id DESC LIMIT 1",
                            )
                            .bind(&pool)
                            .bind(now)
                            .fetch_optional(&mut *tx)
                            .await?;
                            tx.commit().await?;
                            return Ok(match last {
                                Some((sealed,)) => ClaimOutcome::Claimed { sealed, last_resort: true },
                                None => ClaimOutcome::Empty,
                            });
                        };
                        let deleted: Option<(Vec<u8>,)> = sqlx::query_as(
                            "DELETE FROM sealed_key_packages WHERE id = $1 RETURNING sealed",
                        )
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                        if let Some((sealed,)) = deleted {
                            tx.commit().await?;
                            return Ok(ClaimOutcome::Claimed { sealed, last_resort: false });
                        }
                        // Deleted by another transaction since we read it: the next one.
                    }
                    Err(StoreError::Corrupt("claim did not settle"))
                    })
                })
                .await
            }

            async fn create_group(
                &self,
                group_id: &[u8],
                auth_key: &[u8],
                now: i64,
            ) -> Result<bool, StoreError> {
                let (group_id, auth_key) = (group_id.to_vec(), auth_key.to_vec());
                self.write(move |conn: &mut $conn| {
                    let (group_id, auth_key) = (group_id.clone(), auth_key.clone());
                    Box::pin(async move {
                    let mut tx = conn.begin().await?;
                    let created: Option<(i64,)> = sqlx::query_as(
                        "INSERT INTO groups (group_id, epoch, last_seq, epoch_started_at, created_at) \
                         VALUES ($1, 0, 0, $2, $2) ON CONFLICT DO NOTHING RETURNING id",
                    )
                    .bind(group_id)
                    // Epoch 0 has no previous epoch, so no grace period needs its start.
                    .bind($crate::store::record_time(now))
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some((gref,)) = created else {
                        return Ok(false);
                    };
                    sqlx::query(
                        "INSERT INTO epoch_keys (group_ref, epoch, auth_key, start_seq, created_at) \
                         VALUES ($1, 0, $2, 0, $3)",
                    )
                    .bind(gref)
                    .bind(auth_key)
                    .bind($crate::store::record_time(now))
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(true)
                    })
                })
                .await
            }

            async fn group_state(&self, group_id: &[u8]) -> Result<Option<GroupState>, StoreError> {
                let row: Option<(i64, i64)> =
                    sqlx::query_as("SELECT epoch, last_seq FROM groups WHERE group_id = $1")
                        .bind(group_id)
                        .fetch_optional(self.reader())
                        .await?;
                row.map(|(e, s)| Ok(GroupState { epoch: to_u64(e)?, last_seq: to_u64(s)? }))
                    .transpose()
            }

            async fn epoch_key(
                &self,
                group_id: &[u8],
                epoch: u64,
            ) -> Result<Option<EpochKey>, StoreError> {
                let row: Option<(Vec<u8>, Option<Vec<u8>>, i64)> = sqlx::query_as(
                    "SELECT k.auth_key, k.external_commit_key, k.start_seq \
                     FROM epoch_keys k JOIN groups g ON g.id = k.group_ref \
                     WHERE g.group_id = $1 AND k.epoch = $2",
                )
                .bind(group_id)
                .bind(to_i64(epoch)?)
                .fetch_optional(self.reader())
                .await?;
                row.map(|(auth_key, external_commit_key, start)| {
                    Ok(EpochKey { auth_key, external_commit_key, start_seq: to_u64(start)? })
                })
                .transpose()
            }

            async fn append(
                &self,
                group_id: &[u8],
                epoch: u64,
                kind: LogKind,
                message: &[u8],
                now: i64,
                previous_since: i64,
                nonce: &UsedNonce,
            ) -> Result<AppendOutcome, StoreError> {
                let e = to_i64(epoch)?;
                let (group_id, message) = (group_id.to_vec(), std::sync::Arc::new(message.to_vec()));
                let nonce = std::sync::Arc::new(nonce.clone());
                self.write(move |conn: &mut $conn| {
                    let (group_id, message, nonce) = (group_id.clone(), message.clone(), nonce.clone());
                    Box::pin(async move {
                    let mut tx = conn.begin().await?;
                    // The nonce first, in this transaction: a replay writes nothing, and a
                    // request is accepted once whichever node it reaches.
                    if !Self::insert_nonce(&mut tx, &nonce).await? {
                        tx.rollback().await?;
                        return Ok(AppendOutcome::Replay);
                    }
                    // The row lock taken here orders the group's appends: sequence numbers
                    // are committed in order, so a reader never skips one.
                    let row: Option<(i64, i64, i64)> = sqlx::query_as(
                        "UPDATE groups SET last_seq = last_seq + 1 \
                         WHERE group_id = $1 AND (epoch = $2 OR (epoch = $3 AND epoch_started_at > $4)) \
                         RETURNING id, last_seq, epoch",
                    )
                    .bind(&group_id)
                    .bind(e)
                    .bind(e + 1)
                    .bind(previous_since)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some((gref, seq, current)) = row else {
                        let current: Option<(i64,)> =
                            sqlx::query_as("SELECT epoch FROM groups WHERE group_id = $1")
                                .bind(&group_id)
                                .fetch_optional(&mut *tx)
                                .await?;
                        // Refused, but the nonce stays spent.
                        tx.commit().await?;
                        return Ok(match current {
                            Some((c,)) => AppendOutcome::WrongEpoch(to_u64(c)?),
                            None => AppendOutcome::NoGroup,
                        });
                    };
                    sqlx::query(
                        "INSERT INTO log_entries (group_ref, seq, epoch, kind, message, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(gref)
                    .bind(seq)
                    .bind(e)
                    .bind(kind as i64)
                    .bind(message.as_slice())
                    .bind($crate::store::record_time(now))
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(AppendOutcome::Appended {
                        seq: to_u64(seq)?,
                        epoch: to_u64(current)?,
                        queued: Vec::new(),
                    })
                    })
                })
                .await
            }

            async fn commit(&self, c: NewCommit<'_>) -> Result<AppendOutcome, StoreError> {
                let e = to_i64(c.epoch)?;
                let owned = std::sync::Arc::new(OwnedCommit::from(&c));
                self.write(move |conn: &mut $conn| {
                    let c = owned.clone();
                    Box::pin(async move {
                    let mut outer = conn.begin().await?;
                    // The nonce first: a replay applies nothing. The commit itself runs in a
                    // savepoint, so a refused commit is undone and its nonce stays spent.
                    if !Self::insert_nonce(&mut outer, &c.nonce).await? {
                        outer.rollback().await?;
                        return Ok(AppendOutcome::Replay);
                    }
                    let mut tx = outer.begin().await?;
                    // The compare-and-set (RFC 9750 §5.2): only one commit moves epoch e.
                    let row: Option<(i64, i64)> = sqlx::query_as(
                        "UPDATE groups SET epoch = epoch + 1, last_seq = last_seq + 1, \
                         epoch_started_at = $3, group_info = $4, group_info_epoch = $5 \
                         WHERE group_id = $1 AND epoch = $2 RETURNING id, last_seq",
                    )
                    .bind(c.group_id.as_slice())
                    .bind(e)
                    .bind(c.now)
                    .bind(c.group_info.as_ref().map(|g| g.0.as_slice()))
                    .bind(c.group_info.as_ref().map(|_| e + 1))
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some((gref, seq)) = row else {
                        let current: Option<(i64,)> =
                            sqlx::query_as("SELECT epoch FROM groups WHERE group_id = $1")
                                .bind(c.group_id.as_slice())
                                .fetch_optional(&mut *tx)
                                .await?;
                        tx.rollback().await?;
                        outer.commit().await?;
                        return Ok(match current {
                            Some((cur,)) => AppendOutcome::WrongEpoch(to_u64(cur)?),
                            None => AppendOutcome::NoGroup,
                        });
                    };
                    sqlx::query(
                        "INSERT INTO log_entries (group_ref, seq, epoch, kind, message, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(gref)
                    .bind(seq)
                    .bind(e)
                    .bind(c.kind as i64)
                    .bind(c.message.as_slice())
                    .bind($crate::store::record_time(c.now))
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO epoch_keys (group_ref, epoch, auth_key, external_commit_key, start_seq, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(gref)
                    .bind(e + 1)
                    .bind(c.next_auth_key.as_slice())
                    .bind(c.group_info.as_ref().map(|g| g.1.as_slice()))
                    .bind(seq)
                    .bind($crate::store::record_time(c.now))
                    .execute(&mut *tx)
                    .await?;
                    // RFC 9420 §14: Welcomes are queued in the transaction that accepts the
                    // commit, so a losing commit's Welcome never reaches a mailbox. Each
                    // Welcome is stored once, whatever the number of joiners, and nothing
                    // ties it to the group; each mailbox gets an entry referring to it.
                    // Mailbox counters are taken by ascending mailbox id, so two commits
                    // sharing joiners lock their mailboxes in the same order.
                    let mut targets: Vec<(&[u8], usize)> = c
                        .welcomes
                        .iter()
                        .enumerate()
                        .flat_map(|(i, (_, mailboxes))| mailboxes.iter().map(move |m| (m.as_slice(), i)))
                        .collect();
                    targets.sort_unstable();
                    targets.dedup();
                    let mut welcome_ids = Vec::with_capacity(c.welcomes.len());
                    for (i, (welcome, _)) in c.welcomes.iter().enumerate() {
                        let refs = targets.iter().filter(|t| t.1 == i).count();
                        if refs == 0 {
                            welcome_ids.push(None);
                            continue;
                        }
                        let refs = i64::try_from(refs).map_err(|_| StoreError::Corrupt("too many joiners"))?;
                        let (wid,): (i64,) = sqlx::query_as(
                            "INSERT INTO welcomes (data, refs, created_at) VALUES ($1, $2, $3) RETURNING id",
                        )
                        .bind(welcome.as_slice())
                        .bind(refs)
                        .bind($crate::store::record_time(c.now))
                        .fetch_one(&mut *tx)
                        .await?;
                        welcome_ids.push(Some(wid));
                    }
                    // The fan-out rows, a chunk at a time: one UPDATE takes the numbers of
                    // the chunk's mailboxes (n for a mailbox with n entries), one multi-row
                    // INSERT adds their entries — two statements per chunk, not two per
                    // joiner. On PostgreSQL the chunk's mailbox rows are first locked by
                    // ascending id, so commits sharing joiners never deadlock.
                    let mut per_mailbox: Vec<(&[u8], Vec<usize>)> = Vec::new();
                    for (m, i) in targets {
                        if welcome_ids[i].is_none() {
                            continue;
                        }
                        match per_mailbox.last_mut() {
                            Some((last, is)) if *last == m => is.push(i),
                            _ => per_mailbox.push((m, vec![i])),
                        }
                    }
                    let mut queued = Vec::new();
                    let mut rest = per_mailbox.as_slice();
                    while !rest.is_empty() {
                        let mut take = 0;
                        let mut rows = 0;
                        while take < rest.len() && (take == 0 || rows + rest[take].1.len() <= $crate::store::sql::FANOUT_ROWS) {
                            rows += rest[take].1.len();
                            take += 1;
                        }
                        let (chunk, tail) = rest.split_at(take);
                        rest = tail;
                        if $lock_in_order {
                            let list = $crate::store::sql::placeholders(1, chunk.len());
                            let mut q = sqlx::query_as::<_, (Vec<u8>,)>(sqlx::AssertSqlSafe(format!(
                                "SELECT id FROM mailboxes WHERE id IN ({list}) ORDER BY id{}",
                                $wait
                            )));
                            for (m, _) in chunk {
                                q = q.bind(*m);
                            }
                            q.fetch_all(&mut *tx).await?;
                        }
                        let values = (0..chunk.len())
                            .map(|k| format!("(${}, ${})", 2 * k + 1, 2 * k + 2))
                            .collect::<Vec<_>>()
                            .join(", ");
                        let mut q = sqlx::query_as::<_, (Vec<u8>, i64)>(sqlx::AssertSqlSafe(format!(
                            "UPDATE mailboxes SET last_seq = last_seq + v.column2 \
                             FROM (VALUES {values}) AS v WHERE mailboxes.id = v.column1 \
                             RETURNING id, last_seq"
                        )));
                        for (m, is) in chunk {
                            q = q.bind(*m).bind(is.len() as i64);
                        }
                        let numbered: std::collections::HashMap<Vec<u8>, i64> =
                            q.fetch_all(&mut *tx).await?.into_iter().collect();
                        if numbered.len() < chunk.len() {
                            tx.rollback().await?;
                            outer.commit().await?;
                            return Ok(AppendOutcome::NoMailbox);
                        }
                        let mut entries: Vec<(&[u8], i64, usize)> = Vec::with_capacity(rows);
                        for (m, is) in chunk {
                            let last = numbered[*m];
                            let first = last - is.len() as i64 + 1;
                            for (k, i) in is.iter().enumerate() {
                                entries.push((m, first + k as i64, *i));
                            }
                        }
                        let values = (0..entries.len())
                            .map(|k| format!("(${}, ${}, 1, ${}, $1, $2)", 3 * k + 3, 3 * k + 4, 3 * k + 5))
                            .collect::<Vec<_>>()
                            .join(", ");
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "INSERT INTO mailbox_entries (mailbox_id, seq, kind, welcome_id, created_at, expires_at) \
                             VALUES {values}"
                        )))
                        .bind($crate::store::record_time(c.now))
                        .bind($crate::store::record_expiry(c.welcome_expires_at));
                        for (m, seq, i) in &entries {
                            q = q.bind(*m).bind(*seq).bind(welcome_ids[*i]);
                        }
                        q.execute(&mut *tx).await?;
                        for (m, seq, i) in entries {
                            queued.push((
                                m.to_vec(),
                                MailboxEntryRow {
                                    id: seq,
                                    kind: EntryKind::Welcome,
                                    data: c.welcomes[i].0.clone(),
                                },
                            ));
                        }
                    }
                    tx.commit().await?;
                    outer.commit().await?;
                    Ok(AppendOutcome::Appended { seq: to_u64(seq)?, epoch: c.epoch + 1, queued })
                    })
                })
                .await
            }

            async fn read_log(
                &self,
                group_id: &[u8],
                epoch: u64,
                start_seq: u64,
                from: u64,
                limit: i64,
            ) -> Result<Vec<LogRow>, StoreError> {
                let e = to_i64(epoch)?;
                let rows: Vec<(i64, i64, i64, Vec<u8>)> = sqlx::query_as(
                    "SELECT l.seq, l.epoch, l.kind, l.message \
                     FROM log_entries l JOIN groups g ON g.id = l.group_ref \
                     WHERE g.group_id = $1 AND l.seq >= $2 \
                       AND (l.epoch = $3 OR (l.epoch = $4 AND l.seq > $5)) \
                     ORDER BY l.seq LIMIT $6",
                )
                .bind(group_id)
                .bind(to_i64(from)?)
                .bind(e)
                .bind(e - 1)
                .bind(to_i64(start_seq)?)
                .bind(limit)
                .fetch_all(self.reader())
                .await?;
                rows.into_iter()
                    .map(|(seq, epoch, kind, message)| {
                        Ok(LogRow {
                            seq: to_u64(seq)?,
                            epoch: to_u64(epoch)?,
                            kind: LogKind::from_i64(kind)?,
                            message,
                        })
                    })
                    .collect()
            }

            async fn put_group_info(
                &self,
                group_id: &[u8],
                epoch: u64,
                sealed: &[u8],
                external_key: &[u8],
            ) -> Result<bool, StoreError> {
                let e = to_i64(epoch)?;
                let (group_id, sealed, external_key) = (group_id.to_vec(), sealed.to_vec(), external_key.to_vec());
                self.write(move |conn: &mut $conn| {
                    let (group_id, sealed, external_key) = (group_id.clone(), sealed.clone(), external_key.clone());
                    Box::pin(async move {
                    let mut tx = conn.begin().await?;
                    let row: Option<(i64,)> = sqlx::query_as(
                        "UPDATE groups SET group_info = $1, group_info_epoch = $2 \
                         WHERE group_id = $3 AND epoch = $2 RETURNING id",
                    )
                    .bind(sealed)
                    .bind(e)
                    .bind(group_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some((gref,)) = row else {
                        return Ok(false);
                    };
                    sqlx::query(
                        "UPDATE epoch_keys SET external_commit_key = $1 WHERE group_ref = $2 AND epoch = $3",
                    )
                    .bind(external_key)
                    .bind(gref)
                    .bind(e)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(true)
                    })
                })
                .await
            }

            async fn group_info(&self, group_id: &[u8]) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
                let row: Option<(Option<i64>, Option<Vec<u8>>)> = sqlx::query_as(
                    "SELECT group_info_epoch, group_info FROM groups WHERE group_id = $1",
                )
                .bind(group_id)
                .fetch_optional(self.reader())
                .await?;
                match row {
                    Some((Some(e), Some(gi))) => Ok(Some((to_u64(e)?, gi))),
                    _ => Ok(None),
                }
            }

            async fn spend_token(&self, nonce: &[u8], window: i64) -> Result<bool, StoreError> {
                let nonce = nonce.to_vec();
                self.write(move |conn: &mut $conn| {
                    let nonce = nonce.clone();
                    Box::pin(async move {
                        let r = sqlx::query(
                            "INSERT INTO spent_tokens (nonce, time_window) VALUES ($1, $2) \
                             ON CONFLICT DO NOTHING",
                        )
                        .bind(nonce)
                        .bind(window)
                        .execute(&mut *conn)
                        .await?;
                        Ok(r.rows_affected() == 1)
                    })
                })
                .await
            }

            async fn unspend_token(&self, nonce: &[u8]) -> Result<(), StoreError> {
                let nonce = nonce.to_vec();
                self.write(move |conn: &mut $conn| {
                    let nonce = nonce.clone();
                    Box::pin(async move {
                        sqlx::query("DELETE FROM spent_tokens WHERE nonce = $1")
                            .bind(nonce)
                            .execute(&mut *conn)
                            .await?;
                        Ok(())
                    })
                })
                .await
            }

            async fn secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
                let (name, fresh) = (name.as_bytes().to_vec(), fresh.to_vec());
                self.write(move |conn: &mut $conn| {
                    let (name, fresh) = (name.clone(), fresh.clone());
                    Box::pin(async move {
                        sqlx::query(
                            "INSERT INTO secrets (id, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                        )
                        .bind(&name)
                        .bind(fresh)
                        .execute(&mut *conn)
                        .await?;
                        let (value,): (Vec<u8>,) =
                            sqlx::query_as("SELECT value FROM secrets WHERE id = $1")
                                .bind(&name)
                                .fetch_one(&mut *conn)
                                .await?;
                        Ok(value)
                    })
                })
                .await
            }

            async fn prune(&self, c: PruneCutoffs) -> Result<Pruned, StoreError> {
                let batch = c.batch;
                let run = |sql: &'static str, a: Option<i64>| {
                    self.write(move |conn: &mut $conn| {
                        Box::pin(async move {
                            let mut q = sqlx::query(sql);
                            if let Some(a) = a {
                                q = q.bind(a);
                            }
                            let r = q.bind(batch).execute(&mut *conn).await?;
                            Ok(r.rows_affected())
                        })
                    })
                };
                let mut p = Pruned::default();
                // RFC 9750 §6.3 asks for reliable asynchronous delivery, within a retention
                // period; application messages go sooner than commits.
                p.log_entries += run(
                    "DELETE FROM log_entries WHERE (group_ref, seq) IN (SELECT group_ref, seq \
                     FROM log_entries WHERE kind < 3 AND created_at < $1 LIMIT $2)",
                    Some(c.messages_before),
                )
                .await?;
                p.log_entries += run(
                    "DELETE FROM log_entries WHERE (group_ref, seq) IN (SELECT group_ref, seq \
                     FROM log_entries WHERE kind >= 3 AND created_at < $1 LIMIT $2)",
                    Some(c.commits_before),
                )
                .await?;
                // An epoch key goes with the entries it authorised reading; the current
                // epoch's and the previous one's are always kept.
                p.epoch_keys += run(
                    "DELETE FROM epoch_keys WHERE (group_ref, epoch) IN (SELECT k.group_ref, k.epoch \
                     FROM epoch_keys k JOIN groups g ON g.id = k.group_ref \
                     WHERE k.epoch + 1 < g.epoch AND NOT EXISTS (SELECT 1 FROM log_entries l \
                       WHERE l.group_ref = k.group_ref AND (l.epoch = k.epoch OR l.epoch + 1 = k.epoch)) \
                     LIMIT $1)",
                    None,
                )
                .await?;
                // Expired mailbox entries, and each Welcome whose last entry this was.
                let (entries, welcomes) = self
                    .write(move |conn: &mut $conn| {
                        Box::pin(async move {
                            let mut tx = conn.begin().await?;
                            let gone: Vec<(Option<i64>,)> = sqlx::query_as(
                                "DELETE FROM mailbox_entries WHERE (mailbox_id, seq) IN \
                                 (SELECT mailbox_id, seq FROM mailbox_entries WHERE expires_at <= $1 LIMIT $2) \
                                 RETURNING welcome_id",
                            )
                            .bind(c.now)
                            .bind(batch)
                            .fetch_all(&mut *tx)
                            .await?;
                            let mut released = std::collections::BTreeMap::<i64, i64>::new();
                            for w in gone.iter().filter_map(|g| g.0) {
                                *released.entry(w).or_default() += 1;
                            }
                            let welcomes = Self::release_welcomes(&mut tx, &released).await?;
                            tx.commit().await?;
                            Ok((gone.len() as u64, welcomes))
                        })
                    })
                    .await?;
                p.mailbox_entries += entries;
                p.welcomes += welcomes;
                p.key_packages += run(
                    "DELETE FROM sealed_key_packages WHERE id IN (SELECT id FROM sealed_key_packages \
                     WHERE expires_at <= $1 LIMIT $2)",
                    Some(c.now),
                )
                .await?;
                p.nonces += run(
                    "DELETE FROM nonces WHERE (scope, nonce) IN (SELECT scope, nonce FROM nonces \
                     WHERE expires_at <= $1 LIMIT $2)",
                    Some(c.now),
                )
                .await?;
                p.spent_tokens += run(
                    "DELETE FROM spent_tokens WHERE nonce IN (SELECT nonce FROM spent_tokens \
                     WHERE time_window < $1 LIMIT $2)",
                    Some(c.spent_tokens_before),
                )
                .await?;
                const _: () = assert!($crate::store::RECORD_GRANULARITY == 3600, "the SQL below");
                // Times kept to the second only while a mechanism needs them are blurred
                // once it no longer does (`store::record_time`): an epoch's start once its
                // predecessor's grace period is over (flooring keeps it over), and a pool's
                // claim state once it lies in the past (every past value means "full
                // budget", as 0 does).
                p.blurred += run(
                    "UPDATE groups SET epoch_started_at = epoch_started_at - epoch_started_at % 3600 \
                     WHERE id IN (SELECT id FROM groups WHERE epoch_started_at < $1 \
                       AND epoch_started_at % 3600 <> 0 LIMIT $2)",
                    Some(c.grace_before),
                )
                .await?;
                p.blurred += run(
                    "UPDATE pools SET claim_tat = 0 WHERE id IN (SELECT id FROM pools \
                     WHERE claim_tat <> 0 AND claim_tat < $1 LIMIT $2)",
                    Some(c.now.saturating_mul(1_000_000)),
                )
                .await?;
                Ok(p)
            }
        }
    };
}
pub(crate) use sql_store;
