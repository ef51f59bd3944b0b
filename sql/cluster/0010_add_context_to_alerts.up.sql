-- GENERATED from sql/migrations/0010_add_context_to_alerts.up.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
-- Who and what an alert is about (schemas/alerts.py Alert v1): the rule that fired, the
-- action (notify / stop), the session it concerns, and when this state was emitted.
-- `details` holds the evidence as JSON.
ALTER TABLE alerts_local ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS rule LowCardinality(String) DEFAULT '' AFTER kind,
    ADD COLUMN IF NOT EXISTS action Enum8('notify' = 1, 'stop' = 2) DEFAULT 'notify' AFTER severity,
    ADD COLUMN IF NOT EXISTS service Nullable(String) AFTER action,
    ADD COLUMN IF NOT EXISTS team Nullable(String) AFTER service,
    ADD COLUMN IF NOT EXISTS agent_name Nullable(String) AFTER team,
    ADD COLUMN IF NOT EXISTS session_id Nullable(String) AFTER agent_name,
    ADD COLUMN IF NOT EXISTS source LowCardinality(String) DEFAULT '' AFTER details;

ALTER TABLE alerts ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS rule LowCardinality(String) DEFAULT '' AFTER kind,
    ADD COLUMN IF NOT EXISTS action Enum8('notify' = 1, 'stop' = 2) DEFAULT 'notify' AFTER severity,
    ADD COLUMN IF NOT EXISTS service Nullable(String) AFTER action,
    ADD COLUMN IF NOT EXISTS team Nullable(String) AFTER service,
    ADD COLUMN IF NOT EXISTS agent_name Nullable(String) AFTER team,
    ADD COLUMN IF NOT EXISTS session_id Nullable(String) AFTER agent_name,
    ADD COLUMN IF NOT EXISTS source LowCardinality(String) DEFAULT '' AFTER details;
