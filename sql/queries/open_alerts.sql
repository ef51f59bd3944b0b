-- Question: which incidents are open right now, and what did each rule see?
-- Parameters: hours (UInt32) — how far back an incident may have opened
SELECT tenant, rule, severity, action, service, agent_name, session_id,
       opened_at, dateDiff('second', opened_at, now64(3)) AS open_for_s, summary, details AS evidence
FROM alerts FINAL
WHERE state = 'open' AND opened_at >= now() - toIntervalHour({hours:UInt32})
ORDER BY severity DESC, opened_at
