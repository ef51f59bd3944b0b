-- GENERATED from sql/migrations/0010_add_context_to_alerts.down.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
ALTER TABLE alerts ON CLUSTER '{cluster}'
    DROP COLUMN IF EXISTS rule,
    DROP COLUMN IF EXISTS action,
    DROP COLUMN IF EXISTS service,
    DROP COLUMN IF EXISTS team,
    DROP COLUMN IF EXISTS agent_name,
    DROP COLUMN IF EXISTS session_id,
    DROP COLUMN IF EXISTS source;

ALTER TABLE alerts_local ON CLUSTER '{cluster}'
    DROP COLUMN IF EXISTS rule,
    DROP COLUMN IF EXISTS action,
    DROP COLUMN IF EXISTS service,
    DROP COLUMN IF EXISTS team,
    DROP COLUMN IF EXISTS agent_name,
    DROP COLUMN IF EXISTS session_id,
    DROP COLUMN IF EXISTS source;
