-- GENERATED from sql/migrations/0003_create_alerts.down.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
DROP TABLE IF EXISTS alerts ON CLUSTER '{cluster}' SYNC;

DROP TABLE IF EXISTS alerts_local ON CLUSTER '{cluster}' SYNC;
