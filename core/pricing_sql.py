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

import re
from collections.abc import Callable
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
# round the cost. DECIMAL(12,0) * DECIMAL(18,12) = DECIMAL(30,12); nine terms added pairwise
# (_sum) stay <= 34.
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


def _fits(p: ModelPrice, aliases: dict[str, str]) -> str:
    """The provider and reported-model part of an entry's condition (names compared lower-cased)."""
    providers = [p.provider, *sorted(a for a, target in aliases.items() if target == p.provider)]
    names = ", ".join(sql_string(n.lower()) for n in p.names)
    provider = (f"provider = {sql_string(p.provider)}" if len(providers) == 1
                else f"provider IN ({', '.join(sql_string(x) for x in providers)})")
    return f"{provider} AND LOWER(model) IN ({names})"


def _condition(p: ModelPrice, time_column: str, aliases: dict[str, str] | None = None) -> str:
    period = _period(p.effective_from_ms(), p.effective_to_ms(), time_column)
    return f"{_fits(p, aliases or {})} AND {period}" + _tier_conditions(p)


def _tier_conditions(p: ModelPrice) -> str:
    """Context-size tier and service tier: what makes a price entry apply to only some calls."""
    cond = f" AND input_tokens >= {p.min_input_tokens}" if p.min_input_tokens else ""
    if p.service_tier != "standard":
        cond += f" AND service_tier = {sql_string(p.service_tier)}"
    return cond


def price_case(table: PriceTable, per_token: str, time_column: str = "end_ms", null: Callable[[str], str] = flink_null) -> str:
    """CASE expression giving one token's price for `per_token` (a ModelPrice property), NULL if unpriced."""
    # Most specific first (service tier, then highest context tier): CASE takes the first match.
    check_case_catalog(table)
    ordered = price_order(table.prices)
    branches = [f"WHEN {_condition(p, time_column, table.provider_aliases)} THEN {_decimal_literal(getattr(p, per_token))}"
                for p in ordered]
    if not branches:
        return null(PRICE_TYPE)
    return "CASE " + " ".join(branches) + f" ELSE {null(PRICE_TYPE)} END"


class CatalogTooLarge(ValueError):
    pass


def check_case_catalog(table: PriceTable) -> None:
    """The CASE prices a hand-written local table: exact names, one file. The comprehensive
    catalog (match rules, local overrides over catalog entries) is priced by the Java lookup."""
    odd = [p for p in table.prices if p.match is not None or p.origin != "local"]
    if odd:
        raise ValueError(f"the generated CASE cannot price catalog entries or match rules "
                         f"({odd[0].provider}/{odd[0].model}); use the lookup (TOKENPULSE_STREAM_PRICE_LOOKUP=lookup)")


def needs_lookup(table: PriceTable) -> bool:
    return len(table.prices) > MAX_STREAM_PRICE_ENTRIES or any(
        p.match is not None or p.origin != "local" for p in table.prices)


def catalog_model_case(table: PriceTable) -> str:
    """The folded model name (PriceTable.catalog_model) of a local table: the first fitting entry's model."""
    check_case_catalog(table)
    branches = [f"WHEN {_fits(p, table.provider_aliases)} THEN {sql_string(p.model)}" for p in table.prices]
    return "CASE " + " ".join(branches) + " ELSE model END" if branches else "model"


def check_stream_catalog_size(table: PriceTable) -> None:
    if len(table.prices) > MAX_STREAM_PRICE_ENTRIES:
        raise CatalogTooLarge(
            f"the price catalog has {len(table.prices)} entries; the stream job prices with generated SQL that "
            f"stays fast up to {MAX_STREAM_PRICE_ENTRIES} (see bench/README.md). Keep only the providers and "
            "models you use, e.g. `tokenpulse prices-import-litellm FILE --provider openai ...`."
        )


# (ModelPrice property, price class of the Java lookup, SQL column): every price a call may
# need. The last five are audio-token and per-unit prices (issue #5).
PRICE_COLUMNS = (
    ("input_per_token", "input", "p_input"),
    ("cached_input_per_token", "cached", "p_cached"),
    ("cache_creation_per_token", "cache_creation", "p_cache_creation"),
    ("output_per_token", "output", "p_output"),
    ("input_audio_per_token", "input_audio", "p_input_audio"),
    ("output_audio_per_token", "output_audio", "p_output_audio"),
    ("input_image_unit", "input_image", "p_input_image"),
    ("output_image_unit", "output_image", "p_output_image"),
    ("input_audio_second_unit", "input_audio_second", "p_input_audio_second"),
)
# Audio and per-unit classes are sparse: few entries price them on their own. Each CASE grows
# the generated method the JIT must compile (bench/README.md: the full nine CASEs made the
# shipped catalog ~7x slower), so their CASEs list only the entries that can decide them:
# entries with a price of their own, and every entry sharing a (provider, model name) with
# one (it may come first in the CASE's order, e.g. a batch tier). Any other call gets the
# default: NULL for audio tokens (cost_expression COALESCEs it to the text rate), 0 per unit.
_OWN_FIELD = {"input_audio_per_token": "input_audio_usd_per_mtok", "output_audio_per_token": "output_audio_usd_per_mtok",
              "input_image_unit": "input_image_usd", "output_image_unit": "output_image_usd",
              "input_audio_second_unit": "input_audio_usd_per_second"}
