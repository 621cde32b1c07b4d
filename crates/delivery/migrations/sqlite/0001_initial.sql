-- Delivery Service schema (SQLite). Nothing here names a person, a device or an address:
-- ids are random or opaque, keys are the DS's own pseudonymous keys, blobs are sealed.
-- last_seq: the mailbox's entry counter, taken (UPDATE … RETURNING) in the transaction that
-- inserts an entry, so a mailbox's entries commit in the order of their numbers and a reader
-- paging by cursor never passes an entry that commits later.
CREATE TABLE mailboxes (
    id BLOB PRIMARY KEY,
    public_key BLOB NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
-- A Welcome is stored once (RFC 9420 §12.4.3.1: one Welcome for all joiners of a commit);
-- refs counts the mailbox entries referring to it, and it is deleted with the last of them.
-- Nothing links it, or a joiner's mailbox, to the group.
CREATE TABLE welcomes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    data BLOB NOT NULL,
    refs INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE mailbox_entries (
    mailbox_id BLOB NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    welcome_id INTEGER REFERENCES welcomes(id),
    data BLOB,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, seq)
);
CREATE INDEX mailbox_entries_by_expiry ON mailbox_entries (expires_at);
CREATE INDEX mailbox_entries_by_welcome ON mailbox_entries (welcome_id);
CREATE TABLE pools (
    id BLOB PRIMARY KEY,
    mailbox_id BLOB NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    claim_secret_hash BLOB NOT NULL,
    -- The claim rate limit (RFC 9420 §16.8) as a token bucket in GCRA form, shared by every
    -- node: the theoretical arrival time of the next claim, in microseconds.
    claim_tat INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE sealed_key_packages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pool_id BLOB NOT NULL REFERENCES pools(id) ON DELETE CASCADE,
    sealed BLOB NOT NULL,
    last_resort BOOLEAN NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sealed_key_packages_by_pool ON sealed_key_packages (pool_id, last_resort, expires_at, id);
CREATE INDEX sealed_key_packages_by_expiry ON sealed_key_packages (expires_at);
CREATE TABLE groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id BLOB NOT NULL UNIQUE,
    epoch INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    epoch_started_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    group_info BLOB,
    group_info_epoch INTEGER
);
CREATE TABLE epoch_keys (
    group_ref INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    auth_key BLOB NOT NULL,
    external_commit_key BLOB,
    start_seq INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (group_ref, epoch)
);
CREATE TABLE log_entries (
    group_ref INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    message BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (group_ref, seq)
);
CREATE INDEX log_entries_by_age ON log_entries (kind, created_at);
CREATE INDEX log_entries_by_epoch ON log_entries (group_ref, epoch);
CREATE TABLE nonces (
    scope BLOB NOT NULL,
    nonce BLOB NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (scope, nonce)
);
CREATE INDEX nonces_by_expiry ON nonces (expires_at);
