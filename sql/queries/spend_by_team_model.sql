-- Question: where did the money go? Spend by tenant, team and model over the last N hours.
-- Source: spend_1m (stream rollups + late spans), summed over parts.
-- Parameters: hours (UInt32)
SELECT
    tenant,
    team,
    model,
    sum(calls)                         AS calls,
    sum(input_tokens)                  AS input_tokens,
    sum(output_tokens)                 AS output_tokens,
    sum(cost_usd)                      AS cost_usd
FROM spend_1m FINAL
WHERE window_start >= now() - toIntervalHour({hours:UInt32})
GROUP BY tenant, team, model
ORDER BY cost_usd DESC, tenant, team, model
