-- Tenants, agents, API keys, policies (every version a row), validations, the audit log.
-- Times are Unix milliseconds; JSON is TEXT (byte-exact, as hashed). Active and deprecated
-- policies are immutable and the audit log is append-only: triggers enforce both, so no bug
-- above can change them.

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE agents (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    owner TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT REFERENCES tenants (id),
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    last4 TEXT NOT NULL,
    scopes TEXT NOT NULL,
    calls BIGINT NOT NULL DEFAULT 0,
    last_used_at BIGINT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE policies (
    id TEXT PRIMARY KEY,
    lineage_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    tenant_id TEXT REFERENCES tenants (id),
    scope TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'active', 'deprecated')),
    revision BIGINT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    rules TEXT NOT NULL,
    cloned_from TEXT,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    activated_at BIGINT,
    activated_by TEXT,
    deprecated_at BIGINT,
    deprecated_by TEXT,
    UNIQUE (lineage_id, version)
);
CREATE INDEX policies_tenant ON policies (tenant_id, status);

CREATE FUNCTION charter_policies_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'charter: only draft policies can be deleted';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status <> 'draft' AND NOT (
        OLD.status = 'active' AND NEW.status = 'deprecated'
        AND (NEW.id, NEW.lineage_id, NEW.version, NEW.tenant_id, NEW.scope, NEW.revision,
             NEW.name, NEW.description, NEW.rules, NEW.cloned_from, NEW.created_at,
             NEW.created_by, NEW.updated_at, NEW.updated_by, NEW.activated_at, NEW.activated_by)
            IS NOT DISTINCT FROM
            (OLD.id, OLD.lineage_id, OLD.version, OLD.tenant_id, OLD.scope, OLD.revision,
             OLD.name, OLD.description, OLD.rules, OLD.cloned_from, OLD.created_at,
             OLD.created_by, OLD.updated_at, OLD.updated_by, OLD.activated_at, OLD.activated_by)
    ) THEN
        RAISE EXCEPTION 'charter: active and deprecated policies are immutable';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER policies_frozen BEFORE UPDATE OR DELETE ON policies
FOR EACH ROW EXECUTE FUNCTION charter_policies_frozen();

CREATE TABLE validations (
    policy_id TEXT NOT NULL,
    revision BIGINT NOT NULL,
    at BIGINT NOT NULL,
    report TEXT NOT NULL,
    PRIMARY KEY (policy_id, revision)
);

-- One chain per tenant ('' is the platform chain); the head row serialises appends.
CREATE TABLE audit_heads (
    chain TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);

CREATE TABLE audit_log (
    chain TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    tenant_id TEXT,
    actor_key_id TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    action TEXT NOT NULL,
    policy_id TEXT,
    lineage_id TEXT,
    version BIGINT,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (chain, seq)
);
CREATE INDEX audit_policy ON audit_log (policy_id);
CREATE INDEX audit_lineage ON audit_log (lineage_id);

CREATE FUNCTION charter_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'charter: the audit log is append-only';
END;
$$;

CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION charter_audit_append_only();
