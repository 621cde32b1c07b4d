-- Key transparency log: what each akd epoch published, and its root (replayed at start).
CREATE TABLE kt_log (
    epoch INTEGER NOT NULL,
    label TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (epoch, label)
);
CREATE TABLE kt_roots (
    epoch INTEGER PRIMARY KEY,
    root BLOB NOT NULL
);
