-- The Monitor's counts per 3 hours, beside those per 15 minutes (0011): a chart whose buckets
-- are 3 hours or longer (a week, a month, all time) sums these, a twelfth of the rows, and the
-- 15-minute slots only at its range's edges. The group commit adds to both in the events' own
-- transaction (`commit::GRAINS`); filled here from the 15-minute counts (issue 18).
CREATE TABLE violation_counts_3h (
    tenant_id TEXT NOT NULL,
    slot BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, slot)
);

CREATE TABLE violation_policy_counts_3h (
    policy_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    slot BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (policy_id, tenant_id, slot)
);

INSERT INTO violation_counts_3h (tenant_id, slot, n)
SELECT tenant_id, (slot / 10800000) * 10800000, SUM(n) FROM violation_counts GROUP BY 1, 2;

INSERT INTO violation_policy_counts_3h (policy_id, tenant_id, slot, n)
SELECT policy_id, tenant_id, (slot / 10800000) * 10800000, SUM(n)
FROM violation_policy_counts GROUP BY 1, 2, 3;
