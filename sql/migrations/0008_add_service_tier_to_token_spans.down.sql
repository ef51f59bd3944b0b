ALTER TABLE token_spans DROP COLUMN IF EXISTS service_tier
