DROP VIEW IF EXISTS token_spans_json_mv;
DROP TABLE IF EXISTS token_spans_json
