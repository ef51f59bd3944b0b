-- Rebuild the 1-minute rollups of one tenant for [from, to) from the raw spans, e.g. after a
-- reconciliation mismatch or a repricing. Replaces every part of those windows by one
-- part '' per group. Parameters: tenant (String), from (DateTime), to (DateTime)
DELETE FROM spend_1m
WHERE tenant = {tenant:String} AND window_start >= {from:DateTime} AND window_start < {to:DateTime};

INSERT INTO spend_1m
    (tenant, team, service, provider, model, runtime_kind, runtime_id, api_key_id, window_start, part,
     calls, error_calls, unpriced_calls, input_tokens, cached_input_tokens,
     cache_creation_input_tokens, output_tokens, reasoning_tokens, cost_usd,
     edge_cost_usd, cloud_equivalent_cost_usd,
     input_audio_tokens, output_audio_tokens, input_images, output_images, input_audio_seconds,
     semantic_cache_hits)
SELECT
    tenant, team, service, provider, model, runtime_kind, runtime_id, api_key_id,
    toStartOfMinute(end_time) AS window_start, '' AS part,
    count(), countIf(status = 'error'), countIf(NOT priced),
    -- usage billed by a provider: a semantic-cache hit's usage is only its counterfactual
    sumIf(input_tokens, NOT semantic_cache_hit), sumIf(cached_input_tokens, NOT semantic_cache_hit),
    sumIf(cache_creation_input_tokens, NOT semantic_cache_hit),
    sumIf(output_tokens, NOT semantic_cache_hit), sumIf(reasoning_tokens, NOT semantic_cache_hit), sum(cost_usd),
    sum(edge_cost_usd), sum(cloud_equivalent_cost_usd),
    sumIf(input_audio_tokens, NOT semantic_cache_hit), sumIf(output_audio_tokens, NOT semantic_cache_hit),
    sumIf(input_images, NOT semantic_cache_hit), sumIf(output_images, NOT semantic_cache_hit),
    sumIf(input_audio_seconds, NOT semantic_cache_hit), countIf(semantic_cache_hit)
FROM token_spans FINAL
WHERE tenant = {tenant:String} AND end_time >= {from:DateTime} AND end_time < {to:DateTime}
GROUP BY tenant, team, service, provider, model, runtime_kind, runtime_id, api_key_id, window_start
