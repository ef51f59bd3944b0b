-- GENERATED from sql/migrations/0005_add_edge_cost_to_token_spans.down.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
ALTER TABLE token_spans ON CLUSTER '{cluster}'
    DROP COLUMN IF EXISTS cloud_equivalent_cost_usd,
    DROP COLUMN IF EXISTS edge_cost_usd;

ALTER TABLE token_spans_local ON CLUSTER '{cluster}'
    DROP COLUMN IF EXISTS cloud_equivalent_cost_usd,
    DROP COLUMN IF EXISTS edge_cost_usd;
