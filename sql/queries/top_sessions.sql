-- Question: which agent sessions cost the most? (A runaway loop shows up here first.)
-- Parameters: hours (UInt32), limit (UInt32)
SELECT
    tenant,
    service,
    agent_name,
    session_id,
    count()                               AS calls,
    sum(input_tokens + output_tokens)     AS tokens,
    max(input_tokens)                     AS max_input_tokens,
    sum(cost_usd)                         AS cost_usd,
    min(start_time)                       AS first_call,
    max(end_time)                         AS last_call
FROM token_spans FINAL
WHERE session_id IS NOT NULL AND end_time >= now() - toIntervalHour({hours:UInt32})
GROUP BY tenant, service, agent_name, session_id
ORDER BY cost_usd DESC
LIMIT {limit:UInt32}
