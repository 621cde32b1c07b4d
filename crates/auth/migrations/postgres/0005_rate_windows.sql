-- Request counts per (kind:subject, fixed window), shared by every node: rate limits.
CREATE TABLE rate_windows (
    key TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    hits BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (key, window_start)
);
CREATE INDEX rate_windows_by_expiry ON rate_windows (expires_at);
