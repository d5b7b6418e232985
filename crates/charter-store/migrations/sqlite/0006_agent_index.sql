-- A run's actions and violations are found through its agent's time-ordered indexes (the
-- run's tenant, agent and start bound the range), not through an index keyed by run: such an
-- index has one insertion point per running run, so every group commit dirtied a page per
-- run it touched (most of what a commit wrote). An agent index has one per agent, and also
-- serves Validate of an agent-scoped policy as one range scan in replay order.
DROP INDEX actions_run;
DROP INDEX violations_run;
CREATE INDEX actions_agent ON actions (tenant_id, agent_id, at, run_id, id);
