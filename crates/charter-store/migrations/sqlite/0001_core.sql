-- Tenants, agents, API keys, policies (every version a row), validations, the audit log.
-- Times are Unix milliseconds; JSON is TEXT. Active and deprecated policies are immutable and
-- the audit log is append-only: triggers enforce both, so no bug above can change them.

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE agents (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    owner TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT REFERENCES tenants (id),
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    last4 TEXT NOT NULL,
    scopes TEXT NOT NULL,
    calls INTEGER NOT NULL DEFAULT 0,
    last_used_at INTEGER,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE policies (
    id TEXT PRIMARY KEY,
    lineage_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    tenant_id TEXT REFERENCES tenants (id),
    scope TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'active', 'deprecated')),
    revision INTEGER NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    rules TEXT NOT NULL,
    cloned_from TEXT,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL,
    activated_at INTEGER,
    activated_by TEXT,
    deprecated_at INTEGER,
    deprecated_by TEXT,
    UNIQUE (lineage_id, version)
);
CREATE INDEX policies_tenant ON policies (tenant_id, status);

CREATE TRIGGER policies_frozen_update BEFORE UPDATE ON policies
WHEN OLD.status <> 'draft' AND NOT (
    OLD.status = 'active' AND NEW.status = 'deprecated'
    AND NEW.id = OLD.id AND NEW.lineage_id = OLD.lineage_id AND NEW.version = OLD.version
    AND NEW.tenant_id IS OLD.tenant_id AND NEW.scope = OLD.scope AND NEW.revision = OLD.revision
    AND NEW.name = OLD.name AND NEW.description = OLD.description AND NEW.rules = OLD.rules
    AND NEW.cloned_from IS OLD.cloned_from AND NEW.created_at = OLD.created_at
    AND NEW.created_by = OLD.created_by AND NEW.updated_at = OLD.updated_at
    AND NEW.updated_by = OLD.updated_by AND NEW.activated_at IS OLD.activated_at
    AND NEW.activated_by IS OLD.activated_by
)
BEGIN
    SELECT RAISE(ABORT, 'charter: active and deprecated policies are immutable');
END;

CREATE TRIGGER policies_frozen_delete BEFORE DELETE ON policies
WHEN OLD.status <> 'draft'
BEGIN
    SELECT RAISE(ABORT, 'charter: only draft policies can be deleted');
END;

CREATE TABLE validations (
    policy_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    at INTEGER NOT NULL,
    report TEXT NOT NULL,
    PRIMARY KEY (policy_id, revision)
);

-- One chain per tenant ('' is the platform chain); the head row serialises appends.
CREATE TABLE audit_heads (
    chain TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);

CREATE TABLE audit_log (
    chain TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    tenant_id TEXT,
    actor_key_id TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    action TEXT NOT NULL,
    policy_id TEXT,
    lineage_id TEXT,
    version INTEGER,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (chain, seq)
);
CREATE INDEX audit_policy ON audit_log (policy_id);
CREATE INDEX audit_lineage ON audit_log (lineage_id);

CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'charter: the audit log is append-only');
END;

CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'charter: the audit log is append-only');
END;
