-- Question: which budgets are burning faster than they can last, and which alerts are open?
-- One row per budget: its newest evaluation (the insights runner evaluates every minute):
-- spend vs amount, burn rates per window (1 = on pace to spend exactly the amount by the
-- period's end; a pair pages when BOTH its windows exceed its factor), when the budget runs
-- out at the last hour's rate, how many days before the period's end that is, and the rules
-- with an open incident (details in `alerts`, kind = 'budget'). Fastest burners first.
-- Budgets not evaluated within a day of the newest evaluation (removed ones) are left out.
-- Source: budget_status (insights/budgets.py). Parameters: tenant (String, '' = all tenants)
SELECT
    tenant,
    budget_id,
    arrayStringConcat(arrayConcat([budget_id], parents), ' < ')  AS budget_chain,
    scope,
    period,
    period_start,
    amount_usd,
    spend_usd,
    round(consumed_fraction * 100, 1)                             AS consumed_pct,
    round(burn_fast_long, 2)                                      AS burn_1h,
    round(burn_fast_short, 2)                                     AS burn_5m,
    fast_factor,
    round(burn_slow_long, 2)                                      AS burn_6h,
    round(burn_slow_short, 2)                                     AS burn_30m,
    slow_factor,
    exhausts_at,
    if(exhausts_at IS NULL OR exhausts_at >= period_end, NULL,
       round(dateDiff('minute', exhausts_at, period_end) / 1440, 1)) AS days_early,
    open_rules,
    as_of
FROM
(
    SELECT *
    FROM budget_status FINAL
    WHERE ({tenant:String} = '' OR tenant = {tenant:String})
      AND as_of >= (SELECT max(as_of) FROM budget_status
                    WHERE {tenant:String} = '' OR tenant = {tenant:String}) - toIntervalDay(1)
    ORDER BY tenant, budget_id, period_start DESC
    LIMIT 1 BY tenant, budget_id
)
ORDER BY greatest(burn_fast_long / fast_factor, burn_slow_long / slow_factor) DESC, tenant, budget_id
