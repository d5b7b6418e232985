-- Runs with their pinned policy set, actions with their decisions, and violations (the
-- Monitor's events). Actions keep their full input so Validate can replay them.
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    agent_id TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    status TEXT NOT NULL CHECK (status IN ('running', 'halted', 'completed', 'failed')),
    metadata TEXT NOT NULL,
    policy_set_hash TEXT NOT NULL,
    policy_set TEXT NOT NULL,
    imported BIGINT NOT NULL DEFAULT 0,
    halted_by TEXT
);
CREATE INDEX runs_tenant_started ON runs (tenant_id, started_at);

CREATE TABLE actions (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id),
    tenant_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    input TEXT,
    decision TEXT,
    policy_set_hash TEXT
);
CREATE INDEX actions_tenant_at ON actions (tenant_id, at, run_id, id);
CREATE INDEX actions_run ON actions (run_id, at, id);

CREATE TABLE violations (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    decision TEXT NOT NULL,
    policy_id TEXT NOT NULL,
    policy_name TEXT NOT NULL,
    policy_version BIGINT NOT NULL,
    lineage_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    rule_type TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    action_id TEXT NOT NULL,
    action_kind TEXT NOT NULL,
    action_summary TEXT NOT NULL,
    matching_input TEXT,
    message TEXT NOT NULL
);
CREATE INDEX violations_tenant_at ON violations (tenant_id, at, id);
CREATE INDEX violations_policy ON violations (policy_id, at);
CREATE INDEX violations_lineage ON violations (lineage_id, at);
CREATE INDEX violations_run ON violations (run_id);
