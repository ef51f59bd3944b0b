-- Question: what did prompt caching, model routing, edge serving and the app's semantic cache
-- actually save us, measured on our own calls rather than claimed? Per tenant, team, app and lever over [from, to):
-- what was paid, what the same calls would have cost without the lever (counterfactual), the
-- realized saving (negative = the lever cost money, e.g. cache writes never read back, or
-- routing up to a pricier model) and the calls where no counterfactual price exists.
--   prompt_cache  cloud calls with cache reads/writes: every input token at the input price
--   routing       served model != request_model: the same tokens at the requested model
--   edge          edge calls: the runtime profile's cloud-equivalent cost vs hardware + energy
--   semantic_cache  spans flagged tokenpulse.cache.semantic_hit (answered from the app's own
--                 cache, paid 0): the usage they carry priced at their model
-- Source: savings_daily (insights/jevons.py SavingsEvaluator; counterfactuals priced by the
-- stream job's generated catalog SQL at each call's event time; docs/spend_intelligence.md).
-- Parameters: from (YYYY-MM-DD), to (YYYY-MM-DD, exclusive)
SELECT
    tenant, team, service, lever,
    sum(calls)                                                         AS calls,
    sum(lever_tokens)                                                  AS lever_tokens,
    sum(actual_cost_usd)                                               AS paid_usd,
    sum(counterfactual_cost_usd)                                       AS without_lever_usd,
    sum(saving_usd)                                                    AS saving_usd,
    round(100 * toFloat64(saving_usd) / nullIf(toFloat64(without_lever_usd), 0), 2) AS saving_pct,
    sum(uncounted_calls)                                               AS uncounted_calls
FROM savings_daily FINAL
WHERE day >= toDate({from:String}) AND day < toDate({to:String})
GROUP BY tenant, team, service, lever
ORDER BY tenant, saving_usd DESC, team, service, lever
