-- GENERATED from sql/migrations/0007_create_focus_spend_view.down.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
DROP VIEW IF EXISTS focus_spend ON CLUSTER '{cluster}' SYNC;
