-- Pinning a run reads only the active policies of its three scopes, found by their exact
-- scope text, not every policy of the tenant.
CREATE INDEX policies_scope ON policies (scope, status);
