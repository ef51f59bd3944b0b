-- Question: which agents are getting cheaper per token but busier, and by how much?
-- Per tenant, team, app, model and agent (gen_ai.agent.name; '' when the calls named none), a
-- day or ISO-week series of calls, tokens, spend and effective unit price (spend / tokens,
-- USD per 1M tokens, exact Decimal(38, 12) truncated at 12 places: multiply before
-- dividing), with the change of each against the previous period (percent; NULL when that
-- period has no rows). spend_1m has no agent column, so this reads the raw calls
-- (token_spans FINAL, so a re-delivered call counts once); docs/spend_intelligence.md has the
-- measurement behind reading raw rows instead of keeping a per-agent rollup table.
-- Parameters: from (YYYY-MM-DD), to (YYYY-MM-DD, exclusive), grain ('day' | 'week')
SELECT
    tenant, team, service, model, agent_name, period_start, calls, tokens, cost_usd, usd_per_mtok,
    if(prev_start = expected_prev, round(100 * (tokens / prev_tokens - 1), 2), NULL)                           AS tokens_change_pct,
    if(prev_start = expected_prev, round(100 * (toFloat64(cost_usd) / toFloat64(prev_cost) - 1), 2), NULL)     AS spend_change_pct,
    if(prev_start = expected_prev, round(100 * (toFloat64(usd_per_mtok) / toFloat64(prev_price) - 1), 2), NULL) AS unit_price_change_pct
FROM (
    SELECT *,
        cost_usd * 1000000 / nullIf(tokens, 0)                                   AS usd_per_mtok,
        lagInFrame(toNullable(period_start)) OVER w                              AS prev_start,
        lagInFrame(toNullable(tokens)) OVER w                                    AS prev_tokens,
        lagInFrame(toNullable(cost_usd)) OVER w                                  AS prev_cost,
        lagInFrame(cost_usd * 1000000 / nullIf(tokens, 0)) OVER w                AS prev_price,
        if({grain:String} = 'week', period_start - 7, period_start - 1)          AS expected_prev
    FROM (
        SELECT tenant, toString(team) AS team, toString(service) AS service, toString(model) AS model,
               ifNull(agent_name, '')                                                       AS agent_name,
               if({grain:String} = 'week', toMonday(toDate(end_time)), toDate(end_time))   AS period_start,
               count() AS calls, sum(input_tokens + output_tokens) AS tokens, sum(cost_usd) AS cost_usd
        FROM token_spans FINAL
        WHERE end_time >= toDateTime64(toDate({from:String}), 3, 'UTC')
          AND end_time <  toDateTime64(toDate({to:String}), 3, 'UTC')
        GROUP BY tenant, team, service, model, agent_name, period_start
    )
    WINDOW w AS (PARTITION BY tenant, team, service, model, agent_name ORDER BY period_start
                 ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
)
ORDER BY tenant, team, service, model, agent_name, period_start
