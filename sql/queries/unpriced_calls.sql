-- Question: which calls could not be priced (model missing from the price table)?
-- They are stored with cost 0 and priced = false, never dropped. Add the model to
-- schemas/prices.yaml, then reprice. Parameters: hours (UInt32)
SELECT tenant, provider, model, count() AS calls, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
FROM token_spans FINAL
WHERE NOT priced AND end_time >= now() - toIntervalHour({hours:UInt32})
GROUP BY tenant, provider, model
ORDER BY calls DESC
