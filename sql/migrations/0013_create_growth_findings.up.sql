-- Spend intelligence (insights/jevons.py, insights/growth.py; rules in schemas/growth.yaml).
--
-- growth_findings: one row per evaluated series and complete period, flagged or not, so the
-- trend is queryable and every alert has its numbers. A re-evaluation of the same period
-- replaces the row (newest evaluated_at wins).
--   kind 'jevons' | 'growth'; rule 'jevons' | 'growth_wow' | 'growth_mom' | 'growth_pace' ...
--   dimension 'tenant' | 'team' | 'app' | 'model'; value '' for the tenant's total
--   usd_per_mtok_* = cost / (input + output tokens) x 1e6, Decimal truncated at 12 places
--   expected_spend_usd = Q_prev x P_cur (old volume at the new price);
--   expected_saving_usd = Q_prev x (P_prev - P_cur); actual_change_usd = spend_cur - spend_prev
--   growth percentages and elasticity are dimensionless ratios (not money)
CREATE TABLE IF NOT EXISTS growth_findings
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
ENGINE = ReplacingMergeTree(evaluated_at)
PARTITION BY toYYYYMM(period_start)
ORDER BY (tenant, rule, dimension, value, period_start);

-- Measured savings per day, tenant, team, app, model and lever (insights/jevons.py
-- SavingsEvaluator): the counterfactual cost of the same calls without the lever, priced by
-- the stream job's generated catalog SQL evaluated in ClickHouse, against what was paid.
--   prompt_cache  cached/cache-write tokens: all input at the input price vs as billed
--   routing       request_model != served model: same tokens at the requested model
--   edge          edge calls: the runtime profile's cloud-equivalent cost vs edge cost
CREATE TABLE IF NOT EXISTS savings_daily
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
ENGINE = ReplacingMergeTree(evaluated_at)
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, lever, team, service, model);

-- Outcome events (schemas/outcomes.py OutcomeEvent v1): an app records what a session or
-- task achieved; sql/queries/cost_per_outcome.sql joins them to the spend of that work.
-- Keyed by the app's outcome_id, so a re-delivered outcome replaces itself.
CREATE TABLE IF NOT EXISTS outcomes
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
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant, outcome_id)
