-- GENERATED from sql/migrations/0007_create_focus_spend_view.up.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
-- FinOps FOCUS-aligned view of LLM spend (column names from the FOCUS 1.x specification
-- where they apply), so FOCUS-aware FinOps tools can read tokenpulse spend directly.
-- One row per minute x tenant x team x app x provider x model x runtime (parts summed).
--   BilledCost     what a provider invoices: the API fee (edge runtimes invoice nothing)
--   EffectiveCost  the amortized cost: API fee + edge hardware and energy
--   ConsumedQuantity / ConsumedUnit   tokens;  PricingQuantity / PricingUnit   millions of tokens
CREATE VIEW IF NOT EXISTS focus_spend ON CLUSTER '{cluster}' AS
SELECT
    window_start                                         AS ChargePeriodStart,
    window_start + INTERVAL 1 MINUTE                     AS ChargePeriodEnd,
    toStartOfMonth(window_start)                         AS BillingPeriodStart,
    toStartOfMonth(window_start) + INTERVAL 1 MONTH      AS BillingPeriodEnd,
    'Usage'                                              AS ChargeCategory,
    concat(model, ' tokens via ', provider)              AS ChargeDescription,
    sum(cost_usd) - sum(edge_cost_usd)                   AS BilledCost,
    sum(cost_usd) - sum(edge_cost_usd)                   AS ListCost,
    sum(cost_usd)                                        AS EffectiveCost,
    'USD'                                                AS BillingCurrency,
    toDecimal128(sum(input_tokens + output_tokens), 0)   AS ConsumedQuantity,
    'Tokens'                                             AS ConsumedUnit,
    toDecimal128(sum(input_tokens + output_tokens), 0) / 1000000 AS PricingQuantity,
    '1M Tokens'                                          AS PricingUnit,
    provider                                             AS ProviderName,
    provider                                             AS PublisherName,
    if(runtime_kind = 'edge', tenant, provider)          AS InvoiceIssuerName,
    model                                                AS ServiceName,
    'AI and Machine Learning'                            AS ServiceCategory,
    tenant                                               AS SubAccountId,
    tenant                                               AS SubAccountName,
    concat(service, '/', runtime_id)                     AS ResourceId,
    service                                              AS ResourceName,
    map('team', team, 'app', service, 'runtime_kind', toString(runtime_kind), 'runtime_id', runtime_id) AS Tags
FROM spend_1m FINAL
GROUP BY window_start, tenant, team, service, provider, model, runtime_kind, runtime_id;
