-- Which limit counters have been seeded from the recorded history. The first check that claims
-- a counter with no row here seeds it (under the counter's lock) from the recorded allowed
-- actions that count on it, so a rule activated now counts what happened before it. Counters
-- that already hold rows were counted by the rules that made them: they are marked as they are.
CREATE TABLE limit_seeds (
    counter TEXT PRIMARY KEY,
    seeded_at BIGINT NOT NULL
);
INSERT INTO limit_seeds (counter, seeded_at) SELECT DISTINCT counter, 0 FROM limit_counters;
