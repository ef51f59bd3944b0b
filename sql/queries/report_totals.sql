-- Question: what did the period cost in total, and how much of it could not be priced?
-- One row over [from, to) for one tenant ('' = all): calls, tokens, spend (exact Decimal),
-- unpriced, failed and usage-missing calls (succeeded, no token counts on the span), the first and last minute with data, and, beside them, the
-- dead letters received and the loop / budget / growth incidents opened in the period.
-- Source: spend_1m FINAL summed over parts; dead_letters FINAL; alerts FINAL.
-- Used by `tokenpulse report` (the headline figures). Parameters: from (DateTime),
-- to (DateTime, exclusive), tenant (String, '' = all tenants)
SELECT
    sum(calls)                           AS calls,
    sum(input_tokens + output_tokens)    AS tokens,
    sum(cost_usd)                        AS cost_usd,
    sum(unpriced_calls)                  AS unpriced_calls,
    sum(error_calls)                     AS error_calls,
    sum(usage_missing_calls)             AS usage_missing_calls,
    if(count() = 0, NULL, min(window_start)) AS first_minute,
    if(count() = 0, NULL, max(window_start)) AS last_minute,
    (SELECT count() FROM dead_letters FINAL
     WHERE received_at >= {from:DateTime} AND received_at < {to:DateTime}
       AND ({tenant:String} = '' OR tenant = {tenant:String}))                   AS dead_letters,
    (SELECT count() FROM alerts FINAL
     WHERE opened_at >= {from:DateTime} AND opened_at < {to:DateTime}
       AND ({tenant:String} = '' OR tenant = {tenant:String}))                   AS incidents
FROM spend_1m FINAL
WHERE window_start >= {from:DateTime} AND window_start < {to:DateTime}
  AND ({tenant:String} = '' OR tenant = {tenant:String})
