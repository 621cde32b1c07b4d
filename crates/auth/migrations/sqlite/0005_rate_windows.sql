-- Request counts per (kind:subject, fixed window), shared by every node: rate limits.
CREATE TABLE rate_windows (
    key TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    hits INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (key, window_start)
);
CREATE INDEX rate_windows_by_expiry ON rate_windows (expires_at);
