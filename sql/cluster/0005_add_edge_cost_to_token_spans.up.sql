-- GENERATED from sql/migrations/0005_add_edge_cost_to_token_spans.up.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
-- Edge cost model: cost_usd now includes edge hardware + energy; these columns break it out.
-- edge_cost_usd: the part of cost_usd charged for busy time on an edge runtime profile.
-- cloud_equivalent_cost_usd: what the call would have cost at the profile's cloud-equivalent
-- model (counterfactual; 0 for cloud calls and for runtimes without an equivalent).
ALTER TABLE token_spans_local ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS edge_cost_usd Decimal(38, 12) DEFAULT 0 AFTER cost_usd,
    ADD COLUMN IF NOT EXISTS cloud_equivalent_cost_usd Decimal(38, 12) DEFAULT 0 AFTER edge_cost_usd;

ALTER TABLE token_spans ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS edge_cost_usd Decimal(38, 12) DEFAULT 0 AFTER cost_usd,
    ADD COLUMN IF NOT EXISTS cloud_equivalent_cost_usd Decimal(38, 12) DEFAULT 0 AFTER edge_cost_usd;
