-- Retention (`charter serve --retain-actions`, `--retain-violations`, `--retain-audit`): a
-- pruning pass deletes ended runs with their actions, old violations with their counts, and
-- the oldest entries of each audit chain, in short batches (`retention`).
--
-- Ended runs in the order they ended, for the batches of runs to delete. Running runs have no
-- end and sit together at one end of it.
CREATE INDEX runs_ended ON runs (ended_at);
-- Violations go by time through `violations_at` (0004).

-- Where each pruned audit chain now begins: the seq and hash of the last entry removed, written
-- in the transaction that removes it. Verify starts the chain from here (the first kept entry
-- must follow it), so a chain stays verifiable after its oldest entries are gone.
CREATE TABLE audit_anchors (
    chain TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);

-- The audit log stays append-only, but for entries its chain's anchor already covers.
DROP TRIGGER audit_append_only_delete;
CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit_log
WHEN NOT EXISTS (SELECT 1 FROM audit_anchors a WHERE a.chain = OLD.chain AND a.seq >= OLD.seq)
BEGIN
    SELECT RAISE(ABORT, 'charter: the audit log is append-only');
END;
