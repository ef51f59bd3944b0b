-- Question: which calls succeeded but carried no token counts, so their spend is unknown?
-- A streamed call from an older instrumentation (OpenLLMetry < 0.47 on OpenAI streams, its
-- Anthropic streams that report 0/0) has no usage on its span: it is stored as a call with
-- 0 tokens, cost 0 and usage_missing = true, never dropped. Per sender (which instrumentation
-- and version read it, schemas/senders.yaml), provider and catalog model over the last N hours:
-- upgrade that sender, or turn on its usage option for streams (e.g. OpenAI's
-- stream_options.include_usage). Parameters: hours (UInt32)
SELECT
    tenant,
    sender,
    provider,
    catalog_model,
    count()              AS calls,
    uniqExact(service)   AS apps,
    min(end_time)        AS first_seen,
    max(end_time)        AS last_seen
FROM token_spans FINAL
WHERE usage_missing AND end_time >= now() - toIntervalHour({hours:UInt32})
GROUP BY tenant, sender, provider, catalog_model
ORDER BY calls DESC, tenant, sender, provider, catalog_model
