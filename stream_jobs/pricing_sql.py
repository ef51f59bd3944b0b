"""Turn the price table into Flink SQL expressions.

The same expressions also run in ClickHouse (pass `null=clickhouse_null`), which is how
`tokenpulse reprice` recomputes stored spans after a price correction.

Pricing runs inside the JVM as generated SQL (a CASE over provider, model and the
effective period, compared against the call's end time), not as a Python UDF: the planner
compiles it to Java code, so the hot path never crosses into Python. A price change is a
new CASE branch with a later `effective_from`, so each call is priced at the price in force
when it was made (event time), including calls replayed or arriving late.
"""

from __future__ import annotations

from decimal import Decimal

from tokenpulse.schemas.edge_profiles import EdgeProfiles
from tokenpulse.schemas.pricing import ModelPrice, PriceTable, price_order

# Measured (bench/README.md): the CASE prices ~200k calls/s with the shipped catalog (21
# entries), ~110k/s at 31, but only ~11k/s at 64 and stalls at 200: the generated method
# outgrows what the JIT compiles. Beyond this size the job refuses to start rather than
# silently crawl; trim the catalog to the models you use (prices-import-litellm --provider).
MAX_STREAM_PRICE_ENTRIES = 40

PRICE_TYPE = "DECIMAL(18, 12)"  # one token's price in USD; exact by the table's validation
COST_TYPE = "DECIMAL(38, 12)"  # stored and summed cost
# One call's cost components stay narrower, so adding API fee and edge cost (DECIMAL(33,12))
# never crosses precision 38, where Flink would cut the scale and round.
CALL_COST_TYPE = "DECIMAL(32, 12)"
# Token counts are bounded by MAX_TOKENS_PER_CALL (9 digits). Keeping operand precision small
# matters: Flink reduces the scale of a sum whose precision would exceed 38, which would
# round the cost. DECIMAL(12,0) * DECIMAL(18,12) = DECIMAL(30,12); four terms stay <= 33.
COUNT_TYPE = "DECIMAL(12, 0)"


def flink_null(sql_type: str) -> str:
    return f"CAST(NULL AS {sql_type})"


def clickhouse_null(sql_type: str) -> str:
    """ClickHouse types are not nullable unless said so."""
    return f"CAST(NULL AS Nullable({sql_type}))"


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _decimal_literal(value: Decimal) -> str:
    return f"CAST({sql_string(format(value, 'f'))} AS {PRICE_TYPE})"


def _period(start_ms: int, end_ms: int | None, time_column: str) -> str:
    cond = f"{time_column} >= {start_ms}"
    return cond + (f" AND {time_column} < {end_ms}" if end_ms is not None else "")


def _condition(p: ModelPrice, time_column: str) -> str:
    names = ", ".join(sql_string(n) for n in p.names)
    period = _period(p.effective_from_ms(), p.effective_to_ms(), time_column)
    return f"provider = {sql_string(p.provider)} AND model IN ({names}) AND {period}" + _tier_conditions(p)


def _tier_conditions(p: ModelPrice) -> str:
    """Context-size tier and service tier: what makes a price entry apply to only some calls."""
    cond = f" AND input_tokens >= {p.min_input_tokens}" if p.min_input_tokens else ""
    if p.service_tier != "standard":
        cond += f" AND service_tier = {sql_string(p.service_tier)}"
    return cond


def price_case(table: PriceTable, per_token: str, time_column: str = "end_ms", null=flink_null) -> str:
    """CASE expression giving one token's price for `per_token` (a ModelPrice property), NULL if unpriced."""
    # Most specific first (service tier, then highest context tier): CASE takes the first match.
    ordered = price_order(table.prices)
    branches = [f"WHEN {_condition(p, time_column)} THEN {_decimal_literal(getattr(p, per_token))}" for p in ordered]
    if not branches:
        return null(PRICE_TYPE)
    return "CASE " + " ".join(branches) + f" ELSE {null(PRICE_TYPE)} END"


class CatalogTooLarge(ValueError):
    pass


def check_stream_catalog_size(table: PriceTable) -> None:
    if len(table.prices) > MAX_STREAM_PRICE_ENTRIES:
        raise CatalogTooLarge(
            f"the price catalog has {len(table.prices)} entries; the stream job prices with generated SQL that "
            f"stays fast up to {MAX_STREAM_PRICE_ENTRIES} (see bench/README.md). Keep only the providers and "
            "models you use, e.g. `tokenpulse prices-import-litellm FILE --provider openai ...`."
        )


