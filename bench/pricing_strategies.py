"""Benchmark: how the stream job's pricing scales with the catalog size, and what a Python
UDF would cost instead — the measurement behind "generated SQL CASE" (issue #5).

    python bench/pricing_strategies.py [--rows 2000000]

Each variant runs the same bounded Flink job (datagen source -> price -> blackhole sink) in
the local MiniCluster, parallelism 1, in one process, so the times compare:
  no-pricing     baseline: the same rows and a DECIMAL cast, no price lookup
  case-shipped   the generated CASE over the shipped catalog (schemas/prices.yaml)
  case-N         the generated CASE over the shipped catalog plus N synthetic models
                 (the catalog-size guard in pricing_sql is bypassed here on purpose)
  python-udf     the same per-call pricing as a scalar Python UDF (dict lookup, Decimal math)
  lookup-shipped / lookup-2000
                 the Java hash-lookup function (stream_jobs/jvm, price_lookup.py) over the
                 shipped catalog and over the shipped catalog plus 2,000 synthetic models
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import bench_results  # bench/bench_results.py: the results line every benchmark appends

REPO = Path(__file__).resolve().parents[1]


def catalog(n: int):
    from tokenpulse.schemas.pricing import ModelPrice, PriceTable, load_price_table

    shipped = load_price_table()
    if n == 0:
        return shipped
    extra = [ModelPrice(provider="synthetic", model=f"model-{i}", input_usd_per_mtok=Decimal(i % 50) / 10,
                        output_usd_per_mtok=Decimal(i % 70) / 5, effective_from=date(2025, 1, 1),
                        source="synthetic benchmark entry") for i in range(n)]
    return PriceTable(currency="USD", prices=(*shipped.prices, *extra))


def run_variant(variant: str, rows: int) -> float:
    from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment
    from pyflink.table.udf import udf

    from tokenpulse.core.pricing_sql import cost_expression, priced_columns

    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    cfg = t_env.get_config()
    cfg.set("parallelism.default", "1")
    cfg.set("python.executable", sys.executable)
    t_env.execute_sql(f"""
