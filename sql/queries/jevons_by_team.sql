-- Question: which teams got cheaper tokens but a bigger bill (the Jevons pattern)?
-- Per tenant and team, the period [current_start, current_start + days) against the `days`
-- before it: tokens Q, spend S, unit price P = S / Q (USD per 1M tokens, Decimal truncated at
-- 12 places), the arc elasticity E = (dQ / mean Q) / (dP / mean P) (a ratio, Float64), the spend
-- the price drop was expected to save at the old volume (Q1 P1 - Q1 P2) vs the actual change
-- (Q2 P2 - Q1 P1). `jevons` = price fell by at least min_price_drop, tokens rose, spend rose
-- (equivalently E < -1). The scheduled detector (insights/jevons.py) does this for teams, apps,
-- models and tenants with the thresholds of schemas/growth.yaml and records growth_findings.
-- Source: spend_1m FINAL summed over parts; tokens = input + output; spend includes edge cost.
-- Parameters: current_start (YYYY-MM-DD), days (UInt16, 7 = week over week),
--             min_price_drop (Float64, e.g. 0.1)
SELECT
    tenant, team,
    q1 AS tokens_previous, q2 AS tokens_current, s1 AS cost_previous_usd, s2 AS cost_current_usd,
    s1 * 1000000 / nullIf(q1, 0)                                      AS usd_per_mtok_previous,
    s2 * 1000000 / nullIf(q2, 0)                                      AS usd_per_mtok_current,
    round(100 * (p2 / p1 - 1), 4)                                     AS unit_price_change_pct,
    round(100 * (q2 / q1 - 1), 4)                                     AS tokens_growth_pct,
    round(100 * (toFloat64(s2) / toFloat64(s1) - 1), 4)               AS spend_growth_pct,
    round(((q2 - q1) / ((q1 + q2) / 2)) / ((p2 - p1) / ((p1 + p2) / 2)), 6) AS elasticity,
    s2 * q1 / nullIf(q2, 0)                                           AS expected_spend_usd,
    s1 - s2 * q1 / nullIf(q2, 0)                                      AS expected_saving_usd,
    s2 - s1                                                           AS actual_change_usd,
    p1 > 0 AND p2 <= p1 * (1 - {min_price_drop:Float64}) AND q2 > q1 AND s2 > s1 AS jevons
FROM (
    WITH toDateTime(toDate({current_start:String}), 'UTC') AS cur
    SELECT tenant, team,
           sumIf(input_tokens + output_tokens, window_start < cur) AS q1,
           sumIf(input_tokens + output_tokens, window_start >= cur) AS q2,
           sumIf(cost_usd, window_start < cur)                     AS s1,
           sumIf(cost_usd, window_start >= cur)                    AS s2,
           toFloat64(s1) / nullIf(q1, 0)                           AS p1,
           toFloat64(s2) / nullIf(q2, 0)                           AS p2
    FROM spend_1m FINAL
    WHERE window_start >= cur - toIntervalDay({days:UInt16}) AND window_start < cur + toIntervalDay({days:UInt16})
    GROUP BY tenant, team
)
ORDER BY jevons DESC, actual_change_usd DESC, tenant, team
