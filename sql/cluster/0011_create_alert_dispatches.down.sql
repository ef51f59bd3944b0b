-- GENERATED from sql/migrations/0011_create_alert_dispatches.down.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
DROP TABLE IF EXISTS alert_dispatches ON CLUSTER '{cluster}' SYNC;

DROP TABLE IF EXISTS alert_dispatches_local ON CLUSTER '{cluster}' SYNC;
