-- The Monitor's chart counts events per time bucket. Counting the rows of its range grew with
-- the events (110,000 of them: 10-40 ms per chart); these tables keep the counts per slot of
-- 15 minutes of `at` (from the Unix epoch), per tenant and per policy and tenant, added to by
-- the group commit in the transaction that records the events (`commit::SlotCounts`: one
-- upsert per count, in key order, so concurrent batches on PostgreSQL never deadlock on them). A chart whose buckets are whole slots
-- (15 minutes and longer: every range but the last hour) sums these rows instead, with no
-- filter but tenant and policy; other filters still count the events (issue 18).
CREATE TABLE violation_counts (
    tenant_id TEXT NOT NULL,
    slot INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, slot)
);

CREATE TABLE violation_policy_counts (
    policy_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    slot INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (policy_id, tenant_id, slot)
);

INSERT INTO violation_counts (tenant_id, slot, n)
SELECT tenant_id, (at / 900000) * 900000, COUNT(*) FROM violations GROUP BY 1, 2;

INSERT INTO violation_policy_counts (policy_id, tenant_id, slot, n)
SELECT policy_id, tenant_id, (at / 900000) * 900000, COUNT(*) FROM violations GROUP BY 1, 2, 3;
