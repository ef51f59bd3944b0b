-- GENERATED from sql/migrations/0008_add_service_tier_to_token_spans.down.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
ALTER TABLE token_spans ON CLUSTER '{cluster}'
    DROP COLUMN IF EXISTS service_tier;

ALTER TABLE token_spans_local ON CLUSTER '{cluster}'
    DROP COLUMN IF EXISTS service_tier;
