-- GENERATED from sql/migrations/0012_create_budget_status.down.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
DROP TABLE IF EXISTS budget_status ON CLUSTER '{cluster}' SYNC;

DROP TABLE IF EXISTS budget_status_local ON CLUSTER '{cluster}' SYNC;
