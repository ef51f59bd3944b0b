-- Question: what does a million tokens cost us on cloud APIs vs on our own edge hardware,
-- and what would the edge work have cost in the cloud?
-- Per runtime kind, runtime, provider and model over [from, to): calls, tokens, spend, USD per
-- 1M tokens (exact Decimal, multiplied before dividing), and for edge work the hardware +
-- energy cost and the runtime profile's cloud-equivalent cost, each per 1M tokens. Rows whose
-- calls were all unpriced (model missing from the catalog) have no meaningful unit cost:
-- `unpriced_calls` says so. Source: spend_1m FINAL summed over parts. Used by `tokenpulse report`.
-- Parameters: from (DateTime), to (DateTime, exclusive), tenant (String, '' = all tenants)
SELECT
    toString(runtime_kind)                                              AS runtime_kind,
    runtime_id,
    provider,
    model,
    sum(calls)                                                          AS calls,
    sum(unpriced_calls)                                                 AS unpriced_calls,
    sum(input_tokens + output_tokens)                                   AS tokens,
    sum(cost_usd)                                                       AS cost_usd,
    cost_usd * 1000000 / nullIf(tokens, 0)                              AS usd_per_mtok,
    sum(edge_cost_usd)                                                  AS edge_cost_usd,
    sum(cloud_equivalent_cost_usd)                                      AS cloud_equivalent_usd,
    if(runtime_kind = 'edge' AND cloud_equivalent_usd > 0,
       cloud_equivalent_usd * 1000000 / nullIf(tokens, 0), NULL)        AS cloud_equivalent_usd_per_mtok
FROM spend_1m FINAL
WHERE window_start >= {from:DateTime} AND window_start < {to:DateTime}
  AND ({tenant:String} = '' OR tenant = {tenant:String})
GROUP BY runtime_kind, runtime_id, provider, model
ORDER BY runtime_kind, usd_per_mtok DESC, provider, model
