-- The workspace's search of policies by name is a case-insensitive substring match (Unicode
-- lowercase, as the API's `q`), which no index can seek. This column keeps each name
-- lowercased by the server (`str::to_lowercase`, which neither database's `lower` matches for
-- every script), so SQL tests it and returns only the matches instead of every row for the
-- server to test. It is written with the name; rows written before it (or by an older node)
-- are NULL until the store's next open fills them, and a search reads NULL rows to test their
-- names itself (issue 18).
ALTER TABLE policies ADD COLUMN name_folded TEXT;

-- The list's indexes carry it, so a search tests each name in the index it reads the list's
-- order from, and reads the table only for the rows that match.
DROP INDEX policies_created;
DROP INDEX policies_status_created;
DROP INDEX policies_tenant_created;
CREATE INDEX policies_created ON policies (created_at, id, name_folded);
CREATE INDEX policies_status_created ON policies (status, created_at, id, name_folded);
CREATE INDEX policies_tenant_created ON policies (tenant_id, created_at, id, name_folded);

-- A name written without its lowercase (by an older node: a draft's rename) loses the stale
-- one, so the search tests the new name itself until the next open fills it.
CREATE TRIGGER policies_name_unfolded AFTER UPDATE OF name ON policies
WHEN NEW.name IS NOT OLD.name AND NEW.name_folded IS OLD.name_folded
BEGIN
    UPDATE policies SET name_folded = NULL WHERE id = NEW.id;
END;

-- Active and deprecated versions stay immutable; besides deprecation, the one change allowed
-- is filling the lowercased name of a row that has none.
DROP TRIGGER policies_frozen_update;
CREATE TRIGGER policies_frozen_update BEFORE UPDATE ON policies
WHEN OLD.status <> 'draft' AND NOT (
    NEW.id = OLD.id AND NEW.lineage_id = OLD.lineage_id AND NEW.version = OLD.version
    AND NEW.tenant_id IS OLD.tenant_id AND NEW.scope = OLD.scope AND NEW.revision = OLD.revision
    AND NEW.name = OLD.name AND NEW.description = OLD.description AND NEW.rules = OLD.rules
    AND NEW.cloned_from IS OLD.cloned_from AND NEW.created_at = OLD.created_at
    AND NEW.created_by = OLD.created_by AND NEW.updated_at = OLD.updated_at
    AND NEW.updated_by = OLD.updated_by AND NEW.activated_at IS OLD.activated_at
    AND NEW.activated_by IS OLD.activated_by
    AND (
        (OLD.status = 'active' AND NEW.status = 'deprecated'
         AND NEW.name_folded IS OLD.name_folded)
        OR (NEW.status = OLD.status AND OLD.name_folded IS NULL
            AND NEW.deprecated_at IS OLD.deprecated_at AND NEW.deprecated_by IS OLD.deprecated_by)
    )
)
BEGIN
    SELECT RAISE(ABORT, 'charter: active and deprecated policies are immutable');
END;