_TEXT_RATE_FALLBACK = {"p_input_audio": "p_input", "p_output_audio": "p_output"}


def _sparse_case(table: PriceTable, prop: str, own: str, default: str, time_column: str = "end_ms") -> str:
    seeds = {(p.provider, n) for p in table.prices if getattr(p, own) is not None for n in p.names}
    deciding = [p for p in price_order(table.prices) if any((p.provider, n) in seeds for n in p.names)]
    if not deciding:
        return default
    branches = [f"WHEN {_condition(p, time_column, table.provider_aliases)} THEN "
                + (_decimal_literal(getattr(p, prop)) if getattr(p, own) is not None else default)
                for p in deciding]
    return "CASE " + " ".join(branches) + f" ELSE {default} END"


def priced_columns(table: PriceTable, null: Callable[[str], str] = flink_null, catalog_models: dict[tuple[str, str], str] | None = None) -> str:
    """SELECT-list fragment adding the per-token and per-unit prices (PRICE_COLUMNS) and the
    catalog model to a spans relation. `catalog_models`: for a table from PriceTable.resolved_for,
    the folded name of each of its (provider, model) pairs."""
    columns = []
    for prop, _, alias in PRICE_COLUMNS:
        own = _OWN_FIELD.get(prop)
        if own is None:
            value = price_case(table, prop, null=null)
        else:
            default = null(PRICE_TYPE) if alias in _TEXT_RATE_FALLBACK else f"CAST(0 AS {PRICE_TYPE})"
            value = _sparse_case(table, prop, own, default)
        columns.append(f"{value} AS {alias}")
    if catalog_models is None:
        columns.append(f"{catalog_model_case(table)} AS catalog_model")
    else:
        branches = " ".join(f"WHEN provider = {sql_string(p)} AND model = {sql_string(m)} THEN {sql_string(c)}"
                            for (p, m), c in sorted(catalog_models.items()))
        columns.append(f"CASE {branches} ELSE model END AS catalog_model" if branches else "model AS catalog_model")
    return ",\n  ".join(columns)


def _sum(terms: list[str]) -> str:
    """a + b + ... added pairwise: a balanced sum keeps the DECIMAL precision Flink derives low
    (each addition adds one digit; a chain of nine would reach 38 and round the scale)."""
    while len(terms) > 1:
        terms = [f"({terms[i]} + {terms[i + 1]})" if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
    return terms[0]


def cost_expression() -> str:
    """Cost of one call from the columns priced_columns() adds; mirrors pricing.call_cost_usd.

    Audio tokens are taken out of the text counts, so each token is priced once."""
    def n(count: str) -> str:
        return f"CAST({count} AS {COUNT_TYPE})"

    terms = [
        f"{n('input_tokens - cached_input_tokens - cache_creation_input_tokens - input_audio_tokens')} * p_input",
        f"{n('cached_input_tokens')} * p_cached",
        f"{n('cache_creation_input_tokens')} * p_cache_creation",
        f"{n('input_audio_tokens')} * COALESCE(p_input_audio, p_input)",
        f"{n('output_tokens - output_audio_tokens')} * p_output",
        f"{n('output_audio_tokens')} * COALESCE(p_output_audio, p_output)",
        f"{n('input_images')} * p_input_image",
        f"{n('output_images')} * p_output_image",
        f"{n('input_audio_seconds')} * p_input_audio_second",
    ]
    return f"CAST({_sum(terms)} AS {CALL_COST_TYPE})"


# --- edge runtimes -----------------------------------------------------------------------


def edge_rate_case(profiles: EdgeProfiles, time_column: str = "end_ms", null: Callable[[str], str] = flink_null) -> str:
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
    expr = cost_expression()
    # Whole names only: p_input is a prefix of p_input_audio and p_input_image.
    for prop, _, alias in PRICE_COLUMNS:
        expr = re.sub(rf"\b{alias}\b", _decimal_literal(getattr(p, prop)), expr)
    return expr


def cloud_equivalent_cost_case(profiles: EdgeProfiles, table: PriceTable, time_column: str = "end_ms",
                               null: Callable[[str], str] = flink_null) -> str:
    """What an edge call would have cost at its profile's cloud-equivalent model (counterfactual)."""
    branches = []
    for profile in profiles.profiles:
        eq = profile.cloud_equivalent
        if eq is None:
            continue
        for price in table.candidates(eq.provider, eq.model):  # most specific first, as the table resolves it
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

    Shared by the stream job and `tokenpulse reprice`, so both price a span identically. A
    semantic-cache hit made no provider call (nor used a runtime): it costs 0; what it would
    have cost is the savings evaluator's counterfactual (insights/jevons.py)."""
    zero = f"CAST(0 AS {CALL_COST_TYPE})"

    def unless_hit(expr: str) -> str:
        return f"CAST(CASE WHEN semantic_cache_hit THEN {zero} ELSE {expr} END AS {COST_TYPE})"

    return (
        "p_input IS NOT NULL AS priced,\n"
        f"  {unless_hit(f'COALESCE({cost_expression()}, {zero}) + COALESCE({edge_cost_expression()}, {zero})')}"
        " AS cost_usd,\n"
        f"  {unless_hit(f'COALESCE({edge_cost_expression()}, {zero})')} AS edge_cost_usd,\n"
        f"  {unless_hit(f'COALESCE(cloud_equivalent_cost, {zero})')} AS cloud_equivalent_cost_usd"
    )
