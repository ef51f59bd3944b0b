-- Question: did on-call hear about each incident? Delivery outcome per hook, failures first.
-- Parameters: hours (UInt32)
SELECT d.tenant, d.hook, d.hook_kind, d.state, d.outcome, d.attempts, d.http_status, d.error,
       d.finished_at, dateDiff('millisecond', a.opened_at, d.finished_at) AS ms_after_evidence,
       a.rule, a.session_id
FROM alert_dispatches AS d FINAL
LEFT JOIN (SELECT alert_id, any(rule) AS rule, any(session_id) AS session_id, min(opened_at) AS opened_at
           FROM alerts FINAL GROUP BY alert_id) AS a ON a.alert_id = d.alert_id
WHERE d.finished_at >= now() - toIntervalHour({hours:UInt32})
ORDER BY d.outcome DESC, d.finished_at DESC
