"""`tokenpulse`: run the local stack, the demo, and queries.

Thin commands: each parses its arguments and calls one module.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from tqdm import tqdm

from .settings import Settings

SERVICES = ["kafka", "loader", "flink-job", "loop-detector", "alerts", "insights", "collector"]  # the names Stack.services() uses
DRILLS = ["broker_restart", "flink_restore", "loader_down", "collector_crash", "duplicate_delivery"]  # tokenpulse.drills.DRILLS
EPILOG = """\
typical session:
  tokenpulse up                      start Kafka, the loader, the Flink job and the collector
  # point any OpenTelemetry SDK at http://127.0.0.1:4318 with
  #   OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer demo-acme-key"
  tokenpulse sql --saved spend_by_team_model --param hours=24
  tokenpulse down                    stop everything (data stays in .state/)

  tokenpulse demo                    all of the above with a demo workload, then a summary

configuration: environment variables TOKENPULSE_<SECTION>_<FIELD>, for example
  TOKENPULSE_KAFKA_BOOTSTRAP_SERVERS=broker:9092 TOKENPULSE_KAFKA_RUN_LOCAL_BROKER=false
  TOKENPULSE_CLICKHOUSE_DSN=http://user:pass@clickhouse:8123
  TOKENPULSE_COLLECTOR_TENANTS_FILE=/etc/tokenpulse/tenants.yaml
