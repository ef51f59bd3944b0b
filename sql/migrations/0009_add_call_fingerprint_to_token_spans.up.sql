-- Hash of the call's normalized request (from the SDK or the collector); loop detection
-- compares it. The request content itself is never stored.
ALTER TABLE token_spans ADD COLUMN IF NOT EXISTS call_fingerprint Nullable(String) AFTER tool_name
