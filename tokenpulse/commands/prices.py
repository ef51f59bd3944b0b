"""The price table: `tokenpulse prices-import-litellm | prices-import-genai-prices | reprice`."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from tqdm import tqdm

from ..settings import Settings


def cmd_prices_import(settings: Settings, args) -> int:
    from tokenpulse.schemas.litellm_import import import_file, to_yaml

    result = import_file(args.file, effective_from=args.effective_from, source=args.source,
                         providers=set(args.provider) if args.provider else None)
    text = "# Imported from a LiteLLM price file by `tokenpulse prices-import-litellm`; review before use.\n"
    text += to_yaml(result.table)
    if args.output:
        args.output.write_text(text)
        print(f"wrote {len(result.table.prices)} prices to {args.output}")
    else:
        print(text)
    for key, reason in result.skipped:
        print(f"  skipped {key}: {reason}", file=sys.stderr)
    print(f"{len(result.table.prices)} imported, {len(result.skipped)} skipped", file=sys.stderr)
    return 0


def cmd_prices_import_genai(settings: Settings, args) -> int:
    from datetime import date

    try:
        from tokenpulse.schemas.genai_prices_import import import_genai_prices, to_yaml
        result = import_genai_prices()
    except ImportError:
        print("error: the genai-prices package is not installed: pip install genai-prices", file=sys.stderr)
        return 2
    out = args.output or settings.stream.catalog_file
    out.write_text(to_yaml(result, date.today()))
    for where, why in result.skipped if args.verbose else []:
        print(f"  skipped {where}: {why}", file=sys.stderr)
    print(f"wrote {len(result.table.prices)} catalog entries from genai-prices {result.version} to {out} "
          f"({len(result.skipped)} skipped{'' if args.verbose else '; --verbose lists them'}); "
          "restart the cost job to use it")
    return 0


def cmd_reprice(settings: Settings, args) -> int:
    from tokenpulse.loader.clickhouse import StoreBusy
    from tokenpulse.loader.reprice import (
        distinct_models_sql,
        period_params,
        rebuild_rollups_statements,
        reprice_spans_sql,
        with_sync_insert,
    )
    from tokenpulse.schemas.edge_profiles import load_edge_profiles
    from tokenpulse.schemas.pricing import load_price_table

    from ..sql_client import QueryError, format_table, run_sql, saved_query

    if args.to <= args.start:
        print("error: --to must be after --from", file=sys.stderr)
        return 2
    open_from = datetime.now(UTC).replace(tzinfo=None) - timedelta(milliseconds=settings.stream.watermark_delay_ms, minutes=1)
    if args.to > open_from:
        print(f"error: windows after {open_from:%Y-%m-%d %H:%M:%S} UTC may still be open in the stream job, which "
              "would overwrite the rebuilt rollups; choose an earlier --to", file=sys.stderr)
        return 2
    prices = load_price_table(settings.stream.prices_file, settings.stream.catalog_file)
    edge = load_edge_profiles(settings.stream.edge_profiles_file)
    cluster = settings.clickhouse.cluster or None
    try:
        tenants = args.tenant or [r[0] for r in run_sql(
            settings, "SELECT DISTINCT tenant FROM token_spans WHERE end_time >= {from:DateTime} AND end_time < {to:DateTime}",
            period_params("", args.start, args.to)).rows]
        for tenant in tqdm(tenants, desc="repricing", unit="tenant", file=sys.stderr):
            params = period_params(tenant, args.start, args.to)
            models = [(r[0], r[1]) for r in run_sql(settings, distinct_models_sql(), params).rows]
            statement = reprice_spans_sql(prices, edge, models)
            run_sql(settings, with_sync_insert(statement) if cluster else statement, params)
            for statement in rebuild_rollups_statements(cluster):
                run_sql(settings, statement, params)
        print(f"repriced {len(tenants)} tenant(s) for [{args.start}, {args.to}); reconciliation:")
        print(format_table(run_sql(settings, saved_query("reconcile_raw_vs_rollups"), {"days": args.days})))
    except (QueryError, StoreBusy) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    imp = sub.add_parser("prices-import-litellm", help="convert LiteLLM's price JSON into a tokenpulse price table",
                         description="Reads a local copy of LiteLLM's model_prices_and_context_window.json and "
                                     "writes tokenpulse price entries (USD per million tokens, exact decimals) "
                                     "with the effective date and source you state. Nothing is downloaded.")
    imp.add_argument("file", type=Path, help="the LiteLLM JSON file")
    imp.add_argument("--effective-from", type=date.fromisoformat, required=True, help="YYYY-MM-DD the prices apply from")
    imp.add_argument("--source", required=True, help="where the file came from (URL and retrieval date)")
    imp.add_argument("--provider", action="append", help="keep only this gen_ai provider (repeatable)")
    imp.add_argument("-o", "--output", type=Path, help="write YAML here instead of printing it")
    imp.set_defaults(func=cmd_prices_import)

    gp = sub.add_parser("prices-import-genai-prices",
                        help="regenerate the comprehensive price catalog from the genai-prices package",
                        description="Converts the installed genai-prices package's data (a maintained database of "
                                    "LLM API prices with history, from the pydantic project) into the price catalog "
                                    "(schemas/prices.catalog.yaml): each model's match rule, price periods, context "
                                    "tiers and batch / priority / flex tiers, with sources. Your own prices stay in "
                                    "the local file (TOKENPULSE_STREAM_PRICES_FILE) and override the catalog per "
                                    "model and tier. Nothing is downloaded here: upgrade the package to refresh.",
                        epilog="example:\n  pip install -U genai-prices && tokenpulse prices-import-genai-prices\n"
                               "  tokenpulse config-check   # then restart the cost job (tokenpulse up)",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    gp.add_argument("-o", "--output", type=Path, help="where to write (default TOKENPULSE_STREAM_CATALOG_FILE)")
    gp.add_argument("--verbose", action="store_true", help="list every model skipped, with the reason")
    gp.set_defaults(func=cmd_prices_import_genai)

    rp = sub.add_parser("reprice", help="recompute stored costs for a period with the current price table",
                        description="After correcting schemas/prices.yaml or edge profiles for a past period: "
                                    "re-prices that period's raw spans, rebuilds its 1-minute rollups from them, "
                                    "and prints the raw-vs-rollup reconciliation. Restart the Flink job with the "
                                    "same files first (tokenpulse down --only flink-job; tokenpulse up --only flink-job).")
    rp.add_argument("--from", dest="start", type=datetime.fromisoformat, required=True, help="UTC start, e.g. 2026-11-01")
    rp.add_argument("--to", type=datetime.fromisoformat, required=True, help="UTC end (exclusive)")
    rp.add_argument("--tenant", action="append", help="only this tenant (repeatable; default: all in the period)")
    rp.add_argument("--days", type=int, default=31, help="days of reconciliation to print (default 31)")
    rp.set_defaults(func=cmd_reprice)
