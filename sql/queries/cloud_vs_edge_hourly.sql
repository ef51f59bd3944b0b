-- Question: how much work runs on cloud APIs vs our own edge hardware, hour by hour?
-- Edge rows carry no API fee here; their hardware + energy cost comes from the edge cost model.
-- Parameters: hours (UInt32)
SELECT
    toStartOfHour(window_start)          AS hour,
    tenant,
    runtime_kind,
    sum(calls)                           AS calls,
    sum(input_tokens + output_tokens)    AS tokens,
    sum(cost_usd)                        AS cost_usd
FROM spend_1m FINAL
WHERE window_start >= now() - toIntervalHour({hours:UInt32})
GROUP BY hour, tenant, runtime_kind
ORDER BY hour, tenant, runtime_kind
