"""Pricing by hash lookup in the JVM, for catalogs too large for the generated CASE.

The generated CASE (pricing_sql.py) is the fastest way to price a small catalog, but it
stops being JIT-compiled past a few dozen entries (bench/README.md). A LiteLLM-sized catalog
is priced instead by `dev.tokenpulse.flink.PriceLookup` (stream_jobs/jvm/), a Java scalar
function that keeps the catalog in a hash map keyed by (provider, model name): constant
cost per call, still no Python on the hot path. Both give the same price for every call:
entries are handed over in the CASE's order and the Java side takes the first that applies
(tests/integration/test_price_lookup_udf.py checks it against schemas/pricing.py).

The catalog travels as the job parameter `tokenpulse.prices` (base64 of tab-separated lines),
so it is part of the job and of its checkpoints' configuration, like the CASE literals.
"""

from __future__ import annotations

import base64

from pyflink.table import TableEnvironment

from tokenpulse.schemas.pricing import PriceTable, price_order

from .pricing_sql import PRICE_COLUMNS

FUNCTION_NAME = "tokenpulse_price_of"
JAVA_CLASS = "dev.tokenpulse.flink.PriceLookup"
JOB_PARAMETER = "tokenpulse.prices"
CLASSES = PRICE_COLUMNS  # (ModelPrice property, price class, column), in PriceLookup.java's field order


def catalog_lines(table: PriceTable) -> str:
    """One line per (entry, model name), in the CASE's order; see PriceLookup.java."""
    lines = []
    for p in price_order(table.prices):
        end = p.effective_to_ms()
        prices = [format(getattr(p, prop), "f") for prop, _, _ in CLASSES]
        for name in p.names:
            fields = [p.provider, name, str(p.effective_from_ms()), "-" if end is None else str(end),
                      str(p.min_input_tokens), p.service_tier, *prices]
            if any("\t" in f or "\n" in f for f in fields):
                raise ValueError(f"{p.provider}/{name}: tabs and newlines cannot appear in catalog fields")
            lines.append("\t".join(fields))
    return "\n".join(lines) + "\n"


def register(t_env: TableEnvironment, table: PriceTable) -> None:
    """Declare the function and hand it the catalog (the UDF jar must be in pipeline.jars)."""
    encoded = base64.b64encode(catalog_lines(table).encode()).decode()  # no ':' or ',' to escape
    t_env.get_config().set("pipeline.global-job-parameters", f"{JOB_PARAMETER}:{encoded}")
    t_env.execute_sql(f"CREATE TEMPORARY FUNCTION {FUNCTION_NAME} AS '{JAVA_CLASS}' LANGUAGE JAVA")


def priced_columns() -> str:
    """The same p_* columns as pricing_sql.priced_columns(), by lookup (audio rates resolved:
    the text rate where an entry has no audio rate of its own, as cost_expression expects)."""
    return ",\n  ".join(
        f"{FUNCTION_NAME}(provider, model, end_ms, input_tokens, service_tier, '{cls}') AS {alias}"
        for _, cls, alias in CLASSES
    )
