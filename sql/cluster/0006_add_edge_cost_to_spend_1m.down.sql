-- GENERATED from sql/migrations/0006_add_edge_cost_to_spend_1m.down.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
ALTER TABLE spend_1m ON CLUSTER '{cluster}'
    DROP COLUMN IF EXISTS cloud_equivalent_cost_usd,
    DROP COLUMN IF EXISTS edge_cost_usd;

ALTER TABLE spend_1m_local ON CLUSTER '{cluster}'
    DROP COLUMN IF EXISTS cloud_equivalent_cost_usd,
    DROP COLUMN IF EXISTS edge_cost_usd;
