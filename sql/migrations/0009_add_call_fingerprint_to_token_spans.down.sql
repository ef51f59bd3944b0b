ALTER TABLE token_spans DROP COLUMN IF EXISTS call_fingerprint
