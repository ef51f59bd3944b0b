-- Question: where will each budget end its period, and how sure are we?
-- One row per budget: its newest evaluation's period-end spend forecast, P50 with a band
-- (default P10-P90) whose width reflects how much the daily spend (hourly for a daily
-- budget) has varied so far this period; `basis` is how many complete days / hours it
-- rests on (no band before 3). `verdict`: over = even the low end is above the amount,
-- at risk = the high end is, on track = neither. Most over budget (by P50) first.
-- Budgets not evaluated within a day of the newest evaluation (removed ones) are left out.
-- Source: budget_status (insights/forecast.py). Parameters: tenant (String, '' = all tenants)
SELECT
    tenant,
    budget_id,
    scope,
    period,
    period_start,
    amount_usd,
    spend_usd,
    forecast_low_pct                                             AS low_pct,
    forecast_p_low_usd                                           AS p_low_usd,
    forecast_p50_usd                                             AS p50_usd,
    forecast_high_pct                                            AS high_pct,
    forecast_p_high_usd                                          AS p_high_usd,
    round(toFloat64(forecast_p50_usd / amount_usd) * 100, 1)     AS p50_pct_of_amount,
    forecast_buckets                                             AS basis,
    multiIf(forecast_p_low_usd > amount_usd, 'over',
            forecast_p_high_usd > amount_usd, 'at risk',
            forecast_p_high_usd IS NULL AND forecast_p50_usd > amount_usd, 'over (pace only)',
            forecast_p_high_usd IS NULL, 'too early',
            'on track')                                          AS verdict,
    as_of
FROM
(
    SELECT *
    FROM budget_status FINAL
    WHERE ({tenant:String} = '' OR tenant = {tenant:String})
      AND as_of >= (SELECT max(as_of) FROM budget_status
                    WHERE {tenant:String} = '' OR tenant = {tenant:String}) - toIntervalDay(1)
    ORDER BY tenant, budget_id, period_start DESC
    LIMIT 1 BY tenant, budget_id
)
ORDER BY forecast_p50_usd / amount_usd DESC, tenant, budget_id
