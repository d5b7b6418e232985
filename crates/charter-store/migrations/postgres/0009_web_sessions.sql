-- Sessions of the web workspace. The cookie carries a random session id; only its SHA-256 is
-- kept here, so a copy of the database signs nobody in. A session names its key by id (never
-- the secret): every request reloads the key, so revoking it ends its sessions at once.
-- `tenant_id` is the tenant a platform key chose to look at (NULL: all of them); a tenant
-- key's sessions leave it NULL, the key's own tenant being the only one it sees.
CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY,
    key_id TEXT NOT NULL REFERENCES api_keys (id),
    tenant_id TEXT REFERENCES tenants (id),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
