-- The Audit Log filtered by policy or by lineage reads a page in the chains' order (chain,
-- seq): with these indexes it reads the page's entries in that order and stops at its end,
-- instead of reading every entry of the lineage and sorting them (issue 18).
DROP INDEX audit_policy;
DROP INDEX audit_lineage;
CREATE INDEX audit_policy ON audit_log (policy_id, chain, seq);
CREATE INDEX audit_lineage ON audit_log (lineage_id, chain, seq);
