//! The SQL both engines run. The statements are written once, with `$N` parameters (which
//! SQLite and PostgreSQL both accept) and only portable SQL (`ON CONFLICT DO NOTHING`,
//! `RETURNING`, conditional `UPDATE`; no advisory locks), and [`impl_store!`] implements
//! [`Store`](super::Store) with them for one engine's pool types.

/// Implements [`Store`](super::Store) for `$store`, whose fields `$writer` and `$reader`
/// are pools of database `$db` (for SQLite, one connection writes and several read).
macro_rules! impl_store {
    ($store:ty, $db:ty, $writer:ident, $reader:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            async fn create_invitation(
                &self,
                code_hash: &[u8],
                user_id: &str,
                expires_at: u64,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query::<$db>(
                    "INSERT INTO invitations (code_hash, user_id, expires_at) VALUES ($1, $2, $3)",
                )
                .bind(code_hash)
                .bind(user_id)
                .bind($crate::store::to_i64(expires_at))
                .execute(&self.$writer)
                .await?;
                Ok(())
            }

            async fn consume_invitation(
                &self,
                code_hash: &[u8],
                now: u64,
            ) -> Result<Option<String>, $crate::store::StoreError> {
                // One conditional UPDATE: two concurrent uses cannot both succeed.
                let user: Option<String> = sqlx::query_scalar::<$db, String>(
                    "UPDATE invitations SET used_at = $2 \
                     WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 \
                     RETURNING user_id",
                )
                .bind(code_hash)
                .bind($crate::store::to_i64(now))
                .fetch_optional(&self.$writer)
                .await?;
                Ok(user)
            }

            async fn create_challenge(
                &self,
                challenge_id: &str,
                nonce: &[u8],
                expires_at: u64,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query::<$db>(
                    "INSERT INTO challenges (challenge_id, nonce, expires_at) VALUES ($1, $2, $3)",
                )
                .bind(challenge_id)
                .bind(nonce)
                .bind($crate::store::to_i64(expires_at))
                .execute(&self.$writer)
                .await?;
                Ok(())
            }

            async fn consume_challenge(
                &self,
                challenge_id: &str,
                now: u64,
            ) -> Result<Option<Vec<u8>>, $crate::store::StoreError> {
                let row: Option<(Vec<u8>, i64)> = sqlx::query_as::<$db, (Vec<u8>, i64)>(
                    "DELETE FROM challenges WHERE challenge_id = $1 RETURNING nonce, expires_at",
                )
                .bind(challenge_id)
                .fetch_optional(&self.$writer)
                .await?;
                Ok(row.and_then(|(nonce, expires_at)| {
                    (expires_at > $crate::store::to_i64(now)).then_some(nonce)
                }))
            }

            async fn invitation_user(
                &self,
                code_hash: &[u8],
                now: u64,
            ) -> Result<Option<String>, $crate::store::StoreError> {
                let user: Option<String> = sqlx::query_scalar::<$db, String>(
                    "SELECT user_id FROM invitations \
                     WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2",
                )
                .bind(code_hash)
                .bind($crate::store::to_i64(now))
                .fetch_optional(&self.$reader)
                .await?;
                Ok(user)
            }

            async fn register_device(
                &self,
                device: &$crate::store::DeviceRecord,
                invitation: Option<(&[u8], u64)>,
            ) -> Result<$crate::store::RegisterOutcome, $crate::store::StoreError> {
                $crate::store::retry(move || async move {
                use $crate::store::{RegisterOutcome, to_i64};
                // Every early return drops `tx`, which rolls it back.
                let mut tx = self.$writer.begin().await?;
                sqlx::query::<$db>(
                    "INSERT INTO users (user_id, created_at) VALUES ($1, $2) \
                     ON CONFLICT (user_id) DO NOTHING",
                )
                .bind(&device.user_id)
                .bind(to_i64(device.created_at))
                .execute(&mut *tx)
                .await?;
                // Locks the user's row until commit (PostgreSQL: a row lock, re-checked after
                // waiting; SQLite: the single writer) and checks that the user is not revoked.
                let unrevoked = sqlx::query::<$db>(
                    "UPDATE users SET revoked_at = revoked_at \
                     WHERE user_id = $1 AND revoked_at IS NULL",
                )
                .bind(&device.user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if unrevoked == 0 {
                    return Ok(RegisterOutcome::UserRevoked);
                }
                if let Some((code_hash, now)) = invitation {
                    let consumed: Option<String> = sqlx::query_scalar::<$db, String>(
                        "UPDATE invitations SET used_at = $2 \
                         WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 \
                         RETURNING user_id",
                    )
                    .bind(code_hash)
                    .bind(to_i64(now))
                    .fetch_optional(&mut *tx)
                    .await?;
                    if consumed.as_deref() != Some(device.user_id.as_str()) {
                        return Ok(RegisterOutcome::InvalidInvitation);
                    }
                }
                let inserted = sqlx::query::<$db>(
                    "INSERT INTO devices (device_id, user_id, signature_key, chain, not_after, \
                     created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (signature_key) DO NOTHING",
                )
                .bind(&device.device_id)
                .bind(&device.user_id)
                .bind(&device.signature_key)
                .bind($crate::store::encode_chain(&device.chain))
                .bind(to_i64(device.not_after))
                .bind(to_i64(device.created_at))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    return Ok(RegisterOutcome::KeyInUse);
                }
                queue_kt(&mut tx, &device.user_id).await?;
                tx.commit().await?;
                Ok(RegisterOutcome::Registered)
                }).await
            }

            async fn device(
                &self,
                device_id: &str,
            ) -> Result<Option<$crate::store::DeviceRecord>, $crate::store::StoreError> {
                let row = sqlx::query::<$db>(concat!(
                    "SELECT ",
                    "device_id, user_id, signature_key, chain, not_after, contact_key, contact_key_signature, created_at, revoked_at",
                    " FROM devices WHERE device_id = $1"
                ))
                .bind(device_id)
                .fetch_optional(&self.$reader)
                .await?;
                row.map(|r| device_from_row(&r)).transpose()
            }

            async fn user_devices(
                &self,
                user_id: &str,
            ) -> Result<Vec<$crate::store::DeviceRecord>, $crate::store::StoreError> {
                let rows = sqlx::query::<$db>(concat!(
                    "SELECT ",
                    "device_id, user_id, signature_key, chain, not_after, contact_key, contact_key_signature, created_at, revoked_at",
                    " FROM devices WHERE user_id = $1 AND revoked_at IS NULL \
                     ORDER BY created_at, device_id"
                ))
                .bind(user_id)
                .fetch_all(&self.$reader)
                .await?;
                rows.iter().map(device_from_row).collect()
            }

            async fn update_certificate(
                &self,
                device_id: &str,
                chain: &[Vec<u8>],
                not_after: u64,
            ) -> Result<bool, $crate::store::StoreError> {
                $crate::store::retry(move || async move {
                let mut tx = self.$writer.begin().await?;
                let user: Option<String> = sqlx::query_scalar::<$db, String>(
                    "UPDATE devices SET chain = $2, not_after = $3 \
                     WHERE device_id = $1 AND revoked_at IS NULL RETURNING user_id",
                )
                .bind(device_id)
                .bind($crate::store::encode_chain(chain))
                .bind($crate::store::to_i64(not_after))
                .fetch_optional(&mut *tx)
                .await?;
                let Some(user) = user else {
                    return Ok(false);
                };
                queue_kt(&mut tx, &user).await?;
                tx.commit().await?;
                Ok(true)
                }).await
            }

            async fn set_contact_key(
                &self,
                device_id: &str,
                key: &[u8],
                signature: &[u8],
            ) -> Result<bool, $crate::store::StoreError> {
                let n = sqlx::query::<$db>(
                    "UPDATE devices SET contact_key = $2, contact_key_signature = $3 \
                     WHERE device_id = $1 AND revoked_at IS NULL",
                )
                .bind(device_id)
                .bind(key)
                .bind(signature)
                .execute(&self.$writer)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn revoke_device(
                &self,
                device_id: &str,
                reason: Option<&str>,
                now: u64,
            ) -> Result<$crate::store::RevokeOutcome, $crate::store::StoreError> {
                $crate::store::retry(move || async move {
                use $crate::store::{RevokeOutcome, to_i64};
                let mut tx = self.$writer.begin().await?;
                let revoked: Option<(String, Vec<u8>)> =
                    sqlx::query_as::<$db, (String, Vec<u8>)>(
                        "UPDATE devices SET revoked_at = $2 \
                         WHERE device_id = $1 AND revoked_at IS NULL \
                         RETURNING user_id, signature_key",
                    )
                    .bind(device_id)
                    .bind(to_i64(now))
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some((user_id, signature_key)) = revoked else {
                    let exists: Option<String> = sqlx::query_scalar::<$db, String>(
                        "SELECT device_id FROM devices WHERE device_id = $1",
                    )
                    .bind(device_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    return Ok(match exists {
                        Some(_) => RevokeOutcome::Revoked(Vec::new()),
                        None => RevokeOutcome::NotFound,
                    });
                };
                queue_kt(&mut tx, &user_id).await?;
                let record =
                    append_revocation(&mut tx, user_id, device_id.to_owned(), signature_key, reason, now)
                        .await?;
                tx.commit().await?;
                Ok(RevokeOutcome::Revoked(vec![record]))
                }).await
            }

            async fn revoke_user(
                &self,
                user_id: &str,
                reason: Option<&str>,
                now: u64,
            ) -> Result<$crate::store::RevokeOutcome, $crate::store::StoreError> {
                $crate::store::retry(move || async move {
                use $crate::store::{RevokeOutcome, to_i64};
                let mut tx = self.$writer.begin().await?;
                let users = sqlx::query::<$db>(
                    "UPDATE users SET revoked_at = COALESCE(revoked_at, $2) WHERE user_id = $1",
                )
                .bind(user_id)
                .bind(to_i64(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if users == 0 {
                    return Ok(RevokeOutcome::NotFound);
                }
                let devices: Vec<(String, Vec<u8>)> = sqlx::query_as::<$db, (String, Vec<u8>)>(
                    "UPDATE devices SET revoked_at = $2 \
                     WHERE user_id = $1 AND revoked_at IS NULL \
                     RETURNING device_id, signature_key",
                )
                .bind(user_id)
                .bind(to_i64(now))
                .fetch_all(&mut *tx)
                .await?;
                if !devices.is_empty() {
                    queue_kt(&mut tx, user_id).await?;
                }
                let mut records = Vec::with_capacity(devices.len());
                for (device_id, signature_key) in devices {
                    records.push(
                        append_revocation(
                            &mut tx,
                            user_id.to_owned(),
                            device_id,
                            signature_key,
                            reason,
                            now,
                        )
                        .await?,
                    );
                }
                tx.commit().await?;
                records.sort_by_key(|r| r.seq);
                Ok(RevokeOutcome::Revoked(records))
                }).await
            }

            async fn revocations_after(
                &self,
                after: u64,
                limit: u32,
            ) -> Result<Vec<$crate::store::RevocationRecord>, $crate::store::StoreError> {
                use $crate::store::{RevocationRecord, to_i64, to_u64};
                let rows: Vec<(i64, String, String, Vec<u8>, i64, Option<String>)> =
                    sqlx::query_as::<$db, (i64, String, String, Vec<u8>, i64, Option<String>)>(
                        "SELECT seq, user_id, device_id, signature_key, revoked_at, reason \
                         FROM revocations WHERE seq > $1 ORDER BY seq LIMIT $2",
                    )
                    .bind(to_i64(after))
                    .bind(i64::from(limit))
                    .fetch_all(&self.$reader)
                    .await?;
                rows.into_iter()
                    .map(|(seq, user_id, device_id, signature_key, revoked_at, reason)| {
                        Ok(RevocationRecord {
                            seq: to_u64(seq, "revocations.seq")?,
                            user_id,
                            device_id,
                            signature_key,
                            revoked_at: to_u64(revoked_at, "revocations.revoked_at")?,
                            reason,
                        })
                    })
                    .collect()
            }

            async fn relay_post(
                &self,
                device_id: &str,
                record: &$crate::store::RelayRecord,
                max: u32,
            ) -> Result<bool, $crate::store::StoreError> {
                $crate::store::retry(move || async move {
                use $crate::store::to_i64;
                let mut tx = self.$writer.begin().await?;
                let waiting: i64 = sqlx::query_scalar::<$db, i64>(
                    "SELECT COUNT(*) FROM relay WHERE device_id = $1 AND expires_at > $2",
                )
                .bind(device_id)
                .bind(to_i64(record.received_at))
                .fetch_one(&mut *tx)
                .await?;
                if waiting >= i64::from(max) {
                    return Ok(false);
                }
                sqlx::query::<$db>(
                    "INSERT INTO relay (device_id, sealed, received_at, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(device_id)
                .bind(&record.sealed)
                .bind(to_i64(record.received_at))
                .bind(to_i64(record.expires_at))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
                }).await
            }

            async fn relay_fetch(
                &self,
                device_id: &str,
                now: u64,
            ) -> Result<Vec<$crate::store::RelayRecord>, $crate::store::StoreError> {
                use $crate::store::{RelayRecord, to_u64};
                // One DELETE … RETURNING: a request is handed out by exactly one fetch.
                let mut rows: Vec<(i64, Vec<u8>, i64, i64)> =
                    sqlx::query_as::<$db, (i64, Vec<u8>, i64, i64)>(
                        "DELETE FROM relay WHERE device_id = $1 \
                         RETURNING id, sealed, received_at, expires_at",
                    )
                    .bind(device_id)
                    .fetch_all(&self.$writer)
                    .await?;
                rows.sort_by_key(|r| r.0);
                let mut out = Vec::with_capacity(rows.len());
                for (_, sealed, received_at, expires_at) in rows {
                    let expires_at = to_u64(expires_at, "relay.expires_at")?;
                    if expires_at > now {
                        out.push(RelayRecord {
                            sealed,
                            received_at: to_u64(received_at, "relay.received_at")?,
                            expires_at,
                        });
                    }
                }
                Ok(out)
            }

            async fn kt_init(&self, root: &[u8]) -> Result<Vec<u8>, $crate::store::StoreError> {
                sqlx::query::<$db>(
                    "INSERT INTO kt_roots (epoch, root) VALUES (0, $1) \
                     ON CONFLICT (epoch) DO NOTHING",
                )
                .bind(root)
                .execute(&self.$writer)
                .await?;
                Ok(sqlx::query_scalar::<$db, Vec<u8>>("SELECT root FROM kt_roots WHERE epoch = 0")
                    .fetch_one(&self.$writer)
                    .await?)
            }

            async fn kt_head(&self) -> Result<Option<u64>, $crate::store::StoreError> {
                let head: Option<i64> =
                    sqlx::query_scalar::<$db, Option<i64>>("SELECT MAX(epoch) FROM kt_roots")
                        .fetch_one(&self.$reader)
                        .await?;
                head.map(|e| $crate::store::to_u64(e, "kt_roots.epoch")).transpose()
            }

            async fn kt_log_range(
                &self,
                from: u64,
                to: u64,
            ) -> Result<Vec<(u64, String, Vec<u8>)>, $crate::store::StoreError> {
                let rows: Vec<(i64, String, Vec<u8>)> =
                    sqlx::query_as::<$db, (i64, String, Vec<u8>)>(
                        "SELECT epoch, label, value FROM kt_log \
                         WHERE epoch >= $1 AND epoch <= $2 ORDER BY epoch, label",
                    )
                    .bind($crate::store::to_i64(from))
                    .bind($crate::store::to_i64(to))
                    .fetch_all(&self.$reader)
                    .await?;
                rows.into_iter()
                    .map(|(e, l, v)| Ok(($crate::store::to_u64(e, "kt_log.epoch")?, l, v)))
                    .collect()
            }

            async fn kt_roots(
                &self,
                from: u64,
                to: u64,
            ) -> Result<Vec<(u64, Vec<u8>)>, $crate::store::StoreError> {
                let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as::<$db, (i64, Vec<u8>)>(
                    "SELECT epoch, root FROM kt_roots WHERE epoch >= $1 AND epoch <= $2 \
                     ORDER BY epoch",
                )
                .bind($crate::store::to_i64(from))
                .bind($crate::store::to_i64(to))
                .fetch_all(&self.$reader)
                .await?;
                rows.into_iter()
                    .map(|(e, r)| Ok(($crate::store::to_u64(e, "kt_roots.epoch")?, r)))
                    .collect()
            }

            async fn kt_pending(
                &self,
                limit: u32,
            ) -> Result<Vec<(String, u64)>, $crate::store::StoreError> {
                let rows: Vec<(String, i64)> = sqlx::query_as::<$db, (String, i64)>(
                    "SELECT user_id, version FROM kt_pending ORDER BY user_id LIMIT $1",
                )
                .bind(i64::from(limit))
                .fetch_all(&self.$reader)
                .await?;
                rows.into_iter()
                    .map(|(u, v)| Ok((u, $crate::store::to_u64(v, "kt_pending.version")?)))
                    .collect()
            }

            async fn kt_is_pending(&self, user_id: &str) -> Result<bool, $crate::store::StoreError> {
                let row: Option<i64> = sqlx::query_scalar::<$db, i64>(
                    "SELECT version FROM kt_pending WHERE user_id = $1",
                )
                .bind(user_id)
                .fetch_optional(&self.$reader)
                .await?;
                Ok(row.is_some())
            }

            async fn kt_lease(&self) -> Result<(String, u64), $crate::store::StoreError> {
                let (holder, expires_at): (String, i64) = sqlx::query_as::<$db, (String, i64)>(
                    "SELECT holder, expires_at FROM kt_lease WHERE name = 'publisher'",
                )
                .fetch_one(&self.$reader)
                .await?;
                Ok((holder, $crate::store::to_u64(expires_at, "kt_lease.expires_at")?))
            }

            async fn kt_acquire_lease(
                &self,
                node: &str,
                now: u64,
                expires_at: u64,
            ) -> Result<bool, $crate::store::StoreError> {
                // Compare-and-set: the row changes only if this node holds the lease or it
                // expired; two nodes racing for an expired lease cannot both see it expired
                // (the second's UPDATE re-checks the row after the first commits).
                let n = sqlx::query::<$db>(
                    "UPDATE kt_lease SET holder = $1, expires_at = $3 \
                     WHERE name = 'publisher' AND (holder = $1 OR expires_at <= $2)",
                )
                .bind(node)
                .bind($crate::store::to_i64(now))
                .bind($crate::store::to_i64(expires_at))
                .execute(&self.$writer)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn kt_release_lease(&self, node: &str) -> Result<(), $crate::store::StoreError> {
                sqlx::query::<$db>(
                    "UPDATE kt_lease SET expires_at = 0 WHERE name = 'publisher' AND holder = $1",
                )
                .bind(node)
                .execute(&self.$writer)
                .await?;
                Ok(())
            }

            async fn kt_commit(
                &self,
                node: &str,
                lease_expires_at: u64,
                epoch: Option<$crate::store::KtEpoch<'_>>,
                published: &[(String, u64)],
            ) -> Result<bool, $crate::store::StoreError> {
                $crate::store::retry(move || async move {
                use $crate::store::to_i64;
                let mut tx = self.$writer.begin().await?;
                // The fence: the lease row is locked until commit, so no other publisher
                // commits between the checks below and this commit.
                let held = sqlx::query::<$db>(
                    "UPDATE kt_lease SET expires_at = $2 WHERE name = 'publisher' AND holder = $1",
                )
                .bind(node)
                .bind(to_i64(lease_expires_at))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if held != 1 {
                    return Ok(false);
                }
                if let Some(e) = epoch {
                    let head: Option<i64> =
                        sqlx::query_scalar::<$db, Option<i64>>("SELECT MAX(epoch) FROM kt_roots")
                            .fetch_one(&mut *tx)
                            .await?;
                    if e.epoch == 0 || head != Some(to_i64(e.epoch - 1)) {
                        return Ok(false);
                    }
                    for (label, value) in e.entries {
                        sqlx::query::<$db>(
                            "INSERT INTO kt_log (epoch, label, value) VALUES ($1, $2, $3)",
                        )
                        .bind(to_i64(e.epoch))
                        .bind(label)
                        .bind(value)
                        .execute(&mut *tx)
                        .await?;
                    }
                    sqlx::query::<$db>("INSERT INTO kt_roots (epoch, root) VALUES ($1, $2)")
                        .bind(to_i64(e.epoch))
                        .bind(e.root)
                        .execute(&mut *tx)
                        .await?;
                }
                for (user, version) in published {
                    sqlx::query::<$db>(
                        "DELETE FROM kt_pending WHERE user_id = $1 AND version = $2",
                    )
                    .bind(user)
                    .bind(to_i64(*version))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(true)
                }).await
            }

            async fn use_request_nonce(
                &self,
                device_id: &str,
                nonce: &str,
                expires_at: u64,
            ) -> Result<bool, $crate::store::StoreError> {
                let n = sqlx::query::<$db>(
                    "INSERT INTO request_nonces (device_id, nonce, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (device_id, nonce) DO NOTHING",
                )
                .bind(device_id)
                .bind(nonce)
                .bind($crate::store::to_i64(expires_at))
                .execute(&self.$writer)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn rate_hit(
                &self,
                key: &str,
                window_start: u64,
                expires_at: u64,
            ) -> Result<u64, $crate::store::StoreError> {
                let hits: i64 = sqlx::query_scalar::<$db, i64>(
                    "INSERT INTO rate_windows (key, window_start, hits, expires_at) \
                     VALUES ($1, $2, 1, $3) \
                     ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_windows.hits + 1 \
                     RETURNING hits",
                )
                .bind(key)
                .bind($crate::store::to_i64(window_start))
                .bind($crate::store::to_i64(expires_at))
                .fetch_one(&self.$writer)
                .await?;
                $crate::store::to_u64(hits, "rate_windows.hits")
            }

            async fn rate_take(
                &self,
                key: &str,
                window_start: u64,
                expires_at: u64,
                n: u64,
                limit: u64,
            ) -> Result<bool, $crate::store::StoreError> {
                if n > limit {
                    return Ok(false);
                }
                let taken: Option<i64> = sqlx::query_scalar::<$db, i64>(
                    "INSERT INTO rate_windows (key, window_start, hits, expires_at) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (key, window_start) DO UPDATE \
                     SET hits = rate_windows.hits + excluded.hits \
                     WHERE rate_windows.hits + excluded.hits <= $5 \
                     RETURNING hits",
                )
                .bind(key)
                .bind($crate::store::to_i64(window_start))
                .bind($crate::store::to_i64(n))
                .bind($crate::store::to_i64(expires_at))
                .bind($crate::store::to_i64(limit))
                .fetch_optional(&self.$writer)
                .await?;
                Ok(taken.is_some())
            }

            async fn purge_expired(&self, now: u64) -> Result<u64, $crate::store::StoreError> {
                let now = $crate::store::to_i64(now);
                let mut total = 0;
                for sql in [
                    "DELETE FROM challenges WHERE expires_at <= $1",
                    "DELETE FROM invitations WHERE expires_at <= $1",
                    "DELETE FROM relay WHERE expires_at <= $1",
                    "DELETE FROM request_nonces WHERE expires_at <= $1",
                    "DELETE FROM rate_windows WHERE expires_at <= $1",
                ] {
                    total += sqlx::query::<$db>(sql)
                        .bind(now)
                        .execute(&self.$writer)
                        .await?
                        .rows_affected();
                }
                Ok(total)
            }
        }

        fn device_from_row(
            row: &<$db as sqlx::Database>::Row,
        ) -> Result<$crate::store::DeviceRecord, $crate::store::StoreError> {
            use sqlx::Row;
            use $crate::store::to_u64;
            let contact_key: Option<Vec<u8>> = row.try_get("contact_key")?;
            let contact_signature: Option<Vec<u8>> = row.try_get("contact_key_signature")?;
            let revoked_at: Option<i64> = row.try_get("revoked_at")?;
            Ok($crate::store::DeviceRecord {
                device_id: row.try_get("device_id")?,
                user_id: row.try_get("user_id")?,
                signature_key: row.try_get("signature_key")?,
                chain: $crate::store::decode_chain(&row.try_get::<Vec<u8>, _>("chain")?)?,
                not_after: to_u64(row.try_get("not_after")?, "devices.not_after")?,
                contact_key: contact_key.zip(contact_signature),
                created_at: to_u64(row.try_get("created_at")?, "devices.created_at")?,
                revoked_at: revoked_at
                    .map(|t| to_u64(t, "devices.revoked_at"))
                    .transpose()?,
            })
        }

        /// Queues `user_id` in the key-transparency outbox inside `tx` (a new row, or the
        /// next version of its pending change).
        async fn queue_kt(
            tx: &mut sqlx::Transaction<'_, $db>,
            user_id: &str,
        ) -> Result<(), $crate::store::StoreError> {
            sqlx::query::<$db>(
                "INSERT INTO kt_pending (user_id, version) VALUES ($1, 1) \
                 ON CONFLICT (user_id) DO UPDATE SET version = kt_pending.version + 1",
            )
            .bind(user_id)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        async fn append_revocation(
            tx: &mut sqlx::Transaction<'_, $db>,
            user_id: String,
            device_id: String,
            signature_key: Vec<u8>,
            reason: Option<&str>,
            now: u64,
        ) -> Result<$crate::store::RevocationRecord, $crate::store::StoreError> {
            // The feed position comes from the counter row, locked until commit: concurrent
            // revocations commit in seq order, so a reader following `seq > cursor` never
            // skips one that commits later.
            let seq: i64 = sqlx::query_scalar::<$db, i64>(
                "UPDATE counters SET value = value + 1 WHERE name = 'revocation_seq' \
                 RETURNING value",
            )
            .fetch_one(&mut **tx)
            .await?;
            sqlx::query::<$db>(
                "INSERT INTO revocations (seq, user_id, device_id, signature_key, revoked_at, \
                 reason) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(seq)
            .bind(&user_id)
            .bind(&device_id)
            .bind(&signature_key)
            .bind($crate::store::to_i64(now))
            .bind(reason)
            .execute(&mut **tx)
            .await?;
            Ok($crate::store::RevocationRecord {
                seq: $crate::store::to_u64(seq, "revocations.seq")?,
                user_id,
                device_id,
                signature_key,
                revoked_at: now,
                reason: reason.map(str::to_owned),
            })
        }
    };
}

pub(crate) use impl_store;
