-- Lineages: one row per chain of versions, locked by every lineage-level change (activation,
-- clone, scope edit) so concurrent ones serialise; it holds the next version number and,
-- once a version has been active, the lineage's fixed scope.
CREATE TABLE lineages (
    id TEXT PRIMARY KEY,
    tenant_id TEXT,
    scope TEXT NOT NULL,
    next_version INTEGER NOT NULL,
    fixed INTEGER NOT NULL DEFAULT 0
);

INSERT INTO lineages (id, tenant_id, scope, next_version, fixed)
SELECT lineage_id, MIN(tenant_id), MIN(scope), MAX(version) + 1,
       MAX(CASE WHEN activated_at IS NOT NULL THEN 1 ELSE 0 END)
FROM policies GROUP BY lineage_id;

-- Replay's scan of every tenant's actions in time order.
CREATE INDEX actions_at ON actions (at, run_id, id);
CREATE INDEX violations_at ON violations (at, id);
CREATE INDEX violations_agent ON violations (tenant_id, agent_id, at);
