-- Which limit counters have been seeded from the recorded history, and what each counts. The
-- first check that claims a counter with no row here seeds it (under the counter's lock) from
-- the recorded allowed actions its rule counts, so a rule activated now counts what happened
-- before it; from then on every allowed action of its subject (agent or tenant) counts on it,
-- whichever run's it is (`policy_id` and `rule_id` name the rule that says what it counts).
-- Counters that already hold rows were counted by the rules that made them: they are marked as
-- they are, with no rule (not watched).
CREATE TABLE limit_seeds (
    counter TEXT PRIMARY KEY,
    seeded_at BIGINT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    policy_id TEXT NOT NULL DEFAULT '',
    rule_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX limit_seeds_subject ON limit_seeds (subject);
INSERT INTO limit_seeds (counter, seeded_at) SELECT DISTINCT counter, 0 FROM limit_counters;
