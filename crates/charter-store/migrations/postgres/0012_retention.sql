-- Retention (`charter serve --retain-actions`, `--retain-violations`, `--retain-audit`): a
-- pruning pass deletes ended runs with their actions, old violations with their counts, and
-- the oldest entries of each audit chain, in short batches (`retention`).
--
-- Ended runs in the order they ended, for the batches of runs to delete. Running runs have no
-- end and sit together at one end of it.
CREATE INDEX runs_ended ON runs (ended_at);
-- Violations go by time through `violations_at` (0004).

-- Deleting a run made PostgreSQL look for actions still referring to it, and with no index of
-- actions by run (0006: such an index costs every group commit a page per running run) that
-- is a scan of every action per run deleted. Retention deletes a run's actions before the run,
-- in one transaction, and the group commit records actions only for runs it has just read
-- under a row lock.
ALTER TABLE actions DROP CONSTRAINT actions_run_id_fkey;

-- Where each pruned audit chain now begins: the seq and hash of the last entry removed, written
-- in the transaction that removes it. Verify starts the chain from here (the first kept entry
-- must follow it), so a chain stays verifiable after its oldest entries are gone.
CREATE TABLE audit_anchors (
    chain TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);

-- The audit log stays append-only, but for entries its chain's anchor already covers.
CREATE OR REPLACE FUNCTION charter_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (
        SELECT 1 FROM audit_anchors a WHERE a.chain = OLD.chain AND a.seq >= OLD.seq
    ) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'charter: the audit log is append-only';
END;
$$;
