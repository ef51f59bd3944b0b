-- Question: what did each team spend per day, counted call by call from the raw spans?
-- Source: token_spans FINAL (each call once, the newest delivery wins); spend includes edge
-- cost (cost_usd); unpriced calls are counted and cost 0. Daily totals for dashboards should
-- read spend_1m (rollups); this query is the exact, raw-data answer (bench/clickhouse_100m.py).
-- Parameters: from (YYYY-MM-DD), to (YYYY-MM-DD, exclusive)
SELECT
    toDate(end_time)                   AS day,
    tenant,
    team,
    count()                            AS calls,
    countIf(NOT priced)                AS unpriced_calls,
    sum(input_tokens)                  AS input_tokens,
    sum(output_tokens)                 AS output_tokens,
    sum(cost_usd)                      AS cost_usd
FROM token_spans FINAL
WHERE end_time >= toDateTime64(toDate({from:String}), 3, 'UTC')
  AND end_time <  toDateTime64(toDate({to:String}), 3, 'UTC')
GROUP BY day, tenant, team
ORDER BY day, tenant, cost_usd DESC, team
