-- Question: what does the FOCUS view say per provider and service (model) this month?
-- Reads focus_spend, the FOCUS-aligned view. Parameters: none
SELECT BillingPeriodStart, SubAccountId, ProviderName, ServiceName,
       sum(BilledCost) AS BilledCost, sum(EffectiveCost) AS EffectiveCost,
       sum(ConsumedQuantity) AS ConsumedQuantity, any(ConsumedUnit) AS ConsumedUnit
FROM focus_spend
WHERE BillingPeriodStart = toStartOfMonth(now())
GROUP BY BillingPeriodStart, SubAccountId, ProviderName, ServiceName
ORDER BY EffectiveCost DESC
