-- Rate and cost limit state: amounts per counter (named by what it counts) and bucket
-- (a slice of a rolling window, a calendar period's start, or 0 for a whole run).
CREATE TABLE limit_counters (
    counter TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    PRIMARY KEY (counter, bucket)
);
