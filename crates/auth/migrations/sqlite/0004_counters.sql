-- Counters taken by an UPDATE inside the writing transaction: the row lock serialises the
-- writers until commit, so the numbers commit in order and a reader's cursor can never
-- pass a number that commits later (which an identity/sequence column allows).
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) SELECT 'revocation_seq', COALESCE(MAX(seq), 0) FROM revocations;
