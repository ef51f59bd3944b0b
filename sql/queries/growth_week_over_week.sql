-- Question: who is surging week over week, and was it planned?
-- Per tenant and series of one dimension (the tenant's total, each team, app or model): tokens
-- and spend of the ISO week starting `week_start` against the week before, growth in percent,
-- unit price per 1M tokens, and the detector's verdict for that week when it ran
-- (growth_findings, rule growth_wow: flagged, severity, the planned-rollout reason that kept
-- it from paging). Thresholds live in schemas/growth.yaml (default: +50% spend or tokens).
-- Source: spend_1m FINAL summed over parts; growth_findings FINAL.
-- Parameters: week_start (YYYY-MM-DD, a Monday), dimension ('tenant' | 'team' | 'app' | 'model')
WITH toDate({week_start:String}) AS cur
SELECT
    s.tenant AS tenant, s.dimension AS dimension, s.value AS value,
    s.tokens_previous AS tokens_previous, s.tokens_current AS tokens_current,
    s.cost_previous_usd AS cost_previous_usd, s.cost_current_usd AS cost_current_usd,
    round(100 * (s.tokens_current / nullIf(s.tokens_previous, 0) - 1), 2)                               AS tokens_growth_pct,
    round(100 * (toFloat64(s.cost_current_usd) / nullIf(toFloat64(s.cost_previous_usd), 0) - 1), 2)     AS spend_growth_pct,
    s.cost_previous_usd * 1000000 / nullIf(s.tokens_previous, 0)                                         AS usd_per_mtok_previous,
    s.cost_current_usd * 1000000 / nullIf(s.tokens_current, 0)                                           AS usd_per_mtok_current,
    f.flagged AS flagged, f.severity AS severity, f.expected_reason AS expected_reason
FROM (
    SELECT tenant, dv.1 AS dimension, dv.2 AS value,
           sumIf(d_tokens, day < cur) AS tokens_previous, sumIf(d_tokens, day >= cur) AS tokens_current,
           sumIf(d_cost, day < cur)   AS cost_previous_usd, sumIf(d_cost, day >= cur) AS cost_current_usd
    FROM (
        SELECT tenant, team, service, model, toDate(window_start) AS day,
               sum(input_tokens + output_tokens) AS d_tokens, sum(cost_usd) AS d_cost
        FROM spend_1m FINAL
        WHERE window_start >= toDateTime(cur - 7, 'UTC') AND window_start < toDateTime(cur + 7, 'UTC')
        GROUP BY tenant, team, service, model, day
    )
    ARRAY JOIN [('tenant', ''), ('team', toString(team)), ('app', toString(service)), ('model', toString(model))] AS dv
    WHERE dimension = {dimension:String}
    GROUP BY tenant, dimension, value
) AS s
LEFT JOIN (
    SELECT tenant, dimension, value, toNullable(flagged) AS flagged, toNullable(toString(severity)) AS severity,
           expected_reason
    FROM growth_findings FINAL
    WHERE rule = 'growth_wow' AND period_start = toDate({week_start:String})
) AS f ON f.tenant = s.tenant AND f.dimension = s.dimension AND f.value = s.value
ORDER BY spend_growth_pct DESC NULLS LAST, tenant, value
SETTINGS join_use_nulls = 1
