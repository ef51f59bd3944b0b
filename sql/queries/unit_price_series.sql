-- Question: is our price per token falling while volume and spend rise (the Jevons pattern)?
-- Per tenant and one dimension (the tenant's total, each team, app or model), a day / ISO week /
-- month series of calls, tokens, spend and effective unit price (spend / tokens, USD per 1M
-- tokens, exact Decimal(38, 12) truncated at 12 places: multiply before dividing), with the
-- change of each against the previous period (percent; NULL when that period has no rows).
-- Source: spend_1m FINAL summed over parts; tokens = input + output; spend includes edge cost.
-- Parameters: from (YYYY-MM-DD), to (YYYY-MM-DD, exclusive), grain ('day' | 'week' | 'month'),
--             dimension ('tenant' | 'team' | 'app' | 'model')
SELECT
    tenant, dimension, value, period_start, calls, tokens, cost_usd, usd_per_mtok,
    if(prev_start = expected_prev, round(100 * (tokens / prev_tokens - 1), 2), NULL)                           AS tokens_change_pct,
    if(prev_start = expected_prev, round(100 * (toFloat64(cost_usd) / toFloat64(prev_cost) - 1), 2), NULL)     AS spend_change_pct,
    if(prev_start = expected_prev, round(100 * (toFloat64(usd_per_mtok) / toFloat64(prev_price) - 1), 2), NULL) AS unit_price_change_pct
FROM (
    SELECT *,
        cost_usd * 1000000 / nullIf(tokens, 0)                                          AS usd_per_mtok,
        lagInFrame(toNullable(period_start)) OVER w                                     AS prev_start,
        lagInFrame(toNullable(tokens)) OVER w                                           AS prev_tokens,
        lagInFrame(toNullable(cost_usd)) OVER w                                         AS prev_cost,
        lagInFrame(cost_usd * 1000000 / nullIf(tokens, 0)) OVER w                       AS prev_price,
        multiIf({grain:String} = 'week', period_start - 7,
                {grain:String} = 'month', addMonths(period_start, -1), period_start - 1) AS expected_prev
    FROM (
        SELECT tenant, dv.1 AS dimension, dv.2 AS value,
               multiIf({grain:String} = 'week', toMonday(day),
                       {grain:String} = 'month', toStartOfMonth(day), day)               AS period_start,
               sum(d_calls) AS calls, sum(d_tokens) AS tokens, sum(d_cost) AS cost_usd
        FROM (
            SELECT tenant, team, service, model, toDate(window_start) AS day,
                   sum(calls) AS d_calls, sum(input_tokens + output_tokens) AS d_tokens, sum(cost_usd) AS d_cost
            FROM spend_1m FINAL
            WHERE window_start >= toDateTime(toDate({from:String}), 'UTC')
              AND window_start <  toDateTime(toDate({to:String}), 'UTC')
            GROUP BY tenant, team, service, model, day
        )
        ARRAY JOIN [('tenant', ''), ('team', toString(team)), ('app', toString(service)), ('model', toString(model))] AS dv
        WHERE dimension = {dimension:String}
        GROUP BY tenant, dimension, value, period_start
    )
    WINDOW w AS (PARTITION BY tenant, dimension, value ORDER BY period_start ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
)
ORDER BY tenant, dimension, value, period_start
