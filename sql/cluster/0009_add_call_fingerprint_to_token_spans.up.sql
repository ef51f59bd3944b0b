-- GENERATED from sql/migrations/0009_add_call_fingerprint_to_token_spans.up.sql by `tokenpulse sql-cluster-ddl` (sql/cluster_ddl.py).
-- Do not edit: change the single-node migration (or the generator) and regenerate.
-- Hash of the call's normalized request (from the SDK or the collector); loop detection
-- compares it. The request content itself is never stored.
ALTER TABLE token_spans_local ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS call_fingerprint Nullable(String) AFTER tool_name;

ALTER TABLE token_spans ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS call_fingerprint Nullable(String) AFTER tool_name;
