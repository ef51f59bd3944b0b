-- GENERATED from sql/migrations/0014_add_media_usage_cache_hit_and_api_key.up.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
-- Audio and image usage (issue #5): audio tokens are subsets of input / output tokens billed
-- at the model's audio rates (cost_usd already includes them, never twice); images and
-- seconds of input audio are units priced per image / per second. 0 for calls without them.
-- Semantic-cache hits (issue #7): the app answered from its own cache, cost_usd = 0 and the
-- span's usage is what the call would have used; spend_1m's usage sums leave hits out
-- (billed usage only) and count them in semantic_cache_hits.
-- API key id (issue #7, budgets per key): the non-secret id of the key that sent the span
-- (a configured key name or "sha256:<digest prefix>", '' for keyless inputs). In spend_1m it is
-- a rollup dimension, so it joins the sorting key (a replacing table's identity): rows of two
-- keys in one minute must not replace each other. Added last, as ClickHouse requires.
ALTER TABLE token_spans_local ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS input_audio_tokens UInt64 DEFAULT 0 AFTER reasoning_tokens,
    ADD COLUMN IF NOT EXISTS output_audio_tokens UInt64 DEFAULT 0 AFTER input_audio_tokens,
    ADD COLUMN IF NOT EXISTS input_images UInt64 DEFAULT 0 AFTER output_audio_tokens,
    ADD COLUMN IF NOT EXISTS output_images UInt64 DEFAULT 0 AFTER input_images,
    ADD COLUMN IF NOT EXISTS input_audio_seconds UInt64 DEFAULT 0 AFTER output_images,
    ADD COLUMN IF NOT EXISTS semantic_cache_hit Bool DEFAULT false AFTER is_late,
    ADD COLUMN IF NOT EXISTS api_key_id LowCardinality(String) DEFAULT '' AFTER tenant;

ALTER TABLE token_spans ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS input_audio_tokens UInt64 DEFAULT 0 AFTER reasoning_tokens,
    ADD COLUMN IF NOT EXISTS output_audio_tokens UInt64 DEFAULT 0 AFTER input_audio_tokens,
    ADD COLUMN IF NOT EXISTS input_images UInt64 DEFAULT 0 AFTER output_audio_tokens,
    ADD COLUMN IF NOT EXISTS output_images UInt64 DEFAULT 0 AFTER input_images,
    ADD COLUMN IF NOT EXISTS input_audio_seconds UInt64 DEFAULT 0 AFTER output_images,
    ADD COLUMN IF NOT EXISTS semantic_cache_hit Bool DEFAULT false AFTER is_late,
    ADD COLUMN IF NOT EXISTS api_key_id LowCardinality(String) DEFAULT '' AFTER tenant;

ALTER TABLE spend_1m_local ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS input_audio_tokens UInt64 DEFAULT 0 AFTER reasoning_tokens,
    ADD COLUMN IF NOT EXISTS output_audio_tokens UInt64 DEFAULT 0 AFTER input_audio_tokens,
    ADD COLUMN IF NOT EXISTS input_images UInt64 DEFAULT 0 AFTER output_audio_tokens,
    ADD COLUMN IF NOT EXISTS output_images UInt64 DEFAULT 0 AFTER input_images,
    ADD COLUMN IF NOT EXISTS input_audio_seconds UInt64 DEFAULT 0 AFTER output_images,
    ADD COLUMN IF NOT EXISTS semantic_cache_hits UInt64 DEFAULT 0 AFTER unpriced_calls;

ALTER TABLE spend_1m ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS input_audio_tokens UInt64 DEFAULT 0 AFTER reasoning_tokens,
    ADD COLUMN IF NOT EXISTS output_audio_tokens UInt64 DEFAULT 0 AFTER input_audio_tokens,
    ADD COLUMN IF NOT EXISTS input_images UInt64 DEFAULT 0 AFTER output_audio_tokens,
    ADD COLUMN IF NOT EXISTS output_images UInt64 DEFAULT 0 AFTER input_images,
    ADD COLUMN IF NOT EXISTS input_audio_seconds UInt64 DEFAULT 0 AFTER output_images,
    ADD COLUMN IF NOT EXISTS semantic_cache_hits UInt64 DEFAULT 0 AFTER unpriced_calls;

-- a sorting-key column must be added without a DEFAULT expression: existing rows read ''
ALTER TABLE spend_1m_local ON CLUSTER '{cluster}'
    ADD COLUMN api_key_id LowCardinality(String) AFTER runtime_id,
    MODIFY ORDER BY (tenant, window_start, team, service, provider, model, runtime_kind, runtime_id, part, api_key_id);

ALTER TABLE spend_1m ON CLUSTER '{cluster}'
    ADD COLUMN api_key_id LowCardinality(String) AFTER runtime_id;
