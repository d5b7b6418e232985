-- The workspace's lists are read newest first, one page at a time, each an index range read
-- in the list's order, so a page costs the same with 10,000 policies and 50,000 runs as with
-- ten (issue 18). Policies by (created_at, id): unfiltered, by status, by tenant.
CREATE INDEX policies_created ON policies (created_at, id);
CREATE INDEX policies_status_created ON policies (status, created_at, id);
CREATE INDEX policies_tenant_created ON policies (tenant_id, created_at, id);
-- Runs of every tenant (a platform key's list); a tenant's are read through runs_tenant_started.
CREATE INDEX runs_started ON runs (started_at, id);
