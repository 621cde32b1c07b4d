-- Conclave AS, SQLite schema v1. Times are Unix seconds.
CREATE TABLE invitations (
    code_hash BLOB PRIMARY KEY,           -- SHA-256 of the code: the code itself is never stored
    user_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);
CREATE TABLE challenges (
    challenge_id TEXT PRIMARY KEY,
    nonce BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE TABLE devices (
    device_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id),
    signature_key BLOB NOT NULL UNIQUE,
    chain BLOB NOT NULL,
    not_after INTEGER NOT NULL,
    contact_key BLOB,
    contact_key_signature BLOB,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX devices_by_user ON devices (user_id, created_at, device_id);
CREATE TABLE revocations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    signature_key BLOB NOT NULL,
    revoked_at INTEGER NOT NULL,
    reason TEXT
);
CREATE TABLE relay (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    sealed BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX relay_by_device ON relay (device_id, id);
CREATE INDEX relay_by_expiry ON relay (expires_at);
