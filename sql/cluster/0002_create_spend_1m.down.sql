-- GENERATED from sql/migrations/0002_create_spend_1m.down.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
DROP TABLE IF EXISTS spend_1m ON CLUSTER '{cluster}' SYNC;

DROP TABLE IF EXISTS spend_1m_local ON CLUSTER '{cluster}' SYNC;
