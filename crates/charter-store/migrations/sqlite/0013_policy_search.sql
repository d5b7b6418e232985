-- What the workspace's list of policies reads of each row, kept beside the definition so no
-- row is parsed (issue 18):
-- - `name_folded`: the name lowercased by the server (`str::to_lowercase`, which neither
--   database's `lower` matches for every script). A search by name (a case-insensitive
--   substring match, as the API's `q`, which no index can seek) tests it in SQL and returns
--   only the matches instead of every row for the server to test.
-- - `rule_count`: how many rules the definition has (SQL's JSON functions parse the whole
--   definition for it, row after row).
-- Both are written with the definition; rows written before them (or by an older node) are
-- NULL until the store's next open fills them, and meanwhile a search tests such a row's
-- name itself and the list counts its rules from the definition.
ALTER TABLE policies ADD COLUMN name_folded TEXT;
ALTER TABLE policies ADD COLUMN rule_count INTEGER;

-- The list's indexes carry the lowercased name, so a search tests each name in the index it
-- reads the list's order from, and reads the table only for the rows that match.
DROP INDEX policies_created;
DROP INDEX policies_status_created;
DROP INDEX policies_tenant_created;
CREATE INDEX policies_created ON policies (created_at, id, name_folded);
CREATE INDEX policies_status_created ON policies (status, created_at, id, name_folded);
CREATE INDEX policies_tenant_created ON policies (tenant_id, created_at, id, name_folded);

-- The rows the store's open fills (`fill_kept`): none once filled, so an open reads nothing.
CREATE INDEX policies_unkept ON policies (id) WHERE name_folded IS NULL OR rule_count IS NULL;

-- A name or rules written without what is kept of them (by an older node: a draft's edit)
-- lose the stale value, to be read from the definition until the next open fills it.
CREATE TRIGGER policies_name_unfolded AFTER UPDATE OF name ON policies
WHEN NEW.name IS NOT OLD.name AND NEW.name_folded IS OLD.name_folded
BEGIN
    UPDATE policies SET name_folded = NULL WHERE id = NEW.id;
END;
CREATE TRIGGER policies_rules_uncounted AFTER UPDATE OF rules ON policies
WHEN NEW.rules IS NOT OLD.rules AND NEW.rule_count IS OLD.rule_count
BEGIN
    UPDATE policies SET rule_count = NULL WHERE id = NEW.id;
END;

-- Active and deprecated versions stay immutable; besides deprecation, the one change allowed
-- is filling what is kept of the definition where it is missing (a rule count only with the
-- count of the rules).
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
         AND NEW.name_folded IS OLD.name_folded AND NEW.rule_count IS OLD.rule_count)
        OR (NEW.status = OLD.status
            AND NEW.deprecated_at IS OLD.deprecated_at AND NEW.deprecated_by IS OLD.deprecated_by
            AND (OLD.name_folded IS NULL OR OLD.rule_count IS NULL)
            AND (OLD.name_folded IS NULL OR NEW.name_folded IS OLD.name_folded)
            AND (NEW.rule_count IS OLD.rule_count
                 OR (OLD.rule_count IS NULL AND NEW.rule_count = json_array_length(NEW.rules))))
    )
)
BEGIN
    SELECT RAISE(ABORT, 'charter: active and deprecated policies are immutable');
END;
