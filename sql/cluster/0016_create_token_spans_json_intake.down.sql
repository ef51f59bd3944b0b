-- GENERATED from sql/migrations/0016_create_token_spans_json_intake.down.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
DROP VIEW IF EXISTS token_spans_json_mv ON CLUSTER '{cluster}' SYNC;

DROP TABLE IF EXISTS token_spans_json ON CLUSTER '{cluster}' SYNC;
