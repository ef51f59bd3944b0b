-- Question: how far through each budget are we, how fast is it burning, and where will it end?
-- One row per budget: its newest evaluation with `as_of` in [from, to] (the insights runner
-- evaluates every minute): amount, spend so far (exact Decimal), consumed percent, burn rate
-- per window (1 = on pace to spend exactly the amount by the period's end), the period-end
-- forecast P10 / P50 / P90 and the rules with an open incident. Unlike budget_burn and
-- budget_forecast (the newest evaluation overall) this reads the state as of a report's period.
-- Source: budget_status FINAL. Used by `tokenpulse report`.
-- Parameters: from (DateTime), to (DateTime), tenant (String, '' = all tenants)
SELECT
    tenant, budget_id, scope, toString(period) AS period, period_start, period_end,
    amount_usd, spend_usd,
    round(consumed_fraction * 100, 2)  AS consumed_pct,
    round(burn_fast_long, 2)           AS burn_1h,
    round(burn_fast_short, 2)          AS burn_5m,
    round(burn_slow_long, 2)           AS burn_6h,
    round(burn_slow_short, 2)          AS burn_30m,
    fast_factor, slow_factor, exhausts_at,
    forecast_low_pct, forecast_p_low_usd, forecast_p50_usd, forecast_high_pct, forecast_p_high_usd,
    forecast_buckets, open_rules, as_of
FROM budget_status FINAL
WHERE as_of >= {from:DateTime} AND as_of <= {to:DateTime}
  AND ({tenant:String} = '' OR tenant = {tenant:String})
ORDER BY tenant, budget_id, as_of DESC
LIMIT 1 BY tenant, budget_id
