"""Recompute stored costs for a past period after the price table or edge profiles change.

    1. re-insert the period's spans with costs from the current catalog (same generated
       expressions the stream job uses, evaluated by ClickHouse); ReplacingMergeTree keeps the
       newer row, so each span still counts once;
    2. rebuild that period's 1-minute rollups from the raw rows (sql/queries/rebuild_spend_1m.sql).
On a ClickHouse cluster (TOKENPULSE_CLICKHOUSE_CLUSTER) the rollup DELETE goes to every shard's
`spend_1m_local` ON CLUSTER (a Distributed table takes no DELETE) and the INSERTs wait for the
shards (insert_distributed_sync), so step 2 reads what step 1 wrote.
Afterwards raw spans and rollups reconcile again (sql/queries/reconcile_raw_vs_rollups.sql).
Restart the Flink job with the same catalog first, so new spans are priced the same way.
"""

from __future__ import annotations

from datetime import datetime

from tokenpulse.core.pricing_sql import (
    clickhouse_null,
    cloud_equivalent_cost_case,
    cost_columns,
    edge_rate_case,
    priced_columns,
)
from tokenpulse.schemas.edge_profiles import EdgeProfiles
from tokenpulse.schemas.pricing import PriceTable
from tokenpulse.sql import QUERIES_DIR
from tokenpulse.sql.cluster_ddl import replicated_tables, rewrite_statement

from .migrations import split_statements
from .rows import TOKEN_SPAN_COLUMNS

_RECOMPUTED = ("priced", "cost_usd", "edge_cost_usd", "cloud_equivalent_cost_usd", "catalog_model")
# Written by the INSERT itself (DEFAULT now64): the repriced copy outranks every stored version.
_INSERTED = [c for c in TOKEN_SPAN_COLUMNS if c != "ingested_at"]


def distinct_models_sql() -> str:
    """The (provider, model) pairs of one tenant's spans in [from, to): what reprice_spans_sql prices."""
    return ("SELECT DISTINCT provider, model FROM token_spans WHERE tenant = {tenant:String} "
            "AND end_time >= {from:DateTime} AND end_time < {to:DateTime}")


def reprice_spans_sql(prices: PriceTable, edge: EdgeProfiles, models: list[tuple[str, str]] | None = None) -> str:
    """INSERT ... SELECT re-pricing one tenant's spans in [from, to). Params: tenant, from, to.

    `models`: the period's (provider, model) pairs (distinct_models_sql): the catalog is then
    narrowed to what prices them (PriceTable.resolved_for), so the generated CASE stays small
    whatever the catalog's size. Without them the table is used as it is (a small local table)."""
    catalog_models, full = None, prices
    if models is not None:
        prices, catalog_models = prices.resolved_for(models)
    kept = [c for c in _INSERTED if c not in _RECOMPUTED]
    return f"""
INSERT INTO token_spans ({", ".join(_INSERTED)})
SELECT {", ".join(_INSERTED)} FROM (
  SELECT {", ".join(kept)},
    catalog_model,
    {cost_columns()}
  FROM (
    SELECT *,
      {priced_columns(prices, null=clickhouse_null, catalog_models=catalog_models)},
      {edge_rate_case(edge, null=clickhouse_null)} AS p_edge,
      {cloud_equivalent_cost_case(edge, full, null=clickhouse_null)} AS cloud_equivalent_cost
    FROM (
      SELECT * EXCEPT ({", ".join(_RECOMPUTED)}, ingested_at),
        toUnixTimestamp64Milli(end_time) AS end_ms, toUnixTimestamp64Milli(start_time) AS start_ms
      FROM token_spans FINAL
      WHERE tenant = {{tenant:String}} AND end_time >= {{from:DateTime}} AND end_time < {{to:DateTime}}
    )
  )
)
SETTINGS cast_keep_nullable = 1"""  # Flink's CAST keeps NULL; make ClickHouse's do the same


def rebuild_rollups_statements(cluster: str | None = None) -> list[str]:
    """The statements of sql/queries/rebuild_spend_1m.sql, for one node or for `cluster`."""
    statements = split_statements((QUERIES_DIR / "rebuild_spend_1m.sql").read_text())
    if not cluster:
        return statements
    tables = replicated_tables()
    return [with_sync_insert(s) for stmt in statements for s in rewrite_statement(stmt, tables, cluster)]


def with_sync_insert(statement: str) -> str:
    """An INSERT through a Distributed table returns once its shards have the rows."""
    if not statement.lstrip().upper().startswith("INSERT"):
        return statement
    if "\nSETTINGS " in statement:
        return statement + ", insert_distributed_sync = 1"
    return statement + "\nSETTINGS insert_distributed_sync = 1"


def period_params(tenant: str, start: datetime, end: datetime) -> dict:
    fmt = "%Y-%m-%d %H:%M:%S"
    return {"tenant": tenant, "from": start.strftime(fmt), "to": end.strftime(fmt)}
