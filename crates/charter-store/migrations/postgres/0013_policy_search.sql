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
ALTER TABLE policies ADD COLUMN rule_count BIGINT;

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

-- Active and deprecated versions stay immutable; besides deprecation, the one change allowed
-- is filling what is kept of the definition where it is missing (a rule count only with the
-- count of the rules). A name or rules written
-- without what is kept of them (by an older node: a draft's edit) lose the stale value, to be
-- read from the definition until the next open fills it.
CREATE OR REPLACE FUNCTION charter_policies_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'charter: only draft policies can be deleted';
        END IF;
        RETURN OLD;
    END IF;
    IF NEW.name IS DISTINCT FROM OLD.name
        AND NEW.name_folded IS NOT DISTINCT FROM OLD.name_folded THEN
        NEW.name_folded := NULL;
    END IF;
    IF NEW.rules IS DISTINCT FROM OLD.rules
        AND NEW.rule_count IS NOT DISTINCT FROM OLD.rule_count THEN
        NEW.rule_count := NULL;
    END IF;
    IF OLD.status <> 'draft' AND NOT (
        (NEW.id, NEW.lineage_id, NEW.version, NEW.tenant_id, NEW.scope, NEW.revision,
         NEW.name, NEW.description, NEW.rules, NEW.cloned_from, NEW.created_at,
         NEW.created_by, NEW.updated_at, NEW.updated_by, NEW.activated_at, NEW.activated_by)
        IS NOT DISTINCT FROM
        (OLD.id, OLD.lineage_id, OLD.version, OLD.tenant_id, OLD.scope, OLD.revision,
         OLD.name, OLD.description, OLD.rules, OLD.cloned_from, OLD.created_at,
         OLD.created_by, OLD.updated_at, OLD.updated_by, OLD.activated_at, OLD.activated_by)
        AND (
            (OLD.status = 'active' AND NEW.status = 'deprecated'
             AND (NEW.name_folded, NEW.rule_count)
                 IS NOT DISTINCT FROM (OLD.name_folded, OLD.rule_count))
            OR (NEW.status = OLD.status
                AND (NEW.deprecated_at, NEW.deprecated_by)
                    IS NOT DISTINCT FROM (OLD.deprecated_at, OLD.deprecated_by)
                AND (OLD.name_folded IS NULL OR OLD.rule_count IS NULL)
                AND (OLD.name_folded IS NULL OR NEW.name_folded IS NOT DISTINCT FROM OLD.name_folded)
                AND (NEW.rule_count IS NOT DISTINCT FROM OLD.rule_count
                     OR (OLD.rule_count IS NULL
                         AND NEW.rule_count = json_array_length(NEW.rules::json))))
        )
    ) THEN
        RAISE EXCEPTION 'charter: active and deprecated policies are immutable';
    END IF;
    RETURN NEW;
END;
$$;
