-- GENERATED from sql/migrations/0013_create_growth_findings.down.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
DROP TABLE IF EXISTS outcomes ON CLUSTER '{cluster}' SYNC;

DROP TABLE IF EXISTS outcomes_local ON CLUSTER '{cluster}' SYNC;

DROP TABLE IF EXISTS savings_daily ON CLUSTER '{cluster}' SYNC;

DROP TABLE IF EXISTS savings_daily_local ON CLUSTER '{cluster}' SYNC;

DROP TABLE IF EXISTS growth_findings ON CLUSTER '{cluster}' SYNC;

DROP TABLE IF EXISTS growth_findings_local ON CLUSTER '{cluster}' SYNC;
