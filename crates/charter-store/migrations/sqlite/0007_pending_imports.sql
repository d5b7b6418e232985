-- A run import in progress, written in pieces (short transactions, so the checks of a live
-- SQLite node are never held behind one long one): its runs carry the import's id until its
-- last piece clears it for all at once, and every read leaves them (and so their actions) out
-- until then. A failed or interrupted import's runs and actions are deleted. PostgreSQL
-- imports in one transaction and never sets it.
ALTER TABLE runs ADD COLUMN import_id TEXT;
CREATE INDEX runs_import ON runs (import_id) WHERE import_id IS NOT NULL;
