-- GENERATED from sql/migrations/0012_create_budget_status.up.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
-- Budget evaluations (insights/budgets.py, schemas/budgets.yaml): the newest evaluation of
-- each budget in each period. The insights runner inserts one row per budget every interval
-- (default 60 s); rows of one (tenant, budget_id, period_start) replace each other and the
-- newest `evaluated_at` wins, so read with FINAL. Incidents themselves live in `alerts`
-- (kind = 'budget'). Money is exact Decimal(38, 12) USD; burn rates are rate multiples
-- (1 = on pace to spend exactly the amount by the period's end), not money.
CREATE TABLE IF NOT EXISTS budget_status_local ON CLUSTER '{cluster}'
(
    tenant              LowCardinality(String),
    budget_id           String,
    period              Enum8('daily' = 1, 'monthly' = 2),
    period_start        DateTime('UTC'),
    period_end          DateTime('UTC'),
    scope               String,                  -- e.g. 'acme/team=research'
    parents             Array(String),           -- same-period budgets containing this one, nearest first
    amount_usd          Decimal(38, 12),
    spend_usd           Decimal(38, 12),         -- spend in [period_start, as_of), all parts summed
    consumed_fraction   Float64,                 -- spend_usd / amount_usd
    burn_fast_long      Float64,                 -- burn rate over the fast pair's long window (1 h)
    burn_fast_short     Float64,                 -- ... short window (5 min)
    burn_slow_long      Float64,                 -- slow pair's long window (6 h)
    burn_slow_short     Float64,                 -- ... short window (30 min)
    fast_factor         Float64,                 -- the factors in force (a pair pages above them)
    slow_factor         Float64,
    exhausts_at         Nullable(DateTime('UTC')), -- at the fast pair's long-window rate; NULL: not burning
    forecast_p_low_usd  Nullable(Decimal(38, 12)), -- period-end spend, low percentile (default P10)
    forecast_p50_usd    Nullable(Decimal(38, 12)),
    forecast_p_high_usd Nullable(Decimal(38, 12)), -- high percentile (default P90)
    forecast_low_pct    UInt8,
    forecast_high_pct   UInt8,
    forecast_buckets    UInt32,                  -- complete days (monthly) / hours (daily) observed
    open_rules          Array(String),           -- rules with an open incident after this evaluation
    as_of               DateTime('UTC'),         -- data end: minutes before it are counted
    evaluated_at        DateTime64(3, 'UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', evaluated_at)
PARTITION BY toYYYYMM(period_start)
ORDER BY (tenant, budget_id, period_start);

-- What clients read and write: rows go to the shard of cityHash64(tenant); every copy of a row
-- (same sort key) lands on one shard, so FINAL / ReplacingMergeTree dedup stays exact.
CREATE TABLE IF NOT EXISTS budget_status ON CLUSTER '{cluster}'
(
    tenant              LowCardinality(String),
    budget_id           String,
    period              Enum8('daily' = 1, 'monthly' = 2),
    period_start        DateTime('UTC'),
    period_end          DateTime('UTC'),
    scope               String,                  -- e.g. 'acme/team=research'
    parents             Array(String),           -- same-period budgets containing this one, nearest first
    amount_usd          Decimal(38, 12),
    spend_usd           Decimal(38, 12),         -- spend in [period_start, as_of), all parts summed
    consumed_fraction   Float64,                 -- spend_usd / amount_usd
    burn_fast_long      Float64,                 -- burn rate over the fast pair's long window (1 h)
    burn_fast_short     Float64,                 -- ... short window (5 min)
    burn_slow_long      Float64,                 -- slow pair's long window (6 h)
    burn_slow_short     Float64,                 -- ... short window (30 min)
    fast_factor         Float64,                 -- the factors in force (a pair pages above them)
    slow_factor         Float64,
    exhausts_at         Nullable(DateTime('UTC')), -- at the fast pair's long-window rate; NULL: not burning
    forecast_p_low_usd  Nullable(Decimal(38, 12)), -- period-end spend, low percentile (default P10)
    forecast_p50_usd    Nullable(Decimal(38, 12)),
    forecast_p_high_usd Nullable(Decimal(38, 12)), -- high percentile (default P90)
    forecast_low_pct    UInt8,
    forecast_high_pct   UInt8,
    forecast_buckets    UInt32,                  -- complete days (monthly) / hours (daily) observed
    open_rules          Array(String),           -- rules with an open incident after this evaluation
    as_of               DateTime('UTC'),         -- data end: minutes before it are counted
    evaluated_at        DateTime64(3, 'UTC')
)
ENGINE = Distributed('{cluster}', currentDatabase(), budget_status_local, cityHash64(tenant));
