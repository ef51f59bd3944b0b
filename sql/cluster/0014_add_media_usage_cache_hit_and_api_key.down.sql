-- GENERATED from sql/migrations/0014_add_media_usage_cache_hit_and_api_key.down.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
-- Rows of one minute that differed only by api_key_id replace each other once the key is gone:
-- rebuild the rollups afterwards (queries/rebuild_spend_1m.sql) if per-key rows existed.
ALTER TABLE spend_1m_local ON CLUSTER '{cluster}'
    MODIFY ORDER BY (tenant, window_start, team, service, provider, model, runtime_kind, runtime_id, part);

ALTER TABLE spend_1m ON CLUSTER '{cluster}'
    DROP COLUMN IF EXISTS api_key_id;

ALTER TABLE spend_1m_local ON CLUSTER '{cluster}'
    DROP COLUMN IF EXISTS api_key_id;

ALTER TABLE spend_1m ON CLUSTER '{cluster}'
    DROP COLUMN IF EXISTS semantic_cache_hits,
    DROP COLUMN IF EXISTS input_audio_seconds,
    DROP COLUMN IF EXISTS output_images,
    DROP COLUMN IF EXISTS input_images,
    DROP COLUMN IF EXISTS output_audio_tokens,
    DROP COLUMN IF EXISTS input_audio_tokens;

ALTER TABLE spend_1m_local ON CLUSTER '{cluster}'
    DROP COLUMN IF EXISTS semantic_cache_hits,
    DROP COLUMN IF EXISTS input_audio_seconds,
    DROP COLUMN IF EXISTS output_images,
    DROP COLUMN IF EXISTS input_images,
    DROP COLUMN IF EXISTS output_audio_tokens,
    DROP COLUMN IF EXISTS input_audio_tokens;

ALTER TABLE token_spans ON CLUSTER '{cluster}'
    DROP COLUMN IF EXISTS api_key_id,
    DROP COLUMN IF EXISTS semantic_cache_hit,
    DROP COLUMN IF EXISTS input_audio_seconds,
    DROP COLUMN IF EXISTS output_images,
    DROP COLUMN IF EXISTS input_images,
    DROP COLUMN IF EXISTS output_audio_tokens,
    DROP COLUMN IF EXISTS input_audio_tokens;

ALTER TABLE token_spans_local ON CLUSTER '{cluster}'
    DROP COLUMN IF EXISTS api_key_id,
    DROP COLUMN IF EXISTS semantic_cache_hit,
    DROP COLUMN IF EXISTS input_audio_seconds,
    DROP COLUMN IF EXISTS output_images,
    DROP COLUMN IF EXISTS input_images,
    DROP COLUMN IF EXISTS output_audio_tokens,
    DROP COLUMN IF EXISTS input_audio_tokens;
