-- GENERATED from sql/migrations/0015_add_call_identity_attribution_and_tool_calls.down.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
DROP TABLE IF EXISTS tool_calls ON CLUSTER '{cluster}' SYNC;

DROP TABLE IF EXISTS tool_calls_local ON CLUSTER '{cluster}' SYNC;

ALTER TABLE spend_1m ON CLUSTER '{cluster}'
    DROP COLUMN IF EXISTS usage_missing_calls;

ALTER TABLE spend_1m_local ON CLUSTER '{cluster}'
    DROP COLUMN IF EXISTS usage_missing_calls;

ALTER TABLE token_spans ON CLUSTER '{cluster}'
    DROP COLUMN IF EXISTS revision,
    DROP COLUMN IF EXISTS catalog_model,
    DROP COLUMN IF EXISTS usage_missing,
    DROP COLUMN IF EXISTS sender,
    DROP COLUMN IF EXISTS response_id;

ALTER TABLE token_spans_local ON CLUSTER '{cluster}'
    DROP COLUMN IF EXISTS revision,
    DROP COLUMN IF EXISTS catalog_model,
    DROP COLUMN IF EXISTS usage_missing,
    DROP COLUMN IF EXISTS sender,
    DROP COLUMN IF EXISTS response_id;
