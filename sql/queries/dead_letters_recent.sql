-- Question: what did tokenpulse refuse, and why? Grouped by reason.
-- Parameters: hours (UInt32)
SELECT tenant, stage, reason, count() AS spans, max(received_at) AS last_seen, any(excerpt) AS example
FROM dead_letters FINAL
WHERE received_at >= now() - toIntervalHour({hours:UInt32})
GROUP BY tenant, stage, reason
ORDER BY spans DESC
