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

-- Active and deprecated versions stay immutable; besides deprecation, the one change allowed
-- is filling the lowercased name of a row that has none. A name written without its lowercase
-- (by an older node: a draft's rename) loses the stale one, so the search tests the new name
-- itself until the next open fills it.
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
             AND NEW.name_folded IS NOT DISTINCT FROM OLD.name_folded)
            OR (NEW.status = OLD.status AND OLD.name_folded IS NULL
                AND (NEW.deprecated_at, NEW.deprecated_by)
                    IS NOT DISTINCT FROM (OLD.deprecated_at, OLD.deprecated_by))
        )
    ) THEN
        RAISE EXCEPTION 'charter: active and deprecated policies are immutable';
    END IF;
    RETURN NEW;
END;
$$;
