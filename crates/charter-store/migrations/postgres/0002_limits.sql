-- Rate and cost limit state: amounts per counter (named by what it counts) and bucket
-- (a slice of a rolling window, a calendar period's start, or 0 for a whole run). Shared by
-- every node; a transaction-scoped advisory lock per counter makes check-and-commit atomic.
CREATE TABLE limit_counters (
    counter TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    PRIMARY KEY (counter, bucket)
);
