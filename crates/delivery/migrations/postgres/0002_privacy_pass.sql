-- Privacy Pass (RFC 9577/9578): the nonces of redeemed tokens, by the window of the challenge
-- they answered (tokens of older windows are refused, so their rows are pruned), and the
-- secret that keys the windows' redemption contexts, the same for every node.
CREATE TABLE spent_tokens (
    nonce BYTEA PRIMARY KEY,
    time_window BIGINT NOT NULL
);
CREATE INDEX spent_tokens_by_window ON spent_tokens (time_window);
CREATE TABLE secrets (
    id BYTEA PRIMARY KEY,
    value BYTEA NOT NULL
);
