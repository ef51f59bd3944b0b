-- GENERATED from sql/migrations/0009_add_call_fingerprint_to_token_spans.down.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
ALTER TABLE token_spans ON CLUSTER '{cluster}'
    DROP COLUMN IF EXISTS call_fingerprint;

ALTER TABLE token_spans_local ON CLUSTER '{cluster}'
    DROP COLUMN IF EXISTS call_fingerprint;
