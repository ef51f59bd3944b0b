DROP TABLE IF EXISTS tool_calls;
ALTER TABLE spend_1m DROP COLUMN IF EXISTS usage_missing_calls;
ALTER TABLE token_spans
    DROP COLUMN IF EXISTS revision, DROP COLUMN IF EXISTS catalog_model, DROP COLUMN IF EXISTS usage_missing,
    DROP COLUMN IF EXISTS sender, DROP COLUMN IF EXISTS response_id