def priced_columns(table: PriceTable, null=flink_null) -> str:
    """SELECT-list fragment adding the four per-token prices to a spans relation."""
    return ",\n  ".join(
        f"{price_case(table, prop, null=null)} AS {alias}"
        for prop, alias in (
            ("input_per_token", "p_input"),
            ("cached_input_per_token", "p_cached"),
            ("cache_creation_per_token", "p_cache_creation"),
            ("output_per_token", "p_output"),
        )
    )


def cost_expression() -> str:
    """Cost of one call from the columns priced_columns() adds; mirrors pricing.call_cost_usd."""
    uncached = "input_tokens - cached_input_tokens - cache_creation_input_tokens"
    return (
        f"CAST(CAST({uncached} AS {COUNT_TYPE}) * p_input"
        f" + CAST(cached_input_tokens AS {COUNT_TYPE}) * p_cached"
        f" + CAST(cache_creation_input_tokens AS {COUNT_TYPE}) * p_cache_creation"
        f" + CAST(output_tokens AS {COUNT_TYPE}) * p_output AS {CALL_COST_TYPE})"
    )


# --- edge runtimes -----------------------------------------------------------------------


def edge_rate_case(profiles: EdgeProfiles, time_column: str = "end_ms", null=flink_null) -> str:
    """USD per busy millisecond of the call's edge runtime profile, NULL if none applies."""
    branches = [
        f"WHEN runtime_kind = 'edge' AND runtime_id = {sql_string(p.runtime_id)} AND "
        f"{_period(p.effective_from_ms(), p.effective_to_ms(), time_column)} THEN {_decimal_literal(p.usd_per_busy_ms)}"
        for p in profiles.profiles
    ]
    if not branches:
        return null(PRICE_TYPE)
    return "CASE " + " ".join(branches) + f" ELSE {null(PRICE_TYPE)} END"


def edge_cost_expression() -> str:
    """Busy time times the profile's rate (the column edge_rate_case adds as `p_edge`)."""
    return f"CAST(CAST(end_ms - start_ms AS {COUNT_TYPE}) * p_edge AS {CALL_COST_TYPE})"


def _literal_cost(p: ModelPrice) -> str:
    """cost_expression() with one price's literals in place of the p_* columns."""
    return (
        cost_expression()
        .replace("p_input", _decimal_literal(p.input_per_token))
        .replace("p_cached", _decimal_literal(p.cached_input_per_token))
        .replace("p_cache_creation", _decimal_literal(p.cache_creation_per_token))
        .replace("p_output", _decimal_literal(p.output_per_token))
    )


def cloud_equivalent_cost_case(profiles: EdgeProfiles, table: PriceTable, time_column: str = "end_ms",
                               null=flink_null) -> str:
    """What an edge call would have cost at its profile's cloud-equivalent model (counterfactual)."""
    branches = []
    for profile in profiles.profiles:
        eq = profile.cloud_equivalent
        if eq is None:
            continue
        for price in price_order(table.prices):
            if price.provider == eq.provider and eq.model in price.names:
                branches.append(
                    f"WHEN runtime_kind = 'edge' AND runtime_id = {sql_string(profile.runtime_id)} AND "
                    f"{_period(profile.effective_from_ms(), profile.effective_to_ms(), time_column)} AND "
                    f"{_period(price.effective_from_ms(), price.effective_to_ms(), time_column)} "
                    + _tier_conditions(price) + f" THEN {_literal_cost(price)}"
                )
    if not branches:
        return null(CALL_COST_TYPE)
    return "CASE " + " ".join(branches) + f" ELSE {null(CALL_COST_TYPE)} END"


def cost_columns() -> str:
    """The stored money columns, from the p_* / p_edge / cloud_equivalent_cost columns.

    Shared by the stream job and `tokenpulse reprice`, so both price a span identically.
    """
    zero = f"CAST(0 AS {CALL_COST_TYPE})"
    return (
        "p_input IS NOT NULL AS priced,\n"
        f"  CAST(COALESCE({cost_expression()}, {zero}) + COALESCE({edge_cost_expression()}, {zero}) AS {COST_TYPE})"
        " AS cost_usd,\n"
        f"  CAST(COALESCE({edge_cost_expression()}, {zero}) AS {COST_TYPE}) AS edge_cost_usd,\n"
        f"  CAST(COALESCE(cloud_equivalent_cost, {zero}) AS {COST_TYPE}) AS cloud_equivalent_cost_usd"
    )
