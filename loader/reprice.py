"""Recompute stored costs for a past period after the price table or edge profiles change.

    1. re-insert the period's spans with costs from the current catalog (same generated
       expressions the stream job uses, evaluated by ClickHouse); ReplacingMergeTree keeps the
       newer row, so each span still counts once;
    2. rebuild that period's 1-minute rollups from the raw rows (sql/queries/rebuild_spend_1m.sql).
Afterwards raw spans and rollups reconcile again (sql/queries/reconcile_raw_vs_rollups.sql).
Restart the Flink job with the same catalog first, so new spans are priced the same way.
"""

from __future__ import annotations

from datetime import datetime

from tokenpulse.schemas.edge_profiles import EdgeProfiles
from tokenpulse.schemas.pricing import PriceTable
from tokenpulse.stream_jobs.pricing_sql import (
    clickhouse_null,
    cloud_equivalent_cost_case,
    cost_columns,
    edge_rate_case,
    priced_columns,
)

from .rows import TOKEN_SPAN_COLUMNS

_RECOMPUTED = ("priced", "cost_usd", "edge_cost_usd", "cloud_equivalent_cost_usd")


def reprice_spans_sql(prices: PriceTable, edge: EdgeProfiles) -> str:
    """INSERT ... SELECT re-pricing one tenant's spans in [from, to). Params: tenant, from, to."""
    kept = [c for c in TOKEN_SPAN_COLUMNS if c not in _RECOMPUTED]
    return f"""
INSERT INTO token_spans ({", ".join(TOKEN_SPAN_COLUMNS)})
SELECT {", ".join(TOKEN_SPAN_COLUMNS)} FROM (
  SELECT {", ".join(kept)},
    {cost_columns()}
  FROM (
    SELECT *,
      {priced_columns(prices, null=clickhouse_null)},
      {edge_rate_case(edge, null=clickhouse_null)} AS p_edge,
      {cloud_equivalent_cost_case(edge, prices, null=clickhouse_null)} AS cloud_equivalent_cost
    FROM (
      SELECT * EXCEPT ({", ".join(_RECOMPUTED)}, ingested_at),
        toUnixTimestamp64Milli(end_time) AS end_ms, toUnixTimestamp64Milli(start_time) AS start_ms
      FROM token_spans FINAL
      WHERE tenant = {{tenant:String}} AND end_time >= {{from:DateTime}} AND end_time < {{to:DateTime}}
    )
  )
)
SETTINGS cast_keep_nullable = 1"""  # Flink's CAST keeps NULL; make ClickHouse's do the same


def period_params(tenant: str, start: datetime, end: datetime) -> dict:
    fmt = "%Y-%m-%d %H:%M:%S"
    return {"tenant": tenant, "from": start.strftime(fmt), "to": end.strftime(fmt)}
