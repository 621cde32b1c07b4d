-- Key transparency log: what each akd epoch published, and its root (replayed at start).
CREATE TABLE kt_log (
    epoch BIGINT NOT NULL,
    label TEXT NOT NULL,
    value BYTEA NOT NULL,
    PRIMARY KEY (epoch, label)
);
CREATE TABLE kt_roots (
    epoch BIGINT PRIMARY KEY,
    root BYTEA NOT NULL
);
