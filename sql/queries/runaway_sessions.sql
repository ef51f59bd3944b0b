-- Question: which agent sessions tripped loop detectors, what did they cost, and how much
-- was spent after the first alert (what the circuit breaker saved is the rest)?
-- Parameters: hours (UInt32), limit (UInt32)
WITH incidents AS (
    SELECT tenant, session_id,
           groupUniqArray(rule)     AS rules,
           max(severity)            AS worst_severity,
           max(action = 'stop')     AS breaker_tripped,
           countIf(state = 'open')  AS still_open,
           min(opened_at)           AS first_alert_at
    FROM alerts FINAL
    WHERE kind = 'runaway_loop' AND opened_at >= now() - toIntervalHour({hours:UInt32})
    GROUP BY tenant, session_id
)
SELECT i.tenant, i.session_id, i.rules, i.worst_severity, i.breaker_tripped, i.still_open, i.first_alert_at,
       count(t.span_id)                               AS calls,
       sum(t.input_tokens + t.output_tokens)          AS tokens,
       sum(t.cost_usd)                                AS cost_usd,
       sumIf(t.cost_usd, t.end_time > i.first_alert_at) AS cost_after_first_alert_usd
FROM incidents AS i
LEFT JOIN (SELECT * FROM token_spans FINAL WHERE end_time >= now() - toIntervalHour({hours:UInt32} + 24)) AS t
    ON t.tenant = i.tenant AND t.session_id = i.session_id
GROUP BY i.tenant, i.session_id, i.rules, i.worst_severity, i.breaker_tripped, i.still_open, i.first_alert_at
ORDER BY cost_usd DESC
LIMIT {limit:UInt32}
