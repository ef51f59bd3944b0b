-- Question: for work we run on our own hardware, is that cheaper than the cloud would be?
-- Per app and model over the last N hours: cost per million tokens at the edge (hardware +
-- energy by busy time, see schemas/edge_profiles.py) vs the same tokens priced at the
-- runtime profile's cloud-equivalent model, and a recommendation with the numbers behind it.
-- Parameters: hours (UInt32)
SELECT
    tenant,
    service,
    model,
    runtime_id,
    sum(calls)                                                        AS calls,
    sum(input_tokens + output_tokens)                                 AS tokens,
    sum(edge_cost_usd)                                                AS total_edge_cost_usd,
    sum(cloud_equivalent_cost_usd)                                    AS total_cloud_equivalent_usd,
    round(sum(edge_cost_usd) * 1e6 / nullIf(sum(input_tokens + output_tokens), 0), 6)             AS edge_usd_per_mtok,
    round(sum(cloud_equivalent_cost_usd) * 1e6 / nullIf(sum(input_tokens + output_tokens), 0), 6) AS cloud_usd_per_mtok,
    multiIf(sum(cloud_equivalent_cost_usd) = 0, 'no cloud equivalent configured',
            sum(edge_cost_usd) <= sum(cloud_equivalent_cost_usd), 'keep local',
            'burst to cloud')                                         AS recommendation
FROM spend_1m FINAL
WHERE runtime_kind = 'edge' AND window_start >= now() - toIntervalHour({hours:UInt32})
GROUP BY tenant, service, model, runtime_id
ORDER BY total_edge_cost_usd DESC
