-- Key-transparency outbox: a user whose device set changed and is not yet published. Written
-- in the same transaction as the change; deleted in the transaction that logs the epoch
-- publishing it. `version` counts changes, so a change made while a publish is running keeps
-- its row (the publish deletes only the version it read).
CREATE TABLE kt_pending (
    user_id TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);
-- Every existing user is queued once: a value left stale before this migration (a crash
-- between a commit and its publish) is published; unchanged values publish nothing.
INSERT INTO kt_pending (user_id, version) SELECT user_id, 1 FROM users;
-- The publisher lease: only `holder` appends to kt_log/kt_roots, renewed until `expires_at`
-- (Unix seconds); an expired lease may be taken by another node (compare-and-set).
CREATE TABLE kt_lease (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
INSERT INTO kt_lease (name, holder, expires_at) VALUES ('publisher', '', 0);
