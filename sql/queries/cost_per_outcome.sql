-- Question: what does a successful outcome cost us, and what value do we get per dollar?
-- Per tenant, team, app, agent and value unit, for outcomes (schemas/outcomes.py) recorded in
-- [from, to): outcomes, successes, failures, the spend of the work they name (the calls of
-- their session, or of their trace, from token_spans), cost per successful outcome (failed
-- work is paid for too, so it counts in the cost), and value / cost (value units per USD).
-- A session or trace with several outcomes has its spend split evenly among them (truncated
-- at 1e-12 USD). Calls are looked up from one day before `from` to one day after `to`.
-- Parameters: from (YYYY-MM-DD), to (YYYY-MM-DD, exclusive)
WITH
    toDateTime64(toDate({from:String}), 3, 'UTC') AS t_from,
    toDateTime64(toDate({to:String}), 3, 'UTC')   AS t_to,
    o AS (
        SELECT *, if(session_id IS NOT NULL, concat('s:', session_id), concat('t:', assumeNotNull(trace_id))) AS work
        FROM outcomes FINAL
        WHERE occurred_at >= t_from AND occurred_at < t_to
    ),
    shares AS (SELECT tenant, work, count() AS n FROM o GROUP BY tenant, work),
    spend AS (
        SELECT tenant, work, sum(cost_usd) AS cost_usd, sum(input_tokens + output_tokens) AS tokens
        FROM (
            SELECT tenant, concat('s:', assumeNotNull(session_id)) AS work, cost_usd, input_tokens, output_tokens
            FROM token_spans FINAL
            WHERE session_id IS NOT NULL AND end_time >= t_from - INTERVAL 1 DAY AND end_time < t_to + INTERVAL 1 DAY
            UNION ALL
            SELECT tenant, concat('t:', trace_id), cost_usd, input_tokens, output_tokens
            FROM token_spans FINAL
            WHERE end_time >= t_from - INTERVAL 1 DAY AND end_time < t_to + INTERVAL 1 DAY
        )
        WHERE (tenant, work) IN (SELECT tenant, work FROM o)
        GROUP BY tenant, work
    )
SELECT
    o.tenant AS tenant, o.team AS team, o.service AS service, ifNull(o.agent_name, '') AS agent_name,
    o.value_unit AS value_unit,
    count()                                                    AS outcomes,
    countIf(o.status = 'success')                              AS successes,
    countIf(o.status = 'failure')                              AS failures,
    countIf(spend.work = '')                                   AS without_spans,
    sum(intDiv(spend.tokens, shares.n))                        AS tokens,
    sum(spend.cost_usd / shares.n)                             AS cost_usd,
    cost_usd / nullIf(successes, 0)                            AS cost_per_success_usd,
    sumIf(o.value, o.value IS NOT NULL)                        AS value,
    value / nullIf(cost_usd, 0)                                AS value_per_usd
FROM o
JOIN shares ON shares.tenant = o.tenant AND shares.work = o.work
LEFT JOIN spend ON spend.tenant = o.tenant AND spend.work = o.work
GROUP BY tenant, team, service, agent_name, value_unit
ORDER BY tenant, cost_usd DESC, team, service, agent_name, value_unit
SETTINGS join_use_nulls = 0
