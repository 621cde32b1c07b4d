-- Delivery Service schema (PostgreSQL; CockroachDB-compatible). Nothing here names a person, a device or an address:
-- ids are random or opaque, keys are the DS's own pseudonymous keys, blobs are sealed.
-- last_seq: the mailbox's entry counter, taken (UPDATE … RETURNING) in the transaction that
-- inserts an entry, so a mailbox's entries commit in the order of their numbers and a reader
-- paging by cursor never passes an entry that commits later.
CREATE TABLE mailboxes (
    id BYTEA PRIMARY KEY,
    public_key BYTEA NOT NULL,
    last_seq BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
-- A Welcome is stored once (RFC 9420 §12.4.3.1: one Welcome for all joiners of a commit);
-- refs counts the mailbox entries referring to it, and it is deleted with the last of them.
-- Nothing links it, or a joiner's mailbox, to the group.
CREATE TABLE welcomes (
    id BIGSERIAL PRIMARY KEY,
    data BYTEA NOT NULL,
    refs BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE mailbox_entries (
    mailbox_id BYTEA NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    kind BIGINT NOT NULL,
    welcome_id BIGINT REFERENCES welcomes(id),
    data BYTEA,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (mailbox_id, seq)
);
CREATE INDEX mailbox_entries_by_expiry ON mailbox_entries (expires_at);
CREATE INDEX mailbox_entries_by_welcome ON mailbox_entries (welcome_id);
CREATE TABLE pools (
    id BYTEA PRIMARY KEY,
    mailbox_id BYTEA NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    claim_secret_hash BYTEA NOT NULL,
    -- The claim rate limit (RFC 9420 §16.8) as a token bucket in GCRA form, shared by every
    -- node: the theoretical arrival time of the next claim, in microseconds.
    claim_tat BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE TABLE sealed_key_packages (
    id BIGSERIAL PRIMARY KEY,
    pool_id BYTEA NOT NULL REFERENCES pools(id) ON DELETE CASCADE,
    sealed BYTEA NOT NULL,
    last_resort BOOLEAN NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sealed_key_packages_by_pool ON sealed_key_packages (pool_id, last_resort, expires_at, id);
CREATE INDEX sealed_key_packages_by_expiry ON sealed_key_packages (expires_at);
CREATE TABLE groups (
    id BIGSERIAL PRIMARY KEY,
    group_id BYTEA NOT NULL UNIQUE,
    epoch BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    epoch_started_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    group_info BYTEA,
    group_info_epoch BIGINT
);
CREATE TABLE epoch_keys (
    group_ref BIGINT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    epoch BIGINT NOT NULL,
    auth_key BYTEA NOT NULL,
    external_commit_key BYTEA,
    start_seq BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_ref, epoch)
);
CREATE TABLE log_entries (
    group_ref BIGINT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    epoch BIGINT NOT NULL,
    kind BIGINT NOT NULL,
    message BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_ref, seq)
);
CREATE INDEX log_entries_by_age ON log_entries (kind, created_at);
CREATE INDEX log_entries_by_epoch ON log_entries (group_ref, epoch);
CREATE TABLE nonces (
    scope BYTEA NOT NULL,
    nonce BYTEA NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (scope, nonce)
);
CREATE INDEX nonces_by_expiry ON nonces (expires_at);
