"""Pricing by lookup in the JVM: the comprehensive catalog, too large for the generated CASE.

The generated CASE (core/pricing_sql.py) is the fastest way to price a small hand-written catalog,
but it stops being JIT-compiled past a few dozen entries (bench/README.md), and it knows only
exact model names. The shipped catalog (thousands of entries with match rules and history,
schemas/prices.catalog.yaml, under the local prices.yaml) is priced instead by
`dev.tokenpulse.flink.PriceLookup` (stream_jobs/jvm/), a Java scalar function that resolves each
distinct (provider, model) once, exactly as schemas/pricing.py's PriceTable does (catalog model,
then candidates), and memoizes it: constant cost per call, still no Python on the hot path.
`tokenpulse_catalog_model(provider, model)` gives the folded model name the same way
(tests/integration/test_price_lookup_udf.py checks both against schemas/pricing.py).

The catalog travels as the job parameter `tokenpulse.prices` (base64 of tab-separated lines),
so it is part of the job and of its checkpoints' configuration, like the CASE literals.
"""

from __future__ import annotations

import base64

from pyflink.table import TableEnvironment

from tokenpulse.core.pricing_sql import PRICE_COLUMNS
from tokenpulse.schemas.pricing import ModelMatch, PriceTable

FUNCTION_NAME = "tokenpulse_price_of"
CATALOG_MODEL_FUNCTION = "tokenpulse_catalog_model"
JAVA_CLASS = "dev.tokenpulse.flink.PriceLookup"
CATALOG_MODEL_CLASS = "dev.tokenpulse.flink.CatalogModel"
JOB_PARAMETER = "tokenpulse.prices"
CLASSES = PRICE_COLUMNS  # (ModelPrice property, price class, column), in PriceCatalog.java's field order


def encode_match(m: ModelMatch) -> str:
    """Length-prefixed, so no character needs escaping (PriceCatalog.Match.parse)."""
    for kind, field in (("E", m.equals), ("S", m.starts_with), ("N", m.ends_with), ("C", m.contains), ("R", m.regex)):
        if field is not None:
            return f"{kind}{len(field)}:{field}"
    parts, kind = (m.any_of, "O") if m.any_of is not None else (m.all_of, "A")
    return f"{kind}{len(parts)}:" + "".join(encode_match(p) for p in parts)


def catalog_lines(table: PriceTable) -> str:
    """Provider aliases, then one line per entry in the table's order; see PriceCatalog.java."""
    lines = [f"alias\t{a}\t{t}" for a, t in sorted(table.provider_aliases.items())]
    for p in table.prices:
        end = p.effective_to_ms()
        prices = [format(getattr(p, prop), "f") for prop, _, _ in CLASSES]
        fields = ["price", p.origin, p.provider, p.model, "\x1f".join(p.names),
                  "-" if p.match is None else encode_match(p.match), str(p.effective_from_ms()),
                  "-" if end is None else str(end), str(p.min_input_tokens), p.service_tier, *prices]
        if any(c in f for f in fields for c in "\t\n") or any("\x1f" in n for n in p.names):
            raise ValueError(f"{p.provider}/{p.model}: tabs, newlines and \\x1f cannot appear in catalog fields")
        lines.append("\t".join(fields))
    return "\n".join(lines) + "\n"


def register(t_env: TableEnvironment, table: PriceTable) -> None:
    """Declare the functions and hand them the catalog (the UDF jar must be in pipeline.jars)."""
    encoded = base64.b64encode(catalog_lines(table).encode()).decode()  # no ':' or ',' to escape
    t_env.get_config().set("pipeline.global-job-parameters", f"{JOB_PARAMETER}:{encoded}")
    t_env.execute_sql(f"CREATE TEMPORARY FUNCTION {FUNCTION_NAME} AS '{JAVA_CLASS}' LANGUAGE JAVA")
    t_env.execute_sql(f"CREATE TEMPORARY FUNCTION {CATALOG_MODEL_FUNCTION} AS '{CATALOG_MODEL_CLASS}' LANGUAGE JAVA")


def priced_columns() -> str:
    """The same p_* columns and catalog_model as pricing_sql.priced_columns(), by lookup (audio
    rates resolved: the text rate where an entry has no audio rate of its own, as cost_expression expects)."""
    return ",\n  ".join(
        [f"{FUNCTION_NAME}(provider, model, end_ms, input_tokens, service_tier, '{cls}') AS {alias}"
         for _, cls, alias in CLASSES]
        + [f"COALESCE({CATALOG_MODEL_FUNCTION}(provider, model), model) AS catalog_model"])