CREATE TEMPORARY TABLE calls (
  k INT, input_tokens BIGINT, cached_input_tokens BIGINT, cache_creation_input_tokens BIGINT,
  output_tokens BIGINT, end_ms BIGINT
) WITH ('connector' = 'datagen', 'number-of-rows' = '{rows}', 'rows-per-second' = '1000000000',
  'fields.k.min' = '0', 'fields.k.max' = '2005', 'fields.input_tokens.min' = '0', 'fields.input_tokens.max' = '100000',
  'fields.cached_input_tokens.min' = '0', 'fields.cached_input_tokens.max' = '1',
  'fields.cache_creation_input_tokens.min' = '0', 'fields.cache_creation_input_tokens.max' = '1',
  'fields.output_tokens.min' = '0', 'fields.output_tokens.max' = '5000',
  'fields.end_ms.min' = '1760000000000', 'fields.end_ms.max' = '1760086400000')""")
    t_env.execute_sql("CREATE TEMPORARY TABLE sink (cost DECIMAL(38, 12)) WITH ('connector' = 'blackhole')")
    model_expr = ("CASE WHEN MOD(k, 4) = 0 THEN 'gpt-4o' WHEN MOD(k, 4) = 1 THEN 'claude-sonnet-4' "
                  "ELSE CONCAT('model-', CAST(k AS STRING)) END")
    provider_expr = ("CASE WHEN MOD(k, 4) = 0 THEN 'openai' WHEN MOD(k, 4) = 1 THEN 'anthropic' ELSE 'synthetic' END")
    base = (f"SELECT {provider_expr} AS provider, {model_expr} AS model, 'standard' AS service_tier, "
            "input_tokens, cached_input_tokens, cache_creation_input_tokens, output_tokens, end_ms, "
            # audio / image usage (issue #5): a text-only workload, as the shipped catalog's models mostly are
            "CAST(0 AS BIGINT) AS input_audio_tokens, CAST(0 AS BIGINT) AS output_audio_tokens, "
            "CAST(0 AS BIGINT) AS input_images, CAST(0 AS BIGINT) AS output_images, "
            "CAST(0 AS BIGINT) AS input_audio_seconds FROM calls")
    if variant == "no-pricing":
        sql = f"INSERT INTO sink SELECT CAST(input_tokens + output_tokens AS DECIMAL(38, 12)) FROM ({base})"
    elif variant.startswith("case"):
        table = catalog(0 if variant == "case-shipped" else int(variant.split("-")[1]))
        sql = (f"INSERT INTO sink SELECT COALESCE({cost_expression()}, 0) FROM "
               f"(SELECT *, {priced_columns(table)} FROM ({base}))")
    elif variant.startswith("lookup"):
        from tokenpulse.jars import udf_jar
        from tokenpulse.settings import PathSettings
        from tokenpulse.stream_jobs import price_lookup

        cfg.set("pipeline.jars", udf_jar(PathSettings()).resolve().as_uri())
        price_lookup.register(t_env, catalog(0 if variant == "lookup-shipped" else 2000))
        sql = (f"INSERT INTO sink SELECT COALESCE({cost_expression()}, 0) FROM "
               f"(SELECT *, {price_lookup.priced_columns()} FROM ({base}))")
    else:
        table = catalog(2000)
        prices = {(p.provider, n): (str(p.input_per_token), str(p.output_per_token))
                  for p in table.prices for n in p.names}

        @udf(result_type=DataTypes.DECIMAL(38, 12))
        def price_call(provider, model, inp, out):
            p = prices.get((provider, model))
            if p is None:
                return Decimal(0)
            return inp * Decimal(p[0]) + out * Decimal(p[1])

        t_env.create_temporary_function("price_call", price_call)
        sql = f"INSERT INTO sink SELECT price_call(provider, model, input_tokens, output_tokens) FROM ({base})"
    t0 = time.perf_counter()
    t_env.execute_sql(sql).wait()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--timeout", type=int, default=180, help="seconds per variant")
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--variants", nargs="+", help="run only these variants")
    args = ap.parse_args()
    if args.variant:  # child process: one variant, one JVM
        print(json.dumps({"variant": args.variant, "seconds": run_variant(args.variant, args.rows)}))
        return
    results = []
    ap_variants = args.variants or ("no-pricing", "case-shipped", "case-10", "case-43", "case-200", "python-udf",
                                    "lookup-shipped", "lookup-2000")
    for variant in ap_variants:
        # fewer rows where a variant is known to be slow, so the whole run stays in minutes
        fast = ("no-pricing", "case-shipped", "case-10", "lookup-shipped", "lookup-2000")
        rows = args.rows if variant in fast else args.rows // 10
        try:
            out = subprocess.run([sys.executable, __file__, "--variant", variant, "--rows", str(rows)],
                                 capture_output=True, text=True, cwd=REPO, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            print(f"{variant:<13} did not finish {rows:,} rows within {args.timeout} s")
            results.append({"variant": variant, "rows": rows, "timed_out_s": args.timeout})
            continue
        line = [l for l in out.stdout.splitlines() if l.startswith("{")]
        if not line:
            cause = [l for l in out.stdout.splitlines() + out.stderr.splitlines() if "Caused by" in l]
            print(f"{variant:<13} failed: {cause[-1] if cause else out.stderr[-300:]}")
            results.append({"variant": variant, "failed": cause[-1] if cause else "see stderr"})
            continue
        r = json.loads(line[-1])
        r.update(rows=rows, rows_per_s=rows / r["seconds"])
        results.append(r)
        print(f"{variant:<13} {rows:>9,} rows in {r['seconds']:6.1f} s = {r['rows_per_s']:>10,.0f} rows/s "
              "(includes job start)")
    bench_results.append("pricing_strategies.jsonl",
                         {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": results})


if __name__ == "__main__":
    main()
