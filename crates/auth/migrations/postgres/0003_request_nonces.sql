-- Nonces of signed requests, one row per (device, nonce) until the request's timestamp
-- leaves the accepted window: a replayed request finds its row and is refused.
CREATE TABLE request_nonces (
    device_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, nonce)
);
CREATE INDEX request_nonces_by_expiry ON request_nonces (expires_at);
