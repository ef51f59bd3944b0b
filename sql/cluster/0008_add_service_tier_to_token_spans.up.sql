-- GENERATED from sql/migrations/0008_add_service_tier_to_token_spans.up.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
-- batch and other tiers have their own prices in the catalog.
ALTER TABLE token_spans_local ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS service_tier LowCardinality(String) DEFAULT 'standard' AFTER error_type;

ALTER TABLE token_spans ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS service_tier LowCardinality(String) DEFAULT 'standard' AFTER error_type;
