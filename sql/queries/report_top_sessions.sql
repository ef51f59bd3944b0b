-- Question: which agent sessions ran away, what did they cost, and how much of that came
-- after the first loop alert (what an earlier stop would have saved)?
-- Sessions with calls in [from, to): sessions a loop detector flagged (alerts kind
-- 'runaway_loop', any time) first, then the costliest others, `limit` in all. For flagged
-- sessions: the rules that fired, worst severity, whether a rule asked to stop the session,
-- the first alert's time and the cost of the calls that ended after it.
-- Source: token_spans FINAL, alerts FINAL. Used by `tokenpulse report`.
-- Parameters: from (DateTime), to (DateTime, exclusive), tenant (String, '' = all tenants),
--             limit (UInt32)
WITH incidents AS (
    SELECT tenant, assumeNotNull(session_id) AS session_id,
           arraySort(groupUniqArray(rule)) AS rules,
           toString(max(severity))         AS worst_severity,
           max(action = 'stop')            AS breaker_tripped,
           min(opened_at)                  AS first_alert_at
    FROM alerts FINAL
    WHERE kind = 'runaway_loop' AND session_id IS NOT NULL
      AND ({tenant:String} = '' OR tenant = {tenant:String})
    GROUP BY tenant, session_id
)
SELECT
    t.tenant                                   AS tenant,
    any(t.service)                             AS service,
    ifNull(any(t.agent_name), '')              AS agent_name,
    assumeNotNull(t.session_id)                AS session_id,
    count()                                    AS calls,
    sum(t.input_tokens + t.output_tokens)      AS tokens,
    sum(t.cost_usd)                            AS cost_usd,
    min(t.start_time)                          AS first_call,
    max(t.end_time)                            AS last_call,
    i.session_id != ''                         AS flagged,
    i.rules                                    AS rules,
    i.worst_severity                           AS worst_severity,
    i.breaker_tripped                          AS breaker_tripped,
    if(flagged, toNullable(i.first_alert_at), NULL)                 AS first_alert_at,
    sumIf(t.cost_usd, flagged AND t.end_time > i.first_alert_at)    AS cost_after_first_alert_usd
FROM (SELECT * FROM token_spans FINAL
      WHERE session_id IS NOT NULL AND end_time >= {from:DateTime} AND end_time < {to:DateTime}
        AND ({tenant:String} = '' OR tenant = {tenant:String})) AS t
LEFT JOIN incidents AS i ON i.tenant = t.tenant AND i.session_id = assumeNotNull(t.session_id)
GROUP BY t.tenant, t.session_id, i.session_id, i.rules, i.worst_severity, i.breaker_tripped, i.first_alert_at
ORDER BY flagged DESC, cost_usd DESC, tenant, session_id
LIMIT {limit:UInt32}
SETTINGS join_use_nulls = 0