see README.md for every setting.
"""


def _stack_progress(bar: tqdm):
    def report(message: str) -> None:
        bar.set_description_str(message)
        if message.endswith(")") or message.endswith("already running") or message.startswith("stopped"):
            bar.update(1)
            tqdm.write(f"  {message}")
    return report


def cmd_up(settings: Settings, args) -> int:
    from .stack import Stack, StackError

    stack = Stack(settings)
    only = getattr(args, "only", None)
    with tqdm(total=len(stack.selected(only)), desc="starting", unit="service", file=sys.stderr) as bar:
        try:
            stack.up(_stack_progress(bar), only=only)
        except StackError as exc:
            bar.close()
            print(f"error: {exc}", file=sys.stderr)
            print("stopping what was started (tokenpulse down)", file=sys.stderr)
            stack.down()
            return 1
    c = settings.collector
    print(f"\nOTLP/HTTP collector: http://{c.host}:{c.port}/v1/traces   Kafka: {settings.kafka.bootstrap_servers}")
    print(f"ClickHouse: {settings.clickhouse.resolved_dsn(settings.paths)}   logs: {settings.paths.logs}")
    return 0


def cmd_down(settings: Settings, args) -> int:
    from .stack import Stack

    Stack(settings).down(lambda m: print(f"  {m}"), only=getattr(args, "only", None))
    print(f"stopped; data stays in {settings.paths.state_dir} (delete it to start from scratch)")
    return 0


def cmd_status(settings: Settings, args) -> int:
    from .stack import Stack

    stack = Stack(settings)
    running = 0
    for name, pid in stack.status().items():
        print(f"  {name:<10} {'running, pid ' + str(pid) if pid else 'stopped'}   log: {stack.log_path(name)}")
        running += bool(pid)
    return 0 if running else 3


def cmd_sql(settings: Settings, args) -> int:
    from tokenpulse.loader.clickhouse import StoreBusy
    from tokenpulse.sql import QUERIES_DIR

    from .sql_client import QueryError, format_table, run_sql, saved_query

    if args.list:
        for p in sorted(QUERIES_DIR.glob("*.sql")):
            first = next((l[3:].strip() for l in p.read_text().splitlines() if l.startswith("--")), "")
            print(f"  {p.stem:<28} {first}")
        return 0
    if args.saved:
        sql = saved_query(args.saved)
    elif args.query:
        sql = args.query
    else:
        print("give a query, --saved NAME, or --list", file=sys.stderr)
        return 2
    params = {}
    for p in args.param or []:
        key, _, value = p.partition("=")
        params[key] = value
    try:
        from tokenpulse.loader.migrations import split_statements
        result = None
        for statement in split_statements(sql):
            result = run_sql(settings, statement, params)
    except (QueryError, StoreBusy) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if result is not None:
        print(format_table(result))
    return 0


def cmd_migrate(settings: Settings, args) -> int:
    from tokenpulse.loader.clickhouse import StoreBusy, open_client
    from tokenpulse.loader.migrations import migrate_down, migrate_up

    try:
        client = open_client(settings.clickhouse, settings.paths)
    except StoreBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    cluster = settings.clickhouse.cluster or None  # TOKENPULSE_CLICKHOUSE_CLUSTER: clustered DDL, ON CLUSTER
    done = (migrate_up(client, cluster=cluster) if args.direction == "up"
            else migrate_down(client, args.steps, cluster=cluster))
    for m in done:
        print(f"  {args.direction} {m.version:04d}_{m.name}")
    print(f"{len(done)} migration(s) {'applied' if args.direction == 'up' else 'reverted'}")
    return 0


def cmd_topics(settings: Settings, args) -> int:
    from .kafka_admin import apply_topics

    created = apply_topics(settings.kafka, args.replication_factor)
    print(f"created: {', '.join(created) if created else 'none (all exist)'}")
    return 0


def cmd_config_check(settings: Settings, args) -> int:
    """Validate every declarative config file and report all errors at once."""
    from pydantic import ValidationError

    from tokenpulse.alerts.config import load_hooks
    from tokenpulse.core.pricing_sql import check_stream_catalog_size
    from tokenpulse.insights.runner import InsightsSettings
    from tokenpulse.schemas.budgets import load_budget_config
    from tokenpulse.schemas.detectors import load_detector_config
    from tokenpulse.schemas.edge_profiles import load_edge_profiles
    from tokenpulse.schemas.growth import load_growth_config
    from tokenpulse.schemas.pricing import load_price_table
    from tokenpulse.schemas.senders import load_senders
    from tokenpulse.schemas.tenants import load_tenants

    from .stack import dispatcher_environ

    def prices(path):
        table = load_price_table(path, settings.stream.catalog_file)
        if settings.stream.price_lookup == "case":  # "auto" switches to the lookup function when large
            check_stream_catalog_size(table)
        local = sum(1 for p in table.prices if p.origin == "local")
        return f"{local} local prices over {len(table.prices) - local} catalog entries ({settings.stream.catalog_file})"

    checks = (
        ("prices", settings.stream.prices_file, prices),
        ("senders", settings.collector.senders_file, lambda p: f"{len(load_senders(p).senders)} sender conventions"),
        ("edge", settings.stream.edge_profiles_file, lambda p: f"{len(load_edge_profiles(p).profiles)} profiles"),
        ("tenants", settings.collector.tenants_file, lambda p: f"{len(load_tenants(p).tenants)} tenants"),
        ("detectors", settings.detector.detectors_file,
         lambda p: f"{len(load_detector_config(p).overrides)} overrides"),
        # The dispatcher reads hook secrets from its environment; check them as it will.
        ("hooks", settings.alerts.hooks_file, lambda p: f"{len(load_hooks(p, environ=dispatcher_environ()).hooks)} hooks"),
        ("budgets", InsightsSettings().budgets_file, lambda p: f"{len(load_budget_config(p).budgets)} budgets"),
        ("growth", InsightsSettings().growth_file, lambda p: f"{len(load_growth_config(p).expected_growth)} planned rollouts"),
    )
    errors = 0
    for label, path, check in checks:
        try:
            print(f"  ok    {label:<9} {path} ({check(path)})")
        except (ValidationError, OSError, ValueError) as exc:
            errors += 1
            print(f"  error {label:<9} {path}\n{exc}")
    return 1 if errors else 0


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

    from .sql_client import QueryError, format_table, run_sql, saved_query

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


def cmd_report(settings: Settings, args) -> int:
    from tokenpulse.loader.clickhouse import StoreBusy

    from .report import Period, write_report
    from .sql_client import QueryError

    def utc(t: datetime | None) -> datetime | None:  # ClickHouse returns naive UTC: compare like with like
        return t.astimezone(UTC).replace(tzinfo=None) if t is not None and t.tzinfo else t

    until = utc(args.until) or datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    period = Period(utc(args.since) or until - timedelta(days=args.days), until)
    if period.end <= period.start:
        print("error: --until must be after --since", file=sys.stderr)
        return 2
    print(f"building the report for {period.start} .. {period.end} UTC ({args.tenant or 'all tenants'})", file=sys.stderr)
    try:
        out = write_report(settings, args.out, period, tenant=args.tenant or "", top_sessions=args.top)
    except (QueryError, StoreBusy) as exc:
        hint = "\n(no tokenpulse tables there: start the stack or run `tokenpulse migrate up`)" \
            if "UNKNOWN_TABLE" in str(exc) else ""
        print(f"error: {exc}{hint}", file=sys.stderr)
        return 1
    print(out)
    return 0


def cmd_key_hash(settings: Settings, args) -> int:
    from tokenpulse.schemas.tenants import hash_key

    print(hash_key(args.key))
    return 0


def cmd_resolve_alerts(settings: Settings, args) -> int:
    from tokenpulse.alerts.manual_resolve import choose, now_ms, open_incidents, resolved_state
    from tokenpulse.insights.runner import KafkaAlertPublisher, PublishFailed, query_fn_for_settings
    from tokenpulse.loader.clickhouse import StoreBusy

    from .sql_client import QueryError

    try:
        incidents = open_incidents(query_fn_for_settings(settings), args.kind)
    except (QueryError, StoreBusy) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    now = now_ms()
    picked = choose(incidents, quiet_s=args.quiet_s, now_ms=now, dedupe_keys=args.dedupe_key or (), tenant=args.tenant)
    print(f"{len(incidents)} open {args.kind} incident(s); {len(picked)} quiet for >= {args.quiet_s} s"
          + (" and matching the filters" if args.dedupe_key or args.tenant else ""))
    for i in picked:
        print(f"  {i.dedupe_key}  opened {(now - i.opened_ms) / 60000:,.0f} min ago, "
              f"quiet {(now - i.last_activity_ms) / 60000:,.0f} min")
    if not picked or args.dry_run:
        return 0
    publish = KafkaAlertPublisher(settings.kafka, client_id="tokenpulse-resolve-alerts")
    try:
        publish([resolved_state(i, now, args.reason) for i in picked])
    except PublishFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        publish.close()
    print(f"published {len(picked)} resolved state(s) to the alerts topic")
    return 0


def cmd_demo(settings: Settings, args) -> int:
    from tokenpulse.alerts.config import load_hooks
    from tokenpulse.schemas.edge_profiles import load_edge_profiles
    from tokenpulse.schemas.pricing import load_price_table

    from .demo import APPS, AlertInbox, run_runaway_agent, run_stock_instrumented_app, run_workload
    from .sql_client import QueryError, format_table, run_sql, saved_query
    from .stack import dispatcher_environ

    inbox = _demo_inbox(settings, load_hooks, dispatcher_environ(), AlertInbox)
    if cmd_up(settings, args) != 0:
        return 1
    try:
        prices = load_price_table(settings.stream.prices_file, settings.stream.catalog_file)
        edge = load_edge_profiles(settings.stream.edge_profiles_file)
        c = settings.collector
        start = datetime.now(UTC).replace(second=0, microsecond=0)
        print(f"\nsending {args.calls} LLM calls from {len(APPS)} instrumented apps over ~{args.duration:.0f} s")
        with tqdm(total=args.calls, desc="demo calls", unit="call", file=sys.stderr) as bar:
            expected = run_workload(f"http://{c.host}:{c.port}/v1/traces", prices, edge, calls=args.calls,
                                    duration_s=args.duration, progress=bar.update, seed=args.seed)
        print("\nan app instrumented with stock OpenLLMetry (not tokenpulse's SDK) now runs agents with the real "
              "openai and anthropic clients against a local fake provider with known usage")
        stock = run_stock_instrumented_app(f"http://{c.host}:{c.port}", prices, expected,
                                           settings.paths.state_dir / "demo-stock-app")
        if stock is None:
            print("  skipped: OpenLLMetry is not installed here (pip install -e '.[server,dev]')")
        else:
            print(f"  {stock.calls} calls made ({stock.usage_missing} streamed without usage), "
                  f"{sum(1 for a in stock.run.app_truth if a.get('conversation_id'))} inside agent sessions")
        print("\na runaway agent now repeats one question with a growing context, opted in to the circuit breaker")
        runaway = run_runaway_agent(f"http://{c.host}:{c.port}", prices, expected)
        _report_runaway(runaway, inbox)
        tenants = sorted(expected.by_tenant_calls)
        probe = ("SELECT sum(calls), sum(cost_usd) FROM spend_1m FINAL "
                 "WHERE window_start >= {start:DateTime} AND tenant IN {tenants:Array(String)}")
        params = {"start": start.strftime("%Y-%m-%d %H:%M:%S"), "tenants": tenants}
        print("waiting for the 1-minute windows to close (watermark delay "
              f"{settings.stream.watermark_delay_ms / 1000:.0f} s after each minute)")
        deadline = time.monotonic() + args.timeout
        rolled, cost = 0, Decimal(0)
        with tqdm(total=expected.calls, desc="rolled up", unit="call", file=sys.stderr) as bar:
            while time.monotonic() < deadline:
                row = run_sql(settings, probe, params).rows[0]
                rolled, cost = int(row[0] or 0), Decimal(str(row[1] or 0))
                bar.update(rolled - bar.n)
                if rolled >= expected.calls:
                    break
                time.sleep(2)
        print("\nspend by team and model (from ClickHouse spend_1m):")
        print(format_table(run_sql(settings, saved_query("spend_by_team_model"), {"hours": 1})))
        print("\ncloud vs edge (hardware + energy by busy time vs the cloud-equivalent model):")
        print(format_table(run_sql(settings, saved_query("cloud_vs_edge_comparison"), {"hours": 1})))
        print("\nrunaway sessions (alerts joined to their spend):")
        print(format_table(run_sql(settings, saved_query("runaway_sessions"), {"hours": 1, "limit": 10})))
        print("\nrejected input (dead letters):")
        print(format_table(run_sql(settings, saved_query("dead_letters_recent"), {"hours": 1})))
        stock_ok = True
        if stock is not None:
            stock_ok = _report_stock_app(settings, stock, prices)
        print("\nreconciliation, raw spans vs rollups (diff must be 0):")
        print(format_table(run_sql(settings, saved_query("reconcile_raw_vs_rollups"), {"days": 1})))
        from .report import Period, write_report  # the same page as `tokenpulse report --days 1`
        try:
            page = write_report(settings, settings.paths.state_dir / "report.html", Period.last_days(1))
            print(f"\nreport with charts (opens offline): {page}")
        except (QueryError, OSError) as exc:
            print(f"\nreport not written: {exc}")
        ok = rolled == expected.calls and cost == expected.cost_usd and stock_ok
        print(f"\ncheck: pipeline rolled up {rolled} calls, ${cost} | demo sent {expected.calls} calls, "
              f"${expected.cost_usd} priced independently ({expected.unpriced} unpriced, "
              f"{expected.rejected} rejected) -> {'MATCH' if ok else 'MISMATCH'}")
        print(f"\ndata: ClickHouse {settings.clickhouse.resolved_dsn(settings.paths)}, Kafka logs "
              f"{settings.paths.state_dir / 'kafka'}, service logs {settings.paths.logs}")
        print("explore: tokenpulse sql --list ; tokenpulse sql 'SELECT count() FROM token_spans FINAL'")
        return 0 if ok else 1
    finally:
        if inbox is not None:
            inbox.close()
        if not args.keep_running:
            print("stopping the stack (use --keep-running to keep it up)")
            cmd_down(settings, args)


def _report_stock_app(settings: Settings, stock, prices) -> bool:
    """The stock-instrumented app's calls as stored, against the fake provider's truth (the
    conformance suite's comparison): each call once, attributed to its session and agent."""
    from tokenpulse.conformance import runner

    from .demo import STOCK_APP_SERVICE
    from .sql_client import run_sql

    columns = ["response_id", "session_id", "agent_name", "input_tokens", "output_tokens", "cached_input_tokens",
               "cache_creation_input_tokens", "reasoning_tokens", "usage_missing", "priced", "cost_usd"]
    deadline = time.monotonic() + 60
    while True:  # attribution of the last agent's calls may land a little after its rollup
        rows = [dict(zip(columns, r)) for r in run_sql(
            settings, f"SELECT {', '.join(columns)} FROM token_spans FINAL WHERE tenant = 'acme' AND service = {{s:String}}",
            {"s": STOCK_APP_SERVICE}).rows]
        result = runner.compare(stock.run, rows, prices)
        if (result.calls_stored >= result.calls_made and result.attributed >= result.attributable) \
                or time.monotonic() > deadline:
            break
        time.sleep(2)
    print("\nthe OpenLLMetry app, stored vs the fake provider's truth (docs/conformance.md):")
    print(runner.render_table([result]))
    return (result.calls_stored == result.calls_made and result.duplicates == 0
            and not any(result.class_wrong.values()) and result.attributed == result.attributable)


def _demo_inbox(settings: Settings, load_hooks, environ: dict, inbox_class):
    """Listen where the hooks file's first webhook points, if that is this machine."""
    from urllib.parse import urlsplit

    try:
        hooks = load_hooks(settings.alerts.hooks_file, environ=environ)
    except ValueError as exc:
        print(f"(alert hooks not usable, no webhook inbox: {exc})")
        return None
    for hook in hooks.hooks:
        url = urlsplit(hook.url)
        if hook.kind == "webhook" and url.hostname in ("127.0.0.1", "localhost") and hook.secret:
            try:
                return inbox_class(url.hostname, url.port or 80, hook.secret.get_secret_value())
            except OSError as exc:
                print(f"(port {url.port} busy, no webhook inbox: {exc})")
    return None


def _report_runaway(runaway, inbox) -> None:
    if runaway.stopped is None:
        print(f"  the runaway agent was NOT stopped after {runaway.calls} calls (see .state/logs)")
        return
    print(f"  stopped after {runaway.calls} calls: SessionStopped: {runaway.stopped.summary}")
    deadline = time.monotonic() + 15
    while inbox is not None and time.monotonic() < deadline:
        hits = [a for a in inbox.alerts if a[1].get("session_id") == runaway.session and a[1].get("state") == "open"]
        if hits:
            at, alert, signed = hits[0]
            print(f"  webhook (HMAC {'valid' if signed else 'INVALID'}) got [{alert['severity']}] {alert['rule']}: "
                  f"{alert['summary'][:140]}")
            return
        time.sleep(0.2)
    print("  no webhook delivery seen (is the demo inbox port free?)")


def cmd_drill(settings: Settings, args) -> int:
    from .drills import DrillOptions, notes, run_drills, table, write_json

    options = DrillOptions(only=args.only, loader_down_s=args.loader_down_s, broker_down_s=args.broker_down_s,
                           before_s=args.traffic_s, after_s=args.traffic_s)
    results = run_drills(options, port_base=args.port_base, keep_state=args.keep_state,
                         progress=lambda m: print(m, file=sys.stderr, flush=True))
    print("\n" + table(results) + "\n\n" + notes(results))
    if args.json:
        write_json(args.json, results)
    bad = [d.name for d in results if not d.ok]
    print(f"\n{len(results) - len(bad)} of {len(results)} drills clean" + (f"; MISMATCH in {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


# Command groups with their own parsers, each in its own module (`python -m <module>` works too):
# `tokenpulse flink up`, `tokenpulse kafka stop-broker 2`, `tokenpulse insights --once`.
COMMAND_GROUPS = {
    "flink": ("tokenpulse.flink_cluster",
              "a local standalone Flink cluster: up, submit the jobs, kill/start a TaskManager, down"),
    "kafka": ("tokenpulse.kafka_cluster",
              "a local three-node Kafka cluster: up, env, stop/start a broker, down"),
    "insights": ("tokenpulse.insights.__main__",
                 "the budget, burn-rate, growth and savings evaluators: --check, --once, or as a service"),
}


def run_group(name: str, argv: list[str]) -> int:
    module, _ = COMMAND_GROUPS[name]
    return importlib.import_module(module).main(argv, prog=f"tokenpulse {name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tokenpulse",
        description="Observability for LLM token spend: OpenTelemetry GenAI spans -> Kafka -> Flink -> ClickHouse.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="start the local stack (Kafka, loader, Flink job, collector)",
                        description="Start every service in order and wait until each is healthy. Downloads the "
                                    "Kafka and Flink connector jars from Maven Central on first use.")
    up.add_argument("--only", nargs="+", choices=SERVICES, help="start just these services")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="stop the local stack, keep its data")
    down.add_argument("--only", nargs="+", choices=SERVICES, help="stop just these services")
    down.set_defaults(func=cmd_down)
    sub.add_parser("status", help="show which services run (exit 3 when none)").set_defaults(func=cmd_status)

    demo = sub.add_parser("demo", help="start the stack, run a demo workload, print a spend summary",
                          description="Runs instrumented demo apps (two tenants, OpenAI/Anthropic in the cloud, "
                                      "a local model at the edge) through the whole pipeline and checks the "
                                      "ClickHouse totals against an independent computation.")
    demo.add_argument("--calls", type=int, default=600, help="LLM calls to send (default 600)")
    demo.add_argument("--duration", type=float, default=15.0, help="seconds to spread them over (default 15)")
    demo.add_argument("--seed", type=int, default=7, help="random seed of the workload")
    demo.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for rollups (default 180)")
    demo.add_argument("--keep-running", action="store_true", help="leave the stack up afterwards")
    demo.set_defaults(func=cmd_demo)

    sql = sub.add_parser("sql", help="query ClickHouse (works while the stack runs)",
                         description="Runs SQL on the store. Saved queries live in sql/queries; "
                                     "`{name:Type}` placeholders are filled from --param name=value.",
                         epilog="examples:\n  tokenpulse sql --list\n"
                                "  tokenpulse sql --saved top_sessions --param hours=24 --param limit=10\n"
                                "  tokenpulse sql \"SELECT model, sum(cost_usd) FROM spend_1m FINAL GROUP BY model\"",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    sql.add_argument("query", nargs="?", help="SQL text")
    sql.add_argument("--saved", metavar="NAME", help="run sql/queries/NAME.sql")
    sql.add_argument("--param", action="append", metavar="NAME=VALUE", help="bind a {NAME:Type} placeholder")
    sql.add_argument("--list", action="store_true", help="list saved queries")
    sql.set_defaults(func=cmd_sql)

    mig = sub.add_parser("migrate", help="apply or revert ClickHouse migrations (stack stopped, or a server DSN)")
    mig.add_argument("direction", choices=["up", "down"])
    mig.add_argument("--steps", type=int, default=1, help="migrations to revert with 'down' (default 1)")
    mig.set_defaults(func=cmd_migrate)

    from tokenpulse.sql import cluster_ddl
    ccd = sub.add_parser("sql-cluster-ddl", help="generate sql/cluster/: the migrations for a sharded, replicated cluster",
                         description="Rewrites every single-node migration in sql/migrations for a ClickHouse cluster "
                                     "(ON CLUSTER, Replicated*MergeTree <name>_local + Distributed <name>, sharded "
                                     "by tenant) into sql/cluster/. Run it after adding a migration; a unit test fails "
                                     "while the committed files are out of date. docs/clickhouse_cluster.md explains "
                                     "the layout; TOKENPULSE_CLICKHOUSE_CLUSTER=NAME makes `migrate` apply this form.",
                         epilog="examples:\n  tokenpulse sql-cluster-ddl            # regenerate sql/cluster/\n"
                                "  tokenpulse sql-cluster-ddl --check    # exit 1 if sql/cluster/ is out of date\n"
                                "  tokenpulse sql-cluster-ddl --cluster prod --out /tmp/prod-ddl",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    cluster_ddl.add_arguments(ccd)
    ccd.set_defaults(func=lambda settings, args: cluster_ddl.run(args))

    top = sub.add_parser("topics", help="create the Kafka topics from the registry (idempotent)")
    top.add_argument("--replication-factor", type=int, default=None,
                     help="default TOKENPULSE_KAFKA_REPLICATION_FACTOR (1; 3 on a three-broker cluster)")
    top.set_defaults(func=cmd_topics)

    cfg = sub.add_parser("config-check", help="validate prices and tenants files, report every error")
    cfg.set_defaults(func=cmd_config_check)

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

    rep = sub.add_parser("report", help="write a self-contained HTML report with charts of spend",
                         description="Writes one HTML page (inline SVG charts, no scripts, opens offline) for a\n"
                                     "period: spend over time by team and model, unit price vs volume vs spend\n"
                                     "(the Jevons view), top runaway sessions, cloud vs edge cost per million\n"
                                     "tokens, budget burn and measured savings, each with its data table.\n"
                                     "Reads ClickHouse through the saved queries in sql/queries (through the\n"
                                     "loader while the stack runs). Times are UTC; docs/report.md explains the charts.",
                         epilog="examples:\n  tokenpulse report --out report.html                 the last 7 days\n"
                                "  tokenpulse report --days 1 --tenant acme --out acme.html\n"
                                "  tokenpulse report --since 2026-11-01 --until 2026-12-01 --out november.html",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    rep.add_argument("--out", type=Path, default=Path("report.html"), help="where to write (default report.html)")
    rep.add_argument("--since", type=datetime.fromisoformat, help="UTC start, e.g. 2026-11-01 or 2026-11-01T08:00")
    rep.add_argument("--until", type=datetime.fromisoformat, help="UTC end, exclusive (default now)")
    rep.add_argument("--days", type=float, default=7.0, help="period length when --since is not given (default 7)")
    rep.add_argument("--tenant", help="only this tenant (default: all)")
    rep.add_argument("--top", type=int, default=10, help="sessions in the runaway chart (default 10)")
    rep.set_defaults(func=cmd_report)

    dr = sub.add_parser("drill", help="fault drills: break a part mid-stream, prove 0 lost / 0 counted twice",
                        description="Starts its own stack (temporary state dir, ports from --port-base, away from "
                                    "`tokenpulse up`), then per drill: a client sends spans, counting what it sent "
                                    "and what the collector acknowledged and pricing each itself; the fault is "
                                    "injected; the pipeline settles; raw rows (token_spans) and 1-minute rollups "
                                    "(spend_1m) are reconciled with the client's counts and cost, to 1e-12 USD. "
                                    "Prints a table; exits 1 on any mismatch. About 5 minutes for all five.",
                        epilog="drills:\n"
                               "  broker_restart      Kafka broker stopped (SIGTERM) and restarted\n"
                               "  flink_restore       cost job cancelled mid-stream, resumes from its checkpoint\n"
                               "  loader_down         ClickHouse writer down for --loader-down-s\n"
                               "  collector_crash     collector SIGKILLed with requests in flight; client resends\n"
                               "  duplicate_delivery  every request sent twice + spans re-forwarded to Kafka\n"
                               "columns: lost = acked spans with no row; duplicates = rows or rollup calls beyond\n"
                               "one per span; diff = stored cost - the client's own pricing; recover s = faulty\n"
                               "part restarted -> a span sent after that is a row in ClickHouse.\n"
                               "evidence: a failed or interrupted run keeps its state dir (it prints where); each\n"
                               "service's log of the run before a restart is <name>.log.1 beside <name>.log.\n"
                               "Ctrl-C or SIGTERM stops the drills' stack before exiting.\n"
                               "example: tokenpulse drill --only loader_down collector_crash --loader-down-s 10",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    dr.add_argument("--only", nargs="+", choices=DRILLS, default=DRILLS, metavar="NAME",
                    help="run just these drills (default: all, in the order above)")
    dr.add_argument("--loader-down-s", type=float, default=60.0, help="loader outage in seconds (default 60)")
    dr.add_argument("--broker-down-s", type=float, default=10.0, help="broker outage in seconds (default 10)")
    dr.add_argument("--traffic-s", type=float, default=4.0, help="steady traffic before and after each fault (default 4)")
    dr.add_argument("--port-base", type=int, default=19400,
                    help="ports: Kafka base+92/+93, collector +18, loader query +24 (default 19400)")
    dr.add_argument("--keep-state", action="store_true",
                    help="keep the temporary state dir (logs, data) also after a clean run")
    dr.add_argument("--json", type=Path, help="also write the results as JSON here")
    dr.set_defaults(func=cmd_drill)

    ra = sub.add_parser(
        "resolve-alerts", help="resolve open incidents whose owner lost track of them (after a state reset)",
        description="An incident stays open (paged, its session's breaker tripped) until whoever opened it "
                    "resolves it. After the loop detector lost its state (a --no-resume start, or a switch of "
                    "TOKENPULSE_DETECTOR_ENGINE), nobody will. This publishes the resolved state of the open "
                    "incidents whose session has been quiet long enough to the alerts topic, under their own "
                    "alert ids: hooks get their resolve (PagerDuty closes the page), breakers clear, and the "
                    "alerts table records it. Run it while the stack runs; try --dry-run first.",
        epilog="example: tokenpulse resolve-alerts --quiet-s 3600 --dry-run")
    ra.add_argument("--kind", default="runaway_loop", help="incident kind (default runaway_loop; also budget, growth)")
    ra.add_argument("--quiet-s", type=int, default=3600,
                    help="only incidents whose session made no call for this long (default 3600, the detector's "
                         "session TTL; no session: since it opened)")
    ra.add_argument("--dedupe-key", action="append", help="only this incident (repeatable), e.g. acme/runaway_loop/repetition/s-1")
    ra.add_argument("--tenant", help="only this tenant's incidents")
    ra.add_argument("--reason", default="detector state reset", help="recorded in the summary and evidence")
    ra.add_argument("--dry-run", action="store_true", help="list what would be resolved, publish nothing")
    ra.set_defaults(func=cmd_resolve_alerts)

    kh = sub.add_parser("key-hash", help="print the SHA-256 digest of an API key for the tenants file")
    kh.add_argument("key")
    kh.set_defaults(func=cmd_key_hash)

    for name, (_, help_text) in COMMAND_GROUPS.items():
        group = sub.add_parser(name, help=f"{help_text} (tokenpulse {name} --help)", add_help=False)
        group.add_argument("args", nargs=argparse.REMAINDER)
        group.set_defaults(func=lambda _settings, args, name=name: run_group(name, args.args))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    first = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if first is not None and argv[first] in COMMAND_GROUPS and set(argv[:first]) <= {"-v", "--verbose"}:
        return run_group(argv[first], argv[first + 1:])  # their own parser and logging set-up
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not args.verbose:
        logging.getLogger("kafka").setLevel(logging.CRITICAL)  # readiness probes expect refusals
    return args.func(Settings(), args)


if __name__ == "__main__":
    sys.exit(main())
