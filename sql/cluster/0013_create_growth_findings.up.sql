-- GENERATED from sql/migrations/0013_create_growth_findings.up.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
--   expected_saving_usd = Q_prev x (P_prev - P_cur); actual_change_usd = spend_cur - spend_prev
--   growth percentages and elasticity are dimensionless ratios (not money)
CREATE TABLE IF NOT EXISTS growth_findings_local ON CLUSTER '{cluster}'
(
    tenant                  LowCardinality(String),
    kind                    LowCardinality(String),
    rule                    LowCardinality(String),
    dimension               LowCardinality(String),
    value                   String,
    period                  LowCardinality(String),
    period_label            String,
    period_start            Date,
    period_end              Date,
    previous_start          Date,
    tokens_previous         UInt64,
    tokens_current          UInt64,
    cost_previous_usd       Decimal(38, 12),
    cost_current_usd        Decimal(38, 12),
    unpriced_calls          UInt64,
    usd_per_mtok_previous   Nullable(Decimal(38, 12)),
    usd_per_mtok_current    Nullable(Decimal(38, 12)),
    tokens_growth_pct       Nullable(Decimal(38, 6)),
    spend_growth_pct        Nullable(Decimal(38, 6)),
    unit_price_change_pct   Nullable(Decimal(38, 6)),
    annualized_growth_pct   Nullable(Float64),
    elasticity              Nullable(Decimal(38, 6)),
    expected_spend_usd      Nullable(Decimal(38, 12)),
    expected_saving_usd     Nullable(Decimal(38, 12)),
    actual_change_usd       Decimal(38, 12),
    flagged                 Bool,
    severity                Enum8('none' = 0, 'info' = 1, 'warning' = 2, 'critical' = 3),
    expected_reason         Nullable(String),
    dedupe_key              String,
    evaluated_at            DateTime64(3, 'UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', evaluated_at)
PARTITION BY toYYYYMM(period_start)
ORDER BY (tenant, rule, dimension, value, period_start);

-- What clients read and write: rows go to the shard of cityHash64(tenant); every copy of a row
-- (same sort key) lands on one shard, so FINAL / ReplacingMergeTree dedup stays exact.
CREATE TABLE IF NOT EXISTS growth_findings ON CLUSTER '{cluster}'
(
    tenant                  LowCardinality(String),
    kind                    LowCardinality(String),
    rule                    LowCardinality(String),
    dimension               LowCardinality(String),
    value                   String,
    period                  LowCardinality(String),
    period_label            String,
    period_start            Date,
    period_end              Date,
    previous_start          Date,
    tokens_previous         UInt64,
    tokens_current          UInt64,
    cost_previous_usd       Decimal(38, 12),
    cost_current_usd        Decimal(38, 12),
    unpriced_calls          UInt64,
    usd_per_mtok_previous   Nullable(Decimal(38, 12)),
    usd_per_mtok_current    Nullable(Decimal(38, 12)),
    tokens_growth_pct       Nullable(Decimal(38, 6)),
    spend_growth_pct        Nullable(Decimal(38, 6)),
    unit_price_change_pct   Nullable(Decimal(38, 6)),
    annualized_growth_pct   Nullable(Float64),
    elasticity              Nullable(Decimal(38, 6)),
    expected_spend_usd      Nullable(Decimal(38, 12)),
    expected_saving_usd     Nullable(Decimal(38, 12)),
    actual_change_usd       Decimal(38, 12),
    flagged                 Bool,
    severity                Enum8('none' = 0, 'info' = 1, 'warning' = 2, 'critical' = 3),
    expected_reason         Nullable(String),
    dedupe_key              String,
    evaluated_at            DateTime64(3, 'UTC')
)
ENGINE = Distributed('{cluster}', currentDatabase(), growth_findings_local, cityHash64(tenant));

-- Measured savings per day, tenant, team, app, model and lever (insights/jevons.py
-- SavingsEvaluator): the counterfactual cost of the same calls without the lever, priced by
-- the stream job's generated catalog SQL evaluated in ClickHouse, against what was paid.
--   prompt_cache  cached/cache-write tokens: all input at the input price vs as billed
--   routing       request_model != served model: same tokens at the requested model
--   edge          edge calls: the runtime profile's cloud-equivalent cost vs edge cost
CREATE TABLE IF NOT EXISTS savings_daily_local ON CLUSTER '{cluster}'
(
    day                     Date,
    tenant                  LowCardinality(String),
    team                    LowCardinality(String),
    service                 LowCardinality(String),
    model                   LowCardinality(String),
    lever                   LowCardinality(String),
    calls                   UInt64,
    lever_tokens            UInt64,
    actual_cost_usd         Decimal(38, 12),
    counterfactual_cost_usd Decimal(38, 12),
    saving_usd              Decimal(38, 12),
    uncounted_calls         UInt64,
    evaluated_at            DateTime64(3, 'UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', evaluated_at)
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, lever, team, service, model);

-- What clients read and write: rows go to the shard of cityHash64(tenant); every copy of a row
-- (same sort key) lands on one shard, so FINAL / ReplacingMergeTree dedup stays exact.
CREATE TABLE IF NOT EXISTS savings_daily ON CLUSTER '{cluster}'
(
    day                     Date,
    tenant                  LowCardinality(String),
    team                    LowCardinality(String),
    service                 LowCardinality(String),
    model                   LowCardinality(String),
    lever                   LowCardinality(String),
    calls                   UInt64,
    lever_tokens            UInt64,
    actual_cost_usd         Decimal(38, 12),
    counterfactual_cost_usd Decimal(38, 12),
    saving_usd              Decimal(38, 12),
    uncounted_calls         UInt64,
    evaluated_at            DateTime64(3, 'UTC')
)
ENGINE = Distributed('{cluster}', currentDatabase(), savings_daily_local, cityHash64(tenant));

-- Outcome events (schemas/outcomes.py OutcomeEvent v1): an app records what a session or
-- task achieved; sql/queries/cost_per_outcome.sql joins them to the spend of that work.
-- Keyed by the app's outcome_id, so a re-delivered outcome replaces itself.
CREATE TABLE IF NOT EXISTS outcomes_local ON CLUSTER '{cluster}'
(
    tenant      LowCardinality(String),
    outcome_id  String,
    service     LowCardinality(String),
    team        LowCardinality(String),
    agent_name  Nullable(String),
    session_id  Nullable(String),
    trace_id    Nullable(String),
    task        LowCardinality(String) DEFAULT '',
    status      Enum8('success' = 1, 'failure' = 2),
    value       Nullable(Decimal(38, 12)),
    value_unit  LowCardinality(String) DEFAULT '',
    occurred_at DateTime64(3, 'UTC'),
    received_at DateTime64(3, 'UTC'),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant, outcome_id);

-- What clients read and write: rows go to the shard of cityHash64(tenant); every copy of a row
-- (same sort key) lands on one shard, so FINAL / ReplacingMergeTree dedup stays exact.
CREATE TABLE IF NOT EXISTS outcomes ON CLUSTER '{cluster}'
(
    tenant      LowCardinality(String),
    outcome_id  String,
    service     LowCardinality(String),
    team        LowCardinality(String),
    agent_name  Nullable(String),
    session_id  Nullable(String),
    trace_id    Nullable(String),
    task        LowCardinality(String) DEFAULT '',
    status      Enum8('success' = 1, 'failure' = 2),
    value       Nullable(Decimal(38, 12)),
    value_unit  LowCardinality(String) DEFAULT '',
    occurred_at DateTime64(3, 'UTC'),
    received_at DateTime64(3, 'UTC'),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = Distributed('{cluster}', currentDatabase(), outcomes_local, cityHash64(tenant));
