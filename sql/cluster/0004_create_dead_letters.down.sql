-- GENERATED from sql/migrations/0004_create_dead_letters.down.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
DROP TABLE IF EXISTS dead_letters ON CLUSTER '{cluster}' SYNC;

DROP TABLE IF EXISTS dead_letters_local ON CLUSTER '{cluster}' SYNC;
