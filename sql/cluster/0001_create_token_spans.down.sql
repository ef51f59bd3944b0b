-- GENERATED from sql/migrations/0001_create_token_spans.down.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
DROP TABLE IF EXISTS token_spans ON CLUSTER '{cluster}' SYNC;

DROP TABLE IF EXISTS token_spans_local ON CLUSTER '{cluster}' SYNC;
