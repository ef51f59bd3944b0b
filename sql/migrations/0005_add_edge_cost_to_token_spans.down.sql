ALTER TABLE token_spans DROP COLUMN IF EXISTS cloud_equivalent_cost_usd, DROP COLUMN IF EXISTS edge_cost_usd
