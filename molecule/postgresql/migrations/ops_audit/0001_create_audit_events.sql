-- Scenario-only migration set: a second database with a quarterly partitioned table whose
-- expired partitions are detached, not dropped (seed 004: fact_* tables, quarterly).
CREATE SCHEMA audit;

CREATE TABLE audit.events (
    id           BIGINT GENERATED ALWAYS AS IDENTITY,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    occurred_at  TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);
