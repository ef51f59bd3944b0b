-- Question: how did spend move over time, and which team and model drove it?
-- Spend, calls and tokens per time bucket (bucket_s seconds, aligned to the epoch), tenant,
-- team and model over [from, to). Source: spend_1m FINAL summed over parts (late calls
-- included); spend includes edge hardware + energy. Used by `tokenpulse report`.
-- Parameters: from (DateTime), to (DateTime, exclusive), bucket_s (UInt32, e.g. 60, 3600,
--             86400), tenant (String, '' = all tenants)
SELECT
    toStartOfInterval(window_start, toIntervalSecond({bucket_s:UInt32})) AS bucket_start,
    tenant,
    team,
    model,
    sum(calls)                         AS calls,
    sum(input_tokens + output_tokens)  AS tokens,
    sum(cost_usd)                      AS cost_usd
FROM spend_1m FINAL
WHERE window_start >= {from:DateTime} AND window_start < {to:DateTime}
  AND ({tenant:String} = '' OR tenant = {tenant:String})
GROUP BY bucket_start, tenant, team, model
ORDER BY bucket_start, tenant, team, model
