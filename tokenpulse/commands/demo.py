"""`tokenpulse demo`: the whole pipeline with demo apps, checked against an independent pricing."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal

from tqdm import tqdm

from ..settings import Settings
from .stack import cmd_down, cmd_up


def cmd_demo(settings: Settings, args) -> int:
    from tokenpulse.alerts.config import load_hooks
    from tokenpulse.schemas.edge_profiles import load_edge_profiles
    from tokenpulse.schemas.pricing import load_price_table

    from ..demo import APPS, AlertInbox, run_runaway_agent, run_stock_instrumented_app, run_workload
    from ..sql_client import QueryError, format_table, run_sql, saved_query
    from ..stack import dispatcher_environ

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
        from ..report import Period, write_report  # the same page as `tokenpulse report --days 1`
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

    from ..demo import STOCK_APP_SERVICE
    from ..sql_client import run_sql

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


def register(sub: argparse._SubParsersAction) -> None:
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
