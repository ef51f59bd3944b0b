-- Question: which tools did each agent session call, how often, how long, and how often did
-- they fail? From `execute_tool` spans (tool_calls), which need no prompt content: the same
-- tool failing again and again in one session is a loop signal even with content capture off.
-- Over the last N hours, the sessions with the most failing tool calls first.
-- Parameters: hours (UInt32)
SELECT
    tenant,
    ifNull(session_id, concat('trace:', trace_id)) AS session,
    ifNull(agent_name, '')                          AS agent,
    tool_name,
    count()                                         AS calls,
    countIf(status = 'error')                       AS errors,
    groupUniqArrayIf(error_type, status = 'error')  AS error_types,
    round(avg(duration_ms))                         AS avg_duration_ms,
    min(start_time)                                 AS first_call,
    max(end_time)                                   AS last_call
FROM tool_calls FINAL
WHERE end_time >= now() - toIntervalHour({hours:UInt32})
GROUP BY tenant, session, agent, tool_name
ORDER BY errors DESC, calls DESC, tenant, session, tool_name
LIMIT 200
