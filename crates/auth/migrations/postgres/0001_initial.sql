-- Conclave AS, PostgreSQL schema v1 (kept within what CockroachDB accepts). Times are Unix seconds.
CREATE TABLE invitations (
    code_hash BYTEA PRIMARY KEY,          -- SHA-256 of the code: the code itself is never stored
    user_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE TABLE challenges (
    challenge_id TEXT PRIMARY KEY,
    nonce BYTEA NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE TABLE devices (
    device_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id),
    signature_key BYTEA NOT NULL UNIQUE,
    chain BYTEA NOT NULL,
    not_after BIGINT NOT NULL,
    contact_key BYTEA,
    contact_key_signature BYTEA,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX devices_by_user ON devices (user_id, created_at, device_id);
CREATE TABLE revocations (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    signature_key BYTEA NOT NULL,
    revoked_at BIGINT NOT NULL,
    reason TEXT
);
CREATE TABLE relay (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id TEXT NOT NULL,
    sealed BYTEA NOT NULL,
    received_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX relay_by_device ON relay (device_id, id);
CREATE INDEX relay_by_expiry ON relay (expires_at);
