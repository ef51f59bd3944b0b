-- Question: do the rollups account for every raw call, to the last 1e-12 USD?
-- Compares token_spans (one row per unique span) with spend_1m per day and tenant.
-- A non-zero diff means a window was lost or double counted: rebuild that day with
-- rebuild_spend_1m.sql. Parameters: days (UInt32)
SELECT
    day,
    tenant,
    raw_calls,
    rollup_calls,
    raw_cost_usd,
    rollup_cost_usd,
    raw_cost_usd - rollup_cost_usd AS diff_usd
FROM
(
    SELECT toDate(end_time) AS day, tenant, count() AS raw_calls, sum(cost_usd) AS raw_cost_usd
    FROM token_spans FINAL
    WHERE end_time >= today() - {days:UInt32}
    GROUP BY day, tenant
) AS raw
FULL OUTER JOIN
(
    SELECT toDate(window_start) AS day, tenant, sum(calls) AS rollup_calls, sum(cost_usd) AS rollup_cost_usd
    FROM spend_1m FINAL
    WHERE window_start >= today() - {days:UInt32}
    GROUP BY day, tenant
) AS rollup USING (day, tenant)
ORDER BY day, tenant
